//! Jittered delays: exponential backoff after failures and the rotation instant of a certificate.

use std::time::Duration;

use rand::Rng as _;
use time::OffsetDateTime;

/// Fraction of a certificate's lifetime after which it is rotated (Kuma's 80%).
pub const ROTATE_AT: f64 = 0.8;

/// The delay before retry number `failures` (1-based): `min * 2^(failures-1)` capped at `max`,
/// then jittered down to between half and all of it.
pub fn backoff_delay(failures: u32, min: Duration, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = min.saturating_mul(1u32 << exp).min(max);
    let factor: f64 = rand::rng().random_range(0.5..=1.0);
    full.mul_f64(factor)
}

/// When a certificate valid from `not_before` to `not_after` should be replaced: at 80% of its
/// lifetime minus a random share (up to `jitter` of the lifetime).
pub fn rotation_instant(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    jitter: f64,
) -> OffsetDateTime {
    let lifetime = (not_after - not_before).max(time::Duration::ZERO);
    let jitter = jitter.clamp(0.0, ROTATE_AT);
    let share = if jitter > 0.0 {
        ROTATE_AT - rand::rng().random_range(0.0..=jitter)
    } else {
        ROTATE_AT
    };
    not_before + lifetime * share
}

/// Whether a certificate is still worth serving without renewal: more than 20% of its lifetime
/// left at `now`.
pub fn is_fresh(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> bool {
    let lifetime = not_after - not_before;
    lifetime > time::Duration::ZERO && not_after - now > lifetime * (1.0 - ROTATE_AT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..50 {
            let d1 = backoff_delay(1, min, max);
            assert!(d1 >= Duration::from_millis(500) && d1 <= min);
            let d3 = backoff_delay(3, min, max);
            assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4));
            let d20 = backoff_delay(20, min, max);
            assert!(d20 >= Duration::from_secs(30) && d20 <= max);
        }
    }

    #[test]
    fn rotation_is_at_most_80_percent() {
        let nb = OffsetDateTime::UNIX_EPOCH;
        let na = nb + time::Duration::seconds(100);
        for _ in 0..50 {
            let r = rotation_instant(nb, na, 0.05);
            assert!(r <= nb + time::Duration::seconds(80));
            assert!(r >= nb + time::Duration::seconds(75));
        }
        assert!(is_fresh(nb, na, nb + time::Duration::seconds(79)));
        assert!(!is_fresh(nb, na, nb + time::Duration::seconds(81)));
        assert!(!is_fresh(nb, nb, nb));
    }
}
