//! `propagation`: how long a Mesh write takes from the global's API answer (committed and
//! applied) until every connected zone ACKed it, for several zone counts in one process.
//!
//! Per zone count: a fresh single-replica `mosaic-global` process (release build under
//! `scripts/bench.sh`), the Zones registered and their tokens issued through the API, N
//! simulated zones ([`crate::sim_zone`]) connected over TLS and fully synced, one warm-up write,
//! then `rounds` writes of Mesh `bench` (`PUT /meshes/bench`, a new `metrics.enabledBackend`
//! each round). Each round waits until every zone ACKed the new Mesh. Measured per round:
//! the API's own latency, API answer → last zone ACK (the headline), request sent → last ACK
//! (an upper bound that includes the write's raft commit), and every single ACK; plus the
//! global's own `mosaic_kds_push_seconds` histogram (apply → ACK received, per zone).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    cluster::{self, Api, Binaries},
    error::BenchError,
    procs::{cpu_seconds, ensure_open_files},
    report::{Report, Verdict},
    sim_zone::{KdsTarget, SimZone, ZoneEvent},
    stats::{self, Histogram, fmt_bound, fmt_ms, percentile},
};

/// The Mesh the benchmark writes.
pub const MESH: &str = "bench";
/// The aims: p99 of write → every zone ACKed under the duration, at the zone count (issue #17:
/// 50 ms at 1,000 zones, 1 s at 10,000).
pub const AIMS: [(usize, Duration); 2] = [
    (1_000, Duration::from_millis(50)),
    (10_000, Duration::from_secs(1)),
];
/// How long one round may take.
const ROUND_DEADLINE: Duration = Duration::from_secs(120);

/// Options of the `propagation` benchmark.
#[derive(Clone, Debug)]
pub struct Options {
    /// Zone counts, each run against a fresh global.
    pub zones: Vec<usize>,
    /// Mesh writes per zone count.
    pub rounds: usize,
    /// Zones connecting at once.
    pub connect_concurrency: usize,
}

/// The measurements of one zone count.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// Connected zones.
    pub zones: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Seconds it took to connect and sync every zone.
    pub connect_seconds: f64,
    /// The API's latency of the write (ms): p50.
    pub api_p50_ms: f64,
    /// API answer → last zone ACK (ms): p50.
    pub answer_to_all_p50_ms: f64,
    /// API answer → last zone ACK (ms): p99.
    pub answer_to_all_p99_ms: f64,
    /// Request sent → last zone ACK (ms): p99.
    pub request_to_all_p99_ms: f64,
    /// API answer → each single ACK (ms): p50.
    pub answer_to_each_p50_ms: f64,
    /// API answer → each single ACK (ms): p99.
    pub answer_to_each_p99_ms: f64,
    /// Global `mosaic_kds_push_seconds` (apply → ACK) bucket bound of p50, seconds.
    pub global_push_p50_le: Option<f64>,
    /// The same for p99.
    pub global_push_p99_le: Option<f64>,
    /// Its mean, ms.
    pub global_push_mean_ms: Option<f64>,
    /// CPU time (utime + stime) the global process spent per round, ms.
    pub global_cpu_ms_per_round: f64,
    /// CPU time this process (the simulated zones and the measuring client) spent per round, ms.
    pub zones_cpu_ms_per_round: f64,
}

/// Runs the benchmark.
pub async fn run(bins: &Binaries, opts: &Options) -> Result<Report, BenchError> {
    let max = opts.zones.iter().copied().max().unwrap_or(0) as u64;
    ensure_open_files(max + 1024)?;
    let mut rows = Vec::new();
    for &n in &opts.zones {
        rows.push(measure(bins, n, opts).await?);
    }
    Ok(report(rows, opts))
}

