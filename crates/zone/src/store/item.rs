//! The bytes of a [`KdsItem`] in the zone's sled trees (its Universal JSON), read back with the
//! store's error.

use mosaic_kds::item::KdsItem;

use super::{StoreError, StoreKey};

/// Reads a stored record back.
pub(crate) fn decode(key: StoreKey, bytes: &[u8]) -> Result<KdsItem, StoreError> {
    KdsItem::from_bytes(key.clone(), bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// The version inside a stored record, read without building the record (the other fields are
/// skipped, not kept).
pub(crate) fn version(key: &StoreKey, bytes: &[u8]) -> Result<u64, StoreError> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(default)]
        version: u64,
    }
    serde_json::from_slice::<Versioned>(bytes)
        .map(|v| v.version)
        .map_err(|e| StoreError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use mosaic_core::resource::{ResourceType, parse_document};

    use super::*;

    #[test]
    fn the_version_read_alone_is_the_decoded_records() {
        let r = parse_document(b"type: Mesh\nname: default\nmtls: {}\n").expect("a mesh");
        let item = KdsItem::from_resource(&r, 42);
        let key = StoreKey::new(ResourceType::Mesh, None, "default");
        let bytes = item.to_bytes();
        assert_eq!(version(&key, &bytes).ok(), Some(42));
        assert_eq!(
            decode(key.clone(), &bytes).ok().map(|i| i.version),
            Some(42)
        );
        assert!(version(&key, b"not json").is_err());
    }
}
