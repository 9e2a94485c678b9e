//! The meaning of WAL records.
//!
//! The WAL (`crate::wal`) moves opaque byte records; this module encodes and
//! decodes them, as Prometheus splits `wlog` from `record`. Every record starts
//! with a type byte:
//!
//! | type | record | body |
//! |---|---|---|
//! | 1 | series | repeated: `ref uvarint`, `n uvarint`, n × (`len uvarint` name, `len uvarint` value) |
//! | 2 | samples | `base_ref u64 LE`, `base_t i64 LE`, repeated: `ref-base_ref varint`, `t-base_t varint`, `value u64 LE` |
//! | 3 | tombstones | repeated: `ref uvarint`, `mint varint`, `maxt varint` |
//! | 4 | out-of-order samples | as samples |
//!
//! Varints are LEB128; signed ones are zig-zag encoded. Decoding never panics:
//! a malformed record is a [`RecordError`].

use vigil_model::{Labels, LabelsBuilder};

/// The type byte of a series record.
pub const TYPE_SERIES: u8 = 1;
/// The type byte of a samples record.
pub const TYPE_SAMPLES: u8 = 2;
/// The type byte of a tombstones record.
pub const TYPE_TOMBSTONES: u8 = 3;
/// The type byte of an out-of-order samples record: samples accepted into
/// the out-of-order window, which replay must put back there (the completed
/// chunks never hold them). Same body as a samples record.
pub const TYPE_OOO_SAMPLES: u8 = 4;

/// A WAL record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is empty.
    #[error("empty record")]
    Empty,
    /// The type byte is unknown.
    #[error("unknown record type {0}")]
    UnknownType(u8),
    /// The record ends in the middle of a field.
    #[error("record truncated at byte {0}")]
    Truncated(usize),
    /// A varint is longer than 10 bytes.
    #[error("bad varint at byte {0}")]
    BadVarint(usize),
    /// A label name or value is not valid UTF-8.
    #[error("invalid UTF-8 in label at byte {0}")]
    BadUtf8(usize),
}

/// A series definition: the reference the head gave it and its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRecord {
    /// The head's series reference.
    pub sref: u64,
    /// The series' labels.
    pub labels: Labels,
}

/// One float sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRecord {
    /// The head's series reference.
    pub sref: u64,
    /// Timestamp in ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// A deleted time range of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TombstoneRecord {
    /// The head's series reference.
    pub sref: u64,
    /// First deleted timestamp (inclusive).
    pub mint: i64,
    /// Last deleted timestamp (inclusive).
    pub maxt: i64,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Series definitions.
    Series(Vec<SeriesRecord>),
    /// Samples.
    Samples(Vec<SampleRecord>),
    /// Out-of-order samples.
    OooSamples(Vec<SampleRecord>),
    /// Tombstones.
    Tombstones(Vec<TombstoneRecord>),
}

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Encodes a series record into `buf` (which is cleared first).
pub fn encode_series(buf: &mut Vec<u8>, series: &[SeriesRecord]) {
    buf.clear();
    buf.push(TYPE_SERIES);
    for s in series {
        put_uvarint(buf, s.sref);
        put_uvarint(buf, s.labels.len() as u64);
        for l in s.labels.iter() {
            put_uvarint(buf, l.name.len() as u64);
            buf.extend_from_slice(l.name.as_bytes());
            put_uvarint(buf, l.value.len() as u64);
            buf.extend_from_slice(l.value.as_bytes());
        }
    }
}

/// Encodes a samples record into `buf` (which is cleared first).
pub fn encode_samples(buf: &mut Vec<u8>, samples: &[SampleRecord]) {
    encode_samples_typed(buf, samples, TYPE_SAMPLES);
}

