//! Tombstones: time intervals deleted from series of a block.
//!
//! A block's data files never change; deleting data writes intervals to the
//! small `tombstones` file, readers skip the samples they cover, and
//! compaction drops those samples for good. The file is read into memory at
//! open (it is small) and replaced atomically (temporary file, fsync,
//! rename, fsync of the directory) on every deletion.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::encoding::{crc32, Decbuf, Encbuf, CRC_LEN};
use super::error::BlockError;
use super::meta::write_file_synced;
use super::{sync_dir, BlockSeriesRef, TOMBSTONES_FILE};

/// First four bytes of the tombstones file, big-endian: ASCII `VBT1`.
pub const TOMBSTONES_MAGIC: u32 = 0x5642_5431;

/// Version byte of the tombstones format.
pub const TOMBSTONES_VERSION: u8 = 1;

/// A sorted set of disjoint, closed time intervals `[mint, maxt]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// No intervals.
    pub fn new() -> Intervals {
        Intervals(Vec::new())
    }

    /// True when no time is covered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of disjoint intervals.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The intervals, sorted and disjoint.
    pub fn as_slice(&self) -> &[(i64, i64)] {
        &self.0
    }

    /// Adds `[mint, maxt]`, merging it with the intervals it overlaps or
    /// touches. A reversed interval is ignored.
    pub fn add(&mut self, mint: i64, maxt: i64) {
        if mint > maxt {
            return;
        }
        let (mut lo, mut hi) = (mint, maxt);
        // First interval that may merge: its end reaches lo - 1.
        let start = self.0.partition_point(|&(_, e)| e < lo.saturating_sub(1));
        let mut end = start;
        while let Some(&(s, e)) = self.0.get(end) {
            if s > hi.saturating_add(1) {
                break;
            }
            lo = lo.min(s);
            hi = hi.max(e);
            end += 1;
        }
        self.0.splice(start..end, [(lo, hi)]);
    }

    /// Is `t` inside an interval?
    pub fn contains(&self, t: i64) -> bool {
        let i = self.0.partition_point(|&(_, e)| e < t);
        self.0.get(i).is_some_and(|&(s, _)| s <= t)
    }

    /// Is all of `[mint, maxt]` inside one interval?
    pub fn covers(&self, mint: i64, maxt: i64) -> bool {
        let i = self.0.partition_point(|&(_, e)| e < maxt);
        self.0.get(i).is_some_and(|&(s, _)| s <= mint)
    }

    /// Does any interval intersect `[mint, maxt]`?
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        let i = self.0.partition_point(|&(_, e)| e < mint);
        self.0.get(i).is_some_and(|&(s, _)| s <= maxt)
    }

    /// Adds every interval of `other`.
    pub fn extend(&mut self, other: &Intervals) {
        for &(s, e) in &other.0 {
            self.add(s, e);
        }
    }
}

/// The deleted intervals of a block, by series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    map: BTreeMap<BlockSeriesRef, Intervals>,
}

/// Intervals of a series without tombstones.
static EMPTY: Intervals = Intervals(Vec::new());

impl Tombstones {
    /// The deleted intervals of `series` (empty if none).
    pub fn get(&self, series: BlockSeriesRef) -> &Intervals {
        self.map.get(&series).unwrap_or(&EMPTY)
    }

