//! Chunk codecs: one series' samples compressed into a self-describing byte
//! string.
//!
//! A chunk is `encoding: u8 | num_samples: u16 BE | encoding-specific
//! bits` (see `docs/formats.md`). The encoding byte lets several encodings
//! live side by side in the head, on disk and in blocks:
//!
//! * [`Encoding::Xor`] is Prometheus' classic Gorilla XOR chunk, byte for
//!   byte after the encoding byte. It is kept for compatibility and as the
//!   baseline.
//! * [`Encoding::Adaptive`] keeps Gorilla's delta-of-delta
//!   timestamps and previous-value prediction, but codes them with adaptive
//!   Rice codes instead of fixed buckets and stores values that are short
//!   decimals (integer counters, 0.01 s CPU ticks, two-decimal gauges) as
//!   integer deltas. On node_exporter-like data (counters, CPU seconds,
//!   two-decimal gauges, constants with ±2 ms scrape jitter) it needs 1.6
//!   bytes per sample where [`Encoding::Xor`] needs 5.6; the measurements
//!   are in `docs/formats.md`.
//! * [`Encoding::Packed`] (the default) predicts as Adaptive does but stores
//!   the prediction errors of 16 samples at a time as fixed-width fields, so
//!   a sample decodes from one load with no prefix to scan: under 5 ns per
//!   sample, against about 8.5 for Adaptive, at about the same size. The
//!   encoder pays for it by rewriting the open block when a sample needs
//!   wider fields.
//!
//! Design decisions:
//!
//! * **Lossless on bits.** Every `f64` bit pattern (NaN payloads, the stale
//!   marker, ±Inf, -0.0, subnormals) and every `i64` timestamp round-trips
//!   exactly. The decimal path is only taken after the encoder has checked
//!   that the decoder's division restores the same bits.
//! * **Decoding never panics.** Chunks come from disk and memory maps, so
//!   the decoder treats the bytes as untrusted: every read is bounds checked
//!   by the bit reader and all arithmetic on decoded numbers wraps. Corrupt
//!   input ends iteration with a typed [`ChunkError`] that carries the sample
//!   index and byte offset.
//! * **Word-at-a-time bit IO, batched decoding.** Bits are read 64 at a time
//!   with one load and prefix codes decoded with `leading_zeros`; the cursor
//!   decodes 64 samples at a time with the decoder state in registers, so
//!   `next` is usually an index increment (`benches/chunk.rs`,
//!   `docs/performance.md`).
//! * **A cursor, not an `Iterator`.** [`ChunkIter`] has the shape shared by
//!   every sample cursor in vigil (advance, seek, current item, error at the
//!   end) so it can sit behind the storage traits without allocation.
//!
//! ```
//! use vigil_tsdb::chunkenc::{decode_all, ChunkEncoder, ChunkIter, Encoding};
//!
//! let mut enc = ChunkEncoder::new(Encoding::Packed);
//! for i in 0..120 {
//!     enc.append(1_700_000_000_000 + i * 15_000, i as f64 * 0.25).unwrap();
//! }
//! let bytes = enc.into_bytes();
//!
//! let mut it = ChunkIter::new(&bytes[..]);
//! assert!(it.seek(1_700_000_000_000 + 60_000));
//! assert_eq!(it.at(), (1_700_000_000_000 + 60_000, 1.0));
//! assert_eq!(decode_all(&bytes).unwrap().len(), 120);
//! ```

mod adaptive;
mod bits;
mod packed;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
mod xor;

use std::borrow::Cow;

use bits::{BitReader, BitWriter, Cursor, Tail, Truncated};

/// Bit pattern of the Prometheus stale marker, a NaN with payload 2.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Bytes before the encoding-specific data: the encoding byte and the
/// big-endian sample count.
pub const HEADER_LEN: usize = 3;

/// Most samples a chunk can hold (the count is a `u16`).
pub const MAX_SAMPLES: u16 = u16::MAX;

