//! One ZoneToGlobal stream: the zone sends its Dataplanes, DataplaneInsights and ZoneInsight;
//! the global checks and stamps every item with the zone's identity (label `kuma.io/zone`),
//! writes one response (all of its chunks) through the leader in one batch, and answers with an
//! ACK, or a NACK naming the refused items (the others are applied).
//!
//! A zone may only write its own resources: an item claiming another zone, or whose name belongs
//! to another zone's resource, is refused. The first (authoritative) response per type prunes the
//! zone's resources of that type that it does not mention; a disconnect deletes nothing. A
//! ZoneInsight item contributes the zone's CA health; the subscriptions stay the global's.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use mosaic_core::{
    resource::{
        Owner, Resource, ResourceType, Spec, UnknownFields, parse::from_value_with,
        unknown_fields::refusals,
    },
    validate::ValidationError,
};
use mosaic_proto::kds::{DiscoveryRequest, DiscoveryResponse, Rejection, ResourceRef};
use time::OffsetDateTime;
use tokio::sync::{broadcast, oneshot};
use tonic::{Status, Streaming};

use super::{
    Shared,
    auth::{self, ZoneIdentity, access_ended},
    insight::{self, InsightError},
    metrics,
    registry::{Count, Direction},
    size, stopped, zone_trust,
};
use crate::{
    store::{Command, CommandResult, ResourceKey, ResourceStore, StoreError},
    tokens::is_zone_key_record,
};
use mosaic_kds::wire::ZONE_LABEL;

/// Most bytes of unfinished chunked responses a stream may hold.
const MAX_PARTIAL_BYTES: usize = 256 * 1024 * 1024;

/// The ACK/NACK sink of a stream.
pub type RequestTx = mosaic_runtime::stream_channel::Sender<DiscoveryRequest>;

/// Why one item is not applied.
enum ItemError {
    /// The item is refused (NACK).
    Reject(String),
    /// The store failed (the stream ends; the zone reconnects and resends).
    Store(StoreError),
}

impl From<StoreError> for ItemError {
    fn from(e: StoreError) -> Self {
        ItemError::Store(e)
    }
}

/// A chunked response being assembled.
#[derive(Default)]
struct Partial {
    chunks: BTreeMap<u32, DiscoveryResponse>,
    bytes: usize,
}

/// One ZoneToGlobal session.
pub struct ZoneToGlobal {
    shared: Arc<Shared>,
    identity: ZoneIdentity,
    tx: RequestTx,
    partial: HashMap<(String, String), Partial>,
    partial_bytes: usize,
}

fn unavailable(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!(
        "the global could not store what the zone sent ({e}); reconnect and send again"
    ))
}

fn reject(rtype: &str, mesh: &str, name: &str, reason: String) -> Rejection {
    Rejection {
        r#ref: Some(ResourceRef {
            r#type: rtype.to_string(),
            mesh: mesh.to_string(),
            name: name.to_string(),
        }),
        reason,
    }
}

fn zone_of(r: &Resource) -> Option<&str> {
    r.meta.labels.get(ZONE_LABEL).map(String::as_str)
}

// === impl ZoneToGlobal ===

impl ZoneToGlobal {
    /// A session for an authenticated zone, answering through `tx`.
    pub fn new(shared: Arc<Shared>, identity: ZoneIdentity, tx: RequestTx) -> Self {
        Self {
            shared,
            identity,
            tx,
            partial: HashMap::new(),
            partial_bytes: 0,
        }
    }

