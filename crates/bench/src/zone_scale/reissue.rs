//! Phase 1 (aim 3): N data planes connect over SDS (backend A); then the Mesh's enabled backend
//! is switched to B through the global's API, so that every certificate is issued again.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Options,
    fleet::{Fleet, Identity, Seen},
    proxy::{by_path, is_issuance, vault_load},
    setup::{BACKEND_A, BACKEND_B, MESH, World},
    table::{self, Usage, mib, row, secs},
};
use crate::{
    error::BenchError,
    load::CaseResult,
    report::{Report, Verdict},
};

/// What later phases need from this one.
pub struct Reissued {
    /// The report.
    pub report: Report,
    /// Per data plane (fleet order): the serial of its first certificate from backend B.
    pub b_serials: Vec<String>,
    /// Per data plane: when that certificate arrived.
    pub b_arrivals: Vec<Instant>,
    /// When Vault answered the first and the last issuance of the switch (the proxy's
    /// timestamps): the zone counts each certificate's lifetime from about then.
    pub issued: (Instant, Instant),
    /// Vault's throughput as the direct client measured it (certificates per second).
    pub throughput: f64,
}

fn from(s: &Seen, root_cn: &str, since: Option<Instant>) -> bool {
    s.received
        .last()
        .is_some_and(|r| r.issuer.contains(root_cn) && since.is_none_or(|t| r.at >= t))
}

