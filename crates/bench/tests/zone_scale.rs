//! `zone-scale`'s code path at a tiny size (20 data planes, 10 waiting, a 3 s outage) against
//! the real OpenBao, `mosaic-global` and `mosaic-zone`: the report has its four phases, and the
//! counts that hold by construction hold (every data plane re-issued from the new backend with
//! a verified chain, Vault calls by path adding up, peak in flight within `max_in_flight`, the
//! restart's Vault calls as the report shows them, every certificate rotated and bucketed, every
//! waiting data plane served). No timing is asserted.

use std::time::Duration;

use mosaic_bench::{Report, cluster::Binaries, zone_scale};
use serde_json::Value;

const MAX_IN_FLIGHT: usize = 4;

fn sum(counts: &Value) -> u64 {
    counts
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

fn issuance(counts: &Value) -> u64 {
    counts
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.contains("/issue/"))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn cell<'a>(report: &'a Report, starts: &str) -> &'a str {
    report
        .rows
        .iter()
        .find(|r| r[0].starts_with(starts))
        .map(|r| r[1].as_str())
        .unwrap_or_else(|| panic!("no row {starts:?}:\n{}", report.to_markdown()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_scale_runs_every_phase_with_consistent_counts() -> anyhow::Result<()> {
    mosaic_testkit::ensure_crypto_provider();
    let bins = Binaries::locate(None)?;
    let opts = zone_scale::Options {
        dataplanes: 20,
        waiting: 10,
        outage: Duration::from_secs(3),
        lifetime: Duration::from_secs(30),
        max_in_flight: MAX_IN_FLIGHT,
        connect_concurrency: 8,
        reconnect_concurrency: 20,
        throughput_count: 40,
    };
    let reports = zone_scale::run(&bins, &opts).await?;
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "zone-scale: connect and re-issue",
            "zone-scale: restart",
            "zone-scale: rotation",
            "zone-scale: Vault recovery"
        ]
    );
    for r in &reports {
        let md = r.to_markdown();
        assert!(md.contains(&format!("### {}", r.name)), "{md}");
        assert!(md.contains("Aim: aim "), "{md}");
        assert!(!r.rows.is_empty(), "{md}");
    }
    let (reissue, restart, rotation, recovery) =
        (&reports[0], &reports[1], &reports[2], &reports[3]);

    // Re-issue: every data plane got a certificate from backend B whose chain verifies.
    let d = &reissue.data;
    assert_eq!(d["reissued_from_b"], 20, "{d:#}");
    assert_eq!(d["chains_verified"], 20, "{d:#}");
    assert_eq!(d["nacks"], 0, "{d:#}");
    assert!(
        d["peak_in_flight"].as_u64().unwrap() <= MAX_IN_FLIGHT as u64,
        "{d:#}"
    );
    assert!(d["peak_in_flight"].as_u64().unwrap() >= 1, "{d:#}");
    assert_eq!(
        issuance(&d["vault_calls_by_path"]),
        d["vault_issuance_calls"]
    );
    assert!(d["vault_issuance_calls"].as_u64().unwrap() >= 20, "{d:#}");
    assert_eq!(d["direct"]["errors"], 0, "{d:#}");
    assert_eq!(d["direct"]["issued"], 40, "{d:#}");
    assert!(cell(reissue, "peak requests in flight").ends_with(&format!("/ {MAX_IN_FLIGHT}")));

    // Restart: the report shows the Vault calls it counted, by path too.
    let d = &restart.data;
    let calls = d["vault_calls"].as_u64().unwrap();
    assert_eq!(sum(&d["vault_calls_by_path"]), calls, "{d:#}");
    assert_eq!(
        cell(restart, "Vault calls from SIGTERM"),
        format!("**{calls}**")
    );
    assert_eq!(d["dataplanes"], 20);

    // Rotation: every certificate rotated and every rotation is in the histogram.
    let d = &rotation.data;
    assert_eq!(d["rotated"], 20, "{d:#}");
    let bucketed: u64 = d["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .sum::<u64>()
        + d["before_window"].as_u64().unwrap()
        + d["after_window"].as_u64().unwrap();
    assert_eq!(bucketed, 20, "{d:#}");
    assert!(d["vault_issuance_calls"].as_u64().unwrap() >= 20, "{d:#}");

    // Recovery: nothing served while Vault was down, every waiting data plane served from B
    // after, within max_in_flight.
    let d = &recovery.data;
    assert_eq!(d["served_during_outage"], 0, "{d:#}");
    assert_eq!(d["served_from_b"], 10, "{d:#}");
    assert!(
        d["peak_in_flight"].as_u64().unwrap() <= MAX_IN_FLIGHT as u64,
        "{d:#}"
    );
    assert_eq!(
        issuance(&d["vault_calls_by_path"]),
        d["vault_issuance_calls"]
    );
    assert!(d["vault_issuance_calls"].as_u64().unwrap() >= 10, "{d:#}");
    Ok(())
}
