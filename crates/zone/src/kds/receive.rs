//! Turning one complete GlobalToZone response into a store batch and the NACK details.
//!
//! Every item is parsed and validated ([`mosaic_kds::decode`]); a bad item
//! is rejected (named, with the reason and field paths) and the others are applied.
//!
//! Authoritative responses prune. The zone's first request per type lists the versions it holds
//! (`known`) so the global can send only the difference: changed resources plus `removed` for
//! known ones that are gone. A known resource the response neither updates nor removes is
//! therefore current and kept; everything else the zone holds of that type and the response does
//! not mention is pruned. A rejected item keeps the zone's previous copy.

use std::collections::{BTreeMap, BTreeSet};

use mosaic_proto::kds::{Rejection, ResourceRef};

use crate::store::{KdsType, StoreError, StoreKey, SyncBatch, ZoneStore};
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
        match mosaic_kds::decode::decode(kind, wire) {
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
