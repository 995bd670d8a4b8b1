//! Which log entry format the cluster writes, and raising it once every member reads a newer one.
//!
//! A replica reads the entry formats up to [`ENTRY_FORMAT`] (see [`crate::store::command`]) and
//! says so in every `Probe` answer (`entry_format`; a release from before formats answers 0,
//! which means 1). The cluster's format is an internal record, [`RECORD`], committed through the
//! log like any write, so every replica and every later leader agrees on it; with no record the
//! cluster writes format 1. The leader probes every member (voters and learners) every second
//! ([`super::format_upgrade`]); once all of them answer with a format newer than the cluster's,
//! it commits that one. From then on group commit may write [`Command::Group`].
//! The record only goes up: a rolling upgrade raises it once the last replica runs the new
//! release; a replica that is then downgraded stops, naming both formats, instead of
//! misapplying an entry:
//! - at start, when the applied record is newer than what it reads ([`check_start`]);
//! - at apply, on an entry (or a record) newer than what it reads ([`check_entry`]).
//!
//! Test builds can make a replica read only older formats, as an older release would, with the
//! failpoint `raft.entry_format.readable` (`return(1)`).

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use crate::store::{Command, StateView, StoreError, command::ENTRY_FORMAT};

/// The internal record holding the format the cluster writes (decimal text).
pub const RECORD: &str = "raft/entry-format";

/// The newest format this replica reads: [`ENTRY_FORMAT`], or in a test build what the failpoint
/// `raft.entry_format.readable` returns.
pub fn readable() -> u32 {
    crate::failpoint::returned("raft.entry_format.readable")
        .flatten()
        .and_then(|n| n.trim().parse::<u32>().ok())
        .map_or(ENTRY_FORMAT, |n| n.clamp(1, ENTRY_FORMAT))
}

/// The format a `Probe` answer names (0, from a release before formats, is 1).
pub fn from_probe(entry_format: u32) -> u32 {
    entry_format.max(1)
}

/// The format a [`RECORD`] value names (none: 1; an unparsable value is treated as the newest
/// format there could be, so a replica stops rather than guess).
fn parse_record(value: Option<&[u8]>) -> u32 {
    match value {
        None => 1,
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(u32::MAX),
    }
}

/// The format the cluster writes, as applied in `view`.
pub fn cluster_format(view: &dyn StateView) -> Result<u32, StoreError> {
    Ok(parse_record(view.internal(RECORD)?.as_deref()))
}

/// The command that raises the cluster's format to `format`.
pub fn raise(format: u32) -> Command {
    raise_from_record(format.to_string().as_bytes())
}

/// The write of [`RECORD`] that would leave `value` in it (for checking a snapshot's record as
/// an entry).
pub fn raise_from_record(value: &[u8]) -> Command {
    Command::PutInternal {
        key: RECORD.to_string(),
        value: value.to_vec(),
        if_absent: false,
    }
}

/// The format a replica must read to apply `cmd`: its own ([`Command::format`]), or for a write
/// of [`RECORD`] the format it raises the cluster to.
pub fn required(cmd: &Command) -> u32 {
    match cmd {
        Command::PutInternal { key, value, .. } if key == RECORD => {
            parse_record(Some(value)).max(cmd.format())
        }
        Command::Group(cmds) | Command::Batch(cmds) => {
            cmds.iter().map(required).fold(cmd.format(), u32::max)
        }
        _ => cmd.format(),
    }
}

/// Refuses to apply `cmd` (at log `index`) on a replica that reads formats up to `reads`.
pub fn check_entry(cmd: &Command, index: u64, reads: u32) -> Result<(), StoreError> {
    let format = required(cmd);
    if format > reads {
        return Err(StoreError::UnreadableEntry {
            index,
            format,
            reads,
        });
    }
    Ok(())
}