/// How a chunk's samples are coded; the first byte of every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
#[non_exhaustive]
pub enum Encoding {
    /// Prometheus' classic XOR chunk (`chunkenc.EncXOR`): fixed
    /// delta-of-delta buckets of 0/14/17/20/64 bits and Gorilla value XOR.
    Xor = 1,
    /// vigil's encoding: adaptive Rice-coded delta-of-delta timestamps and
    /// values coded as decimal integer deltas where exact, Gorilla XOR
    /// otherwise.
    Adaptive = 2,
    /// vigil's encoding (the default): Adaptive's predictors, with the
    /// prediction errors packed as fixed-width fields in blocks of 16
    /// samples, so that a sample decodes from one load.
    #[default]
    Packed = 3,
}

impl Encoding {
    /// Every encoding this version can read and write.
    pub const ALL: [Encoding; 3] = [Encoding::Xor, Encoding::Adaptive, Encoding::Packed];

    /// The byte stored at the start of a chunk.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for Encoding {
    type Error = ChunkError;

    fn try_from(b: u8) -> Result<Self, ChunkError> {
        match b {
            1 => Ok(Encoding::Xor),
            2 => Ok(Encoding::Adaptive),
            3 => Ok(Encoding::Packed),
            other => Err(ChunkError::UnknownEncoding(other)),
        }
    }
}

/// Why a chunk could not be decoded. Offsets are byte offsets from the
/// start of the chunk (the encoding byte), `sample` is the 0-based index of
/// the sample being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The bytes end before the header or before the announced samples.
    #[error("chunk truncated at byte {offset} while decoding sample {sample}")]
    Truncated {
        /// Sample being decoded.
        sample: u16,
        /// Byte offset where the data ran out.
        offset: usize,
    },
    /// The encoding byte names no known encoding.
    #[error("unknown chunk encoding {0}")]
    UnknownEncoding(u8),
    /// A varint is longer than 64 bits (classic XOR chunks).
    #[error("invalid varint at byte {offset} in sample {sample}")]
    InvalidVarint {
        /// Sample being decoded.
        sample: u16,
        /// Byte offset of the varint's end.
        offset: usize,
    },
    /// An XOR window has more than 64 leading plus significant bits.
    #[error("invalid XOR window at byte {offset} in sample {sample}")]
    InvalidWindow {
        /// Sample being decoded.
        sample: u16,
        /// Byte offset of the window's end.
        offset: usize,
    },
}

/// [`ChunkEncoder::append`] was called on a chunk holding
/// [`MAX_SAMPLES`] samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("chunk is full ({} samples)", MAX_SAMPLES)]
pub struct ChunkFull;

/// Why one decoding step failed, before it is placed in the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Truncated(Truncated),
    Varint,
    Window,
}

impl From<Truncated> for Fault {
    fn from(t: Truncated) -> Self {
        Fault::Truncated(t)
    }
}

impl Fault {
    fn at(self, sample: u16, offset: usize) -> ChunkError {
        match self {
            Fault::Truncated(_) => ChunkError::Truncated { sample, offset },
            Fault::Varint => ChunkError::InvalidVarint { sample, offset },
            Fault::Window => ChunkError::InvalidWindow { sample, offset },
        }
    }
}

#[inline(always)]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline(always)]
fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// The fixed part of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// How the samples are coded.
    pub encoding: Encoding,
    /// Number of samples in the chunk.
    pub num_samples: u16,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of a chunk.
    pub fn parse(bytes: &[u8]) -> Result<Header, ChunkError> {
        let [enc, hi, lo, ..] = *bytes else {
            return Err(ChunkError::Truncated {
                sample: 0,
                offset: bytes.len(),
            });
        };
        Ok(Header {
            encoding: Encoding::try_from(enc)?,
            num_samples: u16::from_be_bytes([hi, lo]),
        })
    }
}

/// Samples after which an encoder sizes its buffer for the whole chunk:
/// the first two (coded on their own) and a block of sixteen.
pub(crate) const SIZE_AT: u16 = 18;

/// The samples a head chunk usually holds when it is cut.
const CHUNK_SAMPLES_EXPECTED: usize = 120;

