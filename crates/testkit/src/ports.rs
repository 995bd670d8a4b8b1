//! Free loopback ports, and a non-loopback address of this machine.
//!
//! Ports are picked below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768 and
//! up by default), not by binding port 0: the kernel hands ports of that range to every outgoing
//! connection and every `bind(0)` of every test running beside this one, so a port chosen there
//! during a test's set-up could be taken by the time its server starts (seen in CI: "Address
//! already in use"). Below it only another picker like this one can collide, and each picked port
//! is checked by binding it.

use std::{
    hash::{BuildHasher as _, RandomState},
    net::TcpListener,
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{Result, bail};

/// The ports picked from: above the well-known and registered ports most daemons use, below the
/// ephemeral range.
const PICK_FROM: u16 = 20_000;
const PICK_BELOW: u16 = 32_768;

/// A random port of the picking range (a hash of a counter with a per-process random key).
fn candidate() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEY: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = KEY.get_or_init(RandomState::new).hash_one(n);
    PICK_FROM + (h % u64::from(PICK_BELOW - PICK_FROM)) as u16
}

/// A listener on a free port of the picking range.
fn bind_free() -> Result<TcpListener> {
    for _ in 0..1000 {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", candidate())) {
            return Ok(l);
        }
    }
    // Everything tried was taken: fall back to the kernel's choice.
    Ok(TcpListener::bind(("127.0.0.1", 0))?)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (another process may still grab it: retry on a clash).
pub fn free_port() -> Result<u16> {
    let listener = bind_free()?;
    Ok(listener.local_addr()?.port())
}

/// `n` distinct free ports on 127.0.0.1. Every listener is held until all are chosen, so the
/// kernel cannot hand the same port out twice (as separate [`free_port`] calls can).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n).map(|_| bind_free()).collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// `n` distinct free ports on 127.0.0.1 and the listeners holding them: until the listeners are
/// dropped (just before the server that uses the ports starts), no other process can bind them
/// and the kernel does not hand them out as source ports of outgoing connections. A port chosen
/// by [`free_ports`] during a test's set-up could be taken by then ("Address already in use").
pub fn reserve_ports(n: usize) -> Result<(Vec<u16>, Vec<TcpListener>)> {
    let listeners = (0..n).map(|_| bind_free()).collect::<Result<Vec<_>>>()?;
    let ports = listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<Result<Vec<u16>>>()?;
    Ok((ports, listeners))
}

/// A port `p` such that both `p` and `p + 1` were free on 127.0.0.1 a moment ago.
///
/// `bao server -dev -dev-listen-address=127.0.0.1:p` also binds its cluster listener on `p + 1`,
/// and every extra `listener "tcp"` block does the same, so OpenBao needs pairs.
pub fn free_port_pair() -> Result<u16> {
    for _ in 0..200 {
        let first = bind_free()?;
        let port = first.local_addr()?.port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", next)).is_ok() {
            return Ok(port);
        }
    }
    bail!("could not find two adjacent free ports on 127.0.0.1")
}

/// A non-loopback address of this machine, if it has one: the source address the kernel would
/// pick for a route to a documentation address (a UDP "connect" sends nothing), checked by
/// binding a TCP listener to it. Connections from it to this machine's own listeners arrive
/// from that address, not from loopback: what tests of remote callers need.
///
/// Never an address of 198.18.0.0/15: the network-namespace suite (`e2e/netns`) gives the root
/// namespace such addresses for the length of one of its tests, so a test running beside it
/// could pick one and lose it mid-test ("Cannot assign requested address"). The target is
/// TEST-NET-1 for the same reason (a route to 198.18.0.1 picks the suite's address while it
/// exists).
pub fn non_loopback_local_ip() -> Option<std::net::IpAddr> {
    let candidates: [(&str, &str); 2] =
        [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")];
    candidates.iter().find_map(|(bind, target)| {
        let socket = std::net::UdpSocket::bind(bind).ok()?;
        socket.connect(target).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        let usable = !ip.is_loopback()
            && !ip.is_unspecified()
            && !matches!(ip, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local())
            && !is_netns_suite_address(ip)
            && TcpListener::bind((ip, 0)).is_ok();
        usable.then_some(ip)
    })
}

/// Whether `ip` is in 198.18.0.0/15, the range the network-namespace suite assigns.
fn is_netns_suite_address(ip: std::net::IpAddr) -> bool {
    matches!(ip, std::net::IpAddr::V4(v4) if v4.octets()[0] == 198 && v4.octets()[1] & 0xfe == 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_netns_suites_range_is_never_a_remote_caller() {
        for (ip, suite) in [
            ("198.18.0.1", true),
            ("198.19.255.254", true),
            ("198.20.0.1", false),
            ("198.17.0.1", false),
            ("10.0.0.5", false),
            ("2001:db8::1", false),
        ] {
            assert_eq!(is_netns_suite_address(ip.parse().unwrap()), suite, "{ip}");
        }
        if let Some(ip) = non_loopback_local_ip() {
            assert!(!is_netns_suite_address(ip) && !ip.is_loopback(), "{ip}");
        }
    }

    #[test]
    fn pair_is_adjacent_and_free() {
        let p = free_port_pair().unwrap();
        let _a = TcpListener::bind(("127.0.0.1", p)).unwrap();
        let _b = TcpListener::bind(("127.0.0.1", p + 1)).unwrap();
        assert!(free_port().unwrap() > 0);
        let ports = free_ports(50).unwrap();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), 50);
    }

    #[test]
    fn reserved_ports_are_below_the_ephemeral_range_and_held() {
        let (ports, held) = reserve_ports(20).unwrap();
        for p in &ports {
            assert!((PICK_FROM..PICK_BELOW).contains(p), "{p}");
            assert!(
                TcpListener::bind(("127.0.0.1", *p)).is_err(),
                "{p} is held until the listeners are dropped"
            );
        }
        drop(held);
        for p in &ports {
            assert!(
                TcpListener::bind(("127.0.0.1", *p)).is_ok(),
                "{p} is free again"
            );
        }
    }
}
