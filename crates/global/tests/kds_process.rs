//! KDS served by real `mosaic-global` processes (3 replicas): every replica generates its
//! certificate from one cluster-wide CA (so one `kds-ca.pem` trusts them all), serves zones from
//! its applied state, pushes a Mesh written through the API at once, and reuses its certificate
//! after a restart.

mod kds_support;
mod support;

use std::time::Duration;

use kds_support::ZoneClient;
use mosaic_testkit::GlobalCluster as Cluster;
use support::raft_store::eventually;

const READY: Duration = Duration::from_secs(60);

fn data_dir(cluster: &Cluster, i: usize) -> std::path::PathBuf {
    cluster
        .dir()
        .join(format!("replica-{}", i + 1))
        .join("data")
}

fn ca_path(cluster: &Cluster, i: usize) -> std::path::PathBuf {
    data_dir(cluster, i).join("kds-ca.pem")
}

fn server_cert(cluster: &Cluster, i: usize) -> String {
    std::fs::read_to_string(data_dir(cluster, i).join("kds-server.pem")).expect("kds-server.pem")
}

async fn wait_files(cluster: &Cluster) {
    for i in 0..cluster.replicas.len() {
        eventually("every replica wrote its KDS certificate", || {
            std::future::ready(
                ca_path(cluster, i).exists()
                    && data_dir(cluster, i).join("kds-server.pem").exists(),
            )
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_kds_ca_and_push_api_writes() -> anyhow::Result<()> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        3,
        10_000,
    )?;
    cluster.start_all()?;
    for i in 0..3 {
        cluster.wait_ready(i, READY).await?;
    }
    wait_files(&cluster).await;
    let ca = std::fs::read_to_string(ca_path(&cluster, 0))?;
    for i in 1..3 {
        assert_eq!(
            std::fs::read_to_string(ca_path(&cluster, i))?,
            ca,
            "replica {} uses the cluster's CA",
            i + 1
        );
    }
    let http = reqwest::Client::new();
    let token = http
        .post(format!("{}/tokens/zone", cluster.api(0)))
        .body(r#"{"zone":"east","validFor":"24h"}"#)
        .header("content-type", "application/json")
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;

    // A zone on every replica, all trusting replica 1's kds-ca.pem.
    let mut streams = Vec::new();
    for i in 0..3 {
        let url = format!("https://127.0.0.1:{}", cluster.replicas[i].kds);
        let zone = ZoneClient::connect(&url, &ca, "east", token.trim()).await?;
        let mut g2z = zone.global_to_zone().await?;
        g2z.subscribe("Mesh", &[]).await;
        let full = g2z.next().await;
        assert!(full.authoritative);
        g2z.ack(&full).await;
        streams.push((zone, g2z));
    }
    let (status, body) = cluster
        .put(1, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    assert_eq!(status, 201, "{body}");
    for (i, (_, g2z)) in streams.iter_mut().enumerate() {
        let full = g2z.next().await;
        assert_eq!(full.rtype, "Mesh", "replica {}", i + 1);
        assert_eq!(full.resources[0].name, "default");
        g2z.ack(&full).await;
    }
    let (status, body) = cluster.get(0, "/zones/_overview").await?;
    assert_eq!(status, 200, "{body}");
    drop(streams);

    // A restart reuses the certificate files.
    let before: Vec<String> = (0..3).map(|i| server_cert(&cluster, i)).collect();
    for i in 0..3 {
        cluster.kill(i);
    }
    cluster.start_all()?;
    for i in 0..3 {
        cluster.wait_ready(i, READY).await?;
    }
    let url = format!("https://127.0.0.1:{}", cluster.replicas[2].kds);
    let started = std::time::Instant::now();
    let (_zone, mut g2z) = loop {
        if let Ok(zone) = ZoneClient::connect(&url, &ca, "east", token.trim()).await
            && let Ok(g2z) = zone.global_to_zone().await
        {
            break (zone, g2z);
        }
        assert!(
            started.elapsed() < support::raft_store::DEADLINE,
            "KDS answers again after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    assert_eq!(full.resources.len(), 1);
    let after: Vec<String> = (0..3).map(|i| server_cert(&cluster, i)).collect();
    assert_eq!(before, after, "certificates are reused at restart");
    Ok(())
}
