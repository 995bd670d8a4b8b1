//! A 3-replica global as real processes on loopback: writes through every replica, kill -9 of
//! the leader in the middle of a stream of writes, full restart, and a wiped replica catching up.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use mosaic_testkit::GlobalCluster as Cluster;

const READY: Duration = Duration::from_secs(60);
const MESH: &str = "type: Mesh\nname: default\n";

fn secret(name: &str) -> String {
    format!("type: Secret\nmesh: default\nname: {name}\ndata: aGVsbG8=\n")
}

async fn start(cluster: &mut Cluster) -> anyhow::Result<()> {
    cluster.start_all()?;
    for i in 0..cluster.replicas.len() {
        cluster.wait_ready(i, READY).await?;
    }
    Ok(())
}

async fn secret_names(cluster: &Cluster, i: usize) -> anyhow::Result<Vec<String>> {
    let (status, body) = cluster
        .get(i, "/meshes/default/secrets?consistent=true&size=1000")
        .await?;
    anyhow::ensure!(
        status == 200,
        "list secrets on replica {}: {status} {body}",
        i + 1
    );
    Ok(Cluster::names(&body))
}

#[tokio::test]
async fn writes_through_every_replica_survive_a_full_restart() -> anyhow::Result<()> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        3,
        10_000,
    )?;
    start(&mut cluster).await?;
    let (status, body) = cluster.put(0, "/meshes/default", MESH).await?;
    assert_eq!(status, 201, "{body}");
    for i in 0..3 {
        let name = format!("via-{}", i + 1);
        let (status, body) = cluster
            .put(
                i,
                &format!("/meshes/default/secrets/{name}"),
                &secret(&name),
            )
            .await?;
        assert_eq!(status, 201, "write through replica {}: {body}", i + 1);
    }
    for i in 0..3 {
        assert_eq!(
            secret_names(&cluster, i).await?,
            ["via-1", "via-2", "via-3"],
            "replica {}",
            i + 1
        );
    }
    for i in 0..3 {
        cluster.kill(i);
    }
    start(&mut cluster).await?;
    for i in 0..3 {
        assert_eq!(
            secret_names(&cluster, i).await?,
            ["via-1", "via-2", "via-3"],
            "after restart, replica {}",
            i + 1
        );
        let (status, mesh) = cluster.get(i, "/meshes/default").await?;
        assert_eq!(status, 200);
        assert!(
            mesh["creationTime"].is_string() && mesh["modificationTime"].is_string(),
            "{mesh}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn killing_the_leader_mid_stream_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        3,
        10_000,
    )?;
    start(&mut cluster).await?;
    let leader = cluster.wait_leader(READY).await?;
    assert_eq!(cluster.put(leader, "/meshes/default", MESH).await?.0, 201);

    let apis: Vec<String> = (0..3).map(|i| cluster.api(i)).collect();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let acked = acked.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?;
            for n in 0..120 {
                let name = format!("s-{n:03}");
                // Try the replicas in turn; a write counts only when one answers 2xx.
                for attempt in 0..3 {
                    let api = &apis[(n + attempt) % apis.len()];
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
            }
            anyhow::Ok(())
        })
    };
    while acked.lock().map(|a| a.len()).unwrap_or(0) < 30 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(leader);
    writer.await??;
    let new_leader = cluster.wait_leader(READY).await?;
    assert_ne!(new_leader, leader);
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(
        acked.len() > 30,
        "writes continued after the leader died: {}",
        acked.len()
    );
    let present = secret_names(&cluster, new_leader).await?;
    let lost: Vec<&String> = acked.iter().filter(|a| !present.contains(a)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");

    cluster.start(leader)?;
    cluster.wait_ready(leader, READY).await?;
    let on_old_leader = secret_names(&cluster, leader).await?;
    assert!(
        acked.iter().all(|a| on_old_leader.contains(a)),
        "the restarted replica caught up"
    );
    Ok(())
}

#[tokio::test]
async fn a_wiped_replica_catches_up_through_a_snapshot() -> anyhow::Result<()> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        3,
        20,
    )?;
    start(&mut cluster).await?;
    assert_eq!(cluster.put(0, "/meshes/default", MESH).await?.0, 201);
    let leader = cluster.wait_leader(READY).await?;
    let victim = (leader + 1) % 3;
    cluster.wipe(victim)?;
    for n in 0..100 {
        let name = format!("s-{n:03}");
        let (status, body) = cluster
            .put(
                leader,
                &format!("/meshes/default/secrets/{name}"),
                &secret(&name),
            )
            .await?;
        assert_eq!(status, 201, "{body}");
    }
    cluster.start(victim)?;
    cluster.wait_ready(victim, READY).await?;
    let names = secret_names(&cluster, victim).await?;
    assert_eq!(names.len(), 100, "the wiped replica has every secret");
    // With a snapshot every 20 entries the leader's log no longer holds the early writes, so the
    // wiped replica can only have caught up from a snapshot.
    let log = cluster.log(victim);
    assert!(
        log.contains("installed a snapshot received from the leader"),
        "{log}"
    );
    Ok(())
}
