//! Multizone as real processes on loopback: three global replicas and three zones (TLS with the
//! generated KDS CA, zone tokens). Meshes converge on every zone; a zone moves to another replica
//! when its replica dies; zones keep serving their Mesh while every global is down, restart from
//! their cache, and resync only the difference; refused zones say why on both sides.

use std::{path::Path, time::Duration};

use mosaic_testkit::{
    GlobalCluster, ZoneProcess,
    join::{wait_for_kds_ca, zone_token},
    workspace_binary,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn globals(n: usize) -> anyhow::Result<GlobalCluster> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, n, 10_000)?;
    cluster.start_all()?;
    for i in 0..n {
        cluster.wait_ready(i, WAIT).await?;
    }
    wait_for_kds_ca(&cluster, 0, WAIT).await?;
    Ok(cluster)
}

async fn zone(cluster: &GlobalCluster, name: &str, order: &[usize]) -> anyhow::Result<ZoneProcess> {
    let token = zone_token(cluster, 0, name, "24h").await?;
    let binary = Path::new(env!("CARGO_BIN_EXE_mosaic-zone"));
    cluster.start_zone(binary, name, order, &token, WAIT).await
}

async fn connected(z: &ZoneProcess) -> Option<String> {
    let ready = z.ready().await?;
    if ready["kds"]["connected"] == true {
        ready["kds"]["global"].as_str().map(str::to_string)
    } else {
        None
    }
}

