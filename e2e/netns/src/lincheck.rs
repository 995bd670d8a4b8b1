//! Linearizability under faults (issue #16): three globals alone in their namespaces (no Vault,
//! no zones), the lincheck workload running against them from the host while a fault is applied,
//! then the history checked. Each run prints its operation count, how many were indeterminate,
//! and the verdicts; a failing history is written into the run's directory (kept on failure).

use std::{net::Ipv4Addr, time::Duration};

use mosaic_lincheck::{History, Verdict, Workload, WorkloadOptions, check, check_monotonic};
use mosaic_testkit::{GlobalCluster, Host, workspace_binary};

use crate::{
    mosaic::{ADMIN_TOKEN, WAIT, admin_headers},
    net::{Net, write_file},
};

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
    http: reqwest::Client,
    started: std::time::Instant,
}

impl Globals {
    /// Starts three globals (snapshots every `snapshot_after_logs` entries when given) and waits
    /// for a leader.
    pub async fn start(scenario: &str, snapshot_after_logs: Option<u64>) -> anyhow::Result<Self> {
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
        let token = net.dir().join("admin-token");
        write_file(&token, ADMIN_TOKEN)?;
        cluster.edit_config(move |_, c| {
            c.api.admin_token_file = Some(token.clone());
            if let Some(n) = snapshot_after_logs {
                c.raft.snapshot_after_logs = n;
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
