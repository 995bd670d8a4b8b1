//! The provided backend: the user's CA certificate (`conf.cert`) and key (`conf.key`) from
//! DataSources. A certificate that is not a CA, or a key that does not match it, is refused.

use crate::datasource::ResolveDataSource as _;
use mosaic_core::ca::{CaError, CaErrorKind};

use crate::local::{LocalBackend, LocalCa};
use mosaic_core::{
    datasource::SecretSource,
    resource::mesh::{BackendType, MtlsBackend, ProvidedConf},
};

/// Loads the provided backend: reads and checks the certificate and key.
pub fn load(
    mesh: &str,
    backend: &MtlsBackend,
    conf: &ProvidedConf,
    secrets: &dyn SecretSource,
) -> Result<LocalBackend, CaError> {
    let err = |k| CaError::new(mesh, &backend.name, k);
    let read = |field: &str, ds: &Option<mosaic_core::datasource::DataSource>| {
        let ds = ds
            .as_ref()
            .ok_or_else(|| err(CaErrorKind::Config(format!("conf.{field} must be set"))))?;
        ds.resolve_string(mesh, secrets).map_err(|source| {
            err(CaErrorKind::DataSource {
                field: format!("conf.{field}"),
                source,
            })
        })
    };
    let cert = read("cert", &conf.cert)?;
    let key = read("key", &conf.key)?;
    let ca = LocalCa::from_pem(cert.expose(), key.expose())
        .map_err(|e| err(CaErrorKind::Certificate(format!("conf.cert/conf.key: {e}"))))?;
    Ok(LocalBackend::new(mesh, backend, BackendType::Provided, ca))
}
