//! Configuration of the global and zone control planes.
//!
//! Both are loaded in three layers, later layers winning:
//!
//! 1. the built-in defaults of the contract ([`GlobalConfig::default`], [`ZoneConfig::default`]);
//! 2. an optional TOML file (`--config FILE`); unknown keys are an error naming the key;
//! 3. environment variables with the `MOSAIC_` prefix and `__` between levels, e.g.
//!    `MOSAIC_KDS__LISTEN=0.0.0.0:5685` or `MOSAIC_RAFT__NODE_ID=2`. List values (`raft.peers`) take
//!    a comma-separated list, with or without surrounding brackets. Variables without `__` that are
//!    not a top-level key (such as mosaicctl's `MOSAIC_API` and `MOSAIC_TOKEN`) are ignored; a
//!    variable with `__` that names no key is an error.
//!
//! Empty strings in file-valued keys (`tls_cert = ""`) mean "not set" and load as `None`.
//!
//! Every failure is a [`ConfigError`] naming the key, where the value came from (file or
//! environment variable) and what to do about it.

use std::{
    collections::BTreeSet,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Format, Serialized, Toml},
    value::{Dict, Map, Num, Tag, Value},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Prefix of every environment variable the configuration loader reads.
pub const ENV_PREFIX: &str = "MOSAIC_";

/// Separator between nesting levels in environment variable names (`MOSAIC_KDS__LISTEN`).
pub const ENV_SEPARATOR: &str = "__";

/// Name of the figment provider for environment overrides; used to recognise its metadata.
const ENV_PROVIDER_NAME: &str = "MOSAIC_ environment variables";

// === Global ===

/// Configuration of `mosaic-global`, mirroring the contract's TOML keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// `[store]`: where the replicated store keeps its data.
    pub store: StoreConfig,
    /// `[raft]`: replica identity and peers.
    pub raft: RaftConfig,
    /// `[api]`: the HTTP resource API.
    pub api: ApiConfig,
    /// `[kds]`: the KDS gRPC server zones connect to.
    pub kds: KdsConfig,
    /// `[diagnostics]`: metrics and health endpoints.
    pub diagnostics: DiagnosticsConfig,
}

/// `[store]`: on-disk state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `store.data_dir`: directory holding the store, generated CAs and keys.
    pub data_dir: PathBuf,
}

/// `[raft]`: replication settings of the global control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftConfig {
    /// `raft.node_id`: unique per replica.
    pub node_id: u64,
    /// `raft.listen`: address the raft RPC server binds.
    pub listen: SocketAddr,
    /// `raft.advertise`: address other replicas use to reach this one (`host:port`).
    pub advertise: String,
    /// `raft.peers`: every replica, this one included; empty means a single node.
    pub peers: Vec<RaftPeer>,
    /// `raft.snapshot_after_logs` (Mosaic's addition): take a snapshot, and purge the log behind
    /// it, every this many applied entries. Keeps the data directory bounded.
    #[serde(default = "default_snapshot_after_logs")]
    pub snapshot_after_logs: u64,
    /// `raft.ca_cert`: PEM of the cluster CA every replica's raft certificate is signed by.
    /// Unset: `<data_dir>/raft-ca.pem` (generated there on a single node's first start).
    #[serde(default, with = "optional_path")]
    pub ca_cert: Option<PathBuf>,
    /// `raft.ca_key`: the cluster CA's key; with it a replica issues its own raft certificate at
    /// start (in memory). Unset with `ca_cert` set: `tls_cert`/`tls_key` are required.
    #[serde(default, with = "optional_path")]
    pub ca_key: Option<PathBuf>,
    /// `raft.tls_cert`: this replica's raft certificate (signed by `ca_cert`, naming
    /// `node-<node_id>.raft.mosaic.invalid`), for operators who keep the CA key off the replicas.
    #[serde(default, with = "optional_path")]
    pub tls_cert: Option<PathBuf>,
    /// `raft.tls_key`: the key of `tls_cert`.
    #[serde(default, with = "optional_path")]
    pub tls_key: Option<PathBuf>,
    /// `raft.insecure`: serve and dial the raft port in plaintext, without authentication. Anyone
    /// who reaches the port can then rewrite the cluster; for tests only, loudly logged.
    #[serde(default)]
    pub insecure: bool,
}

/// Default of `raft.snapshot_after_logs`.
pub const DEFAULT_SNAPSHOT_AFTER_LOGS: u64 = 10_000;

fn default_snapshot_after_logs() -> u64 {
    DEFAULT_SNAPSHOT_AFTER_LOGS
}

/// One raft replica, written `"<id>=<host>:<port>"` (e.g. `"1=10.0.0.1:5682"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RaftPeer {
    /// The replica's `raft.node_id`.
    pub id: u64,
    /// `host:port` of the replica's raft listener.
    pub addr: String,
}

/// `[api]` of the global control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `api.listen`: address of the HTTP API. A non-loopback address needs `admin_token_file`
    /// (the global refuses to start otherwise).
    pub listen: SocketAddr,
    /// `api.admin_token_file`: a file holding the admin token. Callers present it (or the token
    /// generated into `<store.data_dir>/admin-token`) as `Authorization: Bearer <token>`; when
    /// it is set, loopback callers need it too unless `localhost_is_admin = true`.
    #[serde(with = "optional_path")]
    pub admin_token_file: Option<PathBuf>,
    /// `api.localhost_is_admin` (Kuma's `localhostIsAdmin`): callers on a loopback address are
    /// admins without a token. Unset: true without `admin_token_file`, false with it; see
    /// [`ApiConfig::effective_localhost_is_admin`].
    #[serde(default)]
    pub localhost_is_admin: Option<bool>,
    /// `api.tls_cert`: PEM certificate chain; with `tls_key`, the API serves HTTPS.
    #[serde(with = "optional_path")]
    pub tls_cert: Option<PathBuf>,
    /// `api.tls_key`: PEM private key matching `tls_cert`.
    #[serde(with = "optional_path")]
    pub tls_key: Option<PathBuf>,
}

