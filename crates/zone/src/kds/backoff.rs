//! Jittered exponential backoff between reconnect attempts (1 s doubling to 30 s by default).

use std::time::Duration;

use rand::Rng as _;

/// Backoff state: the delay doubles per failed attempt from `min` to `max`; each delay is
/// jittered to 80-120% (clamped to `[min, max]`) so zones restarted together do not reconnect
/// in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

// === impl Backoff ===

impl Backoff {
    /// A backoff from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(2u32.saturating_pow(self.attempt.min(16)))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let factor = rand::rng().random_range(0.8..1.2);
        base.mul_f64(factor).clamp(self.min, self.max)
    }

    /// Starts over (after a session that was established).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_bounds_and_resets() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let mut b = Backoff::new(min, max);
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for d in &delays {
            assert!(*d >= min && *d <= max, "{d:?}");
        }
        assert!(delays[0] <= Duration::from_millis(1200));
        assert!(delays[3] >= Duration::from_millis(6400), "{delays:?}");
        assert!(delays[9] >= Duration::from_secs(24), "{delays:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }
}
