//! Building responses from records: a type's records as [`DiscoveryResponse`]s, split into
//! chunks below a byte budget ([`crate::chunk`]; every chunk of a response shares its nonce), and
//! the authoritative response for what the receiver says it holds. The zone's ZoneToGlobal
//! responses; the benchmark's simulated zones send theirs with the same code.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
};

use mosaic_proto::kds::{DiscoveryResponse, Resource as WireResource, ResourceRef};

use crate::{
    KdsKey, KdsType,
    chunk::{Outgoing, chunk},
    item::KdsItem,
};

static NONCES: AtomicU64 = AtomicU64::new(1);

/// A fresh nonce, unique in this process (and, with the random prefix, across restarts).
pub fn nonce() -> String {
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u32> = OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random::<u32>);
    format!("{prefix:08x}-{}", NONCES.fetch_add(1, Ordering::Relaxed))
}

/// A record on the wire.
pub fn wire_resource(item: &KdsItem) -> WireResource {
    WireResource {
        r#type: item.key.kind.as_str().to_string(),
        mesh: item.key.mesh.clone().unwrap_or_default(),
        name: item.key.name.clone(),
        version: item.version,
        json: item.wire_json(),
    }
}

/// A key on the wire.
pub fn wire_ref(key: &KdsKey) -> ResourceRef {
    ResourceRef {
        r#type: key.kind.as_str().to_string(),
        mesh: key.mesh.clone().unwrap_or_default(),
        name: key.name.clone(),
    }
}

/// One response of `kind`, split by [`chunk`] so each chunk's items stay within `chunk_bytes`
/// (a larger single resource gets a chunk of its own).
pub fn build(
    kind: KdsType,
    authoritative: bool,
    items: &[KdsItem],
    removed: &[KdsKey],
    chunk_bytes: usize,
) -> Vec<DiscoveryResponse> {
    chunk(
        Outgoing {
            rtype: kind.as_str().to_string(),
            nonce: nonce(),
            authoritative,
            resources: items.iter().map(wire_resource).collect(),
            removed: removed.iter().map(wire_ref).collect(),
            global_index: 0,
        },
        chunk_bytes,
    )
}

/// The authoritative response for `kind` given what the receiver says it holds: the records
/// whose version differs from `known`, plus removals for known ones the zone no longer has.
pub fn authoritative_diff(
    kind: KdsType,
    held: &[KdsItem],
    known: &BTreeMap<KdsKey, u64>,
    chunk_bytes: usize,
) -> Vec<DiscoveryResponse> {
    let changed: Vec<KdsItem> = held
        .iter()
        .filter(|i| known.get(&i.key) != Some(&i.version))
        .cloned()
        .collect();
    let removed: Vec<KdsKey> = known
        .keys()
        .filter(|k| !held.iter().any(|i| &i.key == *k))
        .cloned()
        .collect();
    build(kind, true, &changed, &removed, chunk_bytes)
}

#[cfg(test)]
mod tests {
    use mosaic_core::resource::ResourceType;
    use serde_json::json;

    use super::*;

    fn item(name: &str, version: u64, payload: usize) -> KdsItem {
        KdsItem {
            key: KdsKey::new(ResourceType::Dataplane, Some("default"), name),
            version,
            value: json!({"type": "Dataplane", "name": name, "pad": "x".repeat(payload)}),
        }
    }

    #[test]
    fn chunks_stay_under_budget_and_share_a_nonce() {
        let items: Vec<_> = (0..10).map(|i| item(&format!("dp-{i}"), i, 400)).collect();
        let gone = [KdsKey::new(ResourceType::Dataplane, Some("default"), "old")];
        let out = build(ResourceType::Dataplane.into(), true, &items, &gone, 1000);
        assert!(out.len() >= 4, "{}", out.len());
        for (i, c) in out.iter().enumerate() {
            assert_eq!((c.chunk as usize, c.chunks as usize), (i, out.len()));
            assert_eq!(c.nonce, out[0].nonce);
            assert!(c.authoritative);
            let bytes: usize = c.resources.iter().map(|r| r.json.len()).sum();
            assert!(bytes <= 1000, "{bytes}");
        }
        assert_eq!(out.iter().map(|c| c.resources.len()).sum::<usize>(), 10);
        assert_eq!(out.last().unwrap().removed.len(), 1);
        // Empty: one chunk, nothing in it.
        let empty = build(ResourceType::Dataplane.into(), true, &[], &[], 1000);
        assert_eq!((empty.len(), empty[0].chunks), (1, 1));
    }

    #[test]
    fn diff_sends_changed_and_removed_only() {
        let held = vec![item("a", 1, 0), item("b", 5, 0)];
        let mut known = BTreeMap::new();
        known.insert(held[0].key.clone(), 1);
        known.insert(held[1].key.clone(), 4);
        let gone = KdsKey::new(ResourceType::Dataplane, Some("default"), "c");
        known.insert(gone.clone(), 2);
        let out = authoritative_diff(ResourceType::Dataplane.into(), &held, &known, 1 << 20);
        assert_eq!(out.len(), 1);
        let names: Vec<_> = out[0].resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b"]);
        assert_eq!(out[0].removed, vec![wire_ref(&gone)]);
    }
}
