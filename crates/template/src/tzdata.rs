//! Time zones for Alertmanager's `tz` function: the zone in force at an
//! instant, read from the system's TZif files (`/usr/share/zoneinfo`, or
//! `$ZONEINFO`), as Go's `time.LoadLocation` does.
//!
//! Only the transition table is used; instants after the last transition
//! keep its zone (the TZif footer's rule for later years is not
//! evaluated). Debian's zoneinfo files list transitions up to 2037.

use std::path::PathBuf;

use super::value::Zone;

/// TZif files larger than this are refused.
const MAX_TZIF: u64 = 1 << 20;

/// The zone `name` is in at Unix nanoseconds `ns`; `None` for UTC.
pub(crate) fn zone_at(name: &str, ns: i64) -> Result<Option<Zone>, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(None);
    }
    let unknown = || format!("unknown time zone {name}");
    let path = if name == "Local" {
        PathBuf::from("/etc/localtime")
    } else {
        // Go refuses names that could escape the zoneinfo directory.
        if name.starts_with('/')
            || name.starts_with('\\')
            || name.split('/').any(|c| c == ".." || c.is_empty())
            || name.contains('\0')
        {
            return Err(unknown());
        }
        let dir = std::env::var_os("ZONEINFO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
        dir.join(name)
    };
    let meta = std::fs::metadata(&path).map_err(|_| unknown())?;
    if !meta.is_file() || meta.len() > MAX_TZIF {
        return Err(unknown());
    }
    let data = std::fs::read(&path).map_err(|_| unknown())?;
    let secs = ns.div_euclid(1_000_000_000);
    let secs = if ns == super::gotime::ZERO_TIME {
        i64::MIN
    } else {
        secs
    };
    lookup(&data, secs).ok_or_else(unknown).map(Some)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

struct Header {
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

fn header(b: &[u8], at: usize) -> Option<Header> {
    if b.get(at..at + 4)? != b"TZif" {
        return None;
    }
    let c = |i: usize| be32(b, at + 20 + 4 * i).map(|v| v as usize);
    Some(Header {
        isutcnt: c(0)?,
        isstdcnt: c(1)?,
        leapcnt: c(2)?,
        timecnt: c(3)?,
        typecnt: c(4)?,
        charcnt: c(5)?,
    })
}

impl Header {
    fn data_len(&self, time_size: usize) -> usize {
        self.timecnt * time_size
            + self.timecnt
            + self.typecnt * 6
            + self.charcnt
            + self.leapcnt * (time_size + 4)
            + self.isstdcnt
            + self.isutcnt
    }
}

/// Parses a TZif file and finds the zone at Unix second `secs`.
fn lookup(b: &[u8], secs: i64) -> Option<Zone> {
    let h1 = header(b, 0)?;
    let version = *b.get(4)?;
    // Version 2+ files repeat the data with 64-bit times after the v1 block.
    let (h, base, tsize) = if version >= b'2' {
        let v2 = 44 + h1.data_len(4);
        (header(b, v2)?, v2 + 44, 8)
    } else {
        (h1, 44, 4)
    };
    if h.typecnt == 0 || base.checked_add(h.data_len(tsize))? > b.len() {
        return None;
    }
    let times_at = base;
    let idx_at = times_at + h.timecnt * tsize;
    let types_at = idx_at + h.timecnt;
    let chars_at = types_at + h.typecnt * 6;
    let time = |i: usize| -> Option<i64> {
        if tsize == 8 {
            be64(b, times_at + 8 * i)
        } else {
            be32(b, times_at + 4 * i).map(|v| i64::from(v as i32))
        }
    };
    // The type in force: that of the last transition at or before secs; before
    // the first transition, the first standard-time type (Go's rule).
    let mut ty: Option<usize> = None;
    let (mut lo, mut hi) = (0usize, h.timecnt);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if time(mid)? <= secs {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo > 0 {
        ty = Some(usize::from(*b.get(idx_at + lo - 1)?));
    }
    let ty = match ty {
        Some(t) => t,
        None => (0..h.typecnt)
            .find(|&t| b.get(types_at + 6 * t + 4) == Some(&0))
            .unwrap_or(0),
    };
    if ty >= h.typecnt {
        return None;
    }
    let rec = types_at + 6 * ty;
    let offset = be32(b, rec)? as i32;
    let abbr_idx = usize::from(*b.get(rec + 5)?);
    let chars = b.get(chars_at..chars_at + h.charcnt)?;
    let abbr_bytes = chars.get(abbr_idx..)?;
    let end = abbr_bytes
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(abbr_bytes.len());
    let abbr = String::from_utf8_lossy(&abbr_bytes[..end]).into_owned();
    Some(Zone {
        offset_secs: offset,
        abbr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_unknown() {
        assert_eq!(zone_at("UTC", 0), Ok(None));
        assert_eq!(
            zone_at("../etc/passwd", 0),
            Err("unknown time zone ../etc/passwd".to_string())
        );
        assert_eq!(
            zone_at("No/Such_Zone", 0),
            Err("unknown time zone No/Such_Zone".to_string())
        );
    }

    #[test]
    fn berlin_summer_and_winter() {
        if !std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            eprintln!("no zoneinfo on this machine; skipped");
            return;
        }
        // 2024-07-01T12:00:00Z and 2024-01-15T12:00:00Z.
        let summer = zone_at("Europe/Berlin", 1_719_835_200 * 1_000_000_000).unwrap();
        assert_eq!(
            summer,
            Some(Zone {
                offset_secs: 7200,
                abbr: "CEST".into()
            })
        );
        let winter = zone_at("Europe/Berlin", 1_705_320_000 * 1_000_000_000).unwrap();
        assert_eq!(
            winter,
            Some(Zone {
                offset_secs: 3600,
                abbr: "CET".into()
            })
        );
    }

    #[test]
    fn garbage_is_refused_not_panicking() {
        for data in [
            &b""[..],
            b"TZif",
            b"TZif2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\xff\xff\xff\xff",
        ] {
            assert_eq!(lookup(data, 0), None);
        }
    }
}
