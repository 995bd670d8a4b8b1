//! The builtin backend: the global generates a CA once per mesh backend and stores it as two
//! mesh-scoped Secrets (Kuma's names: `<mesh>.ca-builtin-cert-<backend>` and
//! `<mesh>.ca-builtin-key-<backend>`), which every zone receives over KDS; so every zone signs
//! with the same CA.

use mosaic_core::ca::{CaError, CaErrorKind};
use mosaic_core::{
    Sensitive,
    datasource::SecretSource,
    resource::mesh::{BackendType, BuiltinConf, MtlsBackend},
};

use crate::local::{LocalBackend, LocalCa};

pub use mosaic_core::resource::mesh::{
    builtin_cert_secret_name as cert_secret_name, builtin_key_secret_name as key_secret_name,
};

/// A freshly generated builtin CA, to be stored as the two Secrets.
#[derive(Debug)]
pub struct GeneratedCa {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// The CA key (PEM).
    pub key_pem: Sensitive<String>,
}

/// Generates the CA of a builtin backend (ECDSA P-256; `conf.caCert.expiration`, default 10y).
pub fn generate(
    mesh: &str,
    backend: &MtlsBackend,
    conf: &BuiltinConf,
) -> Result<GeneratedCa, CaError> {
    if conf.ca_cert.as_ref().and_then(|c| c.rsa_bits).is_some() {
        tracing::info!(mesh, backend = %backend.name, "caCert.RSAbits is ignored: Mosaic's builtin CA key is ECDSA P-256");
    }
    let (cert_pem, key_pem) = LocalCa::generate_root(
        mesh,
        &format!("Mosaic {mesh} CA ({})", backend.name),
        conf.ca_expiration(),
    )
    .map_err(|e| CaError::new(mesh, &backend.name, CaErrorKind::Certificate(e.to_string())))?;
    Ok(GeneratedCa { cert_pem, key_pem })
}

/// Loads the builtin backend from its two Secrets.
pub fn load(
    mesh: &str,
    backend: &MtlsBackend,
    secrets: &dyn SecretSource,
) -> Result<LocalBackend, CaError> {
    let err = |k| CaError::new(mesh, &backend.name, k);
    let read = |name: String| -> Result<String, CaError> {
        let value = secrets
            .mesh_secret(mesh, &name)
            .map_err(|e| err(CaErrorKind::Config(format!("could not read secret {name:?}: {e}"))))?
            .ok_or_else(|| {
                err(CaErrorKind::Config(format!(
                    "secret {name:?} holding the builtin CA is missing: the global generates it when the Mesh is applied"
                )))
            })?;
        String::from_utf8(value.into_inner()).map_err(|_| {
            err(CaErrorKind::Certificate(format!(
                "secret {name:?} is not PEM text"
            )))
        })
    };
    let cert = read(cert_secret_name(mesh, &backend.name))?;
    let key = read(key_secret_name(mesh, &backend.name))?;
    let ca =
        LocalCa::from_pem(&cert, &key).map_err(|e| err(CaErrorKind::Certificate(e.to_string())))?;
    Ok(LocalBackend::new(mesh, backend, BackendType::Builtin, ca))
}
