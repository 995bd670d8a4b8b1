//! Phase 2 (aim 4): the zone is stopped (SIGTERM) and started again on the same data dir while
//! every data plane holds a valid certificate it cached; the data planes reconnect.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Options,
    fleet::Fleet,
    proxy::by_path,
    setup::{MESH, World},
    table::{self, row, secs},
};
use crate::{
    cluster::SETUP_DEADLINE,
    error::BenchError,
    procs::wait_until,
    report::{Report, Verdict},
};

/// The aim: every data plane holds its certificate again within this long of the zone
/// accepting connections.
pub const AIM_RESTORE: Duration = Duration::from_secs(1);
/// How long after the last data plane is served Vault calls are still counted.
const SETTLE: Duration = Duration::from_secs(2);

/// Restarts the zone under `fleet` and reconnects it; returns the reconnected fleet.
pub async fn run(
    world: &mut World,
    opts: &Options,
    fleet: Fleet,
) -> Result<(Fleet, Report), BenchError> {
    let n = fleet.members.len();
    let held: Vec<Option<String>> = fleet
        .members
        .iter()
        .map(|m| m.lock().received.last().map(|r| r.serial.clone()))
        .collect();
    let identities = fleet.identities();
    let mark = world.proxy.mark();
    world.proxy.reset_peak();
    let stop_at = Instant::now();
    world.zone.stop()?;
    let stopped = stop_at.elapsed();
    drop(fleet);

    world.zone.start()?;
    let started = Instant::now();
    let dp = world.zone.host.addr(world.zone.dp);
    wait_until(
        "the restarted zone's dataplane server to accept connections",
        SETUP_DEADLINE,
        Duration::from_millis(2),
        || async move { tokio::net::TcpStream::connect(dp).await.ok().map(|_| ()) },
    )
    .await?;
    let accepting = Instant::now();
    let fleet = Fleet::connect(
        &world.endpoint,
        MESH,
        identities,
        opts.reconnect_concurrency,
    )
    .await?;
    let opened = accepting.elapsed();
    fleet
        .wait_all(
            "its certificate again",
            opts.deadline(Duration::from_millis(5) * n as u32),
            Duration::from_millis(10),
            |s| !s.received.is_empty(),
        )
        .await?;
    let last = fleet
        .members
        .iter()
        .filter_map(|m| m.lock().received.first().map(|r| r.at))
        .max()
        .unwrap_or(accepting);
    let restore = last.saturating_duration_since(accepting);
    let same = fleet
        .members
        .iter()
        .zip(&held)
        .filter(|(m, before)| {
            let now = m.lock().received.first().map(|r| r.serial.clone());
            now.is_some() && now == **before
        })
        .count();
    tokio::time::sleep(SETTLE).await;
    let calls = world.proxy.calls_since(mark);
    let counted = by_path(&calls);

    let zero = calls.is_empty();
    let fast = restore <= AIM_RESTORE;
    let rows = vec![
        row(
            "data planes holding a valid cached certificate",
            n.to_string(),
        ),
        row("SIGTERM → zone exited", secs(stopped)),
        row(
            "start → dataplane server accepting connections",
            secs(accepting - started),
        ),
        row(
            &format!(
                "accepting → {n} streams opened again ({} at once)",
                opts.reconnect_concurrency
            ),
            secs(opened),
        ),
        row(
            "accepting → every data plane holding its certificate again",
            format!("**{}**", secs(restore)),
        ),
        row(
            "data planes served the same certificate as before (from the zone's cache)",
            format!("{same} / {n}"),
        ),
        row(
            &format!(
                "Vault calls from SIGTERM until {} s after the last data plane was served",
                SETTLE.as_secs()
            ),
            format!("**{}**", calls.len()),
        ),
        row("Vault calls by path", table::counts(&counted)),
    ];
    let notes = vec![
        "The zone is stopped with SIGTERM (it flushes its store and certificate cache) and started again with the same config and data dir; its dataplane server keeps its generated certificate, so data planes trust it as before.".into(),
        format!(
            "\"Accepting\" is the first moment a TCP connection to the dataplane server's port succeeds (polled every 2 ms from the start). The bench then opens every data plane's stream again (same name and token, {} at once) as Envoys would after their streams ended; the time runs until the last one received its identity certificate, and includes this process's own TLS handshakes on the same cores.",
            opts.reconnect_concurrency
        ),
        "Vault calls are every request the measuring proxy forwarded in the window (token lookups, roots, issuance): the zone reads its certificates and each backend's roots from its own database, and logs in to Vault only when it must issue.".into(),
    ];
    let report = Report {
        name: "zone-scale: restart".into(),
        title: format!("a zone restarted with {n} valid cached certificates"),
        aim: format!(
            "aim 4 at N = {n} (the issue names 10,000): 0 Vault calls, and every data plane has its certificate again within {} s of the zone accepting connections",
            AIM_RESTORE.as_secs()
        ),
        verdict: Verdict::from_check(Some(zero && fast && same == n)),
        verdict_reason: format!(
            "{} Vault calls; every data plane served again {} after the zone accepted connections ({} the aim); {same} of {n} from the cache",
            calls.len(),
            secs(restore),
            if fast { "within" } else { "beyond" }
        ),
        columns: table::columns(),
        rows,
        notes,
        data: json!({
            "dataplanes": n,
            "stop_seconds": stopped.as_secs_f64(),
            "start_to_accepting_seconds": (accepting - started).as_secs_f64(),
            "streams_opened_seconds": opened.as_secs_f64(),
            "restore_seconds": restore.as_secs_f64(),
            "same_certificate": same,
            "vault_calls": calls.len(),
            "vault_calls_by_path": counted,
        }),
    };
    Ok((fleet, report))
}
