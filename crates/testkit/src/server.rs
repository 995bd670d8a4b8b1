//! `bao server -dev` processes.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::certs::{CertPair, TLS_SERVER_NAME, TestCa};
use crate::client::{BaoClient, ensure_crypto_provider};
use crate::{READY_TIMEOUT, bao_binary, free_port_pair};

/// The root token of every dev server.
pub const ROOT_TOKEN: &str = "root";

/// An extra TLS listener for [`OpenBao::start_with_tls`].
#[derive(Clone, Debug)]
pub struct TlsListener {
    /// The server certificate (PEM) OpenBao presents.
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
    /// `tls_client_ca_file`: CA(s) for client certificates. OpenBao requests (but does not require)
    /// a client certificate either way, which is all TLS-certificate auth needs.
    pub client_ca_pem: Option<String>,
}

impl TlsListener {
    /// A listener presenting `server`.
    pub fn new(server: &CertPair) -> Self {
        Self {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem.clone(),
            client_ca_pem: None,
        }
    }

    /// A listener presenting a fresh [`TLS_SERVER_NAME`] certificate from `ca`, which also serves
    /// as the client CA.
    pub fn from_test_ca(ca: &TestCa) -> Result<Self> {
        Ok(Self::new(&ca.vault_server_cert()?).with_client_ca(ca.cert_pem()))
    }

    /// Sets `tls_client_ca_file`.
    pub fn with_client_ca(mut self, pem: &str) -> Self {
        self.client_ca_pem = Some(pem.to_owned());
        self
    }
}

/// A running `bao server -dev -dev-root-token-id=root` on 127.0.0.1 (in-memory storage), optionally
/// with an extra TLS listener and a file audit device. Killed and reaped on drop; its temp dir
/// (config, certs, log, audit log) is removed with it.
///
/// Dereferences to the root [`BaoClient`], so `bao.api(..)`, `bao.setup_root_pki(..)`, … work directly.
pub struct OpenBao {
    client: BaoClient,
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    tls: Option<(TlsListener, u16)>,
    audit: bool,
    /// The audit device logs requests and responses unhashed (`log_raw`).
    audit_raw: bool,
    dir: TempDir,
    starts: u32,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao")
            .field("addr", &self.client.addr())
            .field("tls_port", &self.tls.as_ref().map(|t| t.1))
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for OpenBao {
    type Target = BaoClient;
    fn deref(&self) -> &BaoClient {
        &self.client
    }
}

impl OpenBao {
    /// Starts a dev server on a free loopback port pair and waits until `/v1/sys/health` answers.
    pub async fn start() -> Result<Self> {
        Self::launch(None, false, false).await
    }

    /// Like [`OpenBao::start`] plus an extra `listener "tcp"` with TLS (see [`OpenBao::tls_addr`]).
    pub async fn start_with_tls(tls: TlsListener) -> Result<Self> {
        Self::launch(Some(tls), false, false).await
    }

    /// Like [`OpenBao::start`] (or `start_with_tls` when `tls` is set) with a file audit device
    /// (declarative: OpenBao 2.x refuses `sys/audit` over the API); see [`OpenBao::count_audit_requests`].
    pub async fn start_with_audit(tls: Option<TlsListener>) -> Result<Self> {
        Self::launch(tls, true, false).await
    }

    /// Like [`OpenBao::start_with_audit`], the audit device logging secrets unhashed
    /// (`log_raw = true`): a test can then read what Vault returned, such as the private key
    /// an `.../exported` path made, and look for it where it must not be.
    pub async fn start_with_raw_audit() -> Result<Self> {
        Self::launch(None, true, true).await
    }

