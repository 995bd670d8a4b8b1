//! `StoredItem`: one record as the zone store keeps it: its key, its owner's version and its
//! Universal JSON (with `version` inside, as the APIs serve it).
//!
//! Resources are stored in Kuma's Universal form. A mesh's dataplane-token keys (not a resource)
//! are stored under the mesh's name, as `{"type":"DataplaneTokenKey","name":MESH,"version":V,
//! "keys":[...]}`.

use mosaic_core::{
    resource::{Resource, parse::from_stored_value},
    token::PublicKey,
    validate::ValidationError,
};
use serde_json::{Map, Value};

use super::{KdsType, StoreError, StoreKey};

/// One record: key, version and Universal JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredItem {
    /// Where it lives.
    pub key: StoreKey,
    /// The owner's version (the global's raft index, or the zone's own counter).
    pub version: u64,
    /// The Universal JSON, `version` included.
    pub value: Value,
}

// === impl StoredItem ===

impl StoredItem {
    /// A resource at `version` (the resource's own `meta.version` is replaced).
    pub fn from_resource(resource: &Resource, version: u64) -> Self {
        let mut value = resource.to_universal();
        if let Value::Object(obj) = &mut value {
            obj.insert("version".into(), version.into());
        }
        Self {
            key: StoreKey::of(resource),
            version,
            value,
        }
    }

    /// A mesh's dataplane-token public keys at `version`.
    pub fn token_keys(key: StoreKey, version: u64, keys: &[PublicKey]) -> Self {
        let mut obj = Map::new();
        obj.insert("type".into(), KdsType::DATAPLANE_TOKEN_KEY.into());
        if let Some(m) = &key.mesh {
            obj.insert("mesh".into(), m.clone().into());
        }
        obj.insert("name".into(), key.name.clone().into());
        obj.insert("version".into(), version.into());
        obj.insert(
            "keys".into(),
            serde_json::to_value(keys).unwrap_or_else(|_| Value::Array(Vec::new())),
        );
        Self {
            key,
            version,
            value: Value::Object(obj),
        }
    }

    /// The resource this record holds (not for `DataplaneTokenKey`).
    pub fn to_resource(&self) -> Result<Resource, ValidationError> {
        from_stored_value(self.value.clone())
    }

    /// The public keys a `DataplaneTokenKey` record holds.
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, String> {
        let keys = self.value.get("keys").cloned().unwrap_or(Value::Null);
        serde_json::from_value(keys).map_err(|e| format!("bad dataplane-token keys: {e}"))
    }

    /// The JSON without `version`, as the owner sent it (for the wire).
    pub fn wire_json(&self) -> Vec<u8> {
        match self.key.kind {
            KdsType::DataplaneTokenKey => {
                let keys = self.value.get("keys").cloned().unwrap_or(Value::Null);
                serde_json::to_vec(&keys).unwrap_or_default()
            }
            KdsType::Resource(_) => serde_json::to_vec(&self.value).unwrap_or_default(),
        }
    }

    /// The bytes stored in sled.
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&self.value).unwrap_or_default()
    }

    /// Reads a stored record back.
    pub(crate) fn decode(key: StoreKey, bytes: &[u8]) -> Result<Self, StoreError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        let version = value.get("version").and_then(Value::as_u64).unwrap_or(0);
        Ok(Self {
            key,
            version,
            value,
        })
    }
}
