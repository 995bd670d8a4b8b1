//! Linearizability of the resource API on a 3-replica loopback cluster (issue #16): a healthy
//! cluster's history is linearizable and its default reads never go back on a replica; the
//! deliberately broken build (failpoint `store.write.ack_before_commit` on the leader, reads
//! through the followers) is caught by the checker.

use std::time::{Duration, Instant};

use mosaic_lincheck::{Verdict, Workload, WorkloadOptions, check, check_monotonic};
use mosaic_testkit::GlobalCluster as Cluster;

const READY: Duration = Duration::from_secs(60);

async fn cluster() -> anyhow::Result<Cluster> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        3,
        10_000,
    )?;
    cluster.start_all()?;
    for i in 0..3 {
        cluster.wait_ready(i, READY).await?;
    }
    Ok(cluster)
}

fn apis(cluster: &Cluster) -> Vec<String> {
    (0..cluster.replicas.len())
        .map(|i| cluster.api(i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_cluster_is_linearizable_and_default_reads_are_monotonic() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let workload = Workload::new(
        reqwest::Client::new(),
        apis(&cluster),
        WorkloadOptions {
            duration: Duration::from_secs(8),
            ..WorkloadOptions::default()
        },
    );
    workload
        .ensure_mesh(READY)
        .await
        .map_err(anyhow::Error::msg)?;
    let history = workload.run().await;
    let verdict = check(&history);
    let local = check_monotonic(&history, &[]);
    println!(
        "lincheck[loopback healthy]: {} operations, {} indeterminate: {verdict}; default reads: {local:?}",
        history.ops.len(),
        history.indeterminate()
    );
    if !verdict.is_linearizable() {
        let path = history.save("loopback-healthy", &verdict.to_string())?;
        anyhow::bail!("{verdict}; history in {}", path.display());
    }
    anyhow::ensure!(history.ops.len() > 100, "too few operations ran");
    let checked = local.map_err(anyhow::Error::msg)?;
    anyhow::ensure!(checked > 10, "too few default reads ({checked})");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_writes_answered_before_they_commit() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let leader = cluster.wait_leader(READY).await?;
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let setup = Workload::new(
        reqwest::Client::new(),
        apis(&cluster),
        WorkloadOptions::default(),
    );
    setup.ensure_mesh(READY).await.map_err(anyhow::Error::msg)?;
    // The leader answers each write at once and proposes it 300 ms later.
    cluster
        .failpoints(leader)
        .set("store.write.ack_before_commit", "return(300)")
        .await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut run = 0;
    loop {
        run += 1;
        let workload = Workload::new(
            reqwest::Client::new(),
            apis(&cluster),
            WorkloadOptions {
                prefix: format!("broken{run}"),
                duration: Duration::from_secs(5),
                write_replicas: vec![leader],
                read_replicas: followers.clone(),
                local_reads: false,
                seed: run,
                ..WorkloadOptions::default()
            },
        );
        let history = workload.run().await;
        let verdict = check(&history);
        println!(
            "lincheck[loopback ack-before-commit, run {run}]: {} operations, {} indeterminate: {verdict}",
            history.ops.len(),
            history.indeterminate()
        );
        if let Verdict::NotLinearizable { .. } = verdict {
            let path = history.save("loopback-ack-before-commit", &verdict.to_string())?;
            println!("the failing history is in {}", path.display());
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the checker did not catch the broken build in {run} runs"
        );
    }
    cluster
        .failpoints(leader)
        .clear("store.write.ack_before_commit")
        .await?;
    Ok(())
}
