//! The ZoneToGlobal stream loop: the only writer of the zone's responses. The session queues
//! the first, authoritative response per zone-owned type before the stream opens; this loop then
//! follows the store's change feed and sends deltas at once (changes that arrive together are
//! coalesced), answers a (re)subscribe request with an authoritative diff against the global's
//! `known` versions, logs NACKs, and declares the stream dead when a response stays unanswered
//! past the ACK deadline.

use mosaic_kds::respond;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Instant,
};

use mosaic_core::resource::Owner;
use mosaic_proto::kds::{DiscoveryRequest, DiscoveryResponse};
use tokio::sync::{broadcast, mpsc};
use tonic::Streaming;

use super::{
    error::{SessionError, check_outgoing},
    session::SessionCtx,
};
use crate::store::{Change, KdsType, StoreKey};

/// A sent response awaiting its ACK/NACK.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Its type.
    pub kind: KdsType,
    /// When it was sent.
    pub sent: Instant,
}

/// The first responses of a session: one authoritative response per zone-owned type (chunked),
/// with their pending entries; each checked against the message size limit.
pub fn initial_responses(
    ctx: &SessionCtx,
) -> Result<(Vec<DiscoveryResponse>, HashMap<String, Pending>), SessionError> {
    let mut out = Vec::new();
    let mut pending = HashMap::new();
    for kind in KdsType::ZONE_TO_GLOBAL {
        let held = ctx.store.list(kind, None)?;
        let chunks = respond::build(kind, true, &held, &[], ctx.options.chunk_bytes);
        check_sizes(ctx, kind, &chunks)?;
        if let Some(first) = chunks.first() {
            pending.insert(
                first.nonce.clone(),
                Pending {
                    kind,
                    sent: Instant::now(),
                },
            );
        }
        out.extend(chunks);
    }
    Ok((out, pending))
}

/// Every chunk must fit the KDS message limit (one resource too large cannot be sent).
fn check_sizes(
    ctx: &SessionCtx,
    kind: KdsType,
    chunks: &[DiscoveryResponse],
) -> Result<(), SessionError> {
    for c in chunks {
        check_outgoing(
            "ZoneToGlobal",
            "DiscoveryResponse",
            kind.as_str(),
            c,
            ctx.options.max_message_bytes,
        )?;
    }
    Ok(())
}

/// Runs the stream until it fails.
pub async fn run(
    ctx: &SessionCtx,
    mut inbound: Streaming<DiscoveryRequest>,
    tx: mpsc::Sender<DiscoveryResponse>,
    mut feed: broadcast::Receiver<Change>,
    mut pending: HashMap<String, Pending>,
) -> SessionError {
    loop {
        let deadline = pending
            .values()
            .map(|p| p.sent)
            .min()
            .map(|t| tokio::time::Instant::from_std(t + ctx.options.ack_timeout));
        let dead = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let step = tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => on_request(ctx, req, &tx, &mut pending).await,
                Ok(None) => Err(SessionError::Closed("ZoneToGlobal")),
                Err(status) => Err(SessionError::from_status(&ctx.zone, "ZoneToGlobal", &status)),
            },
            change = feed.recv() => match change {
                Ok(first) => on_changes(ctx, first, &mut feed, &tx, &mut pending).await,
                Err(broadcast::error::RecvError::Lagged(_)) => resync(ctx, &tx, &mut pending).await,
                Err(broadcast::error::RecvError::Closed) => {
                    Err(SessionError::Unexpected("the zone store's change feed closed".into()))
                }
            },
            () = dead => {
                let oldest = pending.values().min_by_key(|p| p.sent).map(|p| p.kind);
                Err(SessionError::Dead {
                    stream: "ZoneToGlobal",
                    detail: format!(
                        "a {} response was not acknowledged within {:?}",
                        oldest.map(KdsType::as_str).unwrap_or("zone"),
                        ctx.options.ack_timeout
                    ),
                })
            }
        };
        if let Err(e) = step {
            return e;
        }
    }
}

