//! `Change<K>`: one committed change to a stored record, as a store's change feed publishes it.
//! The global's state machine publishes `Change<ResourceKey>` (resources) and `Change<String>`
//! (internal records); the zone store `Change<KdsKey>`.

use std::time::Instant;

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    /// Created or replaced.
    Put,
    /// Deleted.
    Delete,
}

/// One committed change to the record keyed `key`, in the order the store committed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<K> {
    /// The record.
    pub key: K,
    /// Put or delete.
    pub op: ChangeOp,
    /// The version the change is stamped with. The global stamps the raft index that made the
    /// change (a put's new resource version; a snapshot's last index for what a snapshot install
    /// changed); the zone the record's version after a put, the removed version after a delete.
    pub version: u64,
    /// When this store applied it (for propagation measurements: commit → zone ACK).
    pub applied_at: Instant,
}
