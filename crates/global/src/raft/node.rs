//! `RaftNode`: one replica of the global store. Opens sled at `<data_dir>/raft`, starts openraft,
//! serves the raft gRPC service, bootstraps the cluster, and shuts everything down so the data
//! directory can be reopened.
//!
//! Bootstrap: a node that already holds a vote or log entries (any restart) never initialises.
//! A pristine node with no peers initialises a one-member cluster. A pristine node with peers
//! first asks each of them (`Probe`) whether it belongs to a formed cluster; if one does (this
//! node's disk was wiped, or it is joining late), it waits to be replicated to (a snapshot brings
//! it up to date). Otherwise it calls `Raft::initialize` with the full static membership. Several
//! nodes doing so at once is safe: openraft 0.9 documents that initialising more than one node
//! with the *same* membership is safe (each writes the identical entry at log id 0 and the vote
//! decides the leader), so every replica must be given the same `peers` list, which includes
//! itself.
//!
//! A pristine node starts behind the join gate ([`super::membership`]): it refuses votes until it
//! has either initialised the cluster itself or been replicated to by a leader whose membership
//! names it. A peer that refuses the `Probe` because this node is not a member answers for a
//! formed cluster too. With `join` (`raft.join`, a replica added to a running cluster) the node
//! never initialises: it waits for `mosaicctl raft add`, and `peers` need only list members to
//! reach. With `vote_with_empty_disk` (a restore from backup: the only data is on another
//! replica, which cannot be elected without the empty ones' votes) there is no gate.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use mosaic_proto::raft::{ProbeRequest, raft_service_server::RaftServiceServer};
use openraft::{
    BasicNode, Config, SnapshotPolicy, error::InitializeError, error::RaftError as OrError,
};
use tokio::{sync::oneshot, task::JoinHandle};

use super::{
    Raft, RaftError, RaftStore,
    entry_format::{self, EntryFormats},
    format_upgrade,
    group_commit::{GroupCommit, MAX_GROUP_COMMANDS},
    log_store::LogStore,
    membership::Membership,
    network::{MAX_MESSAGE, NetworkFactory, client},
    service::RaftGrpc,
    state_machine::{SmShared, StateMachine},
    tls::{PeerCheck, RaftTransport},
};

/// How long to keep trying to open sled while a previous handle in this process releases its lock.
const OPEN_RETRY: Duration = Duration::from_secs(10);
/// How long a pristine node waits for each peer's `Probe` answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the peers of a pristine node said.
enum Formed {
    /// None belongs to a formed cluster.
    No,
    /// This peer initialised the cluster, which has not elected a leader yet.
    Starting(u64),
    /// This peer's cluster has elected a leader (or does not list this node).
    Elected(u64),
}

/// The gRPC server's stop signal and task.
type ServerTask = (
    oneshot::Sender<()>,
    JoinHandle<Result<(), tonic::transport::Error>>,
);

/// How to run one replica.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// This replica's id (non-zero, unique).
    pub node_id: u64,
    /// Where to serve the raft transport, e.g. `127.0.0.1:5689`.
    pub listen: String,
    /// The address peers reach this replica at.
    pub advertise: String,
    /// Every member (this one included) as `(id, raft address)`; empty for a single node.
    pub peers: Vec<(u64, String)>,
    /// The data directory (`raft/` and `raft-snapshots/` are created in it).
    pub data_dir: PathBuf,
    /// Build a snapshot after this many log entries since the last one.
    pub snapshot_logs: u64,
    /// Log entries kept behind a snapshot (for slow followers); older ones are purged.
    pub keep_logs: u64,
    /// Most concurrent writes that may share one log entry (1: every write is an entry of its
    /// own); see [`crate::raft::group_commit`].
    pub max_group_commands: usize,
    /// Mutual TLS with the cluster CA, or (tests only) plaintext; see [`crate::raft::tls`].
    pub transport: RaftTransport,
    /// `raft.join`: this replica joins a running cluster (added with `mosaicctl raft add`); it
    /// never initialises one.
    pub join: bool,
    /// `raft.vote_with_empty_disk`: a pristine replica votes at once (a restore from backup).
    pub vote_with_empty_disk: bool,
}

