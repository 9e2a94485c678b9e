//! Go's `time.Time` and `time.Duration` printing for UTC instants: `String()`
//! and `Format(layout)`.

const NS_PER_SEC: i64 = 1_000_000_000;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// 0 = Sunday
    pub weekday: u32,
    /// 1..=366
    pub yday: u32,
}

/// Go's zero `time.Time` (January 1, year 1, UTC), which Unix nanoseconds
/// cannot hold: represented by `i64::MIN`. Alertmanager gives firing alerts
/// this `EndsAt`.
pub(crate) const ZERO_TIME: i64 = i64::MIN;

/// The Unix seconds of Go's zero time.
const ZERO_TIME_SECS: i64 = -62_135_596_800;

/// Splits Unix nanoseconds into seconds and a non-negative nanosecond part.
pub(crate) fn split(ns: i64) -> (i64, u32) {
    if ns == ZERO_TIME {
        return (ZERO_TIME_SECS, 0);
    }
    (ns.div_euclid(NS_PER_SEC), ns.rem_euclid(NS_PER_SEC) as u32)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil(ns: i64) -> Civil {
    civil_in(ns, 0)
}

/// The broken-down time at `offset_secs` east of UTC.
pub(crate) fn civil_in(ns: i64, offset_secs: i32) -> Civil {
    let (secs, nanos) = split(ns);
    let secs = secs.saturating_add(i64::from(offset_secs));
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let yday = (days - days_from_civil(year, 1, 1) + 1) as u32;
    Civil {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: (sod / 60 % 60) as u32,
        second: (sod % 60) as u32,
        nanos,
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
    }
}

/// `time.Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(crate) fn time_string(ns: i64) -> String {
    format(ns, "2006-01-02 15:04:05.999999999 -0700 MST")
}

/// `time.Time.String()` in a zone.
pub(crate) fn time_string_in(ns: i64, offset_secs: i32, abbr: &str) -> String {
    format_in(
        ns,
        offset_secs,
        abbr,
        "2006-01-02 15:04:05.999999999 -0700 MST",
    )
}

