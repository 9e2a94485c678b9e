//! Time: timestamps are `i64` milliseconds since the Unix epoch, as in
//! Prometheus. These helpers convert without loss where that is possible and
//! say so where it is not.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// The earliest timestamp a query may ask for (Prometheus's `MinTime`
/// rounded so that second arithmetic cannot overflow).
pub const MIN_TIME: Timestamp = i64::MIN / 1000 + 62_135_596_801;
/// The latest timestamp a query may ask for.
pub const MAX_TIME: Timestamp = i64::MAX / 1000 - 62_135_596_801;

/// The current time in milliseconds.
pub fn now_ms() -> Timestamp {
    from_system_time(SystemTime::now())
}

/// Converts a [`SystemTime`] to milliseconds, saturating far outside the
/// representable range.
pub fn from_system_time(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Converts milliseconds to a [`SystemTime`].
pub fn to_system_time(t: Timestamp) -> SystemTime {
    if t >= 0 {
        UNIX_EPOCH + Duration::from_millis(t as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(t.unsigned_abs())
    }
}

/// Converts float seconds (as the HTTP API and PromQL's `time()` use them)
/// to milliseconds, rounding to the nearest millisecond. `None` for NaN or
/// out-of-range values.
pub fn from_seconds_f64(s: f64) -> Option<Timestamp> {
    let ms = (s * 1000.0).round();
    if ms.is_finite() && ms >= i64::MIN as f64 && ms <= i64::MAX as f64 {
        Some(ms as i64)
    } else {
        None
    }
}

/// Converts milliseconds to float seconds exactly as Prometheus does for
/// `time()` and `timestamp()`: integer seconds plus the millisecond remainder,
/// so that whole seconds stay exact.
pub fn to_seconds_f64(t: Timestamp) -> f64 {
    (t / 1000) as f64 + (t % 1000) as f64 / 1000.0
}

/// Converts a [`Duration`] to milliseconds, saturating.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Why a Prometheus duration string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The string was empty.
    #[error("empty duration string")]
    Empty,
    /// The string is not of the form `1y2w3d4h5m6s7ms`.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// The duration does not fit in 64 bits of milliseconds.
    #[error("duration out of range: {0:?}")]
    OutOfRange(String),
}

/// The units of a Prometheus duration, largest first, in milliseconds.
const DURATION_UNITS: [(&str, i64); 7] = [
    ("y", 31_536_000_000),
    ("w", 604_800_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration as Prometheus's configuration does (`model.ParseDuration`):
/// whole numbers with units `y w d h m s ms`, each at most once and largest
/// first, such as `1h30m` or `15s`; `0` alone is zero. Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(0);
    }
    let invalid = || DurationError::Invalid(s.to_string());
    let mut rest = s;
    let mut total: i64 = 0;
    // Index into DURATION_UNITS of the next unit allowed.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::OutOfRange(s.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let pos = DURATION_UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(invalid)?;
        let mult = DURATION_UNITS[next_unit + pos].1;
        next_unit += pos + 1;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::OutOfRange(s.to_string()))?;
    }
    Ok(total)
}

/// Formats milliseconds as Prometheus prints durations: `0s`, `15s`,
/// `1h30m`, `2w`, `1y`. Negative durations get a leading `-`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, mult) in DURATION_UNITS {
        let mult = mult as u64;
        // Years and weeks only when they divide exactly: `90d` reads better
        // than `12w6d` (Prometheus's `model.Duration.String`).
        if (unit == "y" || unit == "w") && !rest.is_multiple_of(mult) {
            continue;
        }
        if rest >= mult {
            out.push_str(&(rest / mult).to_string());
            out.push_str(unit);
            rest %= mult;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format_as_prometheus() {
        for (s, ms) in [
            ("0", 0),
            ("0s", 0),
            ("15s", 15_000),
            ("1h30m", 5_400_000),
            ("2w", 1_209_600_000),
            ("1y", 31_536_000_000),
            ("1s500ms", 1_500),
            ("90m", 5_400_000),
        ] {
            assert_eq!(parse_duration(s), Ok(ms), "{s}");
        }
        for (ms, s) in [
            (0, "0s"),
            (15_000, "15s"),
            (5_400_000, "1h30m"),
            (1_209_600_000, "2w"),
            (1_500, "1s500ms"),
            (-60_000, "-1m"),
        ] {
            assert_eq!(format_duration(ms), s);
        }
        for bad in [
            "",
            "1",
            "s",
            "1m1h",
            "1x",
            "1.5s",
            "-1s",
            "1s1s",
            "99999999999999999999y",
            "1 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must not parse");
        }
        assert_eq!(
            parse_duration("9999999999y"),
            Err(DurationError::OutOfRange("9999999999y".into()))
        );
    }

    #[test]
    fn system_time_round_trip() {
        for t in [0i64, 1, -1, 1_700_000_000_123, -86_400_000] {
            assert_eq!(from_system_time(to_system_time(t)), t);
        }
    }

    #[test]
    fn seconds_conversions() {
        assert_eq!(from_seconds_f64(1.5), Some(1500));
        assert_eq!(from_seconds_f64(-0.001), Some(-1));
        assert_eq!(from_seconds_f64(f64::NAN), None);
        assert_eq!(from_seconds_f64(1e300), None);
        assert_eq!(to_seconds_f64(1_700_000_000_123), 1_700_000_000.123);
        assert_eq!(to_seconds_f64(-1500), -1.5);
    }
}
