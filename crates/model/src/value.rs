//! Sample values and the stale marker.

/// The bit pattern of the stale marker, as in Prometheus: a NaN that no
/// arithmetic produces. It marks a series as gone at its timestamp.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker as an `f64`.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True only for the stale marker, not for other NaNs.
#[inline]
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The value of a sample. An enum from the start, so that native histograms
/// can join floats later without a second append path.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A float sample (the stale marker included).
    Float(f64),
}

impl Value {
    /// The float value, if this is a float sample.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
        }
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// A float sample: a timestamp in milliseconds and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    pub fn new(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    /// Bitwise equality: NaNs with the same payload are equal, the stale
    /// marker differs from other NaNs, and `0.0` differs from `-0.0`.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_distinguished_from_other_nans() {
        assert!(is_stale(stale_nan()));
        assert!(stale_nan().is_nan());
        assert!(!is_stale(f64::NAN));
        assert!(!is_stale(f64::INFINITY - f64::INFINITY));
        assert!(!is_stale(f64::from_bits(0x7ff0_0000_0000_0001)));
        assert!(!is_stale(f64::from_bits(0xfff0_0000_0000_0002)));
        assert!(!is_stale(f64::INFINITY));
    }

    #[test]
    fn bit_eq_is_by_bits() {
        assert!(Sample::new(1, f64::NAN).bit_eq(&Sample::new(1, f64::NAN)));
        assert!(!Sample::new(1, 0.0).bit_eq(&Sample::new(1, -0.0)));
        assert!(!Sample::new(1, stale_nan()).bit_eq(&Sample::new(1, f64::NAN)));
    }
}