/// What the diagnostics endpoint reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMetrics {
    /// This replica.
    pub node_id: u64,
    /// The leader this replica knows of.
    pub leader_id: Option<u64>,
    /// The current term.
    pub term: u64,
    /// The last applied log index (0: none).
    pub last_applied: u64,
    /// The last log index (0: none).
    pub last_log_index: u64,
    /// Whether this replica is the leader.
    pub is_leader: bool,
    /// The voters of the current membership.
    pub voters: Vec<u64>,
    /// The last index the current snapshot covers.
    pub snapshot_index: Option<u64>,
}

/// On-disk figures, to check that the data directory stays bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageStats {
    /// Entries in the log tree.
    pub log_entries: usize,
    /// The last index the current snapshot file covers.
    pub snapshot_index: Option<u64>,
}

/// A running replica.
pub struct RaftNode {
    node_id: u64,
    raft: Raft,
    store: Arc<RaftStore>,
    shared: Arc<SmShared>,
    log: Mutex<Option<LogStore>>,
    db: Mutex<Option<sled::Db>>,
    server: Mutex<Option<ServerTask>>,
    membership: Membership,
    formats: Arc<EntryFormats>,
    negotiator: Mutex<Option<JoinHandle<()>>>,
    local_addr: SocketAddr,
    data_dir: PathBuf,
}

