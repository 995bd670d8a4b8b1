//! Configuration of `mosaic-zone`: [`ZoneConfig`] and its own sections (`zone`, `[global]`,
//! `[dp_server]`, `[issuer]`, `[dataplane_tokens]`, `[[vault_auth]]`), loaded by
//! [`mosaic_runtime::config`] (defaults, TOML file, `MOSAIC_` environment) and checked by
//! [`LoadConfig::validate`]. `[store]`, `[api]` and `[diagnostics]` are the shared sections.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use mosaic_runtime::config::{ConfigError, LoadConfig, Sources, optional_path};
use mosaic_runtime::config::{DiagnosticsConfig, GrpcServerConfig, StoreConfig};
use serde::{Deserialize, Serialize};

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
    pub api: ApiConfig,
    /// `[dp_server]`: the SDS server data planes connect to.
    pub dp_server: DpServerConfig,
    /// `[diagnostics]`: metrics and health endpoints.
    pub diagnostics: DiagnosticsConfig,
    /// `[issuer]`: how hard the zone may press its certificate authorities (an addition to the
    /// contract; optional).
    #[serde(default)]
    pub issuer: IssuerConfig,
    /// `[dataplane_tokens]`: how strictly dataplane tokens bind a Dataplane's tags (optional).
    #[serde(default)]
    pub dataplane_tokens: DataplaneTokensConfig,
    /// `[[vault_auth]]`: Vault credentials this zone holds itself, one entry per Mesh backend;
    /// each replaces that backend's `conf.fromCp.auth` in this zone (an addition to the
    /// contract; optional). Secrets are read from files, never written here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vault_auth: Vec<VaultAuthConfig>,
}

/// `[dataplane_tokens]` of the zone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneTokensConfig {
    /// `dataplane_tokens.require_all_tags` (default false, Kuma's rule): when false, only the
    /// tags a token names must match the Dataplane's, and the Dataplane may carry other tags (a
    /// token for service `web` lets its holder add e.g. `version`, and the certificate names it).
    /// When true, every tag of the Dataplane must be named by its token too.
    #[serde(default)]
    pub require_all_tags: bool,
}

/// One `[[vault_auth]]` entry: the credentials for backend `backend` of Mesh `mesh`. Exactly one
/// of `token_file`, `approle` and `kubernetes` is set.
///
/// ```toml
/// [[vault_auth]]
/// mesh = "default"
/// backend = "vault-1"
/// kubernetes = { role = "pki_int", mount_path = "east" }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAuthConfig {
    /// `mesh`: the Mesh's name.
    pub mesh: String,
    /// `backend`: the name of the Mesh's vault backend (`mtls.backends[].name`).
    pub backend: String,
    /// `token_file`: a file holding a Vault token (re-read when Vault stops accepting it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// `approle`: AppRole login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approle: Option<VaultAppRoleConfig>,
    /// `kubernetes`: Kubernetes service-account login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesConfig>,
}

/// `vault_auth.approle`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAppRoleConfig {
    /// `role_id` (not a secret).
    pub role_id: String,
    /// `secret_id_file`: a file holding the secret_id.
    pub secret_id_file: PathBuf,
    /// `mount_path` of the approle auth method (default `approle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
}

/// `vault_auth.kubernetes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKubernetesConfig {
    /// `role`: the Vault role bound to the zone's service account.
    pub role: String,
    /// `mount_path` of the kubernetes auth method (default `kubernetes`; seed 002 mounts one per
    /// cluster, e.g. `east`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// `service_account_token_file` (default the in-pod path
    /// `/var/run/secrets/kubernetes.io/serviceaccount/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_token_file: Option<PathBuf>,
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

/// `[api]` of the zone control plane: the section both servers share.
pub use mosaic_runtime::config::ApiConfig;