/// `[kds]`: the KDS server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdsConfig {
    /// `kds.listen`: address of the KDS gRPC server.
    pub listen: SocketAddr,
    /// `kds.tls_cert`: PEM chain; unset = a self-signed CA + server cert is generated into `data_dir`.
    #[serde(with = "optional_path")]
    pub tls_cert: Option<PathBuf>,
    /// `kds.tls_key`: PEM private key matching `tls_cert`.
    #[serde(with = "optional_path")]
    pub tls_key: Option<PathBuf>,
}

/// `[diagnostics]`: `GET /metrics`, `/ready`, `/healthy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsConfig {
    /// `diagnostics.listen`: address of the diagnostics HTTP server.
    pub listen: SocketAddr,
}

// === Zone ===

/// Configuration of `mosaic-zone`, mirroring the contract's TOML keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// `zone`: this zone's name.
    pub zone: ZoneName,
    /// `[store]`: where the zone keeps its data.
    pub store: StoreConfig,
    /// `[global]`: how to reach the global control plane.
    pub global: GlobalConnectionConfig,
    /// `[api]`: the zone's HTTP API.
    pub api: ZoneApiConfig,
    /// `[dp_server]`: the SDS server data planes connect to.
    pub dp_server: DpServerConfig,
    /// `[diagnostics]`: metrics and health endpoints.
    pub diagnostics: DiagnosticsConfig,
    /// `[issuer]`: how hard the zone may press its certificate authorities (an addition to the
    /// contract; optional).
    #[serde(default)]
    pub issuer: IssuerConfig,
}

/// `[issuer]` of the zone: limits on requests to the CAs (Vault).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// `issuer.max_in_flight`: most certificate requests in flight at once, across every mesh
    /// and backend (default 16).
    pub max_in_flight: usize,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self { max_in_flight: 16 }
    }
}

/// A zone name: a DNS-1035 label (1-63 of `a-z0-9-`, starting with a letter, ending alphanumeric).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZoneName(String);

/// `[global]` of the zone: the KDS connection to the global control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConnectionConfig {
    /// `global.address`: URL of the global's KDS server.
    pub address: GlobalAddress,
    /// `global.ca_cert`: PEM file of the CA that signs the global's KDS certificate.
    #[serde(with = "optional_path")]
    pub ca_cert: Option<PathBuf>,
    /// `global.token_file`: zone token from `mosaicctl generate zone-token`.
    #[serde(with = "optional_path")]
    pub token_file: Option<PathBuf>,
}

/// URL of the global control plane; scheme `grpcs`, `grpc`, `https` or `http`, with a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GlobalAddress {
    url: String,
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// `[api]` of the zone control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneApiConfig {
    /// `api.listen`: address of the zone's HTTP API. A non-loopback address needs
    /// `admin_token_file` (the zone refuses to start otherwise).
    pub listen: SocketAddr,
    /// `api.admin_token_file` (as the global's): a file holding the admin token. Callers present
    /// it (or the token generated into `<store.data_dir>/admin-token`) as
    /// `Authorization: Bearer <token>`; when it is set, loopback callers need it too unless
    /// `localhost_is_admin = true`.
    #[serde(default, with = "optional_path")]
    pub admin_token_file: Option<PathBuf>,
    /// `api.localhost_is_admin` (Kuma's `localhostIsAdmin`): callers on a loopback address are
    /// admins without a token. Unset: true without `admin_token_file`, false with it; see
    /// [`ZoneApiConfig::effective_localhost_is_admin`].
    #[serde(default)]
    pub localhost_is_admin: Option<bool>,
}

/// `[dp_server]`: the SDS server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpServerConfig {
    /// `dp_server.listen`: address of the SDS gRPC server.
    pub listen: SocketAddr,
    /// `dp_server.tls_cert`: PEM chain; unset = a CA + server cert is generated into `data_dir`.
    #[serde(with = "optional_path")]
    pub tls_cert: Option<PathBuf>,
    /// `dp_server.tls_key`: PEM private key matching `tls_cert`.
    #[serde(with = "optional_path")]
    pub tls_key: Option<PathBuf>,
}

// === Errors ===

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// The built-in defaults.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

/// A configuration that could not be loaded; the message names the key, the source and a fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file `{}` (check the path given to --config)", path.display())]
    ReadFile {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("{origin} is not valid TOML: {reason}")]
    Syntax {
        /// Where the text came from.
        origin: ConfigSource,
        /// The parser's message.
        reason: String,
    },
    /// A key that the configuration does not have.
    #[error("unknown key `{key}` in {origin}: {hint}")]
    UnknownKey {
        /// Dotted key path, e.g. `kds.lisen`.
        key: String,
        /// Where the key was set.
        origin: ConfigSource,
        /// What to do, e.g. the keys allowed at that level.
        hint: String,
    },
    /// A key with a value of the wrong type or shape.
    #[error("invalid `{key}` in {origin}: {reason}; {hint}")]
    InvalidValue {
        /// Dotted key path, e.g. `raft.peers`.
        key: String,
        /// Where the value was set.
        origin: ConfigSource,
        /// What is wrong with it.
        reason: String,
        /// What to do.
        hint: String,
    },
}

// === impl ConfigSource ===

impl ConfigSource {
    fn from_metadata(metadata: Option<&Metadata>, key_path: &[String]) -> Self {
        let Some(metadata) = metadata else {
            return ConfigSource::Default;
        };
        if let Some(path) = metadata.source.as_ref().and_then(|s| s.file_path()) {
            return ConfigSource::File(path.to_path_buf());
        }
        if metadata.name == ENV_PROVIDER_NAME {
            return ConfigSource::Env(env_var_name(key_path));
        }
        ConfigSource::Default
    }