/// The expected length of a chunk of [`CHUNK_SAMPLES_EXPECTED`] samples
/// that is `len` bytes long after [`SIZE_AT`] samples, the last sixteen of
/// which took `recent` bytes, with 1/16 to spare (the first block is
/// usually wider than the later ones: the predictors warm up). If it falls
/// short, the buffer grows by half.
pub(crate) fn expected_len(len: usize, recent: usize) -> usize {
    let rest = CHUNK_SAMPLES_EXPECTED - usize::from(SIZE_AT);
    len + recent * rest * 17 / (16 * 16)
}

/// An explicit tag: with the tag in a niche of an encoder's field, every
/// append spent instructions decoding it.
#[derive(Debug, Clone)]
#[repr(u8)]
enum EncoderState {
    // First: the default encoding's tag is 0.
    Packed(packed::Encoder),
    Xor(xor::Encoder, Other),
    Adaptive(adaptive::Encoder, Other),
}

/// What [`ChunkEncoder`] tracks for the encodings other than Packed (the
/// Packed encoder knows its last sample and sizes its buffer itself).
#[derive(Debug, Clone, Default)]
struct Other {
    last: (i64, f64),
    /// Bytes after the first two samples (see [`SIZE_AT`]).
    len_at_2: u16,
}

/// Builds a chunk by appending samples in time order.
///
/// The chunk bytes ([`ChunkEncoder::bytes`]) are complete and decodable after
/// every append, so a chunk that is still open can be read or persisted at
/// any time. Timestamps must be strictly increasing; the encoder does not
/// check this (the head does), and any other order still round-trips but
/// makes [`ChunkIter::seek`] meaningless.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    w: BitWriter,
    count: u16,
    state: EncoderState,
}

impl ChunkEncoder {
    /// An empty chunk of the given encoding.
    pub fn new(encoding: Encoding) -> Self {
        // Sized again for the whole chunk after its first samples.
        Self::with_capacity(encoding, 128)
    }

    /// [`ChunkEncoder::new`] with room for `bytes` bytes of chunk (128 if
    /// 0): the head passes the size of the series' previous chunk, so that
    /// a chunk like it is allocated once and never reallocates.
    pub fn with_capacity(encoding: Encoding, bytes: usize) -> Self {
        let bytes = if bytes == 0 { 128 } else { bytes };
        ChunkEncoder {
            w: BitWriter::with_header(&[encoding.as_u8(), 0, 0], bytes),
            count: 0,
            state: match encoding {
                Encoding::Xor => EncoderState::Xor(xor::Encoder::new(), Other::default()),
                Encoding::Adaptive => {
                    EncoderState::Adaptive(adaptive::Encoder::new(), Other::default())
                }
                Encoding::Packed => EncoderState::Packed(packed::Encoder::new()),
            },
        }
    }

    /// Appends a sample. Fails only when the chunk already holds
    /// [`MAX_SAMPLES`] samples.
    /// Always inlined: the few callers append in loops, and as a call the
    /// encoder's state goes through memory on every sample (about 25
    /// instructions more per sample in the chunk bench).
    #[inline(always)]
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkFull> {
        if self.count == MAX_SAMPLES {
            return Err(ChunkFull);
        }
        // The Packed encoder knows its last sample, sizes the buffer itself
        // (at the start of its second block) and sets the header's count
        // when it has written every sample.
        // The default encoding is tested first (a `match` tested it last).
        if let EncoderState::Packed(e) = &mut self.state {
            e.append(&mut self.w, self.count, t, v);
        } else {
            self.append_other(t, v);
        }
        self.count += 1;
        Ok(())
    }

    /// [`ChunkEncoder::append`] for the encodings other than Packed (which
    /// only tests and benchmarks write), out of line: inlined, their tests
    /// came before Packed's.
    #[cold]
    #[inline(never)]
    fn append_other(&mut self, t: i64, v: f64) {
        let (w, count) = (&mut self.w, self.count);
        let other = match &mut self.state {
            EncoderState::Xor(e, other) => {
                e.append(w, count, t, v);
                other
            }
            EncoderState::Adaptive(e, other) => {
                e.append(w, count, t, v);
                other
            }
            EncoderState::Packed(_) => return,
        };
        other.last = (t, v);
        if count == 1 {
            other.len_at_2 = w.bit_len().div_ceil(8) as u16;
        } else if count == SIZE_AT - 1 {
            // Sized for the whole chunk after its first block.
            let len = w.bit_len().div_ceil(8);
            w.reserve_total(expected_len(len, len - usize::from(other.len_at_2)));
        }
        w.set_header(1, &(count + 1).to_be_bytes());
    }