async fn on_request(
    ctx: &SessionCtx,
    req: DiscoveryRequest,
    tx: &mpsc::Sender<DiscoveryResponse>,
    pending: &mut HashMap<String, Pending>,
) -> Result<(), SessionError> {
    if req.response_nonce.is_empty() {
        // A (re)subscribe: answer with an authoritative diff against what the global holds.
        let kind = match req.r#type.parse::<KdsType>() {
            Ok(k) if k.owner() == Owner::Zone => k,
            _ => {
                tracing::warn!(r#type = %req.r#type, "the global subscribed to a type this zone does not send; ignoring");
                return Ok(());
            }
        };
        let known: BTreeMap<StoreKey, u64> = req
            .known
            .iter()
            .filter_map(|v| {
                let r = v.r#ref.as_ref()?;
                (r.r#type == kind.as_str())
                    .then(|| (StoreKey::new(kind, Some(&r.mesh), &r.name), v.version))
            })
            .collect();
        let held = ctx.store.list(kind, None)?;
        let chunks = respond::authoritative_diff(kind, &held, &known, ctx.options.chunk_bytes);
        return send(ctx, tx, kind, chunks, pending).await;
    }
    let Some(p) = pending.remove(&req.response_nonce) else {
        tracing::debug!(nonce = %req.response_nonce, "an answer to an unknown response; ignoring");
        return Ok(());
    };
    if req.rejected.is_empty() {
        tracing::debug!(r#type = %p.kind, nonce = %req.response_nonce, "the global acknowledged");
        return Ok(());
    }
    for r in &req.rejected {
        let (ty, mesh, name) = r
            .r#ref
            .as_ref()
            .map(|x| (x.r#type.as_str(), x.mesh.as_str(), x.name.as_str()))
            .unwrap_or_default();
        tracing::warn!(
            r#type = %ty, mesh = %mesh, name = %name, reason = %r.reason,
            "the global rejected a resource this zone sent (NACK)"
        );
    }
    metrics::counter!("mosaic_zone_kds_nacks_received_total").increment(1);
    Ok(())
}

async fn on_changes(
    ctx: &SessionCtx,
    first: Change,
    feed: &mut broadcast::Receiver<Change>,
    tx: &mpsc::Sender<DiscoveryResponse>,
    pending: &mut HashMap<String, Pending>,
) -> Result<(), SessionError> {
    let mut keys: BTreeSet<StoreKey> = BTreeSet::new();
    let mut push = |c: Change| {
        if c.key.kind.owner() == Owner::Zone {
            keys.insert(c.key);
        }
    };
    push(first);
    loop {
        match feed.try_recv() {
            Ok(c) => push(c),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                return resync(ctx, tx, pending).await;
            }
            Err(_) => break,
        }
    }
    let mut by_kind: BTreeMap<KdsType, (Vec<_>, Vec<StoreKey>)> = BTreeMap::new();
    for key in keys {
        let entry = by_kind.entry(key.kind).or_default();
        match ctx.store.get(&key)? {
            Some(item) => entry.0.push(item),
            None => entry.1.push(key),
        }
    }
    for (kind, (items, removed)) in by_kind {
        let chunks = respond::build(kind, false, &items, &removed, ctx.options.chunk_bytes);
        send(ctx, tx, kind, chunks, pending).await?;
    }
    Ok(())
}

/// After the feed lagged: a new authoritative response per type.
async fn resync(
    ctx: &SessionCtx,
    tx: &mpsc::Sender<DiscoveryResponse>,
    pending: &mut HashMap<String, Pending>,
) -> Result<(), SessionError> {
    tracing::warn!("the change feed lagged; resending every zone-owned type authoritatively");
    for kind in KdsType::ZONE_TO_GLOBAL {
        let held = ctx.store.list(kind, None)?;
        let chunks = respond::build(kind, true, &held, &[], ctx.options.chunk_bytes);
        send(ctx, tx, kind, chunks, pending).await?;
    }
    Ok(())
}

async fn send(
    ctx: &SessionCtx,
    tx: &mpsc::Sender<DiscoveryResponse>,
    kind: KdsType,
    chunks: Vec<DiscoveryResponse>,
    pending: &mut HashMap<String, Pending>,
) -> Result<(), SessionError> {
    check_sizes(ctx, kind, &chunks)?;
    if let Some(first) = chunks.first() {
        pending.insert(
            first.nonce.clone(),
            Pending {
                kind,
                sent: Instant::now(),
            },
        );
    }
    for c in chunks {
        tx.send(c)
            .await
            .map_err(|_| SessionError::Closed("ZoneToGlobal"))?;
    }
    Ok(())
}
