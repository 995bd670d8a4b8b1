//! `StateMachine`: the applied state in sled, the change feed, and snapshots.
//!
//! Trees: `resources` (`ResourceKey` bytes → Universal JSON), `internal` (record key → bytes),
//! `sm_meta` (`last_applied`, `last_membership`). Each log entry is planned with
//! [`crate::store::plan`] against the trees and its mutations are written together with the new
//! last-applied id in one sled transaction, so a crash never leaves half an entry applied.
//!
//! Snapshot install: the received file is fsynced and promoted to the current snapshot first
//! (the commit point), then the trees are replaced by one sled transaction (remove every old key,
//! insert every new one, set the applied id) and flushed. A crash in between leaves the old trees
//! intact; on the next open the current snapshot is newer than the applied id and is installed
//! again from its file. The state of a control plane (Meshes, Secrets, Dataplanes) fits
//! comfortably in one transaction.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Instant,
};

use mosaic_core::resource::{Resource, ResourceType, parse::from_stored_value};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageError,
    StorageIOError, StoredMembership, storage::RaftStateMachine,
};
use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError},
};
use tokio::sync::broadcast;

use super::{
    TypeConfig, entry_format,
    snapshot::{SnapMeta, SnapshotContents, SnapshotDir, SnapshotFile},
};
use crate::store::{
    Change, ChangeOp, CommandResult, InternalChange, Mutation, ResourceKey, StateView, StoreError,
    plan,
};

const LAST_APPLIED: &[u8] = b"last_applied";
const LAST_MEMBERSHIP: &[u8] = b"last_membership";
/// Change-feed capacity; a subscriber that falls further behind gets `Lagged` and must resync.
const FEED_CAPACITY: usize = 4096;

type Membership = StoredMembership<u64, openraft::BasicNode>;
type StorageResult<T> = Result<T, StorageError<u64>>;

/// The sled trees holding applied state (cheap to clone).
#[derive(Clone, Debug)]
pub struct SmTrees {
    db: sled::Db,
    resources: sled::Tree,
    internal: sled::Tree,
    sm_meta: sled::Tree,
}

/// State shared between the state machine (owned by openraft) and the readers ([`super::RaftStore`]).
#[derive(Debug)]
pub struct SmShared {
    /// `None` once the node shut down (so every sled handle can be dropped).
    trees: RwLock<Option<SmTrees>>,
    changes: broadcast::Sender<Change>,
    internal_changes: broadcast::Sender<InternalChange>,
    snapshots: SnapshotDir,
    current: Mutex<Option<(SnapMeta, PathBuf)>>,
}

/// The openraft state machine.
#[derive(Clone, Debug)]
pub struct StateMachine {
    shared: Arc<SmShared>,
    /// The newest log entry format this replica reads; a newer entry stops it unapplied.
    reads: u32,
}

/// Builds a snapshot from a copy of the state taken when openraft asked for the builder (apply
/// keeps running while the file is written).
#[derive(Debug)]
pub struct SnapshotBuilder {
    shared: Arc<SmShared>,
    copy: Result<StateCopy, String>,
}

/// A consistent copy of the applied state.
#[derive(Debug)]
struct StateCopy {
    last_applied: Option<LogId<u64>>,
    membership: Membership,
    contents: SnapshotContents,
}

/// A mutation encoded for sled.
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Internal(Vec<u8>, Vec<u8>),
    DeleteInternal(Vec<u8>),
}

/// The `format` label of `mosaic_raft_entries_applied_total` (bounded: the formats this build
/// reads).
fn format_label(format: u32) -> &'static str {
    match format {
        1 => "1",
        _ => "2",
    }
}

