//! The zone's own sled store (in `<store.data_dir>/store`): what the global sent over KDS (Mesh,
//! Secret, GlobalSecret, Zone, DataplaneTokenKey) and what the zone owns (Dataplane,
//! DataplaneInsight, ZoneInsight), keyed `<Type>/<mesh or ->/<name>` like the global's store,
//! each value the record's Universal JSON with its owner's version.
//!
//! Writes come in two shapes: [`ZoneStore::apply_sync`] applies one received KDS response (every
//! chunk of it) in one sled transaction and only touches global-owned kinds;
//! [`ZoneStore::put_local`]/[`ZoneStore::delete_local`] write zone-owned kinds, stamping the
//! zone's own version counter in the same transaction. Nothing here deletes on a disconnect:
//! records leave only when a response says so. After each committed transaction every change is
//! published on a broadcast feed ([`ZoneStore::subscribe`]).
//!
//! Module map:
//! - [`key`]: `StoreKey` and its byte form.
//! - [`item`]: the bytes of a `KdsItem` (a record's version and Universal JSON) in sled.
//! - [`change`]: the change feed's `Change`.
//! - [`error`]: `StoreError`, why a read or write failed.
//! - [`secrets`]: the store as a `SecretSource` (mesh Secrets for CA backends).

pub mod change;
pub mod error;
pub mod item;
pub mod key;
pub mod secrets;

use std::{
    collections::BTreeMap,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
    time::Instant,
};

use mosaic_core::resource::{Owner, Resource, ResourceType};
use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError},
};
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use change::{Change, ChangeOp};
pub use error::StoreError;
pub use key::StoreKey;
pub use mosaic_kds::item::KdsItem;
pub use mosaic_kds::{KdsKey, KdsType};

/// Change-feed capacity; a subscriber that falls further behind gets `Lagged` and must resync.
pub const FEED_CAPACITY: usize = 4096;

/// Name of the sled directory inside `store.data_dir`.
pub const STORE_DIR: &str = "store";

const LOCAL_VERSION: &[u8] = b"local_version";

/// The zone store (share it in an `Arc`).
#[derive(Debug)]
pub struct ZoneStore {
    db: sled::Db,
    records: sled::Tree,
    meta: sled::Tree,
    feed: broadcast::Sender<Change>,
    /// Serialises local read-modify-writes (creation time, unchanged detection).
    local: Mutex<()>,
}

/// One received response, ready to apply: upserts and removals of global-owned records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncBatch {
    /// Records to create or replace.
    pub upserts: Vec<KdsItem>,
    /// Records to remove (absent ones are ignored).
    pub removes: Vec<StoreKey>,
}

/// The result of a local write.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalWrite {
    /// Whether the record did not exist before.
    pub created: bool,
    /// Whether anything changed (an identical write keeps the stored record and its version).
    pub changed: bool,
    /// The stored record.
    pub item: KdsItem,
}

// === impl ZoneStore ===

