//! Online membership change (openraft's learner → voter flow) and the join gate.
//!
//! An operator changes the cluster through the admin API (`/raft/members`, `mosaicctl raft`):
//! - **add** `(id, address)` as a learner: the leader replicates its log (or a snapshot) to it; it
//!   does not vote and does not count towards a quorum, so a slow catch-up costs nothing;
//! - **promote** a learner to voter once it has caught up (within [`PROMOTE_MAX_LAG`] entries;
//!   a lagging learner is waited for up to [`PROMOTE_WAIT`], then refused with its lag);
//! - **remove** a voter or learner (never the last voter; never the leader itself: stop it and
//!   the others elect a new leader; never a voter whose removal leaves fewer than a majority of
//!   the remaining voters caught up).
//!
//! Every change is one openraft membership change, committed through the log (joint consensus
//! for voter changes), so at most one is in progress at a time. A replica that is not the leader
//! forwards the request to the leader over the raft transport (`ChangeMembership`).
//!
//! The join gate: a replica that starts with an empty disk where a cluster already exists (its
//! disk was replaced, it is a new replica, or `raft.join` is set) must not bootstrap, campaign or
//! grant votes until a leader has replicated a membership to it that names it. Before its disk
//! was lost it may have voted in the current term; granting a second vote in that term could
//! elect two leaders.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use mosaic_proto::raft::RaftPayload;
use openraft::{
    BasicNode, ChangeMembers, ServerState,
    error::{ChangeMembershipError, ClientWriteError, RaftError as OrError},
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    Raft,
    entry_format::EntryFormats,
    network::{client, never_sent},
    tls::RaftTransport,
};

/// How far (in log entries) a learner may lag behind the leader's last entry and still be
/// promoted, and a remaining voter still count as caught up when another is removed.
pub const PROMOTE_MAX_LAG: u64 = 100;
/// How long a promotion waits for a lagging learner to catch up before it is refused.
pub const PROMOTE_WAIT: Duration = Duration::from_secs(10);
/// How long a request keeps looking for a leader (elections, forwarding).
const RETRY_FOR: Duration = Duration::from_secs(15);
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long a forwarded change may take on the leader.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// A membership change an operator asks for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum MemberOp {
    /// Add node `id`, reachable at `address` (its `raft.advertise`), as a learner.
    AddLearner {
        /// The new replica's `raft.node_id`.
        id: u64,
        /// The new replica's raft address, `host:port`.
        address: String,
    },
    /// Make learner `id` a voter.
    Promote {
        /// The learner.
        id: u64,
    },
    /// Remove voter or learner `id` from the cluster.
    Remove {
        /// The member.
        id: u64,
    },
}

/// Whether a member votes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MemberRole {
    /// Votes and counts towards every quorum.
    Voter,
    /// Receives the log, does not vote.
    Learner,
}

/// One member as the answering replica sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// `raft.node_id`.
    pub id: u64,
    /// Its raft address.
    pub address: String,
    /// Voter or learner.
    pub role: MemberRole,
    /// Whether it is the leader the answering replica knows of.
    pub leader: bool,
    /// The last log index the leader knows this member holds (known on the leader only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_index: Option<u64>,
    /// Entries this member is behind the leader's last entry (known on the leader only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// The newest raft log entry format it reads, as it answered the leader's last probe
    /// (known on the leader only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads_entry_format: Option<u32>,
}

/// The cluster's membership as one replica sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MembersView {
    /// The replica that answered.
    pub answered_by: u64,
    /// The leader it knows of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    /// Its current term.
    pub term: u64,
    /// Its last log index.
    pub last_log_index: u64,
    /// Whether a voter change is in progress (a joint configuration is in force).
    pub changing: bool,
    /// Whether the answering replica is still behind the join gate (empty disk, not yet
    /// replicated to): it neither votes nor campaigns.
    pub joining: bool,
    /// The raft log entry format the cluster writes, as applied on the answering replica
    /// (0 from a release before entry formats).
    #[serde(default)]
    pub entry_format: u32,
    /// The newest entry format the answering replica reads.
    #[serde(default)]
    pub reads_entry_format: u32,
    /// Voters, then learners, by id.
    pub members: Vec<MemberView>,
}

/// Why a membership request failed; each says what to do.
#[derive(Clone, Debug, thiserror::Error, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum MembershipError {
    /// The request itself is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// The member named does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the cluster's state (409).
    #[error("{0}")]
    Conflict(String),
    /// No leader could carry it out now (503); retry.
    #[error("{0}")]
    Unavailable(String),
}

