//! The KDS streams open on this replica, per zone and direction. A second stream of the same
//! zone and direction replaces the first: registering it ends the older one. Also keeps the
//! per-zone session record (id, connect time, per-type counters) that both streams update and the
//! ZoneInsight reports, and the `mosaic_kds_zones_connected` gauge.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use mosaic_core::resource::zone::KdsTypeStats;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::metrics;

/// Which of the two streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Global-owned resources to the zone.
    GlobalToZone,
    /// Zone-owned resources to the global.
    ZoneToGlobal,
}

/// One zone's KDS session on this replica (what its ZoneInsight subscription reports).
#[derive(Debug)]
pub struct SessionRecord {
    /// Session id (unique; names the subscription in the ZoneInsight).
    pub id: String,
    /// The zone.
    pub zone: String,
    /// The zone's software version (from `mosaic-zone-version`).
    pub zone_version: String,
    /// When the session connected.
    pub connect_time: OffsetDateTime,
    stats: Mutex<BTreeMap<String, KdsTypeStats>>,
    dirty: AtomicBool,
}

/// Handle of a registered stream: ends when the registry replaces it.
#[derive(Debug)]
pub struct Registration {
    /// Sequence number of the registration (to unregister exactly this one).
    pub seq: u64,
    /// Completes (or errs) when a newer stream of the same zone and direction replaced this one.
    pub replaced: oneshot::Receiver<()>,
}

/// A registered stream: its sequence number and the sender that ends it.
type Registered = (u64, oneshot::Sender<()>);

/// Streams open on this replica.
#[derive(Debug, Default)]
pub struct Registry {
    seq: AtomicU64,
    streams: Mutex<HashMap<(String, Direction), Registered>>,
    sessions: Mutex<HashMap<String, Arc<SessionRecord>>>,
}

/// Which counter to bump.
#[derive(Clone, Copy, Debug)]
pub enum Count {
    /// A response was sent (GlobalToZone) or received (ZoneToGlobal).
    Sent,
    /// A response was acknowledged.
    Acked,
    /// A response was rejected.
    Nacked,
}

// === impl SessionRecord ===

impl SessionRecord {
    /// A new session of `zone`.
    pub fn new(zone: &str, zone_version: &str) -> Self {
        Self {
            id: hex_id(),
            zone: zone.to_string(),
            zone_version: zone_version.to_string(),
            connect_time: OffsetDateTime::now_utc(),
            stats: Mutex::new(BTreeMap::new()),
            dirty: AtomicBool::new(true),
        }
    }

    /// Bumps one counter of `rtype`.
    pub fn count(&self, rtype: &str, what: Count) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        let s = stats.entry(rtype.to_string()).or_default();
        match what {
            Count::Sent => s.responses_sent += 1,
            Count::Acked => s.responses_acknowledged += 1,
            Count::Nacked => s.responses_rejected += 1,
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The counters so far.
    pub fn stats(&self) -> BTreeMap<String, KdsTypeStats> {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether counters changed since the last call (and resets the flag).
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::Relaxed)
    }
}

fn hex_id() -> String {
    let bytes: [u8; 8] = rand_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rand_bytes() -> [u8; 8] {
    let mut out = [0u8; 8];
    // ring's system random; fall back to the clock if it fails (ids need uniqueness, not secrecy).
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out).is_err() {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        out = (nanos as u64).to_be_bytes();
    }
    out
}

// === impl Registry ===

impl Registry {
    /// Registers a stream of `zone` in `direction`, ending the one it replaces.
    pub fn register(&self, zone: &str, direction: Direction) -> Registration {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        let old = self
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((zone.to_string(), direction), (seq, tx));
        if let Some((_, old)) = old {
            let _ = old.send(());
        }
        self.publish_gauge();
        Registration { seq, replaced: rx }
    }

    /// Removes the stream registered as `seq` (a replaced stream finds its successor and leaves
    /// it alone).
    pub fn unregister(&self, zone: &str, direction: Direction, seq: u64) {
        {
            let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (zone.to_string(), direction);
            if streams.get(&key).is_some_and(|(s, _)| *s == seq) {
                streams.remove(&key);
            }
        }
        self.publish_gauge();
    }

    /// Makes `record` the zone's current session.
    pub fn set_session(&self, record: Arc<SessionRecord>) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.zone.clone(), record);
    }

    /// Forgets the zone's session if it is still `id`.
    pub fn clear_session(&self, zone: &str, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.get(zone).is_some_and(|s| s.id == id) {
            sessions.remove(zone);
        }
    }

    /// The zone's current session on this replica.
    pub fn session(&self, zone: &str) -> Option<Arc<SessionRecord>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(zone)
            .cloned()
    }

    /// Zones with an open GlobalToZone stream on this replica.
    pub fn connected(&self) -> usize {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|(_, d)| *d == Direction::GlobalToZone)
            .count()
    }

    fn publish_gauge(&self) {
        metrics::zones_connected(self.connected());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_stream_replaces_the_first() {
        let r = Registry::default();
        let mut first = r.register("east", Direction::GlobalToZone);
        let second = r.register("east", Direction::GlobalToZone);
        let _other = r.register("east", Direction::ZoneToGlobal);
        assert!((&mut first.replaced).await.is_ok(), "first is told to end");
        assert_eq!(r.connected(), 1);
        r.unregister("east", Direction::GlobalToZone, first.seq);
        assert_eq!(
            r.connected(),
            1,
            "the replaced stream does not remove its successor"
        );
        r.unregister("east", Direction::GlobalToZone, second.seq);
        assert_eq!(r.connected(), 0);
    }
}
