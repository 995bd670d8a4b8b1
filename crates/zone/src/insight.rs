//! The zone's own `ZoneInsight` (named after the zone): its KDS sessions as the zone saw them
//! (global address, connect/disconnect times, zone version, per-type counts of the responses it
//! received, ACKed and NACKed) and per mesh/backend CA health, written to the zone store and so
//! synced up to the global like every zone-owned record.
//!
//! It also carries the MeshTrusts the zone makes from its MeshIdentities (`meshTrusts`), which
//! the global turns into MeshTrusts every zone receives.
//!
//! Writes happen on session start and end and on [`ZoneInsightReporter::set_ca_health`]; the
//! per-type counters are kept in memory between them (writing them on every response would send
//! a ZoneInsight up for every Mesh change pushed down).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

use mosaic_core::resource::{
    Resource, ResourceType, Spec,
    zone::{CaHealth, KdsSubscription, KdsTypeStats, ZoneInsightSpec, ZoneTrust},
};
use time::OffsetDateTime;

use crate::{ZONE_VERSION, store::ZoneStore};

/// How many KDS sessions the insight keeps (newest last).
pub const MAX_SUBSCRIPTIONS: usize = 5;

/// Maintains the zone's ZoneInsight (cheap to clone).
#[derive(Clone, Debug)]
pub struct ZoneInsightReporter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<ZoneStore>,
    zone: String,
    spec: Mutex<ZoneInsightSpec>,
}

// === impl ZoneInsightReporter ===

impl ZoneInsightReporter {
    /// A reporter for `zone`, continuing the stored insight's history.
    pub fn new(store: Arc<ZoneStore>, zone: &str) -> Self {
        let spec = match store.get_resource(ResourceType::ZoneInsight, None, zone) {
            Ok(Some(Resource {
                spec: Spec::ZoneInsight(s),
                ..
            })) => s,
            _ => ZoneInsightSpec::default(),
        };
        Self {
            inner: Arc::new(Inner {
                store,
                zone: zone.to_string(),
                spec: Mutex::new(spec),
            }),
        }
    }

    /// Replaces the CA health list (the issuer calls this) and publishes the insight.
    pub fn set_ca_health(&self, health: Vec<CaHealth>) {
        self.update(|s| s.ca_health = health);
    }

    /// Replaces the MeshTrusts this zone made (the issuer calls this) and publishes the insight:
    /// the global keeps one MeshTrust per entry for every zone.
    pub fn set_mesh_trusts(&self, trusts: Vec<ZoneTrust>) {
        self.update(|s| s.mesh_trusts = Some(trusts));
    }

    /// The current insight spec.
    pub fn snapshot(&self) -> ZoneInsightSpec {
        self.lock().clone()
    }

    /// Records a new KDS session with `global` and publishes the insight.
    pub fn session_started(&self, id: &str, global: &str) {
        let now = OffsetDateTime::now_utc();
        self.update(|s| {
            // A previous session that ended without being recorded (crash) ends now.
            for old in &mut s.subscriptions {
                old.disconnect_time.get_or_insert(now);
            }
            s.subscriptions.push(KdsSubscription {
                id: id.to_string(),
                global_instance_id: global.to_string(),
                connect_time: Some(now),
                disconnect_time: None,
                zone_version: ZONE_VERSION.to_string(),
                stats: BTreeMap::new(),
            });
            let excess = s.subscriptions.len().saturating_sub(MAX_SUBSCRIPTIONS);
            s.subscriptions.drain(..excess);
        });
    }

    /// Counts a GlobalToZone response of `kind` received in session `id` (ACKed or NACKed);
    /// in memory until the next publish.
    pub fn count_response(&self, id: &str, kind: &str, acked: bool) {
        let mut s = self.lock();
        if let Some(sub) = s.subscriptions.iter_mut().rev().find(|x| x.id == id) {
            let st: &mut KdsTypeStats = sub.stats.entry(kind.to_string()).or_default();
            st.responses_sent += 1;
            if acked {
                st.responses_acknowledged += 1;
            } else {
                st.responses_rejected += 1;
            }
        }
    }

    /// Records the end of session `id` and publishes the insight.
    pub fn session_ended(&self, id: &str) {
        let now = OffsetDateTime::now_utc();
        self.update(|s| {
            if let Some(sub) = s.subscriptions.iter_mut().rev().find(|x| x.id == id) {
                sub.disconnect_time = Some(now);
            }
        });
    }

    /// Writes the current insight to the store.
    pub fn publish(&self) {
        let spec = self.lock().clone();
        let resource = Resource::new(&self.inner.zone, None, Spec::ZoneInsight(spec));
        if let Err(e) = self
            .inner
            .store
            .put_local(resource, OffsetDateTime::now_utc())
        {
            tracing::warn!(zone = %self.inner.zone, error = %e, "could not store the ZoneInsight");
        }
    }

    fn update(&self, f: impl FnOnce(&mut ZoneInsightSpec)) {
        f(&mut self.lock());
        self.publish();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ZoneInsightSpec> {
        self.inner
            .spec
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
