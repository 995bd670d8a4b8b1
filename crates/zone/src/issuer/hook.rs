//! `CaHealthHook`: where the issuer reports CA health (the zone's ZoneInsight, which KDS carries
//! to the global).

use mosaic_core::resource::zone::CaHealth;

use crate::insight::ZoneInsightReporter;

/// Receives the health of every mesh backend the issuer has used, whenever it changes.
pub trait CaHealthHook: Send + Sync + std::fmt::Debug {
    /// The full current list (one entry per mesh and backend, sorted by mesh then backend).
    fn set_ca_health(&self, health: Vec<CaHealth>);
}

impl CaHealthHook for ZoneInsightReporter {
    fn set_ca_health(&self, health: Vec<CaHealth>) {
        ZoneInsightReporter::set_ca_health(self, health);
    }
}
