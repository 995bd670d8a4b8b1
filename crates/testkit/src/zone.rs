//! Real `mosaic-zone` processes, on loopback with free ports or on a [`Host`] (an address and a
//! command prefix such as `ip netns exec`) on Kuma's ports: configured against a [`crate::GlobalCluster`]'s KDS
//! addresses with its generated CA and a zone token; start, kill -9, restart; reads of the
//! zone's API and readiness; where data planes find it (dataplane server URL and CA). Killed when
//! dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mosaic_zone::config::ZoneConfig;
use serde_json::Value;

use crate::{Host, reserve_ports, terminate::stop_gracefully};

/// The ports of a zone on its own [`Host`] (Kuma's): API, diagnostics, dataplane server, HTTPS
/// API.
const HOST_PORTS: [u16; 4] = [5681, 5680, 5678, 5682];

/// Changes the harness makes to the zone's generated config.
type ConfigEdit = Box<dyn Fn(&mut ZoneConfig) + Send + Sync>;

/// One zone control plane process.
pub struct ZoneProcess {
    /// The zone's name.
    pub name: String,
    /// Where it runs: the address it binds, and its command prefix.
    pub host: Host,
    /// HTTP API port.
    pub api: u16,
    /// Diagnostics port.
    pub diag: u16,
    /// Dataplane server port.
    pub dp: u16,
    /// HTTPS API port (`api.https_listen`).
    pub https: u16,
    dir: PathBuf,
    binary: PathBuf,
    global_address: String,
    ca: PathBuf,
    child: Option<Child>,
    http: reqwest::Client,
    env: Vec<(String, String)>,
    edit: Option<ConfigEdit>,
    /// Listeners holding the loopback ports until the first start.
    reserved: Vec<std::net::TcpListener>,
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
        let (ports, reserved) = reserve_ports(4)?;
        let ports = [ports[0], ports[1], ports[2], ports[3]];
        let global = (global_address, ca, token);
        let mut zone = Self::prepare(binary, root, name, global, Host::loopback(), ports)?;
        zone.reserved = reserved;
        Ok(zone)
    }

    /// Like [`ZoneProcess::new`], on `host` and Kuma's ports of its address (API 5681,
    /// diagnostics 5680, dataplane server 5678, HTTPS API 5682).
    pub fn on_host(
        binary: &Path,
        root: &Path,
        name: &str,
        (global_address, ca, token): (&str, &Path, &str),
        host: Host,
    ) -> anyhow::Result<Self> {
        let global = (global_address, ca, token);
        Self::prepare(binary, root, name, global, host, HOST_PORTS)
    }

    /// `global`: the global's address, its CA and the zone token; `ports`: API, diagnostics,
    /// dataplane server, HTTPS API.
    fn prepare(
        binary: &Path,
        root: &Path,
        name: &str,
        (global_address, ca, token): (&str, &Path, &str),
        host: Host,
        [api, diag, dp, https]: [u16; 4],
    ) -> anyhow::Result<Self> {
        crate::ensure_crypto_provider();
        let dir = root.join(format!("zone-{name}"));
        std::fs::create_dir_all(&dir)?;
        let zone = Self {
            name: name.to_string(),
            host,
            api,
            diag,
            dp,
            https,
            dir,
            binary: binary.to_path_buf(),
            global_address: global_address.to_string(),
            ca: ca.to_path_buf(),
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            env: Vec::new(),
            edit: None,
            reserved: Vec::new(),
        };
        zone.write_token(token)?;
        Ok(zone)
    }

    /// Has every later start apply `edit` to the generated config (e.g. an
    /// `api.admin_token_file`).
    pub fn edit_config(&mut self, edit: impl Fn(&mut ZoneConfig) + Send + Sync + 'static) {
        self.edit = Some(Box::new(edit));
    }

    /// Replaces the HTTP client of the API and diagnostics calls (e.g. one sending an admin
    /// token by default).
    pub fn set_http(&mut self, http: reqwest::Client) {
        self.http = http;
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

    /// The zone's `zone.toml`: the [`ZoneConfig`] of its name, ports, data directory, globals,
    /// CA and token file, serialized.
    fn config(&self) -> anyhow::Result<String> {
        let mut c = ZoneConfig {
            zone: self.name.parse().map_err(anyhow::Error::msg)?,
            ..ZoneConfig::default()
        };
        c.store.data_dir = self.data_dir();
        c.global.address = self.global_address.parse().map_err(anyhow::Error::msg)?;
        c.global.ca_cert = Some(self.ca.clone());
        c.global.token_file = Some(self.dir.join("zone-token"));
        c.api.listen = self.host.addr(self.api);
        c.api.https_listen = Some(self.host.addr(self.https));
        c.dp_server.listen = self.host.addr(self.dp);
        c.diagnostics.listen = self.host.addr(self.diag);
        if let Some(edit) = &self.edit {
            edit(&mut c);
        }
        toml::to_string(&c).context("serializing the zone's config")
    }

    /// Starts (or restarts) the process.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let cfg = self.dir.join("zone.toml");
        std::fs::write(&cfg, self.config()?)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        // The ports were held since `new`: free them for the zone now.
        self.reserved.clear();
        let child = self
            .host
            .command(&self.binary)
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
            Some(c) => stop_gracefully(c, &format!("zone {}", self.name)).map(|_| ()),
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

    /// Where the zone logs (stdout and stderr, appended across starts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("zone.log")
    }

    /// The zone's directory (`<root>/zone-<name>`: config, token file, data directory, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The zone's whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// API base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.host.addr(self.api))
    }

    /// HTTPS API base URL (`https://<ip>:<https>`).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.host.addr(self.https))
    }

    /// The CA the zone generated for its HTTPS API (`<data_dir>/api-server-ca.pem`).
    pub fn api_ca_path(&self) -> PathBuf {
        self.data_dir().join("api-server-ca.pem")
    }

    /// Diagnostics base URL (`/metrics`, `/ready`, `/healthy`).
    pub fn diag_url(&self) -> String {
        format!("http://{}", self.host.addr(self.diag))
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

    /// The dataplane (SDS) server's URL for `mosaic-dp --zone`: `https://<ip>:<dp>`.
    pub fn dp_url(&self) -> String {
        format!("https://{}", self.host.addr(self.dp))
    }

    /// The JSON body of `GET /ready` on the diagnostics port (it reports the KDS status).
    pub async fn ready(&self) -> Option<Value> {
        let url = format!("{}/ready", self.diag_url());
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