async fn measure(bins: &Binaries, n: usize, opts: &Options) -> Result<Row, BenchError> {
    let global = cluster::start_single_global(bins).await?;
    let api = Api::new(global.api(0))?;
    api.put_yaml(&format!("/meshes/{MESH}"), &mesh_yaml("round-0"))
        .await?;
    let cluster::ZoneSet {
        names,
        tokens,
        target,
    } = cluster::register_zones(&global, &api, n).await?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let started = Instant::now();
    let zones = connect_all(
        &target,
        &names,
        &tokens,
        opts.connect_concurrency,
        events_tx,
    )
    .await?;
    let connect_seconds = started.elapsed().as_secs_f64();

    let mut acks: Acks = HashMap::new();
    // Every zone received round-0 in its first sync; one more write warms the path up.
    write_and_wait(&api, &mut events, &mut acks, n, "warm-up").await?;
    let before = Histogram::parse(
        &cluster::metrics_text(&global).await?,
        "mosaic_kds_push_seconds",
    );
    let global_pid = global
        .pid(0)
        .ok_or_else(|| BenchError::Setup("the global process is not running".into()))?;
    let cpu = || -> Result<(f64, f64), BenchError> {
        Ok((cpu_seconds(global_pid)?, cpu_seconds(std::process::id())?))
    };
    let cpu_before = cpu()?;
    let mut api_latency = Vec::new();
    let mut to_all = Vec::new();
    let mut request_to_all = Vec::new();
    let mut each = Vec::new();
    for round in 1..=opts.rounds {
        let tag = format!("round-{round}");
        let (sent, answered, times) = write_and_wait(&api, &mut events, &mut acks, n, &tag).await?;
        api_latency.push(answered - sent);
        let last = times.iter().max().copied().unwrap_or(answered);
        to_all.push(last.saturating_duration_since(answered));
        request_to_all.push(last - sent);
        each.extend(times.iter().map(|t| t.saturating_duration_since(answered)));
    }
    let cpu_after = cpu()?;
    let per_round = |before: f64, after: f64| (after - before) * 1000.0 / opts.rounds.max(1) as f64;
    let after = Histogram::parse(
        &cluster::metrics_text(&global).await?,
        "mosaic_kds_push_seconds",
    );
    let push = after.since(&before);
    drop(zones);
    drop(global);
    Ok(Row {
        zones: n,
        rounds: opts.rounds,
        connect_seconds,
        api_p50_ms: stats::ms(percentile(&api_latency, 0.5)),
        answer_to_all_p50_ms: stats::ms(percentile(&to_all, 0.5)),
        answer_to_all_p99_ms: stats::ms(percentile(&to_all, 0.99)),
        request_to_all_p99_ms: stats::ms(percentile(&request_to_all, 0.99)),
        answer_to_each_p50_ms: stats::ms(percentile(&each, 0.5)),
        answer_to_each_p99_ms: stats::ms(percentile(&each, 0.99)),
        global_push_p50_le: push.quantile_bound(0.5),
        global_push_p99_le: push.quantile_bound(0.99),
        global_push_mean_ms: push.mean().map(|s| s * 1000.0),
        global_cpu_ms_per_round: per_round(cpu_before.0, cpu_after.0),
        zones_cpu_ms_per_round: per_round(cpu_before.1, cpu_after.1),
    })
}

fn mesh_yaml(tag: &str) -> String {
    // Kuma checks that the enabled metrics backend is one of the Mesh's backends.
    format!(
        "type: Mesh\nname: {MESH}\nmetrics:\n  enabledBackend: {tag}\n  backends:\n  - name: {tag}\n    type: prometheus\n"
    )
}

/// Connects and syncs every zone, `limit` at a time.
pub async fn connect_all(
    target: &KdsTarget,
    names: &[String],
    tokens: &[String],
    limit: usize,
    events: mpsc::UnboundedSender<ZoneEvent>,
) -> Result<Vec<SimZone>, BenchError> {
    let target = target.clone();
    let items: Vec<(usize, String, String)> = names
        .iter()
        .zip(tokens)
        .enumerate()
        .map(|(i, (n, t))| (i, n.clone(), t.clone()))
        .collect();
    cluster::concurrent(items, limit, move |(i, name, token)| {
        let target = target.clone();
        let events = events.clone();
        async move { SimZone::connect(i, &name, &token, &target, MESH, events).await }
    })
    .await
}

/// Per Mesh tag, each zone's first ACK of it.
type Acks = HashMap<String, HashMap<usize, Instant>>;

/// Writes the Mesh with `tag` and waits until `n` zones ACKed it; returns when the request was
/// sent, when the API answered, and each zone's ACK time.
async fn write_and_wait(
    api: &Api,
    events: &mut mpsc::UnboundedReceiver<ZoneEvent>,
    acks: &mut Acks,
    n: usize,
    tag: &str,
) -> Result<(Instant, Instant, Vec<Instant>), BenchError> {
    let sent = Instant::now();
    api.put_yaml(&format!("/meshes/{MESH}"), &mesh_yaml(tag))
        .await?;
    let answered = Instant::now();
    let deadline = tokio::time::Instant::now() + ROUND_DEADLINE;
    while acks.get(tag).map_or(0, HashMap::len) < n {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| BenchError::Timeout {
                what: format!(
                    "every zone to ACK Mesh {MESH} {tag} ({} of {n} did)",
                    acks.get(tag).map_or(0, HashMap::len)
                ),
                after: ROUND_DEADLINE,
            })?;
        match event {
            Some(ZoneEvent::MeshAcked { zone, tag, at }) => {
                // The first ACK of each zone counts (a resync may send the Mesh again).
                acks.entry(tag).or_default().entry(zone).or_insert(at);
            }
            Some(ZoneEvent::Ended { zone, reason }) => {
                return Err(BenchError::Stream(format!(
                    "simulated zone-{zone} lost its session: {reason}"
                )));
            }
            None => return Err(BenchError::Stream("every simulated zone is gone".into())),
        }
    }
    let times = acks.remove(tag).unwrap_or_default().into_values().collect();
    Ok((sent, answered, times))
}

