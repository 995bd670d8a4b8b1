//! Phase 3 (aim 3): every certificate of backend B rotates (its lifetime is the run's short
//! one); when each data plane received its replacement, as a histogram of one-second buckets
//! over the window the zone's rotation schedule allows.
//!
//! The zone rotates a certificate at 80% of its lifetime less a random share of up to
//! `rotation_jitter` (5%) of it, counted from when the zone received it from Vault. Certificates
//! Vault answered over `[first, last]` (the proxy's timestamps of the switch's issuances)
//! therefore rotate within `[first + (0.8 − jitter)·L, last + 0.8·L]`: that window's length is
//! what each second's share (N / window seconds) is taken over.

use std::time::{Duration, Instant};

use mosaic_zone::issuer::{IssuerSettings, backoff::ROTATE_AT};
use serde_json::json;

use super::{
    Options,
    fleet::Fleet,
    proxy::is_issuance,
    reissue::Reissued,
    table::{self, row, secs},
};
use crate::{
    error::BenchError,
    report::{Report, Verdict},
};

/// The aim: no one-second bucket holds more than this many times its share.
pub const AIM_FACTOR: f64 = 3.0;
/// Most histogram rows; longer windows group seconds into one row (showing the busiest second).
const MAX_ROWS: usize = 30;

