//! A 3-member etcd cluster on loopback (Debian's `etcd-server` package provides `etcd`), each
//! member with its own data directory and default durability (WAL fsync per commit), killed on
//! drop; and its v3 HTTP/JSON gateway (`/v3/kv/put`, `/v3/maintenance/status`).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use mosaic_testkit::free_ports;
use serde_json::{Value, json};

use crate::{cluster::SETUP_DEADLINE, error::BenchError, procs::wait_until};

/// A running etcd cluster.
pub struct EtcdCluster {
    /// Client URLs, one per member.
    pub client_urls: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl std::fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("client_urls", &self.client_urls)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// `etcd` on `PATH`, unless `explicit` names one.
pub fn etcd_binary(explicit: Option<&Path>) -> Result<PathBuf, BenchError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            BenchError::Setup(
                "`etcd` was not found on PATH: install Debian's etcd-server package (scripts/bench.sh does) or pass --etcd-bin"
                    .into(),
            )
        })
}

impl EtcdCluster {
    /// Starts `n` members and waits until every one reports healthy.
    pub async fn start(binary: &Path, n: usize) -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("mosaic-bench-etcd-")
            .tempdir()
            .map_err(BenchError::io("creating a temporary directory"))?;
        let ports = free_ports(2 * n)?;
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let client = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
        let initial: Vec<String> = (0..n).map(|i| format!("m{i}={}", peer(i))).collect();
        let mut cluster = Self {
            client_urls: (0..n).map(client).collect(),
            children: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(BenchError::request("building an HTTP client"))?,
            dir,
        };
        for i in 0..n {
            let log = std::fs::File::create(cluster.dir.path().join(format!("m{i}.log")))
                .map_err(BenchError::io("creating an etcd log file"))?;
            let child = Command::new(binary)
                .arg("--name")
                .arg(format!("m{i}"))
                .arg("--data-dir")
                .arg(cluster.dir.path().join(format!("m{i}")))
                .args(["--listen-client-urls", &client(i)])
                .args(["--advertise-client-urls", &client(i)])
                .args(["--listen-peer-urls", &peer(i)])
                .args(["--initial-advertise-peer-urls", &peer(i)])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "mosaic-bench"])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdin(Stdio::null())
                .stdout(
                    log.try_clone()
                        .map_err(BenchError::io("an etcd log file"))?,
                )
                .stderr(log)
                .spawn()
                .map_err(BenchError::io(format!("starting {}", binary.display())))?;
            cluster.children.push(child);
        }
        for url in cluster.client_urls.clone() {
            let http = cluster.http.clone();
            wait_until(
                &format!("etcd member {url} to report healthy"),
                SETUP_DEADLINE,
                Duration::from_millis(100),
                || {
                    let http = http.clone();
                    let url = url.clone();
                    async move {
                        let v: Value = http
                            .get(format!("{url}/health"))
                            .send()
                            .await
                            .ok()?
                            .json()
                            .await
                            .ok()?;
                        (v["health"] == "true").then_some(())
                    }
                },
            )
            .await?;
        }
        Ok(cluster)
    }

    /// The client URL of the current leader.
    pub async fn leader_url(&self) -> Result<String, BenchError> {
        wait_until(
            "an etcd leader",
            SETUP_DEADLINE,
            Duration::from_millis(100),
            || async {
                for url in &self.client_urls {
                    let Ok(resp) = self
                        .http
                        .post(format!("{url}/v3/maintenance/status"))
                        .json(&json!({}))
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let Ok(v) = resp.json::<Value>().await else {
                        continue;
                    };
                    let me = v.pointer("/header/member_id").and_then(Value::as_str);
                    let leader = v.get("leader").and_then(Value::as_str);
                    if me.is_some() && me == leader {
                        return Some(url.clone());
                    }
                }
                None
            },
        )
        .await
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
