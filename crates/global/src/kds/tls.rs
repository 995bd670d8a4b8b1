//! The KDS server's certificate: the operator's (`kds.tls_cert`/`kds.tls_key`) or a generated one.
//!
//! Generated: every replica of a cluster shares one CA, kept in the replicated store (internal
//! record [`KDS_CA_RECORD`]; the first replica that needs it proposes one, first writer wins,
//! like the token signing keys). Each replica writes it to `<data_dir>/kds-ca.pem` and issues its
//! own serving certificate from it (`kds-server.pem`, `kds-server-key.pem`), so a zone configured
//! with any replica's `kds-ca.pem` trusts every replica and can fail over between them. The files
//! are reused at restart (then no quorum is needed); the serving certificate is issued again when
//! its names change or it nears expiry.
//!
//! Names (SANs) of a generated certificate: `localhost`, `127.0.0.1`, `::1`, the host of
//! `raft.advertise`, the address of `kds.listen` unless it is a wildcard, and this machine's
//! hostname. Zones that reach the global under another name (a load balancer, a DNS alias)
//! need a configured certificate, or set the TLS server name they verify to one of these.

use std::{path::Path, time::Duration};

use mosaic_core::Sensitive;
use mosaic_runtime::tls::{CaPem, GeneratedFiles, ServerIdentity, TlsError, generate_ca, host_of};
use serde::{Deserialize, Serialize};

use crate::store::{Command, CommandResult, ResourceStore, StoreError};

/// Internal record of the shared KDS CA (certificate and key, JSON).
pub const KDS_CA_RECORD: &str = "kds/ca";

/// The generated files' prefix in the data directory.
pub const FILE_PREFIX: &str = "kds";

/// Common name of generated KDS certificates.
const COMMON_NAME: &str = "mosaic-global KDS";

/// Why the KDS certificate is not available.
#[derive(Debug, thiserror::Error)]
pub enum KdsTlsError {
    /// Files could not be read, written or generated.
    #[error("KDS TLS: {0}")]
    Tls(#[from] TlsError),
    /// The shared CA could not be read or stored.
    #[error(
        "KDS TLS: the shared KDS CA could not be read or stored ({0}); the cluster needs a leader the first time"
    )]
    Store(#[from] StoreError),
    /// The shared CA record is damaged.
    #[error("KDS TLS: the shared KDS CA record is damaged: {0}")]
    Corrupt(String),
}

#[derive(Serialize, Deserialize)]
struct CaRecord {
    cert: String,
    key: String,
}

/// The names a generated certificate covers (see the module docs).
pub fn default_names(advertise: &str, listen: std::net::SocketAddr) -> Vec<String> {
    mosaic_runtime::tls::default_server_names(&[host_of(advertise)], listen)
}

/// The shared CA from the store, created (first writer wins) if there is none.
async fn shared_ca(store: &dyn ResourceStore, local: Option<CaPem>) -> Result<CaPem, KdsTlsError> {
    let decode = |bytes: &[u8]| -> Result<CaPem, KdsTlsError> {
        let r: CaRecord =
            serde_json::from_slice(bytes).map_err(|e| KdsTlsError::Corrupt(e.to_string()))?;
        Ok(CaPem {
            cert_pem: r.cert,
            key_pem: Sensitive::new(r.key),
        })
    };
    if let Some(bytes) = store.internal(KDS_CA_RECORD)? {
        return decode(&bytes);
    }
    let proposal = match local {
        Some(ca) => ca,
        None => generate_ca(&format!("{COMMON_NAME} CA"))?,
    };
    let value = serde_json::to_vec(&CaRecord {
        cert: proposal.cert_pem.clone(),
        key: proposal.key_pem.expose().clone(),
    })
    .map_err(|e| KdsTlsError::Corrupt(e.to_string()))?;
    match store
        .write(Command::PutInternal {
            key: KDS_CA_RECORD.to_string(),
            value,
            if_absent: true,
        })
        .await?
    {
        CommandResult::Internal { value } => decode(&value),
        other => Err(KdsTlsError::Corrupt(format!(
            "storing the CA answered {other:?}"
        ))),
    }
}

/// The generated identity in `data_dir` (reused if it covers `names`), or a new one from the
/// cluster's shared CA.
pub async fn generated_identity(
    data_dir: &Path,
    names: &[String],
    store: &dyn ResourceStore,
) -> Result<ServerIdentity, KdsTlsError> {
    let files = GeneratedFiles::new(data_dir, FILE_PREFIX);
    if let Some(identity) = files.load_valid_server(names)? {
        return Ok(identity);
    }
    let local = files.load_ca()?;
    let ca = shared_ca(store, local.clone()).await?;
    if local.as_ref().map(|l| &l.cert_pem) != Some(&ca.cert_pem) {
        if local.is_some() {
            tracing::warn!(
                path = %files.ca.display(),
                "replacing this replica's KDS CA with the cluster's shared one; zones must trust the new kds-ca.pem"
            );
        }
        files.store_ca(&ca)?;
    }
    let identity = files.issue_and_store(&ca, COMMON_NAME, names)?;
    tracing::info!(
        ca = %files.ca.display(),
        names = ?names,
        "generated the KDS server certificate; zones trust it with global.ca_cert = the kds-ca.pem file"
    );
    Ok(identity)
}

/// Like [`generated_identity`], retrying while the store has no leader (first start of a
/// cluster), until `stop` says to give up.
pub async fn generated_identity_with_retry(
    data_dir: &Path,
    names: &[String],
    store: &dyn ResourceStore,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<ServerIdentity, KdsTlsError> {
    loop {
        match generated_identity(data_dir, names, store).await {
            Err(KdsTlsError::Store(e)) if !*stop.borrow() => {
                tracing::warn!(error = %e, "KDS certificate: waiting for the cluster to store its shared CA");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = super::stopped(&mut stop) => {}
                }
            }
            other => return other,
        }
    }
}
