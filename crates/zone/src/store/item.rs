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