    /// The chunk's encoding.
    pub fn encoding(&self) -> Encoding {
        match self.state {
            EncoderState::Xor(..) => Encoding::Xor,
            EncoderState::Adaptive(..) => Encoding::Adaptive,
            EncoderState::Packed(_) => Encoding::Packed,
        }
    }

    /// Number of samples appended.
    pub fn num_samples(&self) -> u16 {
        self.count
    }

    /// The last appended sample, if any.
    pub fn last_sample(&self) -> Option<(i64, f64)> {
        let last = match &self.state {
            EncoderState::Packed(e) => e.last(),
            EncoderState::Xor(_, other) | EncoderState::Adaptive(_, other) => other.last,
        };
        (self.count > 0).then_some(last)
    }

    /// The complete chunk, header included, as it would be written to disk.
    /// Borrowed, except while the Packed encoder holds samples of a block
    /// it has not written yet: then they are written to a copy.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.state {
            EncoderState::Packed(e) if e.pending() > 0 => {
                let (mut w, mut e) = (self.w.clone(), e.clone());
                e.flush(&mut w);
                w.set_header(1, &self.count.to_be_bytes());
                Cow::Owned(w.into_bytes())
            }
            _ => Cow::Borrowed(self.w.bytes()),
        }
    }

    /// Size of the chunk in bytes, header included.
    pub fn len_bytes(&self) -> usize {
        let pending = match &self.state {
            EncoderState::Packed(e) => e.pending_bits(),
            _ => 0,
        };
        (self.w.bit_len() + pending).div_ceil(8)
    }

    /// Consumes the encoder and returns [`ChunkEncoder::bytes`] (the
    /// vector may have spare capacity).
    pub fn into_bytes(mut self) -> Vec<u8> {
        if let EncoderState::Packed(e) = &mut self.state {
            if e.pending() > 0 {
                e.flush(&mut self.w);
                self.w.set_header(1, &self.count.to_be_bytes());
            }
        }
        self.w.into_bytes()
    }
}

#[derive(Debug, Clone)]
enum DecoderState {
    Xor(xor::Decoder),
    Adaptive(adaptive::Decoder),
    Packed(packed::Decoder),
}

/// Samples decoded at a time by [`ChunkIter`]. 64 rather than 32: half the
/// per-batch work (entering the decoder, a block split between batches)
/// for -9% instructions per decoded sample, at 1 KiB per cursor (one per
/// series being read). 128 (a whole chunk of the usual 120 samples) gave
/// -12.5% for 2 KiB.
const BATCH: usize = 64;

/// A cursor over the samples of one chunk.
///
/// `B` is any byte handle: a borrowed `&[u8]`, a `Vec<u8>`, or a cheaply
/// clonable owned slice of a memory map.
///
/// Contract:
/// * [`ChunkIter::next`] advances; the first call moves to the first sample.
///   It returns false at the end of the chunk or when the data is corrupt;
///   [`ChunkIter::err`] tells the two apart. Once it has returned false it
///   keeps returning false.
/// * [`ChunkIter::at`] is the current sample. Before the first successful
///   `next` it is unspecified; after the end it stays the last sample.
/// * [`ChunkIter::seek`] never moves backwards.
/// * Samples before a corruption are returned; the error is reported once
///   they are exhausted.
///
/// Internally it decodes 64 samples at a time with the decoder state
/// in registers, so `next` is usually just an index increment.
#[derive(Debug, Clone)]
pub struct ChunkIter<B> {
    data: B,
    /// The last bytes of `data`, zero padded, for fast refills at the end.
    tail: Tail,
    cursor: Cursor,
    /// Samples announced by the header (lowered when decoding fails).
    total: u16,
    /// Samples decoded so far.
    decoded: u16,
    state: DecoderState,
    /// Decoded samples as (timestamp, value bits).
    batch: [(i64, u64); BATCH],
    /// Valid entries of `batch`.
    len: usize,
    /// Entries of `batch` handed out; the current sample is `idx - 1`.
    idx: usize,
    /// A decoding error, reported once the samples before it are consumed.
    pending: Option<ChunkError>,
    err: Option<ChunkError>,
}

