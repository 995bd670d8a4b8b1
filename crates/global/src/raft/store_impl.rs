//! `RaftStore`: the [`ResourceStore`] over a raft node.
//!
//! Writes are proposed locally, through [`GroupCommit`] so concurrent ones share raft entries; on a follower they are forwarded to the leader over gRPC
//! (`Forward`) and answered with the leader's result, as if the leader had taken them. While no
//! leader is known (an election), a write is retried for a bounded time; it is only re-sent
//! elsewhere when it provably never left (connection refused, or the receiver said it is not the
//! leader). Reads come from the local state-machine trees; [`ResourceStore::read_barrier`] makes
//! them linearizable (leader: `ensure_linearizable`; follower: the leader's read index, then wait
//! until applied locally).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use mosaic_core::resource::{Resource, ResourceType};
use mosaic_proto::raft::{
    ForwardReply, RaftPayload, ReadIndexRequest, forward_reply,
    raft_service_client::RaftServiceClient, read_index_reply,
};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError as OrError};
use tokio::{sync::broadcast, time::Instant};
use tonic::transport::Channel;

use super::{
    Raft,
    group_commit::GroupCommit,
    network::{client, never_sent},
    state_machine::SmShared,
    tls::RaftTransport,
};
use crate::store::{
    Change, Command, CommandResult, InternalChange, ResourceKey, ResourceStore, StateView,
    StoreError,
};

/// How long a write or read barrier keeps retrying while no leader is reachable.
const RETRY_FOR: Duration = Duration::from_secs(15);
/// Pause between retries.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long a forwarded write may take on the leader.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);

/// The resource store of one raft replica.
pub struct RaftStore {
    node_id: u64,
    raft: Raft,
    group: GroupCommit,
    shared: Arc<SmShared>,
    transport: RaftTransport,
    /// Channels to leaders, by node id and address.
    channels: Mutex<HashMap<(u64, String), Channel>>,
}

/// What asking the leader gave.
enum Asked<T> {
    Done(T),
    /// Not done, and safe to retry (with why).
    Retry(String),
    Failed(StoreError),
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

// === impl RaftStore ===

impl RaftStore {
    pub(crate) fn new(
        node_id: u64,
        raft: Raft,
        group: GroupCommit,
        shared: Arc<SmShared>,
        transport: RaftTransport,
    ) -> Self {
        Self {
            node_id,
            raft,
            group,
            shared,
            transport,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn peer(&self, leader: u64, addr: &str) -> Result<RaftServiceClient<Channel>, StoreError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (leader, addr.to_string());
        let channel = match channels.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = self
                    .transport
                    .channel(leader, addr)
                    .map_err(|e| unavailable(format!("leader address {addr:?}: {e}")))?;
                channels.insert(key, c.clone());
                c
            }
        };
        Ok(client(channel))
    }

    async fn forward(&self, leader: u64, addr: &str, cmd: &Command) -> Asked<(CommandResult, u64)> {
        let mut peer = match self.peer(leader, addr) {
            Ok(p) => p,
            Err(e) => return Asked::Failed(e),
        };
        let data = match serde_json::to_vec(cmd) {
            Ok(d) => d,
            Err(e) => {
                return Asked::Failed(StoreError::Storage(format!("cannot encode command: {e}")));
            }
        };
        let mut request = tonic::Request::new(RaftPayload {
            data,
            error: Vec::new(),
        });
        request.set_timeout(FORWARD_TIMEOUT);
        match peer.forward(request).await {
            Ok(r) => match r.into_inner() {
                ForwardReply {
                    outcome: Some(forward_reply::Outcome::Result(bytes)),
                    log_index,
                } => match serde_json::from_slice(&bytes) {
                    Ok(result) => Asked::Done((result, log_index)),
                    Err(e) => Asked::Failed(unavailable(format!(
                        "leader {leader} sent an unreadable result: {e}"
                    ))),
                },
                ForwardReply {
                    outcome: Some(forward_reply::Outcome::NotLeader(_)),
                    ..
                } => Asked::Retry(format!("node {leader} is no longer the leader")),
                ForwardReply {
                    outcome: Some(forward_reply::Outcome::Failure(msg)),
                    ..
                } => Asked::Failed(unavailable(format!("leader {leader}: {msg}"))),
                ForwardReply { outcome: None, .. } => {
                    Asked::Failed(unavailable(format!("leader {leader} sent an empty reply")))
                }
            },
            Err(status) if never_sent(&status) => {
                Asked::Retry(format!("leader {leader} at {addr} refused the connection"))
            }
            Err(status) => Asked::Failed(unavailable(format!(
                "leader {leader} at {addr} did not answer ({}: {}); the write may or may not have been applied",
                status.code(),
                status.message()
            ))),
        }
    }

