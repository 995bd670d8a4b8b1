//! Turning one complete GlobalToZone response into a store batch and the NACK details.
//!
//! Every item is parsed ([`from_stored_value`]) and validated ([`Resource::validate`]); a bad item
//! is rejected (named, with the reason and field paths) and the others are applied.
//!
//! Authoritative responses prune. The zone's first request per type lists the versions it holds
//! (`known`) so the global can send only the difference: changed resources plus `removed` for
//! known ones that are gone. A known resource the response neither updates nor removes is
//! therefore current and kept; everything else the zone holds of that type and the response does
//! not mention is pruned. A rejected item keeps the zone's previous copy.

use std::collections::{BTreeMap, BTreeSet};

use mosaic_core::{
    resource::{Owner, ResourceType, parse::from_stored_value, validate_name},
    token::PublicKey,
};
use mosaic_proto::kds::{Rejection, Resource as WireResource, ResourceRef};

use crate::store::{KdsType, StoreError, StoreKey, StoredItem, SyncBatch, ZoneStore};
use mosaic_kds::assemble::Assembled;

/// What a response does to the store, and what to NACK.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Received {
    /// The writes (one transaction).
    pub batch: SyncBatch,
    /// The rejected items (empty: ACK).
    pub rejected: Vec<Rejection>,
}

/// Plans `response` (of `kind`) against `store`; `known` is what this stream's first request
/// for the kind listed (only for the first authoritative response).
pub fn plan(
    store: &ZoneStore,
    kind: KdsType,
    response: &Assembled,
    known: Option<&BTreeMap<StoreKey, u64>>,
) -> Result<Received, StoreError> {
    let mut out = Received::default();
    let mut mentioned: BTreeSet<StoreKey> = BTreeSet::new();
    for wire in &response.resources {
        let key = StoreKey::new(kind, Some(&wire.mesh), &wire.name);
        match decode(kind, wire) {
            Ok(item) => {
                mentioned.insert(item.key.clone());
                out.batch.upserts.push(item);
            }
            Err(reason) => {
                mentioned.insert(key);
                out.rejected.push(Rejection {
                    r#ref: Some(ResourceRef {
                        r#type: wire.r#type.clone(),
                        mesh: wire.mesh.clone(),
                        name: wire.name.clone(),
                    }),
                    reason,
                });
            }
        }
    }
    let mut removed: BTreeSet<StoreKey> = BTreeSet::new();
    for r in &response.removed {
        if r.r#type != kind.as_str() {
            out.rejected.push(Rejection {
                r#ref: Some(r.clone()),
                reason: format!(
                    "a {} removal in a {kind} response: send it in a {} response",
                    r.r#type, r.r#type
                ),
            });
            continue;
        }
        let key = StoreKey::new(kind, Some(&r.mesh), &r.name);
        mentioned.insert(key.clone());
        removed.insert(key);
    }
    if response.authoritative {
        if let Some(known) = known {
            mentioned.extend(known.keys().filter(|k| !removed.contains(*k)).cloned());
        }
        for held in store.versions(kind)?.into_keys() {
            if !mentioned.contains(&held) {
                removed.insert(held);
            }
        }
    }
    out.batch.removes = removed.into_iter().collect();
    Ok(out)
}

/// One wire resource to a stored record, or the reason it is rejected.
pub fn decode(kind: KdsType, wire: &WireResource) -> Result<StoredItem, String> {
    let what = match wire.mesh.is_empty() {
        true => format!("{} {:?}", wire.r#type, wire.name),
        false => format!("{} {:?} in mesh {:?}", wire.r#type, wire.name, wire.mesh),
    };
    if wire.r#type != kind.as_str() {
        return Err(format!(
            "{what} arrived in a {kind} response: send it in a {} response",
            wire.r#type
        ));
    }
    if kind.owner() != Owner::Global {
        return Err(format!(
            "{what}: {kind} is zone-owned; the global cannot send it to a zone"
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&wire.json)
        .map_err(|e| format!("{what}: the JSON does not parse: {e}"))?;
    match kind {
        KdsType::DataplaneTokenKey => {
            // A mesh's keys are one item named after the mesh, not scoped to a mesh (the
            // global's wire form); they are stored under that name, where the SDS server reads
            // them. A mesh equal to the name is the same item spelled the other way.
            if !wire.mesh.is_empty() && wire.mesh != wire.name {
                return Err(format!(
                    "{what}: mesh: must be empty (the keys are named after their mesh)"
                ));
            }
            if let Err(e) = validate_name(ResourceType::Mesh, &wire.name) {
                return Err(format!("{what}: name: {e}"));
            }
            let keys: Vec<PublicKey> = serde_json::from_value(value)
                .map_err(|e| format!("{what}: not a list of public keys: {e}"))?;
            if let Some(k) = keys.iter().find(|k| k.bytes.len() != 32) {
                return Err(format!(
                    "{what}: key {:?} is {} bytes; Ed25519 public keys are 32",
                    k.kid,
                    k.bytes.len()
                ));
            }
            let key = StoreKey::new(kind, None, &wire.name);
            Ok(StoredItem::token_keys(key, wire.version, &keys))
        }
        KdsType::Resource(rtype) => {
            let resource = from_stored_value(value).map_err(|e| format!("{what}: {e}"))?;
            if resource.resource_type() != rtype {
                return Err(format!(
                    "{what}: the JSON describes a {}",
                    resource.resource_type()
                ));
            }
            let mesh = resource.meta.mesh.as_deref().unwrap_or_default();
            if resource.meta.name != wire.name || mesh != wire.mesh {
                return Err(format!(
                    "{what}: the JSON names {:?} in mesh {mesh:?}",
                    resource.meta.name
                ));
            }
            resource
                .validate()
                .map_err(|e| format!("{what} is invalid: {e}"))?;
            Ok(StoredItem::from_resource(&resource, wire.version))
        }
    }
}
