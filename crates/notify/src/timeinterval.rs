//! Alertmanager's time intervals (`time_intervals` / `mute_time_intervals`):
//! `times`, `weekdays`, `days_of_month`, `months`, `years`, `location`.
//!
//! Semantics follow Alertmanager's `timeinterval` package: every field that
//! is given must match (an absent field matches everything); within a field
//! any range may match. Times are `HH:MM`, start inclusive, end exclusive,
//! `24:00` allowed as an end. Days of month may count from the end of the
//! month (`-1` is the last day) and are clamped to the month. A named
//! interval is active when any of its entries contains the instant.
//!
//! `location` is `UTC`, `Local` or an IANA name read from the system's
//! zoneinfo files (`/usr/share/zoneinfo`, TZif). Instants after a file's last
//! transition use the last offset it lists; Debian's "fat" files list
//! transitions up to 2037.

use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, Timelike};
use serde::{Deserialize, Deserializer};

/// A range of integers, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InclusiveRange {
    /// The first value.
    pub begin: i32,
    /// The last value.
    pub end: i32,
}

/// A time-of-day range in minutes, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Start minute of day, 0..1440.
    pub start_minute: u32,
    /// End minute of day, 1..=1440.
    pub end_minute: u32,
}

/// A zone's offsets from UTC.
#[derive(Clone, PartialEq, Eq)]
pub struct Location {
    name: String,
    /// (transition time in seconds since the epoch, offset in seconds after it).
    transitions: Arc<Vec<(i64, i32)>>,
    /// The offset before the first transition.
    initial: i32,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({})", self.name)
    }
}

impl Location {
    /// UTC.
    pub fn utc() -> Location {
        Location {
            name: "UTC".into(),
            transitions: Arc::new(Vec::new()),
            initial: 0,
        }
    }

    /// Loads a zone by IANA name, `UTC` or `Local`.
    pub fn load(name: &str) -> Result<Location, String> {
        if name.is_empty() || name == "UTC" || name == "Etc/UTC" {
            return Ok(Location::utc());
        }
        let path = if name == "Local" {
            "/etc/localtime".to_string()
        } else {
            let ok = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
                && !name.starts_with('/')
                && !name.split('/').any(|p| p.is_empty() || p == "..");
            if !ok {
                return Err(format!("invalid location {name:?}"));
            }
            format!("/usr/share/zoneinfo/{name}")
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("unknown time zone {name:?} (reading {path}: {e})"))?;
        let (transitions, initial) =
            parse_tzif(&bytes).ok_or_else(|| format!("time zone file {path} is not valid TZif"))?;
        Ok(Location {
            name: name.to_string(),
            transitions: Arc::new(transitions),
            initial,
        })
    }

    /// The zone's name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offset from UTC in seconds at `secs` since the epoch.
    pub fn offset_at(&self, secs: i64) -> i32 {
        let idx = self.transitions.partition_point(|(t, _)| *t <= secs);
        if idx == 0 {
            self.initial
        } else {
            self.transitions[idx - 1].1
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads the transitions of a TZif file (the 64-bit block when present).
fn parse_tzif(b: &[u8]) -> Option<(Vec<(i64, i32)>, i32)> {
    if b.get(0..4)? != b"TZif" {
        return None;
    }
    let version = *b.get(4)?;
    let counts = |at: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, v) in c.iter_mut().enumerate() {
            *v = be32(b, at + 20 + 4 * i)? as usize;
        }
        Some(c)
    };
    let c1 = counts(0)?;
    let v1_len = c1[3] * 5 + c1[4] * 6 + c1[5] + c1[2] * 8 + c1[1] + c1[0];
    let (base, c, tsize) = if version >= b'2' {
        let at = 44usize.checked_add(v1_len)?;
        (at, counts(at)?, 8usize)
    } else {
        (0, c1, 4usize)
    };
    let [_, _, _, timecnt, typecnt, _] = c;
    if typecnt == 0 {
        return None;
    }
    let times_at = base + 44;
    let idx_at = times_at.checked_add(timecnt.checked_mul(tsize)?)?;
    let types_at = idx_at.checked_add(timecnt)?;
    let mut types = Vec::with_capacity(typecnt.min(256));
    for i in 0..typecnt {
        let at = types_at + i * 6;
        let off = be32(b, at)? as i32;
        let isdst = *b.get(at + 4)?;
        types.push((off, isdst));
    }
    let mut out = Vec::with_capacity(timecnt.min(4096));
    for i in 0..timecnt {
        let t = if tsize == 8 {
            let s = b.get(times_at + i * 8..times_at + i * 8 + 8)?;
            i64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
        } else {
            i64::from(be32(b, times_at + i * 4)? as i32)
        };
        let ti = *b.get(idx_at + i)? as usize;
        out.push((t, types.get(ti)?.0));
    }
    let initial = types
        .iter()
        .find(|(_, dst)| *dst == 0)
        .or(types.first())
        .map(|t| t.0)?;
    Some((out, initial))
}

/// One entry of a named time interval.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeInterval {
    /// Times of day.
    pub times: Vec<TimeRange>,
    /// Weekdays, 0 = Sunday.
    pub weekdays: Vec<InclusiveRange>,
    /// Days of month, negative from the end.
    pub days_of_month: Vec<InclusiveRange>,
    /// Months, 1 = January.
    pub months: Vec<InclusiveRange>,
    /// Years.
    pub years: Vec<InclusiveRange>,
    /// The zone the fields are read in.
    pub location: Location,
}

