//! [`SessionFeed`]: the zone store's change feed, read once and passed to the SDS sessions a
//! change concerns.
//!
//! A session needs four kinds of change: its own Dataplane, and its mesh's DataplaneTokenKey,
//! token revocations and Mesh. Every session used to hold its own receiver of the whole feed, so
//! every change woke every session: each new certificate's DataplaneInsight and each data plane's
//! registration woke all N sessions, N² wake-ups for N data planes (about 8 ms of zone CPU per
//! certificate at 1,000 data planes). The relay routes a Dataplane change to that data plane's
//! sessions, a mesh-wide change to the mesh's sessions, and drops the rest. A session that falls
//! behind (its queue full) or a relay that falls behind the store's feed gets
//! [`FeedEvent::Lagged`] and re-checks everything, as before.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
};

use mosaic_core::{resource::ResourceType, revocation::dataplane_token_revocations};
use tokio::sync::{broadcast, mpsc};

use crate::store::{Change, KdsType, ZoneStore};

/// Changes a session may have queued before it is told it lagged.
const QUEUE: usize = 32;

/// What a session receives.
#[derive(Clone, Debug)]
pub enum FeedEvent {
    /// A change that concerns it.
    Change(Change),
    /// Changes were missed: check everything again.
    Lagged,
}

/// Who a change concerns.
#[derive(Debug, PartialEq, Eq)]
enum Audience<'a> {
    /// The sessions of one data plane (mesh, name).
    Dataplane(&'a str, &'a str),
    /// Every session of a mesh.
    Mesh(&'a str),
    /// No session.
    Nobody,
}

fn audience(c: &Change) -> Audience<'_> {
    let key = &c.key;
    match (key.kind, key.mesh.as_deref()) {
        (KdsType::Resource(ResourceType::Dataplane), Some(mesh)) => {
            Audience::Dataplane(mesh, &key.name)
        }
        (KdsType::DataplaneTokenKey, _) | (KdsType::Resource(ResourceType::Mesh), _) => {
            Audience::Mesh(&key.name)
        }
        (KdsType::Resource(ResourceType::Secret), Some(mesh))
            if key.name == dataplane_token_revocations(mesh) =>
        {
            Audience::Mesh(mesh)
        }
        _ => Audience::Nobody,
    }
}

#[derive(Debug)]
struct Sub {
    id: u64,
    tx: mpsc::Sender<FeedEvent>,
    lagged: Arc<AtomicBool>,
}

impl Sub {
    fn send(&self, event: FeedEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(event) {
            self.lagged.store(true, Ordering::SeqCst);
        }
    }
}

#[derive(Debug, Default)]
struct Subs {
    next: u64,
    started: bool,
    by_dataplane: HashMap<(String, String), Vec<Sub>>,
}

/// The relay (cheap to clone).
#[derive(Clone, Debug)]
pub struct SessionFeed {
    store: Arc<ZoneStore>,
    subs: Arc<Mutex<Subs>>,
}

/// One session's share of the feed; leaves it when dropped.
#[derive(Debug)]
pub struct Subscription {
    id: u64,
    key: (String, String),
    rx: mpsc::Receiver<FeedEvent>,
    lagged: Arc<AtomicBool>,
    subs: Weak<Mutex<Subs>>,
}

impl SessionFeed {
    /// A relay of `store`'s feed (its task starts with the first subscription).
    pub fn new(store: Arc<ZoneStore>) -> Self {
        Self {
            store,
            subs: Arc::default(),
        }
    }

    /// Subscribes the session of data plane `name` of `mesh`: every change applied from now on
    /// that concerns it is delivered. Must be called within a Tokio runtime.
    pub fn subscribe(&self, mesh: &str, name: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(QUEUE);
        let lagged = Arc::new(AtomicBool::new(false));
        let key = (mesh.to_string(), name.to_string());
        let mut subs = lock(&self.subs);
        subs.next += 1;
        let id = subs.next;
        subs.by_dataplane.entry(key.clone()).or_default().push(Sub {
            id,
            tx,
            lagged: lagged.clone(),
        });
        if !subs.started {
            subs.started = true;
            tokio::spawn(relay(self.store.subscribe(), Arc::downgrade(&self.subs)));
        }
        Subscription {
            id,
            key,
            rx,
            lagged,
            subs: Arc::downgrade(&self.subs),
        }
    }
}

impl Subscription {
    /// The next event; `None` once the relay ended (the store's feed closed).
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        let event = self.rx.recv().await;
        if self.lagged.swap(false, Ordering::SeqCst) {
            while self.rx.try_recv().is_ok() {}
            return Some(FeedEvent::Lagged);
        }
        event
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(subs) = self.subs.upgrade() else {
            return;
        };
        let mut subs = lock(&subs);
        if let Some(list) = subs.by_dataplane.get_mut(&self.key) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                subs.by_dataplane.remove(&self.key);
            }
        }
    }
}

fn lock(subs: &Mutex<Subs>) -> std::sync::MutexGuard<'_, Subs> {
    subs.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the store's feed and routes each change; ends (dropping every sender, so sessions see
/// `None`) when the feed closes or the relay is dropped.
async fn relay(mut feed: broadcast::Receiver<Change>, subs: Weak<Mutex<Subs>>) {
    loop {
        let item = feed.recv().await;
        let Some(subs) = subs.upgrade() else { return };
        let mut subs = lock(&subs);
        match item {
            Ok(c) => match audience(&c) {
                Audience::Dataplane(mesh, name) => {
                    if let Some(list) = subs.by_dataplane.get(&(mesh.to_string(), name.to_string()))
                    {
                        for s in list {
                            s.send(FeedEvent::Change(c.clone()));
                        }
                    }
                }
                Audience::Mesh(mesh) => {
                    for ((m, _), list) in &subs.by_dataplane {
                        if m == mesh {
                            for s in list {
                                s.send(FeedEvent::Change(c.clone()));
                            }
                        }
                    }
                }
                Audience::Nobody => {}
            },
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "the SDS relay fell behind the store's change feed; every stream re-checks"
                );
                for list in subs.by_dataplane.values() {
                    for s in list {
                        s.lagged.store(true, Ordering::SeqCst);
                        let _ = s.tx.try_send(FeedEvent::Lagged);
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => {
                subs.by_dataplane.clear();
                subs.started = false;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::{ChangeOp, StoreKey};

    fn change(kind: impl Into<KdsType>, mesh: Option<&str>, name: &str) -> Change {
        Change {
            key: StoreKey::new(kind, mesh, name),
            op: ChangeOp::Put,
            version: 1,
            applied_at: Instant::now(),
        }
    }

    #[test]
    fn each_change_concerns_only_whom_it_should() {
        let dp = change(ResourceType::Dataplane, Some("default"), "web");
        assert_eq!(audience(&dp), Audience::Dataplane("default", "web"));
        let keys = change(KdsType::DataplaneTokenKey, None, "default");
        assert_eq!(audience(&keys), Audience::Mesh("default"));
        let mesh = change(ResourceType::Mesh, None, "default");
        assert_eq!(audience(&mesh), Audience::Mesh("default"));
        let revocations = change(
            ResourceType::Secret,
            Some("default"),
            &dataplane_token_revocations("default"),
        );
        assert_eq!(audience(&revocations), Audience::Mesh("default"));
        let insight = change(ResourceType::DataplaneInsight, Some("default"), "web");
        assert_eq!(
            audience(&insight),
            Audience::Nobody,
            "written on every push"
        );
        let secret = change(ResourceType::Secret, Some("default"), "vault-token");
        assert_eq!(audience(&secret), Audience::Nobody);
    }
}