/// `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(crate) fn duration_string(ns: i64) -> String {
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u == 0 {
        return "0s".to_string();
    }
    if u < NS_PER_SEC as u64 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        out.push_str(&frac(u, prec));
        out.push_str(unit);
    } else {
        let secs = u / NS_PER_SEC as u64;
        let sec_part = frac(u % NS_PER_SEC as u64 + (secs % 60) * NS_PER_SEC as u64, 9);
        let mins = secs / 60;
        if mins > 0 {
            let hours = mins / 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            out.push_str(&format!("{}m", mins % 60));
        }
        out.push_str(&sec_part);
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^prec` printed with trailing fractional zeros (and a bare point) removed.
fn frac(v: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let int = v / p;
    let f = v % p;
    if f == 0 {
        return int.to_string();
    }
    let s = format!("{f:0width$}", width = prec as usize);
    format!("{int}.{}", s.trim_end_matches('0'))
}

/// `time.Time.Format(layout)` for a UTC time.
pub(crate) fn format(ns: i64, layout: &str) -> String {
    format_in(ns, 0, "UTC", layout)
}

/// `time.Time.Format(layout)` for a time in a zone `offset_secs` east of
/// UTC, abbreviated `abbr`.
pub(crate) fn format_in(ns: i64, offset_secs: i32, abbr: &str, layout: &str) -> String {
    let c = civil_in(ns, offset_secs);
    let off = offset_secs;
    let (sign, oh, om, os) = (
        if off < 0 { '-' } else { '+' },
        off.unsigned_abs() / 3600,
        off.unsigned_abs() / 60 % 60,
        off.unsigned_abs() % 60,
    );
    let hour12 = match c.hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = String::new();
    let b = layout.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &layout[i..];
        let take = |s: &str| rest.starts_with(s);
        // Each arm pushes its output and advances i.
        let (text, n): (String, usize) = if take("January") {
            (MONTHS[c.month as usize - 1].to_string(), 7)
        } else if take("Jan") {
            (MONTHS[c.month as usize - 1][..3].to_string(), 3)
        } else if take("Monday") {
            (DAYS[c.weekday as usize].to_string(), 6)
        } else if take("Mon") {
            (DAYS[c.weekday as usize][..3].to_string(), 3)
        } else if take("MST") {
            (abbr.to_string(), 3)
        } else if take("2006") {
            (format!("{:04}", c.year), 4)
        } else if take("002") {
            (format!("{:03}", c.yday), 3)
        } else if take("01") {
            (format!("{:02}", c.month), 2)
        } else if take("02") {
            (format!("{:02}", c.day), 2)
        } else if take("03") {
            (format!("{hour12:02}"), 2)
        } else if take("04") {
            (format!("{:02}", c.minute), 2)
        } else if take("05") {
            (format!("{:02}", c.second), 2)
        } else if take("06") {
            (format!("{:02}", c.year.rem_euclid(100)), 2)
        } else if take("15") {
            (format!("{:02}", c.hour), 2)
        } else if take("__2") {
            (format!("{:>3}", c.yday), 3)
        } else if take("_2") && !take("_2006") {
            (format!("{:>2}", c.day), 2)
        } else if take("1") {
            (c.month.to_string(), 1)
        } else if take("2") {
            (c.day.to_string(), 1)
        } else if take("3") {
            (hour12.to_string(), 1)
        } else if take("4") {
            (c.minute.to_string(), 1)
        } else if take("5") {
            (c.second.to_string(), 1)
        } else if take("PM") {
            ((if c.hour >= 12 { "PM" } else { "AM" }).to_string(), 2)
        } else if take("pm") {
            ((if c.hour >= 12 { "pm" } else { "am" }).to_string(), 2)
        } else if let Some(n) = ["-07:00:00", "-070000", "-07:00", "-0700", "-07"]
            .iter()
            .find(|z| take(z))
            .map(|z| z.len())
        {
            let s = match n {
                9 => format!("{sign}{oh:02}:{om:02}:{os:02}"),
                7 => format!("{sign}{oh:02}{om:02}{os:02}"),
                6 => format!("{sign}{oh:02}:{om:02}"),
                5 => format!("{sign}{oh:02}{om:02}"),
                _ => format!("{sign}{oh:02}"),
            };
            (s, n)
        } else if let Some(n) = ["Z07:00:00", "Z070000", "Z07:00", "Z0700", "Z07"]
            .iter()
            .find(|z| take(z))
            .map(|z| z.len())
        {
            if off == 0 {
                ("Z".to_string(), n)
            } else {
                let s = match n {
                    9 => format!("{sign}{oh:02}:{om:02}:{os:02}"),
                    7 => format!("{sign}{oh:02}{om:02}{os:02}"),
                    6 => format!("{sign}{oh:02}:{om:02}"),
                    5 => format!("{sign}{oh:02}{om:02}"),
                    _ => format!("{sign}{oh:02}"),
                };
                (s, n)
            }
        } else if (b[i] == b'.' || b[i] == b',')
            && i + 1 < b.len()
            && (b[i + 1] == b'0' || b[i + 1] == b'9')
        {
            let ch = b[i + 1];
            let mut j = i + 1;
            while j < b.len() && b[j] == ch {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                (layout[i..i + 1].to_string(), 1)
            } else {
                let digits = (j - i - 1).min(9);
                let f = format!("{:09}", c.nanos);
                let mut s = f[..digits].to_string();
                if ch == b'9' {
                    s = s.trim_end_matches('0').to_string();
                    if s.is_empty() {
                        (String::new(), j - i)
                    } else {
                        (format!("{}{s}", b[i] as char), j - i)
                    }
                } else {
                    (format!("{}{s}", b[i] as char), j - i)
                }
            }
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            (ch.to_string(), ch.len_utf8())
        };
        out.push_str(&text);
        i += n.max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_strings() {
        assert_eq!(time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(time_string(-NS_PER_SEC), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(
            time_string(1_435_065_584_128_000_000),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            time_string(9_223_372_036 * NS_PER_SEC),
            "2262-04-11 23:47:16 +0000 UTC"
        );
        let t = 1_657_155_181 * NS_PER_SEC;
        assert_eq!(
            format(t, "2006-01-02T15:04:05Z07:00 Mon Jan _2 3PM .000 002"),
            "2022-07-07T00:53:01Z Thu Jul  7 12AM .000 188"
        );
        assert_eq!(
            format(t, "January 2, 2006 15:04 MST -0700"),
            "July 7, 2022 00:53 UTC +0000"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(1), "1ns");
        assert_eq!(duration_string(1_500), "1.5µs");
        assert_eq!(duration_string(1_500_000), "1.5ms");
        assert_eq!(duration_string(NS_PER_SEC), "1s");
        assert_eq!(duration_string(90 * NS_PER_SEC), "1m30s");
        assert_eq!(duration_string(3600 * NS_PER_SEC), "1h0m0s");
        assert_eq!(
            duration_string(-(3723 * NS_PER_SEC + 500_000_000)),
            "-1h2m3.5s"
        );
        assert_eq!(duration_string(i64::MIN), "-2562047h47m16.854775808s");
    }
}
