//! `RelayNode`: a `mosaic-netns-relay` process on a node of its own, as the scenarios use it
//! where `tc netem` is missing: routes from the node's ports to upstreams, and a one-way delay
//! the test sets while connections stay open.

use std::{
    ffi::OsString,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context as _;

use crate::net::{Net, write_file};

/// A relay process on node `name` (its process has the same name).
#[derive(Debug)]
pub struct RelayNode {
    /// The node (and process) name.
    pub name: String,
    /// The node's address.
    pub ip: Ipv4Addr,
    delay_file: PathBuf,
}

impl RelayNode {
    /// Adds node `name` at `.host` to `net` and starts `binary` there, forwarding
    /// `<ip>:<port>` to `upstream` for every `(port, upstream)` in `routes`, with no delay yet.
    pub fn start(
        net: &mut Net,
        name: &str,
        host: u8,
        binary: &std::path::Path,
        routes: &[(u16, SocketAddr)],
    ) -> anyhow::Result<Self> {
        let ip = net.add_node(name, host)?.ip;
        let delay_file = net.dir().join(name).join("delay-ms");
        write_file(&delay_file, "0\n")?;
        let mut args: Vec<OsString> = Vec::new();
        for (port, upstream) in routes {
            args.push("--route".into());
            args.push(format!("{ip}:{port}={upstream}").into());
        }
        args.push("--delay-file".into());
        args.push(delay_file.clone().into_os_string());
        net.spawn(name, name, binary, &args, &[])
            .with_context(|| format!("starting the relay on {name}"))?;
        Ok(Self {
            name: name.to_string(),
            ip,
            delay_file,
        })
    }

    /// Sets the relay's one-way delay (each direction).
    pub fn set_delay(&self, delay: Duration) -> anyhow::Result<()> {
        write_file(&self.delay_file, &format!("{}\n", delay.as_millis()))
    }

    /// Whether the relay logged (in `net`'s log of its process) that it applies `delay`.
    pub fn applies(&self, net: &Net, delay: Duration) -> bool {
        net.log(&self.name)
            .contains(&format!("one-way delay is now {} ms", delay.as_millis()))
    }
}
