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
    if let Some(v) = fast_decimal(rest.as_bytes()) {
        return Some(sign * v);
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

/// Powers of ten that f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The common sample values (`0`, `42`, `123456.78`, `9.87654321e+11`)
/// without the general parser: a decimal of at most 19 digits whose digits
/// fit f64's 53-bit mantissa exactly and whose power of ten is within
/// ±22, so that one multiplication or division by an exact power of ten
/// rounds correctly (Clinger's fast path) and gives the same bits as the
/// general parser. Anything else (more digits, a larger exponent, a
/// malformed number) answers `None` and takes the general path, which
/// also decides what is an error.
#[inline]
fn fast_decimal(b: &[u8]) -> Option<f64> {
    let mut i = 0;
    let mut mant: u64 = 0;
    let mut digits = 0u32;
    while i < b.len() && b[i].is_ascii_digit() {
        mant = mant.wrapping_mul(10).wrapping_add(u64::from(b[i] - b'0'));
        digits += 1;
        i += 1;
    }
    let int_digits = digits;
    let mut frac = 0i32;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            mant = mant.wrapping_mul(10).wrapping_add(u64::from(b[i] - b'0'));
            digits += 1;
            frac += 1;
            i += 1;
        }
    }
    if digits == 0 || digits > 19 || (int_digits == 0 && frac == 0) {
        return None;
    }
    let mut exp = 0i32;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let neg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 4 {
            exp = exp * 10 + i32::from(b[i] - b'0');
            i += 1;
        }
        if i == start {
            return None;
        }
        if neg {
            exp = -exp;
        }
    }
    if i != b.len() || mant > (1u64 << 53) {
        return None;
    }
    let e = exp - frac;
    let m = mant as f64;
    if e == 0 {
        Some(m)
    } else if (1..=22).contains(&e) {
        Some(m * POW10[e as usize])
    } else if (-22..=-1).contains(&e) {
        Some(m / POW10[(-e) as usize])
    } else if mant == 0 {
        Some(0.0)
    } else {
        None
    }
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
    fn the_fast_path_gives_the_general_parsers_bits() {
        // Values the fast path takes, and neighbours it must leave alone.
        let mut cases: Vec<String> = [
            "0",
            "00",
            "0.0",
            "1",
            "42",
            "123456.78",
            "9.87654321e+11",
            "9.87654321e11",
            "1.7976931348623157e308",
            "2.2250738585072014e-308",
            "4.9e-324",
            "0.1",
            "0.3",
            "123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "9007199254740993",
            "9007199254740992",
            "1e22",
            "1e23",
            "1e-22",
            "1e-23",
            "3.14159265358979",
            "0.000001",
            "5e-0",
            "1.5E+3",
            "7.",
            ".7",
            "1e0001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // And a spread of random decimals.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 1_000_000_000_000_000) as f64;
            let e = (x >> 50) as i32 % 40 - 20;
            cases.push(format!("{digits}e{e}"));
            cases.push(format!("{}", digits / 1000.0));
        }
        for s in &cases {
            let want: Option<f64> = s.parse::<f64>().ok().filter(|v| v.is_finite());
            assert_eq!(
                parse_go_float(s).map(f64::to_bits),
                want.map(f64::to_bits),
                "{s}"
            );
            if let Some(v) = fast_decimal(s.as_bytes()) {
                assert_eq!(v.to_bits(), s.parse::<f64>().unwrap().to_bits(), "{s}");
            }
        }
        assert!(fast_decimal(b"123456.78").is_some());
        assert!(fast_decimal(b"9.87654321e+11").is_some());
        assert!(fast_decimal(b"12345678901234567890").is_none());
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
