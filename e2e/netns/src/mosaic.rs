//! A Mosaic deployment on a [`Net`]: OpenBao (seed-000 set-up, issue mode, file audit device),
//! three `mosaic-global` replicas, two `mosaic-zone`s and `mosaic-dp` agents, each in its own
//! namespace; plus everything the scenarios read back (APIs, metrics, logs, certificate files,
//! Vault's audit log).
//!
//! Addresses in the run's /24 (`198.18.X.0/24`): `.1` the test, `.10` OpenBao (`:8200`), `.11`
//! `.12` `.13` the globals (Kuma's ports: API 5681, KDS 5685, diagnostics 5680, HTTPS API 5682, raft 5689),
//! `.21` `zone-a` and `.22` `zone-b` (API 5681, SDS 5678, diagnostics 5680), `.30` the KDS relay
//! when there is one, `.100` and up the agents.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitStatus,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use mosaic_testkit::{
    BaoClient, GlobalCluster, Host, ROOT_TOKEN, SEED_MESH, SEED_MOUNT, SEED_POLICY_HCL,
    SEED_POLICY_NAME, SEED_ROLE, TestCa, TokenSpec, ZoneProcess, ensure_crypto_provider,
    workspace_binary,
};
use serde_json::{Value, json};

use crate::{
    net::{Net, read_text, write_file},
    relay_node::RelayNode,
};

/// Generous deadline for anything to become ready or converge (CI machines are slow).
pub const WAIT: Duration = Duration::from_secs(120);
/// The Vault issue path of the seed set-up (what the audit log is searched for).
pub const ISSUE_PATH: &str = "kmesh-pki-default/issue/dataplane-proxies";
/// The mesh and backend the scenarios use.
pub const MESH: &str = SEED_MESH;
/// The Mesh's vault backend.
pub const BACKEND: &str = "vault-1";
/// The service every agent's dataplane belongs to.
pub const SERVICE: &str = "backend";

const BAO_PORT: u16 = 8200;
/// The admin token of every global's and zone's API (`api.admin_token_file`): their APIs listen on
/// namespace addresses, not loopback, so every call needs it. The namespaces are private to the
/// run, so a fixed value is enough.
pub(crate) const ADMIN_TOKEN: &str = "mosaic-netns-admin-token";
/// The globals' KDS port (testkit's `GlobalCluster::on_hosts` runs them on Kuma's ports).
const KDS_PORT: u16 = 5685;

/// How zones reach the globals' KDS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KdsPath {
    /// Zones dial the globals' addresses (the generated KDS CA).
    #[default]
    Direct,
    /// Zones dial a delaying relay (`mosaic-netns-relay`, node `.30`) that forwards to the
    /// globals; the globals then serve a configured KDS certificate that also names the relay.
    Relay,
}

/// Deployment options.
#[derive(Clone, Debug)]
pub struct Options {
    /// The Mesh's `dpCert.rotation.expiration`.
    pub expiration: String,
    /// How zones reach the globals.
    pub kds: KdsPath,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            expiration: "24h".to_string(),
            kds: KdsPath::Direct,
        }
    }
}

/// One global replica.
#[derive(Clone, Debug)]
pub struct Global {
    /// `global-1` .. `global-3` (node, process and directory name).
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its directory (config, data, log).
    pub dir: PathBuf,
}

/// One zone control plane.
#[derive(Clone, Debug)]
pub struct Zone {
    /// `zone-a` or `zone-b` (zone, node, process and directory name).
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its directory (config, token, data, log).
    pub dir: PathBuf,
}

/// One mosaic-dp agent.
#[derive(Clone, Debug)]
pub struct Agent {
    /// The dataplane's name (also the process name, prefixed `dp-`).
    pub name: String,
    /// Index of its zone.
    pub zone: usize,
    /// Its host's address.
    pub ip: Ipv4Addr,
    /// Its `--out-dir`.
    pub out_dir: PathBuf,
    /// Its token file.
    pub token_file: PathBuf,
}

impl Agent {
    /// The harness's process (and node) name of the agent.
    pub fn proc(&self) -> String {
        format!("dp-{}", self.name)
    }
}

/// A certificate the agent wrote, as read back from its files.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// Serial number (hex).
    pub serial: String,
    /// URI SANs.
    pub uris: Vec<String>,
    /// Issuer DN.
    pub issuer: String,
    /// Not after (RFC 2822-ish, as x509-parser prints it).
    pub not_after: String,
    /// Lifetime in seconds.
    pub lifetime_secs: i64,
    /// cert.pem (leaf + chain).
    pub chain_pem: String,
    /// ca.pem (trust bundle).
    pub ca_pem: String,
}

