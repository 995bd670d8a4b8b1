//! The certificate authorities behind a Mesh's `mtls` backends: the implementations of
//! `mosaic_core::ca::CaBackend`, with Vault's client, auth methods and token manager.
//!
//! Module map:
//! - [`chain`]: verifying a certificate chain to a set of roots (rustls-webpki).
//! - [`datasource`]: reading a DataSource's value (a mesh Secret, a file on this host, inline).
//! - [`key_pem`]: CA keys in PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM, as PKCS#8.
//! - [`local`]: an in-process CA (rcgen) and `LocalBackend`, the backend builtin and provided load.
//! - [`builtin`]: the builtin backend: a CA generated once by the global, kept in mesh secrets.
//! - [`provided`]: the provided backend: the user's CA certificate and key from DataSources.
//! - [`identity`]: MeshIdentity providers (Bundled, Vault) as CA backends named per identity.
//! - [`vault`]: the Vault (or OpenBao) PKI backend.

pub mod builtin;
pub mod chain;
pub mod datasource;
pub mod identity;
pub mod key_pem;
pub mod local;
pub mod provided;
pub mod vault;

use std::sync::Arc;

use mosaic_core::{
    ca::{CaBackend, CaError, CaErrorKind},
    datasource::SecretSource,
    resource::mesh::{BackendConf, MtlsBackend},
};

/// Builds the backend for `backend` of `mesh`. Secrets named in the configuration are read from
/// `secrets`. The backend is validated separately (see [`CaBackend::validate`]).
pub async fn build_backend(
    mesh: &str,
    backend: &MtlsBackend,
    secrets: Arc<dyn SecretSource>,
) -> Result<Arc<dyn CaBackend>, CaError> {
    let err = |kind: CaErrorKind| CaError::new(mesh, &backend.name, kind);
    let conf = backend.typed_conf().map_err(|e| {
        err(CaErrorKind::Config(format!(
            "mtls backend {:?} has an invalid conf: {e}",
            backend.name
        )))
    })?;
    Ok(match conf {
        BackendConf::Builtin(_) => Arc::new(builtin::load(mesh, backend, secrets.as_ref())?),
        BackendConf::Provided(c) => Arc::new(provided::load(mesh, backend, &c, secrets.as_ref())?),
        BackendConf::Vault(c) => Arc::new(vault::VaultCa::new(mesh, backend, &c, secrets).await?),
    })
}
