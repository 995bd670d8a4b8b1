//! `DataplaneCert`: the certificate a dataplane is served, with where it came from.

use std::sync::Arc;

use mosaic_common::{ca::IssuedCert, template::Tags};
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
    /// The certificate, chain and key.
    pub cert: Arc<IssuedCert>,
}

// === impl DataplaneCert ===

impl DataplaneCert {
    /// Whether it has more than 20% of its lifetime left at `now` (so it is reused, not renewed).
    pub fn is_fresh(&self, now: OffsetDateTime) -> bool {
        backoff::is_fresh(self.cert.not_before, self.cert.not_after, now)
    }

    /// Whether it is still valid at `now` (servable while the CA fails).
    pub fn is_valid(&self, now: OffsetDateTime) -> bool {
        self.cert.not_before <= now && now < self.cert.not_after
    }
}
