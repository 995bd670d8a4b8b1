//! `StoreError`: why the zone store could not read or write.

/// A failure of the zone store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened.
    #[error(
        "could not open the zone store in {path:?}: {reason}; check store.data_dir and its permissions (is another mosaic-zone using it?)"
    )]
    Open {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        reason: String,
    },
    /// sled failed.
    #[error("zone store I/O failed: {0}")]
    Storage(String),
    /// A stored record cannot be read.
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt {
        /// The record.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A write of a kind the caller does not own (e.g. a Mesh written locally).
    #[error("{kind} records are {owner}-owned and cannot be written here")]
    WrongOwner {
        /// The kind.
        kind: String,
        /// `global` or `zone`.
        owner: &'static str,
    },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Storage(e.to_string())
    }
}
