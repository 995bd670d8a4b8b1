//! Online membership change of a 3-replica global, as real processes on loopback, driven the way
//! an operator would: `mosaicctl raft members|add|promote|remove` against the HTTP API.
//!
//! - A dead replica (killed, its disk gone) is replaced by a new one at a new address while
//!   writes flow; no acknowledged write is lost and the new replica is a real voter.
//! - A replica that starts with an empty disk where a cluster exists joins instead of
//!   bootstrapping, and does not vote until a leader has replicated to it; a replica whose disk
//!   was wiped rejoins under its old id the same way.
//! - Bad requests are refused and change nothing.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mosaic_testkit::{GlobalCluster as Cluster, cli, workspace_binary};
use serde_json::Value;

const READY: Duration = Duration::from_secs(60);
const DEADLINE: Duration = Duration::from_secs(60);
const MESH: &str = "type: Mesh\nname: default\n";

fn secret(name: &str) -> String {
    format!("type: Secret\nmesh: default\nname: {name}\ndata: aGVsbG8=\n")
}

fn cluster() -> anyhow::Result<Cluster> {
    Cluster::new(Path::new(env!("CARGO_BIN_EXE_mosaic-global")), 3, 10_000)
}

async fn start(cluster: &mut Cluster) -> anyhow::Result<()> {
    cluster.start_all()?;
    for i in 0..cluster.replicas.len() {
        cluster.wait_ready(i, READY).await?;
    }
    Ok(())
}

/// `mosaicctl --api <replica i> ARGS`: exit code, stdout, stderr.
fn ctl(cluster: &Cluster, i: usize, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let dir = tempfile::tempdir()?;
    let mut cmd = cli::command(workspace_binary("mosaicctl")?, dir.path());
    cmd.arg("--api").arg(cluster.api(i)).args(args);
    cli::output(&mut cmd)
}

/// `mosaicctl raft members -o json` through replica `i`.
fn members(cluster: &Cluster, i: usize) -> anyhow::Result<Value> {
    let (code, out, err) = ctl(cluster, i, &["raft", "members", "-o", "json"])?;
    anyhow::ensure!(code == 0, "raft members via replica {}: {err}", i + 1);
    Ok(serde_json::from_str(&out)?)
}