/// Whether opening failed because another handle still holds the database's file lock. sled
/// 0.34 reports that as `ErrorKind::Other` with the message "could not acquire lock on ..." (the
/// `WouldBlock` it got is only in the text), so both forms are recognised.
fn is_locked(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

fn storage_err(path: &Path, e: impl std::fmt::Display) -> RaftError {
    RaftError::Storage {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Opens sled, waiting a little if another handle in this process still holds its lock.
async fn open_db(path: &Path) -> Result<sled::Db, RaftError> {
    let deadline = tokio::time::Instant::now() + OPEN_RETRY;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(e) if is_locked(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(storage_err(path, e)),
        }
    }
}

// === impl RaftSettings ===

impl RaftSettings {
    /// Settings with the default snapshot policy (every 1,000 entries, keeping 500 behind it).
    pub fn new(
        node_id: u64,
        listen: impl Into<String>,
        advertise: impl Into<String>,
        peers: Vec<(u64, String)>,
        data_dir: impl Into<PathBuf>,
        transport: RaftTransport,
    ) -> Self {
        Self {
            transport,
            node_id,
            listen: listen.into(),
            advertise: advertise.into(),
            peers,
            data_dir: data_dir.into(),
            snapshot_logs: 1000,
            keep_logs: 500,
            max_group_commands: MAX_GROUP_COMMANDS,
            join: false,
            vote_with_empty_disk: false,
        }
    }

    /// The initial membership: `peers`, or this node alone.
    fn membership(&self) -> Result<BTreeMap<u64, BasicNode>, RaftError> {
        if self.node_id == 0 {
            return Err(RaftError::Config("raft.node_id must not be 0".into()));
        }
        if self.peers.is_empty() {
            return Ok(BTreeMap::from([(
                self.node_id,
                BasicNode::new(self.advertise.clone()),
            )]));
        }
        let mut members = BTreeMap::new();
        for (id, addr) in &self.peers {
            if *id == 0 {
                return Err(RaftError::Config(
                    "raft.peers: node id 0 is not allowed".into(),
                ));
            }
            if members.insert(*id, BasicNode::new(addr.clone())).is_some() {
                return Err(RaftError::Config(format!(
                    "raft.peers lists node {id} twice"
                )));
            }
        }
        if !members.contains_key(&self.node_id) && !self.join {
            return Err(RaftError::Config(format!(
                "raft.peers must list every member including this one (node {}); every replica needs the same list",
                self.node_id
            )));
        }
        Ok(members)
    }

    fn raft_config(&self) -> Result<Config, RaftError> {
        if self.snapshot_logs == 0 {
            return Err(RaftError::Config("snapshot_logs must be at least 1".into()));
        }
        Config {
            cluster_name: "mosaic-global".into(),
            heartbeat_interval: 250,
            election_timeout_min: 1500,
            election_timeout_max: 3000,
            install_snapshot_timeout: 60_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs),
            max_in_snapshot_log_to_keep: self.keep_logs,
            purge_batch_size: 64,
            // Entries (a group commit is up to ~1 MiB of commands, a single command up to a
            // document's 2 MiB and its encoding) per AppendEntries, so a catch-up message stays
            // well inside the transport's MAX_MESSAGE.
            max_payload_entries: 16,
            ..Config::default()
        }
        .validate()
        .map_err(|e| RaftError::Config(e.to_string()))
    }
}

// === impl RaftNode ===

impl RaftNode {
    /// Opens the data directory, starts raft and its gRPC service, and bootstraps the cluster
    /// (see the module doc).
    pub async fn start(settings: RaftSettings) -> Result<RaftNode, RaftError> {
        let members = settings.membership()?;
        let config = Arc::new(settings.raft_config()?);
        let listen: SocketAddr = settings.listen.parse().map_err(|e| {
            RaftError::Config(format!(
                "raft.listen {:?} is not host:port: {e}",
                settings.listen
            ))
        })?;
        let db_path = settings.data_dir.join("raft");
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| RaftError::Io {
            path: settings.data_dir.display().to_string(),
            source,
        })?;
        let db = open_db(&db_path).await?;
        let log = LogStore::open(&db).map_err(|e| storage_err(&db_path, e))?;
        let snap_dir = settings.data_dir.join("raft-snapshots");
        let reads = entry_format::readable();
        let sm = StateMachine::open(&db, &snap_dir, reads).map_err(|source| RaftError::Io {
            path: snap_dir.display().to_string(),
            source,
        })?;
        let shared = sm.shared();
        let trees = shared
            .trees()
            .map_err(|e| storage_err(&db_path, e.to_string()))?;
        if let Err(too_old) = entry_format::check_start(&trees, reads)
            .map_err(|e| storage_err(&db_path, e.to_string()))?
        {
            return Err(too_old.into());
        }
        let formats = Arc::new(EntryFormats::new(reads, {
            let shared = shared.clone();
            move || entry_format::cluster_format(&shared.trees()?)
        }));
        if reads < crate::store::command::ENTRY_FORMAT {
            tracing::warn!(
                node = settings.node_id,
                reads,
                "this replica reads raft log entry formats up to {reads} only (failpoint raft.entry_format.readable), as an older release would"
            );
        }

        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| RaftError::Bind {
                addr: settings.listen.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| RaftError::Bind {
            addr: settings.listen.clone(),
            source,
        })?;

        let raft = Raft::new(
            settings.node_id,
            config,
            NetworkFactory::new(settings.node_id, settings.transport.clone()),
            log.clone(),
            sm,
        )
        .await
        .map_err(|e| RaftError::Raft(e.to_string()))?;

        let group = GroupCommit::spawn(raft.clone(), settings.max_group_commands, formats.clone());
        let negotiator = format_upgrade::spawn_negotiator(
            settings.node_id,
            raft.clone(),
            group.clone(),
            settings.transport.clone(),
            formats.clone(),
        );
        let membership = Membership::new(
            settings.node_id,
            raft.clone(),
            settings.transport.clone(),
            formats.clone(),
        );
        // Behind the join gate until bootstrap decides (see the module doc).
        let pristine = !raft
            .is_initialized()
            .await
            .map_err(|e| RaftError::Raft(e.to_string()))?;
        if pristine && settings.vote_with_empty_disk {
            tracing::warn!(
                node = settings.node_id,
                "raft.vote_with_empty_disk is set: this replica's disk is empty and it votes at once; use it only while restoring from a backup, and remove it afterwards"
            );
        } else if pristine {
            membership.hold_until_joined();
        }
        let service = RaftServiceServer::new(RaftGrpc::new(
            settings.node_id,
            raft.clone(),
            group.clone(),
            membership.clone(),
            formats.clone(),
        ))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
        let check = PeerCheck::new(
            &settings.transport,
            settings.node_id,
            settings.peers.iter().map(|(id, _)| *id).collect(),
            raft.clone(),
        );
        let service = tonic::service::interceptor::InterceptedService::new(
            service,
            move |request: tonic::Request<()>| check.check(request),
        );
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = settings.transport.server_config() {
            builder = builder
                .tls_config(tls)
                .map_err(|e| RaftError::Config(format!("raft TLS: {e}")))?;
        }
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(builder.add_service(service).serve_with_incoming_shutdown(
            mosaic_runtime::net::nodelay_incoming(listener),
            async {
                let _ = stop_rx.await;
            },
        ));
        tracing::info!(node = settings.node_id, %local_addr, "raft transport listening");

        let node = RaftNode {
            node_id: settings.node_id,
            store: Arc::new(RaftStore::new(
                settings.node_id,
                raft.clone(),
                group,
                shared.clone(),
                settings.transport.clone(),
            )),
            raft,
            shared,
            log: Mutex::new(Some(log)),
            db: Mutex::new(Some(db)),
            server: Mutex::new(Some((stop_tx, server))),
            membership,
            formats,
            negotiator: Mutex::new(Some(negotiator)),
            local_addr,
            data_dir: settings.data_dir.clone(),
        };
        if let Err(e) = node.bootstrap(&settings, members).await {
            let _ = node.shutdown().await;
            return Err(e);
        }
        Ok(node)
    }

    async fn bootstrap(
        &self,
        settings: &RaftSettings,
        members: BTreeMap<u64, BasicNode>,
    ) -> Result<(), RaftError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| RaftError::Raft(e.to_string()))?;
        if initialized {
            tracing::info!(
                node = self.node_id,
                "raft state found on disk; not initialising"
            );
            return Ok(());
        }
        if settings.join {
            tracing::info!(
                node = self.node_id,
                "raft.join is set and the disk is empty: not initialising; waiting to be added (`mosaicctl raft add {} {}`) and replicated to",
                self.node_id,
                settings.advertise
            );
            return Ok(());
        }
        match self.formed_peer(settings).await {
            Formed::Elected(peer) => {
                tracing::info!(
                    node = self.node_id,
                    peer,
                    "peer belongs to a formed cluster; waiting to be replicated to instead of initialising, and not voting until then"
                );
                return Ok(());
            }
            Formed::Starting(peer) => {
                // A new cluster whose first election is still to come: this node never voted.
                tracing::info!(
                    node = self.node_id,
                    peer,
                    "peer initialised the cluster, which has not elected a leader yet; waiting to be replicated to"
                );
                self.membership.open_gate();
                return Ok(());
            }
            Formed::No => {}
        }
        match self.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(node = self.node_id, "raft cluster initialised");
                self.membership.open_gate();
                Ok(())
            }
            // Another replica got there first (its entries reached us); the gate opens once
            // its leader is known.
            Err(OrError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(RaftError::Raft(e.to_string())),
        }
    }

    /// Whether a peer says it belongs to a formed cluster (one that has elected a leader
    /// first).
    async fn formed_peer(&self, settings: &RaftSettings) -> Formed {
        let asks = settings
            .peers
            .iter()
            .filter(|(id, _)| *id != self.node_id)
            .map(|(id, addr)| {
                let (id, addr) = (*id, addr.clone());
                let me = self.node_id;
                let transport = settings.transport.clone();
                async move {
                    let mut c = client(transport.channel(id, &addr).ok()?);
                    let mut req = tonic::Request::new(ProbeRequest { node_id: me });
                    req.set_timeout(PROBE_TIMEOUT);
                    match tokio::time::timeout(PROBE_TIMEOUT, c.probe(req))
                        .await
                        .ok()?
                    {
                        Ok(reply) => {
                            let reply = reply.into_inner();
                            match (reply.initialized, reply.elected) {
                                (true, true) => Some(Formed::Elected(id)),
                                (true, false) => Some(Formed::Starting(id)),
                                _ => None,
                            }
                        }
                        // A formed cluster whose membership does not name this node.
                        Err(status) if status.code() == tonic::Code::PermissionDenied => {
                            Some(Formed::Elected(id))
                        }
                        Err(_) => None,
                    }
                }
            });
        let mut tasks = tokio::task::JoinSet::new();
        for ask in asks {
            tasks.spawn(ask);
        }
        let mut found = Formed::No;
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Some(f @ Formed::Elected(_))) => return f,
                Ok(Some(f)) => found = f,
                _ => {}
            }
        }
        found
    }

    /// The resource store over this replica.
    pub fn store(&self) -> Arc<RaftStore> {
        self.store.clone()
    }

    /// The openraft handle (membership changes, manual snapshots, waiting on metrics).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Membership changes through this replica (the admin API's `/raft/members`).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The log entry formats this replica reads and its cluster writes.
    pub fn entry_formats(&self) -> &EntryFormats {
        &self.formats
    }

    /// The address the raft transport is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Leader, term, applied index, ... for diagnostics and metrics.
    pub fn metrics(&self) -> RaftMetrics {
        let m = self.raft.metrics().borrow().clone();
        RaftMetrics {
            node_id: self.node_id,
            leader_id: m.current_leader,
            term: m.current_term,
            last_applied: m.last_applied.map(|l| l.index).unwrap_or_default(),
            last_log_index: m.last_log_index.unwrap_or_default(),
            is_leader: m.current_leader == Some(self.node_id),
            voters: m.membership_config.membership().voter_ids().collect(),
            snapshot_index: m.snapshot.map(|l| l.index),
        }
    }

    /// On-disk figures (0 entries once shut down).
    pub fn storage_stats(&self) -> StorageStats {
        let log_entries = self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(LogStore::len)
            .unwrap_or_default();
        StorageStats {
            log_entries,
            snapshot_index: self
                .shared
                .snapshot_meta()
                .and_then(|m| m.last_log_id)
                .map(|l| l.index),
        }
    }

    /// Stops raft and the gRPC service and drops every sled handle, so the data directory can be
    /// opened again (also in this process). Idempotent.
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        if let Some(n) = self
            .negotiator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            n.abort();
        }
        let raft_result = self.raft.shutdown().await;
        let server = self
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = server {
            let _ = stop.send(());
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(node = self.node_id, error = %e, "raft transport stopped with an error")
                }
                Err(e) => {
                    tracing::warn!(node = self.node_id, error = %e, "raft transport task failed")
                }
            }
        }
        self.shared.close();
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let db = self
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(db) = db
            && let Err(e) = db.flush_async().await
        {
            tracing::warn!(node = self.node_id, error = %e, "final flush failed");
        }
        raft_result.map_err(|e| RaftError::Raft(format!("raft did not stop cleanly: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handle still open in this process (as right after a shutdown, while sled's last
    /// references go) makes a reopen wait instead of failing.
    #[tokio::test]
    async fn a_reopen_waits_for_the_previous_handle_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft");
        let first = open_db(&path).await.unwrap();
        let held = sled::Config::new().path(&path).open();
        let Err(e) = held else {
            panic!("a second handle on a locked database opened")
        };
        assert!(is_locked(&e), "{e}");

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let release = tokio::spawn(async move {
            let _ = rx.await;
            drop(first);
        });
        let reopen = tokio::spawn({
            let path = path.clone();
            async move { open_db(&path).await }
        });
        // The reopen usually starts (and retries) before the first handle goes; either way it
        // must succeed. The assertion above is what pins sled's lock error down.
        tokio::task::yield_now().await;
        tx.send(()).unwrap();
        release.await.unwrap();
        let db = reopen
            .await
            .unwrap()
            .expect("reopened once the lock was released");
        drop(db);
    }
}
