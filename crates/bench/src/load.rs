//! The closed-loop load driver of the issuance benchmarks: `n` requests from `concurrency`
//! workers, each sending its next request when the last one was answered, tallied into a
//! `CaseResult` (count, errors, throughput, latency percentiles).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::stats::{self, percentile};

/// One case's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    /// The case.
    pub case: String,
    /// Certificates issued.
    pub issued: usize,
    /// Failures.
    pub errors: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Certificates per second.
    pub per_second: f64,
    /// Latency p50, ms.
    pub p50_ms: f64,
    /// Latency p99, ms.
    pub p99_ms: f64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// What a run of requests gave (sums over runs with [`Tally::add`]).
#[derive(Default)]
pub struct Tally {
    /// Successes.
    pub issued: usize,
    /// Failures.
    pub errors: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Each success's latency.
    pub latencies: Vec<Duration>,
    /// The first failure's message.
    pub first_error: Option<String>,
}

// === impl Tally ===

impl Tally {
    /// Adds `other`'s counts, time and latencies to this one's.
    pub fn add(&mut self, other: Tally) {
        self.issued += other.issued;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The result, named `case`.
    pub fn result(self, case: &str) -> CaseResult {
        let secs = self.elapsed.as_secs_f64();
        CaseResult {
            case: case.to_string(),
            issued: self.issued,
            errors: self.errors,
            seconds: secs,
            per_second: if secs > 0.0 {
                self.issued as f64 / secs
            } else {
                0.0
            },
            p50_ms: stats::ms(percentile(&self.latencies, 0.5)),
            p99_ms: stats::ms(percentile(&self.latencies, 0.99)),
            first_error: self.first_error,
        }
    }
}

/// `a`'s throughput over `b`'s (0 when `b` has none).
pub fn ratio(a: &CaseResult, b: &CaseResult) -> f64 {
    if b.per_second > 0.0 {
        a.per_second / b.per_second
    } else {
        0.0
    }
}

/// Runs `f(i)` for `i` in `start..start + n` from `concurrency` workers.
pub async fn load<F, Fut>(start: usize, n: usize, concurrency: usize, f: F) -> Tally
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let began = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        let f = f.clone();
        workers.spawn(async move {
            let mut t = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let at = Instant::now();
                match f(start + i).await {
                    Ok(()) => {
                        t.issued += 1;
                        t.latencies.push(at.elapsed());
                    }
                    Err(e) => {
                        t.errors += 1;
                        t.first_error.get_or_insert(e);
                    }
                }
            }
            t
        });
    }
    let mut total = Tally::default();
    while let Some(Ok(t)) = workers.join_next().await {
        total.add(t);
    }
    total.elapsed = began.elapsed();
    total
}
