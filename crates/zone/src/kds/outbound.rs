//! Building ZoneToGlobal responses: the zone's records of one type as [`DiscoveryResponse`]s,
//! split into chunks whose resource JSON stays below a byte budget (every chunk of a response
//! shares its nonce; removals travel in the last chunk).

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
};

use mosaic_proto::kds::{DiscoveryResponse, Resource as WireResource, ResourceRef};

use crate::store::{KdsType, StoreKey, StoredItem};

static NONCES: AtomicU64 = AtomicU64::new(1);

/// A fresh nonce, unique in this process (and, with the random prefix, across restarts).
pub fn nonce() -> String {
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u32> = OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random::<u32>);
    format!("{prefix:08x}-{}", NONCES.fetch_add(1, Ordering::Relaxed))
}

/// A record on the wire.
pub fn wire_resource(item: &StoredItem) -> WireResource {
    WireResource {
        r#type: item.key.kind.as_str().to_string(),
        mesh: item.key.mesh.clone().unwrap_or_default(),
        name: item.key.name.clone(),
        version: item.version,
        json: item.wire_json(),
    }
}

/// A key on the wire.
pub fn wire_ref(key: &StoreKey) -> ResourceRef {
    ResourceRef {
        r#type: key.kind.as_str().to_string(),
        mesh: key.mesh.clone().unwrap_or_default(),
        name: key.name.clone(),
    }
}

/// One response of `kind`, chunked so each chunk's JSON stays within `chunk_bytes` (a larger
/// single resource gets a chunk of its own).
pub fn build(
    kind: KdsType,
    authoritative: bool,
    items: &[StoredItem],
    removed: &[StoreKey],
    chunk_bytes: usize,
) -> Vec<DiscoveryResponse> {
    let nonce = nonce();
    let mut groups: Vec<Vec<WireResource>> = vec![Vec::new()];
    let mut size = 0usize;
    for item in items {
        let wire = wire_resource(item);
        let len = wire.json.len() + wire.name.len() + wire.mesh.len() + 32;
        if size + len > chunk_bytes && groups.last().is_some_and(|g| !g.is_empty()) {
            groups.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(g) = groups.last_mut() {
            g.push(wire);
        }
    }
    let chunks = groups.len() as u32;
    let last = groups.len() - 1;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, resources)| DiscoveryResponse {
            r#type: kind.as_str().to_string(),
            nonce: nonce.clone(),
            authoritative,
            resources,
            removed: if i == last {
                removed.iter().map(wire_ref).collect()
            } else {
                Vec::new()
            },
            chunk: i as u32,
            chunks,
            global_index: 0,
        })
        .collect()
}

/// The authoritative response for `kind` given what the receiver says it holds: the records
/// whose version differs from `known`, plus removals for known ones the zone no longer has.
pub fn authoritative_diff(
    kind: KdsType,
    held: &[StoredItem],
    known: &BTreeMap<StoreKey, u64>,
    chunk_bytes: usize,
) -> Vec<DiscoveryResponse> {
    let changed: Vec<StoredItem> = held
        .iter()
        .filter(|i| known.get(&i.key) != Some(&i.version))
        .cloned()
        .collect();
    let removed: Vec<StoreKey> = known
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

    fn item(name: &str, version: u64, payload: usize) -> StoredItem {
        StoredItem {
            key: StoreKey::new(ResourceType::Dataplane, Some("default"), name),
            version,
            value: json!({"type": "Dataplane", "name": name, "pad": "x".repeat(payload)}),
        }
    }

    #[test]
    fn chunks_stay_under_budget_and_share_a_nonce() {
        let items: Vec<_> = (0..10).map(|i| item(&format!("dp-{i}"), i, 400)).collect();
        let gone = [StoreKey::new(
            ResourceType::Dataplane,
            Some("default"),
            "old",
        )];
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
        let gone = StoreKey::new(ResourceType::Dataplane, Some("default"), "c");
        known.insert(gone.clone(), 2);
        let out = authoritative_diff(ResourceType::Dataplane.into(), &held, &known, 1 << 20);
        assert_eq!(out.len(), 1);
        let names: Vec<_> = out[0].resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b"]);
        assert_eq!(out[0].removed, vec![wire_ref(&gone)]);
    }
}
