//! `Command`: a write as it travels through the raft log, and `CommandResult`, what applying it
//! did. Commands carry the proposer's clock so every replica applies them identically.
//!
//! Entry formats. Each command needs a log entry format to be written in, the lowest that can
//! express it ([`Command::format`]):
//! - **format 1**: the bare command, `{"Put": {...}}`, as every release wrote before formats
//!   existed: `Put`, `Delete`, `PutInternal`, `Batch`, `Noop`;
//! - **format 2**: `[2, command]`, which adds [`Command::Group`] (group commit).
//!
//! A later format is written `[n, command]` too. Reading an entry of a format newer than
//! [`ENTRY_FORMAT`] does not fail: it becomes [`Command::Unreadable`], kept byte for byte (a
//! replica may hold and replicate it) and never applied: the state machine stops on it, naming
//! both formats. The cluster writes a format only once every member reads it
//! (`crate::raft::entry_format`).

use mosaic_core::resource::Resource;
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, IntoDeserializer, MapAccess, SeqAccess, Visitor},
    ser::SerializeTuple,
};
use time::OffsetDateTime;

use super::keys::ResourceKey;

/// The newest log entry format this build reads and writes.
pub const ENTRY_FORMAT: u32 = 2;

/// A write. `Debug` never prints internal record values (they hold signing keys).
///
/// Serialized as its entry format says (see the module doc), not by a derive.
#[derive(Clone, PartialEq)]
pub enum Command {
    /// Create or replace a resource.
    Put {
        /// The resource in Universal form (meta times/version are ignored and set on apply).
        resource: serde_json::Value,
        /// The proposer's clock: `creationTime` of a new resource, `modificationTime` of any.
        now: OffsetDateTime,
        /// Refuse (conflict) unless the stored version is this one (`0`: unless absent).
        expect_version: Option<u64>,
    },
    /// Delete a resource. Deleting a Mesh deletes its mesh-scoped resources too.
    Delete {
        /// What to delete.
        key: ResourceKey,
        /// Delete a Mesh even though zones report data planes in it.
        force: bool,
        /// Refuse (conflict) unless the stored version is this one (`If-Match`).
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
    /// An entry of a format newer than this build reads ([`ENTRY_FORMAT`]), kept as it came so
    /// that it can be stored and replicated unchanged; applying it is refused.
    Unreadable {
        /// The entry's format.
        format: u32,
        /// The command as written.
        command: serde_json::Value,
    },
}

/// The serialized shape of a command inside its entry (externally tagged, as the derive of the
/// releases before entry formats wrote it).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Command")]
enum CommandRepr {
    Put {
        resource: serde_json::Value,
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_version: Option<u64>,
    },
    Delete {
        key: ResourceKey,
        #[serde(default)]
        force: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_version: Option<u64>,
    },
    PutInternal {
        key: String,
        value: Vec<u8>,
        if_absent: bool,
    },
    Batch(Vec<Command>),
    Group(Vec<Command>),
    Noop,
    #[serde(skip)]
    #[allow(dead_code)] // written by hand, never by the derive
    Unreadable {
        format: u32,
        command: serde_json::Value,
    },
}

/// `command` serialized in its bare shape.
struct Bare<'a>(&'a Command);

impl Serialize for Bare<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CommandRepr::serialize(self.0, s)
    }
}

/// A command read in its bare shape.
struct ReadBare(Command);

impl<'de> Deserialize<'de> for ReadBare {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CommandRepr::deserialize(d).map(ReadBare)
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Command::Unreadable { format, command } => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(format)?;
                t.serialize_element(command)?;
                t.end()
            }
            cmd => match cmd.format() {
                1 => CommandRepr::serialize(cmd, s),
                n => {
                    let mut t = s.serialize_tuple(2)?;
                    t.serialize_element(&n)?;
                    t.serialize_element(&Bare(cmd))?;
                    t.end()
                }
            },
        }
    }
}

