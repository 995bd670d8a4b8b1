//! `Command`: a write as it travels through the raft log, and `CommandResult`, what applying it
//! did. Commands carry the proposer's clock so every replica applies them identically.

use mosaic_core::resource::Resource;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::ResourceKey;

/// A write. `Debug` never prints internal record values (they hold signing keys).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
        /// Refuse (conflict) unless the stored version is this one (`If-Match`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_version: Option<u64>,
    },
    /// Write an internal record (signing keys, ...), optionally only if absent. Records whose key
    /// starts with [`mesh_internal_prefix`] belong to that mesh and go when it is deleted.
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
    /// Independent commands of concurrent writers sharing one raft entry (group commit): each is
    /// applied or refused on its own, in order, as if it had its own entry.
    Group(Vec<Command>),
    /// Does nothing; used to commit an entry of the current term.
    Noop,
}

/// The key prefix of internal records that belong to `mesh` (`mesh/<mesh>/`).
pub fn mesh_internal_prefix(mesh: &str) -> String {
    format!("mesh/{mesh}/")
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
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The results of a group's commands, in order.
    Group(Vec<CommandResult>),
    /// Refused; nothing changed.
    Refused(Refusal),
}

// === impl Command ===

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Put {
                resource,
                now,
                expect_version,
            } => {
                let kind = resource.get("type").and_then(|t| t.as_str()).unwrap_or("?");
                let name = resource.get("name").and_then(|t| t.as_str()).unwrap_or("?");
                f.debug_struct("Put")
                    .field("type", &kind)
                    .field("name", &name)
                    .field("now", now)
                    .field("expect_version", expect_version)
                    .finish()
            }
            Command::Delete {
                key,
                force,
                expect_version,
            } => f
                .debug_struct("Delete")
                .field("key", key)
                .field("force", force)
                .field("expect_version", expect_version)
                .finish(),
            Command::PutInternal { key, if_absent, .. } => f
                .debug_struct("PutInternal")
                .field("key", key)
                .field("value", &"<redacted>")
                .field("if_absent", if_absent)
                .finish(),
            Command::Batch(cmds) => f.debug_tuple("Batch").field(cmds).finish(),
            Command::Group(cmds) => f.debug_tuple("Group").field(cmds).finish(),
            Command::Noop => f.write_str("Noop"),
        }
    }
}

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
        Command::Delete {
            key,
            force,
            expect_version: None,
        }
    }
}

impl std::fmt::Debug for CommandResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandResult::Put { version, created } => f
                .debug_struct("Put")
                .field("version", version)
                .field("created", created)
                .finish(),
            CommandResult::Deleted { cascaded } => f
                .debug_struct("Deleted")
                .field("cascaded", cascaded)
                .finish(),
            CommandResult::Internal { .. } => f.write_str("Internal { value: <redacted> }"),
            CommandResult::Done => f.write_str("Done"),
            CommandResult::Batch(r) => f.debug_tuple("Batch").field(r).finish(),
            CommandResult::Group(r) => f.debug_tuple("Group").field(r).finish(),
            CommandResult::Refused(r) => f.debug_tuple("Refused").field(r).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_internal_values() {
        let cmd = Command::PutInternal {
            key: "tokens/signing-key/zone".into(),
            value: b"PRIVATE-KEY-BYTES".to_vec(),
            if_absent: true,
        };
        let text = format!(
            "{cmd:?} {:?}",
            CommandResult::Internal {
                value: b"PRIVATE-KEY-BYTES".to_vec()
            }
        );
        assert!(
            !text.contains("PRIVATE") && !text.contains("80, 82"),
            "{text}"
        );
        assert!(text.contains("tokens/signing-key/zone"));
    }
}
