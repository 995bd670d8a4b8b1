//! Mutual TLS on the raft port: who may talk to a replica, and how a replica proves who it is.
//!
//! Every replica holds a certificate from the cluster CA that names its node id as the DNS SAN
//! `node-<id>.raft.mosaic.invalid` (`.invalid` never resolves: it is a name, not an address).
//! - Serving, a replica requires a client certificate from the cluster CA (the handshake fails
//!   without one, or with one from another CA), and then answers only peers whose certificate
//!   names a node of `raft.peers` or of the current membership (`PERMISSION_DENIED` otherwise).
//!   This covers every RPC: AppendEntries, Vote, InstallSnapshot, Forward, ReadIndex and Probe.
//! - Dialing node `n`, a replica checks that the server's certificate is from the cluster CA and
//!   names node `n`: a server that answers at `n`'s address with another node's certificate is
//!   refused.
//!
//! Where the material comes from ([`resolve`]): `raft.tls_cert`/`raft.tls_key` (issued off-line),
//! or a certificate issued at start from the CA key (`raft.ca_cert` + `raft.ca_key`, or the
//! `raft-ca.pem`/`raft-ca-key.pem` pair in the data directory, which a single node generates on its
//! first start). `raft.insecure = true` switches all of it off, loudly.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use mosaic_core::Sensitive;
use mosaic_runtime::tls::{self as common_tls, CaPem, GeneratedFiles, TlsError};
use tonic::{
    Request, Status,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig},
};

use super::Raft;
use crate::config::RaftConfig;

/// The domain under which a replica's certificate names its node id.
pub const NODE_NAME_DOMAIN: &str = "raft.mosaic.invalid";

/// File prefix of the cluster CA in the data directory (`raft-ca.pem`, `raft-ca-key.pem`).
pub const CA_FILE_PREFIX: &str = "raft";

/// Time to establish a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The name a replica's certificate carries: `node-<id>.raft.mosaic.invalid`.
pub fn node_name(node_id: u64) -> String {
    format!("node-{node_id}.{NODE_NAME_DOMAIN}")
}

/// The node id a certificate (DER) names, if it names exactly one.
pub fn node_id_of(der: &[u8]) -> Option<u64> {
    let suffix = format!(".{NODE_NAME_DOMAIN}");
    let ids: BTreeSet<u64> = common_tls::dns_names(der)
        .iter()
        .filter_map(|n| n.strip_suffix(&suffix)?.strip_prefix("node-")?.parse().ok())
        .collect();
    match ids.len() {
        1 => ids.into_iter().next(),
        _ => None,
    }
}

/// Why the raft transport's TLS material could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RaftTlsError {
    /// A certificate or key could not be read, generated or written.
    #[error("raft TLS: {0}")]
    Tls(#[from] TlsError),
    /// A file given in the configuration holds something unusable.
    #[error("raft TLS: {key} {path:?}: {reason}")]
    Invalid {
        /// The config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Several replicas but no cluster CA: each would make its own and none would trust another.
    #[error(
        "raft TLS: raft.peers lists {peers} replicas, but no cluster CA is configured and none is in {dir:?}. Every replica needs the same raft CA: run `mosaic-global generate raft-ca --out DIR` once, copy DIR/raft-ca.pem and DIR/raft-ca-key.pem to every replica and set raft.ca_cert and raft.ca_key (or put both files into store.data_dir); set raft.insecure = true only for a test cluster"
    )]
    NoClusterCa {
        /// How many peers are configured.
        peers: usize,
        /// The data directory searched.
        dir: PathBuf,
    },
    /// The TLS configuration was refused by the transport.
    #[error("raft TLS: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// One replica's raft identity: the cluster CA it trusts and its own certificate.
#[derive(Clone)]
pub struct RaftTls {
    node_id: u64,
    ca_pem: String,
    cert_pem: String,
    key_pem: Sensitive<String>,
}

impl std::fmt::Debug for RaftTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftTls")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// How a replica talks on the raft port.
#[derive(Clone, Debug)]
pub enum RaftTransport {
    /// Mutual TLS with the cluster CA (the default).
    Mtls(Arc<RaftTls>),
    /// Plaintext and unauthenticated (`raft.insecure = true`).
    Insecure,
}

// === impl RaftTls ===

impl RaftTls {
    /// Issues node `node_id` a certificate from `ca` (in memory; the key never touches disk).
    pub fn issue(ca: &CaPem, node_id: u64) -> Result<Self, RaftTlsError> {
        let (cert_pem, key_pem) = common_tls::issue_peer_cert(
            ca,
            &format!("mosaic-global raft node {node_id}"),
            &[node_name(node_id)],
        )?;
        Ok(Self {
            node_id,
            ca_pem: ca.cert_pem.clone(),
            cert_pem,
            key_pem,
        })
    }

