//! Real `mosaic-global` processes: start, stop (SIGTERM), kill -9, restart, wipe; and a small HTTP
//! client for their APIs. On loopback with free ports ([`GlobalCluster::new`]), or one replica per
//! [`Host`] (an address and a command prefix such as `ip netns exec`) on Kuma's ports
//! ([`GlobalCluster::on_hosts`]). Every process is killed when the cluster is dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mosaic_global::config::{DEFAULT_SNAPSHOT_AFTER_LOGS, GlobalConfig, RaftPeer};
use serde_json::Value;

/// One replica's host, ports and files.
pub struct Replica {
    /// raft.node_id.
    pub id: u64,
    /// Where it runs: the address it binds and advertises, and its command prefix.
    pub host: Host,
    /// HTTP API port.
    pub api: u16,
    /// Raft RPC port.
    pub raft: u16,
    /// Diagnostics port.
    pub diag: u16,
    /// KDS port.
    pub kds: u16,
    /// HTTPS API port (`api.https_listen`).
    pub https: u16,
    /// `raft.join`: added to a running cluster ([`GlobalCluster::add_replica`]).
    pub join: bool,
    dir: PathBuf,
    child: Option<Child>,
    /// Listeners holding its loopback ports until its first start (see [`reserve_ports`]).
    reserved: Vec<std::net::TcpListener>,
}

/// Changes the harness makes to a replica's generated config (replica index, config).
type ConfigEdit = Box<dyn Fn(usize, &mut GlobalConfig) + Send + Sync>;

/// A set of replicas of one global control plane.
pub struct GlobalCluster {
    /// The replicas, index = id - 1.
    pub replicas: Vec<Replica>,
    /// A temporary directory removed on drop, or none when the caller gave the directory.
    _tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    http: reqwest::Client,
    snapshot_after_logs: u64,
    binary: PathBuf,
    env: Vec<(String, String)>,
    edit: Option<ConfigEdit>,
}

use crate::{Host, ZoneProcess, reserve_ports, terminate::stop_gracefully};

/// The ports of a replica on its own [`Host`] (Kuma's, and raft's 5689): API, raft,
/// diagnostics, KDS, HTTPS API.
const HOST_PORTS: [u16; 5] = [5681, 5689, 5680, 5685, 5682];

// === impl GlobalCluster ===