    /// Records `[mint, maxt]` as deleted from `series`.
    pub fn add(&mut self, series: BlockSeriesRef, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.map.entry(series).or_default().add(mint, maxt);
        }
    }

    /// True when nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of intervals over all series (meta.json's `numTombstones`).
    pub fn num_intervals(&self) -> u64 {
        self.map.values().map(|i| i.len() as u64).sum()
    }

    /// The series with tombstones, in reference order.
    pub fn iter(&self) -> impl Iterator<Item = (BlockSeriesRef, &Intervals)> {
        self.map.iter().map(|(r, i)| (*r, i))
    }

    /// The file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encbuf::default();
        e.put_u32_be(TOMBSTONES_MAGIC);
        e.put_u8(TOMBSTONES_VERSION);
        e.put_uvarint(self.map.len() as u64);
        let mut prev = 0;
        for (r, iv) in &self.map {
            e.put_uvarint(r.0 - prev);
            prev = r.0;
            e.put_uvarint(iv.len() as u64);
            for &(s, t) in iv.as_slice() {
                e.put_varint(s);
                e.put_uvarint((t as u64).wrapping_sub(s as u64));
            }
        }
        let crc = crc32(&e.buf);
        e.put_u32_be(crc);
        e.buf
    }

    /// Parses a tombstones file; `path` is for error messages.
    pub(crate) fn decode(path: &Path, b: &[u8]) -> Result<Tombstones, BlockError> {
        let corrupt = |offset: usize, what| BlockError::corruption(path, offset as u64, what);
        let Some(body_len) = b.len().checked_sub(CRC_LEN) else {
            return Err(corrupt(0, "tombstones file shorter than its header"));
        };
        let (body, crc) = b.split_at(body_len);
        let mut d = Decbuf::new(body);
        let magic = d
            .u32_be("magic")
            .map_err(|_| corrupt(0, "tombstones file shorter than its header"))?;
        if magic != TOMBSTONES_MAGIC {
            return Err(corrupt(0, "bad tombstones magic number"));
        }
        let version = d
            .u8("version")
            .map_err(|_| corrupt(4, "tombstones file shorter than its header"))?;
        if version != TOMBSTONES_VERSION {
            return Err(BlockError::UnsupportedVersion {
                file: path.to_path_buf(),
                version: u32::from(version),
                supported: u32::from(TOMBSTONES_VERSION),
            });
        }
        let want = Decbuf::new(crc)
            .u32_be("crc")
            .map_err(|_| corrupt(body_len, "tombstones checksum missing"))?;
        if crc32(body) != want {
            return Err(corrupt(body_len, "tombstones checksum mismatch"));
        }
        let err = |m: super::encoding::Malformed| corrupt(m.offset, m.what);
        let n = d.uvarint_len(d.remaining(), "series count").map_err(err)?;
        let mut map = BTreeMap::new();
        let mut prev: u64 = 0;
        for i in 0..n {
            let at = d.pos();
            let delta = d.uvarint("series reference").map_err(err)?;
            if i > 0 && delta == 0 {
                return Err(corrupt(at, "tombstone series references not increasing"));
            }
            let r = prev
                .checked_add(delta)
                .ok_or_else(|| corrupt(at, "tombstone series reference overflows"))?;
            prev = r;
            let k = d
                .uvarint_len(d.remaining(), "interval count")
                .map_err(err)?;
            let mut iv = Intervals::new();
            for _ in 0..k {
                let at = d.pos();
                let s = d.varint("interval start").map_err(err)?;
                let len = d.uvarint("interval length").map_err(err)?;
                let e = (s as u64).wrapping_add(len) as i64;
                if e < s {
                    return Err(corrupt(at, "tombstone interval overflows"));
                }
                iv.add(s, e);
            }
            if !iv.is_empty() {
                map.insert(BlockSeriesRef(r), iv);
            }
        }
        if !d.is_empty() {
            return Err(corrupt(d.pos(), "trailing bytes in tombstones file"));
        }
        Ok(Tombstones { map })
    }

    /// Reads `dir/tombstones`; a missing file means no tombstones.
    pub(crate) fn read(dir: &Path) -> Result<Tombstones, BlockError> {
        let path = dir.join(TOMBSTONES_FILE);
        match fs::read(&path) {
            Ok(b) => Tombstones::decode(&path, &b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(BlockError::io("read", &path)(e)),
        }
    }

    /// Writes `dir/tombstones` (not atomically: for a block still being
    /// created).
    pub(crate) fn write_new(&self, dir: &Path) -> Result<u64, BlockError> {
        let bytes = self.encode();
        write_file_synced(&dir.join(TOMBSTONES_FILE), &bytes)?;
        Ok(bytes.len() as u64)
    }

    /// Replaces `dir/tombstones` atomically.
    pub(crate) fn replace(&self, dir: &Path) -> Result<(), BlockError> {
        let path = dir.join(TOMBSTONES_FILE);
        let tmp = dir.join(format!("{TOMBSTONES_FILE}.tmp"));
        write_file_synced(&tmp, &self.encode())?;
        fs::rename(&tmp, &path).map_err(BlockError::io("rename tombstones into", &path))?;
        sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(ivs: &[(i64, i64)], t: i64) -> bool {
        ivs.iter().any(|&(s, e)| s <= t && t <= e)
    }

    proptest! {
        #[test]
        fn prop_intervals_match_naive(
            ivs in prop::collection::vec((-50i64..50, 0i64..20), 0..8),
            probes in prop::collection::vec((-60i64..70, 0i64..10), 1..20),
        ) {
            let ivs: Vec<(i64, i64)> = ivs.into_iter().map(|(s, l)| (s, s + l)).collect();
            let mut set = Intervals::new();
            for &(s, e) in &ivs {
                set.add(s, e);
            }
            for w in set.as_slice().windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0, "not disjoint/merged: {:?}", set);
            }
            for (t, l) in probes {
                prop_assert_eq!(set.contains(t), naive(&ivs, t));
                let all = (t..=t + l).all(|x| naive(&ivs, x));
                let any = (t..=t + l).any(|x| naive(&ivs, x));
                prop_assert_eq!(set.covers(t, t + l), all);
                prop_assert_eq!(set.overlaps(t, t + l), any);
            }
        }

        #[test]
        fn prop_file_round_trip(
            entries in prop::collection::vec((any::<u32>(), any::<i64>(), any::<i64>()), 0..20),
        ) {
            let mut ts = Tombstones::default();
            for (r, a, b) in entries {
                ts.add(BlockSeriesRef(u64::from(r)), a.min(b), a.max(b));
            }
            let bytes = ts.encode();
            let back = Tombstones::decode(Path::new("t"), &bytes).unwrap();
            prop_assert_eq!(&back, &ts);
            // Any single flipped bit is caught.
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0x10;
                prop_assert!(Tombstones::decode(Path::new("t"), &bad).is_err());
            }
        }
    }

    #[test]
    fn extremes() {
        let mut iv = Intervals::new();
        iv.add(i64::MIN, i64::MAX);
        assert!(iv.covers(i64::MIN, i64::MAX));
        let mut ts = Tombstones::default();
        ts.add(BlockSeriesRef(7), i64::MIN, i64::MAX);
        let back = Tombstones::decode(Path::new("t"), &ts.encode()).unwrap();
        assert_eq!(
            back.get(BlockSeriesRef(7)).as_slice(),
            &[(i64::MIN, i64::MAX)]
        );
        assert!(Tombstones::decode(Path::new("t"), &[]).is_err());
        assert!(Tombstones::decode(Path::new("t"), &[1, 2, 3, 4, 5]).is_err());
    }
}