    /// A certificate issued off-line (`raft.tls_cert`/`raft.tls_key`), checked to name `node_id`.
    pub fn configured(
        node_id: u64,
        ca_cert: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<Self, RaftTlsError> {
        let ca_pem = read_pem("raft.ca_cert", ca_cert)?;
        let identity = common_tls::load_configured(cert, key)?;
        let named = common_tls::first_certificate_der(&identity.cert_pem)
            .as_deref()
            .and_then(node_id_of);
        if named != Some(node_id) {
            let found = match named {
                Some(n) => format!("it names node {n}"),
                None => {
                    format!("it names no node (no single DNS SAN node-<id>.{NODE_NAME_DOMAIN})")
                }
            };
            return Err(RaftTlsError::Invalid {
                key: "raft.tls_cert",
                path: cert.to_path_buf(),
                reason: format!(
                    "raft.node_id is {node_id} but {found}; issue one with `mosaic-global generate raft-cert --node-id {node_id}`"
                ),
            });
        }
        Ok(Self {
            node_id,
            ca_pem,
            cert_pem: identity.cert_pem,
            key_pem: identity.key_pem,
        })
    }

    /// The node id this identity names.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, self.key_pem.expose())
    }
}

fn read_pem(key: &'static str, path: &Path) -> Result<String, RaftTlsError> {
    let text = std::fs::read_to_string(path).map_err(|e| RaftTlsError::Invalid {
        key,
        path: path.to_path_buf(),
        reason: format!("cannot be read: {e}; check the path and its permissions"),
    })?;
    if common_tls::first_certificate_der(&text).is_none() {
        return Err(RaftTlsError::Invalid {
            key,
            path: path.to_path_buf(),
            reason: "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(text)
}

// === impl RaftTransport ===

impl RaftTransport {
    /// Mutual TLS with `tls`.
    pub fn mtls(tls: RaftTls) -> Self {
        Self::Mtls(Arc::new(tls))
    }

    /// A channel to node `target` at `addr` (`host:port`) that connects on first use; under mTLS
    /// it accepts only a server certificate from the cluster CA that names `target`.
    pub fn channel(&self, target: u64, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let endpoint = match self {
            RaftTransport::Insecure => Endpoint::from_shared(format!("http://{addr}"))?,
            RaftTransport::Mtls(tls) => Endpoint::from_shared(format!("https://{addr}"))?
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
                        .identity(tls.identity())
                        .domain_name(node_name(target)),
                )?,
        };
        Ok(endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy())
    }

    /// The server's TLS: this replica's certificate, and a client certificate from the cluster CA
    /// required of every caller. `None` when insecure.
    pub fn server_config(&self) -> Option<ServerTlsConfig> {
        match self {
            RaftTransport::Insecure => None,
            RaftTransport::Mtls(tls) => Some(
                ServerTlsConfig::new()
                    .identity(tls.identity())
                    .client_ca_root(Certificate::from_pem(&tls.ca_pem)),
            ),
        }
    }
}

/// Admits a request only from a peer whose certificate names a member: a node of `raft.peers`
/// or of the current membership. Insecure transports admit everyone.
#[derive(Clone)]
pub struct PeerCheck {
    secure: bool,
    node_id: u64,
    peers: Arc<BTreeSet<u64>>,
    raft: Raft,
}

impl PeerCheck {
    /// The check for node `node_id` serving `raft`, with the configured `peers` ids.
    pub fn new(transport: &RaftTransport, node_id: u64, peers: BTreeSet<u64>, raft: Raft) -> Self {
        Self {
            secure: matches!(transport, RaftTransport::Mtls(_)),
            node_id,
            peers: Arc::new(peers),
            raft,
        }
    }

    /// This node, or a member of the current membership; before this node knows any membership
    /// (pristine, joining), a configured peer. A removed replica is refused even if `raft.peers`
    /// still lists it.
    fn is_member(&self, id: u64) -> bool {
        if id == self.node_id {
            return true;
        }
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let mut nodes = metrics.membership_config.membership().nodes().peekable();
        if nodes.peek().is_none() {
            return self.peers.contains(&id);
        }
        nodes.any(|(n, _)| *n == id)
    }

    /// The interceptor body: `PERMISSION_DENIED` unless the caller's certificate names a member.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        if !self.secure {
            return Ok(request);
        }
        let remote = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "an unknown address".into());
        let named = request
            .peer_certs()
            .and_then(|certs| certs.first().and_then(|c| node_id_of(c.as_ref())));
        match named {
            Some(id) if self.is_member(id) => Ok(request),
            Some(id) => {
                tracing::warn!(node = self.node_id, peer = id, %remote, "raft: refused a peer whose certificate names a node that is not a member");
                Err(Status::permission_denied(format!(
                    "raft: node {id} is not a member of this cluster (the current membership; raft.peers before this node has joined): add it with `mosaicctl raft add {id} ADDRESS`"
                )))
            }
            None => {
                tracing::warn!(node = self.node_id, %remote, "raft: refused a peer whose certificate names no raft node");
                Err(Status::permission_denied(format!(
                    "raft: the client certificate names no raft node (DNS SAN node-<id>.{NODE_NAME_DOMAIN})"
                )))
            }
        }
    }
}