/// `[dp_server]`: the SDS gRPC server data planes connect to (`dp_server.listen`,
/// `dp_server.tls_cert`, `dp_server.tls_key`; unset certificates: a CA and server certificate are
/// generated into `data_dir`).
pub type DpServerConfig = GrpcServerConfig;

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
            api: ApiConfig::default(),
            dp_server: DpServerConfig::on(SocketAddr::from(([0, 0, 0, 0], 5678))),
            diagnostics: DiagnosticsConfig::default(),
            issuer: IssuerConfig::default(),
            dataplane_tokens: DataplaneTokensConfig::default(),
            vault_auth: Vec::new(),
        }
    }
}

impl LoadConfig for ZoneConfig {
    fn validate(&self, sources: &Sources) -> Result<(), ConfigError> {
        self.store.validate(sources)?;
        if self.issuer.max_in_flight == 0 {
            return Err(sources.invalid("issuer.max_in_flight", "must be at least 1"));
        }
        self.api.validate(sources, &self.https_api_neighbours())?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, entry) in self.vault_auth.iter().enumerate() {
            if let Err(reason) = entry.check() {
                return Err(sources.invalid(
                    "vault_auth",
                    format!(
                        "entry {} (mesh {:?}, backend {:?}): {reason}",
                        i + 1,
                        entry.mesh,
                        entry.backend
                    ),
                ));
            }
            if !seen.insert((entry.mesh.as_str(), entry.backend.as_str())) {
                return Err(sources.invalid(
                    "vault_auth",
                    format!(
                        "entry {} repeats mesh {:?}, backend {:?}: keep one entry per backend",
                        i + 1,
                        entry.mesh,
                        entry.backend
                    ),
                ));
            }
        }
        sources.check_tls_pair(
            "dp_server",
            &self.dp_server.tls_cert,
            &self.dp_server.tls_key,
        )
    }
}

