//! `DataplaneCert`: the certificate a dataplane is served, with where it came from.

use std::sync::Arc;

use mosaic_core::{ca::IssuedCert, template::Tags};
use time::OffsetDateTime;

use super::backoff;

/// A dataplane's current certificate.
#[derive(Clone, Debug)]
pub struct DataplaneCert {
    /// The mesh.
    pub mesh: String,
    /// The dataplane's name.
    pub dataplane: String,
    /// The backend that issued it.
    pub backend: String,
    /// The tags it certifies.
    pub tags: Tags,
    /// The SPIFFE ID it certifies, when a MeshIdentity issued it (its only URI SAN).
    pub spiffe_id: Option<String>,
    /// The certificate, chain and key.
    pub cert: Arc<IssuedCert>,
    /// When this zone received it (CAs such as Vault backdate `not_before`; the lifetime that
    /// rotation measures starts at the later of the two).
    pub issued_at: OffsetDateTime,
}

// === impl DataplaneCert ===

impl DataplaneCert {
    /// Start of the lifetime rotation measures: the later of `not_before` and `issued_at`.
    pub fn lifetime_start(&self) -> OffsetDateTime {
        self.cert.not_before.max(self.issued_at)
    }

    /// Whether it has more than 20% of its lifetime left at `now` (so it is reused, not renewed).
    pub fn is_fresh(&self, now: OffsetDateTime) -> bool {
        backoff::is_fresh(self.lifetime_start(), self.cert.not_after, now)
    }

    /// Whether it is still valid at `now` (servable while the CA fails).
    pub fn is_valid(&self, now: OffsetDateTime) -> bool {
        self.cert.not_before <= now && now < self.cert.not_after
    }
}