    async fn read_index(&self, leader: u64, addr: &str) -> Asked<u64> {
        let mut peer = match self.peer(leader, addr) {
            Ok(p) => p,
            Err(e) => return Asked::Failed(e),
        };
        let mut request = tonic::Request::new(ReadIndexRequest {});
        request.set_timeout(FORWARD_TIMEOUT);
        match peer.read_index(request).await {
            Ok(r) => match r.into_inner().outcome {
                Some(read_index_reply::Outcome::Index(i)) => Asked::Done(i),
                Some(read_index_reply::Outcome::NotLeader(_)) => {
                    Asked::Retry(format!("node {leader} is no longer the leader"))
                }
                Some(read_index_reply::Outcome::Failure(msg)) => {
                    Asked::Retry(format!("leader {leader}: {msg}"))
                }
                None => Asked::Retry(format!("leader {leader} sent an empty reply")),
            },
            // A read is safe to repeat.
            Err(status) => Asked::Retry(format!("leader {leader} at {addr}: {}", status.message())),
        }
    }

    fn trees(&self) -> Result<impl StateView, StoreError> {
        self.shared.trees()
    }

    /// Whether this replica believes it is the leader.
    #[cfg(feature = "failpoints")]
    fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.node_id)
    }

    /// `store.write.ack_before_commit`: the result `cmd` would get against the current state at
    /// the next log index, answered at once; the proposal follows in the background after
    /// `arg` milliseconds (`lose`: never). Breaks linearizability on purpose.
    #[cfg(feature = "failpoints")]
    fn ack_before_commit(
        &self,
        cmd: Command,
        arg: Option<String>,
    ) -> Result<CommandResult, StoreError> {
        let next = self.raft.metrics().borrow().last_log_index.unwrap_or(0) + 1;
        let trees = self.shared.trees()?;
        let (result, _) = crate::store::plan(&cmd, next, &trees)?;
        let arg = arg.unwrap_or_default();
        if arg.trim() != "lose" {
            let delay = Duration::from_millis(arg.trim().parse().unwrap_or(0));
            let group = self.group.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = group.write(cmd).await;
            });
        }
        tracing::warn!(
            failpoint = "store.write.ack_before_commit",
            "write answered before it was committed"
        );
        Ok(result)
    }
}

#[async_trait::async_trait]
impl ResourceStore for RaftStore {
    async fn write(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        // The deliberately broken build (test builds only): answer before committing.
        crate::failpoint!("store.write.ack_before_commit", self.is_leader(), |arg| {
            self.ack_before_commit(cmd.clone(), arg)
        });
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let why = match self.group.write(cmd.clone()).await {
                Ok(r) => return Ok(r.data),
                Err(OrError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    match (f.leader_id, f.leader_node) {
                        (Some(id), Some(node)) if id != self.node_id => {
                            match self.forward(id, &node.addr, &cmd).await {
                                Asked::Done((r, index)) => {
                                    // Answer only once this replica has applied the write too,
                                    // so a read here right after sees it.
                                    let left = deadline.saturating_duration_since(Instant::now());
                                    self.raft
                                        .wait(Some(left.max(FORWARD_TIMEOUT)))
                                        .applied_index_at_least(Some(index), "forwarded write")
                                        .await
                                        .map_err(|e| {
                                            unavailable(format!(
                                                "the leader applied the write (index {index}) but this replica did not catch up: {e}; read from the leader"
                                            ))
                                        })?;
                                    return Ok(r);
                                }
                                Asked::Retry(why) => why,
                                Asked::Failed(e) => return Err(e),
                            }
                        }
                        _ => "no leader is elected yet".to_string(),
                    }
                }
                Err(OrError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                    return Err(unavailable(e));
                }
                Err(OrError::Fatal(f)) => return Err(unavailable(f)),
            };
            if Instant::now() >= deadline {
                return Err(unavailable(why));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn read_barrier(&self) -> Result<(), StoreError> {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let why = match self.raft.ensure_linearizable().await {
                Ok(_) => return Ok(()),
                Err(OrError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    match (f.leader_id, f.leader_node) {
                        (Some(id), Some(node)) if id != self.node_id => {
                            match self.read_index(id, &node.addr).await {
                                Asked::Done(index) => {
                                    let left = deadline.saturating_duration_since(Instant::now());
                                    return self
                                        .raft
                                        .wait(Some(left.max(RETRY_PAUSE)))
                                        .applied_index_at_least(Some(index), "read barrier")
                                        .await
                                        .map(|_| ())
                                        .map_err(|e| {
                                            unavailable(format!(
                                                "this replica did not catch up with the leader: {e}"
                                            ))
                                        });
                                }
                                Asked::Retry(why) => why,
                                Asked::Failed(e) => return Err(e),
                            }
                        }
                        _ => "no leader is elected yet".to_string(),
                    }
                }
                Err(OrError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => e.to_string(),
                Err(OrError::Fatal(f)) => return Err(unavailable(f)),
            };
            if Instant::now() >= deadline {
                return Err(unavailable(why));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        self.trees()?.get(key)
    }

    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError> {
        self.trees()?.list(rtype, mesh)
    }

    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.trees()?.internal(key)
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.shared.subscribe()
    }

    fn subscribe_internal(&self) -> broadcast::Receiver<InternalChange> {
        self.shared.subscribe_internal()
    }

    fn node_id(&self) -> u64 {
        self.node_id
    }
}