/// Reads a bare command (a map, or a string for `Noop`) or `[format, command]`.
struct CommandVisitor;

impl<'de> Visitor<'de> for CommandVisitor {
    type Value = Command;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a raft command: a bare command (format 1) or [format, command]")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
        CommandRepr::deserialize(v.into_deserializer())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Command, A::Error> {
        CommandRepr::deserialize(de::value::MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
        let format: u32 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let cmd = if format > ENTRY_FORMAT {
            let command: serde_json::Value = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(1, &self))?;
            Command::Unreadable { format, command }
        } else {
            let ReadBare(cmd) = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(1, &self))?;
            cmd
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(cmd)
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CommandVisitor)
    }
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
            Command::Unreadable { format, .. } => f
                .debug_struct("Unreadable")
                .field("format", format)
                .finish_non_exhaustive(),
        }
    }
}

impl Command {
    /// The lowest log entry format that can express this command (see the module doc).
    pub fn format(&self) -> u32 {
        match self {
            Command::Put { .. }
            | Command::Delete { .. }
            | Command::PutInternal { .. }
            | Command::Noop => 1,
            Command::Batch(cmds) => cmds.iter().map(Command::format).max().unwrap_or(1),
            Command::Group(cmds) => cmds.iter().map(Command::format).fold(2, u32::max),
            Command::Unreadable { format, .. } => *format,
        }
    }

    /// An upper bound of this command's encoded size in a log entry, computed without encoding
    /// it (group commit bounds a group's size with it on every write).
    pub fn encoded_len_bound(&self) -> usize {
        // Field names, punctuation and the RFC 3339 time of a variant, generously.
        const FRAME: usize = 128;
        match self {
            Command::Put { resource, .. } => FRAME + json_len_bound(resource),
            Command::Delete { key, .. } => {
                FRAME
                    + json_str_len(key.kind.as_str())
                    + key.mesh.as_deref().map_or(4, json_str_len)
                    + json_str_len(&key.name)
            }
            // Bytes are a JSON array of numbers: at most "255," each.
            Command::PutInternal { key, value, .. } => FRAME + json_str_len(key) + 4 * value.len(),
            Command::Batch(cmds) | Command::Group(cmds) => {
                FRAME
                    + cmds
                        .iter()
                        .map(|c| c.encoded_len_bound() + 1)
                        .sum::<usize>()
            }
            Command::Noop => FRAME,
            Command::Unreadable { command, .. } => FRAME + json_len_bound(command),
        }
    }

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

/// The length of `s` as a JSON string (quotes and escapes included).
fn json_str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// An upper bound of `v`'s compact JSON length.
fn json_len_bound(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(_) => 5,
        // The longest f64, i64 or u64 text.
        Value::Number(_) => 24,
        Value::String(s) => json_str_len(s),
        Value::Array(items) => 2 + items.iter().map(|i| json_len_bound(i) + 1).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(k, v)| json_str_len(k) + 2 + json_len_bound(v))
                .sum::<usize>()
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

    fn put() -> Command {
        Command::Put {
            resource: serde_json::json!({"type": "Mesh", "name": "default"}),
            now: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            expect_version: Some(7),
        }
    }

    fn round_trip(cmd: &Command) -> (String, Command) {
        let text = serde_json::to_string(cmd).unwrap();
        let back: Command = serde_json::from_str(&text).unwrap();
        (text, back)
    }

