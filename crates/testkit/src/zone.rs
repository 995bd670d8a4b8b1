//! Real `mosaic-zone` processes on loopback: configured against a [`crate::GlobalCluster`]'s KDS
//! addresses with its generated CA and a zone token; start, kill -9, restart; reads of the
//! zone's API and readiness; where data planes find it (dataplane server URL and CA). Killed when
//! dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{free_ports, terminate::stop_gracefully};

/// One zone control plane process.
pub struct ZoneProcess {
    /// The zone's name.
    pub name: String,
    /// HTTP API port.
    pub api: u16,
    /// Diagnostics port.
    pub diag: u16,
    /// Dataplane server port.
    pub dp: u16,
    dir: PathBuf,
    binary: PathBuf,
    global_address: String,
    ca: PathBuf,
    child: Option<Child>,
    http: reqwest::Client,
    env: Vec<(String, String)>,
}

// === impl ZoneProcess ===

impl ZoneProcess {
    /// Prepares zone `name` under `root`, dialling `global_address` (one URL or a comma-separated
    /// list), trusting `ca`, with `token` in its token file. Not started.
    pub fn new(
        binary: &Path,
        root: &Path,
        name: &str,
        global_address: &str,
        ca: &Path,
        token: &str,
    ) -> anyhow::Result<Self> {
        crate::ensure_crypto_provider();
        let dir = root.join(format!("zone-{name}"));
        std::fs::create_dir_all(&dir)?;
        let ports = free_ports(3)?;
        let zone = Self {
            name: name.to_string(),
            api: ports[0],
            diag: ports[1],
            dp: ports[2],
            dir,
            binary: binary.to_path_buf(),
            global_address: global_address.to_string(),
            ca: ca.to_path_buf(),
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            env: Vec::new(),
        };
        zone.write_token(token)?;
        Ok(zone)
    }

    /// Sets an environment variable for every start from now on (config overrides such as
    /// `MOSAIC_API__LISTEN`, which win over the generated config file).
    pub fn set_env(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value));
    }

    /// Unsets a variable [`ZoneProcess::set_env`] set.
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Replaces the token file's contents.
    pub fn write_token(&self, token: &str) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("zone-token"), token).context("writing the zone token file")
    }

    fn config(&self) -> String {
        format!(
            "zone = {:?}\n[store]\ndata_dir = {:?}\n[global]\naddress = {:?}\nca_cert = {:?}\ntoken_file = {:?}\n[api]\nlisten = \"127.0.0.1:{}\"\n[dp_server]\nlisten = \"127.0.0.1:{}\"\n[diagnostics]\nlisten = \"127.0.0.1:{}\"\n",
            self.name,
            self.data_dir(),
            self.global_address,
            self.ca,
            self.dir.join("zone-token"),
            self.api,
            self.dp,
            self.diag
        )
    }

    /// Starts (or restarts) the process.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let cfg = self.dir.join("zone.toml");
        std::fs::write(&cfg, self.config())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("zone.log"))?;
        let child = Command::new(&self.binary)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting mosaic-zone")?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops the process gracefully (SIGTERM, as systemd or Kubernetes would: the zone flushes
    /// its store and certificate cache), waiting up to 30 s before SIGKILL. Errors if it had to
    /// be killed.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        match self.child.take() {
            Some(c) => stop_gracefully(c, &format!("zone {}", self.name)),
            None => Ok(()),
        }
    }

    /// SIGKILLs the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id while it runs (for `/proc/<pid>` readings).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The zone's whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("zone.log")).unwrap_or_default()
    }

    /// API base URL.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api)
    }

    /// The zone's `store.data_dir` (`<root>/zone-<name>/data`); it survives [`ZoneProcess::kill`].
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The CA the zone generated for its dataplane server (`<data_dir>/dp-server-ca.pem`, written
    /// before the zone answers `/ready`): what `mosaic-dp --ca-cert-file` trusts.
    pub fn dp_ca_path(&self) -> PathBuf {
        self.data_dir().join("dp-server-ca.pem")
    }

    /// The dataplane (SDS) server's URL for `mosaic-dp --zone`: `https://127.0.0.1:<dp>`.
    pub fn dp_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.dp)
    }

    /// The JSON body of `GET /ready` on the diagnostics port (it reports the KDS status).
    pub async fn ready(&self) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}/ready", self.diag);
        self.http.get(url).send().await.ok()?.json().await.ok()
    }

    /// Waits until `GET /ready` answers.
    pub async fn wait_ready(&self, deadline: Duration) -> anyhow::Result<Value> {
        let start = Instant::now();
        loop {
            if let Some(v) = self.ready().await {
                return Ok(v);
            }
            if start.elapsed() > deadline {
                bail!(
                    "zone {} not ready after {deadline:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path` on the zone API: status and JSON body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.api_url()))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Waits until `check` holds for the zone's `GET path` body.
    pub async fn wait_for(
        &self,
        path: &str,
        what: &str,
        deadline: Duration,
        mut check: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let start = Instant::now();
        loop {
            if let Ok((200, body)) = self.get(path).await
                && check(&body)
            {
                return Ok(body);
            }
            if start.elapsed() > deadline {
                bail!(
                    "zone {}: {what} did not happen within {deadline:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ZoneProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
