//! The resource store: what a write is (a [`Command`] carried through raft), how it changes state
//! ([`apply::plan`], deterministic on every replica), and the [`ResourceStore`] trait the HTTP API
//! and KDS use, with the change feed ([`Change`], [`InternalChange`]) KDS sessions follow.
//!
//! Module map:
//! - [`keys`]: `ResourceKey` and its byte encoding (`Mesh/-/default`, `Secret/default/token-1`).
//! - [`command`]: `Command` (raft log payload) and `CommandResult`.
//! - [`apply`]: `plan()`, from a command and the current state to a result and mutations.
//! - [`secrets`]: `StoreSecrets`, a `SecretSource` over a store's mesh Secrets.

pub mod apply;
pub mod command;
pub mod keys;
pub mod secrets;

use mosaic_core::resource::{Resource, ResourceType};
use tokio::sync::broadcast;

pub use apply::{Mutation, StateView, plan};
pub use command::{Command, CommandResult, Refusal, mesh_internal_prefix};
pub use keys::ResourceKey;
pub use secrets::StoreSecrets;

pub use mosaic_core::resource::change::ChangeOp;

/// One applied change to a resource, in log order (`version`: the raft index that made it, a
/// snapshot's last index for changes a snapshot install made).
pub type Change = mosaic_core::resource::change::Change<ResourceKey>;

/// One applied change to an internal record (signing keys, ...), in log order. Carries only the
/// record's key, never its value.
pub type InternalChange = mosaic_core::resource::change::Change<String>;

/// A store failure (not a refusal: refusals are [`CommandResult::Refused`]).
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// No leader is known, or it cannot be reached; the write was not applied.
    #[error(
        "no raft leader is available ({0}): the write was not applied; retry when the cluster has a majority"
    )]
    Unavailable(String),
    /// The local disk store failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored bytes could not be decoded.
    #[error("stored resource {key} is corrupt: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A log entry is written in a format this replica cannot read; nothing of it was applied.
    #[error(
        "raft log entry {index} is written in entry format {format}, but this replica reads entry formats up to {reads}: nothing of it was applied; run a release of mosaic-global that reads entry format {format} on this replica (a cluster writes a format only once every member reported reading it, so this replica was downgraded or replaced by an older release)"
    )]
    UnreadableEntry {
        /// The entry's log index.
        index: u64,
        /// The entry's format.
        format: u32,
        /// The newest format this replica reads.
        reads: u32,
    },
}

/// Reads and writes resources. Writes return once committed by a majority and applied locally.
#[async_trait::async_trait]
pub trait ResourceStore: Send + Sync {
    /// Proposes `cmd` (through the leader) and returns its result once committed and applied here.
    async fn write(&self, cmd: Command) -> Result<CommandResult, StoreError>;

    /// Waits until this replica has applied everything committed before the call
    /// (a linearizable read barrier).
    async fn read_barrier(&self) -> Result<(), StoreError>;

    /// One resource from local state.
    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError>;

    /// Every resource of `rtype` (in `mesh`, when given) from local state, sorted by key.
    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError>;

    /// An internal record (signing keys, ...).
    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every resource change applied on this replica from now on, in log order. A receiver that
    /// falls more than a few thousand changes behind gets `Lagged` and must re-read the state.
    fn subscribe(&self) -> broadcast::Receiver<Change>;

    /// Every internal-record change (keys only) applied on this replica from now on, in log
    /// order; `Lagged` as for [`ResourceStore::subscribe`].
    fn subscribe_internal(&self) -> broadcast::Receiver<InternalChange>;

    /// This replica's id (the raft node id), as KDS names it in ZoneInsight subscriptions.
    fn node_id(&self) -> u64;
}