    #[test]
    fn format_1_commands_are_written_bare_as_releases_before_formats_wrote_them() {
        for cmd in [
            put(),
            Command::delete(ResourceKey::mesh("default"), true),
            Command::PutInternal {
                key: "k".into(),
                value: vec![1, 2],
                if_absent: false,
            },
            Command::Batch(vec![put(), Command::Noop]),
            Command::Noop,
        ] {
            assert_eq!(cmd.format(), 1, "{cmd:?}");
            let (text, back) = round_trip(&cmd);
            assert!(!text.starts_with('['), "{text}");
            assert_eq!(back, cmd);
        }
        // The derive of those releases wrote exactly this; it still reads.
        let old = r#"{"Batch":[{"Put":{"resource":{"name":"default","type":"Mesh"},"now":"2023-11-14T22:13:20Z","expect_version":7}},"Noop",{"Delete":{"key":{"rtype":"Mesh","mesh":null,"name":"default"},"force":false}}]}"#;
        let cmd: Command = serde_json::from_str(old).unwrap();
        assert_eq!(
            cmd,
            Command::Batch(vec![
                put(),
                Command::Noop,
                Command::delete(ResourceKey::mesh("default"), false)
            ])
        );
        assert_eq!(serde_json::to_string(&cmd).unwrap(), old);
    }

    #[test]
    fn a_group_is_format_2_and_names_it() {
        let group = Command::Group(vec![put(), Command::Noop]);
        assert_eq!(group.format(), 2);
        let (text, back) = round_trip(&group);
        assert!(text.starts_with(r#"[2,{"Group":["#), "{text}");
        assert_eq!(back, group);
        // A batch holding a group needs format 2 as well.
        let batch = Command::Batch(vec![group.clone()]);
        assert_eq!(batch.format(), 2);
        assert_eq!(round_trip(&batch).1, batch);
        // Logs written by the release that introduced groups hold them bare; they still read.
        let bare = r#"{"Group":["Noop"]}"#;
        assert_eq!(
            serde_json::from_str::<Command>(bare).unwrap(),
            Command::Group(vec![Command::Noop])
        );
    }

    #[test]
    fn an_entry_of_a_newer_format_is_kept_as_it_came_and_not_read() {
        let text = r#"[9,{"Rename":{"from":"a","to":"b"}}]"#;
        let cmd: Command = serde_json::from_str(text).unwrap();
        assert_eq!(cmd.format(), 9);
        assert!(matches!(cmd, Command::Unreadable { format: 9, .. }));
        // Stored and replicated unchanged.
        assert_eq!(serde_json::to_string(&cmd).unwrap(), text);
        assert_eq!(
            format!("{cmd:?}"),
            "Unreadable { format: 9, .. }",
            "its contents are not printed (they may hold keys)"
        );
    }

    #[test]
    fn the_size_bound_is_never_below_the_encoding() {
        let awkward = serde_json::json!({
            "type": "Secret",
            "name": "quote\"back\\slash\u{1}ctl",
            "data": "x".repeat(5000),
            "n": [u64::MAX, -1, 1.5e300, null, true],
            "nested": {"deep": [{"a": "b"}, []]},
        });
        let cmds = [
            put(),
            Command::Put {
                resource: awkward.clone(),
                now: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
                expect_version: Some(u64::MAX),
            },
            Command::delete(ResourceKey::mesh("a\"b"), true),
            Command::PutInternal {
                key: "k".into(),
                value: vec![255; 1000],
                if_absent: true,
            },
            Command::Noop,
            Command::Batch(vec![put(), Command::Noop]),
            Command::Group(vec![put(), Command::Noop, Command::Batch(vec![put()])]),
            Command::Unreadable {
                format: 9,
                command: awkward,
            },
        ];
        for cmd in cmds {
            let len = serde_json::to_vec(&cmd).unwrap().len();
            let bound = cmd.encoded_len_bound();
            assert!(bound >= len, "{cmd:?}: bound {bound} < {len}");
            assert!(
                bound <= 4 * len + 512,
                "{cmd:?}: bound {bound} far above {len}"
            );
        }
    }

    #[test]
    fn malformed_entries_are_errors_not_commands() {
        for text in [
            "[]",
            "[2]",
            r#"[2,"Noop",3]"#,
            r#"["2","Noop"]"#,
            r#"[1,{"Nope":{}}]"#,
            r#"{"Nope":{}}"#,
            r#""Nope""#,
            "17",
            "null",
        ] {
            assert!(
                serde_json::from_str::<Command>(text).is_err(),
                "{text} should not read"
            );
        }
    }
}