/// The transport `config` asks for, with the material it names (see the module doc). A single
/// node (`raft.peers` empty) with nothing configured generates the cluster CA into `data_dir`
/// once.
pub fn resolve(config: &RaftConfig, data_dir: &Path) -> Result<RaftTransport, RaftTlsError> {
    if config.insecure {
        tracing::warn!(
            listen = %config.listen,
            "raft.insecure = true: the raft port accepts plaintext connections from anyone and checks no identity; whoever reaches it can rewrite the whole cluster. Use this only in tests; unset raft.insecure to use mutual TLS"
        );
        return Ok(RaftTransport::Insecure);
    }
    let node_id = config.node_id;
    if let (Some(ca), Some(cert), Some(key)) = (&config.ca_cert, &config.tls_cert, &config.tls_key)
    {
        return Ok(RaftTransport::mtls(RaftTls::configured(
            node_id, ca, cert, key,
        )?));
    }
    let ca = match (&config.ca_cert, &config.ca_key) {
        (Some(cert), Some(key)) => CaPem {
            cert_pem: read_pem("raft.ca_cert", cert)?,
            key_pem: Sensitive::new(std::fs::read_to_string(key).map_err(|e| {
                RaftTlsError::Invalid {
                    key: "raft.ca_key",
                    path: key.clone(),
                    reason: format!("cannot be read: {e}; check the path and its permissions"),
                }
            })?),
        },
        _ => {
            let files = GeneratedFiles::new(data_dir, CA_FILE_PREFIX);
            match files.load_ca()? {
                Some(ca) => ca,
                None if config.peers.len() > 1 => {
                    return Err(RaftTlsError::NoClusterCa {
                        peers: config.peers.len(),
                        dir: data_dir.to_path_buf(),
                    });
                }
                None => {
                    let ca = common_tls::generate_ca("mosaic-global raft CA")?;
                    files.store_ca(&ca)?;
                    tracing::info!(ca = %files.ca.display(), "generated the raft cluster CA (copy raft-ca.pem and raft-ca-key.pem to a replica you add)");
                    ca
                }
            }
        }
    };
    Ok(RaftTransport::mtls(RaftTls::issue(&ca, node_id)?))
}

/// The files of `mosaic-global generate raft-ca|raft-cert`.
pub mod generate {
    use std::path::{Path, PathBuf};

    use mosaic_core::Sensitive;
    use mosaic_runtime::tls::{self as common_tls, CaPem, GeneratedFiles};

    use super::{CA_FILE_PREFIX, RaftTlsError, node_name, read_pem};

    fn create_dir(dir: &Path) -> Result<(), RaftTlsError> {
        std::fs::create_dir_all(dir).map_err(|e| RaftTlsError::Invalid {
            key: "--out",
            path: dir.to_path_buf(),
            reason: format!("cannot be created: {e}"),
        })
    }

    fn refuse_existing(paths: &[&Path]) -> Result<(), RaftTlsError> {
        match paths.iter().find(|p| p.exists()) {
            Some(p) => Err(RaftTlsError::Invalid {
                key: "--out",
                path: p.to_path_buf(),
                reason: "already exists; it is kept: choose another directory or move it away"
                    .into(),
            }),
            None => Ok(()),
        }
    }

    /// A new cluster CA in `dir`: `(raft-ca.pem, raft-ca-key.pem)`.
    pub fn raft_ca(dir: &Path) -> Result<(PathBuf, PathBuf), RaftTlsError> {
        create_dir(dir)?;
        let files = GeneratedFiles::new(dir, CA_FILE_PREFIX);
        refuse_existing(&[&files.ca, &files.ca_key])?;
        let ca = common_tls::generate_ca("mosaic-global raft CA")?;
        files.store_ca(&ca)?;
        Ok((files.ca, files.ca_key))
    }

