//! `LogStore`: the raft log and vote in sled.
//!
//! Tree `log`: big-endian u64 index → JSON `Entry`. Tree `meta`: `vote`, `committed`,
//! `last_purged` (JSON log ids). Appends and votes are fsynced (`flush_async`, which syncs the
//! whole database) before openraft is told they are done: an acknowledged entry survives a crash.

use std::{fmt::Debug, io, ops::Bound, ops::RangeBounds};

use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
    storage::{LogFlushed, RaftLogStorage},
};
use serde::{Serialize, de::DeserializeOwned};

use super::TypeConfig;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";
/// The state machine's tree and key of its last applied log id (see [`super::state_machine`]).
const SM_META: &str = "sm_meta";
const SM_LAST_APPLIED: &[u8] = b"last_applied";

type StorageResult<T> = Result<T, StorageError<u64>>;

/// The raft log store (cheap to clone: sled handles are shared).
#[derive(Clone, Debug)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn read_err(e: &(impl std::error::Error + 'static)) -> StorageError<u64> {
    StorageIOError::read_logs(e).into()
}

fn write_err(e: &(impl std::error::Error + 'static)) -> StorageError<u64> {
    StorageIOError::write_logs(e).into()
}

fn key_bound(b: Bound<&u64>) -> Bound<[u8; 8]> {
    match b {
        Bound::Included(i) => Bound::Included(index_key(*i)),
        Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

// === impl LogStore ===

impl LogStore {
    /// Opens the `log` and `meta` trees of `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            db: db.clone(),
            log: db.open_tree("log")?,
            meta: db.open_tree("meta")?,
        })
    }

    /// The state machine's last applied log id (tree `sm_meta`, key `last_applied`, written by
    /// [`super::state_machine`] in the same database).
    fn applied(&self) -> Result<Option<LogId<u64>>, io::Error> {
        let tree = self.db.open_tree(SM_META).map_err(io::Error::other)?;
        match tree.get(SM_LAST_APPLIED).map_err(io::Error::other)? {
            Some(v) => {
                Ok(serde_json::from_slice::<Option<LogId<u64>>>(&v).map_err(io::Error::other)?)
            }
            None => Ok(None),
        }
    }

    /// How many entries the log holds (bounded by snapshots and purging).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, io::Error> {
        match self.meta.get(key).map_err(io::Error::other)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(io::Error::other),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), io::Error> {
        let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
        self.meta.insert(key, bytes).map_err(io::Error::other)?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), io::Error> {
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(io::Error::other)
    }

    fn decode(bytes: &[u8]) -> StorageResult<Entry<TypeConfig>> {
        serde_json::from_slice(bytes).map_err(|e| read_err(&e))
    }

    fn last_entry_id(&self) -> StorageResult<Option<LogId<u64>>> {
        match self.log.last().map_err(|e| read_err(&e))? {
            Some((_, v)) => Ok(Some(Self::decode(&v)?.log_id)),
            None => Ok(None),
        }
    }

    /// Removes the entries whose keys fall in `range`.
    fn remove_range(&self, range: (Bound<[u8; 8]>, Bound<[u8; 8]>)) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(range) {
            let (k, _) = item.map_err(|e| read_err(&e))?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(|e| write_err(&e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let bounds = (key_bound(range.start_bound()), key_bound(range.end_bound()));
        let mut out = Vec::new();
        for item in self.log.range(bounds) {
            let (_, v) = item.map_err(|e| read_err(&e))?;
            out.push(Self::decode(&v)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<u64>> =
            self.get_meta(LAST_PURGED).map_err(|e| read_err(&e))?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StorageResult<()> {
        let r: Result<(), io::Error> = async {
            self.put_meta(VOTE, vote)?;
            self.flush().await
        }
        .await;
        r.map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<u64>>> {
        self.get_meta(VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        // Not fsynced on its own: it is an optimisation (re-applying on restart), not a promise.
        self.put_meta(COMMITTED, &committed)
            .map_err(|e| write_err(&e))
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        Ok(self
            .get_meta::<Option<LogId<u64>>>(COMMITTED)
            .map_err(|e| read_err(&e))?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| write_err(&e))?;
            batch.insert(&index_key(entry.log_id.index), bytes);
        }
        if let Some(arg) = crate::failpoint::returned("raft.log.fsync") {
            let err = crate::failpoint::injected_io_error("raft.log.fsync", arg);
            let storage = write_err(&err);
            callback.log_io_completed(Err(err));
            return Err(storage);
        }
        if let Err(e) = self.log.apply_batch(batch) {
            let err = io::Error::other(e);
            let storage = write_err(&err);
            callback.log_io_completed(Err(err));
            return Err(storage);
        }
        // Durable before acknowledged: only now may openraft count this replica's copy.
        match self.flush().await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let storage = write_err(&e);
                callback.log_io_completed(Err(e));
                Err(storage)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        self.remove_range((Bound::Included(index_key(log_id.index)), Bound::Unbounded))?;
        self.flush().await.map_err(|e| write_err(&e))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        // openraft 0.9 asks to purge up to a snapshot received from the leader while the state
        // machine is still installing it (both are in flight at once). A crash in between would
        // leave the log purged past what the state machine holds, which openraft refuses at the
        // next start ("purge_upto <= committed"): the replica could never start again. So purge
        // only what the state machine has applied (its `last_applied`, in this database and made
        // durable by this purge's flush together with it); a later purge takes the rest.
        let applied = self.applied().map_err(|e| read_err(&e))?;
        let log_id = match applied {
            Some(applied) if applied.index < log_id.index => applied,
            Some(_) => log_id,
            None => return Ok(()),
        };
        if self
            .get_meta::<LogId<u64>>(LAST_PURGED)
            .map_err(|e| read_err(&e))?
            .is_some_and(|purged| purged.index >= log_id.index)
        {
            return Ok(());
        }
        // Record the purge point first: sled recovers a prefix of the operations, so after a
        // crash either nothing is purged or `last_purged` already covers what is gone.
        self.put_meta(LAST_PURGED, &log_id)
            .map_err(|e| write_err(&e))?;
        self.remove_range((Bound::Unbounded, Bound::Included(index_key(log_id.index))))?;
        self.flush().await.map_err(|e| write_err(&e))
    }
}
