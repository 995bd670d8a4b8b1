//! The server side of the raft transport (`mosaic.raft.v1.RaftService`).
//!
//! Raft RPCs are handed to openraft; `Forward` proposes a follower's write on this node, grouped
//! with this node's own writes (which
//! answers `NotLeader` if it is not the leader); `ReadIndex` confirms leadership for a follower's
//! linearizable read; `Probe` tells a pristine peer whether this node belongs to a formed cluster;
//! `ChangeMembership` carries out a follower's membership request on the leader. While this
//! replica is behind the join gate ([`super::membership`]), `Vote` is refused.
//!
//! Every RPC is bounded on this side too ([`RPC_TIMEOUT`]; an `InstallSnapshot` stream, received
//! and installed, [`SNAPSHOT_TIMEOUT`]): a peer that stalls mid-stream, or a handler stuck behind
//! a slow disk, answers `DEADLINE_EXCEEDED` naming the RPC instead of holding the call forever.

use mosaic_proto::raft::{
    ForwardReply, NotLeader, ProbeReply, ProbeRequest, RaftPayload, ReadIndexReply,
    ReadIndexRequest, SnapshotChunk, forward_reply, raft_service_server::RaftService,
    read_index_reply,
};
use openraft::{
    BasicNode, Snapshot,
    error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError as OrError},
    raft::{AppendEntriesRequest, VoteRequest},
};
use serde::{Serialize, de::DeserializeOwned};
use std::{future::Future, sync::Arc, time::Duration};
use tonic::{Request, Response, Status, Streaming};

use super::{
    Raft, TypeConfig,
    entry_format::EntryFormats,
    group_commit::GroupCommit,
    membership::{MemberOp, Membership},
    network::SnapshotHeader,
};
use crate::store::Command;

/// Longest an incoming unary raft RPC (AppendEntries, Vote, Forward, ReadIndex, Probe) may take
/// here: above the senders' own deadlines (openraft's TTLs, 15 s for `Forward`), so theirs fire
/// first and this one only ends calls nobody waits for any more.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest an incoming `InstallSnapshot` stream may take, from its first chunk to the installed
/// snapshot (a large state over a slow link).
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

/// `call` (raft RPC `rpc`), ended with `DEADLINE_EXCEEDED` naming it after `limit`.
async fn bounded<T>(
    rpc: &'static str,
    limit: Duration,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(rpc, ?limit, "an incoming raft RPC timed out");
            Err(Status::deadline_exceeded(format!(
                "raft {rpc} did not complete within {limit:?} on this node (a stalled sender, or a slow disk here): the sender retries"
            )))
        }
    }
}

/// The raft gRPC service of one node.
#[derive(Clone)]
pub struct RaftGrpc {
    node_id: u64,
    raft: Raft,
    group: GroupCommit,
    membership: Membership,
    formats: Arc<EntryFormats>,
}

fn bad_request(what: &str, e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("malformed {what}: {e}"))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(bytes).map_err(|e| bad_request(what, e))
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(value).map_err(|e| Status::internal(format!("cannot encode reply: {e}")))
}

/// A reply carrying either openraft's response or its error.
fn reply<T: Serialize, E: Serialize>(
    result: Result<T, E>,
) -> Result<Response<RaftPayload>, Status> {
    Ok(Response::new(match result {
        Ok(v) => RaftPayload {
            data: json(&v)?,
            error: Vec::new(),
        },
        Err(e) => RaftPayload {
            data: Vec::new(),
            error: json(&e)?,
        },
    }))
}

fn not_leader(f: ForwardToLeader<u64, BasicNode>) -> NotLeader {
    NotLeader {
        leader_id: f.leader_id.unwrap_or_default(),
        leader_addr: f.leader_node.map(|n| n.addr).unwrap_or_default(),
    }
}

// === impl RaftGrpc ===

impl RaftGrpc {
    /// The service for `raft` (node `node_id`), which reads the entry formats `formats` says.
    pub fn new(
        node_id: u64,
        raft: Raft,
        group: GroupCommit,
        membership: Membership,
        formats: Arc<EntryFormats>,
    ) -> Self {
        Self {
            node_id,
            raft,
            group,
            membership,
            formats,
        }
    }
}

#[tonic::async_trait]
impl RaftService for RaftGrpc {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        bounded("AppendEntries", RPC_TIMEOUT, async {
            let rpc: AppendEntriesRequest<TypeConfig> =
                decode("AppendEntries", &request.into_inner().data)?;
            reply(self.raft.append_entries(rpc).await)
        })
        .await
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        bounded("Vote", RPC_TIMEOUT, async {
            let rpc: VoteRequest<u64> = decode("Vote", &request.into_inner().data)?;
            if self.membership.gate().joining() {
                tracing::info!(
                    node = self.node_id,
                    candidate = rpc.vote.leader_id().voted_for().unwrap_or_default(),
                    term = rpc.vote.leader_id().get_term(),
                    "refused a vote request: this replica started with an empty disk and votes only once a leader has replicated a membership naming it"
                );
                return Err(Status::unavailable(format!(
                    "node {} is joining (empty disk, not yet replicated to): it does not vote yet",
                    self.node_id
                )));
            }
            reply(self.raft.vote(rpc).await)
        })
        .await
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftPayload>, Status> {
        bounded(
            "InstallSnapshot",
            SNAPSHOT_TIMEOUT,
            self.receive_snapshot(request.into_inner()),
        )
        .await
    }