fn report(rows: Vec<Row>, opts: &Options) -> Report {
    // Judged on `request → all ACKed`: the write was committed somewhere between the request
    // and the API's answer, so this bounds commit → every ACK from above. Every aim whose zone
    // count was run counts; the verdict is missed if any of them is, and says which were not run.
    let mut checks = Vec::new();
    let mut reasons = Vec::new();
    for (zones, p99) in AIMS {
        let aim_ms = stats::ms(p99);
        match rows.iter().find(|r| r.zones == zones) {
            Some(r) => {
                let ok = r.request_to_all_p99_ms < aim_ms;
                checks.push(ok);
                reasons.push(format!(
                    "at {zones} zones {}: request sent → every zone ACKed p99 {:.1} ms against {} (an upper bound of commit → ACK); API answer → every zone ACKed p99 {:.1} ms",
                    if ok { "met" } else { "missed" },
                    r.request_to_all_p99_ms,
                    fmt_ms(p99),
                    r.answer_to_all_p99_ms
                ));
            }
            None => reasons.push(format!(
                "{zones} zones not run (not in --zones; `SCALE=full ./scripts/bench.sh` runs them)"
            )),
        }
    }
    let verdict = if checks.is_empty() {
        Verdict::NotMeasured
    } else {
        Verdict::from_check(Some(checks.iter().all(|ok| *ok)))
    };
    let reason = reasons.join("; ");
    let table = rows
        .iter()
        .map(|r| {
            vec![
                r.zones.to_string(),
                r.rounds.to_string(),
                format!("{:.1} ms", r.api_p50_ms),
                format!("{:.1} ms", r.answer_to_all_p50_ms),
                format!("{:.1} ms", r.answer_to_all_p99_ms),
                format!("{:.1} ms", r.request_to_all_p99_ms),
                format!(
                    "{:.1} / {:.1} ms",
                    r.answer_to_each_p50_ms, r.answer_to_each_p99_ms
                ),
                format!(
                    "{} / {} (mean {})",
                    fmt_bound(r.global_push_p50_le),
                    fmt_bound(r.global_push_p99_le),
                    r.global_push_mean_ms
                        .map_or("n/a".into(), |m| format!("{m:.1} ms"))
                ),
                format!(
                    "{:.1} / {:.1} ms",
                    r.global_cpu_ms_per_round, r.zones_cpu_ms_per_round
                ),
                format!("{:.1} s", r.connect_seconds),
            ]
        })
        .collect();
    Report {
        name: "propagation".into(),
        title: "Mesh write → ACK from every zone".into(),
        aim: format!(
            "p99 (write committed → every zone ACKed) {} (Kuma polls every 1 s, Kong Mesh 3.0 every 5 s)",
            AIMS.iter()
                .map(|(z, d)| format!("under {} at {z} zones", fmt_ms(*d)))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        verdict,
        verdict_reason: reason,
        columns: [
            "zones",
            "rounds",
            "API write p50",
            "answer → all ACKed p50",
            "answer → all ACKed p99",
            "request → all ACKed p99",
            "answer → each ACK p50 / p99",
            "global push histogram p50 / p99",
            "CPU per round: global / zones + client",
            "connect + sync all",
        ]
        .map(String::from)
        .to_vec(),
        rows: table,
        notes: vec![
            "Real: a single-replica `mosaic-global` process (raft over sled, fsync on every write), its HTTP API, its KDS server over TLS with zone tokens.".into(),
            "Simulated: the zones. All of them run in the benchmark's one process as lean KDS clients (`crates/bench/src/sim_zone.rs`): own TLS connection and token each, both streams, every item decoded and validated with the zone crate's code, ACK per response — but no sled store and no fsync before the ACK (a zone's own persistence time does not depend on how many zones exist).".into(),
            "Per round: `request → all ACKed` runs from sending `PUT /meshes/bench` to the last zone's ACK; the write commits somewhere inside it, so it bounds commit → every ACK from above and the aim is judged on it. `answer → all ACKed` starts at the API's 200 (committed and applied); zones often ACK before that answer reaches the client, which counts as 0. `each ACK`: every zone's ACK, every round, from the answer. The global's `mosaic_kds_push_seconds` (its apply → ACK received, per zone) is a bucketed histogram, so it gives bucket bounds.".into(),
            format!(
                "The zones, the global and the measuring client share the machine's cores; {} rounds per zone count, one warm-up write first.",
                opts.rounds
            ),
            "Attribution: `CPU per round` is the utime + stime the global process and this process (the simulated zones and the measuring client) spent over the measured rounds, divided by the rounds. On this machine both share two cores, so a round cannot end sooner than about their sum / 2; in a deployment each zone is its own machine and only the global's share is spent on the global's cores.".into(),
        ],
        data: json!({ "rows": rows, "rounds": opts.rounds }),
    }
}
