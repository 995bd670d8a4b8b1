//! Disk and crash faults on a 3-replica global, as real processes with failpoints (test builds
//! carry them; see `mosaic_global::failpoint`): an fsync error on a follower and a full disk on
//! the leader, a crash between log append and apply, a crash during snapshot install. In each,
//! the replica acknowledges nothing it did not make durable, answers 503 or stops, and once
//! restarted (as systemd or Kubernetes would) the cluster resumes without repair, every
//! acknowledged write on every replica.

use std::{
    path::Path,
    process::ExitStatus,
    time::{Duration, Instant},
};

use mosaic_testkit::GlobalCluster as Cluster;

const READY: Duration = Duration::from_secs(60);
const DEADLINE: Duration = Duration::from_secs(60);
const MESH: &str = "type: Mesh\nname: default\n";

fn secret(name: &str) -> String {
    format!("type: Secret\nmesh: default\nname: {name}\ndata: aGVsbG8=\n")
}

async fn started(snapshot_after_logs: u64) -> anyhow::Result<Cluster> {
    let mut cluster = Cluster::new(
        Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        3,
        snapshot_after_logs,
    )?;
    cluster.start_all()?;
    for i in 0..3 {
        cluster.wait_ready(i, READY).await?;
    }
    let leader = cluster.wait_leader(READY).await?;
    assert_eq!(cluster.put(leader, "/meshes/default", MESH).await?.0, 201);
    Ok(cluster)
}

/// Writes `names` through replica `i`, each of which must be acknowledged.
async fn write_all(cluster: &Cluster, i: usize, names: &[String]) -> anyhow::Result<()> {
    for name in names {
        let (status, body) = cluster
            .put(i, &format!("/meshes/default/secrets/{name}"), &secret(name))
            .await?;
        anyhow::ensure!(
            status == 201,
            "write {name} through replica {}: {status} {body}",
            i + 1
        );
    }
    Ok(())
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|k| format!("{prefix}-{k:03}")).collect()
}

async fn secret_names(cluster: &Cluster, i: usize) -> anyhow::Result<Vec<String>> {
    cluster
        .all_names(i, "/meshes/default/secrets?consistent=true&size=1000")
        .await
}

