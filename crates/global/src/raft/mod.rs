//! The replicated store: openraft 0.9 (storage v2) over sled, with a gRPC transport.
//!
//! One sled database per replica lives at `<data_dir>/raft`; snapshot files live in
//! `<data_dir>/raft-snapshots`. A write is a [`Command`] proposed on the leader (a follower
//! forwards it), committed once a majority has fsynced it, then applied on every replica with
//! [`crate::store::plan`].
//!
//! Module map:
//! - [`log_store`]: the raft log and vote in sled (`log`, `meta` trees), fsynced before acknowledging.
//! - [`state_machine`]: resources and internal records in sled, applied atomically with the last
//!   applied log id; the change feeds (resources, internal-record keys); snapshot build and install.
//! - [`snapshot`]: the snapshot file format and the files in the snapshot directory.
//! - [`entry_format`]: which log entry format the cluster writes; the leader raises it once every
//!   member reads the newer one, and a replica stops on an entry it cannot read.
//! - [`format_upgrade`]: the leader's loop that probes the members' formats and raises the
//!   cluster's.
//! - [`group_commit`]: [`group_commit::GroupCommit`]: concurrent writes share raft entries (one
//!   fsync for many writes).
//! - [`network`]: the client side of the raft transport (a tonic channel per peer).
//! - [`membership`]: online membership change (learner → voter, removal, forwarding to the
//!   leader) and the join gate that keeps an empty-disk replica from voting until it has joined.
//! - [`service`]: the server side of the raft transport, including `Forward` and `ReadIndex`.
//! - [`tls`]: mutual TLS on the raft port: the cluster CA, node certificates naming node ids,
//!   the member check on every RPC, and where the material comes from.
//! - [`store_impl`]: [`RaftStore`], the `ResourceStore` the API and KDS use.
//! - [`node`]: [`RaftNode`]: opening the disk, bootstrapping the cluster, serving, shutting down.

// openraft's trait signatures fix the (large) error types returned throughout this module.
#![allow(clippy::result_large_err)]

pub mod entry_format;
pub mod format_upgrade;
pub mod group_commit;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod node;
pub mod service;
pub mod snapshot;
pub mod state_machine;
pub mod store_impl;
pub mod tls;

use openraft::BasicNode;

use crate::store::{Command, CommandResult};

pub use membership::{MemberOp, MemberRole, MemberView, MembersView, Membership, MembershipError};
pub use node::{RaftMetrics, RaftNode, RaftSettings, StorageStats};
pub use snapshot::SnapshotFile;
pub use store_impl::RaftStore;
pub use tls::{RaftTls, RaftTlsError, RaftTransport};

openraft::declare_raft_types!(
    /// Mosaic's openraft type configuration: log entries carry [`Command`]s, applying one yields a
    /// [`CommandResult`]; nodes are `u64` ids with their raft address; snapshots are files.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The openraft handle for Mosaic's types.
pub type Raft = openraft::Raft<TypeConfig>;

/// A failure to start, run or stop a raft node.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// The settings are inconsistent.
    #[error("invalid raft settings: {0}")]
    Config(String),
    /// The sled database could not be opened or used.
    #[error("raft storage at {path}: {reason}")]
    Storage {
        /// The database directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The raft listener could not be bound.
    #[error(
        "cannot listen for raft peers on {addr}: {source}; is another replica using that port?"
    )]
    Bind {
        /// The address.
        addr: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// openraft refused or failed.
    #[error("raft: {0}")]
    Raft(String),
    /// The cluster writes a log entry format this replica does not read.
    #[error(transparent)]
    EntryFormat(#[from] entry_format::TooOld),
}
