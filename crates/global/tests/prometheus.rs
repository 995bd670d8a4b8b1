//! A real Prometheus scrapes a real `mosaic-global` and a `mosaic-zone` connected to it (1 s
//! scrape interval, the alert rules of deploy/prometheus loaded) while a `mosaic-dp` holds a
//! certificate from the zone, and its query API shows both targets up and the contract's key
//! series (raft, KDS, API, certificates and CA health) with sane values.
//!
//! Needs Debian's `prometheus` (scripts/setup-test-env.sh installs it); fails, never skips,
//! without it.

use std::time::Duration;

use mosaic_testkit::{
    AgentOptions, DataplaneAgent, GlobalCluster, Prometheus, Sample, dataplane_yaml,
    join::{joining_zone, wait_for_kds_ca},
    workspace_binary,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn one(samples: &[Sample]) -> Option<f64> {
    match samples {
        [s] => Some(s.value),
        _ => None,
    }
}

#[tokio::test]
async fn prometheus_scrapes_global_and_zone() -> anyhow::Result<()> {
    // Fail early and clearly when Prometheus is missing.
    mosaic_testkit::prometheus_binary()?;

    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, WAIT).await?;
    wait_for_kds_ca(&cluster, 0, WAIT).await?;
    let mut zone = joining_zone(&workspace_binary("mosaic-zone")?, &cluster, "east", "1h").await?;
    zone.start()?;
    zone.wait_ready(WAIT).await?;
    let start = std::time::Instant::now();
    while zone.ready().await.map(|r| r["kds"]["connected"] == true) != Some(true) {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "zone did not connect; log:\n{}",
            zone.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // API traffic on both sides: a Mesh with a builtin CA written on the global (pushed to the
    // connected zone, which records a KDS push time), read back from both.
    let (status, body) = cluster
        .put(
            0,
            "/meshes/default",
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
        )
        .await?;
    anyhow::ensure!(status == 201, "PUT mesh: {status} {body}");
    assert_eq!(cluster.get(0, "/meshes/default").await?.0, 200);
    assert_eq!(cluster.get(0, "/meshes/nope").await?.0, 404);
    zone.wait_for("/meshes/default", "the Mesh arrives", WAIT, |b| {
        b["name"] == "default"
    })
    .await?;

    // A data plane gets its certificate from the zone, so the zone's certificate series exist.
    let (status, dp_token) = cluster
        .post(
            0,
            "/tokens/dataplane",
            &json!({"mesh": "default", "name": "web-1", "tags": {"kuma.io/service": ["web"]}, "validFor": "1h"}),
        )
        .await?;
    anyhow::ensure!(status == 200, "dataplane token: {status} {dp_token}");
    let options = AgentOptions::new(
        &zone,
        "default",
        "web-1",
        dp_token.trim(),
        &dataplane_yaml("default", "web-1", &[("kuma.io/service", "web")]),
    );
    let mut agent =
        DataplaneAgent::start(&workspace_binary("mosaic-dp")?, cluster.dir(), &options)?;
    agent.wait_for_files(WAIT).await?;

    let rules = mosaic_testkit::workspace_root().join("deploy/prometheus");
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}/mosaic.rules.yml
  - {rules}/mesh-cert-lifetimes.rules.yml
scrape_configs:
  - job_name: mosaic-global
    static_configs:
      - targets: ["127.0.0.1:{g}"]
  - job_name: mosaic-zone
    static_configs:
      - targets: ["127.0.0.1:{z}"]
        labels:
          zone: east
"#,
        rules = rules.display(),
        g = cluster.replicas[0].diag,
        z = zone.diag,
    );
    let prom = Prometheus::start(&config).await?;

    let up = prom
        .wait_for("up", "both targets up", WAIT, |s| {
            s.len() == 2 && s.iter().all(|s| s.value == 1.0)
        })
        .await?;
    let mut jobs: Vec<&str> = up.iter().map(|s| s.label("job")).collect();
    jobs.sort();
    assert_eq!(jobs, ["mosaic-global", "mosaic-zone"]);

    let expect_one = |q: &'static str, what: &'static str, ok: fn(f64) -> bool| {
        let prom = &prom;
        async move {
            prom.wait_for(q, what, WAIT, |s| one(s).is_some_and(ok))
                .await
                .map(|s| s[0].value)
        }
    };
    expect_one(
        r#"mosaic_raft_is_leader{job="mosaic-global"}"#,
        "the single replica leads",
        |v| v == 1.0,
    )
    .await?;
    expect_one(r#"mosaic_raft_term{job="mosaic-global"}"#, "a term", |v| {
        v >= 1.0
    })
    .await?;
    expect_one(
        r#"mosaic_raft_applied_index{job="mosaic-global"}"#,
        "applied entries",
        |v| v >= 2.0,
    )
    .await?;
    expect_one(
        r#"mosaic_kds_zones_connected{job="mosaic-global"}"#,
        "the zone is connected",
        |v| v >= 1.0,
    )
    .await?;
    expect_one(
        r#"mosaic_zone_kds_connected{job="mosaic-zone", zone="east"}"#,
        "the zone holds its stream",
        |v| v == 1.0,
    )
    .await?;
    expect_one(
        r#"mosaic_kds_push_seconds_count{job="mosaic-global"}"#,
        "the Mesh push was acknowledged",
        |v| v >= 1.0,
    )
    .await?;
    let p = expect_one(
        r#"histogram_quantile(1, mosaic_kds_push_seconds_bucket{job="mosaic-global"})"#,
        "push latency",
        |v| v.is_finite(),
    )
    .await?;
    assert!(p > 0.0 && p <= 60.0, "push latency bucket {p}");

    // API requests: labelled by route pattern; the PUT above is there with its status.
    expect_one(
        r#"mosaic_api_requests_total{job="mosaic-global", method="PUT", route="/meshes/{mesh}", status="201"}"#,
        "the PUT is counted",
        |v| v >= 1.0,
    )
    .await?;
    expect_one(
        r#"sum(mosaic_api_requests_total{job="mosaic-global", route="/meshes/{mesh}", status="404"})"#,
        "the 404 is counted",
        |v| v >= 1.0,
    )
    .await?;
    expect_one(
        r#"sum(mosaic_api_requests_total{job="mosaic-zone", route="/meshes/{mesh}"})"#,
        "zone API requests are counted",
        |v| v >= 1.0,
    )
    .await?;
    expect_one(
        r#"sum(mosaic_api_request_seconds_count{job="mosaic-global"})"#,
        "API durations are recorded",
        |v| v >= 3.0,
    )
    .await?;
    // The zone's certificate series, labelled by mesh and backend only.
    let issued = r#"mosaic_certs_issued_total{job="mosaic-zone", mesh="default", backend="ca-1"}"#;
    expect_one(issued, "a certificate issued by the zone", |v| v >= 1.0).await?;
    expect_one(
        r#"mosaic_ca_healthy{job="mosaic-zone", mesh="default", backend="ca-1"}"#,
        "the builtin CA healthy",
        |v| v == 1.0,
    )
    .await?;
    expect_one(
        r#"mosaic_cert_earliest_expiry_seconds{job="mosaic-zone", mesh="default"} - time()"#,
        "the served certificate's expiry about 24h ahead",
        |v| v > 23.0 * 3600.0 && v <= 24.0 * 3600.0 + 60.0,
    )
    .await?;
    expect_one(
        r#"mosaic_cert_issue_seconds_count{job="mosaic-zone"}"#,
        "issuance durations recorded",
        |v| v >= 1.0,
    )
    .await?;
    // No raw path ever becomes a label value.
    let routes = prom
        .query(r#"count by (job, route) (mosaic_api_requests_total)"#)
        .await?;
    assert!(!routes.is_empty());
    for s in &routes {
        let route = s.label("route");
        assert!(
            route == "unmatched" || !route.contains("/default") && !route.contains("/nope"),
            "raw path as a label: {route}"
        );
    }

    // The alert rules load in a real Prometheus and evaluate against real series without error.
    let start = std::time::Instant::now();
    loop {
        let data = prom.api("rules", &[]).await?;
        let rules: Vec<serde_json::Value> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        assert!(rules.len() >= 10, "rules not loaded: {data}");
        if rules.iter().all(|r| r["health"] == "ok") {
            // A healthy system trips none of them (not even pending).
            let tripped: Vec<&serde_json::Value> = rules
                .iter()
                .filter(|r| r["type"] == "alerting" && r["state"] != "inactive")
                .collect();
            assert!(tripped.is_empty(), "alerts pending or firing: {tripped:?}");
            break;
        }
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "rules not all healthy: {:?}",
            rules
                .iter()
                .filter(|r| r["health"] != "ok")
                .map(|r| (&r["name"], &r["health"], &r["lastError"]))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(prom);
    agent.kill();
    zone.kill();
    Ok(())
}
