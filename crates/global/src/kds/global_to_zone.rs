//! One GlobalToZone stream: the zone subscribes per type with the versions it holds; the session
//! answers with an authoritative response carrying only the difference, then pushes every applied
//! change at once as a delta. One task owns the stream: it reads the zone's requests (subscribe,
//! ACK, NACK), the change feeds and the stop signals, and is the only writer of responses.
//!
//! The session keeps `view`: per subscribed type, the version of every item the zone holds
//! (as far as this session sent it). Deltas are computed against it from the current applied
//! state, so a change already covered by the initial sync, or repeated, sends nothing. A NACKed
//! item leaves the view (it is sent again at the next change or resync). If the change feed
//! overflows (`Lagged`), every subscribed type is sent again authoritatively: every current item,
//! plus `removed` for what the view holds and is gone.
//!
//! Authoritative responses to a subscription with `known` versions carry only the difference:
//! the zone keeps the items it announced whose version did not change, and drops what `removed`
//! names and whatever it holds but did not announce.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use mosaic_core::{resource::ResourceType, revocation::ZONE_TOKEN_REVOCATIONS, token::kuma};
use mosaic_proto::kds::{DiscoveryRequest, DiscoveryResponse};
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, oneshot};
use tonic::{Status, Streaming};

use super::{
    Shared,
    auth::{self, ZoneIdentity, access_ended},
    feed::FeedItem,
    insight, metrics,
    registry::{Count, Direction, SessionRecord},
    size,
    state::{self, Items},
    stopped,
};
use crate::{
    store::{Change, InternalChange, ResourceStore, StoreError},
    tokens::{dataplane_key_mesh, is_zone_key_record},
};
use mosaic_kds::KdsType;
use mosaic_kds::chunk::{Outgoing, chunk};
use mosaic_kds::wire::ItemKey;
use mosaic_kds::wire::KdsWire as _;

/// How long the end of a session may take to reach the zone and the ZoneInsight.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// The response sink of a stream.
pub type ResponseTx = mosaic_runtime::stream_channel::Sender<DiscoveryResponse>;

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// The zone closed its side.
    ZoneClosed,
    /// The transport failed (dead connection, reset).
    Transport(Status),
    /// The response stream is gone.
    ResponseClosed,
    /// A newer stream of the same zone replaced this one.
    Replaced,
    /// The global replica is shutting down.
    Shutdown,
    /// The zone was disabled, or its token revoked, expired or its key retired while connected
    /// (the status says which).
    AccessEnded(Status),
    /// The session cannot go on (store failure, raft stopped).
    Fatal(Status),
}

/// A response waiting for the zone's ACK/NACK.
#[derive(Debug)]
struct Pending {
    ktype: KdsType,
    /// When the oldest change it carries was applied here (deltas only).
    applied_at: Option<Instant>,
}

/// Changes collected from the feeds, per type.
#[derive(Debug, Default)]
struct Batch {
    /// Per type: the changed items, each with the version of its last change (what the shared
    /// [`WireCache`](super::wire_cache::WireCache) entry must have been read after), and the earliest change's apply time.
    items: BTreeMap<KdsType, (BTreeMap<ItemKey, u64>, Option<Instant>)>,
    max_index: u64,
    /// The zone's Zone, the zone-token revocations or the zone-token keys changed: re-check its
    /// access.
    access_touched: bool,
}

/// Events for the session's ZoneInsight writer, applied in order.
#[derive(Debug)]
enum InsightEvent {
    Connected,
    Stats,
    Disconnected(OffsetDateTime),
}

/// One GlobalToZone session.
pub struct GlobalToZone {
    shared: Arc<Shared>,
    identity: ZoneIdentity,
    record: Arc<SessionRecord>,
    tx: ResponseTx,
    view: BTreeMap<KdsType, BTreeMap<ItemKey, u64>>,
    pending: HashMap<String, Pending>,
    nonce_seq: u64,
    last_index: u64,
}

fn store_failure(e: StoreError) -> End {
    End::Fatal(Status::unavailable(format!(
        "the global cannot read its store: {e}; reconnect"
    )))
}

// === impl Batch ===

