//! The `mode: intermediate` benchmarks run at a tiny size against a real OpenBao and produce
//! their report: throughput rows and the ratio for both sides, Vault calls by path (one
//! intermediate per zone, no per-certificate call), and the outage's measured and predicted
//! budgets (the prediction falls between the last certificate and the first refusal, which
//! holds by construction, not by timing). How fast anything was is not asserted.

use std::time::Duration;

use mosaic_bench::{Verdict, intermediate};
use serde_json::Value;

fn has_number(cell: &str) -> bool {
    cell.chars().any(|c| c.is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermediate_issuance_reports_both_sides_and_their_ratio() -> anyhow::Result<()> {
    let report = intermediate::throughput::run(&intermediate::throughput::Options {
        concurrency: 4,
        count: 20,
        zone_count: 60,
    })
    .await?;
    let md = report.to_markdown();
    assert_eq!(report.name, "intermediate-issuance");
    assert_eq!(report.rows.len(), 4, "{md}");
    for row in &report.rows[..2] {
        assert!(has_number(&row[3]) && row[3].ends_with("/s"), "{row:?}");
    }
    assert!(report.rows[3][3].contains('×'), "{md}");
    let results = &report.data["results"];
    assert_eq!(results["direct"]["issued"], 20, "{md}");
    assert_eq!(results["intermediate"]["issued"], 60, "{md}");
    for side in ["direct", "intermediate"] {
        assert_eq!(results[side]["errors"], 0, "{md}");
        assert!(
            results[side]["per_second"].as_f64().unwrap_or(0.0) > 0.0,
            "{md}"
        );
    }
    assert!(
        report.data["ratio_intermediate_to_direct"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(results["first_certificate_ms"].is_number());
    assert!(matches!(report.verdict, Verdict::Met | Verdict::Missed));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermediate_calls_counts_one_intermediate_per_zone_and_no_leaf_calls()
-> anyhow::Result<()> {
    let report = intermediate::calls::run(&intermediate::calls::Options {
        zones: 2,
        dataplanes: 20,
        concurrency: 4,
    })
    .await?;
    let md = report.to_markdown();
    let modes = report.data["modes"].as_array().expect("modes");
    assert_eq!(modes.len(), 2, "{md}");
    for m in modes {
        assert_eq!(m["issued"], 20, "{md}");
        assert_eq!(m["errors"], 0, "{md}");
        assert_eq!(m["sign_intermediate"], 2, "one per zone: {md}");
        assert_eq!(m["per_certificate"], 0, "{md}");
        assert_eq!(m["calls"]["update auth/kubernetes/login"], 2, "{md}");
        assert!(m["total"].as_u64().unwrap_or(0) >= 4, "{md}");
    }
    let csr = &modes[1]["calls"];
    assert_eq!(
        csr["update pki_int/intermediate/generate/exported"], 2,
        "{md}"
    );
    assert_eq!(
        csr["delete pki_int/key/{id}"], 2,
        "each Vault-made key deleted: {md}"
    );
    assert!(modes[0]["calls"].get("delete pki_int/key/{id}").is_none());
    assert!(
        md.contains("| `pki/root/sign-intermediate` | update | 2 | 100.0 | 1.0 |"),
        "{md}"
    );
    assert_eq!(
        report.verdict,
        Verdict::NotMeasured,
        "1,000 data planes were not run"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermediate_outage_measures_the_budget_next_to_the_arithmetic() -> anyhow::Result<()> {
    let report = intermediate::outage::run(&intermediate::outage::Options {
        intermediate_ttl: Duration::from_secs(15),
        leaf_ttl: Duration::from_secs(5),
        stop_after: Duration::from_millis(500),
        interval: Duration::from_millis(100),
    })
    .await?;
    let md = report.to_markdown();
    let o = &report.data["outage"];
    let num = |k: &str| o[k].as_f64().unwrap_or(f64::NAN);
    for k in [
        "remaining_life_s",
        "leaf_lifetime_s",
        "predicted_s",
        "measured_s",
        "first_refusal_s",
        "granularity_s",
        "difference_s",
    ] {
        assert!(num(k).is_finite(), "{k}: {md}");
    }
    assert_eq!(num("leaf_lifetime_s"), 5.0);
    assert!(
        (num("predicted_s") - (num("remaining_life_s") - 5.0)).abs() < 1e-9,
        "predicted = remaining life − leaf lifetime: {md}"
    );
    assert!(o["issued_during_outage"].as_u64().unwrap_or(0) > 0, "{md}");
    assert_eq!(o["same_intermediate"], Value::Bool(true), "{md}");
    assert_eq!(report.data["agrees"], Value::Bool(true), "{md}");
    assert_eq!(report.verdict, Verdict::Met, "{md}");
    assert!(
        md.contains("**predicted**") && md.contains("**measured**"),
        "{md}"
    );
    Ok(())
}
