//! [`ZoneFeed`]: the replica's resource change feed as GlobalToZone sessions need it: only
//! changes of global-owned types (what zones are sent), relayed by one task.
//!
//! Every session used to hold its own receiver of the store's feed, so every applied change woke
//! every session, including the ZoneInsight each connected zone's session writes every
//! `insight_flush`: with N zones, N/10 s writes each waking N sessions, N² wake-ups that nothing
//! is sent for. The relay reads the store's feed once and passes on only what a zone can be
//! sent; when it falls behind the store's feed, it tells every session to resync, as a session
//! that falls behind its own receiver does.

use std::sync::Arc;

use mosaic_kds::KdsType;
use tokio::sync::broadcast;

use crate::store::{Change, ResourceStore};

/// How many relayed changes a session may fall behind before it resyncs (the store's feed
/// holds as many).
pub const CAPACITY: usize = 4096;

/// What the relay passes on.
#[derive(Clone, Debug)]
pub enum FeedItem {
    /// A change of a global-owned resource.
    Change(Change),
    /// The relay missed changes: resync everything.
    Lagged,
}

/// The relayed feed (cheap to clone; clones share the channel).
#[derive(Clone, Debug)]
pub struct ZoneFeed {
    tx: broadcast::Sender<FeedItem>,
}

/// Whether a zone may be sent anything because of `c`.
pub fn for_zones(c: &Change) -> bool {
    KdsType::Resource(c.key.kind).is_global_owned()
}

impl ZoneFeed {
    /// Subscribes to `store`'s feed now and relays it from a task of its own (which ends when
    /// the store's feed closes; then every receiver sees `Closed`).
    pub fn start(store: &Arc<dyn ResourceStore>) -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        let mut rx = store.subscribe();
        let relay = tx.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(c) if for_zones(&c) => {
                        let _ = relay.send(FeedItem::Change(c));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "the KDS relay fell behind the change feed; every session resyncs"
                        );
                        let _ = relay.send(FeedItem::Lagged);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Self { tx }
    }

    /// Every relayed change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use mosaic_core::resource::{ResourceType, change::ChangeOp};

    use super::*;
    use crate::store::ResourceKey;

    fn change(kind: ResourceType, mesh: Option<&str>, name: &str) -> Change {
        Change {
            key: ResourceKey::new(kind, mesh, name),
            op: ChangeOp::Put,
            version: 7,
            applied_at: Instant::now(),
        }
    }

    #[test]
    fn only_what_zones_are_sent_is_relayed() {
        for (kind, mesh, relayed) in [
            (ResourceType::Mesh, None, true),
            (ResourceType::Secret, Some("default"), true),
            (ResourceType::GlobalSecret, None, true),
            (ResourceType::Zone, None, true),
            (ResourceType::ZoneInsight, None, false),
            (ResourceType::Dataplane, Some("default"), false),
        ] {
            assert_eq!(for_zones(&change(kind, mesh, "x")), relayed, "{kind:?}");
        }
    }
}