impl GlobalCluster {
    /// Prepares `n` replicas of the `mosaic-global` at `binary` (not started). `n == 1` runs
    /// single-node (no peers).
    pub fn new(binary: &Path, n: usize, snapshot_after_logs: u64) -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("mosaic-global-")
            .tempdir()?;
        let (ports, mut reserved) = reserve_ports(5 * n)?;
        let hosts = ports
            .chunks(5)
            .map(|p| (Host::loopback(), [p[0], p[1], p[2], p[3], p[4]]))
            .collect();
        let mut cluster = Self::prepare(binary, tmp.path(), hosts, snapshot_after_logs)?;
        for r in cluster.replicas.iter_mut().rev() {
            r.reserved = reserved.split_off(reserved.len().saturating_sub(5));
        }
        cluster._tmp = Some(tmp);
        Ok(cluster)
    }

    /// Prepares one replica per host (not started), each on Kuma's ports (API 5681, HTTPS API
    /// 5682, diagnostics 5680, KDS 5685; raft 5689) of its own address, with its files under `dir` (kept after
    /// the cluster is dropped). Snapshots every `raft.snapshot_after_logs` default entries.
    pub fn on_hosts(binary: &Path, dir: &Path, hosts: Vec<Host>) -> anyhow::Result<Self> {
        let hosts = hosts.into_iter().map(|h| (h, HOST_PORTS)).collect();
        Self::prepare(binary, dir, hosts, DEFAULT_SNAPSHOT_AFTER_LOGS)
    }

    /// `hosts`: each replica's host and ports (API, raft, diagnostics, KDS, HTTPS API).
    fn prepare(
        binary: &Path,
        dir: &Path,
        hosts: Vec<(Host, [u16; 5])>,
        snapshot_after_logs: u64,
    ) -> anyhow::Result<Self> {
        crate::ensure_crypto_provider();
        let replicas = hosts
            .into_iter()
            .enumerate()
            .map(|(i, (host, [api, raft, diag, kds, https]))| Replica {
                id: i as u64 + 1,
                host,
                api,
                raft,
                diag,
                kds,
                https,
                join: false,
                dir: dir.join(format!("replica-{}", i + 1)),
                child: None,
                reserved: Vec::new(),
            })
            .collect();
        Ok(Self {
            replicas,
            _tmp: None,
            dir: dir.to_path_buf(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            snapshot_after_logs,
            binary: binary.to_path_buf(),
            env: Vec::new(),
            edit: None,
        })
    }

    /// Has every later start apply `edit` to replica `i`'s generated config (e.g. an
    /// `api.admin_token_file`, a configured KDS certificate).
    pub fn edit_config(&mut self, edit: impl Fn(usize, &mut GlobalConfig) + Send + Sync + 'static) {
        self.edit = Some(Box::new(edit));
    }

    /// Prepares one more loopback replica (not started) with the next node id, free ports and
    /// `raft.join = true`, as an operator adds a replica to a running cluster (or replaces a
    /// dead one): its `raft.peers` lists every replica so far. Returns its index.
    pub fn add_replica(&mut self) -> anyhow::Result<usize> {
        let (p, reserved) = reserve_ports(5)?;
        let i = self.replicas.len();
        let id = self.replicas.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        self.replicas.push(Replica {
            id,
            host: Host::loopback(),
            api: p[0],
            raft: p[1],
            diag: p[2],
            kds: p[3],
            https: p[4],
            join: true,
            dir: self.dir.join(format!("replica-{id}")),
            child: None,
            reserved,
        });
        Ok(i)
    }

    /// Every item name of the list at `path` on replica `i` (a path with `?size=...`), following
    /// the `next` links page by page.
    pub async fn all_names(&self, i: usize, path: &str) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        let mut path = path.to_string();
        loop {
            let (status, body) = self.get(i, &path).await?;
            anyhow::ensure!(
                status == 200,
                "GET {path} on replica {}: {status} {body}",
                i + 1
            );
            names.extend(Self::names(&body));
            match body["next"].as_str() {
                Some(next) if !next.is_empty() => {
                    path = next.trim_start_matches(&self.api(i)).to_string();
                }
                _ => return Ok(names),
            }
        }
    }

    /// Replica `i`'s raft address (`raft.advertise`).
    pub fn raft_addr(&self, i: usize) -> String {
        let r = &self.replicas[i];
        r.host.addr(r.raft).to_string()
    }

    /// Replaces the HTTP client of the API and diagnostics calls (e.g. one sending an admin
    /// token by default).
    pub fn set_http(&mut self, http: reqwest::Client) {
        self.http = http;
    }

    /// Replica `i`'s `global.toml`: the [`GlobalConfig`] of its ports, data directory, peers and
    /// (with several replicas) the cluster CA, serialized.
    fn config(&self, i: usize) -> anyhow::Result<String> {
        let r = &self.replicas[i];
        let mut c = GlobalConfig::default();
        c.store.data_dir = r.dir.join("data");
        c.raft.node_id = r.id;
        c.raft.listen = r.host.addr(r.raft);
        c.raft.advertise = r.host.addr(r.raft).to_string();
        c.raft.snapshot_after_logs = self.snapshot_after_logs;
        c.raft.join = r.join;
        // Several replicas share the cluster CA made by `mosaic-global generate raft-ca` (as an
        // operator would); a single node generates its own into its data directory.
        if self.replicas.len() > 1 {
            c.raft.peers = self
                .replicas
                .iter()
                .map(|p| RaftPeer {
                    id: p.id,
                    addr: p.host.addr(p.raft).to_string(),
                })
                .collect();
            c.raft.ca_cert = Some(self.raft_ca_dir().join("raft-ca.pem"));
            c.raft.ca_key = Some(self.raft_ca_dir().join("raft-ca-key.pem"));
        }
        c.api.listen = r.host.addr(r.api);
        c.api.https_listen = Some(r.host.addr(r.https));
        c.kds.listen = r.host.addr(r.kds);
        c.diagnostics.listen = r.host.addr(r.diag);
        if let Some(edit) = &self.edit {
            edit(i, &mut c);
        }
        toml::to_string(&c).context("serializing the global's config")
    }

    /// Sets an environment variable for every replica started from now on (config overrides such
    /// as `MOSAIC_API__LISTEN`, which win over the generated config file).
    pub fn set_env(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value));
    }

    /// Unsets a variable [`GlobalCluster::set_env`] set.
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// The directory holding every replica's config, data and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the cluster CA of a multi-replica cluster lives (`raft-ca.pem`, `raft-ca-key.pem`).
    pub fn raft_ca_dir(&self) -> PathBuf {
        self.dir.join("raft-ca")
    }

    /// Makes the cluster CA with `mosaic-global generate raft-ca`, once.
    fn ensure_raft_ca(&self) -> anyhow::Result<()> {
        if self.replicas.len() == 1 || self.raft_ca_dir().join("raft-ca.pem").exists() {
            return Ok(());
        }
        let out = std::process::Command::new(&self.binary)
            .args(["generate", "raft-ca", "--out"])
            .arg(self.raft_ca_dir())
            .stdin(Stdio::null())
            .output()
            .context("running mosaic-global generate raft-ca")?;
        if !out.status.success() {
            bail!(
                "mosaic-global generate raft-ca failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts replica `i` (again).
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        self.ensure_raft_ca()?;
        let config = self.config(i)?;
        let binary = self.binary.clone();
        let r = &mut self.replicas[i];
        std::fs::create_dir_all(&r.dir)?;
        let cfg = r.dir.join("global.toml");
        std::fs::write(&cfg, config)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(r.dir.join("global.log"))?;
        // The ports were held since the replica was prepared: free them for it now.
        r.reserved.clear();
        let child = r
            .host
            .command(&binary)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info,openraft=warn")
            .env_remove("MOSAIC_API")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting mosaic-global")?;
        r.child = Some(child);
        Ok(())
    }

    /// Starts every replica.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.replicas.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// SIGKILLs replica `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.replicas[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops replica `i` gracefully (SIGTERM, as systemd or Kubernetes would), waiting up to 30 s
    /// before SIGKILL; returns how it exited (`None`: it was not running). Errors if the process
    /// had to be killed.
    pub fn stop(&mut self, i: usize) -> anyhow::Result<Option<ExitStatus>> {
        match self.replicas[i].child.take() {
            Some(c) => stop_gracefully(c, &format!("replica {}", i + 1)).map(Some),
            None => Ok(None),
        }
    }

    /// Replica `i`'s data directory (`store.data_dir`).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.replicas[i].dir.join("data")
    }

    /// Kills replica `i` and deletes its data directory.
    pub fn wipe(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        let data = self.replicas[i].dir.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        Ok(())
    }

    /// Size in bytes of replica `i`'s data directory.
    pub fn data_size(&self, i: usize) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.replicas[i].dir.join("data"))
    }

    /// Where replica `i` logs (stdout and stderr, appended across starts).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.replicas[i].dir.join("global.log")
    }

    /// Replica `i`'s directory (its config, data directory and log).
    pub fn replica_dir(&self, i: usize) -> &Path {
        &self.replicas[i].dir
    }

    /// Replica `i`'s whole log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.replicas[i].dir.join("global.log")).unwrap_or_default()
    }

    /// The last lines of replica `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let text =
            std::fs::read_to_string(self.replicas[i].dir.join("global.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// HTTPS API base URL of replica `i` (`https://<ip>:<https>`).
    pub fn https_url(&self, i: usize) -> String {
        let r = &self.replicas[i];
        format!("https://{}", r.host.addr(r.https))
    }

    /// The CA replica `i` generated for its HTTPS API (`<data_dir>/api-server-ca.pem`, written
    /// before it serves): what a client (`mosaicctl --ca-cert-file`) trusts.
    pub fn api_ca_path(&self, i: usize) -> PathBuf {
        self.replicas[i].dir.join("data").join("api-server-ca.pem")
    }

    /// KDS address of replica `i` (`grpcs://<ip>:<kds>`).
    pub fn kds_url(&self, i: usize) -> String {
        let r = &self.replicas[i];
        format!("grpcs://{}", r.host.addr(r.kds))
    }

    /// The KDS CA a replica generated into its data directory (the same CA on every replica).
    pub fn kds_ca_path(&self, i: usize) -> PathBuf {
        self.replicas[i].dir.join("data").join("kds-ca.pem")
    }

    /// A started zone `name` (the `mosaic-zone` at `binary`) in this cluster's directory, given
    /// the KDS addresses of `replicas` in that order, trusting replica 0's KDS CA, with `token`;
    /// waits at most `deadline` for it to be ready.
    pub async fn start_zone(
        &self,
        binary: &Path,
        name: &str,
        replicas: &[usize],
        token: &str,
        deadline: Duration,
    ) -> anyhow::Result<ZoneProcess> {
        let addresses: Vec<String> = replicas.iter().map(|i| self.kds_url(*i)).collect();
        let ca = self.kds_ca_path(0);
        let mut zone =
            ZoneProcess::new(binary, self.dir(), name, &addresses.join(","), &ca, token)?;
        zone.start()?;
        zone.wait_ready(deadline).await?;
        Ok(zone)
    }

    /// Whether replica `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.replicas[i].child.is_some()
    }

    /// How replica `i` exited, if it exited by itself (a crash, a stop on a fault); the replica
    /// then counts as not running, and [`GlobalCluster::start`] starts it again.
    pub fn exited(&mut self, i: usize) -> anyhow::Result<Option<ExitStatus>> {
        let Some(child) = self.replicas[i].child.as_mut() else {
            return Ok(None);
        };
        match child.try_wait()? {
            Some(status) => {
                self.replicas[i].child = None;
                Ok(Some(status))
            }
            None => Ok(None),
        }
    }

    /// The process id of replica `i` while it runs (for `/proc/<pid>` readings).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.replicas[i].child.as_ref().map(Child::id)
    }

    /// `POST` a JSON body to replica `i`; returns the status and the body as text.
    pub async fn post(&self, i: usize, path: &str, body: &Value) -> anyhow::Result<(u16, String)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.api(i)))
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    /// API base URL of replica `i`.
    pub fn api(&self, i: usize) -> String {
        let r = &self.replicas[i];
        format!("http://{}", r.host.addr(r.api))
    }

    /// Diagnostics base URL of replica `i` (`/metrics`, `/ready`, `/healthy`).
    pub fn diag_url(&self, i: usize) -> String {
        let r = &self.replicas[i];
        format!("http://{}", r.host.addr(r.diag))
    }

    /// The failpoints of replica `i` (its diagnostics listener's `/failpoints`).
    pub fn failpoints(&self, i: usize) -> crate::Failpoints {
        crate::Failpoints::new(self.diag_url(i))
    }

    /// Waits until replica `i` answers `GET /ready` with 200.
    pub async fn wait_ready(&self, i: usize, deadline: Duration) -> anyhow::Result<()> {
        let url = format!("{}/ready", self.diag_url(i));
        let start = Instant::now();
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if start.elapsed() > deadline {
                bail!(
                    "replica {} not ready after {deadline:?}; log:\n{}",
                    i + 1,
                    self.log_tail(i)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Index of the replica that reports itself leader (`mosaic_raft_is_leader 1`), if any.
    pub async fn leader(&self) -> Option<usize> {
        for (i, r) in self.replicas.iter().enumerate() {
            if r.child.is_none() {
                continue;
            }
            let url = format!("{}/metrics", self.diag_url(i));
            if let Ok(resp) = self.http.get(&url).send().await
                && let Ok(text) = resp.text().await
                && text.lines().any(|l| l.trim() == "mosaic_raft_is_leader 1")
            {
                return Some(i);
            }
        }
        None
    }

    /// Waits for a leader among the running replicas.
    pub async fn wait_leader(&self, deadline: Duration) -> anyhow::Result<usize> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.leader().await {
                return Ok(i);
            }
            if start.elapsed() > deadline {
                bail!("no leader after {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `PUT` YAML to replica `i`; returns the status and body.
    pub async fn put(&self, i: usize, path: &str, yaml: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .put(format!("{}{path}", self.api(i)))
            .header("content-type", "application/yaml")
            .body(yaml.to_string())
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// `GET` from replica `i`; returns the status and body.
    pub async fn get(&self, i: usize, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.api(i)))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Waits until `check` holds for replica `i`'s `GET path` body (answered 200); the error
    /// names `what` and shows the last answer and the replica's log tail.
    pub async fn wait_for(
        &self,
        i: usize,
        path: &str,
        what: &str,
        deadline: Duration,
        mut check: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let start = Instant::now();
        loop {
            let last = match self.get(i, path).await {
                Ok((200, body)) if check(&body) => return Ok(body),
                Ok(answer) => answer,
                Err(e) => (0, Value::String(e.to_string())),
            };
            if start.elapsed() > deadline {
                bail!(
                    "replica {}: {what} did not happen within {deadline:?}; last answer to GET {path}: {last:?}; log:\n{}",
                    i + 1,
                    self.log_tail(i)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `DELETE` on replica `i`.
    pub async fn delete(&self, i: usize, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .delete(format!("{}{path}", self.api(i)))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Names in a list response.
    pub fn names(list: &Value) -> Vec<String> {
        list["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for GlobalCluster {
    fn drop(&mut self) {
        for i in 0..self.replicas.len() {
            self.kill(i);
        }
    }
}
