//! `memory`: resident memory per connected zone at the global, and per data plane at a zone.
//!
//! Global: a single-replica `mosaic-global` process with every Zone registered up front (so the
//! baseline holds the same store); simulated zones ([`crate::sim_zone`]) connect in steps
//! (e.g. 0 → 50 → 100), and after each step, once everything settled, the process's `VmRSS` is
//! read from `/proc/<pid>/status`. Per zone = the least-squares slope of RSS over connections.
//!
//! Zone: a real `mosaic-zone` process connected to a global that holds a Mesh with the builtin
//! CA; simulated data planes ([`crate::sim_dataplane`]) open SDS streams in steps (e.g. 0 → 500
//! → 1000), each registered by the zone and given its own certificate. Per data plane = the
//! slope of the zone's RSS over data planes.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use mosaic_dp::sds_client::{ZoneAddress, ZoneEndpoint};
use mosaic_testkit::ZoneProcess;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    cluster::{self, Api, Binaries, SETUP_DEADLINE},
    error::BenchError,
    procs::{ensure_open_files, rss_bytes, wait_until},
    propagation::connect_all,
    report::{Report, Verdict},
    sim_dataplane::SimDataplane,
    sim_zone::SimZone,
    stats::slope,
};

/// Options of the `memory` benchmark.
#[derive(Clone, Debug)]
pub struct Options {
    /// Connected-zone counts at which the global's RSS is read.
    pub zones: Vec<usize>,
    /// Data-plane counts at which the zone's RSS is read.
    pub dataplanes: Vec<usize>,
    /// How long to wait after a step before reading RSS.
    pub settle: Duration,
}

/// One reading.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Point {
    /// Zones or data planes connected.
    pub n: usize,
    /// RSS in bytes.
    pub rss_bytes: u64,
    /// Seconds the step took to connect.
    pub step_seconds: f64,
}

/// Runs the benchmark.
pub async fn run(bins: &Binaries, opts: &Options) -> Result<Report, BenchError> {
    let most = opts
        .zones
        .iter()
        .chain(&opts.dataplanes)
        .copied()
        .max()
        .unwrap_or(0) as u64;
    ensure_open_files(most + 1024)?;
    let global = global_points(bins, opts).await?;
    let zone = zone_points(bins, opts).await?;
    Ok(report(global, zone, opts))
}

fn sorted(v: &[usize]) -> Vec<usize> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

async fn global_points(bins: &Binaries, opts: &Options) -> Result<Vec<Point>, BenchError> {
    let steps = sorted(&opts.zones);
    let max = steps.last().copied().unwrap_or(0);
    let global = cluster::start_single_global(bins).await?;
    let pid = global
        .pid(0)
        .ok_or_else(|| BenchError::Setup("the global is not running".into()))?;
    let api = Api::new(global.api(0))?;
    api.put_yaml("/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    let cluster::ZoneSet {
        names,
        tokens,
        target,
    } = cluster::register_zones(&global, &api, max).await?;
    // Held so the zones' event sends never fail; nothing reads it.
    let (events_tx, _events) = mpsc::unbounded_channel();
    let mut zones: Vec<SimZone> = Vec::new();
    let mut points = Vec::new();
    for n in steps {
        let from = zones.len();
        let started = Instant::now();
        if n > from {
            zones.extend(
                connect_all(
                    &target,
                    &names[from..n],
                    &tokens[from..n],
                    16,
                    events_tx.clone(),
                )
                .await?,
            );
        }
        let step_seconds = started.elapsed().as_secs_f64();
        tokio::time::sleep(opts.settle).await;
        points.push(Point {
            n,
            rss_bytes: rss_bytes(pid)?,
            step_seconds,
        });
    }
    drop(zones);
    drop(global);
    Ok(points)
}

async fn zone_points(bins: &Binaries, opts: &Options) -> Result<Vec<Point>, BenchError> {
    let steps = sorted(&opts.dataplanes);
    let global = cluster::start_single_global(bins).await?;
    let api = Api::new(global.api(0))?;
    api.put_yaml(
        "/meshes/default",
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
    )
    .await?;
    let zone_name = "zone-memory";
    let token = api
        .post_json("/tokens/zone", &json!({ "zone": zone_name }))
        .await?;
    let mut zone = ZoneProcess::new(
        &bins.zone,
        global.dir(),
        zone_name,
        &global.kds_url(0),
        &global.kds_ca_path(0),
        token.trim(),
    )?;
    zone.start()?;
    zone.wait_ready(SETUP_DEADLINE).await?;
    zone.wait_for("/meshes/default", "the Mesh", SETUP_DEADLINE, |m| {
        m["mtls"]["enabledBackend"] == "ca-1"
    })
    .await?;
    let pid = zone
        .pid()
        .ok_or_else(|| BenchError::Setup("the zone is not running".into()))?;
    let ca_path: PathBuf = zone.data_dir().join("dp-server-ca.pem");
    wait_until(
        "the zone's dp-server-ca.pem",
        SETUP_DEADLINE,
        Duration::from_millis(50),
        || {
            let ok = std::fs::metadata(&ca_path).is_ok_and(|m| m.len() > 0);
            async move { ok.then_some(()) }
        },
    )
    .await?;
    let ca_pem = std::fs::read(&ca_path).map_err(BenchError::io("reading dp-server-ca.pem"))?;
    let address =
        ZoneAddress::parse(&format!("https://127.0.0.1:{}", zone.dp)).map_err(BenchError::Setup)?;
    let endpoint = ZoneEndpoint::new(&address, &ca_pem)
        .map_err(|e| BenchError::Setup(format!("the zone's dataplane server: {e}")))?;

    let mut dataplanes: Vec<SimDataplane> = Vec::new();
    let mut points = Vec::new();
    for n in steps {
        let from = dataplanes.len();
        let started = Instant::now();
        if n > from {
            let api = api.clone();
            let endpoint = endpoint.clone();
            let added = cluster::concurrent((from..n).collect(), 16, move |i| {
                let api = api.clone();
                let endpoint = endpoint.clone();
                async move {
                    let name = format!("dp-{i}");
                    let service = format!("svc-{}", i % 10);
                    let token = api
                        .post_json(
                            "/tokens/dataplane",
                            &json!({
                                "mesh": "default",
                                "name": name,
                                "tags": { "kuma.io/service": [service] },
                            }),
                        )
                        .await?;
                    // The mesh's first dataplane token creates its signing key; the zone
                    // refuses (Unavailable) until KDS has brought it the public key, as a real
                    // data plane would retry.
                    let started = Instant::now();
                    loop {
                        match SimDataplane::connect(
                            &endpoint,
                            "default",
                            &name,
                            &service,
                            token.trim().to_string(),
                        )
                        .await
                        {
                            Err(BenchError::Stream(e))
                                if e.contains("(Unavailable)")
                                    && started.elapsed() < SETUP_DEADLINE =>
                            {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            other => break other,
                        }
                    }
                }
            })
            .await?;
            dataplanes.extend(added);
        }
        let step_seconds = started.elapsed().as_secs_f64();
        tokio::time::sleep(opts.settle).await;
        points.push(Point {
            n,
            rss_bytes: rss_bytes(pid)?,
            step_seconds,
        });
    }
    drop(dataplanes);
    drop(zone);
    drop(global);
    Ok(points)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn per_item(points: &[Point]) -> Option<f64> {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.n as f64, p.rss_bytes as f64))
        .collect();
    slope(&xy)
}

