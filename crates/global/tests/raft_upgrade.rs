//! A rolling upgrade of a 3-replica global across a raft log entry format, as real processes.
//!
//! The cluster starts with every replica reading entry format 1 only (the failpoint
//! `raft.entry_format.readable=return(1)`: what a release from before group commit reads), so
//! concurrent writes go into entries of their own, in the old, bare form. The replicas are then
//! restarted one at a time on the full release while writes continue: the cluster keeps writing
//! format 1 until the last replica reads format 2, then raises it, and groups appear on every
//! replica. No acknowledged write is lost. Finally a replica restarted as the old release again
//! (a downgrade) refuses to start, naming both formats, and the other two keep taking writes.
//!
//! Each proposal is held 100 ms (`raft.propose.delay`), so concurrent writes do queue behind
//! the proposal slots and would share entries if the cluster allowed it.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use mosaic_testkit::GlobalCluster as Cluster;
use serde_json::Value;

const READY: Duration = Duration::from_secs(60);
const DEADLINE: Duration = Duration::from_secs(60);
const MESH: &str = "type: Mesh\nname: default\n";
const OLD_RELEASE: &str = "raft.entry_format.readable=return(1);raft.propose.delay=return(100)";
const NEW_RELEASE: &str = "raft.propose.delay=return(100)";
/// Concurrent writers in each burst.
const WRITERS: usize = 24;

fn secret(name: &str) -> String {
    format!("type: Secret\nmesh: default\nname: {name}\ndata: aGVsbG8=\n")
}

/// `WRITERS` concurrent writes of secrets `<prefix>-<k>`, spread over the running replicas; every
/// one must be acknowledged. Returns their names.
async fn burst(cluster: &Cluster, prefix: &str) -> anyhow::Result<Vec<String>> {
    let running: Vec<usize> = (0..3).filter(|i| cluster.is_running(*i)).collect();
    let mut writes = Vec::new();
    for k in 0..WRITERS {
        let name = format!("{prefix}-{k:02}");
        let i = running[k % running.len()];
        writes.push(async move {
            let path = format!("/meshes/default/secrets/{name}");
            let (status, body) = cluster.put(i, &path, &secret(&name)).await?;
            anyhow::ensure!(
                status == 201,
                "write {name} through replica {}: {status} {body}",
                i + 1
            );
            Ok(name)
        });
    }
    let mut names = Vec::new();
    for r in join_all(writes).await {
        names.push(r?);
    }
    Ok(names)
}

/// Runs `futures` concurrently on this task and returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Replica `i`'s `/metrics` text.
async fn metrics(cluster: &Cluster, i: usize) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("{}/metrics", cluster.diag_url(i)))
        .await?
        .text()
        .await?)
}

/// The value of the sample `series` (name and labels, as printed) in `text`; 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Entries of format 2 (groups) replica `i` applied.
async fn groups_applied(cluster: &Cluster, i: usize) -> anyhow::Result<f64> {
    Ok(sample(
        &metrics(cluster, i).await?,
        r#"mosaic_raft_entries_applied_total{format="2"}"#,
    ))
}

/// `GET /raft/members` through replica `i`.
async fn members(cluster: &Cluster, i: usize) -> anyhow::Result<Value> {
    let (status, body) = cluster.get(i, "/raft/members").await?;
    anyhow::ensure!(status == 200, "GET /raft/members: {status} {body}");
    Ok(body)
}

/// Restarts replica `i` (gracefully, as a package upgrade would) with the cluster's current
/// environment.
async fn restart(cluster: &mut Cluster, i: usize) -> anyhow::Result<()> {
    cluster.stop(i)?;
    cluster.start(i)?;
    cluster.wait_ready(i, READY).await
}

/// Checks that nothing was written in format 2 on any running replica, and that each says the
/// cluster writes format 1.
async fn still_format_1(cluster: &Cluster, when: &str) -> anyhow::Result<()> {
    for i in (0..3).filter(|i| cluster.is_running(*i)) {
        assert_eq!(
            groups_applied(cluster, i).await?,
            0.0,
            "{when}: replica {} applied group entries while a member reads format 1 only",
            i + 1
        );
        let view = members(cluster, i).await?;
        assert_eq!(view["entryFormat"], 1, "{when}: replica {}: {view}", i + 1);
    }
    Ok(())
}