/// Serials an agent's certificate went through (see [`Mosaic::watch_serials`]).
#[derive(Debug)]
pub struct SerialWatch {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SerialWatch {
    /// Every distinct serial so far with when it was first seen, oldest first.
    pub fn serials(&self) -> Vec<(Instant, String)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The serials first seen at or after `since`.
    pub fn since(&self, since: Instant) -> Vec<String> {
        self.serials()
            .into_iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, s)| s)
            .collect()
    }
}

impl Drop for SerialWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The binaries a deployment runs.
#[derive(Clone, Debug)]
struct Bins {
    global: PathBuf,
    zone: PathBuf,
    dp: PathBuf,
    relay: PathBuf,
    bao: PathBuf,
}

/// A running deployment. Dropping it stops everything (see [`Net`]).
pub struct Mosaic {
    /// The namespaces and processes.
    pub net: Net,
    /// The HTTP client the test uses (from the root namespace, over its leg).
    pub http: reqwest::Client,
    /// A root client of OpenBao.
    pub vault: BaoClient,
    /// `http://198.18.X.10:8200`: the one Vault address of the Mesh.
    pub vault_addr: String,
    /// OpenBao's address.
    pub vault_ip: Ipv4Addr,
    /// The Vault PKI's root certificate (PEM), read from Vault at set-up.
    pub vault_root_pem: String,
    /// The global replicas (index 0..3).
    pub globals: Vec<Global>,
    /// The zones (index 0 = zone-a, 1 = zone-b).
    pub zones: Vec<Zone>,
    /// Agents by dataplane name.
    pub agents: BTreeMap<String, Agent>,
    /// The global replicas' processes (testkit's, each in its node through `ip netns exec`).
    cluster: GlobalCluster,
    /// The zones' processes, index as [`Mosaic::zones`] (pushed as each zone starts).
    zone_procs: Vec<ZoneProcess>,
    /// Where the zones' directories live.
    zones_root: PathBuf,
    relay: Option<RelayNode>,
    audit_log: PathBuf,
    kds_ca: PathBuf,
    opts: Options,
    bins: Bins,
    started: Instant,
}

impl std::fmt::Debug for Mosaic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mosaic")
            .field("net", &self.net)
            .field("vault_addr", &self.vault_addr)
            .finish_non_exhaustive()
    }
}

/// Polls `check` every 200 ms until it returns `Some`, failing after `deadline` with `what`.
pub async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `Authorization: Bearer <ADMIN_TOKEN>`: default headers for every client of the servers' APIs.
pub fn admin_headers() -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {ADMIN_TOKEN}").parse()?,
    );
    Ok(headers)
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("path {} is not UTF-8", p.display()))
}

/// Reads a PEM certificate chain and its trust bundle into a [`CertInfo`].
pub fn cert_info(chain_pem: &str, ca_pem: &str) -> anyhow::Result<CertInfo> {
    let blocks = mosaic_testkit::pem_blocks(chain_pem);
    let leaf = blocks.first().context("cert.pem holds no certificate")?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(leaf.as_bytes())
        .map_err(|e| anyhow::anyhow!("cert.pem is not PEM: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("cert.pem does not parse: {e}"))?;
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(u) = n {
                uris.push((*u).to_string());
            }
        }
    }
    let validity = cert.validity();
    Ok(CertInfo {
        serial: cert.raw_serial_as_string(),
        uris,
        issuer: cert.issuer().to_string(),
        not_after: validity.not_after.to_string(),
        lifetime_secs: validity.not_after.timestamp() - validity.not_before.timestamp(),
        chain_pem: chain_pem.to_string(),
        ca_pem: ca_pem.to_string(),
    })
}

// === impl Mosaic ===

