//! Kuma durations: `300ms`, `10s`, `5m`, `24h`, `1d`, `2w`, `1y`, and sums such as `1h30m`.
//!
//! Go's `time.ParseDuration` units (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`) plus Kuma's `d` (24h),
//! `w` (7d) and `y` (365d). Fractions are allowed (`1.5h`). Negative durations are rejected.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed Kuma duration that remembers how the user wrote it, so it is echoed back unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KumaDuration {
    value: Duration,
    text: String,
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty.
    #[error("duration is empty: write a number and a unit, such as 24h or 1d")]
    Empty,
    /// The string started with `-`.
    #[error("duration {0:?} is negative: durations must be positive")]
    Negative(String),
    /// A number was missing or malformed.
    #[error(
        "duration {0:?} is not a number followed by a unit (ms, s, m, h, d, w, y), such as 24h or 1d"
    )]
    Malformed(String),
    /// A bare number without a unit.
    #[error("duration {0:?} has no unit: write it as {0}s, {0}h or {0}d")]
    NoUnit(String),
    /// A unit was not recognised.
    #[error("duration {text:?} has unknown unit {unit:?}: use ns, us, ms, s, m, h, d, w or y")]
    UnknownUnit {
        /// The whole input.
        text: String,
        /// The unit that was not recognised.
        unit: String,
    },
    /// The value does not fit in a `Duration`.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

// === impl KumaDuration ===

impl KumaDuration {
    /// The parsed value.
    pub fn as_duration(&self) -> Duration {
        self.value
    }

    /// The text as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Builds a duration from a value, formatted in the largest exact unit (`24h` → `1d`).
    pub fn from_duration(value: Duration) -> Self {
        Self {
            value,
            text: format_duration(value),
        }
    }
}

fn unit_nanos(unit: &str) -> Option<u128> {
    const S: u128 = 1_000_000_000;
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => S,
        "m" => 60 * S,
        "h" => 3600 * S,
        "d" => 86_400 * S,
        "w" => 7 * 86_400 * S,
        "y" => 365 * 86_400 * S,
        _ => return None,
    })
}

/// Nanoseconds of `num` (digits, at most one `.`) times `factor`, exactly (a fraction's digits
/// past the 20th cannot reach a nanosecond and are dropped; the last nanosecond is rounded to
/// nearest); `None` past `u64::MAX` nanoseconds.
fn scaled(num: &str, factor: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let mut total: u128 = 0;
    for d in int.bytes() {
        total = total.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        if total > u128::from(u64::MAX) {
            return None;
        }
    }
    let mut total = total.checked_mul(factor)?;
    let frac = &frac[..frac.len().min(20)];
    if !frac.is_empty() {
        let mut digits: u128 = 0;
        for d in frac.bytes() {
            digits = digits * 10 + u128::from(d - b'0');
        }
        let scale = 10u128.pow(frac.len() as u32);
        // digits < 10^20 and factor < 2^55: the product fits in u128.
        total = total.checked_add((digits * factor + scale / 2) / scale)?;
    }
    Some(total)
}

/// Parses a Kuma duration string.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(DurationError::NoUnit(s.to_string()));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(DurationError::Malformed(text.to_string()));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::Malformed(text.to_string()));
        }
        let factor = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            text: text.to_string(),
            unit: unit.to_string(),
        })?;
        let overflow = || DurationError::Overflow(text.to_string());
        total = scaled(num, factor)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(overflow)?;
        rest = tail;
    }
    let total = u64::try_from(total).map_err(|_| DurationError::Overflow(text.to_string()))?;
    Ok(Duration::from_nanos(total))
}

/// Formats a duration in the largest unit that represents it exactly (`86400s` → `1d`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    const UNITS: [(&str, u128); 9] = [
        ("y", 365 * 86_400 * 1_000_000_000),
        ("w", 7 * 86_400 * 1_000_000_000),
        ("d", 86_400 * 1_000_000_000),
        ("h", 3_600 * 1_000_000_000),
        ("m", 60 * 1_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    for (unit, size) in UNITS {
        if nanos.is_multiple_of(size) {
            return format!("{}{unit}", nanos / size);
        }
    }
    format!("{nanos}ns")
}

impl FromStr for KumaDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self {
            value: parse_duration(s)?,
            text: s.trim().to_string(),
        })
    }
}

impl fmt::Display for KumaDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for KumaDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for KumaDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = KumaDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 24h, 1d or 720h")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KumaDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KumaDuration, E> {
                if v == 0 {
                    return Ok(KumaDuration::from_duration(Duration::ZERO));
                }
                Err(E::custom(format!(
                    "duration {v} has no unit: write it as {v}s, {v}h or {v}d"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KumaDuration, E> {
                if v < 0 {
                    return Err(E::custom(DurationError::Negative(v.to_string())));
                }
                self.visit_u64(v.unsigned_abs())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<KumaDuration, E> {
                Err(E::custom(format!(
                    "duration {v} has no unit: write it with one, such as {v}h"
                )))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kuma_units() {
        let h = 3600;
        for (s, secs) in [
            ("1d", 24 * h),
            ("24h", 24 * h),
            ("720h", 720 * h),
            ("2w", 14 * 24 * h),
            ("1y", 365 * 24 * h),
            ("10s", 10),
            ("5m", 300),
            ("1h30m", 5400),
            ("1.5h", 5400),
            ("0", 0),
        ] {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_secs(secs), "{s}");
        }
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("7us").unwrap(), Duration::from_micros(7));
    }

    /// Found by `tests/hostile_values.rs`: sums were added in `f64`, so a duration of more than
    /// 2^53 ns (104 days) lost nanoseconds and did not read back as it was formatted.
    #[test]
    fn long_durations_are_exact() {
        let d = Duration::new(9_007_199, 272_527_595);
        assert_eq!(format_duration(d), "9007199272527595ns");
        assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        assert_eq!(
            parse_duration("104d6h59m59s272527595ns").unwrap(),
            Duration::new(104 * 86_400 + 6 * 3600 + 59 * 60 + 59, 272_527_595)
        );
        assert_eq!(parse_duration("1.5ns").unwrap(), Duration::from_nanos(2));
        assert_eq!(
            parse_duration("0.000000000000000000000001y").unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            parse_duration("18446744073709551615ns").unwrap(),
            Duration::from_nanos(u64::MAX)
        );
        assert!(matches!(
            parse_duration("18446744073709551616ns"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999999999999999999999y"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn bad_durations_are_named() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("-1h"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_duration("h"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::NoUnit(_))
        ));
        assert!(matches!(
            parse_duration("1..5h"),
            Err(DurationError::Malformed(_))
        ));
        let e = parse_duration("3x").unwrap_err();
        assert!(e.to_string().contains("unknown unit \"x\""), "{e}");
        assert!(matches!(
            parse_duration("99999999999999y"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn round_trips_as_written() {
        let d: KumaDuration = serde_json::from_str("\"1d\"").unwrap();
        assert_eq!(d.as_duration(), Duration::from_secs(86_400));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1d\"");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        let e = serde_json::from_str::<KumaDuration>("24").unwrap_err();
        assert!(e.to_string().contains("has no unit"), "{e}");
    }
}