    async fn launch(tls: Option<TlsListener>, audit: bool, audit_raw: bool) -> Result<Self> {
        ensure_crypto_provider();
        let bin = bao_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("mosaic-bao-")
            .tempdir()
            .context("creating temp dir for OpenBao")?;
        let mut bao = Self {
            client: BaoClient::new("http://127.0.0.1:0", ROOT_TOKEN)?,
            child: None,
            bin,
            port: 0,
            tls: None,
            audit,
            audit_raw,
            dir,
            starts: 0,
        };
        let mut last_err = anyhow!("OpenBao did not start");
        for _ in 0..5 {
            let port = free_port_pair()?;
            let tls_port = match &tls {
                Some(_) => Some(free_port_pair()?),
                None => None,
            };
            if tls_port.is_some_and(|t| t.abs_diff(port) < 2) {
                continue;
            }
            bao.port = port;
            bao.client = BaoClient::new(format!("http://127.0.0.1:{port}"), ROOT_TOKEN)?;
            bao.tls = tls.clone().zip(tls_port);
            match bao.spawn_and_wait().await {
                Ok(()) => return Ok(bao),
                Err(e) => {
                    bao.kill();
                    let clash = port_clash(&bao.log_path());
                    last_err = e;
                    if !clash {
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }

    fn config_file(&self) -> Result<Option<PathBuf>> {
        let mut hcl = String::new();
        if let Some((tls, port)) = &self.tls {
            let cert = self.write_file("tls-cert.pem", &tls.cert_pem)?;
            let key = self.write_file("tls-key.pem", &tls.key_pem)?;
            hcl.push_str(&format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = {cert:?}\n  tls_key_file = {key:?}\n"
            ));
            if let Some(ca) = &tls.client_ca_pem {
                let ca = self.write_file("tls-client-ca.pem", ca)?;
                hcl.push_str(&format!("  tls_client_ca_file = {ca:?}\n"));
            }
            hcl.push_str("}\n");
        }
        if self.audit {
            let path = self.audit_log_path();
            let path = path.to_str().context("temp dir path is not UTF-8")?;
            hcl.push_str(&format!(
                "audit \"file\" \"mosaic-testkit\" {{\n  options {{\n    file_path = {path:?}\n{raw}  }}\n}}\n",
                raw = if self.audit_raw { "    log_raw = \"true\"\n" } else { "" }
            ));
        }
        if hcl.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.write_file_path("extra.hcl", &hcl)?))
    }

    fn write_file(&self, name: &str, contents: &str) -> Result<String> {
        let p = self.write_file_path(name, contents)?;
        p.to_str()
            .map(str::to_owned)
            .context("temp dir path is not UTF-8")
    }

    fn write_file_path(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        self.starts += 1;
        let config = self.config_file()?;
        let log = File::create(self.log_path()).context("creating OpenBao log file")?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg("-dev-no-store-token")
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
        if let Some(config) = config {
            cmd.arg(format!("-config={}", config.display()));
        }
        cmd.env("HOME", self.dir.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "bao server exited early ({status}); log:\n{}",
                    self.log_tail()
                );
            }
            // The banner is printed only after every listener is bound, so a health answer
            // from some other process that grabbed our port is not mistaken for ours.
            let started = std::fs::read_to_string(self.log_path())
                .is_ok_and(|l| l.contains("OpenBao server started!"));
            let healthy = started
                && matches!(self.client.read("sys/health").await, Ok(v) if v["sealed"] == Value::Bool(false));
            let tls_up = self
                .tls
                .as_ref()
                .is_none_or(|(_, p)| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if healthy && tls_up {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "bao server not healthy after {READY_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.client.addr()
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token (`root`).
    pub fn root_token(&self) -> &str {
        ROOT_TOKEN
    }

    /// The root client (same as dereferencing the server).
    pub fn client(&self) -> &BaoClient {
        &self.client
    }

    /// The TLS listener's address `https://127.0.0.1:PORT` (certificate is for [`TLS_SERVER_NAME`],
    /// so clients must override the server name), if started with TLS.
    pub fn tls_addr(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|(_, p)| format!("https://127.0.0.1:{p}"))
    }

    /// The TLS listener's socket address, if started with TLS.
    pub fn tls_socket_addr(&self) -> Option<SocketAddr> {
        self.tls
            .as_ref()
            .map(|(_, p)| SocketAddr::from(([127, 0, 0, 1], *p)))
    }

    /// `https://vault.mosaic.test:PORT`: the TLS address by name (resolve it with
    /// [`OpenBao::tls_client`] or `reqwest::ClientBuilder::resolve`), if started with TLS.
    pub fn tls_named_addr(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|(_, p)| format!("https://{TLS_SERVER_NAME}:{p}"))
    }

    /// A reqwest client for the TLS listener: trusts only `ca_pem`, resolves [`TLS_SERVER_NAME`] to
    /// the listener, and presents `identity` (client certificate) if given. Use it with
    /// [`OpenBao::tls_named_addr`].
    pub fn tls_client(&self, ca_pem: &str, identity: Option<&CertPair>) -> Result<reqwest::Client> {
        ensure_crypto_provider();
        let sock = self
            .tls_socket_addr()
            .context("OpenBao was started without a TLS listener")?;
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .resolve(TLS_SERVER_NAME, sock)
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())?);
        if let Some(id) = identity {
            b = b.identity(reqwest::Identity::from_pem(id.identity_pem().as_bytes())?);
        }
        Ok(b.build()?)
    }

    /// TLS-certificate login (`auth/cert/login`) over the TLS listener; returns the client token.
    pub async fn cert_login(&self, ca_pem: &str, identity: &CertPair) -> Result<String> {
        let base = self
            .tls_named_addr()
            .context("OpenBao was started without a TLS listener")?;
        let resp = self
            .tls_client(ca_pem, Some(identity))?
            .post(format!("{base}/v1/auth/cert/login"))
            .json(&serde_json::json!({}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("cert login answered {status}: {body}");
        }
        crate::client::str_at(&body, "/auth/client_token")
    }

    /// The server's combined stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bao.log")
    }