impl Batch {
    fn add(&mut self, t: KdsType, key: ItemKey, version: u64, applied_at: Instant) {
        let entry = self.items.entry(t).or_default();
        let last = entry.0.entry(key).or_insert(version);
        *last = (*last).max(version);
        entry.1 = Some(entry.1.map_or(applied_at, |a| a.min(applied_at)));
    }

    fn change(&mut self, c: &Change, zone: &str) {
        self.max_index = self.max_index.max(c.version);
        let rt = c.key.kind;
        if (rt == ResourceType::Zone && c.key.name == zone)
            || (rt == ResourceType::GlobalSecret
                && (c.key.name == ZONE_TOKEN_REVOCATIONS
                    || kuma::zone_signing_key_serial(&c.key.name).is_some()))
        {
            self.access_touched = true;
        }
        let t = KdsType::Resource(rt);
        if t.is_global_owned() && state::for_zone(rt, &c.key.name, zone) {
            let key = t.item_key(c.key.mesh.as_deref().unwrap_or_default(), &c.key.name);
            self.add(t, key, c.version, c.applied_at);
        }
        if rt == ResourceType::Mesh {
            let t = KdsType::DataplaneTokenKey;
            self.add(t, t.item_key("", &c.key.name), c.version, c.applied_at);
        }
        // An imported Kuma dataplane-token signing key changes its mesh's public keys.
        let kuma_key_mesh = match rt {
            ResourceType::Secret if c.key.name.starts_with(kuma::DATAPLANE_SIGNING_KEY_PREFIX) => {
                c.key.mesh.as_deref()
            }
            ResourceType::GlobalSecret => kuma::dataplane_signing_key_mesh(&c.key.name),
            _ => None,
        };
        if let Some(mesh) = kuma_key_mesh {
            let t = KdsType::DataplaneTokenKey;
            self.add(t, t.item_key("", mesh), c.version, c.applied_at);
        }
    }

    fn internal(&mut self, c: &InternalChange) {
        self.max_index = self.max_index.max(c.version);
        if is_zone_key_record(&c.key) {
            self.access_touched = true;
        }
        if let Some(mesh) = dataplane_key_mesh(&c.key) {
            let t = KdsType::DataplaneTokenKey;
            self.add(t, t.item_key("", mesh), c.version, c.applied_at);
        }
    }
}

// === impl GlobalToZone ===

impl GlobalToZone {
    /// A session for an authenticated zone, answering through `tx`.
    pub fn new(shared: Arc<Shared>, identity: ZoneIdentity, tx: ResponseTx) -> Self {
        let record = Arc::new(SessionRecord::new(&identity.zone, &identity.version));
        Self {
            shared,
            identity,
            record,
            tx,
            view: BTreeMap::new(),
            pending: HashMap::new(),
            nonce_seq: 0,
            last_index: 0,
        }
    }

