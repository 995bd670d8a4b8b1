//! How long a Mesh change takes to reach connected zones: one `mosaic-global` and N `mosaic-zone`
//! processes on loopback (TLS, tokens), then R Mesh updates through the API. For each update it
//! measures from the API's answer (committed and applied) until every zone's API serves the new
//! Mesh, and prints p50/p99/max, plus the global's own `mosaic_kds_push_seconds` (apply → zone
//! ACK) mean.
//!
//! `cargo build --workspace && cargo run -p mosaic-zone --example kds_propagation -- [ZONES] [ROUNDS]`
//! (defaults 10 zones, 50 rounds). Zones are polled every millisecond, so figures carry up to
//! ~1 ms of polling error.

use std::time::{Duration, Instant};

use mosaic_testkit::{GlobalCluster, ZoneProcess, workspace_binary};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
/// How often each zone is polled (each poll is an HTTP request to a debug build on a shared CPU).
const POLL: Duration = Duration::from_millis(5);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let zones: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);

    let mut global = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    global.start_all()?;
    global.wait_ready(0, WAIT).await?;
    let start = Instant::now();
    while !global.kds_ca_path(0).exists() {
        anyhow::ensure!(start.elapsed() < WAIT, "no kds-ca.pem");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let zone_bin = workspace_binary("mosaic-zone")?;
    let mut procs = Vec::new();
    for i in 0..zones {
        let name = format!("zone-{i}");
        let (status, token) = global
            .post(0, "/tokens/zone", &json!({"zone": name}))
            .await?;
        anyhow::ensure!(status == 200, "token: {token}");
        let mut z = ZoneProcess::new(
            &zone_bin,
            global.dir(),
            &name,
            &global.kds_url(0),
            &global.kds_ca_path(0),
            token.trim(),
        )?;
        z.start()?;
        procs.push(z);
    }
    for z in &procs {
        z.wait_ready(WAIT).await?;
    }
    let mesh = |round: usize| {
        format!("type: Mesh\nname: bench\nmetrics:\n  enabledBackend: round-{round}\n")
    };
    anyhow::ensure!(
        global.put(0, "/meshes/bench", &mesh(0)).await?.0 == 201,
        "create the mesh"
    );
    for z in &procs {
        z.wait_for("/meshes/bench", "the first Mesh", WAIT, |m| {
            m["metrics"]["enabledBackend"] == "round-0"
        })
        .await?;
    }

    let mut all = Vec::new();
    for round in 1..=rounds {
        let (status, _) = global.put(0, "/meshes/bench", &mesh(round)).await?;
        anyhow::ensure!(status == 200, "update {round}: {status}");
        let committed = Instant::now();
        let want = format!("round-{round}");
        let mut waits = tokio::task::JoinSet::new();
        for z in &procs {
            let want = want.clone();
            let url = format!("{}/meshes/bench", z.api_url());
            waits.spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    if let Ok(r) = http.get(&url).send().await
                        && let Ok(v) = r.json::<serde_json::Value>().await
                        && v["metrics"]["enabledBackend"] == want.as_str()
                    {
                        return committed.elapsed();
                    }
                    tokio::time::sleep(POLL).await;
                }
            });
        }
        let per_zone = tokio::time::timeout(WAIT, waits.join_all()).await?;
        all.push(per_zone.into_iter().max().unwrap_or_default());
    }
    all.sort();
    let metrics = reqwest::get(format!(
        "http://127.0.0.1:{}/metrics",
        global.replicas[0].diag
    ))
    .await?
    .text()
    .await?;
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (sum, count) = (
        value("mosaic_kds_push_seconds_sum"),
        value("mosaic_kds_push_seconds_count"),
    );
    println!(
        "machine: {} cores; {zones} zones; {rounds} Mesh updates",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "API answered (committed) -> every zone's API serves it: p50 {} p99 {} max {}",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(percentile(&all, 1.0))
    );
    if count > 0.0 {
        println!(
            "global mosaic_kds_push_seconds (apply -> zone ACK): mean {} over {count} ACKs",
            ms(Duration::from_secs_f64(sum / count))
        );
    }
    Ok(())
}