fn roles(view: &Value) -> Vec<(u64, String)> {
    view["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["id"].as_u64().unwrap_or_default(),
                m["role"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn secret_names(cluster: &Cluster, i: usize) -> anyhow::Result<Vec<String>> {
    cluster
        .all_names(i, "/meshes/default/secrets?consistent=true&size=1000")
        .await
}

async fn until<T>(
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        anyhow::ensure!(start.elapsed() < DEADLINE, "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes secrets `s-0000`, `s-0001`, ... through the given APIs in turn until told to stop;
/// a write counts as acknowledged only when a replica answers 2xx.
struct Writer {
    acked: Arc<Mutex<Vec<String>>>,
    apis: Arc<Mutex<Vec<String>>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Writer {
    fn start(apis: Vec<String>) -> Self {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let apis = Arc::new(Mutex::new(apis));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn({
            let (acked, apis) = (acked.clone(), apis.clone());
            async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()?;
                let mut n = 0usize;
                while !*stopped.borrow() {
                    let name = format!("s-{n:04}");
                    let targets = apis.lock().map(|a| a.clone()).unwrap_or_default();
                    for attempt in 0..targets.len() {
                        let api = &targets[(n + attempt) % targets.len()];
                        let resp = http
                            .put(format!("{api}/meshes/default/secrets/{name}"))
                            .header("content-type", "application/yaml")
                            .body(secret(&name))
                            .send()
                            .await;
                        if let Ok(r) = resp
                            && r.status().is_success()
                        {
                            if let Ok(mut a) = acked.lock() {
                                a.push(name.clone());
                            }
                            break;
                        }
                    }
                    n += 1;
                }
                anyhow::Ok(())
            }
        });
        Self {
            acked,
            apis,
            stop,
            task,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().map(|a| a.len()).unwrap_or(0)
    }

    async fn until_acked(&self, n: usize) -> anyhow::Result<()> {
        let start = Instant::now();
        while self.acked() < n {
            anyhow::ensure!(
                start.elapsed() < DEADLINE,
                "writes stalled at {} acknowledged",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    fn set_apis(&self, apis: Vec<String>) {
        if let Ok(mut a) = self.apis.lock() {
            *a = apis;
        }
    }

    async fn finish(self) -> anyhow::Result<Vec<String>> {
        let _ = self.stop.send(true);
        self.task.await??;
        Ok(self.acked.lock().map(|a| a.clone()).unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_is_replaced_online_while_writes_flow_and_no_acknowledged_write_is_lost()
-> anyhow::Result<()> {
    let mut cluster = cluster()?;
    start(&mut cluster).await?;
    let leader = cluster.wait_leader(READY).await?;
    assert_eq!(cluster.put(leader, "/meshes/default", MESH).await?.0, 201);

    let writer = Writer::start((0..3).map(|i| cluster.api(i)).collect());
    writer.until_acked(20).await?;

    // Replica 3 dies for good: killed, its disk gone. Writes go on through 1 and 2.
    let dead = if leader == 2 { 0 } else { 2 };
    let live: Vec<usize> = (0..3).filter(|i| *i != dead).collect();
    cluster.wipe(dead)?;
    writer.set_apis(live.iter().map(|i| cluster.api(*i)).collect());
    let before = writer.acked();
    writer.until_acked(before + 20).await?;

    // A new replica, a new disk and a new address, joins.
    let new = cluster.add_replica()?;
    let new_id = cluster.replicas[new].id;
    cluster.start(new)?;
    let (code, out, err) = ctl(
        &cluster,
        live[1],
        &["raft", "add", &new_id.to_string(), &cluster.raft_addr(new)],
    )?;
    assert_eq!(code, 0, "raft add: {out}{err}");
    assert!(out.contains(&format!("added node {new_id}")), "{out}");
    // Caught up: the leader's view shows the learner close behind.
    let leader = cluster.wait_leader(READY).await?;
    until("the learner caught up", || {
        let view = members(&cluster, leader)?;
        let caught_up = view["members"].as_array().into_iter().flatten().any(|m| {
            m["id"] == new_id && m["role"] == "learner" && m["lag"].as_u64().is_some_and(|l| l < 50)
        });
        Ok(caught_up.then_some(()))
    })
    .await?;
    let (code, out, err) = ctl(&cluster, live[0], &["raft", "promote", &new_id.to_string()])?;
    assert_eq!(code, 0, "raft promote: {out}{err}");
    let dead_id = cluster.replicas[dead].id;
    let (code, out, err) = ctl(&cluster, live[1], &["raft", "remove", &dead_id.to_string()])?;
    assert_eq!(code, 0, "raft remove: {out}{err}");
    assert!(out.contains(&format!("removed node {dead_id}")), "{out}");

    let mut voters: Vec<u64> = live.iter().map(|i| cluster.replicas[*i].id).collect();
    voters.push(new_id);
    voters.sort_unstable();
    for i in live.iter().copied().chain([new]) {
        let view = until("every replica sees the new membership", || {
            let view = members(&cluster, i)?;
            let mut got: Vec<u64> = roles(&view)
                .into_iter()
                .filter(|(_, r)| r == "voter")
                .map(|(id, _)| id)
                .collect();
            got.sort_unstable();
            Ok((got == voters && !view["changing"].as_bool().unwrap_or(true)).then_some(view))
        })
        .await?;
        assert_eq!(view["joining"], false, "replica {}: {view}", i + 1);
    }
    let (code, table, _) = ctl(&cluster, new, &["raft", "members"])?;
    assert_eq!(code, 0);
    assert!(table.contains("voter"), "{table}");
    assert!(!table.contains(&cluster.raft_addr(dead)), "{table}");

    // The new replica takes writes too, then the writes stop.
    writer.set_apis(vec![
        cluster.api(new),
        cluster.api(live[0]),
        cluster.api(live[1]),
    ]);
    let before = writer.acked();
    writer.until_acked(before + 20).await?;
    let acked = writer.finish().await?;
    println!(
        "replacement: {} writes acknowledged while node {} was replaced by node {new_id}",
        acked.len(),
        cluster.replicas[dead].id
    );

    for i in live.iter().copied().chain([new]) {
        let present = secret_names(&cluster, i).await?;
        let lost: Vec<&String> = acked.iter().filter(|a| !present.contains(a)).collect();
        assert!(
            lost.is_empty(),
            "replica {}: {} acknowledged writes lost: {lost:?}",
            i + 1,
            lost.len()
        );
    }

    // The new replica is a real voter: with one of the original two down, the other and the new
    // one still form a quorum and take writes.
    let leader = cluster.wait_leader(READY).await?;
    let down = if leader == live[0] { live[1] } else { live[0] };
    cluster.kill(down);
    let up = if down == live[0] { live[1] } else { live[0] };
    let (status, body) = cluster
        .put(up, "/meshes/default/secrets/after", &secret("after"))
        .await?;
    assert_eq!(
        status, 201,
        "a quorum of the old replica and the new one: {body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_disk_joins_instead_of_bootstrapping_and_votes_only_once_replicated_to()
-> anyhow::Result<()> {
    let mut cluster = cluster()?;
    start(&mut cluster).await?;
    let leader = cluster.wait_leader(READY).await?;
    assert_eq!(cluster.put(leader, "/meshes/default", MESH).await?.0, 201);

    // raft.join with an empty disk: no cluster of its own, no vote, not ready, until added.
    let new = cluster.add_replica()?;
    let new_id = cluster.replicas[new].id;
    cluster.start(new)?;
    let view = until("the joining replica answers", || {
        Ok(members(&cluster, new).ok())
    })
    .await?;
    assert_eq!(view["joining"], true, "{view}");
    assert!(
        roles(&view).is_empty(),
        "it formed no cluster of its own: {view}"
    );
    assert!(
        cluster
            .log(new)
            .contains("raft.join is set and the disk is empty: not initialising"),
        "{}",
        cluster.log_tail(new)
    );
    let ready = reqwest::get(format!("{}/ready", cluster.diag_url(new))).await?;
    assert_eq!(ready.status(), 503, "a joining replica knows no leader yet");

    // Refusals change nothing.
    let id = new_id.to_string();
    let (code, _, err) = ctl(&cluster, leader, &["raft", "promote", &id])?;
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("node {new_id} is not a member")),
        "{err}"
    );
    assert!(err.contains("mosaicctl raft add"), "{err}");
    let (code, _, err) = ctl(&cluster, leader, &["raft", "add", &id, "no-port"])?;
    assert_eq!(code, 1);
    assert!(err.contains("has no port"), "{err}");
    let (code, _, err) = ctl(
        &cluster,
        leader,
        &["raft", "remove", &(leader as u64 + 1).to_string()],
    )?;
    assert_eq!(code, 1);
    assert!(
        err.contains("is the leader and cannot remove itself"),
        "{err}"
    );
    let other = (leader + 1) % 3;
    let (code, _, err) = ctl(
        &cluster,
        leader,
        &["raft", "add", &id, &cluster.raft_addr(other)],
    )?;
    assert_eq!(code, 1);
    assert!(err.contains(&format!("is node {}'s", other + 1)), "{err}");
    assert_eq!(
        roles(&members(&cluster, leader)?).len(),
        3,
        "nothing changed"
    );

    // Added (through a follower, which forwards): it is replicated to, and the gate opens.
    let (code, out, err) = ctl(
        &cluster,
        other,
        &["raft", "add", &id, &cluster.raft_addr(new)],
    )?;
    assert_eq!(code, 0, "{out}{err}");
    let view = until("the learner joined", || {
        let view = members(&cluster, new)?;
        Ok((view["joining"] == false).then_some(view))
    })
    .await?;
    assert!(
        roles(&view).contains(&(new_id, "learner".to_string())),
        "{view}"
    );
    cluster.wait_ready(new, READY).await?;
    assert_eq!(
        cluster.get(new, "/meshes/default?consistent=true").await?.0,
        200
    );
    until("the learner logs that it joined", || {
        Ok(cluster
            .log(new)
            .contains("joined the cluster")
            .then_some(()))
    })
    .await?;
    // Adding the same learner again is a no-op; at another address it is refused.
    let (code, _, err) = ctl(
        &cluster,
        leader,
        &["raft", "add", &id, &cluster.raft_addr(new)],
    )?;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ctl(&cluster, leader, &["raft", "add", &id, "127.0.0.1:9"])?;
    assert_eq!(code, 1);
    assert!(err.contains("is already a learner"), "{err}");

    // A wiped voter restarted under its old id (no raft.join): it finds the formed cluster,
    // holds its vote, and rejoins once the leader replicates to it.
    let leader = cluster.wait_leader(READY).await?;
    let wiped = (leader + 1) % 3;
    cluster.wipe(wiped)?;
    cluster.start(wiped)?;
    cluster.wait_ready(wiped, READY).await?;
    let log = cluster.log(wiped);
    assert!(
        log.contains(
            "waiting to be replicated to instead of initialising, and not voting until then"
        ),
        "{}",
        cluster.log_tail(wiped)
    );
    until("the wiped replica logs that it joined", || {
        Ok(cluster
            .log(wiped)
            .contains("joined the cluster")
            .then_some(()))
    })
    .await?;
    assert_eq!(
        cluster
            .get(wiped, "/meshes/default?consistent=true")
            .await?
            .0,
        200
    );
    Ok(())
}
