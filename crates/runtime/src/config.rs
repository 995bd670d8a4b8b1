//! The configuration loader of the control planes, and the sections they share.
//!
//! A server's configuration type (`mosaic_global::config::GlobalConfig`,
//! `mosaic_zone::config::ZoneConfig`) lives with the binary that owns it and implements
//! [`LoadConfig`]; this module loads it in three layers, later layers winning:
//!
//! 1. the built-in defaults of the contract (the type's `Default`);
//! 2. an optional TOML file (`--config FILE`); unknown keys are an error naming the key;
//! 3. environment variables with the `MOSAIC_` prefix and `__` between levels, e.g.
//!    `MOSAIC_KDS__LISTEN=0.0.0.0:5685` or `MOSAIC_RAFT__NODE_ID=2`. List values (`raft.peers`) take
//!    a comma-separated list, with or without surrounding brackets. Variables without `__` that are
//!    not a top-level key (such as mosaicctl's `MOSAIC_API` and `MOSAIC_TOKEN`) are ignored; a
//!    variable with `__` that names no key is an error.
//!
//! Empty strings in file-valued keys (`tls_cert = ""`) mean "not set" and load as `None`
//! ([`optional_path`]).
//!
//! Every failure is a [`ConfigError`] naming the key, where the value came from (file or
//! environment variable) and what to do about it.
//!
//! Shared sections: [`StoreConfig`] (`[store]`), [`DiagnosticsConfig`] (`[diagnostics]`) and
//! [`ApiConfig`] (`[api]`); [`GrpcServerConfig`] is the shape of a gRPC server's section
//! (`[kds]`, `[dp_server]`).
//!
//! Module map:
//! - [`api`]: `[api]`, the HTTP API section both servers share (listen, admin rule, HTTPS API).
//! - `test_support` (feature `test-support`): the configurations' unit-test helpers.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Format, Serialized, Toml},
    value::{Dict, Map, Num, Tag, Value},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub mod api;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use api::{ApiConfig, DEFAULT_HTTPS_API_LISTEN, listens_overlap, resolve_localhost_is_admin};

/// Prefix of every environment variable the configuration loader reads.
pub const ENV_PREFIX: &str = "MOSAIC_";

/// Separator between nesting levels in environment variable names (`MOSAIC_KDS__LISTEN`).
pub const ENV_SEPARATOR: &str = "__";

/// Name of the figment provider for environment overrides; used to recognise its metadata.
const ENV_PROVIDER_NAME: &str = "MOSAIC_ environment variables";

/// `[store]`: on-disk state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `store.data_dir`: directory holding the store, generated CAs and keys.
    pub data_dir: PathBuf,
}

/// `[diagnostics]`: `GET /metrics`, `/ready`, `/healthy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsConfig {
    /// `diagnostics.listen`: address of the diagnostics HTTP server.
    pub listen: SocketAddr,
}

/// A gRPC server's section (the global's `[kds]`, a zone's `[dp_server]`): where it listens and
/// the certificate it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcServerConfig {
    /// `<section>.listen`: address of the gRPC server.
    pub listen: SocketAddr,
    /// `<section>.tls_cert`: PEM chain; unset = a CA and a server certificate are generated into
    /// `store.data_dir`.
    #[serde(with = "optional_path")]
    pub tls_cert: Option<PathBuf>,
    /// `<section>.tls_key`: PEM private key matching `tls_cert`.
    #[serde(with = "optional_path")]
    pub tls_key: Option<PathBuf>,
}

/// A server configuration the loader fills: defaults (`Default`), then the TOML file, then the
/// `MOSAIC_*` environment; [`LoadConfig::validate`] checks what the types cannot say.
pub trait LoadConfig: Serialize + DeserializeOwned + Default {
    /// Checks the loaded configuration; errors name the key and where it was set ([`Sources`]).
    fn validate(&self, sources: &Sources) -> Result<(), ConfigError>;

    /// Loads defaults, then `file` (if any), then the process's `MOSAIC_*` environment variables.
    fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, process_env())
    }

    /// Like [`LoadConfig::load`] with an explicit set of environment variables (name, value).
    fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (config, figment) = load_layers(Self::default(), file, env)?;
        config.validate(&Sources { figment })?;
        Ok(config)
    }
}

/// Where each value of a loaded configuration came from, for errors found after loading.
pub struct Sources {
    figment: Figment,
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

// === impl Sources ===

impl Sources {
    /// A [`ConfigError::InvalidValue`] for dotted `key`, naming where its value was set.
    pub fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        let origin = ConfigSource::from_metadata(self.figment.find_metadata(key), &path);
        let hint = origin.fix_hint(key);
        ConfigError::InvalidValue {
            key: key.to_owned(),
            origin,
            reason: reason.into(),
            hint,
        }
    }

