//! Readings of processes from `/proc`: resident memory (`VmRSS`) and the open-files limit; and
//! a poll-until helper.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use crate::error::BenchError;

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(BenchError::io(format!("reading {path}")))?;
    parse_vm_rss(&text)
        .ok_or_else(|| BenchError::Setup(format!("{path} has no VmRSS line (is {pid} a zombie?)")))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The soft limit on open files of this process (`Max open files` in `/proc/self/limits`).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// Fails with what to do when fewer than `needed` files may be open at once (each simulated
/// zone or data plane holds a socket, in this process and in the server's).
pub fn ensure_open_files(needed: u64) -> Result<(), BenchError> {
    match open_files_limit() {
        Some(limit) if limit < needed => Err(BenchError::Setup(format!(
            "this run needs about {needed} open files but the limit is {limit}: raise it first, e.g. `ulimit -n 65536` (scripts/bench.sh does)"
        ))),
        _ => Ok(()),
    }
}

/// Polls `check` every `every` until it returns `Some`, or fails after `deadline`.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: F,
) -> Result<T, BenchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            return Err(BenchError::Timeout {
                what: what.to_string(),
                after: deadline,
            });
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_and_limits() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t  2048 kB\nThreads: 1\n"),
            Some(2048 * 1024)
        );
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        assert!(open_files_limit().unwrap() > 0);
    }
}