    /// Serves the stream until it ends. The feeds must have been subscribed before any state
    /// is read, so no change falls between a snapshot and the feed.
    pub async fn run(
        mut self,
        mut requests: Streaming<DiscoveryRequest>,
        mut feed: broadcast::Receiver<FeedItem>,
        mut internal: broadcast::Receiver<InternalChange>,
        mut replaced: oneshot::Receiver<()>,
        seq: u64,
    ) {
        let zone = self.identity.zone.clone();
        tracing::info!(
            session = %self.record.id,
            version = %self.identity.version,
            features = ?self.identity.features,
            "zone connected (GlobalToZone)"
        );
        self.shared.registry.set_session(self.record.clone());
        let (insight_tx, insight_rx) = mpsc::channel(64);
        let writer = tokio::spawn(insight_writer(
            self.shared.clone(),
            self.record.clone(),
            insight_rx,
        ));
        let _ = insight_tx.try_send(InsightEvent::Connected);

        let mut shutdown = self.shared.shutdown.clone();
        let mut flush = tokio::time::interval(self.shared.settings.insight_flush);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        flush.tick().await;
        let expiry = auth::expiry(&self.identity);
        tokio::pin!(expiry);
        let end = loop {
            let step = tokio::select! {
                biased;
                _ = &mut replaced => Err(End::Replaced),
                _ = stopped(&mut shutdown) => Err(End::Shutdown),
                () = &mut expiry => Err(End::AccessEnded(auth::expired(&self.identity))),
                _ = self.tx.closed() => Err(End::ResponseClosed),
                msg = requests.message() => match msg {
                    Ok(Some(req)) => self.on_request(req).await,
                    Ok(None) => Err(End::ZoneClosed),
                    Err(status) => Err(
                        match size::received_too_large("GlobalToZone", "DiscoveryRequest", &status) {
                            Some(refusal) => End::Fatal(refusal),
                            None => End::Transport(status),
                        },
                    ),
                },
                c = feed.recv() => self.on_feed(relayed(c).map(Some), None, &mut feed, &mut internal).await,
                c = internal.recv() => self.on_feed(Ok(None), Some(c), &mut feed, &mut internal).await,
                _ = flush.tick() => {
                    if self.record.take_dirty() {
                        let _ = insight_tx.try_send(InsightEvent::Stats);
                    }
                    Ok(())
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        self.finish(end, seq, insight_tx, writer, &zone).await;
    }

    async fn finish(
        self,
        end: End,
        seq: u64,
        insight_tx: mpsc::Sender<InsightEvent>,
        writer: tokio::task::JoinHandle<()>,
        zone: &str,
    ) {
        let goodbye = match &end {
            End::Replaced => Some(Status::aborted(format!(
                "a newer KDS connection of zone {zone:?} replaced this one"
            ))),
            End::Shutdown => Some(Status::unavailable(
                "the global replica is shutting down: reconnect (to another replica)",
            )),
            End::AccessEnded(status) => {
                tracing::warn!(reason = %status.message(), "ending the KDS session: the zone may no longer connect");
                Some(status.clone())
            }
            End::Fatal(s) => Some(s.clone()),
            End::ZoneClosed | End::Transport(_) | End::ResponseClosed => None,
        };
        if let Some(status) = goodbye {
            let _ = tokio::time::timeout(GOODBYE_TIMEOUT, self.tx.send(Err(status))).await;
        }
        match &end {
            End::Transport(s) => {
                tracing::info!(session = %self.record.id, error = %s.message(), "zone disconnected (GlobalToZone)")
            }
            other => {
                tracing::info!(session = %self.record.id, reason = ?other, "zone disconnected (GlobalToZone)")
            }
        }
        self.shared
            .registry
            .unregister(zone, Direction::GlobalToZone, seq);
        self.shared.registry.clear_session(zone, &self.record.id);
        let _ = insight_tx
            .send(InsightEvent::Disconnected(OffsetDateTime::now_utc()))
            .await;
        drop(insight_tx);
        if tokio::time::timeout(GOODBYE_TIMEOUT, writer).await.is_err() {
            tracing::warn!("could not record the disconnect in the ZoneInsight in time");
        }
    }

    fn next_nonce(&mut self) -> String {
        self.nonce_seq += 1;
        format!("{}-{}", self.record.id, self.nonce_seq)
    }

    /// Sends one response (chunked) and remembers it until the zone answers.
    async fn send(
        &mut self,
        t: KdsType,
        authoritative: bool,
        resources: Vec<mosaic_proto::kds::Resource>,
        removed: Vec<ItemKey>,
        applied_at: Option<Instant>,
    ) -> Result<(), End> {
        let nonce = self.next_nonce();
        let out = Outgoing {
            rtype: t.as_str().to_string(),
            nonce: nonce.clone(),
            authoritative,
            resources,
            removed: removed.iter().map(|k| t.wire_ref(k)).collect(),
            global_index: self.last_index,
        };
        let (n_res, n_rem) = (out.resources.len(), out.removed.len());
        let chunks = chunk(out, self.shared.settings.chunk_bytes);
        tracing::debug!(
            r#type = %t,
            nonce = %nonce,
            authoritative,
            resources = n_res,
            removed = n_rem,
            chunks = chunks.len(),
            "sending"
        );
        self.pending.insert(
            nonce,
            Pending {
                ktype: t,
                applied_at,
            },
        );
        for c in chunks {
            size::check_outgoing(
                "GlobalToZone",
                "DiscoveryResponse",
                t.as_str(),
                &c,
                self.shared.settings.max_message_bytes,
            )
            .map_err(End::Fatal)?;
            self.tx.send(Ok(c)).await.map_err(|_| End::ResponseClosed)?;
        }
        self.record.count(t.as_str(), Count::Sent);
        Ok(())
    }

    /// Sends `t` authoritatively: removals of what in `known` is gone, and the items that differ
    /// from `known` (every item when `full`).
    async fn send_authoritative(
        &mut self,
        t: KdsType,
        known: &BTreeMap<ItemKey, u64>,
        full: bool,
    ) -> Result<(), End> {
        let items: Items = state::items(
            self.shared.store.as_ref(),
            &self.shared.tokens,
            t,
            &self.identity.zone,
        )
        .map_err(store_failure)?;
        if let KdsType::Resource(_) = t {
            let max = items.values().map(|r| r.version).max().unwrap_or_default();
            self.last_index = self.last_index.max(max);
        }
        let removed: Vec<ItemKey> = known
            .keys()
            .filter(|k| !items.contains_key(*k))
            .cloned()
            .collect();
        let versions: BTreeMap<ItemKey, u64> =
            items.iter().map(|(k, r)| (k.clone(), r.version)).collect();
        let resources: Vec<_> = items
            .into_iter()
            .filter(|(k, r)| full || known.get(k) != Some(&r.version))
            .map(|(_, r)| r)
            .collect();
        tracing::info!(
            r#type = %t,
            known = known.len(),
            sent = resources.len(),
            removed = removed.len(),
            "authoritative sync"
        );
        self.view.insert(t, versions);
        self.send(t, true, resources, removed, None).await
    }

    async fn on_request(&mut self, req: DiscoveryRequest) -> Result<(), End> {
        let Some(t) = KdsType::parse(&req.r#type).filter(|t| t.is_global_owned()) else {
            tracing::warn!(
                r#type = %req.r#type,
                "the zone asked for a type the global does not send; ignored"
            );
            return Ok(());
        };
        if req.response_nonce.is_empty() {
            let known = t.known(&req.known);
            return self.send_authoritative(t, &known, false).await;
        }
        let Some(pending) = self.pending.remove(&req.response_nonce) else {
            tracing::debug!(nonce = %req.response_nonce, "answer to an unknown nonce; ignored");
            return Ok(());
        };
        let ptype = pending.ktype.as_str();
        if req.rejected.is_empty() {
            self.record.count(ptype, Count::Acked);
            if let Some(at) = pending.applied_at {
                metrics::push_seconds(at.elapsed());
            }
            return Ok(());
        }
        self.record.count(ptype, Count::Nacked);
        metrics::nack(ptype);
        let mut named = Vec::new();
        for r in &req.rejected {
            let Some(rr) = &r.r#ref else { continue };
            let key = pending.ktype.item_key(&rr.mesh, &rr.name);
            if let Some(view) = self.view.get_mut(&pending.ktype) {
                view.remove(&key);
            }
            named.push(format!("{ptype} {key}: {}", r.reason));
        }
        tracing::warn!(
            r#type = %ptype,
            nonce = %req.response_nonce,
            "the zone rejected {} item(s): {}",
            named.len(),
            named.join("; ")
        );
        Ok(())
    }

    /// Handles one feed event (and whatever else is already queued) as one batch of deltas.
    async fn on_feed(
        &mut self,
        first: Result<Option<Change>, broadcast::error::RecvError>,
        first_internal: Option<Result<InternalChange, broadcast::error::RecvError>>,
        feed: &mut broadcast::Receiver<FeedItem>,
        internal: &mut broadcast::Receiver<InternalChange>,
    ) -> Result<(), End> {
        use broadcast::error::{RecvError, TryRecvError};
        let zone = self.identity.zone.clone();
        let mut batch = Batch::default();
        let mut lagged = false;
        match first {
            Ok(Some(c)) => batch.change(&c, &zone),
            Ok(None) => {}
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return Err(raft_stopped()),
        }
        match first_internal {
            Some(Ok(c)) => batch.internal(&c),
            Some(Err(RecvError::Lagged(_))) => lagged = true,
            Some(Err(RecvError::Closed)) => return Err(raft_stopped()),
            None => {}
        }
        loop {
            match feed.try_recv() {
                Ok(FeedItem::Change(c)) => batch.change(&c, &zone),
                Ok(FeedItem::Lagged) | Err(TryRecvError::Lagged(_)) => lagged = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return Err(raft_stopped()),
            }
        }
        loop {
            match internal.try_recv() {
                Ok(c) => batch.internal(&c),
                Err(TryRecvError::Lagged(_)) => lagged = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return Err(raft_stopped()),
            }
        }
        self.last_index = self.last_index.max(batch.max_index);
        if batch.access_touched || lagged {
            self.check_access()?;
        }
        if lagged {
            return self.resync().await;
        }
        for (t, (keys, applied_at)) in batch.items {
            self.push(t, keys, applied_at).await?;
        }
        Ok(())
    }

    /// Ends the session if its Zone was disabled, its token revoked or its signing key retired.
    fn check_access(&self) -> Result<(), End> {
        match access_ended(
            self.shared.store.as_ref(),
            &self.shared.tokens,
            &self.identity,
        ) {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(End::AccessEnded(status)),
            Err(status) => Err(End::Fatal(status)),
        }
    }

    /// Sends the state of `keys` of a subscribed type `t` (each as read after its last change,
    /// shared with the other sessions through the [`WireCache`](super::wire_cache::WireCache)) as a delta.
    async fn push(
        &mut self,
        t: KdsType,
        keys: BTreeMap<ItemKey, u64>,
        applied_at: Option<Instant>,
    ) -> Result<(), End> {
        if !self.view.contains_key(&t) {
            return Ok(());
        }
        let mut resources = Vec::new();
        let mut removed = Vec::new();
        for (key, after) in keys {
            let shared = &self.shared;
            let zone = &self.identity.zone;
            let current = shared
                .wire
                .get_or_read(t, &key, after, || {
                    state::item(shared.store.as_ref(), &shared.tokens, t, &key, zone)
                })
                .map_err(store_failure)?;
            let Some(view) = self.view.get_mut(&t) else {
                return Ok(());
            };
            match current {
                Some(r) => {
                    if view.get(&key) != Some(&r.version) {
                        view.insert(key, r.version);
                        resources.push(r);
                    }
                }
                None => {
                    if view.remove(&key).is_some() {
                        removed.push(key);
                    }
                }
            }
        }
        if resources.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.send(t, false, resources, removed, applied_at).await
    }

    /// After the feed overflowed: every subscribed type again, authoritatively, with every item
    /// (the zone did not announce versions for this response, so nothing may be left implicit)
    /// plus removals of what the view holds and is gone.
    async fn resync(&mut self) -> Result<(), End> {
        tracing::warn!(
            "the change feed overflowed; re-sending every subscribed type authoritatively"
        );
        let types: Vec<KdsType> = self.view.keys().copied().collect();
        for t in types {
            let known = self.view.get(&t).cloned().unwrap_or_default();
            self.send_authoritative(t, &known, true).await?;
        }
        Ok(())
    }
}

/// A relayed item as the store's own receiver would give it: the relay's `Lagged` is a lag.
fn relayed(
    item: Result<FeedItem, broadcast::error::RecvError>,
) -> Result<Change, broadcast::error::RecvError> {
    match item {
        Ok(FeedItem::Change(c)) => Ok(c),
        Ok(FeedItem::Lagged) => Err(broadcast::error::RecvError::Lagged(0)),
        Err(e) => Err(e),
    }
}

fn raft_stopped() -> End {
    End::Fatal(Status::unavailable(
        "the global replica's store stopped: reconnect (to another replica)",
    ))
}

/// Writes the session's ZoneInsight events in order (connect, counters, disconnect).
async fn insight_writer(
    shared: Arc<Shared>,
    record: Arc<SessionRecord>,
    mut rx: mpsc::Receiver<InsightEvent>,
) {
    let instance = shared.instance.clone();
    while let Some(event) = rx.recv().await {
        let store: &dyn ResourceStore = shared.store.as_ref();
        let result = match &event {
            InsightEvent::Connected => {
                insight::update(store, &record.zone, |s| {
                    insight::connected(s, &record, &instance)
                })
                .await
            }
            InsightEvent::Stats => {
                insight::update(store, &record.zone, |s| insight::stats(s, &record)).await
            }
            InsightEvent::Disconnected(at) => {
                insight::update(store, &record.zone, |s| {
                    insight::disconnected(s, &record, *at)
                })
                .await
            }
        };
        if let Err(e) = result {
            tracing::warn!(event = ?event, error = %e, "could not update the ZoneInsight");
        }
    }
}