/// Why a replica does not start: the cluster already writes a format it does not read.
#[derive(Debug, thiserror::Error)]
#[error(
    "this replica reads raft log entry formats up to {reads}, but its cluster already writes format {writes} (every member read it when it was raised): run a release of mosaic-global that reads entry format {writes}; a cluster's entry format never goes back down"
)]
pub struct TooOld {
    /// The newest format this replica reads.
    pub reads: u32,
    /// The format the cluster writes.
    pub writes: u32,
}

/// Checks, before a replica starts, that it reads the format its cluster writes: `Ok(Err)`
/// when it does not.
pub fn check_start(view: &dyn StateView, reads: u32) -> Result<Result<(), TooOld>, StoreError> {
    let writes = cluster_format(view)?;
    Ok(if writes > reads {
        Err(TooOld { reads, writes })
    } else {
        Ok(())
    })
}

/// What one replica knows about formats: its own, the cluster's, and (on the leader) what each
/// member said it reads.
pub struct EntryFormats {
    reads: u32,
    state: Box<dyn Fn() -> Result<u32, StoreError> + Send + Sync>,
    members: Mutex<BTreeMap<u64, u32>>,
}

impl std::fmt::Debug for EntryFormats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryFormats")
            .field("reads", &self.reads)
            .field("members", &self.members_read())
            .finish_non_exhaustive()
    }
}

impl EntryFormats {
    /// A replica that reads formats up to `reads`, whose applied cluster format `state` reads.
    pub fn new(
        reads: u32,
        state: impl Fn() -> Result<u32, StoreError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            reads,
            state: Box::new(state),
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The newest format this replica reads.
    pub fn reads(&self) -> u32 {
        self.reads
    }

    /// The format the cluster writes, as applied here (1 if it cannot be read).
    pub fn cluster(&self) -> u32 {
        (self.state)().unwrap_or(1)
    }

    /// The format this replica writes entries in when it leads: the cluster's, never newer than
    /// its own.
    pub fn writes(&self) -> u32 {
        self.cluster().min(self.reads)
    }

    /// What each member answered at the leader's last probe (empty on a follower).
    pub fn members_read(&self) -> BTreeMap<u64, u32> {
        self.members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps what each member answered at the leader's latest probe.
    pub fn record(&self, answers: BTreeMap<u64, u32>) {
        *self.members.lock().unwrap_or_else(PoisonError::into_inner) = answers;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResourceKey;

    #[test]
    fn the_record_and_groups_need_their_format() {
        assert_eq!(required(&Command::Noop), 1);
        assert_eq!(required(&raise(2)), 2);
        assert_eq!(required(&Command::Group(vec![Command::Noop])), 2);
        assert_eq!(
            required(&Command::Batch(vec![
                Command::delete(ResourceKey::mesh("m"), false),
                raise(3)
            ])),
            3
        );
        let garbled = Command::PutInternal {
            key: RECORD.into(),
            value: b"two".to_vec(),
            if_absent: false,
        };
        assert_eq!(required(&garbled), u32::MAX, "never guessed");
    }

    #[test]
    fn an_entry_too_new_is_refused_naming_both_formats() {
        let group = Command::Group(vec![Command::Noop]);
        assert!(check_entry(&group, 7, 2).is_ok());
        let e = check_entry(&group, 7, 1).unwrap_err();
        let text = e.to_string();
        assert!(matches!(
            e,
            StoreError::UnreadableEntry {
                index: 7,
                format: 2,
                reads: 1
            }
        ));
        assert!(
            text.contains("entry 7") && text.contains("format 2") && text.contains("up to 1"),
            "{text}"
        );
    }

    #[test]
    fn probe_answers_from_older_releases_mean_format_1() {
        assert_eq!(from_probe(0), 1);
        assert_eq!(from_probe(2), 2);
        assert_eq!(parse_record(None), 1);
        assert_eq!(parse_record(Some(b"2")), 2);
    }

    #[test]
    fn too_old_names_both_formats_and_what_to_do() {
        let text = TooOld {
            reads: 1,
            writes: 2,
        }
        .to_string();
        assert!(
            text.contains("up to 1") && text.contains("format 2") && text.contains("run a release"),
            "{text}"
        );
    }
}
