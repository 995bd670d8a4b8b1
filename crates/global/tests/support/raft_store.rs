//! REAL raft stores for the API and token tests (no test doubles): sled in temp dirs, the raft
//! gRPC transport on loopback ports.
//!
//! - [`TestStore`]: one replica that is the leader of its own one-member cluster.
//! - [`TestCluster`]: a few replicas of one cluster, for races between replicas and for losing
//!   the majority.
//!
//! Both shut their nodes down in an explicit async `stop()`; dropping one without it (a failed
//! assertion) shuts down best-effort in the background. Waits poll with generous deadlines;
//! nothing here asserts how long anything took.

use std::{
    collections::BTreeSet,
    future::Future,
    ops::Deref,
    sync::Arc,
    time::{Duration, Instant},
};

use mosaic_core::resource::{Resource, ResourceType, Spec, parse_document};
use mosaic_global::{
    raft::{RaftError, RaftNode, RaftSettings, RaftStore, RaftTls, RaftTransport},
    store::{Command, CommandResult, ResourceKey, ResourceStore},
};
use mosaic_runtime::tls::CaPem;
use tempfile::TempDir;
use time::OffsetDateTime;

/// How long any wait may take before the test gives up (generous: CI machines are slow).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often to start over on fresh ports when a probed-free port was taken meanwhile.
const BIND_ATTEMPTS: usize = 5;

/// `n` loopback ports that were free a moment ago.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// A fresh raft cluster CA (as `mosaic-global generate raft-ca` makes).
pub fn cluster_ca() -> CaPem {
    mosaic_runtime::tls::generate_ca("test raft CA").expect("generate a raft CA")
}

/// Node `id`'s raft transport: mutual TLS with a certificate from `ca`.
pub fn mtls(ca: &CaPem, id: u64) -> RaftTransport {
    RaftTransport::mtls(RaftTls::issue(ca, id).expect("issue a raft certificate"))
}

/// Polls `check` until it holds; panics with `what` after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for: {what}");
}

/// The index of the last committed log entry on `leader`, once its metrics show it applied.
/// Proposals (accepted or refused) each add one entry; reads add none. Asks the raft core rather
/// than trusting the metrics alone, which may trail a reply that was just sent.
pub async fn committed_index(leader: &RaftNode) -> u64 {
    let (read, _) = leader
        .raft()
        .get_read_log_id()
        .await
        .expect("this node is the leader");
    let index = read.map(|l| l.index).unwrap_or_default();
    leader
        .raft()
        .wait(Some(DEADLINE))
        .applied_index_at_least(Some(index), "metrics show the committed index applied")
        .await
        .expect("applied");
    let m = leader.metrics();
    assert_eq!(
        m.last_log_index, index,
        "no proposal may be in flight while the index is read"
    );
    index
}

/// Waits until `node` has applied the entry format it reads as the cluster's: a fresh cluster
/// writes format 1 until its leader has heard from every member, then commits the raise (one
/// internal entry). Tests that count log entries start after it, so the raise is not counted.
pub async fn format_settled(node: &RaftNode) {
    let formats = node.entry_formats();
    eventually(
        "the cluster writes the entry format its replicas read",
        || std::future::ready(formats.cluster() == formats.reads()),
    )
    .await;
}

/// Every resource of every type on a replica, from its local state.
pub fn all_resources(store: &RaftStore) -> Vec<Resource> {
    ResourceType::ALL
        .into_iter()
        .flat_map(|t| store.list(t, None).expect("list"))
        .collect()
}

/// The names of every Mesh on a replica, from its local state.
pub fn mesh_names(store: &RaftStore) -> BTreeSet<String> {
    store
        .list(ResourceType::Mesh, None)
        .expect("list")
        .into_iter()
        .map(|r| r.meta.name)
        .collect()
}

/// Shuts `nodes` down in the background, removing `dirs` afterwards (best-effort, for `Drop`).
fn stop_in_background(nodes: Vec<RaftNode>, dirs: Vec<TempDir>) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            for node in nodes {
                let _ = node.shutdown().await;
            }
            drop(dirs);
        });
    }
}

/// One real replica, leader of a one-member cluster, in a temp dir. Derefs to its store.
pub struct TestStore {
    node: Option<RaftNode>,
    store: Arc<RaftStore>,
    dir: Option<TempDir>,
}

impl TestStore {
    /// Starts a fresh replica and waits until it leads and writes the newest entry format.
    pub async fn start() -> TestStore {
        let mut attempt = 0;
        let (node, dir) = loop {
            attempt += 1;
            let dir = tempfile::tempdir().expect("temp dir");
            let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
            let settings = RaftSettings::new(
                1,
                addr.clone(),
                addr,
                Vec::new(),
                dir.path().join("global"),
                mtls(&cluster_ca(), 1),
            );
            match RaftNode::start(settings).await {
                Ok(node) => break (node, dir),
                Err(RaftError::Bind { .. }) if attempt < BIND_ATTEMPTS => continue,
                Err(e) => panic!("cannot start a raft node: {e}"),
            }
        };
        eventually("the single replica leads", || {
            std::future::ready(node.metrics().is_leader)
        })
        .await;
        format_settled(&node).await;
        TestStore {
            store: node.store(),
            node: Some(node),
            dir: Some(dir),
        }
    }

    /// The store, for handing to the code under test.
    pub fn store(&self) -> Arc<RaftStore> {
        self.store.clone()
    }

    /// The node.
    pub fn node(&self) -> &RaftNode {
        self.node.as_ref().expect("running")
    }