    async fn forward(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<ForwardReply>, Status> {
        bounded("Forward", RPC_TIMEOUT, self.forward_write(request)).await
    }

    async fn read_index(
        &self,
        _request: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexReply>, Status> {
        bounded("ReadIndex", RPC_TIMEOUT, self.read_index_now()).await
    }

    async fn probe(&self, _request: Request<ProbeRequest>) -> Result<Response<ProbeReply>, Status> {
        bounded("Probe", RPC_TIMEOUT, async {
            let initialized = self
                .raft
                .is_initialized()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let elected = {
                let m = self.raft.metrics();
                let m = m.borrow();
                m.current_leader.is_some() || m.last_applied.is_some_and(|l| l.index > 0)
            };
            Ok(Response::new(ProbeReply {
                node_id: self.node_id,
                initialized,
                elected: initialized && elected,
                entry_format: self.formats.reads(),
            }))
        })
        .await
    }

    async fn change_membership(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        // A promotion may wait for the learner to catch up (10 s) before openraft commits.
        bounded("ChangeMembership", RPC_TIMEOUT, async {
            let op: MemberOp = decode("membership change", &request.into_inner().data)?;
            let answer = self.membership.change_forwarded(op).await;
            Ok(Response::new(RaftPayload {
                data: json(&answer)?,
                error: Vec::new(),
            }))
        })
        .await
    }
}

impl RaftGrpc {
    /// Receives a snapshot stream into a file and installs it.
    async fn receive_snapshot(
        &self,
        mut stream: Streaming<SnapshotChunk>,
    ) -> Result<Response<RaftPayload>, Status> {
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let header: SnapshotHeader = decode("snapshot metadata", &first.meta)?;
        let mut file = match self.raft.begin_receiving_snapshot().await {
            Ok(f) => f,
            Err(e) => return Err(Status::unavailable(e.to_string())),
        };
        let io = |e: std::io::Error| Status::internal(format!("cannot store snapshot: {e}"));
        file.append(&first.data).map_err(io)?;
        // On any error below, dropping `file` removes the partial download.
        while let Some(chunk) = stream.message().await? {
            file.append(&chunk.data).map_err(io)?;
        }
        file.sync().map_err(io)?;
        let snapshot = Snapshot {
            meta: header.meta,
            snapshot: file,
        };
        reply(self.raft.install_full_snapshot(header.vote, snapshot).await)
    }

    /// Proposes a follower's write here (grouped with this node's own).
    async fn forward_write(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<ForwardReply>, Status> {
        let cmd: Command = decode("forwarded command", &request.into_inner().data)?;
        let writes = self.formats.writes();
        if cmd.format() > writes {
            return Err(Status::invalid_argument(format!(
                "forwarded command needs raft log entry format {}, but the cluster writes format {writes}: retry once every replica runs the same release",
                cmd.format()
            )));
        }
        let mut log_index = 0;
        let outcome = match self.group.write(cmd).await {
            Ok(r) => {
                log_index = r.log_id.index;
                forward_reply::Outcome::Result(json(&r.data)?)
            }
            Err(OrError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                forward_reply::Outcome::NotLeader(not_leader(f))
            }
            Err(e) => forward_reply::Outcome::Failure(e.to_string()),
        };
        Ok(Response::new(ForwardReply {
            outcome: Some(outcome),
            log_index,
        }))
    }

    /// Confirms leadership and answers the read index.
    async fn read_index_now(&self) -> Result<Response<ReadIndexReply>, Status> {
        let outcome = match self.raft.get_read_log_id().await {
            Ok((read, _)) => read_index_reply::Outcome::Index(read.map(|l| l.index).unwrap_or(0)),
            Err(OrError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                read_index_reply::Outcome::NotLeader(not_leader(f))
            }
            Err(e) => read_index_reply::Outcome::Failure(e.to_string()),
        };
        Ok(Response::new(ReadIndexReply {
            outcome: Some(outcome),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stuck_rpc_answers_deadline_exceeded_naming_it() {
        let stuck = std::future::pending::<Result<(), Status>>();
        let err = bounded("InstallSnapshot", Duration::from_millis(20), stuck)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert!(
            err.message()
                .starts_with("raft InstallSnapshot did not complete within 20ms"),
            "{}",
            err.message()
        );
        let done = bounded("Vote", Duration::from_millis(20), async { Ok(7) }).await;
        assert_eq!(done.unwrap(), 7);
        assert!(SNAPSHOT_TIMEOUT > RPC_TIMEOUT);
    }
}