async fn wait_connected(z: &ZoneProcess, not: Option<&str>) -> anyhow::Result<String> {
    let start = std::time::Instant::now();
    loop {
        if let Some(g) = connected(z).await
            && Some(g.as_str()) != not
        {
            return Ok(g);
        }
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "zone {} did not connect; log:\n{}",
            z.name,
            z.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn has_mesh(z: &ZoneProcess, mesh: &str, present: bool) -> anyhow::Result<()> {
    let what = format!(
        "mesh {mesh} {}",
        if present { "arrives" } else { "goes away" }
    );
    z.wait_for("/meshes", &what, WAIT, |b| {
        names(b).iter().any(|n| n == mesh) == present
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn meshes_converge_on_three_zones_and_a_zone_fails_over_to_another_replica()
-> anyhow::Result<()> {
    let mut cluster = globals(3).await?;
    let zones = [
        zone(&cluster, "east", &[0, 1, 2]).await?,
        zone(&cluster, "west", &[1, 2, 0]).await?,
        zone(&cluster, "north", &[2, 0, 1]).await?,
    ];
    for z in &zones {
        wait_connected(z, None).await?;
    }
    let builtin = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n";
    assert_eq!(cluster.put(1, "/meshes/default", builtin).await?.0, 201);
    assert_eq!(
        cluster
            .put(2, "/meshes/payments", "type: Mesh\nname: payments\n")
            .await?
            .0,
        201
    );
    for z in &zones {
        has_mesh(z, "default", true).await?;
        has_mesh(z, "payments", true).await?;
        let (status, mesh) = z.get("/meshes/default").await?;
        assert_eq!(status, 200);
        assert_eq!(mesh["mtls"]["enabledBackend"], "ca-1");
    }
    // An update and a delete reach every zone.
    let updated = builtin.replace(
        "name: default\n",
        "name: default\nmetrics:\n  enabledBackend: prometheus-1\n  backends:\n  - name: prometheus-1\n    type: prometheus\n",
    );
    assert_eq!(cluster.put(0, "/meshes/default", &updated).await?.0, 200);
    assert_eq!(cluster.delete(0, "/meshes/payments").await?.0, 200);
    for z in &zones {
        has_mesh(z, "payments", false).await?;
        z.wait_for("/meshes/default", "the Mesh update", WAIT, |m| {
            m["metrics"]["enabledBackend"] == "prometheus-1"
        })
        .await?;
    }
    // The global sees every zone online.
    let start = std::time::Instant::now();
    loop {
        let (_, overview) = cluster.get(0, "/zones/_overview?consistent=true").await?;
        let online: Vec<&str> = overview["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|z| z["online"] == true)
                    .filter_map(|z| z["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if online.len() == 3 {
            break;
        }
        anyhow::ensure!(start.elapsed() < WAIT, "zones online: {online:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Kill the replica east is attached to: east moves to another and keeps converging.
    let attached = wait_connected(&zones[0], None).await?;
    let victim = (0..3)
        .find(|i| attached.contains(&format!(":{}", cluster.replicas[*i].kds)))
        .ok_or_else(|| anyhow::anyhow!("east attached to unknown {attached}"))?;
    cluster.kill(victim);
    let moved = wait_connected(&zones[0], Some(&attached)).await?;
    assert_ne!(moved, attached);
    let survivor = (victim + 1) % 3;
    cluster.wait_leader(WAIT).await?;
    assert_eq!(
        cluster
            .put(
                survivor,
                "/meshes/after-failover",
                "type: Mesh\nname: after-failover\n"
            )
            .await?
            .0,
        201
    );
    for z in &zones {
        has_mesh(z, "after-failover", true).await?;
    }
    Ok(())
}

#[tokio::test]
async fn zones_keep_their_mesh_while_the_global_is_down_and_resync_only_the_diff()
-> anyhow::Result<()> {
    let mut cluster = globals(1).await?;
    let mut east = zone(&cluster, "east", &[0]).await?;
    for i in 0..20 {
        let (status, _) = cluster
            .put(
                0,
                &format!("/meshes/mesh-{i:02}"),
                &format!("type: Mesh\nname: mesh-{i:02}\n"),
            )
            .await?;
        assert_eq!(status, 201);
    }
    has_mesh(&east, "mesh-19", true).await?;

    cluster.kill(0);
    let start = std::time::Instant::now();
    while connected(&east).await.is_some() {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "the zone never noticed the global left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A disconnect is not a deletion; a restarted zone serves its cached Mesh before it reconnects.
    assert_eq!(names(&east.get("/meshes").await?.1).len(), 20);
    east.kill();
    east.start()?;
    east.wait_ready(WAIT).await?;
    assert_eq!(
        names(&east.get("/meshes").await?.1).len(),
        20,
        "served from the zone's cache"
    );
    assert!(connected(&east).await.is_none());

    // The global returns: only what changed flows (nothing changed for Meshes).
    let mesh_syncs = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("authoritative sync") && l.contains("type=Mesh"))
            .map(str::to_string)
            .collect()
    };
    let before = mesh_syncs(&cluster.log(0)).len();
    cluster.start(0)?;
    cluster.wait_ready(0, WAIT).await?;
    wait_connected(&east, None).await?;
    assert_eq!(
        cluster
            .put(0, "/meshes/mesh-20", "type: Mesh\nname: mesh-20\n")
            .await?
            .0,
        201
    );
    has_mesh(&east, "mesh-20", true).await?;
    let syncs = mesh_syncs(&cluster.log(0));
    let mesh_sync = syncs.get(before).cloned().unwrap_or_default();
    assert!(
        mesh_sync.contains("known=20") && mesh_sync.contains("sent=0"),
        "the resync sent only the difference: {mesh_sync}"
    );
    Ok(())
}

#[tokio::test]
async fn refused_zones_say_why_on_both_sides() -> anyhow::Result<()> {
    let cluster = globals(1).await?;
    // A token for another zone.
    let west_token = zone_token(&cluster, 0, "west", "24h").await?;
    let mut impostor = ZoneProcess::new(
        Path::new(env!("CARGO_BIN_EXE_mosaic-zone")),
        cluster.dir(),
        "east",
        &cluster.kds_url(0),
        &cluster.kds_ca_path(0),
        &west_token,
    )?;
    impostor.start()?;
    impostor.wait_ready(WAIT).await?;
    let start = std::time::Instant::now();
    while !impostor.log().contains("the global refused zone east") {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "no refusal in the zone log:\n{}",
            impostor.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let global_log = cluster.log(0);
    assert!(
        global_log
            .lines()
            .any(|l| l.contains("refused a KDS connection")
                && l.contains("the zone token is for zone \"west\"")
                && l.contains("zone=east")),
        "the global names the refused zone and why:\n{global_log}"
    );
    assert!(
        impostor
            .log()
            .contains("generate a new token with mosaicctl generate zone-token --zone east")
    );
    assert!(
        !impostor.log().contains(&west_token) && !cluster.log(0).contains(&west_token),
        "tokens never reach logs"
    );
    impostor.kill();

    // A disabled zone.
    assert_eq!(
        cluster
            .put(
                0,
                "/zones/south",
                "type: Zone\nname: south\nenabled: false\n"
            )
            .await?
            .0,
        201
    );
    let south = zone(&cluster, "south", &[0]).await?;
    let start = std::time::Instant::now();
    while !south.log().contains("the global refused zone south") {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "no refusal for the disabled zone:\n{}",
            south.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connected(&south).await.is_none());
    let global_log = cluster.log(0);
    assert!(
        global_log
            .lines()
            .any(|l| l.contains("refused a KDS connection") && l.contains("zone=south")),
        "the global logs the disabled zone's refusal:\n{global_log}"
    );
    Ok(())
}