#[tokio::test]
async fn a_rolling_upgrade_raises_the_entry_format_only_once_every_replica_reads_it() {
    let mut cluster =
        Cluster::new(Path::new(env!("CARGO_BIN_EXE_mosaic-global")), 3, 10_000).expect("cluster");
    cluster.set_env("FAILPOINTS", OLD_RELEASE);
    cluster.start_all().expect("start");
    for i in 0..3 {
        cluster.wait_ready(i, READY).await.expect("ready");
    }
    let leader = cluster.wait_leader(READY).await.expect("leader");
    assert_eq!(
        cluster
            .put(leader, "/meshes/default", MESH)
            .await
            .expect("mesh")
            .0,
        201
    );

    // The old release: entries of their own, format 1.
    let mut acked = burst(&cluster, "old")
        .await
        .expect("writes on the old release");
    still_format_1(&cluster, "on the old release")
        .await
        .expect("format 1");
    let view = members(&cluster, leader).await.expect("members");
    assert_eq!(view["readsEntryFormat"], 1, "{view}");

    // Upgrade one replica at a time; writes go on after each restart.
    cluster.set_env("FAILPOINTS", NEW_RELEASE);
    for (step, i) in [2usize, 1].into_iter().enumerate() {
        restart(&mut cluster, i).await.expect("restart");
        acked.extend(
            burst(&cluster, &format!("step{step}"))
                .await
                .expect("writes during the upgrade"),
        );
        still_format_1(&cluster, &format!("with replica {} upgraded", i + 1))
            .await
            .expect("format 1");
    }
    // The leader, as each replica answers its probes, knows who holds the upgrade back.
    let leader = cluster.wait_leader(READY).await.expect("leader");
    let start = Instant::now();
    loop {
        let view = members(&cluster, leader).await.expect("members");
        let reads: Vec<Value> = view["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["readsEntryFormat"].clone())
            .collect();
        let mut sorted: Vec<String> = reads.iter().map(Value::to_string).collect();
        sorted.sort();
        if sorted == ["1", "2", "2"] {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the leader never saw one replica on format 1 and two on 2: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The last one: now every member reads format 2 and the cluster raises it.
    restart(&mut cluster, 0).await.expect("restart");
    let start = Instant::now();
    'raised: loop {
        let mut all = true;
        for i in 0..3 {
            let view = members(&cluster, i).await.expect("members");
            all &= view["entryFormat"] == 2 && view["readsEntryFormat"] == 2;
        }
        if all {
            break 'raised;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the entry format was not raised to 2 once every replica read it: {}",
            members(&cluster, 0).await.expect("members")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The gauges say so too (published once a second).
    for i in 0..3 {
        let start = Instant::now();
        loop {
            let text = metrics(&cluster, i).await.expect("metrics");
            if sample(&text, "mosaic_raft_entry_format") == 2.0
                && sample(&text, "mosaic_raft_readable_entry_format") == 2.0
            {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "replica {}: the entry-format gauges never said 2",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Concurrent writes now share entries, on every replica.
    let start = Instant::now();
    let mut round = 0;
    loop {
        acked.extend(
            burst(&cluster, &format!("new{round}"))
                .await
                .expect("writes on the new format"),
        );
        round += 1;
        let mut applied = Vec::new();
        for i in 0..3 {
            applied.push(groups_applied(&cluster, i).await.expect("metrics"));
        }
        if applied.iter().all(|g| *g > 0.0) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no group entries on every replica after {round} bursts of {WRITERS} concurrent writes: {applied:?}"
        );
    }

    // Every acknowledged write, on every replica.
    for i in 0..3 {
        let present = cluster
            .all_names(i, "/meshes/default/secrets?consistent=true&size=1000")
            .await
            .expect("list");
        let lost: Vec<&String> = acked.iter().filter(|a| !present.contains(a)).collect();
        assert!(
            lost.is_empty(),
            "replica {}: acknowledged writes lost: {lost:?}",
            i + 1
        );
    }

    // A downgrade: replica 3 on the old release again refuses to start, naming both formats.
    cluster.set_env("FAILPOINTS", OLD_RELEASE);
    cluster.stop(2).expect("stop");
    cluster.start(2).expect("start");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = cluster.exited(2).expect("exited") {
            break status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the downgraded replica kept running; log:\n{}",
            cluster.log_tail(2)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(1), "{}", cluster.log_tail(2));
    let log = cluster.log(2);
    assert!(
        log.contains(
            "reads raft log entry formats up to 1, but its cluster already writes format 2"
        ) && log.contains("run a release of mosaic-global that reads entry format 2"),
        "the refusal names both formats and what to do:\n{}",
        cluster.log_tail(2)
    );
    let after = burst(&cluster, "after-downgrade")
        .await
        .expect("the other two keep taking writes");
    assert_eq!(after.len(), WRITERS);
}
