//! Certificate authorities for data-plane identities: the [`CaBackend`] trait every backend
//! implements, what is asked of it and what it answers, and its errors. The implementations
//! (builtin, provided, Vault) live in the `mosaic-ca` crate.
//!
//! Module map:
//! - [`chain`]: which trusted root a served chain reaches.
//! - [`identity`]: SPIFFE/kuma URI SANs from tags, leaf parameters, PEM and certificate inspection.

pub mod chain;
pub mod identity;

use std::time::Duration;

use time::OffsetDateTime;

use crate::{
    Sensitive,
    datasource::DataSourceError,
    resource::mesh::BackendType,
    template::{Tags, TemplateError},
};

/// Service name used for the test certificate that validates a backend.
pub const VALIDATION_SERVICE: &str = "mosaic-validation";

/// A certificate authority that issues data-plane certificates for one backend of one mesh.
#[async_trait::async_trait]
pub trait CaBackend: Send + Sync + std::fmt::Debug {
    /// The mesh.
    fn mesh(&self) -> &str;

    /// The backend's name.
    fn backend_name(&self) -> &str;

    /// The backend's type.
    fn backend_type(&self) -> BackendType;

    /// Proves the backend can issue by issuing (and discarding) a test certificate.
    async fn validate(&self) -> Result<(), CaError> {
        self.validate_with(&IssueRequest::validation(self.default_ttl()))
            .await
    }

    /// Proves the backend can issue `req` by issuing (and discarding) it: a MeshIdentity's
    /// provider is tested with a SPIFFE ID of its own trust domain, which a role such as seed
    /// 002's (`allowed_uri_sans="spiffe://domain.name/*"`) signs where the classic test's
    /// `kuma://` SANs would be refused.
    async fn validate_with(&self, req: &IssueRequest) -> Result<(), CaError> {
        let cert = self.issue(req).await?;
        tracing::debug!(
            mesh = self.mesh(),
            backend = self.backend_name(),
            serial = %cert.serial,
            "test certificate issued"
        );
        Ok(())
    }

    /// The certificates data planes must trust for this backend (the chain up to the root).
    async fn root_certs(&self) -> Result<Vec<String>, CaError>;

    /// Issues a data-plane certificate for `req.tags`.
    async fn issue(&self, req: &IssueRequest) -> Result<IssuedCert, CaError>;

    /// The certificate lifetime configured for this backend (`dpCert.rotation.expiration`).
    fn default_ttl(&self) -> Duration;
}

/// What to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRequest {
    /// The data plane's tags; `kuma.io/service` names its services.
    pub tags: Tags,
    /// Requested lifetime.
    pub ttl: Duration,
    /// A MeshIdentity's SPIFFE ID: when set, the certificate's only URI SAN (no `kuma://` SANs,
    /// no service needed); when unset, the SANs come from `tags` as Kuma's classic mode makes them.
    pub spiffe_id: Option<String>,
}

/// An issued certificate.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// The leaf first, then every intermediate up to (not including) the self-signed root.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: Sensitive<String>,
    /// Serial number, lowercase hex with colons (as Vault prints it).
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// A CA operation failed; says which mesh and backend, what failed and what to do.
#[derive(Debug, thiserror::Error)]
#[error("mesh {mesh:?}, backend {backend:?}: {kind}")]
pub struct CaError {
    /// The mesh.
    pub mesh: String,
    /// The backend.
    pub backend: String,
    /// What failed (boxed: errors travel far and should stay small).
    pub kind: Box<CaErrorKind>,
}

/// The ways a CA operation fails.
#[derive(Debug, thiserror::Error)]
pub enum CaErrorKind {
    /// A DataSource in the backend's configuration could not be read.
    #[error("{field}: {source}")]
    DataSource {
        /// Field path inside `conf`.
        field: String,
        /// The cause.
        source: DataSourceError,
    },
    /// The configuration is not usable.
    #[error("{0}")]
    Config(String),
    /// Vault refused or could not be reached (the `mosaic-ca` crate's `VaultError`).
    #[error(transparent)]
    Vault(Box<dyn std::error::Error + Send + Sync>),
    /// A certificate or key is malformed or unsuitable.
    #[error("{0}")]
    Certificate(String),
    /// The commonName template could not be rendered for this data plane.
    #[error("commonName: {0}")]
    Template(#[from] TemplateError),
    /// The data plane has no service tag.
    #[error(
        "the data plane has no kuma.io/service tag, so a Vault backend has no identity to ask Vault for: tag an inbound with kuma.io/service (builtin and provided backends certify such a data plane by its other tags, as Kuma does)"
    )]
    NoService,
}

// === impl IssueRequest ===

impl IssueRequest {
    /// A request for `service`'s identity.
    pub fn for_service(service: &str, ttl: Duration) -> Self {
        let mut tags = Tags::new();
        tags.entry(crate::resource::dataplane::SERVICE_TAG.to_string())
            .or_default()
            .insert(service.to_string());
        Self {
            tags,
            ttl,
            spiffe_id: None,
        }
    }

    /// The request used to validate a backend.
    pub fn validation(ttl: Duration) -> Self {
        Self::for_service(VALIDATION_SERVICE, ttl)
    }

    /// A request for a MeshIdentity's SPIFFE ID (the certificate's only URI SAN), with the tags of
    /// the validation service (`kuma.io/service: mosaic-validation`) for a `commonName` template
    /// to read, as a backend's test issuance has: what the global's admission asks.
    pub fn for_identity(spiffe_id: &str, ttl: Duration) -> Self {
        Self {
            spiffe_id: Some(spiffe_id.to_string()),
            ..Self::validation(ttl)
        }
    }

    /// The URI SANs to certify: the SPIFFE ID alone when set, else `mesh`'s classic SANs.
    pub fn uri_sans(&self, mesh: &str) -> Vec<String> {
        match &self.spiffe_id {
            Some(id) => vec![id.clone()],
            None => identity::uri_sans(mesh, &self.tags),
        }
    }
}

// === impl CaError ===

impl CaError {
    /// Builds an error for a mesh's backend.
    pub fn new(mesh: &str, backend: &str, kind: impl Into<CaErrorKind>) -> Self {
        Self {
            mesh: mesh.to_string(),
            backend: backend.to_string(),
            kind: Box::new(kind.into()),
        }
    }
}