impl ZoneStore {
    /// Opens (or creates) the store in `<data_dir>/store`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path: PathBuf = data_dir.join(STORE_DIR);
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: path.clone(),
            reason: e.to_string(),
        };
        // Owner-only: the issuer keeps certificates and their private keys in this database.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| open_err(&e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| open_err(&e))?;
        let db = sled::Config::new()
            .path(&path)
            .open()
            .map_err(|e| open_err(&e))?;
        let records = db.open_tree("records").map_err(|e| open_err(&e))?;
        let meta = db.open_tree("meta").map_err(|e| open_err(&e))?;
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Ok(Self {
            db,
            records,
            meta,
            feed,
            local: Mutex::new(()),
        })
    }

    /// A tree of its own in this database, for data that is not synced resources (the issuer's
    /// certificate cache). Writes to it are durable at the next flush (sled flushes every
    /// 500 ms, and [`ZoneStore::flush`] on demand).
    pub fn private_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        self.db.open_tree(name).map_err(StoreError::from)
    }

    /// A receiver of every change committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    /// One record.
    pub fn get(&self, key: &StoreKey) -> Result<Option<KdsItem>, StoreError> {
        match self.records.get(key.to_bytes())? {
            Some(bytes) => Ok(Some(item::decode(key.clone(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// One record's version, read without decoding the record (the issuer checks it on every
    /// certificate request to see whether the Mesh it built from changed).
    pub fn version(&self, key: &StoreKey) -> Result<Option<u64>, StoreError> {
        match self.records.get(key.to_bytes())? {
            Some(bytes) => Ok(Some(item::version(key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// One resource, decoded.
    pub fn get_resource(
        &self,
        rtype: ResourceType,
        mesh: Option<&str>,
        name: &str,
    ) -> Result<Option<Resource>, StoreError> {
        let key = StoreKey::new(rtype, mesh, name);
        self.get(&key)?.map(|i| to_resource(&i)).transpose()
    }

    /// Every record of `kind` (in `mesh`, when given), in key order.
    pub fn list(&self, kind: KdsType, mesh: Option<&str>) -> Result<Vec<KdsItem>, StoreError> {
        let mut out = Vec::new();
        for entry in self.records.scan_prefix(StoreKey::prefix(kind, mesh)) {
            let (k, v) = entry?;
            let key = StoreKey::from_bytes(&k).ok_or_else(|| StoreError::Corrupt {
                key: String::from_utf8_lossy(&k).into_owned(),
                reason: "not a record key".into(),
            })?;
            out.push(item::decode(key, &v)?);
        }
        Ok(out)
    }

    /// Every resource of `rtype` (in `mesh`, when given), decoded, in key order.
    pub fn list_resources(
        &self,
        rtype: ResourceType,
        mesh: Option<&str>,
    ) -> Result<Vec<Resource>, StoreError> {
        self.list(rtype.into(), mesh)?
            .iter()
            .map(to_resource)
            .collect()
    }

    /// The version of every record of `kind` (what the zone tells the global it holds).
    pub fn versions(&self, kind: KdsType) -> Result<BTreeMap<StoreKey, u64>, StoreError> {
        Ok(self
            .list(kind, None)?
            .into_iter()
            .map(|i| (i.key, i.version))
            .collect())
    }

    /// Applies one received response in one transaction; returns the changes it made (records
    /// whose bytes are unchanged are not rewritten and produce no change).
    pub fn apply_sync(&self, batch: &SyncBatch) -> Result<Vec<Change>, StoreError> {
        let keys = batch
            .upserts
            .iter()
            .map(|i| &i.key)
            .chain(batch.removes.iter());
        for key in keys {
            if key.kind.owner() != Owner::Global {
                return Err(StoreError::WrongOwner {
                    kind: key.kind.to_string(),
                    owner: "zone",
                });
            }
        }
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = batch
            .upserts
            .iter()
            .map(|i| (i.key.to_bytes(), i.to_bytes()))
            .collect();
        let applied_at = Instant::now();
        let result: Result<Vec<Change>, TransactionError<()>> = self.records.transaction(|tx| {
            let mut changes = Vec::new();
            for ((k, v), item) in encoded.iter().zip(&batch.upserts) {
                if tx.get(k)?.is_some_and(|old| old.as_ref() == v.as_slice()) {
                    continue;
                }
                tx.insert(k.as_slice(), v.as_slice())?;
                changes.push(Change {
                    key: item.key.clone(),
                    op: ChangeOp::Put,
                    version: item.version,
                    applied_at,
                });
            }
            for key in &batch.removes {
                if let Some(old) = tx.remove(key.to_bytes())? {
                    let version = item::decode(key.clone(), &old)
                        .map(|i| i.version)
                        .unwrap_or(0);
                    changes.push(Change {
                        key: key.clone(),
                        op: ChangeOp::Delete,
                        version,
                        applied_at,
                    });
                }
            }
            Ok::<_, ConflictableTransactionError<()>>(changes)
        });
        let changes = result.map_err(tx_error)?;
        self.publish(&changes);
        Ok(changes)
    }

    /// Writes a zone-owned resource, stamping the next local version, `creationTime` (kept from
    /// the stored record) and `modificationTime` (`now`). A write whose labels and spec equal
    /// the stored record's changes nothing.
    pub fn put_local(
        &self,
        mut resource: Resource,
        now: OffsetDateTime,
    ) -> Result<LocalWrite, StoreError> {
        let rtype = resource.resource_type();
        if rtype.owner() != Owner::Zone {
            return Err(StoreError::WrongOwner {
                kind: rtype.to_string(),
                owner: "global",
            });
        }
        let _guard = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let key = StoreKey::of(&resource);
        let existing = self.get(&key)?.map(|i| to_resource(&i)).transpose()?;
        if let Some(old) = &existing
            && old.spec == resource.spec
            && old.meta.labels == resource.meta.labels
            && let Some(item) = self.get(&key)?
        {
            return Ok(LocalWrite {
                created: false,
                changed: false,
                item,
            });
        }
        resource.meta.creation_time = Some(
            existing
                .as_ref()
                .and_then(|o| o.meta.creation_time)
                .unwrap_or(now),
        );
        resource.meta.modification_time = Some(now);
        let key_bytes = key.to_bytes();
        let result: Result<KdsItem, TransactionError<()>> = (&self.records, &self.meta)
            .transaction(|(records, meta)| {
                let next = meta
                    .get(LOCAL_VERSION)?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0)
                    + 1;
                meta.insert(LOCAL_VERSION, &next.to_be_bytes())?;
                let mut stamped = resource.clone();
                stamped.meta.version = Some(next);
                let item = KdsItem::from_resource(&stamped, next);
                records.insert(key_bytes.as_slice(), item.to_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(item)
            });
        let item = result.map_err(tx_error)?;
        self.publish(&[Change {
            key,
            op: ChangeOp::Put,
            version: item.version,
            applied_at: Instant::now(),
        }]);
        Ok(LocalWrite {
            created: existing.is_none(),
            changed: true,
            item,
        })
    }

    /// Removes zone-owned records in one transaction; returns the changes (absent keys are
    /// skipped).
    pub fn delete_local(&self, keys: &[StoreKey]) -> Result<Vec<Change>, StoreError> {
        for key in keys {
            if key.kind.owner() != Owner::Zone {
                return Err(StoreError::WrongOwner {
                    kind: key.kind.to_string(),
                    owner: "global",
                });
            }
        }
        let _guard = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let applied_at = Instant::now();
        let result: Result<Vec<Change>, TransactionError<()>> = self.records.transaction(|tx| {
            let mut changes = Vec::new();
            for key in keys {
                if let Some(old) = tx.remove(key.to_bytes())? {
                    let version = item::decode(key.clone(), &old)
                        .map(|i| i.version)
                        .unwrap_or(0);
                    changes.push(Change {
                        key: key.clone(),
                        op: ChangeOp::Delete,
                        version,
                        applied_at,
                    });
                }
            }
            Ok::<_, ConflictableTransactionError<()>>(changes)
        });
        let changes = result.map_err(tx_error)?;
        self.publish(&changes);
        Ok(changes)
    }

    /// Makes every committed write durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    fn publish(&self, changes: &[Change]) {
        for c in changes {
            // No subscriber is fine.
            let _ = self.feed.send(c.clone());
        }
    }
}

fn to_resource(item: &KdsItem) -> Result<Resource, StoreError> {
    item.to_resource().map_err(|e| StoreError::Corrupt {
        key: item.key.to_string(),
        reason: e.to_string(),
    })
}

fn tx_error(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Storage(e.to_string()),
        TransactionError::Abort(()) => StoreError::Storage("transaction aborted".into()),
    }
}
