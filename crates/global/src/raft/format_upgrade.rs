//! The leader's loop that raises the cluster's log entry format (see [`super::entry_format`]):
//! on becoming the leader and every [`PROBE_EVERY`] after, it asks each member (voters and learners) which format it reads, keeps
//! the answers for `/raft/members`, and once every member answered with a format newer than the
//! cluster's, commits that one ([`super::entry_format::raise`]).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use mosaic_proto::raft::ProbeRequest;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::{
    Raft,
    entry_format::{EntryFormats, from_probe, raise},
    group_commit::GroupCommit,
    network::client,
    tls::RaftTransport,
};

/// How often the leader asks the members which formats they read.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long one member's `Probe` answer is waited for.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts the loop (see the module doc); it runs until aborted.
pub fn spawn_negotiator(
    node_id: u64,
    raft: Raft,
    group: GroupCommit,
    transport: RaftTransport,
    formats: Arc<EntryFormats>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // One lazily connected channel per member, kept across probes (a probe a second must
        // not cost a TLS handshake a second).
        let mut channels: HashMap<(u64, String), Channel> = HashMap::new();
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut metrics = raft.metrics();
        let mut was_leader = false;
        loop {
            // A round every tick, and one at once when this replica becomes the leader (a fresh
            // cluster need not write the old format for up to a tick longer than it must).
            tokio::select! {
                _ = tick.tick() => {}
                changed = metrics.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let leads = metrics.borrow().current_leader == Some(node_id);
                    if leads == was_leader {
                        continue;
                    }
                }
            }
            let (leader, nodes) = {
                let m = raft.metrics();
                let m = m.borrow();
                let nodes: Vec<(u64, String)> = m
                    .membership_config
                    .membership()
                    .nodes()
                    .map(|(id, n)| (*id, n.addr.clone()))
                    .collect();
                (m.current_leader == Some(node_id), nodes)
            };
            was_leader = leader;
            if !leader {
                formats.record(BTreeMap::new());
                continue;
            }
            channels.retain(|key, _| nodes.contains(key));
            let mut targets = Vec::new();
            for (id, addr) in nodes.iter().filter(|(id, _)| *id != node_id) {
                let key = (*id, addr.clone());
                if !channels.contains_key(&key)
                    && let Ok(c) = transport.channel(*id, addr)
                {
                    channels.insert(key.clone(), c);
                }
                if let Some(c) = channels.get(&key) {
                    targets.push((*id, c.clone()));
                }
            }
            let cluster = formats.cluster();
            let mut answers = probe_all(node_id, targets).await;
            if nodes.iter().any(|(id, _)| *id == node_id) {
                answers.insert(node_id, formats.reads());
            }
            let all_answered = answers.len() == nodes.len();
            let lowest = answers.values().copied().min().unwrap_or(1);
            formats.record(answers);
            if cluster >= formats.reads() || !all_answered || lowest <= cluster {
                continue;
            }
            match group.write(raise(lowest)).await {
                Ok(_) => tracing::info!(
                    node = node_id,
                    from = cluster,
                    to = lowest,
                    "every member reads raft log entry format {lowest}: the cluster now writes it"
                ),
                Err(e) => tracing::debug!(
                    node = node_id,
                    error = %e,
                    "raising the raft log entry format did not commit; trying again"
                ),
            }
        }
    })
}

/// Asks each of `targets` which format it reads; members that do not answer are left out.
async fn probe_all(node_id: u64, targets: Vec<(u64, Channel)>) -> BTreeMap<u64, u32> {
    let mut tasks = tokio::task::JoinSet::new();
    for (id, channel) in targets {
        tasks.spawn(async move {
            let mut c = client(channel);
            let mut req = tonic::Request::new(ProbeRequest { node_id });
            req.set_timeout(PROBE_TIMEOUT);
            let reply = tokio::time::timeout(PROBE_TIMEOUT, c.probe(req))
                .await
                .ok()?
                .ok()?;
            Some((id, from_probe(reply.into_inner().entry_format)))
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Some((id, format))) = r {
            answers.insert(id, format);
        }
    }
    answers
}