    fn fix_hint(&self, key: &str) -> String {
        match self {
            ConfigSource::Default => format!("set `{key}` in the config file or environment"),
            ConfigSource::File(path) => format!("fix `{key}` in `{}`", path.display()),
            ConfigSource::Env(var) => format!("fix or unset environment variable `{var}`"),
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Default => f.write_str("the built-in defaults"),
            ConfigSource::File(path) => write!(f, "config file `{}`", path.display()),
            ConfigSource::Env(var) => write!(f, "environment variable `{var}`"),
        }
    }
}

// === impl ConfigError ===

impl ConfigError {
    /// The dotted key the error is about, if it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::InvalidValue { key, .. } => {
                Some(key)
            }
            ConfigError::ReadFile { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    /// Where the offending value came from, if known.
    pub fn origin(&self) -> Option<&ConfigSource> {
        match self {
            ConfigError::UnknownKey { origin, .. }
            | ConfigError::InvalidValue { origin, .. }
            | ConfigError::Syntax { origin, .. } => Some(origin),
            ConfigError::ReadFile { .. } => None,
        }
    }

    fn invalid(figment: &Figment, key: &str, reason: impl Into<String>) -> Self {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        let origin = ConfigSource::from_metadata(figment.find_metadata(key), &path);
        let hint = origin.fix_hint(key);
        ConfigError::InvalidValue {
            key: key.to_owned(),
            origin,
            reason: reason.into(),
            hint,
        }
    }

    fn from_figment(error: figment::Error, figment: &Figment, file: Option<&Path>) -> Self {
        // Report the first error; figment chains one per bad key.
        let error = error.into_iter().next().unwrap_or_else(|| {
            figment::Error::from(figment::error::Kind::Message("unknown error".into()))
        });
        match &error.kind {
            figment::error::Kind::UnknownField(field, expected) => {
                // figment usually puts the field at the end of the path already.
                let mut path = error.path.clone();
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                let parent = &path[..path.len() - 1];
                let key = path.join(".");
                let metadata = figment.find_metadata(&key).or(error.metadata.as_ref());
                let origin = ConfigSource::from_metadata(metadata, &path);
                let level = match parent.is_empty() {
                    true => "at the top level".to_owned(),
                    false => format!("in [{}]", parent.join(".")),
                };
                let hint = format!(
                    "remove it or fix its spelling; keys allowed {level}: {}",
                    expected.join(", ")
                );
                ConfigError::UnknownKey { key, origin, hint }
            }
            kind if error.path.is_empty() => {
                let origin = match (
                    ConfigSource::from_metadata(error.metadata.as_ref(), &[]),
                    file,
                ) {
                    (ConfigSource::Default, Some(file)) => ConfigSource::File(file.to_path_buf()),
                    (origin, _) => origin,
                };
                ConfigError::Syntax {
                    origin,
                    reason: one_line(&kind.to_string()),
                }
            }
            kind => {
                let key = error.path.join(".");
                let metadata = figment.find_metadata(&key).or(error.metadata.as_ref());
                let origin = ConfigSource::from_metadata(metadata, &error.path);
                let mut reason = kind.to_string();
                if let Ok(value) = figment.find_value(&key) {
                    match &value {
                        Value::String(_, s) if !reason.contains(&format!("{s:?}")) => {
                            reason.push_str(&format!(" (got {s:?})"))
                        }
                        Value::Num(_, n) => {
                            if let Some(n) = n.to_u128() {
                                reason.push_str(&format!(" (got {n})"));
                            }
                        }
                        _ => {}
                    }
                }
                if reason.contains("socket address") {
                    reason.push_str(
                        ", expected IP:port such as \"127.0.0.1:5681\" (not a host name)",
                    );
                }
                let hint = origin.fix_hint(&key);
                ConfigError::InvalidValue {
                    key,
                    origin,
                    reason,
                    hint,
                }
            }
        }
    }
}

// === impl GlobalConfig ===

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            store: StoreConfig {
                data_dir: PathBuf::from("./mosaic-data/global"),
            },
            raft: RaftConfig {
                node_id: 1,
                listen: SocketAddr::from(([127, 0, 0, 1], 5682)),
                advertise: "127.0.0.1:5682".to_owned(),
                peers: Vec::new(),
                snapshot_after_logs: DEFAULT_SNAPSHOT_AFTER_LOGS,
                ca_cert: None,
                ca_key: None,
                tls_cert: None,
                tls_key: None,
                insecure: false,
            },
            api: ApiConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 5681)),
                admin_token_file: None,
                localhost_is_admin: None,
                tls_cert: None,
                tls_key: None,
            },
            kds: KdsConfig {
                listen: SocketAddr::from(([0, 0, 0, 0], 5685)),
                tls_cert: None,
                tls_key: None,
            },
            diagnostics: DiagnosticsConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 5680)),
            },
        }
    }
}

impl GlobalConfig {
    /// Loads defaults, then `file` (if any), then the process's `MOSAIC_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, process_env())
    }

    /// Like [`GlobalConfig::load`] with an explicit set of environment variables (name, value).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (config, figment) = load_layers(Self::default(), file, env)?;
        config.validate(&figment)?;
        Ok(config)
    }

    /// This replica's peers, or a single-node list made of `node_id` and `advertise` if `peers` is empty.
    pub fn effective_peers(&self) -> Vec<RaftPeer> {
        match self.raft.peers.is_empty() {
            true => vec![RaftPeer {
                id: self.raft.node_id,
                addr: self.raft.advertise.clone(),
            }],
            false => self.raft.peers.clone(),
        }
    }

    fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        if self.store.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                figment,
                "store.data_dir",
                "must not be empty",
            ));
        }
        check_host_port(&self.raft.advertise)
            .map_err(|reason| ConfigError::invalid(figment, "raft.advertise", reason))?;
        let mut ids = BTreeSet::new();
        for peer in &self.raft.peers {
            if !ids.insert(peer.id) {
                return Err(ConfigError::invalid(
                    figment,
                    "raft.peers",
                    format!("node id {} appears more than once", peer.id),
                ));
            }
        }
        if !self.raft.peers.is_empty() && !ids.contains(&self.raft.node_id) {
            return Err(ConfigError::invalid(
                figment,
                "raft.peers",
                format!(
                    "does not list this replica's raft.node_id {} (peers must list every replica, this one included)",
                    self.raft.node_id
                ),
            ));
        }
        self.validate_raft_tls(figment)?;
        check_tls_pair(figment, "api", &self.api.tls_cert, &self.api.tls_key)?;
        check_tls_pair(figment, "kds", &self.kds.tls_cert, &self.kds.tls_key)?;
        Ok(())
    }
}

