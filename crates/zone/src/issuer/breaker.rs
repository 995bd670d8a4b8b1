//! `CircuitBreaker`: one per mesh backend. Opens after consecutive failures so a failing CA is
//! not hammered; after a cooldown it half-opens and lets one trial request through, never more
//! than one at a time (a hung CA holds one request, not one per cooldown). When a trial
//! succeeds, [`CircuitBreaker::success`] says the backend recovered, so the issuer can wake
//! every certificate waiting for it instead of leaving each to its own backoff.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// A per-backend circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// A half-open trial is in flight (until its success or failure).
    trial: bool,
    last_error: String,
}

// === impl CircuitBreaker ===

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` consecutive failures for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::default(),
        }
    }

    /// Asks to send a request. Closed: yes. Open: no, with the error that opened it. Open past
    /// its cooldown (half-open) with no trial in flight: yes for this one caller (the trial),
    /// and the circuit stays open to others for another cooldown unless the trial succeeds.
    pub fn try_acquire(&self) -> Result<(), String> {
        let mut s = self.lock();
        match s.open_until {
            None => Ok(()),
            Some(until) if Instant::now() < until || s.trial => Err(s.last_error.clone()),
            Some(_) => {
                s.open_until = Some(Instant::now() + self.cooldown);
                s.trial = true;
                Ok(())
            }
        }
    }

    /// A request succeeded: close. Returns whether the circuit was open (the backend
    /// recovered).
    pub fn success(&self) -> bool {
        let mut s = self.lock();
        let was_open = s.open_until.is_some();
        s.failures = 0;
        s.open_until = None;
        s.trial = false;
        s.last_error.clear();
        was_open
    }

    /// A request failed with `error`: count it, and open when the threshold is reached.
    pub fn failure(&self, error: &str) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        s.trial = false;
        s.last_error = error.to_string();
        if s.failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.cooldown);
        }
    }

    /// A request ended saying nothing about the CA (e.g. a data plane's template did not
    /// render): neither a success nor a failure, but a trial it was is over.
    pub fn neutral(&self) {
        self.lock().trial = false;
    }

    /// Whether the circuit is open (refusing requests) right now.
    pub fn is_open(&self) -> bool {
        self.lock()
            .open_until
            .is_some_and(|until| Instant::now() < until)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cooldown() {
        let b = CircuitBreaker::new(2, Duration::from_secs(3600));
        assert!(b.try_acquire().is_ok());
        b.failure("boom");
        assert!(b.try_acquire().is_ok(), "one failure keeps it closed");
        b.failure("boom 2");
        assert_eq!(b.try_acquire(), Err("boom 2".to_string()));
        assert!(b.is_open());
        assert!(b.success(), "closing an open circuit is a recovery");
        assert!(b.try_acquire().is_ok());
        assert!(!b.success(), "a closed circuit did not recover");

        let b = CircuitBreaker::new(1, Duration::ZERO);
        b.failure("x");
        assert!(
            b.try_acquire().is_ok(),
            "half-open after the cooldown lets a trial through"
        );
    }

    #[test]
    fn one_trial_at_a_time_however_short_the_cooldown() {
        let b = CircuitBreaker::new(1, Duration::ZERO);
        b.failure("down");
        assert!(b.try_acquire().is_ok(), "the trial");
        assert_eq!(
            b.try_acquire(),
            Err("down".to_string()),
            "no second trial while the first is in flight"
        );
        b.failure("still down");
        assert!(
            b.try_acquire().is_ok(),
            "the next trial once the first failed"
        );
        assert!(b.success(), "the trial succeeded: recovered");
        assert!(b.try_acquire().is_ok() && b.try_acquire().is_ok(), "closed");
    }
}