    /// Proposes `cmd` through raft (as a zone's KDS sync would), bypassing the API.
    pub async fn apply(&self, cmd: Command) -> CommandResult {
        self.store.write(cmd).await.expect("write")
    }

    /// Stores a resource given as YAML through raft, bypassing the API; it must be accepted.
    pub async fn put(&self, yaml: &str) {
        let r = parse_document(yaml.as_bytes()).expect("fixture");
        let result = self
            .apply(Command::put(&r, OffsetDateTime::now_utc()))
            .await;
        assert!(matches!(result, CommandResult::Put { .. }), "{result:?}");
    }

    /// The last committed log index (see [`committed_index`]): unchanged when nothing was proposed.
    pub async fn log_index(&self) -> u64 {
        committed_index(self.node()).await
    }

    /// Every stored resource.
    pub fn all(&self) -> Vec<Resource> {
        all_resources(&self.store)
    }

    /// A mesh Secret's decoded value (as text) and version; panics when absent.
    pub fn get_secret(&self, mesh: &str, name: &str) -> (String, Option<u64>) {
        let key = ResourceKey::new(ResourceType::Secret, Some(mesh), name);
        let r = self
            .store
            .get(&key)
            .expect("get")
            .unwrap_or_else(|| panic!("secret {mesh}/{name} is missing"));
        let Spec::Secret(s) = &r.spec else {
            panic!("not a secret")
        };
        let value = s.value().expect("base64").into_inner();
        (String::from_utf8_lossy(&value).into_owned(), r.meta.version)
    }

    /// Shuts the node down cleanly and removes its directory.
    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await.expect("clean shutdown");
        }
        self.dir.take();
    }
}

impl Deref for TestStore {
    type Target = RaftStore;

    fn deref(&self) -> &RaftStore {
        &self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            stop_in_background(vec![node], self.dir.take().into_iter().collect());
        }
    }
}

/// Real replicas of one cluster, each in its own temp dir, on loopback ports.
pub struct TestCluster {
    nodes: Vec<Option<RaftNode>>,
    dirs: Vec<TempDir>,
}

impl TestCluster {
    /// Starts `n` replicas of a fresh cluster concurrently, as a deployment would, and waits until
    /// every replica has applied the newest entry format ([`format_settled`]).
    pub async fn start(n: usize) -> TestCluster {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let peers: Vec<(u64, String)> = free_ports(n)
                .into_iter()
                .enumerate()
                .map(|(i, p)| (i as u64 + 1, format!("127.0.0.1:{p}")))
                .collect();
            let dirs: Vec<TempDir> = (0..n)
                .map(|_| tempfile::tempdir().expect("temp dir"))
                .collect();
            let ca = cluster_ca();
            let starts: Vec<_> = peers
                .iter()
                .zip(&dirs)
                .map(|((id, addr), dir)| {
                    let settings = RaftSettings::new(
                        *id,
                        addr.clone(),
                        addr.clone(),
                        peers.clone(),
                        dir.path().join("global"),
                        mtls(&ca, *id),
                    );
                    tokio::spawn(RaftNode::start(settings))
                })
                .collect();
            let mut nodes = Vec::new();
            let mut failure = None;
            for start in starts {
                match start.await.expect("start task") {
                    Ok(node) => nodes.push(node),
                    Err(e) => failure = Some(e),
                }
            }
            match failure {
                None => {
                    for node in &nodes {
                        format_settled(node).await;
                    }
                    return TestCluster {
                        nodes: nodes.into_iter().map(Some).collect(),
                        dirs,
                    };
                }
                Some(e) => {
                    for node in nodes {
                        let _ = node.shutdown().await;
                    }
                    match e {
                        RaftError::Bind { .. } if attempt < BIND_ATTEMPTS => continue,
                        e => panic!("cannot start a raft cluster: {e}"),
                    }
                }
            }
        }
    }

    /// Replica `i` (0-based); panics when it was stopped.
    pub fn node(&self, i: usize) -> &RaftNode {
        self.nodes[i].as_ref().expect("replica is running")
    }

    /// Replica `i`'s store.
    pub fn store(&self, i: usize) -> Arc<RaftStore> {
        self.node(i).store()
    }

    fn running(&self) -> impl Iterator<Item = &RaftNode> {
        self.nodes.iter().flatten()
    }

    /// Waits until every running replica agrees on a leader; returns its index.
    pub async fn leader(&self) -> usize {
        let mut found = None;
        eventually("a leader every running replica agrees on", || {
            let leaders: BTreeSet<Option<u64>> =
                self.running().map(|n| n.metrics().leader_id).collect();
            found = match leaders.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(l)] => Some(*l),
                _ => None,
            }
            .filter(|l| {
                self.running()
                    .any(|n| n.metrics().node_id == *l && n.metrics().is_leader)
            });
            std::future::ready(found.is_some())
        })
        .await;
        (found.expect("leader") - 1) as usize
    }

    /// Shuts replica `i` down cleanly (its directory stays until the cluster is dropped).
    pub async fn stop_node(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("replica is running");
        node.shutdown().await.expect("clean shutdown");
    }

    /// Shuts every running replica down cleanly and removes the directories.
    pub async fn stop(mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_some() {
                self.stop_node(i).await;
            }
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let nodes: Vec<RaftNode> = self.nodes.iter_mut().filter_map(Option::take).collect();
        if !nodes.is_empty() {
            stop_in_background(nodes, std::mem::take(&mut self.dirs));
        }
    }
}