fn sm_read(e: &(impl std::error::Error + 'static)) -> StorageError<u64> {
    StorageIOError::read_state_machine(e).into()
}

fn sm_write(e: &(impl std::error::Error + 'static)) -> StorageError<u64> {
    StorageIOError::write_state_machine(e).into()
}

fn storage(e: sled::Error) -> StoreError {
    StoreError::Storage(e.to_string())
}

fn tx_error(e: TransactionError<()>) -> io::Error {
    match e {
        TransactionError::Storage(e) => io::Error::other(e),
        TransactionError::Abort(()) => io::Error::other("sled transaction aborted"),
    }
}

// === impl SmTrees ===

impl SmTrees {
    /// Opens the state-machine trees of `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            db: db.clone(),
            resources: db.open_tree("resources")?,
            internal: db.open_tree("internal")?,
            sm_meta: db.open_tree("sm_meta")?,
        })
    }

    fn decode(key: &[u8], bytes: &[u8]) -> Result<Resource, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        from_stored_value(value).map_err(|e| corrupt(e.to_string()))
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        match self.sm_meta.get(key).map_err(io::Error::other)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(io::Error::other),
            None => Ok(None),
        }
    }

    fn applied(&self) -> io::Result<(Option<LogId<u64>>, Membership)> {
        Ok((
            self.meta::<Option<LogId<u64>>>(LAST_APPLIED)?.flatten(),
            self.meta(LAST_MEMBERSHIP)?.unwrap_or_default(),
        ))
    }

    /// Writes `ops` and the applied id (and membership) in one transaction.
    fn commit(
        &self,
        ops: &[Op],
        applied: Option<LogId<u64>>,
        membership: Option<&Membership>,
    ) -> io::Result<()> {
        let applied = serde_json::to_vec(&applied).map_err(io::Error::other)?;
        let membership = membership
            .map(serde_json::to_vec)
            .transpose()
            .map_err(io::Error::other)?;
        (&self.resources, &self.internal, &self.sm_meta)
            .transaction(|(r, i, m)| {
                for op in ops {
                    match op {
                        Op::Put(k, v) => {
                            r.insert(k.as_slice(), v.as_slice())?;
                        }
                        Op::Delete(k) => {
                            r.remove(k.as_slice())?;
                        }
                        Op::Internal(k, v) => {
                            i.insert(k.as_slice(), v.as_slice())?;
                        }
                        Op::DeleteInternal(k) => {
                            i.remove(k.as_slice())?;
                        }
                    }
                }
                m.insert(LAST_APPLIED, applied.as_slice())?;
                if let Some(mb) = &membership {
                    m.insert(LAST_MEMBERSHIP, mb.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    /// Replaces all state with a snapshot's, in one transaction. Returns the resource changes and
    /// the internal-record changes.
    fn replace(
        &self,
        meta: &SnapMeta,
        contents: &SnapshotContents,
    ) -> io::Result<(Vec<Change>, Vec<InternalChange>)> {
        let index = meta.last_log_id.map(|l| l.index).unwrap_or_default();
        let applied_at = Instant::now();
        let mut old: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.resources.iter() {
            let (k, v) = item.map_err(io::Error::other)?;
            old.insert(k.to_vec(), v.to_vec());
        }
        let mut old_internal: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.internal.iter() {
            let (k, v) = item.map_err(io::Error::other)?;
            old_internal.insert(k.to_vec(), v.to_vec());
        }
        let mut ops: Vec<Op> = old.keys().map(|k| Op::Delete(k.clone())).collect();
        ops.extend(
            contents
                .resources
                .iter()
                .map(|(k, v)| Op::Put(k.clone(), v.clone())),
        );
        let applied = serde_json::to_vec(&meta.last_log_id).map_err(io::Error::other)?;
        let membership = serde_json::to_vec(&meta.last_membership).map_err(io::Error::other)?;
        (&self.resources, &self.internal, &self.sm_meta)
            .transaction(|(r, i, m)| {
                for op in &ops {
                    match op {
                        Op::Put(k, v) => {
                            r.insert(k.as_slice(), v.as_slice())?;
                        }
                        Op::Delete(k) => {
                            r.remove(k.as_slice())?;
                        }
                        Op::Internal(..) | Op::DeleteInternal(..) => {}
                    }
                }
                for k in old_internal.keys() {
                    i.remove(k.as_slice())?;
                }
                for (k, v) in &contents.internal {
                    i.insert(k.as_slice(), v.as_slice())?;
                }
                m.insert(LAST_APPLIED, applied.as_slice())?;
                m.insert(LAST_MEMBERSHIP, membership.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)?;

        let mut changes = Vec::new();
        let new: BTreeMap<&[u8], &[u8]> = contents
            .resources
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        for k in old.keys() {
            if !new.contains_key(k.as_slice())
                && let Some(key) = ResourceKey::from_bytes(k)
            {
                changes.push(Change {
                    version: index,
                    key,
                    op: ChangeOp::Delete,
                    applied_at,
                });
            }
        }
        for (k, v) in &new {
            if old.get(*k).map(Vec::as_slice) != Some(*v)
                && let Some(key) = ResourceKey::from_bytes(k)
            {
                changes.push(Change {
                    version: index,
                    key,
                    op: ChangeOp::Put,
                    applied_at,
                });
            }
        }
        let new_internal: BTreeMap<&[u8], &[u8]> = contents
            .internal
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        let mut internal = Vec::new();
        let internal_change = |k: &[u8], op| InternalChange {
            version: index,
            key: String::from_utf8_lossy(k).into_owned(),
            op,
            applied_at,
        };
        for k in old_internal.keys() {
            if !new_internal.contains_key(k.as_slice()) {
                internal.push(internal_change(k, ChangeOp::Delete));
            }
        }
        for (k, v) in &new_internal {
            if old_internal.get(*k).map(Vec::as_slice) != Some(*v) {
                internal.push(internal_change(k, ChangeOp::Put));
            }
        }
        Ok((changes, internal))
    }

    fn copy(&self) -> io::Result<StateCopy> {
        let (last_applied, membership) = self.applied()?;
        let mut contents = SnapshotContents::default();
        for item in self.resources.iter() {
            let (k, v) = item.map_err(io::Error::other)?;
            contents.resources.push((k.to_vec(), v.to_vec()));
        }
        for item in self.internal.iter() {
            let (k, v) = item.map_err(io::Error::other)?;
            contents.internal.push((k.to_vec(), v.to_vec()));
        }
        Ok(StateCopy {
            last_applied,
            membership,
            contents,
        })
    }
}

impl StateView for SmTrees {
    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        let k = key.to_bytes();
        match self.resources.get(&k).map_err(storage)? {
            Some(v) => Self::decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError> {
        let mut out = Vec::new();
        for item in self.resources.scan_prefix(ResourceKey::prefix(rtype, mesh)) {
            let (k, v) = item.map_err(storage)?;
            out.push(Self::decode(&k, &v)?);
        }
        out.sort_by_cached_key(ResourceKey::of);
        Ok(out)
    }

    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .internal
            .get(key.as_bytes())
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }

    fn internal_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for item in self.internal.scan_prefix(prefix.as_bytes()) {
            let (k, _) = item.map_err(storage)?;
            keys.push(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(keys)
    }
}

// === impl SmShared ===

impl SmShared {
    /// The trees, or `Unavailable` after shutdown.
    pub fn trees(&self) -> Result<SmTrees, StoreError> {
        self.trees
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the raft node is shut down".into()))
    }

    /// Drops the trees (and so this handle's share of the sled database).
    pub fn close(&self) {
        *self.trees.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A receiver of every change applied from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// A receiver of every internal-record change applied from now on.
    pub fn subscribe_internal(&self) -> broadcast::Receiver<InternalChange> {
        self.internal_changes.subscribe()
    }

    /// The current snapshot's metadata.
    pub fn snapshot_meta(&self) -> Option<SnapMeta> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(m, _)| m.clone())
    }

    fn trees_for_raft(&self) -> StorageResult<SmTrees> {
        self.trees().map_err(|e| sm_read(&e))
    }

    fn publish(&self, changes: Vec<Change>, internal: Vec<InternalChange>) {
        for c in changes {
            // No subscriber is fine.
            let _ = self.changes.send(c);
        }
        for c in internal {
            let _ = self.internal_changes.send(c);
        }
    }

    /// Makes the complete file `part` the current snapshot unless the current one is at least as
    /// new (then `part` is dropped). Returns the current snapshot afterwards.
    fn adopt(&self, part: &Path, meta: &SnapMeta) -> io::Result<(SnapMeta, PathBuf)> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((m, p)) = current.as_ref()
            && m.last_log_id >= meta.last_log_id
            && p.as_path() != part
        {
            self.snapshots.discard(part);
            return Ok((m.clone(), p.clone()));
        }
        let path = self.snapshots.promote(part, meta)?;
        *current = Some((meta.clone(), path.clone()));
        Ok((meta.clone(), path))
    }

    /// Installs a promoted snapshot file into the trees.
    fn install_file(&self, meta: &SnapMeta, file: &SnapshotFile) -> io::Result<()> {
        let (file_meta, contents) = file.read_all()?;
        if file_meta.last_log_id != meta.last_log_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "snapshot file is for log id {:?}, expected {:?}",
                    file_meta.last_log_id, meta.last_log_id
                ),
            ));
        }
        let trees = self.trees().map_err(io::Error::other)?;
        let (changes, internal) = trees.replace(meta, &contents)?;
        trees.db.flush().map_err(io::Error::other)?;
        self.publish(changes, internal);
        Ok(())
    }
}

// === impl StateMachine ===

impl StateMachine {
    /// Opens the state machine over `db` with snapshots in `snapshot_dir`, for a replica that
    /// reads log entry formats up to `reads`. If the newest snapshot is ahead of the applied
    /// state (a crash during an install), installs it again.
    pub fn open(db: &sled::Db, snapshot_dir: &Path, reads: u32) -> io::Result<Self> {
        let trees = SmTrees::open(db).map_err(io::Error::other)?;
        let snapshots = SnapshotDir::open(snapshot_dir)?;
        let current = snapshots.current()?;
        let (applied, _) = trees.applied()?;
        let (changes, _) = broadcast::channel(FEED_CAPACITY);
        let (internal_changes, _) = broadcast::channel(FEED_CAPACITY);
        let shared = Arc::new(SmShared {
            trees: RwLock::new(Some(trees)),
            changes,
            internal_changes,
            snapshots,
            current: Mutex::new(current.clone()),
        });
        if let Some((meta, path)) = current
            && meta.last_log_id > applied
        {
            tracing::warn!(
                snapshot = ?meta.last_log_id,
                applied = ?applied,
                "finishing an interrupted snapshot install"
            );
            shared.install_file(&meta, &SnapshotFile::open(&path)?)?;
        }
        Ok(Self { shared, reads })
    }

    /// The state shared with readers.
    pub fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<u64>>, Membership)> {
        self.shared
            .trees_for_raft()?
            .applied()
            .map_err(|e| sm_read(&e))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<CommandResult>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        if crate::failpoint::returned("raft.apply.crash").is_some() {
            crate::failpoint::crash(
                "raft.apply.crash",
                "between log append and apply (the entries are durable in the log)",
            );
        }
        let trees = self.shared.trees_for_raft()?;
        let mut results = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let (result, mutations, membership) = match entry.payload {
                EntryPayload::Blank => (CommandResult::Done, Vec::new(), None),
                EntryPayload::Normal(cmd) => {
                    entry_format::check_entry(&cmd, log_id.index, self.reads).map_err(|e| {
                        tracing::error!(error = %e, "stopping at a raft log entry this replica cannot read");
                        StorageIOError::apply(log_id, &e)
                    })?;
                    metrics::counter!(
                        "mosaic_raft_entries_applied_total",
                        "format" => format_label(cmd.format())
                    )
                    .increment(1);
                    let (result, muts) = plan(&cmd, log_id.index, &trees)
                        .map_err(|e| StorageIOError::apply(log_id, &e))?;
                    (result, muts, None)
                }
                EntryPayload::Membership(m) => (
                    CommandResult::Done,
                    Vec::new(),
                    Some(StoredMembership::new(Some(log_id), m)),
                ),
            };
            let mut ops = Vec::with_capacity(mutations.len());
            let mut changes = Vec::with_capacity(mutations.len());
            let mut internal = Vec::new();
            let applied_at = Instant::now();
            for m in mutations {
                match m {
                    Mutation::Put(key, r) => {
                        let bytes =
                            serde_json::to_vec(&r.to_universal()).map_err(|e| sm_write(&e))?;
                        ops.push(Op::Put(key.to_bytes(), bytes));
                        changes.push(Change {
                            version: log_id.index,
                            key,
                            op: ChangeOp::Put,
                            applied_at,
                        });
                    }
                    Mutation::Delete(key) => {
                        ops.push(Op::Delete(key.to_bytes()));
                        changes.push(Change {
                            version: log_id.index,
                            key,
                            op: ChangeOp::Delete,
                            applied_at,
                        });
                    }
                    Mutation::PutInternal(k, v) => {
                        internal.push(InternalChange {
                            version: log_id.index,
                            key: k.clone(),
                            op: ChangeOp::Put,
                            applied_at,
                        });
                        ops.push(Op::Internal(k.into_bytes(), v));
                    }
                    Mutation::DeleteInternal(k) => {
                        internal.push(InternalChange {
                            version: log_id.index,
                            key: k.clone(),
                            op: ChangeOp::Delete,
                            applied_at,
                        });
                        ops.push(Op::DeleteInternal(k.into_bytes()));
                    }
                }
            }
            trees
                .commit(&ops, Some(log_id), membership.as_ref())
                .map_err(|e| StorageIOError::apply(log_id, &e))?;
            self.shared.publish(changes, internal);
            results.push(result);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let copy = self
            .shared
            .trees()
            .map_err(|e| e.to_string())
            .and_then(|t| t.copy().map_err(|e| e.to_string()));
        SnapshotBuilder {
            shared: self.shared.clone(),
            copy,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<SnapshotFile>> {
        self.shared
            .snapshots
            .incoming()
            .map(Box::new)
            .map_err(|e| StorageIOError::write_snapshot(None, &e).into())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapMeta,
        snapshot: Box<SnapshotFile>,
    ) -> StorageResult<()> {
        let fail = |e: io::Error| -> StorageError<u64> {
            StorageIOError::write_snapshot(Some(meta.signature()), &e).into()
        };
        // Check the whole file before it becomes the current snapshot.
        let (file_meta, contents) = snapshot.read_all().map_err(fail)?;
        if file_meta.last_log_id != meta.last_log_id {
            self.shared.snapshots.discard(snapshot.path());
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidData,
                "received snapshot file does not match its metadata",
            )));
        }
        // A snapshot of a cluster that writes a format this replica does not read: stop, as on
        // an entry of that format.
        let record = contents
            .internal
            .iter()
            .find(|(k, _)| k.as_slice() == entry_format::RECORD.as_bytes())
            .map(|(_, v)| entry_format::raise_from_record(v));
        if let Some(cmd) = record {
            let index = meta.last_log_id.map(|l| l.index).unwrap_or_default();
            if let Err(e) = entry_format::check_entry(&cmd, index, self.reads) {
                self.shared.snapshots.discard(snapshot.path());
                tracing::error!(error = %e, "stopping at a snapshot of a format this replica cannot read");
                return Err(fail(io::Error::other(e.to_string())));
            }
        }
        let crash_at = crate::failpoint::returned("raft.snapshot.install.crash");
        if crash_at
            .as_ref()
            .is_some_and(|a| a.as_deref() == Some("before"))
        {
            crate::failpoint::crash(
                "raft.snapshot.install.crash",
                "while installing a snapshot, before it becomes the current one",
            );
        }
        // The promoted file is the commit point (see the module doc).
        let (current, path) = self.shared.adopt(snapshot.path(), meta).map_err(fail)?;
        if crash_at.is_some() {
            crate::failpoint::crash(
                "raft.snapshot.install.crash",
                "while installing a snapshot, after it became the current one and before the state was replaced",
            );
        }
        self.shared
            .install_file(&current, &SnapshotFile::open(&path).map_err(fail)?)
            .map_err(fail)?;
        tracing::info!(
            up_to_index = meta.last_log_id.map(|l| l.index).unwrap_or_default(),
            "installed a snapshot received from the leader"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let current = self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match current {
            Some((meta, path)) => {
                let file = SnapshotFile::open(&path)
                    .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(file),
                }))
            }
            None => Ok(None),
        }
    }
}