fn days_in_month(year: i32, month: u32) -> i32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

impl TimeInterval {
    /// Whether the instant (ms since the epoch) is inside the interval.
    pub fn contains(&self, ms: i64) -> bool {
        let secs = ms.div_euclid(1000);
        let local = secs + i64::from(self.location.offset_at(secs));
        let Some(t) = chrono::DateTime::from_timestamp(local, 0) else {
            return false;
        };
        let t = t.naive_utc();
        if !self.times.is_empty() {
            let m = t.hour() * 60 + t.minute();
            if !self
                .times
                .iter()
                .any(|r| r.start_minute <= m && m < r.end_minute)
            {
                return false;
            }
        }
        if !self.days_of_month.is_empty() {
            let dim = days_in_month(t.year(), t.month());
            let day = t.day() as i32;
            let ok = self.days_of_month.iter().any(|r| {
                let begin = if r.begin < 0 {
                    dim + r.begin + 1
                } else {
                    r.begin
                };
                let end = if r.end < 0 { dim + r.end + 1 } else { r.end };
                if begin > dim {
                    return false;
                }
                let begin = begin.clamp(-dim, dim);
                let end = end.clamp(-dim, dim);
                day >= begin && day <= end
            });
            if !ok {
                return false;
            }
        }
        if !self.months.is_empty() {
            let m = t.month() as i32;
            if !self.months.iter().any(|r| r.begin <= m && m <= r.end) {
                return false;
            }
        }
        if !self.weekdays.is_empty() {
            let d = t.weekday().num_days_from_sunday() as i32;
            if !self.weekdays.iter().any(|r| r.begin <= d && d <= r.end) {
                return false;
            }
        }
        if !self.years.is_empty() {
            let y = t.year();
            if !self.years.iter().any(|r| r.begin <= y && y <= r.end) {
                return false;
            }
        }
        true
    }
}

/// Whether any entry contains the instant.
pub fn any_contains(intervals: &[TimeInterval], ms: i64) -> bool {
    intervals.iter().any(|ti| ti.contains(ms))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    start_time: String,
    end_time: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeInterval {
    #[serde(default)]
    times: Vec<RawTimeRange>,
    #[serde(default)]
    weekdays: Vec<String>,
    #[serde(default)]
    days_of_month: Vec<String>,
    #[serde(default)]
    months: Vec<String>,
    #[serde(default)]
    years: Vec<String>,
    #[serde(default)]
    location: Option<String>,
}

fn parse_minute(s: &str) -> Result<u32, String> {
    let bad = || format!("invalid time of day {s:?}: want HH:MM between 00:00 and 24:00");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn split_range(s: &str) -> (&str, &str) {
    // A leading '-' belongs to a negative number, so split on the last ':'.
    match s.split_once(':') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    }
}

fn parse_named(s: &str, names: &[&str], base: i32, what: &str) -> Result<InclusiveRange, String> {
    let (a, b) = split_range(s);
    let one = |v: &str| -> Result<i32, String> {
        let lv = v.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lv) {
            return Ok(i as i32 + base);
        }
        if what == "month" {
            if let Ok(n) = lv.parse::<i32>() {
                if (1..=12).contains(&n) {
                    return Ok(n);
                }
            }
        }
        Err(format!("{v:?} is not a valid {what}"))
    };
    let (begin, end) = (one(a)?, one(b)?);
    if begin > end {
        return Err(format!("start {what} cannot be after end {what} in {s:?}"));
    }
    Ok(InclusiveRange { begin, end })
}

fn parse_dom(s: &str) -> Result<InclusiveRange, String> {
    let (a, b) = split_range(s);
    let one = |v: &str| -> Result<i32, String> {
        let n: i32 = v
            .parse()
            .map_err(|_| format!("{v:?} is not a valid day of month"))?;
        if n == 0 || !(-31..=31).contains(&n) {
            return Err(format!(
                "{n} is not a valid day of month: out of range (-31..31, not 0)"
            ));
        }
        Ok(n)
    };
    let (begin, end) = (one(a)?, one(b)?);
    if (begin > 0) == (end > 0) && begin > end {
        return Err(format!("start day cannot be after end day in {s:?}"));
    }
    if begin < 0 && end > 0 {
        return Err(format!(
            "a negative start day needs a negative end day in {s:?}"
        ));
    }
    Ok(InclusiveRange { begin, end })
}

fn parse_years(s: &str) -> Result<InclusiveRange, String> {
    let (a, b) = split_range(s);
    let one = |v: &str| -> Result<i32, String> {
        let n: i32 = v
            .parse()
            .map_err(|_| format!("{v:?} is not a valid year"))?;
        if n < 0 {
            return Err(format!("{n} is not a valid year"));
        }
        Ok(n)
    };
    let (begin, end) = (one(a)?, one(b)?);
    if begin > end {
        return Err(format!("start year cannot be after end year in {s:?}"));
    }
    Ok(InclusiveRange { begin, end })
}

