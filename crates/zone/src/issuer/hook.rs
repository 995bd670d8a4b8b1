//! `CaHealthHook`: where the issuer reports CA health and the MeshTrusts this zone makes (the
//! zone's ZoneInsight, which KDS carries to the global).

use mosaic_core::resource::zone::{CaHealth, ZoneTrust};

use crate::insight::ZoneInsightReporter;

/// Receives the health of every mesh backend the issuer has used, whenever it changes, and the
/// MeshTrusts made from this zone's MeshIdentities.
pub trait CaHealthHook: Send + Sync + std::fmt::Debug {
    /// The full current list (one entry per mesh and backend, sorted by mesh then backend).
    fn set_ca_health(&self, health: Vec<CaHealth>);

    /// The full current list of MeshTrusts this zone makes (sorted by mesh, then identity),
    /// whenever it changes. A hook with no use for them ignores them.
    fn set_mesh_trusts(&self, _trusts: Vec<ZoneTrust>) {}
}

impl CaHealthHook for ZoneInsightReporter {
    fn set_ca_health(&self, health: Vec<CaHealth>) {
        ZoneInsightReporter::set_ca_health(self, health);
    }

    fn set_mesh_trusts(&self, trusts: Vec<ZoneTrust>) {
        ZoneInsightReporter::set_mesh_trusts(self, trusts);
    }
}
