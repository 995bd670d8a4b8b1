//! The zone store's change feed: one [`Change`] per record written or removed, published after
//! the transaction that made it committed.

use super::StoreKey;

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    /// Created or replaced.
    Put,
    /// Deleted.
    Delete,
}

/// One committed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The record.
    pub key: StoreKey,
    /// Put or delete.
    pub op: ChangeOp,
    /// The record's version after a put (the removed version after a delete).
    pub version: u64,
}