impl TryFrom<RawTimeInterval> for TimeInterval {
    type Error = String;
    fn try_from(r: RawTimeInterval) -> Result<Self, String> {
        let mut times = Vec::new();
        for t in &r.times {
            let s = parse_minute(&t.start_time)?;
            let e = parse_minute(&t.end_time)?;
            if s >= 24 * 60 {
                return Err(format!("start time {:?} out of range", t.start_time));
            }
            if s >= e {
                return Err(format!(
                    "start time {:?} must be before end time {:?}",
                    t.start_time, t.end_time
                ));
            }
            times.push(TimeRange {
                start_minute: s,
                end_minute: e,
            });
        }
        Ok(TimeInterval {
            times,
            weekdays: r
                .weekdays
                .iter()
                .map(|s| parse_named(s, &WEEKDAYS, 0, "weekday"))
                .collect::<Result<_, _>>()?,
            days_of_month: r
                .days_of_month
                .iter()
                .map(|s| parse_dom(s))
                .collect::<Result<_, _>>()?,
            months: r
                .months
                .iter()
                .map(|s| parse_named(s, &MONTHS, 1, "month"))
                .collect::<Result<_, _>>()?,
            years: r
                .years
                .iter()
                .map(|s| parse_years(s))
                .collect::<Result<_, _>>()?,
            location: match &r.location {
                Some(l) => Location::load(l)?,
                None => Location::utc(),
            },
        })
    }
}

impl<'de> Deserialize<'de> for TimeInterval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawTimeInterval::deserialize(d)?;
        TimeInterval::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// A `time_intervals` entry: a name and its intervals.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    /// The name routes refer to.
    pub name: String,
    /// The intervals; the named interval is active when any contains the time.
    #[serde(default)]
    pub time_intervals: Vec<TimeInterval>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ti(yaml: &str) -> Result<TimeInterval, String> {
        serde_yaml_ng::from_str::<TimeInterval>(yaml).map_err(|e| e.to_string())
    }

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0)
    }

    #[test]
    fn business_hours() {
        let t =
            ti("times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']")
                .unwrap();
        // 2024-03-04 is a Monday.
        assert!(t.contains(ms(2024, 3, 4, 9, 0)));
        assert!(t.contains(ms(2024, 3, 4, 16, 59)));
        assert!(!t.contains(ms(2024, 3, 4, 17, 0)));
        assert!(!t.contains(ms(2024, 3, 3, 10, 0)));
    }

    #[test]
    fn days_of_month_from_the_end_and_months() {
        let t = ti("days_of_month: ['-1']\nmonths: ['february']\nyears: ['2024:2025']").unwrap();
        assert!(t.contains(ms(2024, 2, 29, 12, 0)));
        assert!(!t.contains(ms(2024, 2, 28, 12, 0)));
        assert!(t.contains(ms(2025, 2, 28, 12, 0)));
        assert!(!t.contains(ms(2026, 2, 28, 12, 0)));
        let t = ti("days_of_month: ['1:5', '-3:-1']\nmonths: ['1:3']").unwrap();
        assert!(t.contains(ms(2024, 1, 30, 0, 0)));
        assert!(t.contains(ms(2024, 3, 2, 0, 0)));
        assert!(!t.contains(ms(2024, 4, 2, 0, 0)));
    }

    #[test]
    fn end_of_day_and_location() {
        let t = ti("times: [{start_time: '22:00', end_time: '24:00'}]").unwrap();
        assert!(t.contains(ms(2024, 1, 1, 23, 59)));
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            let t =
                ti("times: [{start_time: '09:00', end_time: '10:00'}]\nlocation: Europe/Berlin")
                    .unwrap();
            // 08:30 UTC is 09:30 CET in winter, 10:30 CEST in summer.
            assert!(t.contains(ms(2024, 1, 15, 8, 30)));
            assert!(!t.contains(ms(2024, 7, 15, 8, 30)));
            assert!(t.contains(ms(2024, 7, 15, 7, 30)));
        }
    }

    #[test]
    fn invalid_intervals() {
        for bad in [
            "times: [{start_time: '10:00', end_time: '09:00'}]",
            "times: [{start_time: '25:00', end_time: '26:00'}]",
            "weekdays: ['friday:monday']",
            "weekdays: ['funday']",
            "days_of_month: ['0']",
            "days_of_month: ['32']",
            "days_of_month: ['5:1']",
            "months: ['13']",
            "years: ['2025:2020']",
            "location: Nowhere/Atlantis",
            "location: ../etc/passwd",
            "hours: []",
        ] {
            assert!(ti(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn garbage_tzif_is_rejected() {
        assert!(parse_tzif(b"TZif2").is_none());
        assert!(parse_tzif(&[0u8; 100]).is_none());
        let mut b = b"TZif2".to_vec();
        b.extend([0xffu8; 60]);
        assert!(parse_tzif(&b).is_none());
    }
}