// === impl SnapshotBuilder ===

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let copy = std::mem::replace(&mut self.copy, Err("snapshot already built".into()))
            .map_err(|e| sm_read(&io::Error::other(e)))?;
        let snapshot_id = match copy.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, unique_suffix()),
            None => format!("0-0-{}", unique_suffix()),
        };
        let meta = SnapMeta {
            last_log_id: copy.last_applied,
            last_membership: copy.membership,
            snapshot_id,
        };
        let fail = |e: io::Error| -> StorageError<u64> {
            StorageIOError::write_snapshot(Some(meta.signature()), &e).into()
        };
        let dir = &self.shared.snapshots;
        let mut w = dir.writer(&meta).map_err(fail)?;
        for (k, v) in &copy.contents.resources {
            w.resource(k, v).map_err(fail)?;
        }
        for (k, v) in &copy.contents.internal {
            w.internal(k, v).map_err(fail)?;
        }
        let part = w.finish().map_err(fail)?;
        // A snapshot installed meanwhile may be newer: then that one is the result.
        let (meta, path) = self.shared.adopt(&part, &meta).map_err(fail)?;
        let file = SnapshotFile::open(&path).map_err(fail)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;
    use crate::store::Command;

    fn entry(index: u64, cmd: Command) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn secret_put(name: &str) -> Command {
        Command::PutInternal {
            key: format!("test/{name}"),
            value: b"v".to_vec(),
            if_absent: false,
        }
    }

    async fn applied(sm: &mut StateMachine) -> u64 {
        sm.applied_state()
            .await
            .unwrap()
            .0
            .map(|l| l.index)
            .unwrap_or_default()
    }

    /// A replica that reads format 1 applies entries up to a group and stops there: the group
    /// is not applied, and the error names the entry and both formats.
    #[tokio::test]
    async fn apply_stops_at_an_entry_newer_than_the_replica_reads() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path().join("raft"))
            .open()
            .unwrap();
        let mut sm = StateMachine::open(&db, &dir.path().join("snaps"), 1).unwrap();
        sm.apply(vec![entry(1, secret_put("a"))]).await.unwrap();
        let group = Command::Group(vec![secret_put("b")]);
        let err = sm
            .apply(vec![entry(2, group.clone())])
            .await
            .expect_err("a format-2 entry on a format-1 replica");
        let text = err.to_string();
        assert!(
            text.contains("entry 2") && text.contains("entry format 2") && text.contains("up to 1"),
            "{text}"
        );
        assert_eq!(applied(&mut sm).await, 1, "nothing of entry 2 applied");
        let trees = sm.shared().trees().unwrap();
        assert!(trees.internal("test/b").unwrap().is_none());

        // The same log on a replica reading format 2 applies, and an entry from a future
        // release (read as `Unreadable`) stops it the same way.
        drop(sm);
        let mut sm = StateMachine::open(&db, &dir.path().join("snaps"), 2).unwrap();
        sm.apply(vec![entry(2, group)]).await.unwrap();
        assert!(trees.internal("test/b").unwrap().is_some());
        let future: Command = serde_json::from_str(r#"[7,{"Rename":{}}]"#).unwrap();
        let err = sm.apply(vec![entry(3, future)]).await.unwrap_err();
        assert!(err.to_string().contains("entry format 7"), "{err}");
        assert_eq!(applied(&mut sm).await, 2);
    }
}
