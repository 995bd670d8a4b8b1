//! The backup and restore procedure of docs/operator-guide.md, on real processes:
//!
//! 1. Backup: stop one replica (SIGTERM), copy its data directory, start it again. The other two
//!    keep a quorum, so the API stays writable throughout.
//! 2. Disaster: every replica's data is lost.
//! 3. Restore: put the copy into ONE replica's (empty) data directory and start it first; then
//!    start the other two with empty data directories. They find a formed cluster and are
//!    replicated to; the restored state (Meshes, the KDS CA, token signing keys) is back, writes
//!    after the backup are gone, and the cluster accepts writes again.

use std::{path::Path, time::Duration};

use mosaic_testkit::{
    GlobalCluster,
    join::{wait_for_kds_ca, zone_token},
    workspace_binary,
};

const WAIT: Duration = Duration::from_secs(60);

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

async fn mesh_names(cluster: &GlobalCluster, i: usize) -> anyhow::Result<Vec<String>> {
    let (status, body) = cluster.get(i, "/meshes").await?;
    anyhow::ensure!(status == 200, "GET /meshes on {}: {status} {body}", i + 1);
    let mut names = GlobalCluster::names(&body);
    names.sort();
    Ok(names)
}

async fn wait_meshes(cluster: &GlobalCluster, i: usize, want: &[&str]) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    loop {
        let names = mesh_names(cluster, i).await.unwrap_or_default();
        if names == want {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "replica {} has meshes {names:?}, expected {want:?}; log:\n{}",
            i + 1,
            cluster.log_tail(i)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_healthy(cluster: &GlobalCluster, i: usize) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}/healthy", cluster.replicas[i].diag);
    let http = reqwest::Client::new();
    let start = std::time::Instant::now();
    loop {
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "replica {} not serving; log:\n{}",
            i + 1,
            cluster.log_tail(i)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_copied_data_directory_restores_the_cluster() -> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 3, 10_000)?;
    cluster.start_all()?;
    for i in 0..3 {
        cluster.wait_ready(i, WAIT).await?;
    }
    cluster.wait_leader(WAIT).await?;
    let (status, body) = cluster
        .put(0, "/meshes/before", "type: Mesh\nname: before\n")
        .await?;
    anyhow::ensure!(status == 201, "{status} {body}");
    // A zone token issued before the backup (its signing key is in the store).
    let token_before = zone_token(&cluster, 0, "east", "24h").await?;
    wait_for_kds_ca(&cluster, 2, WAIT).await?;
    let kds_ca_before = std::fs::read_to_string(cluster.kds_ca_path(2))?;
    wait_meshes(&cluster, 2, &["before"]).await?;

    // 1. Backup replica 3 while the other two serve.
    let backup = tempfile::tempdir()?;
    cluster.stop(2)?;
    copy_dir(&cluster.data_dir(2), &backup.path().join("data"))?;
    let (status, body) = cluster
        .put(0, "/meshes/during", "type: Mesh\nname: during\n")
        .await?;
    anyhow::ensure!(status == 201, "writable during the backup: {status} {body}");
    cluster.start(2)?;
    cluster.wait_ready(2, WAIT).await?;
    wait_meshes(&cluster, 2, &["before", "during"]).await?;

    // 2. Disaster.
    for i in 0..3 {
        cluster.wipe(i)?;
    }

    // 3. Restore onto replica 1 (not the one backed up), start it first, then the empty ones.
    copy_dir(&backup.path().join("data"), &cluster.data_dir(0))?;
    cluster.start(0)?;
    wait_healthy(&cluster, 0).await?;
    // The empty ones vote for the restored one only when told that their disks are empty on
    // purpose: otherwise each waits to be replicated to (its lost disk may have voted).
    cluster.set_env("MOSAIC_RAFT__VOTE_WITH_EMPTY_DISK", "true");
    cluster.start(1)?;
    cluster.start(2)?;
    for i in 0..3 {
        cluster.wait_ready(i, WAIT).await?;
    }
    cluster.remove_env("MOSAIC_RAFT__VOTE_WITH_EMPTY_DISK");
    cluster.wait_leader(WAIT).await?;
    for i in 0..3 {
        wait_meshes(&cluster, i, &["before"]).await?;
    }
    let (status, body) = cluster
        .put(1, "/meshes/after", "type: Mesh\nname: after\n")
        .await?;
    anyhow::ensure!(status == 201, "writable after the restore: {status} {body}");
    for i in 0..3 {
        wait_meshes(&cluster, i, &["after", "before"]).await?;
    }
    // The same KDS CA (zones keep trusting the global) on every replica.
    for i in 0..3 {
        wait_for_kds_ca(&cluster, i, WAIT).await?;
        assert_eq!(
            std::fs::read_to_string(cluster.kds_ca_path(i))?,
            kds_ca_before,
            "replica {}: KDS CA changed",
            i + 1
        );
    }
    // A zone token issued before the backup still authenticates (the signing keys came back),
    // and the zone trusts the restored KDS certificate.
    let binary = workspace_binary("mosaic-zone")?;
    let mut zone = cluster
        .start_zone(&binary, "east", &[0, 1, 2], &token_before, WAIT)
        .await?;
    zone.wait_for("/meshes", "the restored Meshes arrive", WAIT, |b| {
        let mut names = GlobalCluster::names(b);
        names.sort();
        names == ["after", "before"]
    })
    .await?;
    zone.kill();
    Ok(())
}
