//! Real raft replicas (sled in temp dirs, gRPC on loopback ports): writes, forwarding, failover,
//! restarts from disk, snapshots with log purging, catch-up of a wiped replica, refusals.
//! Waits poll with generous deadlines; nothing asserts how long anything took.

use std::{
    collections::BTreeSet,
    future::Future,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use mosaic_core::resource::{ResourceType, parse_document};
use mosaic_global::{
    raft::{
        RaftNode, RaftSettings, RaftStore, RaftTls, RaftTransport, group_commit::MAX_GROUP_COMMANDS,
    },
    store::{ChangeOp, Command, CommandResult, Refusal, ResourceKey, ResourceStore},
};
use tempfile::TempDir;
use time::OffsetDateTime;

const DEADLINE: Duration = Duration::from_secs(60);

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn put_mesh(name: &str) -> Command {
    let r = parse_document(format!("type: Mesh\nname: {name}\n").as_bytes()).unwrap();
    Command::put(&r, OffsetDateTime::now_utc())
}

fn put_yaml(yaml: &str) -> Command {
    Command::put(
        &parse_document(yaml.as_bytes()).unwrap(),
        OffsetDateTime::now_utc(),
    )
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for: {what}");
}

fn mesh_names(store: &RaftStore) -> BTreeSet<String> {
    store
        .list(ResourceType::Mesh, None)
        .unwrap()
        .into_iter()
        .map(|r| r.meta.name)
        .collect()
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// A cluster of replicas on loopback ports, each in its own temp dir.
struct Cluster {
    dirs: Vec<TempDir>,
    settings: Vec<RaftSettings>,
    nodes: Vec<Option<RaftNode>>,
}

impl Cluster {
    /// `max_group_commands`: 1 makes every write an entry of its own.
    async fn start(
        n: usize,
        snapshot_logs: u64,
        keep_logs: u64,
        max_group_commands: usize,
    ) -> Cluster {
        let ports = free_ports(n);
        let peers: Vec<(u64, String)> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64 + 1, format!("127.0.0.1:{p}")))
            .collect();
        let dirs: Vec<TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let ca = mosaic_runtime::tls::generate_ca("test raft CA").unwrap();
        let settings: Vec<RaftSettings> = (0..n)
            .map(|i| {
                let addr = peers[i].1.clone();
                let id = i as u64 + 1;
                let mut s = RaftSettings::new(
                    id,
                    addr.clone(),
                    addr,
                    if n == 1 { Vec::new() } else { peers.clone() },
                    dirs[i].path().join("global"),
                    RaftTransport::mtls(RaftTls::issue(&ca, id).unwrap()),
                );
                s.snapshot_logs = snapshot_logs;
                s.keep_logs = keep_logs;
                s.max_group_commands = max_group_commands;
                s
            })
            .collect();
        let mut cluster = Cluster {
            dirs,
            settings,
            nodes: (0..n).map(|_| None).collect(),
        };
        // Start them concurrently, as replicas of a fresh cluster would.
        let starts = cluster
            .settings
            .iter()
            .cloned()
            .map(|s| tokio::spawn(RaftNode::start(s)));
        let mut nodes = Vec::new();
        for s in starts.collect::<Vec<_>>() {
            nodes.push(Some(s.await.unwrap().unwrap()));
        }
        cluster.nodes = nodes;
        cluster
    }

    fn node(&self, i: usize) -> &RaftNode {
        self.nodes[i].as_ref().unwrap()
    }

    fn store(&self, i: usize) -> Arc<RaftStore> {
        self.node(i).store()
    }

    fn running(&self) -> impl Iterator<Item = (usize, &RaftNode)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// Waits until every running replica agrees on a leader; returns its index.
    async fn leader(&self) -> usize {
        let mut found = None;
        eventually("a leader every running replica agrees on", || {
            let leaders: BTreeSet<Option<u64>> =
                self.running().map(|(_, n)| n.metrics().leader_id).collect();
            let leader = match leaders.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(l)] => Some(*l),
                _ => None,
            };
            found = leader.filter(|l| {
                self.running()
                    .any(|(_, n)| n.metrics().node_id == *l && n.metrics().is_leader)
            });
            std::future::ready(found.is_some())
        })
        .await;
        (found.unwrap() - 1) as usize
    }

    async fn stop(&mut self, i: usize) {
        let node = self.nodes[i].take().unwrap();
        node.shutdown().await.unwrap();
    }

    async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none());
        self.nodes[i] = Some(RaftNode::start(self.settings[i].clone()).await.unwrap());
    }

    async fn shutdown_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_some() {
                self.stop(i).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_writes_reads_and_restarts() {
    let mut c = Cluster::start(1, 1000, 500, MAX_GROUP_COMMANDS).await;
    c.leader().await;
    let store = c.store(0);
    let mut feed = store.subscribe();

    let r = store.write(put_mesh("default")).await.unwrap();
    let CommandResult::Put { version, created } = r else {
        panic!("{r:?}")
    };
    assert!(created);
    store.read_barrier().await.unwrap();
    let mesh = store.get(&ResourceKey::mesh("default")).unwrap().unwrap();
    assert_eq!(mesh.meta.version, Some(version));
    assert!(mesh.meta.creation_time.is_some());

    let change = feed.recv().await.unwrap();
    assert_eq!(change.key, ResourceKey::mesh("default"));
    assert_eq!(change.op, ChangeOp::Put);
    assert_eq!(change.version, version);

    let r = store
        .write(Command::PutInternal {
            key: "signing-key".into(),
            value: b"k1".to_vec(),
            if_absent: true,
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        CommandResult::Internal {
            value: b"k1".to_vec()
        }
    );
    assert_eq!(store.internal("signing-key").unwrap(), Some(b"k1".to_vec()));

    let r = store
        .write(Command::delete(ResourceKey::mesh("default"), false))
        .await
        .unwrap();
    assert_eq!(r, CommandResult::Deleted { cascaded: 0 });
    assert_eq!(feed.recv().await.unwrap().op, ChangeOp::Delete);
    store.write(put_mesh("kept")).await.unwrap();

    // Reopen the same directory in this process: nothing lost, not re-initialised.
    drop(store);
    c.stop(0).await;
    c.restart(0).await;
    c.leader().await;
    let store = c.store(0);
    store.read_barrier().await.unwrap();
    assert_eq!(mesh_names(&store), BTreeSet::from(["kept".to_string()]));
    assert_eq!(store.internal("signing-key").unwrap(), Some(b"k1".to_vec()));
    assert_eq!(c.node(0).metrics().voters, vec![1]);
    store.write(put_mesh("after-restart")).await.unwrap();
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_forward_fail_over_and_restart_from_disk() {
    let mut c = Cluster::start(3, 1000, 500, MAX_GROUP_COMMANDS).await;
    let leader = c.leader().await;
    for (_, n) in c.running() {
        assert_eq!(n.metrics().voters, vec![1, 2, 3]);
    }

    // Writes through every node; followers forward to the leader.
    let mut acked = BTreeSet::new();
    for round in 0..5 {
        for i in 0..3 {
            let name = format!("m-{i}-{round}");
            let r = c.store(i).write(put_mesh(&name)).await.unwrap();
            assert!(
                matches!(r, CommandResult::Put { created: true, .. }),
                "{r:?}"
            );
            acked.insert(name);
        }
    }
    // A follower's read barrier makes its reads see every acknowledged write.
    for i in 0..3 {
        let store = c.store(i);
        store.read_barrier().await.unwrap();
        assert_eq!(mesh_names(&store), acked, "node {}", i + 1);
    }

    // Kill the leader: the others elect a new one, which accepts writes from both.
    c.stop(leader).await;
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    for (i, _) in c.running().collect::<Vec<_>>() {
        let name = format!("after-failover-{i}");
        c.store(i).write(put_mesh(&name)).await.unwrap();
        acked.insert(name);
    }
    for (i, _) in c.running() {
        let store = c.node(i).store();
        store.read_barrier().await.unwrap();
        assert_eq!(mesh_names(&store), acked);
    }

    // The old leader comes back and catches up.
    c.restart(leader).await;
    let back = c.store(leader);
    eventually("the old leader catches up", || {
        std::future::ready(mesh_names(&back) == acked)
    })
    .await;
    drop(back);

    // Restart all three from disk: everything acknowledged is still there.
    c.shutdown_all().await;
    for i in 0..3 {
        c.restart(i).await;
    }
    c.leader().await;
    for i in 0..3 {
        let store = c.store(i);
        store.read_barrier().await.unwrap();
        assert_eq!(mesh_names(&store), acked, "node {} after restart", i + 1);
    }
    let r = c.store(0).write(put_mesh("after-restart")).await.unwrap();
    assert!(matches!(r, CommandResult::Put { created: true, .. }));
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_back_through_a_follower() {
    let mut c = Cluster::start(3, 1000, 500, MAX_GROUP_COMMANDS).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    let store = c.store(follower);

    // The Mesh first (a Secret needs its Mesh), then the Secret, then the backend naming it.
    store.write(put_mesh("default")).await.unwrap();
    store
        .write(put_yaml(
            "type: Secret\nmesh: default\nname: token-1\ndata: dA==\n",
        ))
        .await
        .unwrap();
    store
        .write(put_yaml(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: v\n  backends:\n  - name: v\n    type: vault\n    conf:\n      fromCp:\n        address: http://vault:8200\n        pki: p\n        role: r\n        auth:\n          token:\n            secret: token-1\n",
        ))
        .await
        .unwrap();
    let secret = ResourceKey::new(ResourceType::Secret, Some("default"), "token-1");
    let r = store
        .write(Command::delete(secret.clone(), false))
        .await
        .unwrap();
    let CommandResult::Refused(Refusal::Conflict(msg)) = r else {
        panic!("{r:?}")
    };
    assert!(msg.contains("used by Mesh"), "{msg}");
    store.read_barrier().await.unwrap();
    assert!(store.get(&secret).unwrap().is_some(), "nothing was deleted");

    // A batch with a refused member applies nothing, wherever it is sent.
    let r = store
        .write(Command::Batch(vec![
            put_mesh("other"),
            Command::delete(ResourceKey::mesh("missing"), false),
        ]))
        .await
        .unwrap();
    assert!(
        matches!(r, CommandResult::Refused(Refusal::NotFound(_))),
        "{r:?}"
    );
    store.read_barrier().await.unwrap();
    assert!(store.get(&ResourceKey::mesh("other")).unwrap().is_none());
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_bound_the_log_and_a_wiped_replica_catches_up() {
    const SNAPSHOT_LOGS: u64 = 100;
    const KEEP_LOGS: u64 = 50;
    // Every write an entry of its own, so the counts below are log entries.
    let mut c = Cluster::start(3, SNAPSHOT_LOGS, KEEP_LOGS, 1).await;
    let leader = c.leader().await;
    let store = c.store(leader);
    store.write(put_mesh("other")).await.unwrap();

    async fn write_same_key(store: &Arc<RaftStore>, n: usize) -> u64 {
        let mut last = 0;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            if tasks.len() >= 16
                && let Some(r) = tasks.join_next().await
            {
                last = last.max(r.unwrap());
            }
            let s = store.clone();
            tasks.spawn(async move {
                match s.write(put_mesh("default")).await.unwrap() {
                    CommandResult::Put { version, .. } => version,
                    other => panic!("{other:?}"),
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            last = last.max(r.unwrap());
        }
        last
    }

    // Warm up: sled's files reach their working size, snapshots and purges are under way.
    write_same_key(&store, 3000).await;
    let size = |c: &Cluster| {
        (0..3)
            .map(|i| dir_size(c.node(i).data_dir()))
            .max()
            .unwrap()
    };
    let warm = size(&c);
    let last_version = write_same_key(&store, 3000).await;

    for i in 0..3 {
        let node_store = c.store(i);
        node_store.read_barrier().await.unwrap();
        let mesh = node_store
            .get(&ResourceKey::mesh("default"))
            .unwrap()
            .unwrap();
        assert_eq!(mesh.meta.version, Some(last_version));
    }
    eventually("every replica has a snapshot and a purged log", || {
        let ok = (0..3).all(|i| {
            let s = c.node(i).storage_stats();
            s.snapshot_index.is_some() && s.log_entries as u64 <= SNAPSHOT_LOGS + KEEP_LOGS + 64
        });
        std::future::ready(ok)
    })
    .await;
    let after = size(&c);
    eprintln!("largest data dir: {warm} bytes after 3,000 writes, {after} after 6,000");
    // Another 3,000 entries of history must not show up on disk: the log is purged behind
    // snapshots and only the newest snapshot file is kept.
    assert!(
        after <= warm + warm / 4 + 256 * 1024 && after < 32 * 1024 * 1024,
        "data dir grew from {warm} to {after} bytes"
    );

    // Wipe a follower's disk and restart it with the same id: it rejoins (no re-initialisation)
    // and catches up through a snapshot, since the log it needs is purged.
    let follower = (leader + 1) % 3;
    c.stop(follower).await;
    std::fs::remove_dir_all(&c.settings[follower].data_dir).unwrap();
    c.restart(follower).await;
    let wiped = c.store(follower);
    eventually("the wiped replica catches up", || {
        let ok = wiped
            .get(&ResourceKey::mesh("default"))
            .ok()
            .flatten()
            .is_some_and(|m| m.meta.version == Some(last_version))
            && wiped
                .get(&ResourceKey::mesh("other"))
                .ok()
                .flatten()
                .is_some();
        std::future::ready(ok)
    })
    .await;
    let stats = c.node(follower).storage_stats();
    assert!(
        stats.snapshot_index.is_some(),
        "caught up through a snapshot: {stats:?}"
    );
    assert_eq!(c.node(follower).metrics().voters, vec![1, 2, 3]);

    // It serves writes again (forwarded) and stays in step.
    let r = wiped.write(put_mesh("after-wipe")).await.unwrap();
    assert!(matches!(r, CommandResult::Put { created: true, .. }));
    wiped.read_barrier().await.unwrap();
    assert!(
        wiped
            .get(&ResourceKey::mesh("after-wipe"))
            .unwrap()
            .is_some()
    );
    drop(wiped);
    drop(store);
    let _ = &c.dirs;
    c.shutdown_all().await;
}

/// Many writers at once, through every replica: concurrent writes share raft entries (group
/// commit), yet each writer gets the answer its own write deserves and nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_each_get_their_own_answer() {
    const WRITERS: usize = 300;
    let mut c = Cluster::start(3, 1000, 500, MAX_GROUP_COMMANDS).await;
    c.leader().await;
    c.store(0).write(put_mesh("default")).await.unwrap();

    // Writer k: a Secret in mesh `default` (created), or every fifth one the deletion of a Mesh
    // that does not exist (refused), or every seventh one the create-only write of one shared
    // Secret (exactly one of those wins).
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..WRITERS {
        let store = c.store(k % 3);
        tasks.spawn(async move {
            let cmd = if k % 7 == 0 {
                let r = parse_document(b"type: Secret\nmesh: default\nname: shared\ndata: dA==\n")
                    .unwrap();
                Command::Put {
                    resource: r.to_universal(),
                    now: OffsetDateTime::now_utc(),
                    expect_version: Some(0),
                }
            } else if k % 5 == 0 {
                Command::delete(ResourceKey::mesh(&format!("missing-{k}")), false)
            } else {
                put_yaml(&format!(
                    "type: Secret\nmesh: default\nname: s-{k}\ndata: dA==\n"
                ))
            };
            (k, store.write(cmd).await.unwrap())
        });
    }
    let mut created = BTreeSet::new();
    let mut shared_wins = 0;
    while let Some(r) = tasks.join_next().await {
        let (k, result) = r.unwrap();
        match (k % 7 == 0, k % 5 == 0, result) {
            (true, _, CommandResult::Put { created: true, .. }) => shared_wins += 1,
            (true, _, CommandResult::Refused(Refusal::Conflict(_))) => {}
            (false, true, CommandResult::Refused(Refusal::NotFound(msg))) => {
                assert!(msg.contains(&format!("missing-{k}")), "{msg}");
            }
            (false, false, CommandResult::Put { created: true, .. }) => {
                created.insert(format!("s-{k}"));
            }
            (_, _, other) => panic!("writer {k} got {other:?}"),
        }
    }
    assert_eq!(
        shared_wins, 1,
        "exactly one create-only write of `shared` wins"
    );
    created.insert("shared".to_string());

    for (i, node) in c.running() {
        let store = node.store();
        store.read_barrier().await.unwrap();
        let names: BTreeSet<String> = store
            .list(ResourceType::Secret, None)
            .unwrap()
            .into_iter()
            .map(|r| r.meta.name)
            .collect();
        assert_eq!(
            names, created,
            "replica {i} holds exactly the created Secrets"
        );
    }
    let m = c.node(0).metrics();
    eprintln!(
        "{WRITERS} concurrent writes (plus 1) took {} log entries",
        m.last_log_index
    );
    c.shutdown_all().await;
}
