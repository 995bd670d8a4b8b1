//! `CircuitBreaker`: one per mesh backend. Opens after consecutive failures so a failing CA is
//! not hammered; after a cooldown it half-opens and lets one trial request through.

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
    /// its cooldown (half-open): yes for this one caller, and the circuit stays closed to others
    /// for another cooldown unless the trial succeeds.
    pub fn try_acquire(&self) -> Result<(), String> {
        let mut s = self.lock();
        match s.open_until {
            None => Ok(()),
            Some(until) if Instant::now() < until => Err(s.last_error.clone()),
            Some(_) => {
                s.open_until = Some(Instant::now() + self.cooldown);
                Ok(())
            }
        }
    }

    /// A request succeeded: close.
    pub fn success(&self) {
        let mut s = self.lock();
        s.failures = 0;
        s.open_until = None;
        s.last_error.clear();
    }

    /// A request failed with `error`: count it, and open when the threshold is reached.
    pub fn failure(&self, error: &str) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        s.last_error = error.to_string();
        if s.failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.cooldown);
        }
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
        b.success();
        assert!(b.try_acquire().is_ok());

        let b = CircuitBreaker::new(1, Duration::ZERO);
        b.failure("x");
        assert!(
            b.try_acquire().is_ok(),
            "half-open after the cooldown lets a trial through"
        );
    }
}
