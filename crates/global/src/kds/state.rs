//! What the global currently holds of a KDS type for one zone, read from this replica's applied
//! state, in wire form: every item of a type ([`items`]) or one item ([`item`]).
//!
//! A zone gets its own Zone resource only ([`for_zone`]): Kuma sends zones none (its Zone is not
//! `ConsumedByZone`); Mosaic's zone reads its own (`enabled`, shown on the zone's `/zones`). Every
//! zone holding every other zone's would make each zone's first sync grow with the number of
//! zones, and every zone's registration a push to all of them: memory and traffic in N².
//!
//! Versions: a store resource's version is its raft index. A DataplaneTokenKey (the public keys
//! [`Tokens::public_keys`] gives for the mesh's signing-key record, which has no version) is
//! versioned by a hash of its content, so every replica gives it the same version and a zone
//! resuming on another replica gets only the difference.
//!
//! Imported Kuma signing keys (Secrets and GlobalSecrets named `dataplane-token-signing-key-…`,
//! `zone-token-signing-key…`) are private keys: they never leave the global. Zones get their
//! public keys in the mesh's DataplaneTokenKey instead.

use std::collections::BTreeMap;

use mosaic_core::{
    resource::{Resource, ResourceType},
    token::kuma,
};
use mosaic_proto::kds;

use crate::{
    store::{ResourceKey, ResourceStore, StoreError},
    tokens::{KeyPurpose, TokenIssueError, Tokens},
};
use mosaic_kds::{
    KdsType,
    wire::{ItemKey, KdsWire as _},
};

/// The items of one type, by identity.
pub type Items = BTreeMap<ItemKey, kds::Resource>;

/// The wire form of a store resource.
pub fn wire_resource(r: &Resource) -> Result<kds::Resource, StoreError> {
    let json = serde_json::to_vec(&r.to_universal()).map_err(|e| StoreError::Corrupt {
        key: ResourceKey::of(r).to_string(),
        reason: e.to_string(),
    })?;
    Ok(kds::Resource {
        r#type: r.resource_type().as_str().to_string(),
        mesh: r.meta.mesh.clone().unwrap_or_default(),
        name: r.meta.name.clone(),
        version: r.meta.version.unwrap_or_default(),
        json,
    })
}

/// The DataplaneTokenKey item of `mesh`, if the mesh has a dataplane signing key. Read from the
/// record itself (not a cache), so a re-created Mesh's new key is what zones get.
fn token_key(tokens: &Tokens, mesh: &str) -> Result<Option<kds::Resource>, StoreError> {
    let purpose = KeyPurpose::Dataplane {
        mesh: mesh.to_string(),
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        key: purpose.record(),
        reason,
    };
    let keys = tokens.public_keys(&purpose).map_err(|e| match e {
        TokenIssueError::Store(e) => e,
        other => corrupt(other.to_string()),
    })?;
    if keys.is_empty() {
        return Ok(None);
    }
    let json = serde_json::to_vec(&keys).map_err(|e| corrupt(e.to_string()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &json);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    // Never 0 (which a zone may use for "unknown"); the top bit is cleared to stay clear of
    // signed-integer trouble in other languages.
    let version = (u64::from_be_bytes(first) >> 1).max(1);
    Ok(Some(kds::Resource {
        r#type: KdsType::DataplaneTokenKey.as_str().to_string(),
        mesh: String::new(),
        name: mesh.to_string(),
        version,
        json,
    }))
}

/// Whether a resource is never sent to zones: an imported Kuma signing key.
pub fn stays_on_global(rt: ResourceType, name: &str) -> bool {
    matches!(rt, ResourceType::Secret | ResourceType::GlobalSecret)
        && kuma::is_signing_key_name(name)
}

/// Whether zone `zone` gets the resource `rt`/`name` at all: every global-owned resource except
/// the Zone resources of other zones (see the module doc).
pub fn for_zone(rt: ResourceType, name: &str, zone: &str) -> bool {
    rt != ResourceType::Zone || name == zone
}

/// Every item of `t` this replica holds for `zone` (DataplaneTokenKeys from `tokens`).
pub fn items(
    store: &dyn ResourceStore,
    tokens: &Tokens,
    t: KdsType,
    zone: &str,
) -> Result<Items, StoreError> {
    let mut out = Items::new();
    match t {
        KdsType::Resource(ResourceType::Zone) => {
            if let Some(r) = store.get(&ResourceKey::new(ResourceType::Zone, None, zone))? {
                out.insert(t.item_key("", &r.meta.name), wire_resource(&r)?);
            }
        }
        KdsType::Resource(rt) => {
            for r in store.list(rt, None)? {
                if stays_on_global(rt, &r.meta.name) {
                    continue;
                }
                let key = t.item_key(r.meta.mesh.as_deref().unwrap_or_default(), &r.meta.name);
                out.insert(key, wire_resource(&r)?);
            }
        }
        KdsType::DataplaneTokenKey => {
            for m in store.list(ResourceType::Mesh, None)? {
                if let Some(item) = token_key(tokens, &m.meta.name)? {
                    out.insert(t.item_key("", &m.meta.name), item);
                }
            }
        }
    }
    Ok(out)
}

/// One item of `t` for `zone`, if this replica holds it (a DataplaneTokenKey from `tokens`).
pub fn item(
    store: &dyn ResourceStore,
    tokens: &Tokens,
    t: KdsType,
    key: &ItemKey,
    zone: &str,
) -> Result<Option<kds::Resource>, StoreError> {
    match t {
        KdsType::Resource(rt) => {
            if stays_on_global(rt, &key.name) || !for_zone(rt, &key.name, zone) {
                return Ok(None);
            }
            let mesh = (!key.mesh.is_empty()).then_some(key.mesh.as_str());
            store
                .get(&ResourceKey::new(rt, mesh, &key.name))?
                .map(|r| wire_resource(&r))
                .transpose()
        }
        KdsType::DataplaneTokenKey => {
            if store.get(&ResourceKey::mesh(&key.name))?.is_none() {
                return Ok(None);
            }
            token_key(tokens, &key.name)
        }
    }
}
