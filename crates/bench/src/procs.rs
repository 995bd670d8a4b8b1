//! Readings of processes from `/proc`: resident memory (`VmRSS`), CPU time (`utime + stime`) and
//! the open-files limit; and a poll-until helper.

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

/// CPU seconds process `pid` has used so far, user and system (`utime + stime` of
/// `/proc/<pid>/stat`, in clock ticks of `getconf CLK_TCK`, 100 when that cannot be read).
pub fn cpu_seconds(pid: u32) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(BenchError::io(format!("reading {path}")))?;
    let ticks = parse_cpu_ticks(&text)
        .ok_or_else(|| BenchError::Setup(format!("{path} has no utime/stime fields")))?;
    Ok(ticks as f64 / clock_ticks() as f64)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, i.e. index 11 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t: &u64| *t > 0)
            .unwrap_or(100)
    })
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

/// Fails with what to do when fewer than `needed` files may be open at once. Each simulated
/// zone or data plane holds one socket here and one in the server, a separate process that
/// inherits this limit: `needed` is one per connection plus a margin, not two.
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

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
    }
}