/// Encodes a samples record of type `ty` ([`TYPE_SAMPLES`] or
/// [`TYPE_OOO_SAMPLES`]) into `buf` (which is cleared first).
pub fn encode_samples_typed(buf: &mut Vec<u8>, samples: &[SampleRecord], ty: u8) {
    buf.clear();
    buf.reserve(17 + samples.len() * 12);
    buf.push(ty);
    let Some(first) = samples.first() else {
        return;
    };
    buf.extend_from_slice(&first.sref.to_le_bytes());
    buf.extend_from_slice(&first.t.to_le_bytes());
    for s in samples {
        put_varint(buf, s.sref.wrapping_sub(first.sref) as i64);
        put_varint(buf, s.t.wrapping_sub(first.t));
        buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
    }
}

/// Encodes a tombstones record into `buf` (which is cleared first).
pub fn encode_tombstones(buf: &mut Vec<u8>, stones: &[TombstoneRecord]) {
    buf.clear();
    buf.push(TYPE_TOMBSTONES);
    for s in stones {
        put_uvarint(buf, s.sref);
        put_varint(buf, s.mint);
        put_varint(buf, s.maxt);
    }
}

/// A bounds-checked reader over a record's bytes.
struct Decbuf<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Decbuf<'a> {
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let start = self.pos;
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.b.get(self.pos) else {
                return Err(RecordError::Truncated(self.pos));
            };
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err(RecordError::BadVarint(start))
    }

    fn varint(&mut self) -> Result<i64, RecordError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn u64_le(&mut self) -> Result<u64, RecordError> {
        let bytes = self
            .b
            .get(self.pos..self.pos + 8)
            .ok_or(RecordError::Truncated(self.pos))?;
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self) -> Result<&'a str, RecordError> {
        let len = self.uvarint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.b.len())
            .ok_or(RecordError::Truncated(start))?;
        self.pos = end;
        std::str::from_utf8(&self.b[start..end]).map_err(|_| RecordError::BadUtf8(start))
    }
}

/// The type byte of a record, if it has one.
pub fn record_type(rec: &[u8]) -> Option<u8> {
    rec.first().copied()
}

/// Decodes a series record's body.
pub fn decode_series(rec: &[u8], out: &mut Vec<SeriesRecord>) -> Result<(), RecordError> {
    match rec.first() {
        None => return Err(RecordError::Empty),
        Some(&TYPE_SERIES) => {}
        Some(&t) => return Err(RecordError::UnknownType(t)),
    }
    let mut d = Decbuf { b: rec, pos: 1 };
    let mut builder = LabelsBuilder::new();
    while !d.done() {
        let sref = d.uvarint()?;
        let n = d.uvarint()?;
        builder.retain(|_, _| false);
        for _ in 0..n {
            let name = d.str()?;
            let value = d.str()?;
            builder.set(name, value);
        }
        out.push(SeriesRecord {
            sref,
            labels: builder.build(),
        });
    }
    Ok(())
}

/// Decodes a samples or out-of-order samples record's body.
pub fn decode_samples(rec: &[u8], out: &mut Vec<SampleRecord>) -> Result<(), RecordError> {
    match rec.first() {
        None => return Err(RecordError::Empty),
        Some(&TYPE_SAMPLES) | Some(&TYPE_OOO_SAMPLES) => {}
        Some(&t) => return Err(RecordError::UnknownType(t)),
    }
    let mut d = Decbuf { b: rec, pos: 1 };
    if d.done() {
        return Ok(());
    }
    let base_ref = d.u64_le()?;
    let base_t = d.u64_le()? as i64;
    out.reserve((rec.len() - d.pos) / 10);
    while !d.done() {
        let dref = d.varint()?;
        let dt = d.varint()?;
        let v = f64::from_bits(d.u64_le()?);
        out.push(SampleRecord {
            sref: base_ref.wrapping_add(dref as u64),
            t: base_t.wrapping_add(dt),
            v,
        });
    }
    Ok(())
}

/// Decodes a tombstones record's body.
pub fn decode_tombstones(rec: &[u8], out: &mut Vec<TombstoneRecord>) -> Result<(), RecordError> {
    match rec.first() {
        None => return Err(RecordError::Empty),
        Some(&TYPE_TOMBSTONES) => {}
        Some(&t) => return Err(RecordError::UnknownType(t)),
    }
    let mut d = Decbuf { b: rec, pos: 1 };
    while !d.done() {
        out.push(TombstoneRecord {
            sref: d.uvarint()?,
            mint: d.varint()?,
            maxt: d.varint()?,
        });
    }
    Ok(())
}

