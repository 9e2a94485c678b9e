//! Float syntax as Prometheus parses sample values: Go's
//! `strconv.ParseFloat(s, 64)` with hex floats and underscores refused.

use super::NORMAL_NAN_BITS;

/// Parses `s` as Go's `strconv.ParseFloat` would for a sample value:
/// decimal floats with an optional sign and exponent, and `Inf`,
/// `Infinity` (either with a sign) and `NaN` (without one) in any case.
/// Values beyond the f64 range are an error, as in Go. A NaN comes back as
/// Prometheus's normal NaN ([`NORMAL_NAN_BITS`]).
pub fn parse_go_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (sign, rest) = match b.first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let first = *rest.as_bytes().first()?;
    if first.is_ascii_alphabetic() {
        if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
            return Some(sign * f64::INFINITY);
        }
        if rest.eq_ignore_ascii_case("nan") && rest.len() == s.len() {
            return Some(f64::from_bits(NORMAL_NAN_BITS));
        }
        return None;
    }
    // Digits, one optional '.', an optional exponent: nothing else. Rust's
    // parser accepts the same decimal grammar; checking the bytes first keeps
    // it from seeing anything Go would refuse.
    if !rest
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() {
        // Go reports ErrRange for finite text beyond the f64 range.
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_go_accepts() {
        for (s, v) in [
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("1e+3", 1000.0),
            ("0", 0.0),
            ("1e-400", 0.0),
        ] {
            assert_eq!(parse_go_float(s), Some(v), "{s}");
        }
        for s in ["Inf", "+Inf", "inf", "INFINITY", "+infinity"] {
            assert_eq!(parse_go_float(s), Some(f64::INFINITY), "{s}");
        }
        assert_eq!(parse_go_float("-Inf"), Some(f64::NEG_INFINITY));
        for s in ["NaN", "nan", "NAN"] {
            assert_eq!(parse_go_float(s).map(f64::to_bits), Some(NORMAL_NAN_BITS));
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for s in [
            "", "+", "-", ".", "e5", "1e", "0x1p3", "0x10", "1_000", "+NaN", "-nan", "infi",
            "1e400", "-1e400", "1.2.3", "1 ", " 1", "abc", "1,5", "∞",
        ] {
            assert_eq!(parse_go_float(s), None, "{s:?}");
        }
    }
}
