//! `GroupCommit`: concurrent writes proposed on this node share raft entries.
//!
//! openraft 0.9 appends (and fsyncs) one entry per `client_write`, and its core waits for that
//! fsync before it takes the next request, so the leader's throughput would be one write per
//! fsync. Here every write goes through one queue: a proposer takes whatever is queued when a
//! proposal slot is free and proposes it as one entry ([`Command::Group`] when there is more than
//! one), with at most [`IN_FLIGHT`] entries proposed and not yet applied. Under light load a write
//! finds a free slot and goes out alone at once, so grouping adds no latency; under load the
//! writes that arrive while the slots are busy share the next entry and its fsync.
//!
//! Each command of a group is applied on its own, in order (a refused one changes nothing and does
//! not affect the others), and every writer gets its own result. A group never exceeds
//! [`MAX_GROUP_COMMANDS`] commands or, beyond its first command, [`MAX_GROUP_BYTES`] of encoded
//! commands, so entries stay well inside the transport's message limit.
//!
//! A group is entry format 2. Until the cluster writes format 2 (every member reads it, see
//! [`super::entry_format`]), the commands gathered are proposed as entries of their own instead,
//! concurrently, as a release before group commit did.

use std::sync::Arc;

use openraft::{
    BasicNode,
    error::{ClientWriteError, RaftError as OrError},
    raft::ClientWriteResponse,
};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{Raft, TypeConfig, entry_format::EntryFormats};
use crate::store::{Command, CommandResult};

/// Entries this node proposes concurrently (each may be a group).
pub const IN_FLIGHT: usize = 4;
/// Most commands in one group (the default of `RaftSettings::max_group_commands`).
pub const MAX_GROUP_COMMANDS: usize = 256;
/// A group takes no further command once its encoded commands reach this size (1 MiB).
pub const MAX_GROUP_BYTES: usize = 1024 * 1024;

/// What `client_write` answers for one command.
pub type WriteOutcome =
    Result<ClientWriteResponse<TypeConfig>, OrError<u64, ClientWriteError<u64, BasicNode>>>;

/// One queued write.
struct Pending {
    cmd: Command,
    /// An upper bound of its encoded size, to bound the group it joins.
    bytes: usize,
    reply: oneshot::Sender<WriteOutcome>,
}

/// The queue writers propose through (cheap to clone).
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::UnboundedSender<Pending>,
}

/// The proposer stopped: the raft node is shutting down.
fn stopped() -> OrError<u64, ClientWriteError<u64, BasicNode>> {
    OrError::Fatal(openraft::error::Fatal::Stopped)
}

// === impl GroupCommit ===

impl GroupCommit {
    /// Starts the proposer for `raft`, grouping at most `max_commands` writes per entry (at
    /// least 1, at most [`MAX_GROUP_COMMANDS`]) once `formats` says the cluster writes groups;
    /// it ends once every handle is dropped.
    pub fn spawn(raft: Raft, max_commands: usize, formats: Arc<EntryFormats>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let max_commands = max_commands.clamp(1, MAX_GROUP_COMMANDS);
        tokio::spawn(propose_loop(raft, rx, max_commands, formats));
        Self { tx }
    }

    /// Proposes `cmd` (alone or with others queued beside it) and waits until it is applied here.
    /// The outcome is what `client_write` would have answered for `cmd` alone: on a follower the
    /// error is `ForwardToLeader`, exactly as without grouping.
    pub async fn write(&self, cmd: Command) -> WriteOutcome {
        let bytes = cmd.encoded_len_bound();
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Pending { cmd, bytes, reply }).is_err() {
            return Err(stopped());
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn propose_loop(
    raft: Raft,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    max_commands: usize,
    formats: Arc<EntryFormats>,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for a free slot before gathering, so writes arriving meanwhile join this group.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.bytes;
        let mut group = vec![first];
        while group.len() < max_commands && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.bytes;
                    group.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        let grouped = group.len() > 1 && formats.writes() >= 2;
        tokio::spawn(async move {
            if let Some(Some(ms)) = crate::failpoint::returned("raft.propose.delay")
                && let Ok(ms) = ms.trim().parse::<u64>()
            {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            if grouped {
                propose(&raft, group).await;
            } else {
                propose_each(&raft, group).await;
            }
            drop(slot);
        });
    }
}

/// Proposes an entry for each write of `group`, concurrently, and answers each of its writers.
async fn propose_each(raft: &Raft, group: Vec<Pending>) {
    let mut tasks = tokio::task::JoinSet::new();
    for p in group {
        let raft = raft.clone();
        tasks.spawn(async move {
            let _ = p.reply.send(raft.client_write(p.cmd).await);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Proposes one entry for `group` and answers each of its writers.
async fn propose(raft: &Raft, mut group: Vec<Pending>) {
    if group.len() == 1
        && let Some(p) = group.pop()
    {
        let _ = p.reply.send(raft.client_write(p.cmd).await);
        return;
    }
    let (cmds, replies): (Vec<Command>, Vec<oneshot::Sender<WriteOutcome>>) =
        group.into_iter().map(|p| (p.cmd, p.reply)).unzip();
    match raft.client_write(Command::Group(cmds)).await {
        Ok(response) => {
            let ClientWriteResponse {
                log_id,
                data,
                membership,
            } = response;
            let results = match data {
                CommandResult::Group(results) if results.len() == replies.len() => results,
                // Cannot happen (apply answers a group with one result per command); answer each
                // writer with what came back rather than guess.
                other => vec![other; replies.len()],
            };
            for (reply, data) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(ClientWriteResponse {
                    log_id,
                    data,
                    membership: membership.clone(),
                }));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
