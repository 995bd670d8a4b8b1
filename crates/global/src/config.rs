//! Configuration of `mosaic-global`: [`GlobalConfig`] and its own sections (`[raft]`, `[kds]`),
//! loaded by [`mosaic_runtime::config`] (defaults, TOML file, `MOSAIC_` environment) and checked
//! by [`LoadConfig::validate`]. `[store]`, `[api]` and `[diagnostics]` are the shared sections.

use std::{collections::BTreeSet, fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use mosaic_runtime::config::{
    ConfigError, DiagnosticsConfig, GrpcServerConfig, LoadConfig, Sources, StoreConfig,
    optional_path,
};
use serde::{Deserialize, Serialize};

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
    /// `raft.join` (Mosaic's, like etcd's `initial-cluster-state=existing`): this replica joins a
    /// running cluster. With an empty disk it never initialises a cluster; it waits until a
    /// member adds it (`mosaicctl raft add ID ADDRESS`) and replicates to it, and it does not
    /// vote before. `raft.peers` then lists members to reach (it need not list this replica).
    #[serde(default)]
    pub join: bool,
    /// `raft.vote_with_empty_disk` (Mosaic's): a replica that starts with an empty disk where a
    /// cluster exists votes at once instead of waiting until a leader has replicated to it. Only
    /// for a restore from backup (or when a majority of disks was lost), for the replicas started
    /// empty beside the one holding the data: without it none could elect that one. Remove it
    /// once the cluster is back.
    #[serde(default)]
    pub vote_with_empty_disk: bool,
}

/// Default port of `raft.listen`/`raft.advertise`: 5689 (it was 5682, Kuma's HTTPS API port; an
/// explicit `raft.listen` on 5682 keeps working).
pub const DEFAULT_RAFT_PORT: u16 = 5689;

/// Default of `raft.snapshot_after_logs`.
pub const DEFAULT_SNAPSHOT_AFTER_LOGS: u64 = 10_000;

fn default_snapshot_after_logs() -> u64 {
    DEFAULT_SNAPSHOT_AFTER_LOGS
}

/// One raft replica, written `"<id>=<host>:<port>"` (e.g. `"1=10.0.0.1:5689"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RaftPeer {
    /// The replica's `raft.node_id`.
    pub id: u64,
    /// `host:port` of the replica's raft listener.
    pub addr: String,
}

/// `[api]` of the global control plane: the section both servers share.
pub use mosaic_runtime::config::ApiConfig;

/// `[kds]`: the KDS gRPC server (`kds.listen`, `kds.tls_cert`, `kds.tls_key`; unset
/// certificates: a self-signed CA and server certificate are generated into `data_dir`).
pub type KdsConfig = GrpcServerConfig;

// === impl GlobalConfig ===

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            store: StoreConfig {
                data_dir: PathBuf::from("./mosaic-data/global"),
            },
            raft: RaftConfig {
                node_id: 1,
                listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_RAFT_PORT)),
                advertise: format!("127.0.0.1:{DEFAULT_RAFT_PORT}"),
                peers: Vec::new(),
                snapshot_after_logs: DEFAULT_SNAPSHOT_AFTER_LOGS,
                ca_cert: None,
                ca_key: None,
                tls_cert: None,
                tls_key: None,
                insecure: false,
                join: false,
                vote_with_empty_disk: false,
            },
            api: ApiConfig::default(),
            kds: KdsConfig::on(SocketAddr::from(([0, 0, 0, 0], 5685))),
            diagnostics: DiagnosticsConfig::default(),
        }
    }
}

impl GlobalConfig {
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