/// What the leader answers a forwarded change with.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForwardedChange {
    /// Committed; the membership after it.
    Done(MembersView),
    /// The receiver is not the leader.
    NotLeader,
    /// Refused or failed.
    Failed(MembershipError),
}

/// The join gate of one replica (see the module doc).
#[derive(Debug, Default)]
pub struct JoinGate {
    joining: AtomicBool,
}

/// Membership changes through one replica.
#[derive(Clone)]
pub struct Membership {
    node_id: u64,
    raft: Raft,
    transport: RaftTransport,
    gate: Arc<JoinGate>,
    formats: Arc<EntryFormats>,
}

/// The outcome of trying a change on this replica.
enum Here {
    Done(MembersView),
    /// Not the leader; the leader it knows of, if any.
    NotLeader(Option<(u64, String)>),
}

fn unavailable(e: impl std::fmt::Display) -> MembershipError {
    MembershipError::Unavailable(e.to_string())
}

/// `host:port` with a non-zero port, else why not.
fn check_address(address: &str) -> Result<(), MembershipError> {
    let bad = |why: &str| {
        MembershipError::Invalid(format!(
            "address {address:?} {why}: give the new replica's raft.advertise, host:port"
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad("has no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(bad("has no valid port")),
    }
}

// === impl MemberOp ===

impl MemberOp {
    /// The member the change is about.
    pub fn id(&self) -> u64 {
        match self {
            MemberOp::AddLearner { id, .. }
            | MemberOp::Promote { id }
            | MemberOp::Remove { id } => *id,
        }
    }

    fn check(&self) -> Result<(), MembershipError> {
        if self.id() == 0 {
            return Err(MembershipError::Invalid(
                "node id 0 is not allowed: raft.node_id is a positive integer".into(),
            ));
        }
        if let MemberOp::AddLearner { address, .. } = self {
            check_address(address)?;
        }
        Ok(())
    }
}

// === impl MembershipError ===

impl MembershipError {
    /// The HTTP status the API answers with.
    pub fn status(&self) -> u16 {
        match self {
            MembershipError::Invalid(_) => 400,
            MembershipError::NotFound(_) => 404,
            MembershipError::Conflict(_) => 409,
            MembershipError::Unavailable(_) => 503,
        }
    }
}

// === impl JoinGate ===

impl JoinGate {
    /// Whether the replica is still behind the gate.
    pub fn joining(&self) -> bool {
        self.joining.load(Ordering::Acquire)
    }

    fn set(&self, joining: bool) {
        self.joining.store(joining, Ordering::Release);
    }
}

// === impl Membership ===

impl Membership {
    /// Membership changes through `raft` (node `node_id`), forwarding over `transport`.
    /// Membership changes of `raft` (node `node_id`); views name the entry formats `formats`
    /// knows.
    pub fn new(
        node_id: u64,
        raft: Raft,
        transport: RaftTransport,
        formats: Arc<EntryFormats>,
    ) -> Self {
        Self {
            node_id,
            raft,
            transport,
            gate: Arc::new(JoinGate::default()),
            formats,
        }
    }

    /// The join gate.
    pub fn gate(&self) -> &Arc<JoinGate> {
        &self.gate
    }

    /// Closes the join gate: no campaigning and no votes until a leader has replicated a
    /// membership naming this replica; then the gate opens by itself.
    pub fn hold_until_joined(&self) {
        self.gate.set(true);
        self.raft.runtime_config().elect(false);
        let this = self.clone();
        tokio::spawn(async move {
            let mut metrics = this.raft.metrics();
            loop {
                if !this.gate.joining() {
                    return;
                }
                let joined = {
                    let m = metrics.borrow_and_update();
                    let named = m
                        .membership_config
                        .membership()
                        .nodes()
                        .any(|(id, _)| *id == this.node_id);
                    named && m.current_leader.is_some_and(|l| l != this.node_id)
                };
                if joined {
                    this.gate.set(false);
                    this.raft.runtime_config().elect(true);
                    tracing::info!(
                        node = this.node_id,
                        "joined the cluster: a leader replicated a membership naming this replica; voting from now on"
                    );
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// Opens the join gate at once (this replica initialised the cluster itself).
    pub fn open_gate(&self) {
        self.gate.set(false);
        self.raft.runtime_config().elect(true);
    }

    /// The membership as this replica sees it (the leader adds how far each member is).
    pub fn view(&self) -> MembersView {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let last = m.last_log_index.unwrap_or_default();
        let matched = |id: u64| -> Option<u64> {
            let replication = m.replication.as_ref()?;
            if id == self.node_id {
                return Some(last);
            }
            Some(replication.get(&id)?.as_ref().map(|l| l.index).unwrap_or(0))
        };
        let reads = self.formats.members_read();
        let mut members: Vec<MemberView> = membership
            .nodes()
            .map(|(id, node)| {
                let matched_index = matched(*id);
                MemberView {
                    id: *id,
                    address: node.addr.clone(),
                    role: if voters.contains(id) {
                        MemberRole::Voter
                    } else {
                        MemberRole::Learner
                    },
                    leader: m.current_leader == Some(*id),
                    matched_index,
                    lag: matched_index.map(|i| last.saturating_sub(i)),
                    reads_entry_format: reads.get(id).copied(),
                }
            })
            .collect();
        members.sort_by_key(|v| (v.role != MemberRole::Voter, v.id));
        MembersView {
            answered_by: self.node_id,
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: last,
            changing: membership.get_joint_config().len() > 1,
            joining: self.gate.joining(),
            entry_format: self.formats.cluster(),
            reads_entry_format: self.formats.reads(),
            members,
        }
    }

    /// Carries `op` out on the leader (forwarding it there from a follower) and answers the
    /// membership after it.
    pub async fn change(&self, op: MemberOp) -> Result<MembersView, MembershipError> {
        op.check()?;
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let why = match self.change_here(&op).await? {
                Here::Done(view) => return Ok(view),
                Here::NotLeader(Some((leader, addr))) if leader != self.node_id => {
                    match self.forward(leader, &addr, &op).await? {
                        Some(view) => return Ok(view),
                        None => format!("node {leader} is no longer the leader"),
                    }
                }
                Here::NotLeader(_) => "no leader is elected yet".to_string(),
            };
            if Instant::now() >= deadline {
                return Err(unavailable(format!(
                    "the membership change was not made: {why}; retry once a leader is elected"
                )));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// What the `ChangeMembership` RPC answers: `op` carried out here if this is the leader.
    pub async fn change_forwarded(&self, op: MemberOp) -> ForwardedChange {
        if let Err(e) = op.check() {
            return ForwardedChange::Failed(e);
        }
        match self.change_here(&op).await {
            Ok(Here::Done(view)) => ForwardedChange::Done(view),
            Ok(Here::NotLeader(_)) => ForwardedChange::NotLeader,
            Err(e) => ForwardedChange::Failed(e),
        }
    }

    fn not_leader(&self) -> Here {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader.and_then(|id| {
            m.membership_config
                .membership()
                .get_node(&id)
                .map(|n| (id, n.addr.clone()))
        });
        Here::NotLeader(leader)
    }

    async fn change_here(&self, op: &MemberOp) -> Result<Here, MembershipError> {
        let state = self.raft.metrics().borrow().state;
        if state != ServerState::Leader {
            return Ok(self.not_leader());
        }
        let view = self.view();
        let member = view.members.iter().find(|m| m.id == op.id()).cloned();
        let result = match op {
            MemberOp::AddLearner { id, address } => {
                if let Some(m) = &member {
                    if m.address == *address && m.role == MemberRole::Learner {
                        return Ok(Here::Done(view));
                    }
                    return Err(MembershipError::Conflict(format!(
                        "node {id} is already a {} at {}: remove it first to add it again at {address}",
                        role_name(m.role),
                        m.address
                    )));
                }
                if let Some(m) = view.members.iter().find(|m| m.address == *address) {
                    return Err(MembershipError::Conflict(format!(
                        "address {address} is node {}'s: every replica needs its own raft address",
                        m.id
                    )));
                }
                tracing::info!(node = self.node_id, learner = id, %address, "adding a learner");
                self.raft
                    .add_learner(*id, BasicNode::new(address.clone()), false)
                    .await
            }
            MemberOp::Promote { id } => {
                let Some(m) = member else {
                    return Err(not_a_member(*id));
                };
                if m.role == MemberRole::Voter {
                    return Ok(Here::Done(view));
                }
                self.wait_caught_up(*id).await?;
                tracing::info!(
                    node = self.node_id,
                    learner = id,
                    "promoting a learner to voter"
                );
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([*id])), true)
                    .await
            }
            MemberOp::Remove { id } => {
                let Some(m) = member else {
                    return Err(not_a_member(*id));
                };
                if *id == self.node_id {
                    return Err(MembershipError::Conflict(format!(
                        "node {id} is the leader and cannot remove itself: stop it (the other voters elect a new leader), then remove it through another replica"
                    )));
                }
                if m.role == MemberRole::Voter {
                    check_removal_keeps_quorum(&view, *id)?;
                    tracing::info!(node = self.node_id, voter = id, "removing a voter");
                    self.raft
                        .change_membership(
                            ChangeMembers::RemoveVoters(BTreeSet::from([*id])),
                            false,
                        )
                        .await
                } else {
                    tracing::info!(node = self.node_id, learner = id, "removing a learner");
                    self.raft
                        .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([*id])), false)
                        .await
                }
            }
        };
        match result {
            Ok(_) => Ok(Here::Done(self.view())),
            Err(OrError::APIError(ClientWriteError::ForwardToLeader(_))) => Ok(self.not_leader()),
            Err(OrError::APIError(ClientWriteError::ChangeMembershipError(e))) => Err(match e {
                ChangeMembershipError::InProgress(p) => MembershipError::Conflict(format!(
                    "another membership change is in progress ({p}): retry when `mosaicctl raft members` no longer shows one"
                )),
                ChangeMembershipError::EmptyMembership(_) => MembershipError::Conflict(
                    "the change would leave no voter: a cluster keeps at least one".into(),
                ),
                ChangeMembershipError::LearnerNotFound(l) => {
                    MembershipError::Conflict(format!("{l}: add it as a learner first"))
                }
            }),
            Err(OrError::Fatal(f)) => Err(unavailable(format!("raft stopped: {f}"))),
        }
    }

    /// Waits (up to [`PROMOTE_WAIT`]) until learner `id` is within [`PROMOTE_MAX_LAG`] entries.
    async fn wait_caught_up(&self, id: u64) -> Result<(), MembershipError> {
        let deadline = Instant::now() + PROMOTE_WAIT;
        loop {
            let lag = self
                .view()
                .members
                .into_iter()
                .find(|m| m.id == id)
                .and_then(|m| m.lag);
            match lag {
                Some(l) if l <= PROMOTE_MAX_LAG => return Ok(()),
                _ if Instant::now() < deadline => tokio::time::sleep(RETRY_PAUSE).await,
                Some(l) => {
                    return Err(MembershipError::Conflict(format!(
                        "learner {id} is {l} entries behind the leader (at most {PROMOTE_MAX_LAG} to be promoted): wait until `mosaicctl raft members` shows it caught up, and check that it runs and reaches the leader"
                    )));
                }
                None => {
                    return Err(MembershipError::Conflict(format!(
                        "learner {id} has not received the log yet: check that it runs, that its raft.advertise is the address it was added with, and that it trusts the cluster CA"
                    )));
                }
            }
        }
    }

    /// Sends `op` to the leader; `None` when the receiver is not the leader any more.
    async fn forward(
        &self,
        leader: u64,
        addr: &str,
        op: &MemberOp,
    ) -> Result<Option<MembersView>, MembershipError> {
        let channel = self
            .transport
            .channel(leader, addr)
            .map_err(|e| unavailable(format!("leader {leader} at {addr:?}: {e}")))?;
        let data = serde_json::to_vec(op)
            .map_err(|e| unavailable(format!("cannot encode the change: {e}")))?;
        let mut request = tonic::Request::new(RaftPayload {
            data,
            error: Vec::new(),
        });
        request.set_timeout(FORWARD_TIMEOUT);
        match client(channel).change_membership(request).await {
            Ok(reply) => match serde_json::from_slice(&reply.into_inner().data) {
                Ok(ForwardedChange::Done(view)) => Ok(Some(view)),
                Ok(ForwardedChange::NotLeader) => Ok(None),
                Ok(ForwardedChange::Failed(e)) => Err(e),
                Err(e) => Err(unavailable(format!(
                    "leader {leader} sent an unreadable answer: {e}"
                ))),
            },
            Err(status) if never_sent(&status) => Ok(None),
            Err(status) => Err(unavailable(format!(
                "leader {leader} at {addr} did not answer ({}: {}); check `mosaicctl raft members` to see whether the change was made",
                status.code(),
                status.message()
            ))),
        }
    }
}

fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Voter => "voter",
        MemberRole::Learner => "learner",
    }
}

fn not_a_member(id: u64) -> MembershipError {
    MembershipError::NotFound(format!(
        "node {id} is not a member of this cluster: `mosaicctl raft members` lists them; add a replica with `mosaicctl raft add {id} HOST:PORT`"
    ))
}

/// Refuses removing voter `id` when fewer than a majority of the voters left would be caught up
/// (etcd's strict reconfiguration check): the cluster would stop taking writes.
fn check_removal_keeps_quorum(view: &MembersView, id: u64) -> Result<(), MembershipError> {
    let remaining: BTreeMap<u64, Option<u64>> = view
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Voter && m.id != id)
        .map(|m| (m.id, m.lag))
        .collect();
    if remaining.is_empty() {
        return Err(MembershipError::Conflict(format!(
            "node {id} is the last voter: a cluster keeps at least one"
        )));
    }
    let caught_up = remaining
        .values()
        .filter(|lag| lag.is_some_and(|l| l <= PROMOTE_MAX_LAG))
        .count();
    let needed = remaining.len() / 2 + 1;
    if caught_up < needed {
        return Err(MembershipError::Conflict(format!(
            "removing node {id} would leave {caught_up} of {} voters caught up, fewer than the {needed} a quorum needs: bring the others back (or promote a caught-up learner) first",
            remaining.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, role: MemberRole, lag: Option<u64>) -> MemberView {
        MemberView {
            id,
            address: format!("10.0.0.{id}:5689"),
            role,
            leader: id == 1,
            matched_index: lag.map(|l| 10_000 - l),
            lag,
            reads_entry_format: None,
        }
    }

    fn view(members: Vec<MemberView>) -> MembersView {
        MembersView {
            answered_by: 1,
            leader: Some(1),
            term: 3,
            last_log_index: 10_000,
            changing: false,
            joining: false,
            entry_format: 2,
            reads_entry_format: 2,
            members,
        }
    }

    #[test]
    fn a_change_names_a_positive_id_and_a_host_and_port() {
        let bad = [
            MemberOp::Promote { id: 0 },
            MemberOp::AddLearner {
                id: 4,
                address: "10.0.0.4".into(),
            },
            MemberOp::AddLearner {
                id: 4,
                address: ":5689".into(),
            },
            MemberOp::AddLearner {
                id: 4,
                address: "10.0.0.4:0".into(),
            },
            MemberOp::AddLearner {
                id: 4,
                address: "10.0.0.4:port".into(),
            },
        ];
        for op in bad {
            let e = op.check().expect_err("refused");
            assert_eq!(e.status(), 400, "{op:?}: {e}");
        }
        MemberOp::AddLearner {
            id: 4,
            address: "mosaic-global-3.mosaic-global:5689".into(),
        }
        .check()
        .expect("a DNS name and port");
    }

    #[test]
    fn removing_a_voter_keeps_a_caught_up_majority_of_the_rest() {
        use MemberRole::{Learner, Voter};
        // 3 voters, one dead (far behind): removing the dead one leaves 2 of 2 caught up.
        let v = view(vec![
            member(1, Voter, Some(0)),
            member(2, Voter, Some(3)),
            member(3, Voter, Some(5000)),
            member(4, Learner, Some(0)),
        ]);
        check_removal_keeps_quorum(&v, 3).expect("the dead voter may go");
        // Removing a live one would leave 1 of 2 caught up.
        let e = check_removal_keeps_quorum(&v, 2).expect_err("refused");
        assert_eq!(e.status(), 409);
        assert!(e.to_string().contains("1 of 2 voters caught up"), "{e}");
        // The last voter never goes.
        let single = view(vec![member(1, Voter, Some(0))]);
        let e = check_removal_keeps_quorum(&single, 1).expect_err("refused");
        assert!(e.to_string().contains("last voter"), "{e}");
    }

    #[test]
    fn changes_and_answers_travel_as_json() {
        let op = MemberOp::AddLearner {
            id: 4,
            address: "10.0.0.4:5689".into(),
        };
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(
            text,
            r#"{"op":"addLearner","id":4,"address":"10.0.0.4:5689"}"#
        );
        assert_eq!(serde_json::from_str::<MemberOp>(&text).unwrap(), op);
        let failed = ForwardedChange::Failed(MembershipError::Conflict("busy".into()));
        let back: ForwardedChange =
            serde_json::from_slice(&serde_json::to_vec(&failed).unwrap()).unwrap();
        assert!(
            matches!(back, ForwardedChange::Failed(MembershipError::Conflict(m)) if m == "busy")
        );
    }
}
