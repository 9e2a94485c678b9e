//! Byte sizes as Prometheus writes them in flags and configuration
//! (`512MB`, `1GiB`; both spellings are powers of 1024, as in Prometheus's
//! `units.Base2Bytes`).

/// The units, largest first, with their multipliers.
const UNITS: [(&str, &str, u64); 7] = [
    ("EB", "EiB", 1 << 60),
    ("PB", "PiB", 1 << 50),
    ("TB", "TiB", 1 << 40),
    ("GB", "GiB", 1 << 30),
    ("MB", "MiB", 1 << 20),
    ("KB", "KiB", 1 << 10),
    ("B", "B", 1),
];

/// Parses a size such as `512MB`, `1.5GB` or `0`. Returns bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {s:?}: use a number and a unit such as 512MB or 1GB");
    if s == "0" {
        return Ok(0);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let mult = UNITS
        .iter()
        .find(|(a, b, _)| *a == unit || *b == unit)
        .map(|u| u.2)
        .ok_or_else(bad)?;
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let bytes = f * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Formats bytes with the largest unit that divides them (`512MB`, `0B`).
pub fn format_bytes(n: u64) -> String {
    if n == 0 {
        return "0B".to_string();
    }
    for (unit, _, mult) in UNITS {
        if n.is_multiple_of(mult) {
            return format!("{}{unit}", n / mult);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_prometheus() {
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("1.5KB"), Ok(1536));
        assert_eq!(parse_bytes("100B"), Ok(100));
        assert_eq!(parse_bytes("0"), Ok(0));
        for bad in ["", "MB", "12", "1XB", "-1MB", "1..2MB", "99999999999EB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_bytes(512 << 20), "512MB");
        assert_eq!(format_bytes(1536), "1536B");
        assert_eq!(format_bytes(3 << 30), "3GB");
    }
}
