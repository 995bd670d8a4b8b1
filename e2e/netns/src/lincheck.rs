//! Linearizability under faults (issue #16): three globals alone in their namespaces (no Vault,
//! no zones), the lincheck workload running against them from the host while a fault is applied,
//! then the history checked. Each run prints its operation count, how many were indeterminate,
//! and the verdicts; a failing history is written into the run's directory (kept on failure).

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use mosaic_lincheck::{History, Verdict, Workload, WorkloadOptions, check, check_monotonic};
use mosaic_testkit::{GlobalCluster, Host, workspace_binary};

use crate::{
    mosaic::{ADMIN_TOKEN, WAIT, admin_headers},
    net::{Net, write_file},
    relay_node::RelayNode,
};

/// How the replicas reach each other's raft listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftPath {
    /// Straight to the peer's address.
    Direct,
    /// Through a delaying relay (`mosaic-netns-relay`, node `.31`, port 5689 + i to replica i),
    /// for kernels without `tc netem`: every replica's `raft.peers` and `raft.advertise` name
    /// the relay, so all raft traffic crosses it.
    Relay,
}

/// The first of the relay's ports (replica i: this + i).
const RELAY_RAFT_PORT: u16 = 5689;

/// Three globals on a [`Net`].
pub struct Globals {
    /// The namespaces.
    pub net: Net,
    /// The replicas.
    pub cluster: GlobalCluster,
    /// Node names (`global-1` ..).
    pub names: Vec<String>,
    /// Node addresses.
    pub ips: Vec<Ipv4Addr>,
    /// The raft relay, with [`RaftPath::Relay`].
    pub relay: Option<RelayNode>,
    http: reqwest::Client,
    started: std::time::Instant,
}

impl Globals {
    /// Starts three globals (snapshots every `snapshot_after_logs` entries when given) and waits
    /// for a leader.
    pub async fn start(scenario: &str, snapshot_after_logs: Option<u64>) -> anyhow::Result<Self> {
        Self::start_with(scenario, snapshot_after_logs, RaftPath::Direct).await
    }

    /// [`Globals::start`] with raft traffic over `path`.
    pub async fn start_with(
        scenario: &str,
        snapshot_after_logs: Option<u64>,
        path: RaftPath,
    ) -> anyhow::Result<Self> {
        mosaic_testkit::ensure_crypto_provider();
        let started = std::time::Instant::now();
        let binary = workspace_binary("mosaic-global")?;
        let mut net = Net::new(scenario)?;
        let mut names = Vec::new();
        let mut ips = Vec::new();
        let mut hosts = Vec::new();
        for i in 0..3u8 {
            let name = format!("global-{}", i + 1);
            let ip = net.add_node(&name, 11 + i)?.ip;
            hosts.push(Host::new(ip, net.command_prefix(&name)?));
            names.push(name);
            ips.push(ip);
        }
        let mut cluster = GlobalCluster::on_hosts(&binary, &net.dir().join("globals"), hosts)?;
        for (i, name) in names.iter().enumerate() {
            net.add_log(name, &cluster.log_path(i));
        }
        let relay = match path {
            RaftPath::Direct => None,
            RaftPath::Relay => {
                let mut routes = Vec::new();
                for i in 0..3 {
                    let upstream: SocketAddr = cluster.raft_addr(i).parse()?;
                    routes.push((RELAY_RAFT_PORT + i as u16, upstream));
                }
                let bin = workspace_binary("mosaic-netns-relay")?;
                Some(RelayNode::start(&mut net, "raft-relay", 31, &bin, &routes)?)
            }
        };
        let relay_ip = relay.as_ref().map(|r| r.ip);
        let token = net.dir().join("admin-token");
        write_file(&token, ADMIN_TOKEN)?;
        cluster.edit_config(move |i, c| {
            c.api.admin_token_file = Some(token.clone());
            if let Some(n) = snapshot_after_logs {
                c.raft.snapshot_after_logs = n;
            }
            if let Some(relay) = relay_ip {
                // testkit lists the peers in replica order.
                for (j, peer) in c.raft.peers.iter_mut().enumerate() {
                    peer.addr = format!("{relay}:{}", RELAY_RAFT_PORT + j as u16);
                }
                c.raft.advertise = format!("{relay}:{}", RELAY_RAFT_PORT + i as u16);
            }
        });
        cluster.set_env("RUST_LOG", "info,openraft=warn");
        let http = reqwest::Client::builder()
            .default_headers(admin_headers()?)
            .build()?;
        cluster.set_http(http.clone());
        cluster.start_all()?;
        for i in 0..3 {
            cluster.wait_ready(i, WAIT).await?;
        }
        cluster.wait_leader(WAIT).await?;
        let g = Self {
            net,
            cluster,
            names,
            ips,
            relay,
            http,
            started,
        };
        g.say(&format!(
            "3 globals up in {:.1}s at {}",
            g.started.elapsed().as_secs_f64(),
            g.ips
                .iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ));
        Ok(g)
    }

