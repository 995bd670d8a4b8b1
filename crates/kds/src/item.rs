//! `KdsItem`: one synced record: its key, its owner's version and its Universal JSON (with
//! `version` inside, as the APIs serve it); the form a zone keeps and sends.
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

use crate::{KdsKey, KdsType};

/// One synced record: key, version and Universal JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct KdsItem {
    /// Where it lives.
    pub key: KdsKey,
    /// The owner's version (the global's raft index, or the zone's own counter).
    pub version: u64,
    /// The Universal JSON, `version` included.
    pub value: Value,
}

// === impl KdsItem ===

impl KdsItem {
    /// A resource at `version` (the resource's own `meta.version` is replaced).
    pub fn from_resource(resource: &Resource, version: u64) -> Self {
        let mut value = resource.to_universal();
        if let Value::Object(obj) = &mut value {
            obj.insert("version".into(), version.into());
        }
        Self {
            key: KdsKey::of(resource),
            version,
            value,
        }
    }

    /// A mesh's dataplane-token public keys at `version`.
    pub fn token_keys(key: KdsKey, version: u64, keys: &[PublicKey]) -> Self {
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

    /// The bytes a store keeps (the Universal JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.value).unwrap_or_default()
    }

    /// Reads kept bytes back (the version is the one inside the JSON).
    pub fn from_bytes(key: KdsKey, bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_slice(bytes)?;
        let version = value.get("version").and_then(Value::as_u64).unwrap_or(0);
        Ok(Self {
            key,
            version,
            value,
        })
    }
}