/// Waits for every data plane's rotation and reports its spread.
pub async fn run(
    world: &super::setup::World,
    opts: &Options,
    fleet: &Fleet,
    reissued: &Reissued,
) -> Result<Report, BenchError> {
    let n = fleet.members.len();
    let mark = world.proxy.mark();
    world.proxy.reset_peak();
    // What each data plane holds now and since when the zone counts its lifetime: a certificate
    // served from the cache after the restart was received at the switch.
    let held: Vec<(String, Instant)> = fleet
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let seen = m.lock();
            let first = seen.received.first();
            let serial = first.map(|r| r.serial.clone()).unwrap_or_default();
            let since = match (reissued.b_serials.get(i), reissued.b_arrivals.get(i)) {
                (Some(s), Some(at)) if *s == serial => *at,
                _ => first.map_or_else(Instant::now, |r| r.at),
            };
            (serial, since)
        })
        .collect();
    let jitter = IssuerSettings::default().rotation_jitter;
    let lifetime = opts.lifetime;
    // Served from the cache after the restart: issued at the switch, as the proxy saw it.
    // Otherwise (the restarted zone issued again) from when the data plane received it.
    let cached = held
        .iter()
        .enumerate()
        .all(|(i, h)| reissued.b_serials.get(i) == Some(&h.0));
    let (first, last) = if cached {
        reissued.issued
    } else {
        (
            held.iter().map(|h| h.1).min().unwrap_or_else(Instant::now),
            held.iter().map(|h| h.1).max().unwrap_or_else(Instant::now),
        )
    };
    let window_start = first + lifetime.mul_f64(ROTATE_AT - jitter);
    let window_end = last + lifetime.mul_f64(ROTATE_AT);
    let window = window_end.saturating_duration_since(window_start);

    let expected = window_end.saturating_duration_since(Instant::now())
        + Duration::from_secs_f64(n as f64 / reissued.throughput.max(1.0));
    let serials: Vec<String> = held.iter().map(|h| h.0.clone()).collect();
    fleet
        .wait_all(
            "its certificate rotated",
            opts.deadline(expected),
            Duration::from_millis(50),
            |s| s.received.len() >= 2,
        )
        .await?;
    let rotations: Vec<Instant> = fleet
        .members
        .iter()
        .zip(&serials)
        .filter_map(|(m, serial)| {
            m.lock()
                .received
                .iter()
                .find(|r| r.serial != *serial)
                .map(|r| r.at)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = world.proxy.calls_since(mark);
    let issued = calls.iter().filter(|c| is_issuance(c)).count();
    let peak = world.proxy.peak();

    let hist = Histogram::of(&rotations, window_start, window);
    let share = n as f64 / window.as_secs_f64().max(1.0);
    let worst = hist.busiest() as f64 / share;
    let spread = worst <= AIM_FACTOR && rotations.len() == n;
    let mut rows = vec![
        row(
            "certificates rotated (a new one delivered over SDS)",
            format!("{} / {n}", rotations.len()),
        ),
        row(
            "their lifetime (backend B's `dpCert.rotation.expiration`)",
            format!("{} s", lifetime.as_secs()),
        ),
        row(
            "rotation window the schedule allows",
            format!(
                "{} (issued over {}, rotated at {:.0}% of life less up to {:.0}%)",
                secs(window),
                secs(last - first),
                ROTATE_AT * 100.0,
                jitter * 100.0
            ),
        ),
        row("share of one second (N / window)", format!("{share:.1}")),
        row(
            "busiest second / share",
            format!("**{}** rotations, **×{worst:.2}**", hist.busiest()),
        ),
        row(
            "rotated before / after the window",
            format!("{} / {}", hist.before, hist.after),
        ),
        row(
            "Vault issuance calls meanwhile; peak in flight",
            format!("{issued}; {peak} / {}", opts.max_in_flight),
        ),
    ];
    rows.extend(hist.rows(MAX_ROWS));
    let notes = vec![
        "Each rotation is the moment a data plane received, over its SDS stream, a certificate with a new serial after the one it held. The zone restarted between the switch and the rotation (aim 4's phase), so these rotations were scheduled by the restarted zone from its cached certificates.".into(),
        format!(
            "Histogram rows: seconds from the window's start; one row per second, or per group of seconds with the busiest second shown when the window is longer than {MAX_ROWS} s."
        ),
    ];
    Ok(Report {
        name: "zone-scale: rotation".into(),
        title: format!("when {n} certificates rotate"),
        aim: format!(
            "aim 3 at N = {n}: rotation times spread over the rotation window, no second holding more than {AIM_FACTOR}× its share"
        ),
        verdict: Verdict::from_check(Some(spread)),
        verdict_reason: format!(
            "{} of {n} rotated; busiest second {} against a share of {share:.1} (×{worst:.2})",
            rotations.len(),
            hist.busiest()
        ),
        columns: table::columns(),
        rows,
        notes,
        data: json!({
            "dataplanes": n,
            "rotated": rotations.len(),
            "lifetime_seconds": lifetime.as_secs(),
            "window_seconds": window.as_secs_f64(),
            "issued_over_seconds": (last - first).as_secs_f64(),
            "share_per_second": share,
            "busiest_second": hist.busiest(),
            "busiest_over_share": worst,
            "buckets": hist.buckets,
            "before_window": hist.before,
            "after_window": hist.after,
            "vault_issuance_calls": issued,
            "peak_in_flight": peak,
        }),
    })
}

/// Rotations per one-second bucket of a window.
#[derive(Debug, PartialEq)]
pub struct Histogram {
    /// Bucket `i` counts rotations in `[start + i s, start + i+1 s)`.
    pub buckets: Vec<usize>,
    /// Rotations before the window.
    pub before: usize,
    /// Rotations after it.
    pub after: usize,
}

impl Histogram {
    /// Buckets `at` over `[start, start + window]` (at least one bucket).
    pub fn of(at: &[Instant], start: Instant, window: Duration) -> Self {
        let len = (window.as_secs_f64().ceil() as usize).max(1);
        let mut h = Histogram {
            buckets: vec![0; len],
            before: 0,
            after: 0,
        };
        for t in at {
            if *t < start {
                h.before += 1;
                continue;
            }
            let i = (*t - start).as_secs() as usize;
            match h.buckets.get_mut(i) {
                Some(b) => *b += 1,
                None => h.after += 1,
            }
        }
        h
    }

    /// The busiest second's count, those outside the window included (as one bucket each side).
    pub fn busiest(&self) -> usize {
        self.buckets
            .iter()
            .copied()
            .chain([self.before, self.after])
            .max()
            .unwrap_or(0)
    }

    /// Table rows: `t+a..b s` → count (and the busiest second when grouped).
    pub fn rows(&self, max_rows: usize) -> Vec<Vec<String>> {
        let group = self.buckets.len().div_ceil(max_rows.max(1)).max(1);
        self.buckets
            .chunks(group)
            .enumerate()
            .map(|(i, chunk)| {
                let from = i * group;
                let total: usize = chunk.iter().sum();
                let label = if group == 1 {
                    format!("t+{from} s")
                } else {
                    format!("t+{from}…{} s", from + chunk.len())
                };
                let value = if group == 1 {
                    format!("{total} {}", bar(total))
                } else {
                    format!(
                        "{total} (busiest second {}) {}",
                        chunk.iter().max().unwrap_or(&0),
                        bar(total / group)
                    )
                };
                vec![label, value]
            })
            .collect()
    }
}

fn bar(n: usize) -> String {
    "▇".repeat(n.div_ceil(10).min(40))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_second_and_counts_outside() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let at = [
            t0 - Duration::from_millis(1),
            t0,
            t0 + Duration::from_millis(999),
            t0 + Duration::from_millis(1500),
            t0 + Duration::from_secs(10),
        ];
        let h = Histogram::of(&at, t0, Duration::from_millis(2500));
        assert_eq!(h.buckets, vec![2, 1, 0]);
        assert_eq!((h.before, h.after), (1, 1));
        assert_eq!(h.busiest(), 2);
        assert_eq!(h.rows(30).len(), 3);
        let long = Histogram {
            buckets: vec![1; 95],
            before: 0,
            after: 0,
        };
        assert_eq!(long.rows(30).len(), 24, "groups of 4 seconds");
    }
}