impl GlobalConfig {
    fn validate_raft_tls(&self, figment: &Figment) -> Result<(), ConfigError> {
        let raft = &self.raft;
        check_tls_pair(figment, "raft", &raft.tls_cert, &raft.tls_key)?;
        let tls_keys = [
            ("raft.ca_cert", raft.ca_cert.is_some()),
            ("raft.ca_key", raft.ca_key.is_some()),
            ("raft.tls_cert", raft.tls_cert.is_some()),
        ];
        if raft.insecure
            && let Some((key, _)) = tls_keys.iter().find(|(_, set)| *set)
        {
            return Err(ConfigError::invalid(
                figment,
                "raft.insecure",
                format!(
                    "is true, but `{key}` is set too; unset raft.insecure to use TLS (the default), or unset the raft TLS files"
                ),
            ));
        }
        if raft.ca_key.is_some() && raft.ca_cert.is_none() {
            return Err(ConfigError::invalid(
                figment,
                "raft.ca_key",
                "is set but `raft.ca_cert` is not; set both (the cluster CA's certificate and key)",
            ));
        }
        if raft.tls_cert.is_some() && raft.ca_cert.is_none() {
            return Err(ConfigError::invalid(
                figment,
                "raft.tls_cert",
                "is set but `raft.ca_cert` is not; set raft.ca_cert to the cluster CA that signed it (peers are checked against it)",
            ));
        }
        if raft.ca_cert.is_some() && raft.ca_key.is_none() && raft.tls_cert.is_none() {
            return Err(ConfigError::invalid(
                figment,
                "raft.ca_cert",
                "is set, but neither `raft.ca_key` (to issue this replica's certificate at start) nor `raft.tls_cert`/`raft.tls_key` (a certificate issued with `mosaic-global generate raft-cert`) is; set one of them",
            ));
        }
        Ok(())
    }
}

// === impl ZoneConfig ===

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            zone: ZoneName("zone-1".to_owned()),
            store: StoreConfig {
                data_dir: PathBuf::from("./mosaic-data/zone"),
            },
            global: GlobalConnectionConfig {
                address: GlobalAddress::default(),
                ca_cert: None,
                token_file: None,
            },
            api: ZoneApiConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 5681)),
                admin_token_file: None,
                localhost_is_admin: None,
            },
            dp_server: DpServerConfig {
                listen: SocketAddr::from(([0, 0, 0, 0], 5678)),
                tls_cert: None,
                tls_key: None,
            },
            diagnostics: DiagnosticsConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 5680)),
            },
            issuer: IssuerConfig::default(),
        }
    }
}

impl ZoneConfig {
    /// Loads defaults, then `file` (if any), then the process's `MOSAIC_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, process_env())
    }

    /// Like [`ZoneConfig::load`] with an explicit set of environment variables (name, value).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (config, figment) = load_layers(Self::default(), file, env)?;
        config.validate(&figment)?;
        Ok(config)
    }

    fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        if self.store.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                figment,
                "store.data_dir",
                "must not be empty",
            ));
        }
        if self.issuer.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                figment,
                "issuer.max_in_flight",
                "must be at least 1",
            ));
        }
        check_tls_pair(
            figment,
            "dp_server",
            &self.dp_server.tls_cert,
            &self.dp_server.tls_key,
        )
    }
}

// === impl ApiConfig, ZoneApiConfig ===

impl ApiConfig {
    /// Whether loopback callers are admins without a token: `api.localhost_is_admin` if set,
    /// else true exactly when no `api.admin_token_file` is set (with one, the contract says every
    /// request needs the token).
    pub fn effective_localhost_is_admin(&self) -> bool {
        resolve_localhost_is_admin(self.localhost_is_admin, self.admin_token_file.as_deref())
    }
}

impl ZoneApiConfig {
    /// Whether loopback callers are admins without a token; the global's rule
    /// ([`ApiConfig::effective_localhost_is_admin`]).
    pub fn effective_localhost_is_admin(&self) -> bool {
        resolve_localhost_is_admin(self.localhost_is_admin, self.admin_token_file.as_deref())
    }
}

/// The one place `api.localhost_is_admin` is resolved, for the global and the zone alike.
fn resolve_localhost_is_admin(explicit: Option<bool>, admin_token_file: Option<&Path>) -> bool {
    explicit.unwrap_or(admin_token_file.is_none())
}

// === impl RaftPeer ===

impl FromStr for RaftPeer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected \"<node id>=<host>:<port>\", e.g. \"1=10.0.0.1:5682\"";
        let Some((id, addr)) = s.split_once('=') else {
            return Err(format!("peer {s:?} has no `=`; {expected}"));
        };
        let id = id.trim().parse::<u64>().map_err(|_| {
            format!("peer {s:?}: node id {id:?} is not a non-negative integer; {expected}")
        })?;
        let addr = addr.trim();
        check_host_port(addr).map_err(|reason| format!("peer {s:?}: {reason}; {expected}"))?;
        Ok(Self {
            id,
            addr: addr.to_owned(),
        })
    }
}

impl TryFrom<String> for RaftPeer {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<RaftPeer> for String {
    fn from(peer: RaftPeer) -> Self {
        peer.to_string()
    }
}

impl fmt::Display for RaftPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.id, self.addr)
    }
}

// === impl ZoneName ===

