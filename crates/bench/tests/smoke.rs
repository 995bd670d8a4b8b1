//! The benchmarks' code paths still run: `mosaic-bench propagation` (the binary, `--json`) with
//! two zones and three rounds, and `memory` with two zones and two data planes, against the
//! workspace's real `mosaic-global`/`mosaic-zone` binaries. Nothing here looks at how fast
//! anything was: only that rows with numbers come out.

use std::{process::Command, time::Duration};

use mosaic_bench::{cluster::Binaries, memory};
use serde_json::Value;

fn has_number(cell: &str) -> bool {
    cell.chars().any(|c| c.is_ascii_digit())
}

#[test]
fn propagation_prints_rows_with_numbers_as_json() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic-bench"))
        .args(["--json", "propagation", "--zones", "2", "--rounds", "3"])
        .output()?;
    assert!(
        out.status.success(),
        "mosaic-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["name"], "propagation");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{report:#}");
    let cells: Vec<&str> = rows[0]
        .as_array()
        .expect("cells")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(cells[0], "2");
    assert!(cells.iter().all(|c| has_number(c)), "{cells:?}");
    let data = &report["data"]["rows"][0];
    for field in [
        "answer_to_all_p99_ms",
        "request_to_all_p99_ms",
        "answer_to_each_p99_ms",
        "api_p50_ms",
    ] {
        assert!(data[field].is_number(), "{field}: {data}");
    }
    assert_eq!(
        report["verdict"], "notmeasured",
        "neither 1,000 nor 10,000 zones were run"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_reads_rss_of_the_global_and_the_zone() -> anyhow::Result<()> {
    mosaic_testkit::ensure_crypto_provider();
    let bins = Binaries::locate(None)?;
    let report = memory::run(
        &bins,
        &memory::Options {
            zones: vec![0, 2],
            dataplanes: vec![0, 2],
            settle: Duration::from_millis(100),
        },
    )
    .await?;
    assert_eq!(report.rows.len(), 4, "{}", report.to_markdown());
    for row in &report.rows {
        assert!(row[2].ends_with("MiB") && has_number(&row[2]), "{row:?}");
    }
    assert!(report.data["global_bytes_per_zone"].is_number());
    assert!(report.data["zone_bytes_per_dataplane"].is_number());
    let md = report.to_markdown();
    assert!(md.contains("| mosaic-zone | 2 dataplanes |"), "{md}");
    assert_eq!(
        report.verdict,
        mosaic_bench::Verdict::NotMeasured,
        "the aim needs steps of at least 1,000: {md}"
    );
    Ok(())
}
