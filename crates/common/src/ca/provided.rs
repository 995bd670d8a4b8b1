//! The provided backend: the user's CA certificate (`conf.cert`) and key (`conf.key`) from
//! DataSources. A certificate that is not a CA, or a key that does not match it, is refused.

use std::time::Duration;

use super::{
    CaBackend, CaError, CaErrorKind, IssueRequest, IssuedCert, identity::uri_sans, local::LocalCa,
};
use crate::{
    datasource::SecretSource,
    resource::mesh::{BackendType, MtlsBackend, ProvidedConf},
};

/// The provided backend.
#[derive(Debug)]
pub struct ProvidedCa {
    mesh: String,
    backend: String,
    ttl: Duration,
    ca: LocalCa,
}

// === impl ProvidedCa ===

impl ProvidedCa {
    /// Reads and checks the certificate and key.
    pub fn load(
        mesh: &str,
        backend: &MtlsBackend,
        conf: &ProvidedConf,
        secrets: &dyn SecretSource,
    ) -> Result<Self, CaError> {
        let err = |k| CaError::new(mesh, &backend.name, k);
        let read = |field: &str, ds: &Option<crate::datasource::DataSource>| {
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
        Ok(Self {
            mesh: mesh.to_string(),
            backend: backend.name.clone(),
            ttl: backend.cert_expiration(),
            ca,
        })
    }
}

#[async_trait::async_trait]
impl CaBackend for ProvidedCa {
    fn mesh(&self) -> &str {
        &self.mesh
    }

    fn backend_name(&self) -> &str {
        &self.backend
    }

    fn backend_type(&self) -> BackendType {
        BackendType::Provided
    }

    fn default_ttl(&self) -> Duration {
        self.ttl
    }

    async fn root_certs(&self) -> Result<Vec<String>, CaError> {
        Ok(self.ca.bundle_pems())
    }

    async fn issue(&self, req: &IssueRequest) -> Result<IssuedCert, CaError> {
        let err = |k| CaError::new(&self.mesh, &self.backend, k);
        let sans = uri_sans(&self.mesh, &req.tags).ok_or_else(|| err(CaErrorKind::NoService))?;
        self.ca
            .issue(&sans, None, req.ttl)
            .map_err(|e| err(CaErrorKind::Certificate(e.to_string())))
    }
}