    /// The listeners the HTTPS API may not share a port with (config key, address).
    pub fn https_api_neighbours(&self) -> [(&'static str, SocketAddr); 4] {
        [
            ("raft.listen", self.raft.listen),
            ("api.listen", self.api.listen),
            ("kds.listen", self.kds.listen),
            ("diagnostics.listen", self.diagnostics.listen),
        ]
    }

    /// Where the HTTPS API listens (`None`: off), see [`ApiConfig::effective_https_listen`].
    pub fn effective_https_listen(&self) -> Option<SocketAddr> {
        self.api
            .effective_https_listen(&self.https_api_neighbours())
    }
}

impl LoadConfig for GlobalConfig {
    fn validate(&self, sources: &Sources) -> Result<(), ConfigError> {
        self.store.validate(sources)?;
        check_host_port(&self.raft.advertise)
            .map_err(|reason| sources.invalid("raft.advertise", reason))?;
        let mut ids = BTreeSet::new();
        for peer in &self.raft.peers {
            if !ids.insert(peer.id) {
                return Err(sources.invalid(
                    "raft.peers",
                    format!("node id {} appears more than once", peer.id),
                ));
            }
        }
        if !self.raft.peers.is_empty() && !ids.contains(&self.raft.node_id) {
            return Err(sources.invalid(
                "raft.peers",
                format!(
                    "does not list this replica's raft.node_id {} (peers must list every replica, this one included)",
                    self.raft.node_id
                ),
            ));
        }
        self.validate_raft_tls(sources)?;
        self.api.validate(sources, &self.https_api_neighbours())?;
        sources.check_tls_pair("kds", &self.kds.tls_cert, &self.kds.tls_key)?;
        Ok(())
    }
}

impl GlobalConfig {
    fn validate_raft_tls(&self, sources: &Sources) -> Result<(), ConfigError> {
        let raft = &self.raft;
        sources.check_tls_pair("raft", &raft.tls_cert, &raft.tls_key)?;
        let tls_keys = [
            ("raft.ca_cert", raft.ca_cert.is_some()),
            ("raft.ca_key", raft.ca_key.is_some()),
            ("raft.tls_cert", raft.tls_cert.is_some()),
        ];
        if raft.insecure
            && let Some((key, _)) = tls_keys.iter().find(|(_, set)| *set)
        {
            return Err(sources.invalid(
                "raft.insecure",
                format!(
                    "is true, but `{key}` is set too; unset raft.insecure to use TLS (the default), or unset the raft TLS files"
                ),
            ));
        }
        if raft.ca_key.is_some() && raft.ca_cert.is_none() {
            return Err(sources.invalid(
                "raft.ca_key",
                "is set but `raft.ca_cert` is not; set both (the cluster CA's certificate and key)",
            ));
        }
        if raft.tls_cert.is_some() && raft.ca_cert.is_none() {
            return Err(sources.invalid(
                "raft.tls_cert",
                "is set but `raft.ca_cert` is not; set raft.ca_cert to the cluster CA that signed it (peers are checked against it)",
            ));
        }
        if raft.ca_cert.is_some() && raft.ca_key.is_none() && raft.tls_cert.is_none() {
            return Err(sources.invalid(
                "raft.ca_cert",
                "is set, but neither `raft.ca_key` (to issue this replica's certificate at start) nor `raft.tls_cert`/`raft.tls_key` (a certificate issued with `mosaic-global generate raft-cert`) is; set one of them",
            ));
        }
        Ok(())
    }
}

// === impl RaftPeer ===

impl FromStr for RaftPeer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected \"<node id>=<host>:<port>\", e.g. \"1=10.0.0.1:5689\"";
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

/// Written as its [`Display`](fmt::Display) string.
impl Serialize for RaftPeer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// Read from a string by [`FromStr`], its error the message.
impl<'de> Deserialize<'de> for RaftPeer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RaftPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.id, self.addr)
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mosaic_runtime::config::{ConfigSource, test_support::*};

    use super::*;

    #[test]
    fn global_defaults_match_contract() {
        let c = assert_defaults::<GlobalConfig>();
        assert_eq!(c.store.data_dir, PathBuf::from("./mosaic-data/global"));
        assert_eq!(c.raft.node_id, 1);
        // Raft moved off 5682 (Kuma's HTTPS API) to 5689.
        assert_eq!(c.raft.listen, addr("127.0.0.1:5689"));
        assert_eq!(c.raft.advertise, "127.0.0.1:5689");
        assert!(c.raft.peers.is_empty());
        assert_eq!(c.api.listen, addr("127.0.0.1:5681"));
        assert_eq!(c.api.admin_token_file, None);
        assert_eq!(
            (c.api.tls_cert.as_ref(), c.api.tls_key.as_ref()),
            (None, None)
        );
        assert!(c.api.https_enabled);
        assert_eq!(c.api.https_listen, None);
        assert_eq!(c.effective_https_listen(), Some(addr("127.0.0.1:5682")));
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
                addr: "127.0.0.1:5689".into()
            }]
        );
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
        // An older file with raft on 5682 keeps starting: the HTTPS API's default yields.
        assert_eq!(c.effective_https_listen(), None);
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
    }

    #[test]
    fn bad_peer_is_clear() {
        let f = toml_file("[raft]\npeers = [\"1=10.0.0.1:5689\", \"two=10.0.0.2:5689\"]\n");
        let err = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("raft.peers.1"), "{msg}");
        assert_eq!(err.origin(), Some(&ConfigSource::File(f.path().into())));
        assert!(
            msg.contains("two=10.0.0.2:5689") && msg.contains("1=10.0.0.1:5689"),
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
    fn https_api_port_rules() {
        // Explicit and clashing with raft.listen: refused, naming both keys.
        let f = toml_file(
            "[raft]\nlisten = \"0.0.0.0:5682\"\n[api]\nhttps_listen = \"127.0.0.1:5682\"\n",
        );
        let err = GlobalConfig::load_from(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(err.key(), Some("api.https_listen"), "{err}");
        assert!(err.to_string().contains("raft.listen"), "{err}");
        // Moved: both start.
        let c = GlobalConfig::load_from(
            Some(f.path()),
            env(&[("MOSAIC_API__HTTPS_LISTEN", "127.0.0.1:6682")]),
        )
        .unwrap();
        assert_eq!(c.effective_https_listen(), Some(addr("127.0.0.1:6682")));
        // Off.
        let c =
            GlobalConfig::load_from(None, env(&[("MOSAIC_API__HTTPS_ENABLED", "false")])).unwrap();
        assert_eq!(c.effective_https_listen(), None);
        // Exposed without a token file: refused as api.listen is.
        let err =
            GlobalConfig::load_from(None, env(&[("MOSAIC_API__HTTPS_LISTEN", "0.0.0.0:5682")]))
                .unwrap_err();
        assert_eq!(err.key(), Some("api.https_listen"), "{err}");
        assert!(err.to_string().contains("api.admin_token_file"), "{err}");
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

        assert_rejects::<GlobalConfig>(&[
            ((Some("zone = \"east\"\n"), &[]), "zone", &[]),
            (
                (None, &[("MOSAIC_KDS__LISTN", "0.0.0.0:1")]),
                "kds.listn",
                &["MOSAIC_KDS__LISTEN"],
            ),
        ]);
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
        let token_file = ("MOSAIC_API__ADMIN_TOKEN_FILE", "/etc/mosaic/admin-token");
        assert_loads::<GlobalConfig, _>(
            |c| {
                (
                    c.api.localhost_is_admin,
                    c.api.effective_localhost_is_admin(),
                )
            },
            &[
                ((None, &[]), (None, true)),
                ((None, &[token_file]), (None, false)),
                (
                    (
                        None,
                        &[token_file, ("MOSAIC_API__LOCALHOST_IS_ADMIN", "true")],
                    ),
                    (Some(true), true),
                ),
                (
                    (Some("[api]\nlocalhost_is_admin = false\n"), &[]),
                    (Some(false), false),
                ),
            ],
        );
    }

    #[test]
    fn tls_pair_must_be_complete() {
        assert_rejects::<GlobalConfig>(&[(
            (None, &[("MOSAIC_KDS__TLS_CERT", "/c.pem")]),
            "kds.tls_cert",
            &["MOSAIC_KDS__TLS_CERT"],
        )]);
    }

    #[test]
    fn serialized_config_loads_back_the_same() {
        let mut c = GlobalConfig::default();
        c.store.data_dir = "/var/lib/mosaic".into();
        c.raft.node_id = 2;
        c.raft.advertise = "10.0.0.2:5689".into();
        c.raft.peers = ["1=10.0.0.1:5689", "2=10.0.0.2:5689", "3=[::1]:5689"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        c.raft.snapshot_after_logs = 7;
        c.raft.ca_cert = Some("/etc/mosaic/raft-ca.pem".into());
        c.raft.ca_key = Some("/etc/mosaic/raft-ca-key.pem".into());
        c.api.admin_token_file = Some("/etc/mosaic/admin-token".into());
        c.api.localhost_is_admin = Some(true);
        c.api.https_listen = Some(addr("10.0.0.2:5682"));
        c.api.tls_cert = Some("/etc/mosaic/api.pem".into());
        c.api.tls_key = Some("/etc/mosaic/api-key.pem".into());
        c.kds.tls_cert = Some("/etc/mosaic/kds.pem".into());
        c.kds.tls_key = Some("/etc/mosaic/kds-key.pem".into());
        c.diagnostics.listen = addr("0.0.0.0:5680");
        assert_round_trips([GlobalConfig::default(), c]);
    }
}
