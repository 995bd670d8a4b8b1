//! `CircuitBreaker`: one per mesh backend. Opens after consecutive failures so a failing CA is
//! not hammered; after a cooldown it half-opens and lets one trial request through, never more
//! than one at a time (a hung CA holds one request, not one per cooldown). When a trial
//! succeeds, [`CircuitBreaker::success`] says the backend recovered, so the issuer can wake
//! every certificate waiting for it instead of leaving each to its own backoff.
//!
//! The trial is not left to whichever waiting certificate's backoff ends next: while the circuit
//! is open, [`probe`] wakes one waiter ([`CircuitBreaker::trial_due`]) each time the circuit
//! half-opens, so a returned CA is tried within one cooldown.

use std::{
    sync::{Mutex, PoisonError, Weak},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// One request let through by [`CircuitBreaker::try_acquire`]; a trial's ends with it if no
/// outcome was recorded.
#[derive(Debug)]
pub struct Attempt<'a> {
    breaker: &'a CircuitBreaker,
    trial: Option<u64>,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.trial {
            let mut s = self.breaker.lock();
            if s.trial == Some(id) {
                s.trial = None;
            }
        }
    }
}

/// A per-backend circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    /// Woken (one waiter, or the next to wait) each time the open circuit half-opens.
    trial_due: Notify,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// The id of the half-open trial in flight (until its success, failure, or its [`Attempt`]
    /// is dropped without either: a cancelled request must not hold the circuit open).
    trial: Option<u64>,
    /// The id of the last trial let through.
    trials: u64,
    last_error: String,
    /// Whether a [`probe`] task runs for this breaker.
    probing: bool,
}

// === impl CircuitBreaker ===

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` consecutive failures for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::default(),
            trial_due: Notify::new(),
        }
    }

    /// Asks to send a request. Closed: yes. Open: no, with the error that opened it. Open past
    /// its cooldown (half-open) with no trial in flight: yes for this one caller (the trial),
    /// and the circuit stays open to others for another cooldown unless the trial succeeds.
    /// Keep the [`Attempt`] until the outcome is recorded: dropping it first (the request was
    /// cancelled) ends the trial without an outcome, so the next caller may try.
    pub fn try_acquire(&self) -> Result<Attempt<'_>, String> {
        let mut s = self.lock();
        match s.open_until {
            None => Ok(Attempt {
                breaker: self,
                trial: None,
            }),
            Some(until) if Instant::now() < until || s.trial.is_some() => Err(s.last_error.clone()),
            Some(_) => {
                s.open_until = Some(Instant::now() + self.cooldown);
                s.trials = s.trials.wrapping_add(1);
                let id = s.trials;
                s.trial = Some(id);
                Ok(Attempt {
                    breaker: self,
                    trial: Some(id),
                })
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
        s.trial = None;
        s.last_error.clear();
        was_open
    }

    /// A request failed with `error`: count it, and open when the threshold is reached.
    /// Returns whether the caller should start a [`probe`] for this breaker (the circuit is open
    /// and none runs yet).
    pub fn failure(&self, error: &str) -> bool {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        s.trial = None;
        s.last_error = error.to_string();
        if s.failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.cooldown);
            if !s.probing {
                s.probing = true;
                return true;
            }
        }
        false
    }

    /// Completes when a waiter should make the trial: the open circuit half-opened (see
    /// [`probe`]). A certificate waiting out its backoff for this backend waits on this too.
    pub async fn trial_due(&self) {
        self.trial_due.notified().await;
    }

    /// When the open circuit half-opens next; `None` when it is closed (and the probe ends).
    fn next_half_open(&self) -> Option<Instant> {
        let mut s = self.lock();
        let at = s.open_until;
        if at.is_none() {
            s.probing = false;
        }
        at
    }

    /// A request ended saying nothing about the CA (e.g. a data plane's template did not
    /// render): neither a success nor a failure, but a trial it was is over.
    pub fn neutral(&self) {
        self.lock().trial = None;
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

/// While `breaker`'s circuit is open, wakes one waiter each time it half-opens (at most once per
/// cooldown); ends when the circuit closes or the breaker is dropped. Started by the caller
/// that saw [`CircuitBreaker::failure`] return `true`.
pub async fn probe(breaker: Weak<CircuitBreaker>) {
    let mut earliest = Instant::now();
    loop {
        let (at, cooldown) = match breaker.upgrade() {
            Some(b) => match b.next_half_open() {
                Some(at) => (at, b.cooldown),
                None => return,
            },
            None => return,
        };
        tokio::time::sleep_until(at.max(earliest).into()).await;
        let Some(b) = breaker.upgrade() else { return };
        if b.lock().open_until.is_some_and(|u| u <= Instant::now()) {
            b.trial_due.notify_one();
        }
        earliest = Instant::now() + cooldown.max(Duration::from_millis(10));
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
        assert_eq!(b.try_acquire().err(), Some("boom 2".to_string()));
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
        let trial = b.try_acquire();
        assert!(trial.is_ok(), "the trial");
        assert_eq!(
            b.try_acquire().err(),
            Some("down".to_string()),
            "no second trial while the first is in flight"
        );
        b.failure("still down");
        drop(trial);
        let trial = b.try_acquire();
        assert!(trial.is_ok(), "the next trial once the first failed");
        assert!(b.success(), "the trial succeeded: recovered");
        drop(trial);
        let (one, two) = (b.try_acquire(), b.try_acquire());
        assert!(one.is_ok() && two.is_ok(), "closed");
    }

    #[test]
    fn only_the_failure_that_opens_the_circuit_starts_a_probe() {
        let b = CircuitBreaker::new(2, Duration::from_secs(3600));
        assert!(!b.failure("one"), "still closed");
        assert!(b.failure("two"), "opened: start a probe");
        assert!(!b.failure("three"), "a probe runs already");
        assert!(b.success());
        assert_eq!(b.next_half_open(), None, "closed: the probe ends");
        assert!(!b.failure("four"));
        assert!(b.failure("five"), "opened again: a new probe");
    }

    #[tokio::test]
    async fn the_probe_wakes_a_waiter_when_the_circuit_half_opens_and_ends_when_it_closes() {
        let cooldown = Duration::from_millis(50);
        let b = std::sync::Arc::new(CircuitBreaker::new(1, cooldown));
        assert!(b.failure("down"));
        let probe = tokio::spawn(probe(std::sync::Arc::downgrade(&b)));
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                b.trial_due().await;
                Instant::now()
            })
        };
        let opened = Instant::now();
        let woken = waiter.await.expect("waiter");
        assert!(
            woken >= opened + cooldown,
            "woken only once the cooldown is over"
        );
        let trial = b.try_acquire();
        assert!(trial.is_ok(), "the woken waiter gets the trial");
        assert!(b.success());
        drop(trial);
        probe.await.expect("the probe ends once the circuit closed");
    }

    #[test]
    fn a_trial_dropped_without_an_outcome_lets_the_next_caller_try() {
        let b = CircuitBreaker::new(1, Duration::ZERO);
        b.failure("down");
        let cancelled = b.try_acquire();
        assert!(cancelled.is_ok(), "the trial");
        assert!(b.try_acquire().is_err(), "in flight");
        drop(cancelled);
        let next = b.try_acquire();
        assert!(
            next.is_ok(),
            "a cancelled request does not hold the circuit open"
        );
        assert!(
            b.try_acquire().is_err(),
            "the cancelled trial recorded no success: the circuit is still half-open, one trial at a time"
        );
    }
}