impl Mosaic {
    /// Creates the namespaces and starts OpenBao (seed-000 set-up), three globals with the
    /// seed's Mesh (token in a Secret), and two zones that received it. Scenario `scenario`
    /// names the run in printed lines.
    pub async fn start(scenario: &str, opts: Options) -> anyhow::Result<Self> {
        ensure_crypto_provider();
        let bins = Bins {
            global: workspace_binary("mosaic-global")?,
            zone: workspace_binary("mosaic-zone")?,
            dp: workspace_binary("mosaic-dp")?,
            relay: workspace_binary("mosaic-netns-relay")?,
            bao: mosaic_testkit::bao_binary()?,
        };
        let mut net = Net::new(scenario)?;
        let vault_ip = net.add_node("openbao", 10)?.ip;
        let mut nodes = Vec::new();
        for i in 0..3u8 {
            let name = format!("global-{}", i + 1);
            let ip = net.add_node(&name, 11 + i)?.ip;
            nodes.push((name, ip));
        }
        let hosts = nodes
            .iter()
            .map(|(name, ip)| Ok(Host::new(*ip, net.command_prefix(name)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cluster = GlobalCluster::on_hosts(&bins.global, &net.dir().join("globals"), hosts)?;
        let mut globals = Vec::new();
        for (i, (name, ip)) in nodes.into_iter().enumerate() {
            net.add_log(&name, &cluster.log_path(i));
            globals.push(Global {
                dir: cluster.replica_dir(i).to_path_buf(),
                name,
                ip,
            });
        }
        let zones_root = net.dir().join("zones");
        let mut zones = Vec::new();
        for (i, name) in ["zone-a", "zone-b"].iter().enumerate() {
            let ip = net.add_node(name, 21 + i as u8)?.ip;
            // Where testkit's ZoneProcess keeps the zone's files.
            let dir = zones_root.join(format!("zone-{name}"));
            net.add_log(name, &dir.join("zone.log"));
            zones.push(Zone {
                name: (*name).to_string(),
                ip,
                dir,
            });
        }
        // The relay forwards its port 5685 + i to global i's KDS port (started now: it dials a
        // global only when a zone connects).
        let relay = match opts.kds {
            KdsPath::Direct => None,
            KdsPath::Relay => {
                let routes: Vec<(u16, SocketAddr)> = globals
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (KDS_PORT + i as u16, SocketAddr::from((g.ip, KDS_PORT))))
                    .collect();
                Some(RelayNode::start(
                    &mut net,
                    "kds-relay",
                    30,
                    &bins.relay,
                    &routes,
                )?)
            }
        };
        let vault_addr = format!("http://{vault_ip}:{BAO_PORT}");
        let mut m = Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .default_headers(admin_headers()?)
                .build()?,
            vault: BaoClient::new(&vault_addr, ROOT_TOKEN)?,
            vault_addr,
            vault_ip,
            vault_root_pem: String::new(),
            audit_log: net.dir().join("openbao").join("audit.log"),
            kds_ca: cluster.kds_ca_path(0),
            cluster,
            zone_procs: Vec::new(),
            zones_root,
            net,
            globals,
            zones,
            agents: BTreeMap::new(),
            relay,
            opts,
            bins,
            started: Instant::now(),
        };
        m.start_openbao().await?;
        m.start_globals().await?;
        m.apply_mesh().await?;
        for z in 0..m.zones.len() {
            m.start_zone(z).await?;
        }
        m.say(&format!(
            "deployment up in {:.1}s: OpenBao {}, globals {}, zones {} (run {}, files and logs in {})",
            m.started.elapsed().as_secs_f64(),
            m.vault_addr,
            m.globals
                .iter()
                .map(|g| g.ip.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            m.zones
                .iter()
                .map(|z| format!("{}={}", z.name, z.ip))
                .collect::<Vec<_>>()
                .join(" "),
            m.net.id(),
            m.net.dir().display()
        ));
        Ok(m)
    }

    /// Prints `netns[<scenario>]: <line>`.
    pub fn say(&self, line: &str) {
        println!("netns[{}]: {line}", self.net.scenario());
    }

    /// Marks the scenario as passed (its logs are not printed and its files not kept).
    pub fn pass(&mut self) {
        self.say(&format!(
            "passed in {:.1}s",
            self.started.elapsed().as_secs_f64()
        ));
        self.net.pass();
    }

    // --- OpenBao ---

    async fn start_openbao(&mut self) -> anyhow::Result<()> {
        let dir = self.net.dir().join("openbao");
        std::fs::create_dir_all(&dir)?;
        let hcl = dir.join("audit.hcl");
        write_file(
            &hcl,
            &format!(
                "audit \"file\" \"netns\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                path_str(&self.audit_log)?
            ),
        )?;
        let bao = self.bins.bao.clone();
        let home = path_str(&dir)?.to_string();
        self.net.spawn(
            "openbao",
            "openbao",
            &bao,
            &os(&[
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                "-dev-no-store-token",
                &format!("-dev-listen-address={}:{BAO_PORT}", self.vault_ip),
                &format!("-config={}", path_str(&hcl)?),
            ]),
            &[("HOME", home.as_str())],
        )?;
        let vault = self.vault.clone();
        let started = poll("OpenBao answers sys/health", WAIT, || {
            let vault = vault.clone();
            let log = self.net.log("openbao");
            async move {
                if !log.contains("OpenBao server started!") {
                    return None;
                }
                match vault.read("sys/health").await {
                    Ok(v) if v["sealed"] == Value::Bool(false) => Some(()),
                    _ => None,
                }
            }
        })
        .await;
        started.context("OpenBao did not start in its namespace")?;
        // Seed 000, root-CA layout: PKI, role, issue-only policy; seed 001: an orphan token.
        self.vault_root_pem = self.vault.setup_root_pki(SEED_MOUNT, SEED_MESH).await?;
        self.vault.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
        self.vault
            .write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL)
            .await?;
        Ok(())
    }

    /// Issue requests OpenBao's audit log recorded from `from` so far.
    pub fn issue_requests_from(&self, from: Ipv4Addr) -> usize {
        let from = from.to_string();
        read_text(&self.audit_log)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["type"] == "request"
                    && e["request"]["path"] == ISSUE_PATH
                    && e["request"]["remote_address"] == from.as_str()
            })
            .count()
    }

    // --- globals ---

    /// The file holding [`ADMIN_TOKEN`], the servers' `api.admin_token_file` (written once).
    fn admin_token_file(&self) -> anyhow::Result<PathBuf> {
        let path = self.net.dir().join("admin-token");
        if !path.exists() {
            write_file(&path, ADMIN_TOKEN)?;
        }
        Ok(path)
    }

    async fn start_globals(&mut self) -> anyhow::Result<()> {
        let mut kds_tls = None;
        if let Some(relay) = self.relay_ip() {
            // Zones reach the globals through the relay's address: a configured KDS certificate
            // that names it (the generated one names only the replica's own addresses).
            let ca = TestCa::new("mosaic-netns KDS CA")?;
            let mut names: Vec<String> = self.globals.iter().map(|g| g.ip.to_string()).collect();
            names.push(relay.to_string());
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let pair = ca.server_cert(&refs)?;
            let dir = self.net.dir().join("kds-tls");
            write_file(&dir.join("kds.pem"), &pair.cert_pem)?;
            write_file(&dir.join("kds-key.pem"), &pair.key_pem)?;
            write_file(&dir.join("kds-ca.pem"), ca.cert_pem())?;
            self.kds_ca = dir.join("kds-ca.pem");
            kds_tls = Some((dir.join("kds.pem"), dir.join("kds-key.pem")));
        }
        // testkit's replicas: peers on the node addresses, raft over mutual TLS with a cluster CA
        // made by `mosaic-global generate raft-ca`; here also the admin token file, and with the
        // relay the configured KDS certificate.
        let admin = self.admin_token_file()?;
        self.cluster.edit_config(move |_, c| {
            c.api.admin_token_file = Some(admin.clone());
            if let Some((cert, key)) = &kds_tls {
                c.kds.tls_cert = Some(cert.clone());
                c.kds.tls_key = Some(key.clone());
            }
        });
        self.cluster.set_env("RUST_LOG", "info,openraft=warn");
        self.cluster.set_http(self.http.clone());
        self.cluster.start_all()?;
        for i in 0..self.globals.len() {
            self.wait_global_ready(i).await?;
        }
        self.wait_leader().await?;
        let ca = self.kds_ca.clone();
        poll("the globals' KDS CA file", WAIT, || {
            let ok = ca.exists();
            async move { ok.then_some(()) }
        })
        .await?;
        Ok(())
    }

    /// Starts global `i` again (after a kill or a SIGTERM).
    pub fn start_global(&mut self, i: usize) -> anyhow::Result<()> {
        self.cluster.start(i)
    }

    /// kill -9 of global `i`.
    pub fn kill_global(&mut self, i: usize) -> anyhow::Result<()> {
        self.cluster.kill(i);
        Ok(())
    }

    /// Sends SIGTERM to global `i` and waits (up to 30 s, then SIGKILL and an error) for it to
    /// exit; returns its exit status.
    pub fn stop_global(&mut self, i: usize) -> anyhow::Result<ExitStatus> {
        let name = self.globals[i].name.clone();
        tokio::task::block_in_place(|| self.cluster.stop(i))?
            .with_context(|| format!("process {name} is not running"))
    }

    /// The API base URL of global `i`.
    pub fn api(&self, i: usize) -> String {
        self.cluster.api(i)
    }

    /// Whether global `i`'s process runs.
    pub fn global_running(&mut self, i: usize) -> bool {
        self.cluster.is_running(i)
    }

    /// Waits until global `i` answers `GET /ready` with 200 (it knows a leader).
    pub async fn wait_global_ready(&self, i: usize) -> anyhow::Result<()> {
        self.cluster.wait_ready(i, WAIT).await
    }

    /// The replica that reports `mosaic_raft_is_leader 1`, if any.
    pub async fn leader(&self) -> Option<usize> {
        self.cluster.leader().await
    }

    /// Waits for a leader.
    pub async fn wait_leader(&self) -> anyhow::Result<usize> {
        self.cluster.wait_leader(WAIT).await
    }

    /// `GET` on global `i`: status and JSON body.
    pub async fn get(&self, i: usize, path: &str) -> anyhow::Result<(u16, Value)> {
        self.cluster.get(i, path).await
    }

    /// `PUT` YAML on global `i`: status and JSON body.
    pub async fn put(&self, i: usize, path: &str, yaml: &str) -> anyhow::Result<(u16, Value)> {
        self.cluster.put(i, path, yaml).await
    }

    /// `PUT` YAML through the first replica that answers 2xx.
    pub async fn put_any(&self, path: &str, yaml: &str) -> anyhow::Result<Value> {
        let mut errors = Vec::new();
        for i in 0..self.globals.len() {
            match self.put(i, path, yaml).await {
                Ok((s, body)) if (200..300).contains(&s) => return Ok(body),
                Ok((s, body)) => errors.push(format!("{}: {s} {body}", self.globals[i].name)),
                Err(e) => errors.push(format!("{}: {e}", self.globals[i].name)),
            }
        }
        bail!("PUT {path} failed on every replica: {}", errors.join("; "))
    }

    /// `GET` through the first replica that answers 200.
    pub async fn get_any(&self, path: &str) -> anyhow::Result<Value> {
        let mut errors = Vec::new();
        for i in 0..self.globals.len() {
            match self.get(i, path).await {
                Ok((200, body)) => return Ok(body),
                Ok((s, body)) => errors.push(format!("{}: {s} {body}", self.globals[i].name)),
                Err(e) => errors.push(format!("{}: {e}", self.globals[i].name)),
            }
        }
        bail!("GET {path} failed on every replica: {}", errors.join("; "))
    }

    /// `POST` JSON through the first replica that answers 2xx; the body as text.
    pub async fn post_any(&self, path: &str, body: &Value) -> anyhow::Result<String> {
        let mut errors = Vec::new();
        for i in 0..self.globals.len() {
            match self.cluster.post(i, path, body).await {
                Ok((s, text)) if (200..300).contains(&s) => return Ok(text.trim().to_string()),
                Ok((s, text)) => errors.push(format!("{}: {s} {text}", self.globals[i].name)),
                Err(e) => errors.push(format!("{}: {e}", self.globals[i].name)),
            }
        }
        bail!("POST {path} failed on every replica: {}", errors.join("; "))
    }

    async fn apply_mesh(&mut self) -> anyhow::Result<()> {
        let mut spec = TokenSpec::new(&[SEED_POLICY_NAME]);
        spec.orphan = true;
        let token = self.vault.create_token(&spec).await?;
        let data = base64::engine::general_purpose::STANDARD.encode(token.as_bytes());
        // As a Kuma user does: the Mesh without mtls first (a Secret needs its Mesh), then the
        // token Secret, then the Mesh with the vault backend that names it.
        self.put_any("/meshes/default", "type: Mesh\nname: default\n")
            .await?;
        self.put_any(
            "/meshes/default/secrets/token-1",
            &format!("type: Secret\nmesh: default\nname: token-1\ndata: {data}\n"),
        )
        .await?;
        self.put_any("/meshes/default", &self.mesh_yaml(&self.opts.expiration))
            .await
            .context("the global refused the seed's Mesh (it validates it with a test issuance from Vault)")?;
        Ok(())
    }

    /// The seed's Mesh (Universal) with the vault backend at [`Mosaic::vault_addr`].
    pub fn mesh_yaml(&self, expiration: &str) -> String {
        format!(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: {BACKEND}\n  backends:\n  - name: {BACKEND}\n    type: vault\n    dpCert:\n      rotation:\n        expiration: {expiration}\n    conf:\n      fromCp:\n        address: {}\n        pki: {SEED_MOUNT}\n        role: {SEED_ROLE}\n        commonName: '{{{{ tag \"kuma.io/service\" }}}}.mesh'\n        auth:\n          token:\n            secret: token-1\n",
            self.vault_addr
        )
    }

    // --- relay ---

    /// The KDS relay's address, with [`KdsPath::Relay`].
    pub fn relay_ip(&self) -> Option<Ipv4Addr> {
        self.relay.as_ref().map(|r| r.ip)
    }

    /// Sets the relay's one-way delay (each direction); an error without [`KdsPath::Relay`].
    pub fn set_relay_delay(&self, delay: Duration) -> anyhow::Result<()> {
        self.relay
            .as_ref()
            .context("this deployment has no KDS relay")?
            .set_delay(delay)
    }

    /// Whether the relay logged that it applies `delay`.
    pub fn relay_applies(&self, delay: Duration) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|r| r.applies(&self.net, delay))
    }

    // --- zones ---

    /// The KDS addresses zone `z` dials, in its order.
    fn zone_global_addresses(&self, z: usize) -> Vec<String> {
        let n = self.globals.len();
        (0..n)
            .map(|k| (k + z) % n)
            .map(|i| match self.relay_ip() {
                Some(relay) => format!("grpcs://{relay}:{}", KDS_PORT + i as u16),
                None => format!("grpcs://{}:{KDS_PORT}", self.globals[i].ip),
            })
            .collect()
    }

    async fn start_zone(&mut self, z: usize) -> anyhow::Result<()> {
        anyhow::ensure!(self.zone_procs.len() == z, "zones start in order, once");
        let zone = self.zones[z].clone();
        let token = self
            .post_any(
                "/tokens/zone",
                &json!({"zone": zone.name, "validFor": "24h"}),
            )
            .await?;
        let host = Host::new(zone.ip, self.net.command_prefix(&zone.name)?);
        let addresses = self.zone_global_addresses(z).join(",");
        let global = (addresses.as_str(), self.kds_ca.as_path(), token.as_str());
        let mut process =
            ZoneProcess::on_host(&self.bins.zone, &self.zones_root, &zone.name, global, host)?;
        let admin = self.admin_token_file()?;
        process.edit_config(move |c| c.api.admin_token_file = Some(admin.clone()));
        // The debug line of the KDS receive loop says what each (resume) response carried.
        process.set_env("RUST_LOG", "info,mosaic_zone::kds::global_to_zone=debug");
        process.set_http(self.http.clone());
        process.start()?;
        self.zone_procs.push(process);
        self.wait_zone_connected(z).await?;
        self.wait_zone_mesh(z, "the Mesh default", |m| {
            m["mtls"]["enabledBackend"] == BACKEND
        })
        .await?;
        let ca = self.zone_dp_ca(z);
        poll(
            &format!("{} wrote dp-server-ca.pem", zone.name),
            WAIT,
            || {
                let ok = ca.exists();
                async move { ok.then_some(()) }
            },
        )
        .await
    }

    /// kill -9 of zone `z`'s process.
    pub fn kill_zone(&mut self, z: usize) -> anyhow::Result<()> {
        self.zone_procs[z].kill();
        Ok(())
    }

    /// Starts zone `z`'s process again (same config and data).
    pub fn restart_zone(&mut self, z: usize) -> anyhow::Result<()> {
        self.zone_procs[z].start()
    }

    /// The CA file of zone `z`'s dataplane server (what agents trust).
    pub fn zone_dp_ca(&self, z: usize) -> PathBuf {
        self.zone_procs[z].dp_ca_path()
    }

    /// Zone `z`'s `GET /ready` body (it reports the KDS state).
    pub async fn zone_ready(&self, z: usize) -> Option<Value> {
        self.zone_procs[z].ready().await
    }

    /// The global zone `z` is connected to (its `/ready` `kds.global`), if connected.
    pub async fn zone_connected(&self, z: usize) -> Option<String> {
        let ready = self.zone_ready(z).await?;
        (ready["kds"]["connected"] == true)
            .then(|| ready["kds"]["global"].as_str().map(str::to_string))
            .flatten()
    }

    /// Waits until zone `z` is connected to a global.
    pub async fn wait_zone_connected(&self, z: usize) -> anyhow::Result<String> {
        poll(
            &format!("{} connects to a global", self.zones[z].name),
            WAIT,
            || self.zone_connected(z),
        )
        .await
    }

    /// `GET` on zone `z`'s API: status and JSON body.
    pub async fn zone_get(&self, z: usize, path: &str) -> anyhow::Result<(u16, Value)> {
        self.zone_procs[z].get(path).await
    }

    /// Waits until zone `z` serves a Mesh `default` for which `check` holds.
    pub async fn wait_zone_mesh(
        &self,
        z: usize,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        self.wait_zone_resource(z, "/meshes/default", what, check)
            .await
    }

    /// Waits until zone `z` answers `path` with 200 and a body for which `check` holds.
    pub async fn wait_zone_resource(
        &self,
        z: usize,
        path: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let check = &check;
        poll(
            &format!("{}: {what}", self.zones[z].name),
            WAIT,
            || async move {
                match self.zone_get(z, path).await {
                    Ok((200, body)) if check(&body) => Some(body),
                    _ => None,
                }
            },
        )
        .await
    }

    /// Zone `z`'s Prometheus metrics text.
    pub async fn zone_metrics(&self, z: usize) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.zone_procs[z].diag_url());
        Ok(self.http.get(url).send().await?.text().await?)
    }

    /// The sum of the samples of `metric` (any labels) in zone `z`'s metrics.
    pub async fn zone_metric_sum(&self, z: usize, metric: &str) -> anyhow::Result<f64> {
        let text = self.zone_metrics(z).await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// The CA health of mesh `default`, backend `vault-1` that global's `GET /zones/_overview`
    /// shows for zone `z`: `(healthy, lastError)`.
    pub async fn ca_health(&self, z: usize) -> Option<(bool, String)> {
        let overview = self.get_any("/zones/_overview").await.ok()?;
        let item = overview["items"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == self.zones[z].name.as_str())?;
        let h = item["caHealth"]
            .as_array()?
            .iter()
            .find(|h| h["mesh"] == MESH && h["backend"] == BACKEND)?;
        Some((
            h["healthy"].as_bool()?,
            h["lastError"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// Waits until `/zones/_overview` shows zone `z`'s CA as `healthy`; returns the last error.
    pub async fn wait_ca_health(&self, z: usize, healthy: bool) -> anyhow::Result<String> {
        poll(
            &format!(
                "/zones/_overview shows {}'s CA {}",
                self.zones[z].name,
                if healthy { "healthy" } else { "unhealthy" }
            ),
            WAIT,
            || async move {
                match self.ca_health(z).await {
                    Some((h, e)) if h == healthy => Some(e),
                    _ => None,
                }
            },
        )
        .await
    }

    /// Whether `/zones/_overview` shows zone `z` online.
    pub async fn zone_online(&self, z: usize) -> bool {
        let Ok(overview) = self.get_any("/zones/_overview").await else {
            return false;
        };
        overview["items"].as_array().is_some_and(|a| {
            a.iter()
                .any(|i| i["name"] == self.zones[z].name.as_str() && i["online"] == true)
        })
    }

    // --- agents ---

    /// Creates dataplane `name`'s token now (through the global), for an agent in zone `z`
    /// started later with [`Mosaic::start_agent`] (maybe while the global is out of reach).
    pub async fn prepare_agent(&mut self, z: usize, name: &str) -> anyhow::Result<Agent> {
        let token = self
            .post_any(
                "/tokens/dataplane",
                &json!({
                    "mesh": MESH,
                    "name": name,
                    "tags": {"kuma.io/service": [SERVICE]},
                    "validFor": "24h",
                }),
            )
            .await?;
        let dir = self.net.dir().join("agents").join(name);
        let token_file = dir.join("token");
        write_file(&token_file, &token)?;
        let node = self.net.add_host(&format!("dp-{name}"))?;
        let agent = Agent {
            name: name.to_string(),
            zone: z,
            ip: node.ip,
            out_dir: dir.join("certs"),
            token_file,
        };
        write_file(
            &dir.join("dataplane.yaml"),
            &format!(
                "type: Dataplane\nmesh: {MESH}\nname: {name}\nnetworking:\n  address: {}\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: {SERVICE}\n",
                node.ip
            ),
        )?;
        self.agents.insert(name.to_string(), agent.clone());
        Ok(agent)
    }

    /// Starts the agent of dataplane `name` (prepared with [`Mosaic::prepare_agent`]) in its
    /// own namespace.
    pub fn start_agent(&mut self, name: &str) -> anyhow::Result<()> {
        let a = self
            .agents
            .get(name)
            .with_context(|| format!("agent {name} was not prepared"))?
            .clone();
        let dir = a.token_file.parent().context("agent dir")?.to_path_buf();
        let zone_url = self.zone_procs[a.zone].dp_url();
        let args = os(&[
            "run",
            "--zone",
            &zone_url,
            "--ca-cert-file",
            path_str(&self.zone_dp_ca(a.zone))?,
            "--mesh",
            MESH,
            "--name",
            name,
            "--token-file",
            path_str(&a.token_file)?,
            "--dataplane-file",
            path_str(&dir.join("dataplane.yaml"))?,
            "--out-dir",
            path_str(&a.out_dir)?,
        ]);
        let bin = self.bins.dp.clone();
        self.net
            .spawn(&a.proc(), &a.proc(), &bin, &args, &[("RUST_LOG", "info")])
    }

    /// Prepares and starts an agent for dataplane `name` in zone `z`.
    pub async fn add_agent(&mut self, z: usize, name: &str) -> anyhow::Result<Agent> {
        let a = self.prepare_agent(z, name).await?;
        self.start_agent(name)?;
        Ok(a)
    }

    /// The certificate agent `name` has written, if its three files are there.
    pub fn agent_cert(&self, name: &str) -> Option<CertInfo> {
        let a = self.agents.get(name)?;
        let chain = std::fs::read_to_string(a.out_dir.join("cert.pem")).ok()?;
        let ca = std::fs::read_to_string(a.out_dir.join("ca.pem")).ok()?;
        if !a.out_dir.join("key.pem").exists() {
            return None;
        }
        cert_info(&chain, &ca).ok()
    }

    /// Waits until agent `name` has files whose certificate satisfies `check`; fails early if
    /// the agent exited.
    pub async fn wait_agent_cert(
        &mut self,
        name: &str,
        what: &str,
        deadline: Duration,
        check: impl Fn(&CertInfo) -> bool,
    ) -> anyhow::Result<CertInfo> {
        let start = Instant::now();
        let proc = format!("dp-{name}");
        loop {
            if let Some(c) = self.agent_cert(name)
                && check(&c)
            {
                return Ok(c);
            }
            if let Some(status) = self.net.exit_status(&proc) {
                bail!("agent {name} exited ({status}) while waiting for {what}");
            }
            if start.elapsed() > deadline {
                bail!("agent {name}: {what} not within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts recording every distinct serial agent `name`'s cert.pem shows (polled twice a
    /// second) until the watch is dropped.
    pub fn watch_serials(&self, name: &str) -> anyhow::Result<SerialWatch> {
        let dir = self
            .agents
            .get(name)
            .with_context(|| format!("no agent {name}"))?
            .out_dir
            .clone();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, String)>::new()));
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let chain = read_text(&dir.join("cert.pem"));
                    if let Ok(c) = cert_info(&chain, "")
                        && let Ok(mut s) = seen.lock()
                        && s.last().map(|(_, x)| x) != Some(&c.serial)
                    {
                        s.push((Instant::now(), c.serial));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        Ok(SerialWatch { seen, task })
    }

    /// Checks that `cert` is a `spiffe://default/backend` certificate whose chain verifies (as
    /// Envoy would: client and server auth) against the Vault PKI's root read from Vault, and
    /// that the agent's ca.pem holds that root.
    pub fn check_vault_cert(&self, cert: &CertInfo) -> anyhow::Result<()> {
        let spiffe = format!("spiffe://{MESH}/{SERVICE}");
        if !cert.uris.iter().any(|u| u == &spiffe) {
            bail!("the certificate has URI SANs {:?}, not {spiffe}", cert.uris);
        }
        mosaic_testkit::verify_chain(&cert.chain_pem, std::slice::from_ref(&self.vault_root_pem))
            .context("the agent's cert.pem does not verify against the Vault root")?;
        let root = mosaic_testkit::pem_blocks(&self.vault_root_pem);
        let bundle = mosaic_testkit::pem_blocks(&cert.ca_pem);
        if !root.iter().all(|r| bundle.contains(r)) {
            bail!("the agent's ca.pem does not hold the Vault root");
        }
        Ok(())
    }

    /// How many times agent `name` opened its SDS stream (its "connected to the zone" lines).
    pub fn agent_connections(&self, name: &str) -> usize {
        self.net
            .log(&format!("dp-{name}"))
            .matches("connected to the zone; asked for identity_cert and mesh_ca")
            .count()
    }

    /// The agents that are not running, with how they exited.
    pub fn exited_agents(&mut self) -> Vec<String> {
        let names: Vec<String> = self.agents.keys().cloned().collect();
        names
            .into_iter()
            .filter_map(|n| {
                let p = format!("dp-{n}");
                self.net
                    .exit_status(&p)
                    .map(|s| format!("{n}: {s}"))
                    .or_else(|| (!self.net.is_running(&p)).then(|| format!("{n}: not running")))
            })
            .collect()
    }

    /// Global `i`'s log.
    pub fn global_log(&self, i: usize) -> String {
        self.cluster.log(i)
    }

    /// Zone `z`'s log.
    pub fn zone_log(&self, z: usize) -> String {
        self.zone_procs[z].log()
    }
}