fn kib(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0))
}

/// The aim (issue #17): at most this much RSS per connected zone at the global and per data
/// plane at a zone, as the slope over 0..N with N ≥ [`AIM_MIN_N`].
pub const AIM_BYTES: f64 = 32.0 * 1024.0;
/// The smallest largest step the aim is judged on.
pub const AIM_MIN_N: usize = 1_000;

fn judge(what: &str, points: &[Point], slope: Option<f64>) -> (Option<bool>, String) {
    let n = points.iter().map(|p| p.n).max().unwrap_or(0);
    match slope {
        Some(b) if n >= AIM_MIN_N => (
            Some(b <= AIM_BYTES),
            format!("{} per {what} over 0..{n}", kib(Some(b))),
        ),
        _ => (
            None,
            format!(
                "{what}: not judged (needs steps up to at least {AIM_MIN_N}; the largest was {n})"
            ),
        ),
    }
}

fn report(global: Vec<Point>, zone: Vec<Point>, opts: &Options) -> Report {
    let g_slope = per_item(&global);
    let z_slope = per_item(&zone);
    let (g_ok, g_reason) = judge("zone at the global", &global, g_slope);
    let (z_ok, z_reason) = judge("data plane at the zone", &zone, z_slope);
    let verdict = match (g_ok, z_ok) {
        (Some(false), _) | (_, Some(false)) => Verdict::Missed,
        (Some(true), Some(true)) => Verdict::Met,
        _ => Verdict::NotMeasured,
    };
    let mut rows = Vec::new();
    for (process, unit, points, per) in [
        ("mosaic-global", "zones", &global, g_slope),
        ("mosaic-zone", "dataplanes", &zone, z_slope),
    ] {
        let base = points.first().map_or(0, |p| p.rss_bytes);
        for (i, p) in points.iter().enumerate() {
            rows.push(vec![
                process.to_string(),
                format!("{} {unit}", p.n),
                mib(p.rss_bytes),
                format!(
                    "{:+.1} MiB",
                    (p.rss_bytes as f64 - base as f64) / (1024.0 * 1024.0)
                ),
                format!("{:.1} s", p.step_seconds),
                if i + 1 == points.len() {
                    format!("**{} per {}**", kib(per), unit.trim_end_matches('s'))
                } else {
                    String::new()
                },
            ]);
        }
    }
    Report {
        name: "memory".into(),
        title: "resident memory per connected zone (global) and per data plane (zone)".into(),
        aim: format!(
            "at most {} per connected zone (global) and per data plane (zone), slope over at least {AIM_MIN_N}",
            kib(Some(AIM_BYTES))
        ),
        verdict,
        verdict_reason: format!("{g_reason}; {z_reason}"),
        columns: [
            "process",
            "connected",
            "VmRSS",
            "Δ from first",
            "step took",
            "slope (least squares)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes: vec![
            format!(
                "Global: {} per connected zone. Real `mosaic-global` process; simulated zones (lean KDS clients, both streams, own TLS connection each) from the benchmark's process; every Zone registered before the first reading.",
                kib(g_slope)
            ),
            format!(
                "Zone: {} per data plane. Real `mosaic-zone` process (builtin CA); each data plane is `mosaic-dp`'s SDS client with its own TLS connection and dataplane token, registered by the zone from its node metadata and holding its own certificate.",
                kib(z_slope)
            ),
            format!(
                "VmRSS from /proc/<pid>/status, read {:.1} s after each step settled. The allocator keeps freed memory, so RSS is an upper bound of what is live.",
                opts.settle.as_secs_f64()
            ),
        ],
        data: json!({
            "global": global,
            "global_bytes_per_zone": g_slope,
            "zone": zone,
            "zone_bytes_per_dataplane": z_slope,
        }),
    }
}
