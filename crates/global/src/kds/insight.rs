//! A zone's ZoneInsight on the global: KDS subscriptions (connect/disconnect time, serving
//! replica, zone version, per-type counters) recorded by the KDS server, merged with the CA
//! health the zone reports over ZoneToGlobal.
//!
//! Several writers touch one ZoneInsight (both streams, a replaced session on another replica),
//! so every update is a read-modify-write with `expect_version`, retried on conflict.

use mosaic_core::resource::{
    Resource, ResourceType, Spec, ZoneInsightSpec,
    zone::{CaHealth, KdsSubscription},
};
use time::OffsetDateTime;

use super::registry::SessionRecord;
use crate::store::{Command, CommandResult, Refusal, ResourceKey, ResourceStore, StoreError};
use mosaic_kds::wire::ZONE_LABEL;

/// How many subscriptions a ZoneInsight keeps (newest last; open ones are never dropped).
pub const MAX_SUBSCRIPTIONS: usize = 10;

/// How often an update is retried when another writer changed the insight meanwhile.
const ATTEMPTS: usize = 20;

/// Why an insight could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store refused the write.
    #[error("the store refused the ZoneInsight of zone {zone:?}: {reason}")]
    Refused {
        /// The zone.
        zone: String,
        /// Why.
        reason: String,
    },
}

/// Applies `f` to the zone's insight (an empty one if it has none) and writes it if it changed.
pub async fn update(
    store: &dyn ResourceStore,
    zone: &str,
    f: impl Fn(&mut ZoneInsightSpec),
) -> Result<(), InsightError> {
    let key = ResourceKey::new(ResourceType::ZoneInsight, None, zone);
    for _ in 0..ATTEMPTS {
        let existing = store.get(&key)?;
        let (mut spec, version, labels_ok) = match &existing {
            Some(r) => match &r.spec {
                Spec::ZoneInsight(s) => (
                    s.clone(),
                    r.meta.version.unwrap_or_default(),
                    r.meta.labels.get(ZONE_LABEL).map(String::as_str) == Some(zone),
                ),
                _ => (ZoneInsightSpec::default(), 0, false),
            },
            None => (ZoneInsightSpec::default(), 0, false),
        };
        let before = spec.clone();
        f(&mut spec);
        if existing.is_some() && spec == before && labels_ok {
            return Ok(());
        }
        let mut r = Resource::new(zone, None, Spec::ZoneInsight(spec));
        r.meta
            .labels
            .insert(ZONE_LABEL.to_string(), zone.to_string());
        let cmd = Command::Put {
            resource: r.to_universal(),
            now: OffsetDateTime::now_utc(),
            expect_version: Some(version),
        };
        match store.write(cmd).await? {
            CommandResult::Put { .. } => return Ok(()),
            CommandResult::Refused(Refusal::Conflict(_)) => continue,
            other => {
                return Err(InsightError::Refused {
                    zone: zone.to_string(),
                    reason: format!("{other:?}"),
                });
            }
        }
    }
    Err(InsightError::Refused {
        zone: zone.to_string(),
        reason: format!("it kept changing during {ATTEMPTS} attempts"),
    })
}

/// Records a new session: older open subscriptions are closed (a zone holds one session at a
/// time; a replica that died never closed its own), the new one is appended.
pub fn connected(spec: &mut ZoneInsightSpec, session: &SessionRecord, instance: &str) {
    for s in &mut spec.subscriptions {
        if s.disconnect_time.is_none() && s.id != session.id {
            s.disconnect_time = Some(session.connect_time);
        }
    }
    if !spec.subscriptions.iter().any(|s| s.id == session.id) {
        spec.subscriptions.push(KdsSubscription {
            id: session.id.clone(),
            global_instance_id: instance.to_string(),
            connect_time: Some(session.connect_time),
            disconnect_time: None,
            zone_version: session.zone_version.clone(),
            stats: session.stats(),
        });
    }
    while spec.subscriptions.len() > MAX_SUBSCRIPTIONS {
        spec.subscriptions.remove(0);
    }
}

/// Copies the session's counters into its subscription.
pub fn stats(spec: &mut ZoneInsightSpec, session: &SessionRecord) {
    if let Some(s) = spec.subscriptions.iter_mut().find(|s| s.id == session.id) {
        s.stats = session.stats();
    }
}

/// Marks the session disconnected at `at`, with its final counters.
pub fn disconnected(spec: &mut ZoneInsightSpec, session: &SessionRecord, at: OffsetDateTime) {
    if let Some(s) = spec.subscriptions.iter_mut().find(|s| s.id == session.id) {
        s.stats = session.stats();
        if s.disconnect_time.is_none() {
            s.disconnect_time = Some(at);
        }
    }
}

/// Takes the CA health a zone reported (the global keeps its own subscription records).
pub fn ca_health(spec: &mut ZoneInsightSpec, reported: &[CaHealth]) {
    spec.ca_health = reported.to_vec();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_closes_older_open_ones_and_history_is_bounded() {
        let mut spec = ZoneInsightSpec::default();
        let mut last = None;
        for _ in 0..(MAX_SUBSCRIPTIONS + 3) {
            let s = SessionRecord::new("east", "1.0");
            connected(&mut spec, &s, "1");
            last = Some(s);
        }
        assert_eq!(spec.subscriptions.len(), MAX_SUBSCRIPTIONS);
        let open: Vec<_> = spec
            .subscriptions
            .iter()
            .filter(|s| s.disconnect_time.is_none())
            .collect();
        assert_eq!(open.len(), 1);
        let last = last.unwrap();
        assert_eq!(open[0].id, last.id);
        disconnected(&mut spec, &last, OffsetDateTime::now_utc());
        assert!(
            spec.subscriptions
                .iter()
                .all(|s| s.disconnect_time.is_some())
        );
    }
}