    /// Sets the raft relay's one-way delay (each direction) and waits until it applies it; an
    /// error without [`RaftPath::Relay`].
    pub async fn set_relay_delay(&self, delay: Duration) -> anyhow::Result<()> {
        let relay = self
            .relay
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("these globals have no raft relay"))?;
        relay.set_delay(delay)?;
        crate::mosaic::poll("the raft relay applies the delay", WAIT, || {
            let ok = relay.applies(&self.net, delay);
            async move { ok.then_some(()) }
        })
        .await
    }

    /// Prints `netns[<scenario>]: <line>`.
    pub fn say(&self, line: &str) {
        println!("netns[{}]: {line}", self.net.scenario());
    }

    /// The other replicas' addresses.
    pub fn others(&self, i: usize) -> Vec<Ipv4Addr> {
        (0..3).filter(|j| *j != i).map(|j| self.ips[j]).collect()
    }

    /// Sends `signal` (`STOP`, `CONT`) to replica `i`'s process.
    pub fn signal(&self, i: usize, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .cluster
            .pid(i)
            .ok_or_else(|| anyhow::anyhow!("{} is not running", self.names[i]))?;
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// A workload over the three replicas' APIs.
    pub fn workload(&self, duration: Duration) -> Workload {
        Workload::new(
            self.http.clone(),
            (0..3).map(|i| self.cluster.api(i)).collect(),
            WorkloadOptions {
                duration,
                timeout: Duration::from_secs(4),
                ..WorkloadOptions::default()
            },
        )
    }

    /// Checks `history` (restarts: replica and workload time), prints the counts and verdicts,
    /// and on a violation writes the history into the run's directory and fails naming it.
    pub fn judge(&mut self, history: &History, restarts: &[(usize, u64)]) -> anyhow::Result<()> {
        let verdict = check(history);
        let local = check_monotonic(history, restarts);
        let line = format!(
            "lincheck: {} operations, {} indeterminate: {verdict}; default reads: {}",
            history.ops.len(),
            history.indeterminate(),
            match &local {
                Ok(n) => format!("{n} checked, never older than the replica already answered"),
                Err(e) => format!("VIOLATION: {e}"),
            }
        );
        self.say(&line);
        if !matches!(verdict, Verdict::Linearizable) || local.is_err() {
            let path = self.net.dir().join("history.txt");
            history.write_to(&path, &line)?;
            anyhow::bail!("{line}\nthe history is in {}", path.display());
        }
        anyhow::ensure!(
            history.ops.len() >= 50,
            "only {} operations ran",
            history.ops.len()
        );
        Ok(())
    }

    /// Marks the run as passed.
    pub fn pass(&mut self) {
        self.say(&format!(
            "passed in {:.1}s",
            self.started.elapsed().as_secs_f64()
        ));
        self.net.pass();
    }
}