    /// Serves the stream until it ends.
    pub async fn run(
        mut self,
        mut responses: Streaming<DiscoveryResponse>,
        mut replaced: oneshot::Receiver<()>,
        seq: u64,
    ) {
        let zone = self.identity.zone.clone();
        tracing::info!("zone connected (ZoneToGlobal)");
        let mut shutdown = self.shared.shutdown.clone();
        let expiry = auth::expiry(&self.identity);
        tokio::pin!(expiry);
        // A retired zone-token key ends the stream at once, not at the zone's next message.
        let mut internal = self.shared.store.subscribe_internal();
        let goodbye = loop {
            let step = tokio::select! {
                biased;
                _ = &mut replaced => Err(Some(Status::aborted(format!(
                    "a newer KDS connection of zone {zone:?} replaced this one"
                )))),
                _ = stopped(&mut shutdown) => Err(Some(Status::unavailable(
                    "the global replica is shutting down: reconnect (to another replica)",
                ))),
                () = &mut expiry => {
                    let status = auth::expired(&self.identity);
                    tracing::warn!(reason = %status.message(), "ending the KDS session: the zone may no longer connect");
                    Err(Some(status))
                }
                _ = self.tx.closed() => Err(None),
                c = internal.recv() => match c {
                    Ok(c) if !is_zone_key_record(&c.key) => Ok(()),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.check_access().map_err(Some),
                    Err(broadcast::error::RecvError::Closed) => Err(Some(Status::unavailable(
                        "the global replica's store stopped: reconnect (to another replica)",
                    ))),
                },
                msg = responses.message() => match msg {
                    Ok(Some(resp)) => self.on_response(resp).await.map_err(Some),
                    Ok(None) => Err(None),
                    Err(status) => match size::received_too_large("ZoneToGlobal", "DiscoveryResponse", &status) {
                        Some(refusal) => Err(Some(refusal)),
                        None => {
                            tracing::info!(error = %status.message(), "ZoneToGlobal transport ended");
                            Err(None)
                        }
                    },
                },
            };
            if let Err(goodbye) = step {
                break goodbye;
            }
        };
        if let Some(status) = goodbye {
            tracing::info!(reason = %status.message(), "ending ZoneToGlobal");
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tx.send(Err(status))).await;
        }
        self.shared
            .registry
            .unregister(&zone, Direction::ZoneToGlobal, seq);
        tracing::info!("zone disconnected (ZoneToGlobal); nothing it reported is deleted");
    }

    /// Ends the stream (with the status saying why) if the zone may no longer write: disabled,
    /// its token revoked or its signing key retired.
    fn check_access(&self) -> Result<(), Status> {
        match access_ended(
            self.shared.store.as_ref(),
            &self.shared.tokens,
            &self.identity,
        )? {
            Some(status) => {
                tracing::warn!(reason = %status.message(), "ending the KDS session: the zone may no longer connect");
                Err(status)
            }
            None => Ok(()),
        }
    }

    /// Collects chunks; a complete response is applied and answered. Nothing is taken from a
    /// zone that was disabled or whose token was revoked since it connected.
    async fn on_response(&mut self, resp: DiscoveryResponse) -> Result<(), Status> {
        self.check_access()?;
        let chunks = resp.chunks.max(1);
        if resp.chunk >= chunks {
            return Err(Status::invalid_argument(format!(
                "response {} of type {}: chunk {} of {chunks} is out of range",
                resp.nonce, resp.r#type, resp.chunk
            )));
        }
        let full = if chunks == 1 {
            resp
        } else {
            let key = (resp.r#type.clone(), resp.nonce.clone());
            let size = prost::Message::encoded_len(&resp);
            self.partial_bytes += size;
            if self.partial_bytes > MAX_PARTIAL_BYTES {
                return Err(Status::resource_exhausted(
                    "too many unfinished chunked responses: send every chunk of a response before the next one",
                ));
            }
            let p = self.partial.entry(key.clone()).or_default();
            p.bytes += size;
            p.chunks.insert(resp.chunk, resp);
            if p.chunks.len() < chunks as usize {
                return Ok(());
            }
            let Some(p) = self.partial.remove(&key) else {
                return Ok(());
            };
            self.partial_bytes = self.partial_bytes.saturating_sub(p.bytes);
            let mut parts = p.chunks.into_values();
            let Some(mut first) = parts.next() else {
                return Ok(());
            };
            for part in parts {
                first.authoritative |= part.authoritative;
                first.resources.extend(part.resources);
                first.removed.extend(part.removed);
            }
            first
        };
        let rtype = full.r#type.clone();
        let nonce = full.nonce.clone();
        let session = self.shared.registry.session(&self.identity.zone);
        if let Some(s) = &session {
            s.count(&rtype, Count::Sent);
        }
        let rejected = self.apply(full).await?;
        if let Some(s) = &session {
            s.count(
                &rtype,
                if rejected.is_empty() {
                    Count::Acked
                } else {
                    Count::Nacked
                },
            );
        }
        if !rejected.is_empty() {
            metrics::rejected_items(&rtype, rejected.len());
            tracing::warn!(
                r#type = %rtype,
                nonce = %nonce,
                "refused {} item(s) from the zone: {}",
                rejected.len(),
                rejected
                    .iter()
                    .map(|r| {
                        let name = r.r#ref.as_ref().map(|x| {
                            if x.mesh.is_empty() { x.name.clone() } else { format!("{}/{}", x.mesh, x.name) }
                        });
                        format!("{}: {}", name.unwrap_or_default(), r.reason)
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let answer = DiscoveryRequest {
            r#type: rtype,
            known: Vec::new(),
            response_nonce: nonce,
            rejected,
        };
        size::check_outgoing(
            "ZoneToGlobal",
            "DiscoveryRequest",
            &answer.r#type,
            &answer,
            self.shared.settings.max_message_bytes,
        )?;
        self.tx
            .send(Ok(answer))
            .await
            .map_err(|_| Status::cancelled("the stream closed"))
    }

    /// Applies a complete response; returns the refused items.
    async fn apply(&self, resp: DiscoveryResponse) -> Result<Vec<Rejection>, Status> {
        let zone = self.identity.zone.as_str();
        let rt = resp
            .r#type
            .parse::<ResourceType>()
            .ok()
            .filter(|t| t.owner() == Owner::Zone);
        let Some(rt) = rt else {
            let reason = format!(
                "type {:?} is not sent by zones (zones send Dataplane, DataplaneInsight and ZoneInsight)",
                resp.r#type
            );
            return Ok(resp
                .resources
                .iter()
                .map(|i| reject(&i.r#type, &i.mesh, &i.name, reason.clone()))
                .chain(
                    resp.removed
                        .iter()
                        .map(|r| reject(&r.r#type, &r.mesh, &r.name, reason.clone())),
                )
                .collect());
        };
        if rt == ResourceType::ZoneInsight {
            return self.apply_insight(&resp).await;
        }
        let store: &dyn ResourceStore = self.shared.store.as_ref();
        let mut rejected = Vec::new();
        let mut mentioned: BTreeSet<ResourceKey> = BTreeSet::new();
        let mut cmds: Vec<(Command, Option<(String, String)>)> = Vec::new();
        let now = OffsetDateTime::now_utc();
        for item in &resp.resources {
            let mesh = (!item.mesh.is_empty()).then_some(item.mesh.as_str());
            mentioned.insert(ResourceKey::new(rt, mesh, &item.name));
            match self.check(rt, item) {
                Ok(Some(r)) => cmds.push((
                    Command::put(&r, now),
                    Some((item.mesh.clone(), item.name.clone())),
                )),
                Ok(None) => {}
                Err(ItemError::Reject(reason)) => {
                    rejected.push(reject(&item.r#type, &item.mesh, &item.name, reason));
                }
                Err(ItemError::Store(e)) => return Err(unavailable(e)),
            }
        }
        for r in &resp.removed {
            if r.r#type != rt.as_str() {
                rejected.push(reject(
                    &r.r#type,
                    &r.mesh,
                    &r.name,
                    format!("a removal of type {:?} in a {rt} response", r.r#type),
                ));
                continue;
            }
            let mesh = (!r.mesh.is_empty()).then_some(r.mesh.as_str());
            let key = ResourceKey::new(rt, mesh, &r.name);
            mentioned.insert(key.clone());
            match store.get(&key).map_err(unavailable)? {
                None => {}
                Some(existing) => match zone_of(&existing) {
                    Some(owner) if owner != zone => rejected.push(reject(
                        &r.r#type,
                        &r.mesh,
                        &r.name,
                        format!("{key} belongs to zone {owner:?}; zone {zone:?} cannot delete it"),
                    )),
                    _ => cmds.push((Command::delete(key, false), None)),
                },
            }
        }
        if resp.authoritative {
            let mut pruned = 0usize;
            for existing in store.list(rt, None).map_err(unavailable)? {
                let key = ResourceKey::of(&existing);
                if zone_of(&existing) == Some(zone) && !mentioned.contains(&key) {
                    cmds.push((Command::delete(key, false), None));
                    pruned += 1;
                }
            }
            if pruned > 0 {
                tracing::info!(r#type = %rt, pruned, "authoritative response: removing what the zone no longer has");
            }
        }
        if cmds.is_empty() {
            return Ok(rejected);
        }
        let batch = Command::Batch(cmds.iter().map(|(c, _)| c.clone()).collect());
        if let CommandResult::Refused(why) = store.write(batch).await.map_err(unavailable)? {
            // Something changed under us (a Mesh deleted meanwhile, ...): apply one by one
            // and name what is refused.
            tracing::debug!(refusal = ?why, "batch refused; applying items one by one");
            for (cmd, item) in cmds {
                let result = store.write(cmd).await.map_err(unavailable)?;
                if let (CommandResult::Refused(why), Some((mesh, name))) = (result, item) {
                    rejected.push(reject(rt.as_str(), &mesh, &name, refusal_text(&why)));
                }
            }
        }
        Ok(rejected)
    }

    /// A ZoneInsight response: the zone's CA health, merged into the global's record.
    async fn apply_insight(&self, resp: &DiscoveryResponse) -> Result<Vec<Rejection>, Status> {
        let zone = self.identity.zone.as_str();
        let mut rejected = Vec::new();
        for item in &resp.resources {
            let r = match self.check(ResourceType::ZoneInsight, item) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(ItemError::Reject(reason)) => {
                    rejected.push(reject(&item.r#type, &item.mesh, &item.name, reason));
                    continue;
                }
                Err(ItemError::Store(e)) => return Err(unavailable(e)),
            };
            let Spec::ZoneInsight(reported) = r.spec else {
                continue;
            };
            match insight::update(self.shared.store.as_ref(), zone, |s| {
                insight::ca_health(s, &reported.ca_health)
            })
            .await
            {
                Ok(()) => {}
                Err(InsightError::Store(e)) => return Err(unavailable(e)),
                Err(e @ InsightError::Refused { .. }) => {
                    rejected.push(reject(&item.r#type, &item.mesh, &item.name, e.to_string()));
                }
            }
            // The MeshTrusts the zone made, when it reports them (older zones do not).
            if let Some(trusts) = &reported.mesh_trusts {
                let refused = zone_trust::reconcile(self.shared.store.as_ref(), zone, trusts)
                    .await
                    .map_err(unavailable)?;
                for (mesh, name, reason) in refused {
                    tracing::warn!(%zone, %mesh, meshtrust = %name, %reason, "a MeshTrust the zone made is not kept");
                    rejected.push(reject(
                        ResourceType::MeshTrust.as_str(),
                        &mesh,
                        &name,
                        reason,
                    ));
                }
            }
        }
        // Removals and pruning never apply: the ZoneInsight also holds the global's records.
        for r in &resp.removed {
            rejected.push(reject(
                &r.r#type,
                &r.mesh,
                &r.name,
                "a zone cannot delete its ZoneInsight (it holds the global's session records)"
                    .into(),
            ));
        }
        Ok(rejected)
    }

    /// Checks one item: well-formed, of the response's type, this zone's own, in an existing
    /// mesh. Returns the stamped resource, `None` when the store already holds exactly it.
    fn check(
        &self,
        rt: ResourceType,
        item: &mosaic_proto::kds::Resource,
    ) -> Result<Option<Resource>, ItemError> {
        let zone = self.identity.zone.as_str();
        let bad = |reason: String| Err(ItemError::Reject(reason));
        if item.r#type != rt.as_str() {
            return bad(format!(
                "an item of type {:?} in a {rt} response",
                item.r#type
            ));
        }
        let value: serde_json::Value = match serde_json::from_slice(&item.json) {
            Ok(v) => v,
            Err(e) => return bad(format!("not JSON: {e}")),
        };
        let policy = self.shared.settings.unknown_fields;
        let (mut r, ignored) = match from_value_with(value, policy) {
            Ok(decoded) => decoded,
            Err(e) => return bad(e.to_string()),
        };
        if policy == UnknownFields::Refuse && !ignored.is_empty() {
            return bad(ValidationError {
                violations: refusals(&ignored),
            }
            .to_string());
        }
        if r.resource_type() != rt {
            return bad(format!("the JSON is a {}, not a {rt}", r.resource_type()));
        }
        if r.meta.name != item.name || r.meta.mesh.as_deref().unwrap_or_default() != item.mesh {
            return bad(format!(
                "the JSON names {:?} in mesh {:?}, but the item says {:?} in mesh {:?}",
                r.meta.name,
                r.meta.mesh.as_deref().unwrap_or_default(),
                item.name,
                item.mesh
            ));
        }
        if let Err(e) = r.validate() {
            return bad(e.to_string());
        }
        if let Some(claimed) = zone_of(&r)
            && claimed != zone
        {
            return bad(format!(
                "it claims zone {claimed:?} (label {ZONE_LABEL}); zone {zone:?} may only write its own resources"
            ));
        }
        if rt == ResourceType::ZoneInsight && r.meta.name != zone {
            return bad(format!(
                "a zone's ZoneInsight is named after the zone ({zone:?}), not {:?}",
                r.meta.name
            ));
        }
        let store: &dyn ResourceStore = self.shared.store.as_ref();
        let key = ResourceKey::of(&r);
        let existing = store.get(&key)?;
        if let Some(owner) = existing.as_ref().and_then(zone_of)
            && owner != zone
        {
            return bad(format!(
                "{key} belongs to zone {owner:?}; zone {zone:?} cannot overwrite it (rename it)"
            ));
        }
        if let Some(mesh) = &r.meta.mesh
            && store.get(&ResourceKey::mesh(mesh))?.is_none()
        {
            return bad(format!(
                "mesh {mesh:?} does not exist on the global: create it there first"
            ));
        }
        r.meta
            .labels
            .insert(ZONE_LABEL.to_string(), zone.to_string());
        if rt != ResourceType::ZoneInsight
            && let Some(e) = &existing
            && e.spec == r.spec
            && e.meta.labels == r.meta.labels
        {
            return Ok(None);
        }
        for field in &ignored {
            tracing::info!(%zone, resource = %key, %field, "unknown field of a zone's resource ignored, as Kuma ignores it (api.unknown_fields = \"refuse\" rejects it)");
        }
        Ok(Some(r))
    }
}

fn refusal_text(r: &crate::store::Refusal) -> String {
    use crate::store::Refusal;
    match r {
        Refusal::NotFound(m) | Refusal::Conflict(m) | Refusal::Invalid(m) => m.clone(),
    }
}
