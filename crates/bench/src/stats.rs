//! Small statistics: percentiles of latencies, a least-squares slope, and quantiles read off a
//! Prometheus histogram's buckets.

use std::time::Duration;

/// The `p` quantile (0..=1) of `samples` by nearest rank (sorts a copy). Zero when empty.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `12.3 ms`.
pub fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", ms(d))
}

/// Least-squares slope of `y` over `x` (`None` with fewer than two distinct `x`).
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

/// A Prometheus histogram read from `/metrics` text: cumulative buckets, sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// `(le, cumulative count)`, ascending, `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
    /// `_sum`.
    pub sum: f64,
    /// `_count`.
    pub count: f64,
}

impl Histogram {
    /// Parses histogram `name` (unlabelled) out of Prometheus text.
    pub fn parse(text: &str, name: &str) -> Self {
        let mut h = Histogram::default();
        let bucket = format!("{name}_bucket{{le=\"");
        for line in text.lines() {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            if let Some(le) = key.strip_prefix(&bucket) {
                let le = le.trim_end_matches("\"}");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    match le.parse() {
                        Ok(v) => v,
                        Err(_) => continue,
                    }
                };
                h.buckets.push((le, value));
            } else if key == format!("{name}_sum") {
                h.sum = value;
            } else if key == format!("{name}_count") {
                h.count = value;
            }
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        h
    }

    /// The mean, in seconds (`None` when empty).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The upper bound (`le`) of the bucket holding the `p` quantile, in seconds: "p99 ≤ x".
    pub fn quantile_bound(&self, p: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let target = p * self.count;
        self.buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= target)
            .map(|(le, _)| *le)
    }

    /// The difference `self - before` (counts since a previous reading).
    pub fn since(&self, before: &Histogram) -> Histogram {
        let prior = |le: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| (*le, c - prior(*le)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }
}

/// `≤ 5 ms`-style text for a bucket bound in seconds.
pub fn fmt_bound(bound: Option<f64>) -> String {
    match bound {
        Some(b) if b.is_infinite() => "> 60 s".into(),
        Some(b) => format!("≤ {} ms", b * 1000.0),
        None => "n/a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn slope_of_a_line() {
        let s = slope(&[(0.0, 10.0), (50.0, 60.0), (100.0, 110.0)]).unwrap();
        assert!((s - 1.0).abs() < 1e-9);
        assert!(slope(&[(1.0, 1.0)]).is_none());
    }

    #[test]
    fn histogram_from_prometheus_text() {
        let text = "# TYPE mosaic_kds_push_seconds histogram\n\
            mosaic_kds_push_seconds_bucket{le=\"0.001\"} 1\n\
            mosaic_kds_push_seconds_bucket{le=\"0.005\"} 90\n\
            mosaic_kds_push_seconds_bucket{le=\"0.01\"} 100\n\
            mosaic_kds_push_seconds_bucket{le=\"+Inf\"} 100\n\
            mosaic_kds_push_seconds_sum 0.3\n\
            mosaic_kds_push_seconds_count 100\n";
        let h = Histogram::parse(text, "mosaic_kds_push_seconds");
        assert_eq!(h.count, 100.0);
        assert_eq!(h.quantile_bound(0.5), Some(0.005));
        assert_eq!(h.quantile_bound(0.99), Some(0.01));
        assert!((h.mean().unwrap() - 0.003).abs() < 1e-12);
        let d = h.since(&h);
        assert_eq!(d.count, 0.0);
        assert_eq!(fmt_bound(Some(0.005)), "≤ 5 ms");
    }
}
