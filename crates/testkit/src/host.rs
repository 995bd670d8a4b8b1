//! Where a harness server runs: the address its listeners bind and advertise, and the command
//! prefix its binary runs under (`ip netns exec <ns> ...` for a network namespace).

use std::{
    ffi::OsString,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    process::Command,
};

/// The host of one [`crate::GlobalCluster`] replica or [`crate::ZoneProcess`].
#[derive(Clone, Debug)]
pub struct Host {
    /// The address every listener binds, peers are told and the harness's URLs use.
    pub ip: IpAddr,
    /// Program and arguments the server's binary is run through (e.g. `ip netns exec <ns>
    /// setpriv --pdeathsig KILL --`); empty: the binary runs directly.
    pub prefix: Vec<OsString>,
}

// === impl Host ===

impl Host {
    /// `127.0.0.1`, no prefix: what [`crate::GlobalCluster::new`] and [`crate::ZoneProcess::new`] use.
    pub fn loopback() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            prefix: Vec::new(),
        }
    }

    /// `ip`, with `binary` run through `prefix`.
    pub fn new(ip: impl Into<IpAddr>, prefix: Vec<OsString>) -> Self {
        Self {
            ip: ip.into(),
            prefix,
        }
    }

    /// `ip:port`.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, port)
    }

    /// A command running `program` on this host (through the prefix, if any).
    pub(crate) fn command(&self, program: &Path) -> Command {
        match self.prefix.split_first() {
            None => Command::new(program),
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(program);
                cmd
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_runs_the_program_through_it() {
        let host = Host::new(
            Ipv4Addr::new(198, 18, 0, 11),
            ["ip", "netns", "exec", "ns1"].map(OsString::from).to_vec(),
        );
        let cmd = host.command(Path::new("/bin/mosaic-global"));
        assert_eq!(cmd.get_program(), "ip");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["netns", "exec", "ns1", "/bin/mosaic-global"]);
        assert_eq!(host.addr(5681).to_string(), "198.18.0.11:5681");
        let cmd = Host::loopback().command(Path::new("/bin/x"));
        assert_eq!(cmd.get_program(), "/bin/x");
        assert_eq!(cmd.get_args().count(), 0);
    }
}