/// Connects `identities`, measures, switches to backend B and measures again.
pub async fn run(
    world: &World,
    opts: &Options,
    identities: Vec<Identity>,
) -> Result<(Fleet, Reissued), BenchError> {
    let n = identities.len();
    let pid = world.zone_pid()?;
    let before = Usage::of(pid)?;
    let started = Instant::now();
    let fleet = Fleet::connect(&world.endpoint, MESH, identities, opts.connect_concurrency).await?;
    let opened = started.elapsed();
    fleet
        .wait_all(
            "a certificate from backend A",
            opts.deadline(Duration::from_millis(20) * n as u32),
            Duration::from_millis(50),
            |s| from(s, BACKEND_A.root_cn, None),
        )
        .await?;
    let connected = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_connect = Usage::of(pid)?;

    // Vault's own throughput for backend B, straight at OpenBao, at max_in_flight.
    let direct = world
        .direct(opts.throughput_count, opts.max_in_flight, opts)
        .await
        .result("direct client → OpenBao pki-b/issue (EC P-256)");
    let throughput = direct.per_second;

    // The switch.
    let mark = world.proxy.mark();
    world.proxy.reset_peak();
    let cpu_before = Usage::of(pid)?;
    let put_at = Instant::now();
    world.switch(&BACKEND_B, opts).await?;
    let expected = Duration::from_secs_f64(n as f64 / throughput.max(1.0));
    fleet
        .wait_all(
            "a certificate from backend B",
            opts.deadline(expected),
            Duration::from_millis(20),
            |s| from(s, BACKEND_B.root_cn, Some(put_at)),
        )
        .await?;
    let mut b_serials = Vec::with_capacity(n);
    let mut b_arrivals = Vec::with_capacity(n);
    let mut verified = 0;
    let mut first_failure = None;
    for m in &fleet.members {
        let seen = m.lock();
        let Some(r) = seen
            .received
            .iter()
            .find(|r| r.at >= put_at && r.issuer.contains(BACKEND_B.root_cn))
        else {
            continue;
        };
        b_serials.push(r.serial.clone());
        b_arrivals.push(r.at);
        match mosaic_testkit::verify_chain(&seen.last_chain, std::slice::from_ref(&world.root_b)) {
            Ok(()) => verified += 1,
            Err(e) => {
                first_failure.get_or_insert_with(|| format!("{}: {e:#}", m.identity.name));
            }
        }
    }
    let last = b_arrivals.iter().max().copied().unwrap_or(put_at);
    let completion = last.saturating_duration_since(put_at);
    // Whatever is still in flight (nothing should be) is counted too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = world.proxy.peak();
    let calls = world.proxy.calls_since(mark);
    let issued = calls.iter().filter(|c| is_issuance(c)).count();
    let answered: Vec<Instant> = calls
        .iter()
        .filter(|c| is_issuance(c) && c.status == 200)
        .filter_map(|c| c.finished)
        .collect();
    let issued_window = (
        answered.iter().min().copied().unwrap_or(put_at),
        answered.iter().max().copied().unwrap_or(last),
    );
    let after_switch = Usage::of(pid)?;
    let nacks: usize = fleet.members.iter().map(|m| m.lock().nacks).sum();

    let ideal = n as f64 / throughput.max(f64::MIN_POSITIVE);
    let ratio = completion.as_secs_f64() / ideal;
    let (vault_p50, mean_in_flight) = vault_load(&calls, completion);
    let per_dp = (after_connect.rss_bytes as f64 - before.rss_bytes as f64) / n as f64;
    let all_b = b_serials.len() == n && verified == n;
    let within = peak <= opts.max_in_flight;
    let verdict = Verdict::from_check(Some(all_b && within && direct.errors == 0 && nacks == 0));
    let rows = vec![
        row(
            "data planes (own dataplane token, SDS stream and TLS connection each)",
            n.to_string(),
        ),
        row("streams opened", secs(opened)),
        row(
            "connected, every data plane holding a certificate from backend A",
            secs(connected),
        ),
        row(
            "zone VmRSS before → after connecting",
            format!(
                "{} → {} ({:.1} KiB per data plane)",
                mib(before.rss_bytes),
                mib(after_connect.rss_bytes),
                per_dp / 1024.0
            ),
        ),
        row(
            "zone CPU (utime + stime) for connecting",
            format!("{:.1} s", after_connect.cpu_seconds - before.cpu_seconds),
        ),
        row(
            &format!(
                "Vault throughput: direct client, {} certificates at concurrency {}",
                direct.issued, opts.max_in_flight
            ),
            format!(
                "{:.1}/s (p50 / p99 {:.1} / {:.1} ms, {} errors)",
                direct.per_second, direct.p50_ms, direct.p99_ms, direct.errors
            ),
        ),
        row(
            "switch → every data plane holding a certificate from backend B",
            format!("**{}**", secs(completion)),
        ),
        row("N / Vault throughput", format!("{ideal:.3} s")),
        row("completion / (N / throughput)", format!("**{ratio:.2}**")),
        row(
            "peak requests in flight at Vault (proxy) / zone's issuer.max_in_flight",
            format!("**{peak}** / {}", opts.max_in_flight),
        ),
        row(
            "Vault latency p50 of the zone's calls (direct client's)",
            format!("{vault_p50:.1} ms ({:.1} ms)", direct.p50_ms),
        ),
        row(
            "mean requests in flight at Vault, switch → all re-issued",
            format!("{mean_in_flight:.1}"),
        ),
        row(
            "certificates from backend B whose chain verifies to its root",
            format!("{verified} / {n}"),
        ),
        row(
            "Vault calls during the switch, by path",
            table::counts(&by_path(&calls)),
        ),
        row(
            "zone CPU for the re-issue; VmRSS after",
            format!(
                "{:.1} s; {}",
                after_switch.cpu_seconds - cpu_before.cpu_seconds,
                mib(after_switch.rss_bytes)
            ),
        ),
    ];
    let mut notes = vec![
        format!(
            "Real processes: single-replica `mosaic-global`, `mosaic-zone` with `issuer.max_in_flight = {}` in its config, OpenBao (`bao server -dev`) with two PKI mounts (`{}`, `{}`: EC P-256 roots named `{}` and `{}`, EC P-256 issue roles with `no_store`). The Mesh has both as `vault` backends in issue mode (token auth from a Secret), backend A's certificates live {}, B's {} s.",
            opts.max_in_flight,
            BACKEND_A.mount,
            BACKEND_B.mount,
            BACKEND_A.root_cn,
            BACKEND_B.root_cn,
            super::setup::LIFETIME_A,
            opts.lifetime.as_secs()
        ),
        "The zone reaches Vault through a measuring proxy in this process (every request goes on to the real OpenBao; it counts by path, tracks requests in flight and their peak). The Mesh is written with `mtls.skipValidation`, so the global's test issuance does not pass through it: every call counted is the zone's.".into(),
        format!(
            "Data planes: `mosaic-dp`'s SDS client in this process, {} connecting at once, each decoding every response with mosaic-dp's checks and ACKing it. A data plane counts as re-issued when the certificate SDS delivered has backend B's root as issuer and its chain verifies to that root (rustls-webpki).",
            opts.connect_concurrency
        ),
        "Vault's throughput is measured straight at OpenBao (not through the proxy) just before the switch, with the body the zone sends, at the zone's `max_in_flight` concurrency; the proxy's own cost is therefore on the zone's side of the ratio.".into(),
    ];
    if let Some(e) = first_failure {
        notes.push(format!("First chain that did not verify: {e}"));
    }
    if let Some(e) = &direct.first_error {
        notes.push(format!("Direct client's first error: {e}"));
    }
    if nacks > 0 {
        notes.push(format!("{nacks} responses were NACKed by the data planes."));
    }
    let report = Report {
        name: "zone-scale: connect and re-issue".into(),
        title: format!("{n} data planes on one zone; the Mesh's enabled backend switched"),
        aim: format!(
            "aim 3 at N = {n} (the issue names 10,000): every data plane re-issued from the new backend with Vault never seeing more than `max_in_flight` = {} requests at once; completion time shown against N / Vault's throughput",
            opts.max_in_flight
        ),
        verdict,
        verdict_reason: format!(
            "{} of {n} re-issued from B and verified, peak in flight {peak} ≤ {}: {}; {} vs {ideal:.2} s ideal (×{ratio:.2}); zone RSS {:.1} KiB per data plane",
            b_serials.len().min(verified),
            opts.max_in_flight,
            if within { "yes" } else { "no" },
            secs(completion),
            per_dp / 1024.0
        ),
        columns: table::columns(),
        rows,
        notes,
        data: json!({
            "dataplanes": n,
            "max_in_flight": opts.max_in_flight,
            "streams_opened_seconds": opened.as_secs_f64(),
            "connected_seconds": connected.as_secs_f64(),
            "zone_before": before,
            "zone_after_connect": after_connect,
            "zone_after_switch": after_switch,
            "zone_cpu_switch_seconds": after_switch.cpu_seconds - cpu_before.cpu_seconds,
            "rss_bytes_per_dataplane": per_dp,
            "direct": direct_json(&direct),
            "switch_completion_seconds": completion.as_secs_f64(),
            "ideal_seconds": ideal,
            "ratio_to_ideal": ratio,
            "peak_in_flight": peak,
            "mean_in_flight": mean_in_flight,
            "vault_p50_ms": vault_p50,
            "reissued_from_b": b_serials.len(),
            "chains_verified": verified,
            "vault_calls_by_path": by_path(&calls),
            "vault_issuance_calls": issued,
            "nacks": nacks,
        }),
    };
    Ok((
        fleet,
        Reissued {
            report,
            b_serials,
            b_arrivals,
            issued: issued_window,
            throughput,
        },
    ))
}

/// A direct-client result as JSON.
pub fn direct_json(r: &CaseResult) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}
