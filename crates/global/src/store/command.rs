//! `Command`: a write as it travels through the raft log, and `CommandResult`, what applying it
//! did. Commands carry the proposer's clock so every replica applies them identically.

use mosaic_common::resource::Resource;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::ResourceKey;

/// A write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Create or replace a resource.
    Put {
        /// The resource in Universal form (meta times/version are ignored and set on apply).
        resource: serde_json::Value,
        /// The proposer's clock: `creationTime` of a new resource, `modificationTime` of any.
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
        /// Refuse (conflict) unless the stored version is this one (`0`: unless absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_version: Option<u64>,
    },
    /// Delete a resource. Deleting a Mesh deletes its mesh-scoped resources too.
    Delete {
        /// What to delete.
        key: ResourceKey,
        /// Delete a Mesh even though zones report data planes in it.
        #[serde(default)]
        force: bool,
    },
    /// Write an internal record (signing keys, ...), optionally only if absent.
    PutInternal {
        /// Record key.
        key: String,
        /// Record value.
        value: Vec<u8>,
        /// Keep an existing value instead (first writer wins, e.g. key generation).
        if_absent: bool,
    },
    /// Several commands applied in order, all or nothing: if one is refused, none applies.
    Batch(Vec<Command>),
    /// Does nothing; used to commit an entry of the current term.
    Noop,
}

/// Why a command was refused (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The resource (or the mesh it belongs to) does not exist.
    NotFound(String),
    /// State prevents it: version mismatch, a Secret in use, a Mesh with data planes.
    Conflict(String),
    /// The resource itself is malformed.
    Invalid(String),
}

/// What applying a command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// A resource was written.
    Put {
        /// Its new version (the raft index of the write).
        version: u64,
        /// Whether it did not exist before.
        created: bool,
    },
    /// A resource (and, for a Mesh, `cascaded` mesh-scoped resources) was deleted.
    Deleted {
        /// How many mesh-scoped resources went with a deleted Mesh.
        cascaded: usize,
    },
    /// An internal record; `value` is what is stored after the command.
    Internal {
        /// The stored value.
        value: Vec<u8>,
    },
    /// Nothing to report.
    Done,
    /// The results of a batch's commands, in order.
    Batch(Vec<CommandResult>),
    /// Refused; nothing changed.
    Refused(Refusal),
}

// === impl Command ===

impl Command {
    /// A put of `resource` at `now`.
    pub fn put(resource: &Resource, now: OffsetDateTime) -> Self {
        Command::Put {
            resource: resource.to_universal(),
            now,
            expect_version: None,
        }
    }

    /// A delete.
    pub fn delete(key: ResourceKey, force: bool) -> Self {
        Command::Delete { key, force }
    }
}