    /// The last ~4 KiB of the server log (for error messages).
    pub fn log_tail(&self) -> String {
        tail(&self.log_path(), 4096)
    }

    /// The file audit device's log (only written when started with [`OpenBao::start_with_audit`]).
    pub fn audit_log_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// All audit entries so far (one JSON object per request and per response).
    pub fn audit_entries(&self) -> Result<Vec<Value>> {
        if !self.audit {
            bail!("OpenBao was started without an audit device (use OpenBao::start_with_audit)");
        }
        let text = match std::fs::read_to_string(self.audit_log_path()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).context("parsing audit line"))
            .collect()
    }

    /// How many requests to exactly `path` (relative to `/v1/` and to its namespace, e.g.
    /// `kmesh-pki-default/issue/dataplane-proxies`) the audit log has seen.
    pub fn count_audit_requests(&self, path: &str) -> Result<usize> {
        let path = path.trim_start_matches('/');
        let path = path.strip_prefix("v1/").unwrap_or(path);
        Ok(self
            .audit_entries()?
            .iter()
            .filter(|e| e["type"] == "request" && e["request"]["path"] == path)
            .count())
    }

    /// Freezes the server process (SIGSTOP): the kernel still accepts connections on its
    /// listeners, but nothing answers, as with a hung or partitioned Vault. Requests time out
    /// until [`OpenBao::resume`]. Dropping a paused server kills it as usual.
    ///
    /// Returns only once the kernel reports every thread of the server stopped: `kill` returns
    /// as soon as the signal is queued, and a thread still running in that window could answer.
    pub fn pause(&self) -> Result<()> {
        let pid = self.signal("-STOP")?;
        wait_for_threads(pid, true)
    }

    /// Lets a [`OpenBao::pause`]d server run again (SIGCONT); requests queued meanwhile are served.
    pub fn resume(&self) -> Result<()> {
        let pid = self.signal("-CONT")?;
        wait_for_threads(pid, false)
    }

    /// Sends `signal` (a `kill` flag such as `-STOP`) with the `kill` command (no libc/nix here);
    /// returns the pid signalled.
    fn signal(&self, signal: &str) -> Result<u32> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .context("OpenBao is not running")?;
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .with_context(|| format!("running kill {signal} {pid}"))?;
        if !status.success() {
            bail!("kill {signal} {pid} failed ({status})");
        }
        Ok(pid)
    }

    /// Kills the server (the ports stay reserved for [`OpenBao::restart`]). Requests fail until then.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Stops (if running) and starts the server again on the same ports. Dev mode keeps everything
    /// in memory: all mounts, roles, policies and tokens are gone (only the root token `root` is
    /// recreated), so set things up again afterwards.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.kill();
                    let clash = port_clash(&self.log_path());
                    if !clash || Instant::now() > deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// How many times the server process was started (1 after `start`, +1 per restart/clash retry).
    pub fn start_count(&self) -> u32 {
        self.starts
    }

    /// The server's temp dir (config, certs, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn bin(&self) -> &Path {
        &self.bin
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn tail(path: &Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Whether a log says a listener could not bind because the port was taken.
/// How long [`OpenBao::pause`]/[`OpenBao::resume`] wait for the kernel to stop or continue
/// every thread of the server.
const SIGNAL_SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The scheduler state letter of every thread of `pid` (`/proc/<pid>/task/*/stat`: `R`, `S`,
/// `T` for stopped, `Z` for a zombie, ...).
fn thread_states(pid: u32) -> Result<Vec<char>> {
    let tasks = format!("/proc/{pid}/task");
    let mut states = Vec::new();
    for task in std::fs::read_dir(&tasks).with_context(|| format!("listing {tasks}"))? {
        let stat_path = task?.path().join("stat");
        // A thread may exit between listing and reading: skip it.
        let Ok(stat) = std::fs::read_to_string(&stat_path) else {
            continue;
        };
        // "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .with_context(|| format!("unexpected {}: {stat:?}", stat_path.display()))?;
        states.push(state);
    }
    Ok(states)
}

/// Waits until every thread of `pid` is stopped (`stopped`) or none is.
fn wait_for_threads(pid: u32, stopped: bool) -> Result<()> {
    let deadline = Instant::now() + SIGNAL_SETTLE_TIMEOUT;
    loop {
        let states = thread_states(pid)?;
        if states.contains(&'Z') || states.is_empty() {
            bail!("OpenBao (pid {pid}) has exited; it cannot be paused or resumed");
        }
        let settled = if stopped {
            states.iter().all(|s| *s == 'T')
        } else {
            !states.contains(&'T')
        };
        if settled {
            return Ok(());
        }
        if Instant::now() > deadline {
            let want = if stopped { "stopped" } else { "running" };
            bail!(
                "OpenBao (pid {pid}) is not {want} after {SIGNAL_SETTLE_TIMEOUT:?}; thread states: {states:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn port_clash(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|l| l.contains("address already in use"))
}