impl ZoneName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ZoneName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rule = "a zone name must be a DNS-1035 label: 1-63 characters of lowercase a-z, 0-9 and '-', \
                    starting with a letter and ending with a letter or digit";
        let bytes = s.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        match valid {
            true => Ok(Self(s.to_owned())),
            false => Err(format!("{s:?} is not a valid zone name: {rule}")),
        }
    }
}

impl TryFrom<String> for ZoneName {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ZoneName> for String {
    fn from(name: ZoneName) -> Self {
        name.0
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl GlobalAddress ===

impl GlobalAddress {
    /// Schemes accepted in `global.address`.
    pub const SCHEMES: [&'static str; 4] = ["grpcs", "grpc", "https", "http"];

    /// The URL as written (without a trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The scheme: one of [`GlobalAddress::SCHEMES`].
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if the URL has one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the scheme asks for TLS (`grpcs` or `https`).
    pub fn is_tls(&self) -> bool {
        matches!(self.scheme.as_str(), "grpcs" | "https")
    }
}

impl Default for GlobalAddress {
    fn default() -> Self {
        Self {
            url: "grpcs://127.0.0.1:5685".to_owned(),
            scheme: "grpcs".to_owned(),
            host: "127.0.0.1".to_owned(),
            port: Some(5685),
        }
    }
}

impl FromStr for GlobalAddress {
    type Err = String;

    /// One URL, or several separated by commas (a zone fails over between them); the accessors
    /// describe the first.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let entries: Vec<&str> = s.split(',').map(str::trim).collect();
        if entries.iter().any(|e| e.is_empty()) {
            return Err(format!(
                "{s:?} has an empty entry; list global addresses separated by commas, e.g. \"grpcs://global-1:5685,grpcs://global-2:5685\""
            ));
        }
        let mut first = None;
        for entry in &entries {
            let parsed = Self::parse_one(entry)?;
            first.get_or_insert(parsed);
        }
        let (scheme, host, port) = first.ok_or_else(|| format!("{s:?} names no address"))?;
        Ok(Self {
            url: entries
                .iter()
                .map(|e| e.trim_end_matches('/'))
                .collect::<Vec<_>>()
                .join(","),
            scheme,
            host,
            port,
        })
    }
}

impl GlobalAddress {
    fn parse_one(s: &str) -> Result<(String, String, Option<u16>), String> {
        let example = "expected e.g. \"grpcs://global.example:5685\"";
        let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e}); {example}"))?;
        if !Self::SCHEMES.contains(&url.scheme()) {
            return Err(format!(
                "{s:?} has scheme {:?}; use one of {}",
                url.scheme(),
                Self::SCHEMES.join(", ")
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(format!("{s:?} has no host; {example}")),
        };
        Ok((url.scheme().to_owned(), host, url.port()))
    }

    /// Every configured address, in order.
    pub fn entries(&self) -> Vec<&str> {
        self.url.split(',').collect()
    }
}

impl TryFrom<String> for GlobalAddress {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<GlobalAddress> for String {
    fn from(address: GlobalAddress) -> Self {
        address.url
    }
}

impl fmt::Display for GlobalAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

// === loading ===

/// The process's environment as (name, value) pairs; variables that are not UTF-8 are skipped.
fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// `["kds", "listen"]` → `MOSAIC_KDS__LISTEN`.
fn env_var_name<K: AsRef<str>>(path: &[K]) -> String {
    let joined: Vec<String> = path.iter().map(|k| k.as_ref().to_uppercase()).collect();
    format!("{ENV_PREFIX}{}", joined.join(ENV_SEPARATOR))
}

fn load_layers<T: Serialize + DeserializeOwned>(
    defaults: T,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(T, Figment), ConfigError> {
    let default_dict = match Value::serialize(&defaults) {
        Ok(Value::Dict(_, dict)) => dict,
        Ok(_) | Err(_) => Dict::new(),
    };
    let mut figment = Figment::from(Serialized::defaults(&defaults));
    if let Some(path) = file {
        // Read it ourselves first: figment treats a missing file as empty.
        std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        figment = figment.merge(Toml::file_exact(path));
    }
    let overrides = EnvOverrides::collect(&default_dict, env)?;
    let figment = figment.merge(overrides);
    let config = figment
        .extract::<T>()
        .map_err(|e| ConfigError::from_figment(e, &figment, file))?;
    Ok((config, figment))
}

/// Squeezes a multi-line parser message (TOML errors quote the source) into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| {
            let snippet = line
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !line.is_empty() && !snippet.starts_with('|')
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_host_port(addr: &str) -> Result<(), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("address {addr:?} has no port; expected host:port"));
    };
    if host.trim_matches(['[', ']']).is_empty() {
        return Err(format!("address {addr:?} has no host; expected host:port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(format!(
            "address {addr:?} has port {port:?}; expected a number 1-65535"
        )),
    }
}

fn check_tls_pair(
    figment: &Figment,
    section: &str,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    match (cert, key) {
        (Some(_), None) => Err(ConfigError::invalid(
            figment,
            &format!("{section}.tls_cert"),
            format!("is set but `{section}.tls_key` is not; set both or neither"),
        )),
        (None, Some(_)) => Err(ConfigError::invalid(
            figment,
            &format!("{section}.tls_key"),
            format!("is set but `{section}.tls_cert` is not; set both or neither"),
        )),
        _ => Ok(()),
    }
}

/// The `MOSAIC_*` environment overrides as a figment provider, typed after the defaults.
struct EnvOverrides {
    dict: Dict,
}

// === impl EnvOverrides ===

impl EnvOverrides {
    fn collect(
        defaults: &Dict,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut dict = Dict::new();
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        vars.sort();
        for (var, raw) in vars {
            let stripped = &var[ENV_PREFIX.len()..];
            let path: Vec<String> = stripped
                .split(ENV_SEPARATOR)
                .map(str::to_lowercase)
                .collect();
            match lookup(defaults, &path) {
                Some(Value::Dict(..)) | None if path.len() == 1 => {
                    // Not one of ours (e.g. mosaicctl's MOSAIC_API, MOSAIC_TOKEN): ignore.
                }
                Some(Value::Dict(..)) => {
                    return Err(ConfigError::UnknownKey {
                        key: path.join("."),
                        origin: ConfigSource::Env(var.clone()),
                        hint: format!(
                            "`{}` is a section; set one of its keys instead: {}",
                            path.join("."),
                            keys_under(defaults, &path).join(", ")
                        ),
                    });
                }
                None => {
                    let parent = &path[..path.len() - 1];
                    let known = keys_under(defaults, parent);
                    let hint = match known.is_empty() {
                        true => format!(
                            "unset it or fix its spelling; known variables start with {}",
                            keys_under(defaults, &[])
                                .iter()
                                .map(|k| env_var_name(&[k]))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        false => format!(
                            "unset it or fix its spelling; variables for [{}] are {}",
                            parent.join("."),
                            known
                                .iter()
                                .map(|k| {
                                    let mut p = parent.to_vec();
                                    p.push(k.clone());
                                    env_var_name(&p)
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    return Err(ConfigError::UnknownKey {
                        key: path.join("."),
                        origin: ConfigSource::Env(var.clone()),
                        hint,
                    });
                }
                Some(default) => {
                    let value = typed_env_value(default, &raw);
                    insert(&mut dict, &path, value);
                }
            }
        }
        Ok(Self { dict })
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_PROVIDER_NAME).interpolater(|_, keys| env_var_name(keys))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Shapes a raw environment string like the default value at the same key.
fn typed_env_value(default: &Value, raw: &str) -> Value {
    match default {
        // Booleans, and unset optional ones (`api.localhost_is_admin`): `true`/`false`.
        Value::Bool(..) | Value::Empty(..) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(Tag::Default, true),
            "false" => Value::Bool(Tag::Default, false),
            _ => Value::String(Tag::Default, raw.to_owned()),
        },
        Value::Num(..) => match raw.trim().parse::<u64>() {
            Ok(n) => Value::Num(Tag::Default, Num::U64(n)),
            Err(_) => Value::String(Tag::Default, raw.to_owned()),
        },
        Value::Array(..) => {
            let inner = raw.trim();
            let inner = inner.strip_prefix('[').unwrap_or(inner);
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            let items = inner
                .split(',')
                .map(|item| item.trim().trim_matches(['"', '\'']).trim())
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(Tag::Default, item.to_owned()))
                .collect();
            Value::Array(Tag::Default, items)
        }
        _ => Value::String(Tag::Default, raw.to_owned()),
    }
}

fn lookup<'a>(dict: &'a Dict, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = dict.get(first)?;
    match (rest.is_empty(), value) {
        (true, _) => Some(value),
        (false, Value::Dict(_, inner)) => lookup(inner, rest),
        (false, _) => None,
    }
}

fn keys_under(dict: &Dict, path: &[String]) -> Vec<String> {
    let inner = match path.is_empty() {
        true => Some(dict),
        false => match lookup(dict, path) {
            Some(Value::Dict(_, inner)) => Some(inner),
            _ => None,
        },
    };
    inner
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::Dict(Tag::Default, Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::Dict(Tag::Default, Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

/// Serde for file-valued keys: `""` (the contract's "unset") ⇄ `None`.
mod optional_path {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<PathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(path) => serializer.serialize_str(&path.to_string_lossy()),
            None => serializer.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        let raw = Option::<String>::deserialize(deserializer)?;
        Ok(raw.filter(|s| !s.trim().is_empty()).map(PathBuf::from))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn global_address_lists_fail_over_in_order() {
        let a: GlobalAddress = "grpcs://g1:5685, grpcs://g2:5685/".parse().unwrap();
        assert_eq!(a.entries(), ["grpcs://g1:5685", "grpcs://g2:5685"]);
        assert_eq!(a.host(), "g1");
        assert!(
            "grpcs://g1:5685,"
                .parse::<GlobalAddress>()
                .unwrap_err()
                .contains("empty entry")
        );
        assert!(
            "grpcs://g1:5685,ftp://x"
                .parse::<GlobalAddress>()
                .unwrap_err()
                .contains("scheme")
        );
    }

    #[test]
    fn global_defaults_match_contract() {
        let c = GlobalConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(c, GlobalConfig::default());
        assert_eq!(c.store.data_dir, PathBuf::from("./mosaic-data/global"));
        assert_eq!(c.raft.node_id, 1);
        assert_eq!(c.raft.listen, addr("127.0.0.1:5682"));
        assert_eq!(c.raft.advertise, "127.0.0.1:5682");
        assert!(c.raft.peers.is_empty());
        assert_eq!(c.api.listen, addr("127.0.0.1:5681"));
        assert_eq!(c.api.admin_token_file, None);
        assert_eq!(
            (c.api.tls_cert.as_ref(), c.api.tls_key.as_ref()),
            (None, None)
        );
        assert_eq!(c.kds.listen, addr("0.0.0.0:5685"));
        assert_eq!(
            (c.kds.tls_cert.as_ref(), c.kds.tls_key.as_ref()),
            (None, None)
        );
        assert_eq!(c.diagnostics.listen, addr("127.0.0.1:5680"));
        assert_eq!(
            c.effective_peers(),
            vec![RaftPeer {
                id: 1,
                addr: "127.0.0.1:5682".into()
            }]
        );
    }

    #[test]
    fn zone_defaults_match_contract() {
        let c = ZoneConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(c, ZoneConfig::default());
        assert_eq!(c.zone.as_str(), "zone-1");
        assert_eq!(c.store.data_dir, PathBuf::from("./mosaic-data/zone"));
        assert_eq!(c.global.address.as_str(), "grpcs://127.0.0.1:5685");
        assert_eq!(c.global.address, "grpcs://127.0.0.1:5685".parse().unwrap());
        assert!(c.global.address.is_tls());
        assert_eq!(c.global.ca_cert, None);
        assert_eq!(c.global.token_file, None);
        assert_eq!(c.api.listen, addr("127.0.0.1:5681"));
        assert_eq!(c.dp_server.listen, addr("0.0.0.0:5678"));
        assert_eq!(c.dp_server.tls_cert, None);
        assert_eq!(c.diagnostics.listen, addr("127.0.0.1:5680"));
    }

    #[test]
    fn contract_example_file_loads() {
        let f = toml_file(
            r#"
[store]
data_dir = "/var/lib/mosaic"
[raft]
node_id = 2
listen = "0.0.0.0:5682"
advertise = "10.0.0.2:5682"
peers = ["1=10.0.0.1:5682", "2=10.0.0.2:5682", "3=10.0.0.3:5682"]
[api]
listen = "0.0.0.0:5681"
admin_token_file = "/etc/mosaic/admin-token"
tls_cert = ""
tls_key = ""
[kds]
tls_cert = "/etc/mosaic/kds.pem"
tls_key = "/etc/mosaic/kds-key.pem"
"#,
        );
        let c = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap();
        assert_eq!(c.store.data_dir, PathBuf::from("/var/lib/mosaic"));
        assert_eq!(c.raft.node_id, 2);
        assert_eq!(c.raft.peers.len(), 3);
        assert_eq!(
            c.raft.peers[2],
            RaftPeer {
                id: 3,
                addr: "10.0.0.3:5682".into()
            }
        );
        assert_eq!(
            c.api.admin_token_file,
            Some("/etc/mosaic/admin-token".into())
        );
        assert_eq!(c.api.tls_cert, None);
        assert_eq!(c.kds.tls_cert, Some("/etc/mosaic/kds.pem".into()));
        // Untouched keys keep their defaults.
        assert_eq!(c.kds.listen, addr("0.0.0.0:5685"));
        assert_eq!(c.diagnostics.listen, addr("127.0.0.1:5680"));
    }

    #[test]
    fn env_overrides_file() {
        let f = toml_file("[kds]\nlisten = \"127.0.0.1:1000\"\n[raft]\nnode_id = 5\n");
        let c = GlobalConfig::load_from(
            Some(f.path()),
            env(&[
                ("MOSAIC_KDS__LISTEN", "0.0.0.0:6000"),
                ("MOSAIC_RAFT__PEERS", "1=a:1, 2=b:2"),
                ("MOSAIC_RAFT__NODE_ID", "2"),
                ("MOSAIC_API__TLS_CERT", "/c.pem"),
                ("MOSAIC_API__TLS_KEY", "/k.pem"),
                // Not ours: mosaicctl's variables and unrelated ones are ignored.
                ("MOSAIC_API", "http://x:5681"),
                ("MOSAIC_TOKEN", "secret"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kds.listen, addr("0.0.0.0:6000"));
        assert_eq!(c.raft.node_id, 2);
        assert_eq!(
            c.raft.peers.iter().map(|p| p.id).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(c.api.tls_cert, Some("/c.pem".into()));

        let c = GlobalConfig::load_from(
            None,
            env(&[
                ("MOSAIC_RAFT__PEERS", "[\"7=h:1\"]"),
                ("MOSAIC_RAFT__NODE_ID", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.raft.peers,
            vec![RaftPeer {
                id: 7,
                addr: "h:1".into()
            }]
        );

        let z = ZoneConfig::load_from(
            None,
            env(&[
                ("MOSAIC_ZONE", "east"),
                ("MOSAIC_GLOBAL__ADDRESS", "grpc://global:5685"),
                ("MOSAIC_DP_SERVER__LISTEN", "127.0.0.1:7000"),
            ]),
        )
        .unwrap();
        assert_eq!(z.zone.as_str(), "east");
        assert!(!z.global.address.is_tls());
        assert_eq!(z.global.address.host(), "global");
        assert_eq!(z.global.address.port(), Some(5685));
        assert_eq!(z.dp_server.listen, addr("127.0.0.1:7000"));
    }

    #[test]
    fn bad_peer_is_clear() {
        let f = toml_file("[raft]\npeers = [\"1=10.0.0.1:5682\", \"two=10.0.0.2:5682\"]\n");
        let err = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("raft.peers.1"), "{msg}");
        assert_eq!(err.origin(), Some(&ConfigSource::File(f.path().into())));
        assert!(
            msg.contains("two=10.0.0.2:5682") && msg.contains("1=10.0.0.1:5682"),
            "{msg}"
        );
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");

        let err = GlobalConfig::load_from(None, env(&[("MOSAIC_RAFT__PEERS", "1-10.0.0.1")]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("MOSAIC_RAFT__PEERS") && msg.contains("no `=`"),
            "{msg}"
        );

        for bad in ["1=", "1=host", "1=host:99999", "1=:5682"] {
            assert!(bad.parse::<RaftPeer>().is_err(), "{bad}");
        }
        assert_eq!(
            "3=[::1]:5682".parse::<RaftPeer>().unwrap().to_string(),
            "3=[::1]:5682"
        );
    }

    #[test]
    fn peers_must_include_self_once() {
        let err = GlobalConfig::load_from(None, env(&[("MOSAIC_RAFT__PEERS", "2=a:1,3=b:1")]))
            .unwrap_err();
        assert_eq!(err.key(), Some("raft.peers"));
        assert!(err.to_string().contains("node_id 1"), "{err}");
        let err = GlobalConfig::load_from(None, env(&[("MOSAIC_RAFT__PEERS", "1=a:1,1=b:1")]))
            .unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    #[test]
    fn bad_addr_is_clear() {
        let f = toml_file("[api]\nlisten = \"localhost\"\n");
        let err = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("api.listen"), "{msg}");
        assert!(
            msg.contains("localhost") && msg.contains("fix `api.listen`"),
            "{msg}"
        );

        let err = GlobalConfig::load_from(None, env(&[("MOSAIC_KDS__LISTEN", "0.0.0.0:99999")]))
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            err.origin(),
            Some(&ConfigSource::Env("MOSAIC_KDS__LISTEN".into())),
            "{msg}"
        );
        assert!(
            msg.contains("environment variable `MOSAIC_KDS__LISTEN`"),
            "{msg}"
        );

        let err =
            GlobalConfig::load_from(None, env(&[("MOSAIC_RAFT__NODE_ID", "two")])).unwrap_err();
        assert!(err.to_string().contains("MOSAIC_RAFT__NODE_ID"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let f = toml_file("[kds]\nlisten = \"0.0.0.0:5685\"\nlisten_addr = \"x\"\n");
        let err = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{msg}");
        assert_eq!(err.key(), Some("kds.listen_addr"));
        assert_eq!(err.origin(), Some(&ConfigSource::File(f.path().into())));
        assert!(msg.contains("listen, tls_cert, tls_key"), "{msg}");

        let f = toml_file("zone = \"east\"\n");
        let err = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(err.key(), Some("zone"), "{err}");

        let f = toml_file("[nope]\nx = 1\n");
        let err = ZoneConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(err.key(), Some("nope"), "{err}");

        let err =
            GlobalConfig::load_from(None, env(&[("MOSAIC_KDS__LISTN", "0.0.0.0:1")])).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("kds.listn"), "{msg}");
        assert!(msg.contains("MOSAIC_KDS__LISTEN"), "{msg}");
        let err = ZoneConfig::load_from(None, env(&[("MOSAIC_RAFT__NODE_ID", "2")])).unwrap_err();
        assert_eq!(err.key(), Some("raft.node_id"), "{err}");
    }

    #[test]
    fn bad_zone_name_and_address() {
        for bad in ["Zone", "1zone", "zone-", "", "a_b", &"a".repeat(64)] {
            let err = ZoneConfig::load_from(None, env(&[("MOSAIC_ZONE", bad)])).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.key(), Some("zone"), "{bad}: {msg}");
            assert!(
                msg.contains("DNS-1035") && msg.contains("MOSAIC_ZONE"),
                "{msg}"
            );
        }
        for good in ["a", "east-1", &"a".repeat(63)] {
            assert!(good.parse::<ZoneName>().is_ok(), "{good}");
        }
        let f = toml_file("zone = \"East\"\n");
        let err = ZoneConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert!(
            err.to_string().contains(&f.path().display().to_string()),
            "{err}"
        );

        for bad in ["ftp://x:1", "127.0.0.1:5685", "grpcs://:5685", "not a url"] {
            let err =
                ZoneConfig::load_from(None, env(&[("MOSAIC_GLOBAL__ADDRESS", bad)])).unwrap_err();
            assert_eq!(err.key(), Some("global.address"), "{bad}: {err}");
        }
        let a: GlobalAddress = "https://[::1]:443/".parse().unwrap();
        assert_eq!((a.host(), a.as_str()), ("::1", "https://[::1]:443"));
    }

    #[test]
    fn missing_file_and_bad_toml() {
        let err =
            GlobalConfig::load_from(Some(Path::new("/nonexistent/m.toml")), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::ReadFile { .. }));
        assert!(err.to_string().contains("/nonexistent/m.toml"), "{err}");

        let f = toml_file("[kds\nlisten = 1\n");
        let err = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(
            err.to_string().contains(&f.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn localhost_is_admin_defaults_to_whether_no_token_file_is_set() {
        let c = GlobalConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(c.api.localhost_is_admin, None);
        assert!(c.api.effective_localhost_is_admin());
        let c = GlobalConfig::load_from(
            None,
            env(&[("MOSAIC_API__ADMIN_TOKEN_FILE", "/etc/mosaic/admin-token")]),
        )
        .unwrap();
        assert!(!c.api.effective_localhost_is_admin());
        let c = GlobalConfig::load_from(
            None,
            env(&[
                ("MOSAIC_API__ADMIN_TOKEN_FILE", "/etc/mosaic/admin-token"),
                ("MOSAIC_API__LOCALHOST_IS_ADMIN", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.api.localhost_is_admin, Some(true));
        assert!(c.api.effective_localhost_is_admin());
        let f = toml_file("[api]\nlocalhost_is_admin = false\n");
        let c = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap();
        assert!(!c.api.effective_localhost_is_admin());

        let z = ZoneConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(z.api.admin_token_file, None);
        assert!(z.api.effective_localhost_is_admin());
        let f = toml_file("[api]\nlisten = \"0.0.0.0:5681\"\nadmin_token_file = \"/t\"\n");
        let z = ZoneConfig::load_from(Some(f.path()), env(&[])).unwrap();
        assert_eq!(z.api.admin_token_file, Some(PathBuf::from("/t")));
        assert!(!z.api.effective_localhost_is_admin());
        let z = ZoneConfig::load_from(
            Some(f.path()),
            env(&[("MOSAIC_API__LOCALHOST_IS_ADMIN", "True")]),
        )
        .unwrap();
        assert!(z.api.effective_localhost_is_admin());

        let err = ZoneConfig::load_from(None, env(&[("MOSAIC_API__LOCALHOST_IS_ADMIN", "yes!")]))
            .unwrap_err();
        assert_eq!(err.key(), Some("api.localhost_is_admin"), "{err}");
        assert!(
            err.to_string().contains("MOSAIC_API__LOCALHOST_IS_ADMIN"),
            "{err}"
        );
    }

    #[test]
    fn tls_pair_must_be_complete() {
        let err =
            GlobalConfig::load_from(None, env(&[("MOSAIC_KDS__TLS_CERT", "/c.pem")])).unwrap_err();
        assert_eq!(err.key(), Some("kds.tls_cert"));
        assert!(err.to_string().contains("MOSAIC_KDS__TLS_CERT"), "{err}");
        let err = ZoneConfig::load_from(None, env(&[("MOSAIC_DP_SERVER__TLS_KEY", "/k.pem")]))
            .unwrap_err();
        assert_eq!(err.key(), Some("dp_server.tls_key"), "{err}");
    }
}