    /// A certificate for node `node_id` from the CA at `ca_cert`/`ca_key`, written into `dir`:
    /// `(raft-node-<id>.pem, raft-node-<id>-key.pem)`.
    pub fn raft_cert(
        ca_cert: &Path,
        ca_key: &Path,
        node_id: u64,
        dir: &Path,
    ) -> Result<(PathBuf, PathBuf), RaftTlsError> {
        let ca = CaPem {
            cert_pem: read_pem("--ca-cert", ca_cert)?,
            key_pem: Sensitive::new(std::fs::read_to_string(ca_key).map_err(|e| {
                RaftTlsError::Invalid {
                    key: "--ca-key",
                    path: ca_key.to_path_buf(),
                    reason: format!("cannot be read: {e}"),
                }
            })?),
        };
        create_dir(dir)?;
        let cert_path = dir.join(format!("raft-node-{node_id}.pem"));
        let key_path = dir.join(format!("raft-node-{node_id}-key.pem"));
        refuse_existing(&[&cert_path, &key_path])?;
        let (cert, key) = common_tls::issue_peer_cert(
            &ca,
            &format!("mosaic-global raft node {node_id}"),
            &[node_name(node_id)],
        )?;
        common_tls::write_pem_file(&key_path, key.expose(), true)?;
        common_tls::write_pem_file(&cert_path, &cert, false)?;
        Ok((cert_path, key_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> CaPem {
        common_tls::generate_ca("test raft CA").unwrap()
    }

    #[test]
    fn an_issued_certificate_names_its_node() {
        let tls = RaftTls::issue(&ca(), 7).unwrap();
        let der = common_tls::first_certificate_der(&tls.cert_pem).unwrap();
        assert_eq!(node_id_of(&der), Some(7));
        assert_eq!(node_name(7), "node-7.raft.mosaic.invalid");
    }

    #[test]
    fn names_outside_the_raft_domain_name_no_node() {
        let ca = ca();
        let (pem, _) = common_tls::issue_peer_cert(
            &ca,
            "x",
            &["node-1.example.com".into(), "localhost".into()],
        )
        .unwrap();
        let der = common_tls::first_certificate_der(&pem).unwrap();
        assert_eq!(node_id_of(&der), None);
        let (pem, _) =
            common_tls::issue_peer_cert(&ca, "x", &[node_name(1), node_name(2)]).unwrap();
        let der = common_tls::first_certificate_der(&pem).unwrap();
        assert_eq!(
            node_id_of(&der),
            None,
            "a certificate naming two nodes names none"
        );
    }

    fn config(dir: &Path, peers: &[&str]) -> RaftConfig {
        let mut c = crate::config::GlobalConfig::default().raft;
        c.peers = peers.iter().map(|p| p.parse().unwrap()).collect();
        let _ = dir;
        c
    }

    #[test]
    fn a_single_node_generates_its_ca_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), &[]);
        let RaftTransport::Mtls(first) = resolve(&c, dir.path()).unwrap() else {
            panic!("a default config must use mTLS")
        };
        let RaftTransport::Mtls(second) = resolve(&c, dir.path()).unwrap() else {
            panic!("a default config must use mTLS")
        };
        assert_eq!(first.ca_pem, second.ca_pem, "the CA is generated once");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("raft-ca-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn several_replicas_without_a_ca_refuse_to_start_and_say_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            &["1=127.0.0.1:1", "2=127.0.0.1:2", "3=127.0.0.1:3"],
        );
        let e = resolve(&c, dir.path()).unwrap_err().to_string();
        assert!(e.contains("mosaic-global generate raft-ca"), "{e}");
        assert!(e.contains("raft.ca_cert"), "{e}");
        assert!(!dir.path().join("raft-ca.pem").exists());
    }

    #[test]
    fn a_configured_certificate_must_name_this_node() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let (cert, key) = common_tls::issue_peer_cert(&ca, "x", &[node_name(2)]).unwrap();
        let ca_path = dir.path().join("ca.pem");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&ca_path, &ca.cert_pem).unwrap();
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key.expose()).unwrap();
        assert!(RaftTls::configured(2, &ca_path, &cert_path, &key_path).is_ok());
        let e = RaftTls::configured(1, &ca_path, &cert_path, &key_path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("raft.node_id is 1 but it names node 2"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let tls = RaftTls::issue(&ca(), 1).unwrap();
        let shown = format!("{tls:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}