/// Decodes any record.
pub fn decode(rec: &[u8]) -> Result<Record, RecordError> {
    match rec.first() {
        None => Err(RecordError::Empty),
        Some(&TYPE_SERIES) => {
            let mut v = Vec::new();
            decode_series(rec, &mut v)?;
            Ok(Record::Series(v))
        }
        Some(&TYPE_SAMPLES) => {
            let mut v = Vec::new();
            decode_samples(rec, &mut v)?;
            Ok(Record::Samples(v))
        }
        Some(&TYPE_OOO_SAMPLES) => {
            let mut v = Vec::new();
            decode_samples(rec, &mut v)?;
            Ok(Record::OooSamples(v))
        }
        Some(&TYPE_TOMBSTONES) => {
            let mut v = Vec::new();
            decode_tombstones(rec, &mut v)?;
            Ok(Record::Tombstones(v))
        }
        Some(&t) => Err(RecordError::UnknownType(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_model::labels;

    #[test]
    fn round_trip_each_type() {
        let mut buf = Vec::new();
        let series = vec![
            SeriesRecord {
                sref: 1,
                labels: labels!("__name__" => "up", "job" => "é"),
            },
            SeriesRecord {
                sref: 300,
                labels: Labels::empty(),
            },
        ];
        encode_series(&mut buf, &series);
        assert_eq!(decode(&buf).unwrap(), Record::Series(series));

        let samples = vec![
            SampleRecord {
                sref: 5,
                t: 1000,
                v: 1.5,
            },
            SampleRecord {
                sref: 2,
                t: 990,
                v: vigil_model::stale_nan(),
            },
            SampleRecord {
                sref: u64::MAX,
                t: i64::MIN,
                v: -0.0,
            },
        ];
        encode_samples(&mut buf, &samples);
        let Record::Samples(got) = decode(&buf).unwrap() else {
            panic!("wrong type")
        };
        assert_eq!(got.len(), 3);
        for (a, b) in got.iter().zip(&samples) {
            assert_eq!((a.sref, a.t, a.v.to_bits()), (b.sref, b.t, b.v.to_bits()));
        }

        let stones = vec![TombstoneRecord {
            sref: 7,
            mint: -5,
            maxt: 10,
        }];
        encode_tombstones(&mut buf, &stones);
        assert_eq!(decode(&buf).unwrap(), Record::Tombstones(stones));
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(decode(&[]), Err(RecordError::Empty));
        assert_eq!(decode(&[9]), Err(RecordError::UnknownType(9)));
        assert!(matches!(
            decode(&[TYPE_SAMPLES, 1, 2]),
            Err(RecordError::Truncated(_))
        ));
        assert!(matches!(
            decode(&[TYPE_SERIES, 1, 1, 200, 1]),
            Err(RecordError::Truncated(_))
        ));
        assert!(matches!(
            decode(&[TYPE_SERIES, 1, 1, 1, 0xff, 0]),
            Err(RecordError::BadUtf8(_))
        ));
        let mut over = vec![TYPE_TOMBSTONES];
        over.extend([0xff; 11]);
        assert!(matches!(decode(&over), Err(RecordError::BadVarint(_))));
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn prop_samples_round_trip(s in prop::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..50)) {
            let samples: Vec<SampleRecord> = s.iter()
                .map(|&(sref, t, v)| SampleRecord { sref, t, v: f64::from_bits(v) })
                .collect();
            let mut buf = Vec::new();
            encode_samples(&mut buf, &samples);
            let mut out = Vec::new();
            decode_samples(&buf, &mut out).unwrap();
            prop_assert_eq!(out.len(), samples.len());
            for (a, b) in out.iter().zip(&samples) {
                prop_assert_eq!((a.sref, a.t, a.v.to_bits()), (b.sref, b.t, b.v.to_bits()));
            }
        }
    }
}
