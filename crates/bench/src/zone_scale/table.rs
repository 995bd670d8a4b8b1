//! Cells and readings the zone-scale reports share.

use std::{collections::BTreeMap, time::Duration};

use crate::{
    error::BenchError,
    procs::{cpu_seconds, rss_bytes},
};

/// A process reading: resident memory and CPU seconds used so far.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Usage {
    /// `VmRSS`, bytes.
    pub rss_bytes: u64,
    /// `utime + stime`, seconds.
    pub cpu_seconds: f64,
}

impl Usage {
    /// Reads process `pid`.
    pub fn of(pid: u32) -> Result<Self, BenchError> {
        Ok(Self {
            rss_bytes: rss_bytes(pid)?,
            cpu_seconds: cpu_seconds(pid)?,
        })
    }
}

/// `12.3 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `1.234 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// A row of two cells.
pub fn row(what: &str, value: impl Into<String>) -> Vec<String> {
    vec![what.to_string(), value.into()]
}

/// `POST /v1/pki-b/issue/dp-b: 1000, GET ...: 1` (or `none`).
pub fn counts(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, v)| format!("`{k}`: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of a two-column report.
pub fn columns() -> Vec<String> {
    vec!["measure".into(), "value".into()]
}
