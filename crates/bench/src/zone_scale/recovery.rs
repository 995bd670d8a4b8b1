//! Phase 4 (aim 5): Vault "stops" (the proxy refuses connections) while M new data planes wait
//! for their first certificate; Vault's own throughput is measured meanwhile, straight at
//! OpenBao; then Vault returns and the M data planes must be served at Vault's pace without
//! more than `max_in_flight` requests at Vault at once.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Options,
    fleet::{Fleet, Identity},
    proxy::{by_path, is_issuance, vault_load},
    reissue::direct_json,
    setup::{BACKEND_B, MESH, World},
    table::{self, row, secs},
};
use crate::{
    error::BenchError,
    report::{Report, Verdict},
};

/// The aim: all served within this factor of M / Vault's throughput.
pub const AIM_FACTOR: f64 = 1.1;

/// Runs the outage and the recovery with the `waiting` data planes.
pub async fn run(
    world: &World,
    opts: &Options,
    waiting: Vec<Identity>,
) -> Result<Report, BenchError> {
    let m = waiting.len();
    // The N data planes of the earlier phases are gone: let the zone end their watches.
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.proxy.set_down(true);
    world
        .proxy
        .wait_state(true, Duration::from_secs(10))
        .await?;
    let down_at = Instant::now();
    let fleet = Fleet::connect(&world.endpoint, MESH, waiting, opts.connect_concurrency).await?;
    let connected = down_at.elapsed();
    // Vault itself is fine: measure its throughput now, straight at OpenBao.
    let direct = world
        .direct(opts.throughput_count, opts.max_in_flight, opts)
        .await
        .result("direct client → OpenBao pki-b/issue (EC P-256), during the outage");
    let throughput = direct.per_second;
    let outage_end = down_at + opts.outage;
    tokio::time::sleep(outage_end.saturating_duration_since(Instant::now())).await;
    let served_during = fleet.count(|s| !s.received.is_empty());
    let outage = down_at.elapsed();

    let mark = world.proxy.mark();
    world.proxy.reset_peak();
    let up_at = Instant::now();
    world.proxy.set_down(false);
    world
        .proxy
        .wait_state(false, Duration::from_secs(10))
        .await?;
    let ideal = m as f64 / throughput.max(f64::MIN_POSITIVE);
    // The zone's backoff (up to 60 s) and breaker cooldown (30 s) may delay it: wait long enough
    // to see it.
    fleet
        .wait_all(
            "its first certificate after Vault returned",
            opts.deadline(Duration::from_secs_f64(ideal)) + Duration::from_secs(120),
            Duration::from_millis(20),
            |s| !s.received.is_empty(),
        )
        .await?;
    let arrivals: Vec<Instant> = fleet
        .members
        .iter()
        .filter_map(|mb| mb.lock().received.first().map(|r| r.at))
        .collect();
    let from_b = fleet.count(|s| {
        s.received
            .first()
            .is_some_and(|r| r.issuer.contains(BACKEND_B.root_cn))
    });
    let last = arrivals.iter().max().copied().unwrap_or(up_at);
    let served = last.saturating_duration_since(up_at);
    let first_served = arrivals
        .iter()
        .min()
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(up_at));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = world.proxy.peak();
    let calls = world.proxy.calls_since(mark);
    let issued = calls.iter().filter(|c| is_issuance(c)).count();
    let first_call = calls.first().map_or(Duration::ZERO, |c| {
        c.started.saturating_duration_since(up_at)
    });

    let (vault_p50, mean_in_flight) = vault_load(&calls, served);
    let ratio = served.as_secs_f64() / ideal;
    let within = peak <= opts.max_in_flight;
    let fast = ratio <= AIM_FACTOR;
    let rows = vec![
        row(
            "new data planes waiting (connected while Vault was down)",
            m.to_string(),
        ),
        row("Vault down (proxy refusing connections) for", secs(outage)),
        row("streams opened during the outage", secs(connected)),
        row("served while Vault was down", served_during.to_string()),
        row(
            &format!(
                "Vault throughput: direct client, {} certificates at concurrency {}, during the outage",
                direct.issued, opts.max_in_flight
            ),
            format!(
                "{:.1}/s (p50 / p99 {:.1} / {:.1} ms, {} errors)",
                direct.per_second, direct.p50_ms, direct.p99_ms, direct.errors
            ),
        ),
        row("Vault back → first request at Vault", secs(first_call)),
        row("Vault back → first data plane served", secs(first_served)),
        row("Vault back → all served", format!("**{}**", secs(served))),
        row("M / Vault throughput", format!("{ideal:.3} s")),
        row("all served / (M / throughput)", format!("**{ratio:.2}**")),
        row(
            "peak requests in flight at Vault / issuer.max_in_flight",
            format!("**{peak}** / {}", opts.max_in_flight),
        ),
        row(
            "Vault latency p50 of those calls (direct client's, during the outage)",
            format!("{vault_p50:.1} ms ({:.1} ms)", direct.p50_ms),
        ),
        row(
            "mean requests in flight at Vault, Vault back → all served",
            format!("{mean_in_flight:.1}"),
        ),
        row("served from backend B", format!("{from_b} / {m}")),
        row(
            "Vault calls after it returned, by path",
            table::counts(&by_path(&calls)),
        ),
    ];
    let notes = vec![
        "\"Vault stopped\" is the measuring proxy closing its listening socket and every open connection, so the zone's requests are refused (`ECONNREFUSED`) as with a stopped Vault process; OpenBao keeps running behind it. Really stopping `bao server -dev` would lose its in-memory PKI, and a non-dev OpenBao would need init and unseal on every start; from the zone's side both look the same.".into(),
        "Vault's throughput is measured during the outage straight at OpenBao (the zone cannot reach it then), at the zone's `max_in_flight` concurrency with the zone's request body.".into(),
        "The zone's issuer retries a failed certificate with jittered exponential backoff (1 s doubling to 60 s) per data plane; its circuit breaker per backend opens after 5 consecutive failures and then half-opens every 250 ms, waking one waiting data plane to make the trial (never two at once); a trial that succeeds wakes every waiting data plane at once. So the time to the first request after Vault returns is at most one cooldown plus that trial, and the rest is issuance at `max_in_flight`.".into(),
    ];
    Ok(Report {
        name: "zone-scale: Vault recovery".into(),
        title: format!("{m} new data planes waiting while Vault is down, then Vault returns"),
        aim: format!(
            "aim 5 at M = {m}, outage {} s (the issue names 2,000 and 5 min): peak in flight at Vault ≤ `max_in_flight` = {}, and all served within {:.0}% of M / Vault's throughput",
            opts.outage.as_secs(),
            opts.max_in_flight,
            (AIM_FACTOR - 1.0) * 100.0
        ),
        verdict: Verdict::from_check(Some(within && fast && from_b == m && direct.errors == 0)),
        verdict_reason: format!(
            "all {m} served {} after Vault returned against {ideal:.2} s ideal (×{ratio:.2}); peak in flight {peak} ≤ {}: {}",
            secs(served),
            opts.max_in_flight,
            if within { "yes" } else { "no" }
        ),
        columns: table::columns(),
        rows,
        notes,
        data: json!({
            "waiting": m,
            "outage_seconds": outage.as_secs_f64(),
            "served_during_outage": served_during,
            "direct": direct_json(&direct),
            "first_call_seconds": first_call.as_secs_f64(),
            "first_served_seconds": first_served.as_secs_f64(),
            "served_seconds": served.as_secs_f64(),
            "ideal_seconds": ideal,
            "ratio_to_ideal": ratio,
            "peak_in_flight": peak,
            "mean_in_flight": mean_in_flight,
            "vault_p50_ms": vault_p50,
            "max_in_flight": opts.max_in_flight,
            "served_from_b": from_b,
            "vault_calls_by_path": by_path(&calls),
            "vault_issuance_calls": issued,
        }),
    })
}
