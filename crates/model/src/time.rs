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

#[cfg(test)]
mod tests {
    use super::*;

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