    /// `<section>.tls_cert` and `<section>.tls_key` are set together or not at all.
    pub fn check_tls_pair(
        &self,
        section: &str,
        cert: &Option<PathBuf>,
        key: &Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        match (cert, key) {
            (Some(_), None) => Err(self.invalid(
                &format!("{section}.tls_cert"),
                format!("is set but `{section}.tls_key` is not; set both or neither"),
            )),
            (None, Some(_)) => Err(self.invalid(
                &format!("{section}.tls_key"),
                format!("is set but `{section}.tls_cert` is not; set both or neither"),
            )),
            _ => Ok(()),
        }
    }
}

// === impl StoreConfig ===

impl StoreConfig {
    /// `store.data_dir` must not be empty.
    pub fn validate(&self, sources: &Sources) -> Result<(), ConfigError> {
        match self.data_dir.as_os_str().is_empty() {
            true => Err(sources.invalid("store.data_dir", "must not be empty")),
            false => Ok(()),
        }
    }
}

// === impl DiagnosticsConfig ===

impl Default for DiagnosticsConfig {
    /// The contract's `diagnostics.listen` default for every server, `127.0.0.1:5680`.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5680)),
        }
    }
}

// === impl GrpcServerConfig ===

impl GrpcServerConfig {
    /// Listening on `listen`, serving generated certificates (no `tls_cert`/`tls_key`).
    pub fn on(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls_cert: None,
            tls_key: None,
        }
    }
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
pub mod optional_path {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `None` as `""`.
    pub fn serialize<S: Serializer>(
        value: &Option<PathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(path) => serializer.serialize_str(&path.to_string_lossy()),
            None => serializer.serialize_str(""),
        }
    }

    /// Reads `""` (or blanks) as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        let raw = Option::<String>::deserialize(deserializer)?;
        Ok(raw.filter(|s| !s.trim().is_empty()).map(PathBuf::from))
    }
}

#[cfg(test)]
mod tests {
    use super::{test_support::*, *};

    /// A configuration made of the shared sections only, to exercise the loader on its own.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        store: StoreConfig,
        diagnostics: DiagnosticsConfig,
        #[serde(with = "optional_path")]
        token_file: Option<PathBuf>,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                store: StoreConfig {
                    data_dir: PathBuf::from("./data"),
                },
                diagnostics: DiagnosticsConfig {
                    listen: SocketAddr::from(([127, 0, 0, 1], 5680)),
                },
                token_file: None,
            }
        }
    }

    impl LoadConfig for Demo {
        fn validate(&self, sources: &Sources) -> Result<(), ConfigError> {
            self.store.validate(sources)
        }
    }

    #[test]
    fn layers_defaults_file_then_environment() {
        assert_eq!(Demo::load_from(None, env(&[])).unwrap(), Demo::default());
        let f = toml_file(
            "token_file = \"\"\n[store]\ndata_dir = \"/d\"\n[diagnostics]\nlisten = \"0.0.0.0:1\"\n",
        );
        let c = Demo::load_from(
            Some(f.path()),
            env(&[
                ("MOSAIC_DIAGNOSTICS__LISTEN", "127.0.0.1:2"),
                ("MOSAIC_API", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.data_dir, PathBuf::from("/d"));
        assert_eq!(c.diagnostics.listen, SocketAddr::from(([127, 0, 0, 1], 2)));
        assert_eq!(c.token_file, None);
    }

    #[test]
    fn errors_name_key_and_source() {
        let err = Demo::load_from(None, env(&[("MOSAIC_STORE__DATA_DIR", "")])).unwrap_err();
        assert_eq!(err.key(), Some("store.data_dir"), "{err}");
        assert_eq!(
            err.origin(),
            Some(&ConfigSource::Env("MOSAIC_STORE__DATA_DIR".into()))
        );
        assert!(err.to_string().contains("must not be empty"), "{err}");

        let err = Demo::load_from(None, env(&[("MOSAIC_STORE__DATADIR", "/x")])).unwrap_err();
        assert_eq!(err.key(), Some("store.datadir"), "{err}");
        assert!(err.to_string().contains("MOSAIC_STORE__DATA_DIR"), "{err}");

        let f = toml_file("[store]\ndata_dir = \"/d\"\nextra = 1\n");
        let err = Demo::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
        assert_eq!(err.key(), Some("store.extra"));
    }
}
