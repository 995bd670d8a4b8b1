//! Jittered exponential backoff between connection attempts: 1 s, then about 2 s, 4 s, ... up to
//! 30 s; every delay is drawn between half and all of its exponential step, never below the first.

use std::time::Duration;

use rand::Rng as _;

/// First retry delay.
pub const DEFAULT_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const DEFAULT_MAX: Duration = Duration::from_secs(30);

/// Counts consecutive failures and turns them into delays.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

// === impl Backoff ===

impl Backoff {
    /// A backoff from `min` up to `max` (`max` is raised to `min` if smaller).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// Records one more failure and returns how long to wait before the next attempt:
    /// `min * 2^(failures-1)` capped at `max`, jittered down to between half and all of it, and
    /// never below `min`.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = (self.failures - 1).min(30);
        let full = self.min.saturating_mul(1u32 << exp).min(self.max);
        let factor: f64 = rand::rng().random_range(0.5..=1.0);
        full.mul_f64(factor).max(self.min)
    }

    /// Forgets the failures (after a session that worked).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(DEFAULT_MIN, DEFAULT_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_jittered_and_caps() {
        for _ in 0..50 {
            let mut b = Backoff::default();
            assert_eq!(b.next_delay(), DEFAULT_MIN);
            let d2 = b.next_delay();
            assert!(d2 >= DEFAULT_MIN && d2 <= Duration::from_secs(2), "{d2:?}");
            let d3 = b.next_delay();
            assert!(
                d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4),
                "{d3:?}"
            );
            let d4 = b.next_delay();
            assert!(
                d4 >= Duration::from_secs(4) && d4 <= Duration::from_secs(8),
                "{d4:?}"
            );
            let d5 = b.next_delay();
            assert!(
                d5 >= Duration::from_secs(8) && d5 <= Duration::from_secs(16),
                "{d5:?}"
            );
            for _ in 0..38 {
                let d = b.next_delay();
                assert!(d >= Duration::from_secs(15) && d <= DEFAULT_MAX, "{d:?}");
            }
            assert_eq!(b.failures(), 43);
            b.reset();
            assert_eq!(b.next_delay(), DEFAULT_MIN);
        }
    }
}