/// Waits until replica `i` exits by itself.
async fn exits(cluster: &mut Cluster, i: usize) -> anyhow::Result<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = cluster.exited(i)? {
            return Ok(status);
        }
        anyhow::ensure!(
            start.elapsed() < DEADLINE,
            "replica {} did not stop after the fault; its snapshot and failpoint lines:\n{}\nlog:\n{}",
            i + 1,
            cluster
                .log(i)
                .lines()
                .filter(|l| l.contains("snapshot") || l.contains("failpoint"))
                .collect::<Vec<_>>()
                .join("\n"),
            cluster.log_tail(i)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Restarts replica `i` and checks that every replica holds every acknowledged write and that
/// they all hold the same secrets.
async fn restarted_and_whole(
    cluster: &mut Cluster,
    i: usize,
    acked: &[String],
) -> anyhow::Result<()> {
    cluster.start(i)?;
    if let Err(e) = cluster.wait_ready(i, READY).await {
        let log = cluster.log(i);
        let lines: Vec<&str> = log.lines().collect();
        let panics: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains("panicked") || l.contains("failpoint"))
            .flat_map(|(n, _)| lines[n..(n + 3).min(lines.len())].iter())
            .map(|l| l.to_string())
            .collect();
        anyhow::bail!("{e}\npanics and failpoints:\n{}", panics.join("\n"));
    }
    let mut seen = Vec::new();
    for r in 0..3 {
        let present = secret_names(cluster, r).await?;
        let lost: Vec<&String> = acked.iter().filter(|a| !present.contains(a)).collect();
        assert!(
            lost.is_empty(),
            "replica {}: acknowledged writes lost: {lost:?}",
            r + 1
        );
        seen.push(present);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "the replicas hold the same secrets"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fsync_error_or_a_full_disk_stops_the_replica_and_a_restart_resumes()
-> anyhow::Result<()> {
    let mut cluster = started(10_000).await?;
    let mut acked = Vec::new();

    // A follower's fsync fails: it stops; the leader and the other follower go on.
    let leader = cluster.wait_leader(READY).await?;
    let follower = (leader + 1) % 3;
    cluster
        .failpoints(follower)
        .set("raft.log.fsync", "return")
        .await?;
    let batch = names("f", 10);
    write_all(&cluster, leader, &batch).await?;
    acked.extend(batch);
    let status = exits(&mut cluster, follower).await?;
    assert!(
        !status.success(),
        "a storage fault is an error exit: {status}"
    );
    let log = cluster.log(follower);
    assert!(
        log.contains("raft stopped on a storage fault") && log.contains("Input/output error"),
        "{}",
        cluster.log_tail(follower)
    );
    restarted_and_whole(&mut cluster, follower, &acked).await?;

    // The leader's disk is full: the write it could not make durable is not acknowledged.
    let leader = cluster.wait_leader(READY).await?;
    cluster
        .failpoints(leader)
        .set("raft.log.fsync", "return(enospc)")
        .await?;
    let answer = cluster
        .put(leader, "/meshes/default/secrets/full", &secret("full"))
        .await;
    match answer {
        Ok((status, body)) => assert_eq!(status, 503, "not acknowledged: {body}"),
        // The replica may already be stopping: no answer is no acknowledgement either.
        Err(e) => eprintln!("the write to the full leader got no answer: {e}"),
    }
    let status = exits(&mut cluster, leader).await?;
    assert!(!status.success(), "{status}");
    assert!(
        cluster.log(leader).contains("No space left on device"),
        "{}",
        cluster.log_tail(leader)
    );
    // The other two elect a leader and take writes while the full one is down.
    let next = cluster.wait_leader(READY).await?;
    assert_ne!(next, leader);
    let batch = names("after-full", 5);
    write_all(&cluster, next, &batch).await?;
    acked.extend(batch);
    // Space freed (a restart has no failpoint set): it rejoins without repair.
    restarted_and_whole(&mut cluster, leader, &acked).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_log_append_and_apply_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let mut cluster = started(10_000).await?;
    let mut acked = names("before", 5);
    let leader = cluster.wait_leader(READY).await?;
    write_all(&cluster, leader, &acked).await?;

    // A follower crashes with the entry in its log, not yet applied.
    let follower = (leader + 2) % 3;
    cluster
        .failpoints(follower)
        .set("raft.apply.crash", "return")
        .await?;
    let batch = names("f", 3);
    write_all(&cluster, leader, &batch).await?;
    acked.extend(batch);
    exits(&mut cluster, follower).await?;
    assert!(
        cluster
            .log(follower)
            .contains("crashing between log append and apply"),
        "{}",
        cluster.log_tail(follower)
    );
    restarted_and_whole(&mut cluster, follower, &acked).await?;

    // The leader crashes the same way: its write is not acknowledged (it may still commit, as
    // the followers hold it), and the others go on.
    let leader = cluster.wait_leader(READY).await?;
    cluster
        .failpoints(leader)
        .set("raft.apply.crash", "return")
        .await?;
    let answer = cluster
        .put(leader, "/meshes/default/secrets/l", &secret("l"))
        .await;
    assert!(
        !matches!(answer, Ok((201, _))),
        "a write whose leader crashed before applying it is not acknowledged: {answer:?}"
    );
    exits(&mut cluster, leader).await?;
    let next = cluster.wait_leader(READY).await?;
    let batch = names("after", 3);
    write_all(&cluster, next, &batch).await?;
    acked.extend(batch);
    restarted_and_whole(&mut cluster, leader, &acked).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_snapshot_install_recovers_on_restart() -> anyhow::Result<()> {
    // A snapshot every 20 entries: a wiped follower can only catch up from one.
    let mut cluster = started(20).await?;
    let mut acked = Vec::new();
    for (round, at) in ["before", "after"].into_iter().enumerate() {
        let leader = cluster.wait_leader(READY).await?;
        let follower = (leader + 1) % 3;
        cluster.wipe(follower)?;
        let batch = names(&format!("r{round}"), 120);
        write_all(&cluster, leader, &batch).await?;
        acked.extend(batch);
        cluster.set_env(
            "FAILPOINTS",
            format!("raft.snapshot.install.crash=return({at})"),
        );
        cluster.start(follower)?;
        cluster.remove_env("FAILPOINTS");
        exits(&mut cluster, follower).await?;
        assert!(
            cluster
                .log(follower)
                .contains("crashing while installing a snapshot"),
            "{at}: {}",
            cluster.log_tail(follower)
        );
        restarted_and_whole(&mut cluster, follower, &acked).await?;
    }
    Ok(())
}
