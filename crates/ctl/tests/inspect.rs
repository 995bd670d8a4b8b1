//! `mosaicctl inspect dataplanes|meshes|dataplane` against a real global and zone: kumactl's
//! tables, filtered by `--mesh`, `--tag` and `--gateway`, from the overview and insight paths.

mod support;

use support::ctl;

use std::time::Duration;

use mosaic_testkit::{
    GlobalCluster, ZoneProcess,
    join::{wait_for_kds_ca, zone_token},
    workspace_binary,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

async fn put(base: &str, path: &str, body: &str) -> anyhow::Result<()> {
    let resp = reqwest::Client::new()
        .put(format!("{base}{path}"))
        .header("content-type", "application/yaml")
        .body(body.to_string())
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "PUT {path}: {}", resp.status());
    Ok(())
}

async fn total(base: &str, path: &str) -> anyhow::Result<Value> {
    Ok(reqwest::get(format!("{base}{path}"))
        .await?
        .json::<Value>()
        .await?["total"]
        .clone())
}

async fn setup() -> anyhow::Result<(GlobalCluster, ZoneProcess)> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, WAIT).await?;
    wait_for_kds_ca(&cluster, 0, WAIT).await?;
    let g = cluster.api(0);
    put(&g, "/meshes/default", "type: Mesh\nname: default\n").await?;
    put(&g, "/meshes/other", "type: Mesh\nname: other\n").await?;
    let token = zone_token(&cluster, 0, "east", "24h").await?;
    let zone = cluster
        .start_zone(
            &workspace_binary("mosaic-zone")?,
            "east",
            &[0],
            &token,
            WAIT,
        )
        .await?;
    zone.wait_for("/meshes", "mesh default arrives", WAIT, |b| b["total"] == 2)
        .await?;
    let z = zone.api_url();
    for (name, net) in [
        (
            "web-1",
            "  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n      version: v1\n",
        ),
        (
            "web-2",
            "  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n      version: v2\n",
        ),
        (
            "edge-1",
            "  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n",
        ),
    ] {
        put(
            &z,
            &format!("/meshes/default/dataplanes/{name}"),
            &format!("type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: 10.0.0.1\n{net}"),
        )
        .await?;
    }
    let start = std::time::Instant::now();
    while total(&g, "/dataplanes").await? != 3 {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "data planes did not reach the global"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((cluster, zone))
}

fn data_rows(out: &str) -> Vec<&str> {
    out.lines().skip(1).filter(|l| !l.is_empty()).collect()
}

#[tokio::test]
async fn inspect_dataplanes_meshes_and_one_dataplane() -> anyhow::Result<()> {
    let (cluster, zone) = setup().await?;
    let g = cluster.api(0);

    let (code, out, err) = ctl(&g, &["inspect", "dataplanes"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("MESH "), "{out}");
    assert!(
        out.lines()
            .next()
            .unwrap_or_default()
            .contains("CERT BACKEND"),
        "{out}"
    );
    assert_eq!(data_rows(&out).len(), 3, "{out}");
    assert!(out.contains("kuma.io/service=web version=v1"), "{out}");

    let (code, out, err) = ctl(
        &g,
        &[
            "inspect",
            "dataplanes",
            "--mesh",
            "default",
            "--tag",
            "version=v2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rows = data_rows(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert!(
        rows[0].contains("web-2") && rows[0].contains("east"),
        "{out}"
    );

    let (code, out, err) = ctl(
        &g,
        &[
            "inspect",
            "dataplanes",
            "--tag",
            "kuma.io/service=web",
            "--tag",
            "version=v1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(data_rows(&out).len(), 1, "{out}");
    assert!(out.contains("web-1"), "{out}");

    let (code, out, err) = ctl(&g, &["inspect", "dataplanes", "--gateway"]);
    assert_eq!(code, 0, "{err}");
    let rows = data_rows(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].contains("edge-1"), "{out}");

    let (code, out, err) = ctl(&g, &["inspect", "meshes"]);
    assert_eq!(code, 0, "{err}");
    let rows = data_rows(&out);
    assert!(out.starts_with("MESH      DATAPLANES"), "{out}");
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with("default   0/3"), "{out}");
    assert!(rows[1].starts_with("other     0/0"), "{out}");

    let (code, out, err) = ctl(&g, &["inspect", "dataplane", "web-1", "--mesh", "default"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Dataplane web-1 (mesh default)"), "{out}");
    assert!(out.contains("Zone:                 east"), "{out}");
    assert!(
        out.contains("Inbound[0]:           port 80, service web"),
        "{out}"
    );
    assert!(out.contains("no certificate issued yet"), "{out}");

    let (code, _, err) = ctl(&g, &["inspect", "dataplane", "nope", "--mesh", "default"]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");

    // The zone API answers the same paths.
    let (code, out, err) = ctl(&zone.api_url(), &["inspect", "dataplanes", "--gateway"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(data_rows(&out).len(), 1, "{out}");
    drop(zone);
    Ok(())
}