impl<B: AsRef<[u8]>> ChunkIter<B> {
    /// A cursor over `bytes`, which must start with a chunk header. Any bytes
    /// after the last sample are ignored. An invalid header makes the cursor
    /// empty with [`ChunkIter::err`] set.
    pub fn new(bytes: B) -> Self {
        let (total, state, err) = match Header::parse(bytes.as_ref()) {
            Ok(h) => {
                let state = match h.encoding {
                    Encoding::Xor => DecoderState::Xor(xor::Decoder::new()),
                    Encoding::Adaptive => DecoderState::Adaptive(adaptive::Decoder::new()),
                    Encoding::Packed => DecoderState::Packed(packed::Decoder::new()),
                };
                (h.num_samples, state, None)
            }
            Err(e) => (0, DecoderState::Xor(xor::Decoder::new()), Some(e)),
        };
        ChunkIter {
            tail: Tail::new(bytes.as_ref()),
            data: bytes,
            cursor: Cursor::at(HEADER_LEN),
            total,
            decoded: 0,
            state,
            batch: [(0, 0); BATCH],
            len: 0,
            idx: 0,
            pending: None,
            err,
        }
    }

    /// Number of samples the header announces.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    /// The underlying chunk bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.as_ref()
    }

    /// Advances to the next sample; false at the end or on corrupt data.
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> bool {
        if self.idx < self.len {
            self.idx += 1;
            return true;
        }
        self.next_batch()
    }

    #[inline(never)]
    fn next_batch(&mut self) -> bool {
        if self.decoded >= self.total {
            if self.pending.is_some() {
                self.err = self.pending.take();
            }
            return false;
        }
        let want = BATCH.min(usize::from(self.total - self.decoded));
        let mut r = BitReader::resume(self.data.as_ref(), &self.tail, self.cursor);
        let out = &mut self.batch[..want];
        let (n, fault) = match &mut self.state {
            DecoderState::Adaptive(d) => d.decode(&mut r, self.decoded, out),
            DecoderState::Xor(d) => d.decode(&mut r, self.decoded, out),
            DecoderState::Packed(d) => d.decode(&mut r, self.decoded, out),
        };
        self.cursor = r.cursor();
        // n <= want <= total - decoded.
        self.decoded += n as u16;
        if let Some(f) = fault {
            self.pending = Some(f.at(self.decoded, r.byte_offset()));
            self.total = self.decoded;
        }
        if n == 0 {
            // Keep the previous batch so `at` stays the last sample.
            self.err = self.pending.take();
            return false;
        }
        self.len = n;
        self.idx = 1;
        true
    }

    /// The current sample.
    #[inline]
    pub fn at(&self) -> (i64, f64) {
        // Before the first `next` this is an unspecified entry.
        let (t, v) = self.batch[self.idx.wrapping_sub(1) % BATCH];
        (t, f64::from_bits(v))
    }

    /// Timestamp of the current sample.
    #[inline]
    pub fn at_t(&self) -> i64 {
        self.batch[self.idx.wrapping_sub(1) % BATCH].0
    }

    /// Advances to the first sample with timestamp `>= t` and returns true,
    /// or returns false if there is none. Stays put if the current sample
    /// already qualifies; never moves backwards.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.err.is_some() || (self.idx == 0 && !self.next()) {
            return false;
        }
        while self.at_t() < t {
            if !self.next() {
                return false;
            }
        }
        true
    }

    /// Timestamp of the current sample, `None` before the first `next`.
    #[cfg(test)]
    fn at_t_checked(&self) -> Option<i64> {
        (self.idx > 0).then(|| self.at_t())
    }

    /// The error that ended iteration, if the data was corrupt.
    pub fn err(&self) -> Option<ChunkError> {
        self.err
    }
}

/// Decodes every sample of a chunk.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    let mut it = ChunkIter::new(bytes);
    let mut out = Vec::with_capacity(usize::from(it.num_samples()).min(bytes.len() * 8));
    while it.next() {
        out.push(it.at());
    }
    match it.err() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