impl ZoneConfig {
    /// The listeners the HTTPS API may not share a port with (config key, address).
    pub fn https_api_neighbours(&self) -> [(&'static str, SocketAddr); 3] {
        [
            ("api.listen", self.api.listen),
            ("dp_server.listen", self.dp_server.listen),
            ("diagnostics.listen", self.diagnostics.listen),
        ]
    }

    /// Where the HTTPS API listens (`None`: off), see [`ApiConfig::effective_https_listen`].
    pub fn effective_https_listen(&self) -> Option<SocketAddr> {
        self.api
            .effective_https_listen(&self.https_api_neighbours())
    }
}

impl VaultAuthConfig {
    /// The entry's own rules: mesh and backend named, exactly one method, its fields set.
    fn check(&self) -> Result<(), String> {
        if self.mesh.trim().is_empty() || self.backend.trim().is_empty() {
            return Err("mesh and backend must name the Mesh and its vault backend".into());
        }
        let set: Vec<&str> = [
            ("token_file", self.token_file.is_some()),
            ("approle", self.approle.is_some()),
            ("kubernetes", self.kubernetes.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect();
        if set.len() != 1 {
            return Err(format!(
                "set exactly one of token_file, approle or kubernetes{}",
                if set.is_empty() {
                    String::new()
                } else {
                    format!(" (set: {})", set.join(", "))
                }
            ));
        }
        let empty_path = |p: &std::path::Path| p.as_os_str().is_empty();
        if self.token_file.as_deref().is_some_and(empty_path) {
            return Err("token_file must name a file".into());
        }
        if let Some(a) = &self.approle {
            if a.role_id.trim().is_empty() {
                return Err("approle.role_id must not be empty".into());
            }
            if empty_path(&a.secret_id_file) {
                return Err("approle.secret_id_file must name a file".into());
            }
        }
        if let Some(k) = &self.kubernetes
            && k.role.trim().is_empty()
        {
            return Err(
                "kubernetes.role must not be empty: the Vault role bound to this zone's service account"
                    .into(),
            );
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use mosaic_runtime::config::test_support::*;

    use super::*;

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
    fn https_api_keys() {
        // Half a pair, an exposed address without a token file, and a port another listener
        // has: each refused naming the key.
        let err =
            ZoneConfig::load_from(None, env(&[("MOSAIC_API__TLS_CERT", "/c.pem")])).unwrap_err();
        assert_eq!(err.key(), Some("api.tls_cert"), "{err}");
        let err = ZoneConfig::load_from(None, env(&[("MOSAIC_API__HTTPS_LISTEN", "0.0.0.0:5682")]))
            .unwrap_err();
        assert_eq!(err.key(), Some("api.https_listen"), "{err}");
        let err =
            ZoneConfig::load_from(None, env(&[("MOSAIC_API__HTTPS_LISTEN", "127.0.0.1:5681")]))
                .unwrap_err();
        assert!(err.to_string().contains("api.listen"), "{err}");
        // A zone whose api.listen took 5682: the HTTPS API's default yields.
        let c =
            ZoneConfig::load_from(None, env(&[("MOSAIC_API__LISTEN", "127.0.0.1:5682")])).unwrap();
        assert_eq!(c.effective_https_listen(), None);
        let c =
            ZoneConfig::load_from(None, env(&[("MOSAIC_API__HTTPS_ENABLED", "false")])).unwrap();
        assert_eq!(c.effective_https_listen(), None);
    }

    #[test]
    fn zone_defaults_match_contract() {
        let c = assert_defaults::<ZoneConfig>();
        assert_eq!(c.zone.as_str(), "zone-1");
        assert_eq!(c.store.data_dir, PathBuf::from("./mosaic-data/zone"));
        assert_eq!(c.global.address.as_str(), "grpcs://127.0.0.1:5685");
        assert_eq!(c.global.address, "grpcs://127.0.0.1:5685".parse().unwrap());
        assert!(c.global.address.is_tls());
        assert_eq!(c.global.ca_cert, None);
        assert_eq!(c.global.token_file, None);
        assert_eq!(c.api.listen, addr("127.0.0.1:5681"));
        assert!(c.api.https_enabled);
        assert_eq!(c.effective_https_listen(), Some(addr("127.0.0.1:5682")));
        assert_eq!(
            (c.api.tls_cert.as_ref(), c.api.tls_key.as_ref()),
            (None, None)
        );
        assert_eq!(c.dp_server.listen, addr("0.0.0.0:5678"));
        assert_eq!(c.dp_server.tls_cert, None);
        assert_eq!(c.diagnostics.listen, addr("127.0.0.1:5680"));
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
    fn env_overrides_defaults() {
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
    fn unknown_key_is_named() {
        assert_rejects::<ZoneConfig>(&[
            ((Some("[nope]\nx = 1\n"), &[]), "nope", &[]),
            (
                (None, &[("MOSAIC_RAFT__NODE_ID", "2")]),
                "raft.node_id",
                &[],
            ),
        ]);
    }

    #[test]
    fn localhost_is_admin_defaults_to_whether_no_token_file_is_set() {
        let exposed = "[api]\nlisten = \"0.0.0.0:5681\"\nadmin_token_file = \"/t\"\n";
        let token_file = Some(PathBuf::from("/t"));
        assert_loads::<ZoneConfig, _>(
            |z| {
                (
                    z.api.admin_token_file.clone(),
                    z.api.effective_localhost_is_admin(),
                )
            },
            &[
                ((None, &[]), (None, true)),
                ((Some(exposed), &[]), (token_file.clone(), false)),
                (
                    (Some(exposed), &[("MOSAIC_API__LOCALHOST_IS_ADMIN", "True")]),
                    (token_file, true),
                ),
            ],
        );
        let bad = ("MOSAIC_API__LOCALHOST_IS_ADMIN", "yes!");
        assert_rejects::<ZoneConfig>(&[(
            (None, &[bad]),
            "api.localhost_is_admin",
            &["MOSAIC_API__LOCALHOST_IS_ADMIN"],
        )]);
    }

    #[test]
    fn tls_pair_must_be_complete() {
        let tls = ("MOSAIC_DP_SERVER__TLS_KEY", "/k.pem");
        assert_rejects::<ZoneConfig>(&[((None, &[tls]), "dp_server.tls_key", &[])]);
    }

    #[test]
    fn serialized_config_loads_back_the_same() {
        let mut c = ZoneConfig {
            zone: "east".parse().unwrap(),
            ..ZoneConfig::default()
        };
        c.store.data_dir = "/var/lib/mosaic/zone".into();
        c.global.address = "grpcs://g1:5685,grpcs://g2:5685".parse().unwrap();
        c.global.ca_cert = Some("/etc/mosaic/kds-ca.pem".into());
        c.global.token_file = Some("/etc/mosaic/zone-token".into());
        c.api.listen = addr("10.0.0.21:5681");
        c.api.admin_token_file = Some("/etc/mosaic/admin-token".into());
        c.api.localhost_is_admin = Some(false);
        c.api.https_listen = Some(addr("10.0.0.21:5682"));
        c.api.tls_cert = Some("/etc/mosaic/api.pem".into());
        c.api.tls_key = Some("/etc/mosaic/api-key.pem".into());
        c.dp_server.tls_cert = Some("/etc/mosaic/dp.pem".into());
        c.dp_server.tls_key = Some("/etc/mosaic/dp-key.pem".into());
        c.issuer.max_in_flight = 3;
        c.vault_auth = vec![
            VaultAuthConfig {
                mesh: "default".into(),
                backend: "vault-1".into(),
                token_file: None,
                approle: None,
                kubernetes: Some(VaultKubernetesConfig {
                    role: "pki_int".into(),
                    mount_path: Some("east".into()),
                    service_account_token_file: None,
                }),
            },
            VaultAuthConfig {
                mesh: "other".into(),
                backend: "vault-1".into(),
                token_file: Some("/etc/mosaic/vault-token".into()),
                approle: None,
                kubernetes: None,
            },
        ];
        assert_round_trips([ZoneConfig::default(), c]);
    }

    #[test]
    fn vault_auth_entries_load_and_are_checked() {
        let f = toml_file(
            "zone = \"east\"\n\
             [[vault_auth]]\nmesh = \"default\"\nbackend = \"vault-1\"\n\
             kubernetes = { role = \"pki_int\", mount_path = \"east\" }\n\
             [[vault_auth]]\nmesh = \"default\"\nbackend = \"vault-2\"\n\
             approle = { role_id = \"r-1\", secret_id_file = \"/etc/mosaic/secret-id\" }\n",
        );
        let z = ZoneConfig::load_from(Some(f.path()), env(&[])).unwrap();
        assert_eq!(z.vault_auth.len(), 2);
        let k = z.vault_auth[0].kubernetes.as_ref().unwrap();
        assert_eq!(
            (k.role.as_str(), k.mount_path.as_deref()),
            ("pki_int", Some("east"))
        );
        assert_eq!(
            z.vault_auth[1].approle.as_ref().unwrap().secret_id_file,
            PathBuf::from("/etc/mosaic/secret-id")
        );

        for (body, needle) in [
            (
                "mesh = \"m\"\nbackend = \"b\"\n",
                "exactly one of token_file",
            ),
            (
                "mesh = \"m\"\nbackend = \"b\"\ntoken_file = \"/t\"\nkubernetes = { role = \"r\" }\n",
                "(set: token_file, kubernetes)",
            ),
            (
                "mesh = \"\"\nbackend = \"b\"\ntoken_file = \"/t\"\n",
                "mesh and backend",
            ),
            (
                "mesh = \"m\"\nbackend = \"b\"\nkubernetes = { role = \" \" }\n",
                "kubernetes.role must not be empty",
            ),
        ] {
            let f = toml_file(&format!("[[vault_auth]]\n{body}"));
            let err = ZoneConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
            assert_eq!(err.key(), Some("vault_auth"), "{body}: {err}");
            assert!(err.to_string().contains(needle), "{body}: {err}");
        }
        let twice = "[[vault_auth]]\nmesh = \"m\"\nbackend = \"b\"\ntoken_file = \"/t\"\n";
        let f = toml_file(&format!("{twice}{twice}"));
        let err = ZoneConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert!(err.to_string().contains("repeats mesh \"m\""), "{err}");
        // A secret never goes into the config itself: an inline token is an unknown key.
        let f = toml_file("[[vault_auth]]\nmesh = \"m\"\nbackend = \"b\"\ntoken = \"s.x\"\n");
        let err = ZoneConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");
    }
}
