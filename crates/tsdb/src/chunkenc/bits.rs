//! MSB-first bit streams shared by every encoding.
//!
//! Both sides move 64-bit words instead of single bits:
//!
//! * [`BitWriter`] keeps the bits of the unfinished bytes in a register and
//!   stores the whole word after each write (one unaligned 8-byte store, no
//!   load: re-reading bytes just stored at a different offset would defeat
//!   store forwarding). At least eight zero bytes of slack follow the
//!   written bits, so the store needs no bounds-dependent path.
//!   [`BitWriter::bytes`] is always the exact chunk, so a chunk that is
//!   still being appended to can be read or copied at any time.
//! * [`BitReader`] holds up to 64 buffered bits, left aligned, and refills
//!   them with one 8-byte load ("Reading bits in far too many ways",
//!   F. Giesen, 2018, variant 4). Near the end of the input it falls back to
//!   byte loads. Every read is bounds checked and reports running out of
//!   input as [`Truncated`], never by panicking: the bytes may be garbage.
//!   Its position is a plain [`Cursor`] so an iterator can keep it between
//!   batches while the reader itself lives in registers during one.

/// The input ended before the bits a read asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

/// Appends bits most significant first to a byte vector.
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    /// Complete bytes, then the unfinished byte (as stored with the last
    /// word), then zeros; at least [`SLACK`] bytes past `pos`.
    /// A boxed slice: its length is its capacity (the whole buffer is
    /// writable), so it needs no capacity of its own (8 bytes less in every
    /// open head chunk).
    buf: Box<[u8]>,
    /// Index of the first byte not yet complete (chunks are far below 4
    /// GiB: 65,535 samples of at most 129 bits).
    pos: u32,
    /// The bits of the unfinished byte, left aligned; the rest is zero.
    acc: u64,
    /// Number of valid bits in `acc` (`0..8` between writes).
    acc_bits: u32,
}

/// Bytes kept writable after the written bits.
const SLACK: usize = 8;

/// The size a full buffer of `len` bytes grows to: by half, not double (a
/// head chunk that outgrows its estimate is usually only a little longer,
/// and every open chunk's spare bytes are resident memory).
fn grown(len: usize) -> usize {
    len + len / 2
}

impl BitWriter {
    /// A writer whose stream starts with `header` (byte aligned).
    pub(crate) fn with_header(header: &[u8], capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(header.len()) + SLACK);
        buf.extend_from_slice(header);
        // The whole capacity is writable from the start: the write path
        // grows the buffer only once it is full.
        buf.resize(buf.capacity(), 0);
        BitWriter {
            buf: buf.into_boxed_slice(),
            pos: header.len() as u32,
            acc: 0,
            acc_bits: 0,
        }
    }

    /// Number of bits written so far, header included.
    #[inline]
    pub(crate) fn bit_len(&self) -> usize {
        self.pos as usize * 8 + self.acc_bits as usize
    }

    /// The bytes written so far; a partial last byte is padded with zeros.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.bit_len().div_ceil(8)]
    }

    /// Overwrites bytes of the (byte aligned, complete) header written at
    /// construction.
    #[inline]
    pub(crate) fn set_header(&mut self, at: usize, bytes: &[u8]) {
        self.buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// The bytes written so far and at least [`SLACK`] bytes after them
    /// (zeros past the written bits), so that an 8-byte load at any
    /// written bit stays inside.
    #[inline]
    pub(crate) fn padded(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the writer, returning exactly [`BitWriter::bytes`] (in a
    /// vector that may have spare capacity: chunks are written out and
    /// dropped, so shrinking would be a reallocation for nothing).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        let len = self.bit_len().div_ceil(8);
        let mut buf = self.buf.into_vec();
        buf.truncate(len);
        buf
    }

    /// Drops every bit from bit `bits` on (`bits` must not cut into the
    /// header), so the stream can be rewritten from there.
    pub(crate) fn truncate(&mut self, bits: usize) {
        debug_assert!(bits <= self.bit_len());
        let end = self.bit_len().div_ceil(8);
        let pos = bits >> 3;
        let keep = (bits & 7) as u32;
        let byte = if keep == 0 {
            0
        } else {
            self.buf[pos] & (0xffu8 << (8 - keep))
        };
        // Bytes past the written bits must be zero for the next store.
        self.buf[pos..end.max(pos + 1)].fill(0);
        self.buf[pos] = byte;
        self.pos = pos as u32;
        self.acc = u64::from(byte) << 56;
        self.acc_bits = keep;
    }

    /// Writes the low `n` bits of `v`, `1 <= n <= 56`. Higher bits of `v`
    /// are ignored.
    #[inline(always)]
    pub(crate) fn write(&mut self, v: u64, n: u32) {
        debug_assert!((1..=56).contains(&n));
        // acc_bits + n <= 63, so the shift is in range and nothing is lost.
        self.acc |= (v << (64 - n)) >> self.acc_bits;
        self.acc_bits += n;
        let word = self.acc.to_be_bytes();
        let pos = self.pos as usize;
        match self.buf.get_mut(pos..pos + 8) {
            Some(slot) => slot.copy_from_slice(&word),
            None => self.grow_and_store(word),
        }
        // acc_bits <= 63, so at most 7 complete bytes and a shift <= 56.
        let full = self.acc_bits >> 3;
        self.pos += full;
        self.acc <<= full * 8;
        self.acc_bits &= 7;
    }

    /// Writes the low `n` bits of `v` for any `0 <= n <= 64`.
    #[inline(always)]
    pub(crate) fn write_long(&mut self, v: u64, n: u32) {
        if n > 56 {
            self.write(v >> 32, n - 32);
            self.write(v, 32);
        } else if n > 0 {
            self.write(v, n);
        }
    }

    /// Writes each of `values`, which fit `n` bits, in `n` bits
    /// (`1 <= n <= 63`): one check for room for them all, then the values
    /// are gathered into 64-bit words in a register, each word stored once
    /// it is full.
    #[inline(always)]
    pub(crate) fn write_words(&mut self, values: &[u64], n: u32) {
        debug_assert!((1..=63).contains(&n));
        debug_assert!(values.iter().all(|&v| v >> n == 0));
        // Full words, then the unfinished one.
        let words = (self.acc_bits as usize + values.len() * n as usize) / 64 + 1;
        let end = self.pos as usize + 8 * words + SLACK;
        if end > self.buf.len() {
            self.move_to(end.max(grown(self.buf.len())));
        }
        // `acc` holds `bits` bits (at most 64) left aligned: the bytes from
        // `pos` on, the unfinished byte first. Full words go to `slots`.
        let (mut acc, mut bits, pos) = (self.acc, self.acc_bits, self.pos as usize);
        let (slots, _) = self.buf[pos..].as_chunks_mut::<8>();
        let mut stored = 0;
        let mut store = |word: u64| {
            // There is room (see above): the check never fails.
            if let Some(slot) = slots.get_mut(stored) {
                *slot = word.to_be_bytes();
            }
            stored += 1;
        };
        for &v in values {
            let total = bits + n;
            if total <= 64 {
                // total >= n >= 1.
                acc |= v << (64 - total);
                bits = total;
            } else {
                // 1 <= rest <= n <= 63 bits of `v` are left over.
                let rest = total - 64;
                store(acc | (v >> rest));
                acc = v << (64 - rest);
                bits = rest;
            }
        }
        if bits == 64 {
            store(acc);
            (acc, bits) = (0, 0);
        }
        // The unfinished word, with zeros after it as the writer keeps
        // (not counted: its bytes are not complete).
        store(acc);
        stored -= 1;
        debug_assert!(stored < words, "room for every word was made above");
        let full = bits >> 3;
        self.pos = (pos + 8 * stored + full as usize) as u32;
        // full <= 7, so the shift is in range.
        self.acc = acc << (full * 8);
        self.acc_bits = bits & 7;
    }

    /// Writes a single bit.
    #[inline(always)]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write(u64::from(bit), 1);
    }

    /// Writes whole bytes; used by the byte-oriented varints of the classic
    /// encoding.
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write(u64::from(b), 8);
        }
    }

    /// Makes room for `len` bytes of stream in all (plus the slack)
    /// without growing again; never shrinks.
    pub(crate) fn reserve_total(&mut self, len: usize) {
        let want = len + SLACK;
        if want > self.buf.len() {
            self.move_to(want);
        }
    }

    /// Moves the stream to a zeroed buffer of `len` bytes: a fresh
    /// allocation and a copy of the written bytes cost about half of what
    /// `realloc` took for these small buffers.
    fn move_to(&mut self, len: usize) {
        let used = (self.pos as usize + SLACK).min(self.buf.len());
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&self.buf[..used]);
        buf.resize(buf.capacity(), 0);
        self.buf = buf.into_boxed_slice();
    }

    #[cold]
    #[inline(never)]
    fn grow_and_store(&mut self, word: [u8; 8]) {
        // Amortised growth (see `grown`); new bytes are zero as the write
        // path needs.
        let pos = self.pos as usize;
        let want = (pos + SLACK).max(grown(self.buf.len()));
        self.move_to(want);
        self.buf[pos..pos + 8].copy_from_slice(&word);
    }
}

/// Where a [`BitReader`] stands; kept by iterators between batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    /// Next chunk byte not yet (fully) loaded into `buf`.
    pos: usize,
    buf: u64,
    avail: u32,
}

impl Cursor {
    /// A cursor at chunk byte `pos`.
    pub(crate) fn at(pos: usize) -> Self {
        Cursor {
            pos,
            buf: 0,
            avail: 0,
        }
    }
}

/// Real bytes copied into a [`Tail`].
const TAIL_BYTES: usize = 16;

/// A copy of the last bytes of a chunk followed by zeros, so that readers
/// can load whole words up to the very end without a byte-wise slow path.
/// Kept by the iterator; the reader switches to it when fewer than 8 bytes
/// of the chunk are left and then checks that it never consumed padding
/// ([`BitReader::overrun`]).
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    bytes: [u8; TAIL_BYTES + 8],
    /// Chunk offset of `bytes[0]`.
    start: usize,
}

impl Tail {
    pub(crate) fn new(chunk: &[u8]) -> Self {
        let start = chunk.len().saturating_sub(TAIL_BYTES);
        let mut bytes = [0; TAIL_BYTES + 8];
        bytes[..chunk.len() - start].copy_from_slice(&chunk[start..]);
        Tail { bytes, start }
    }
}

/// Reads bits most significant first from a chunk, never past its end.
///
/// Fields are visible to the codecs' hand-written fast paths, which keep
/// them in locals and refill with [`refill_fast`].
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    /// The bytes being read: the chunk, or its [`Tail`] near the end.
    pub(super) data: &'a [u8],
    /// Next byte of `data` not yet (fully) loaded into `buf`.
    pub(super) pos: usize,
    /// Buffered bits, left aligned. Bits below the top `avail` are either
    /// zero or the true next bits of `data`, so refilling may OR the same
    /// bytes in again.
    pub(super) buf: u64,
    /// Number of valid bits at the top of `buf` (at most 63).
    pub(super) avail: u32,
    /// Number of real (not padding) bits in `data`.
    pub(super) limit: usize,
    /// Chunk offset of `data[0]`.
    base: usize,
    /// The tail to switch to, while `data` is still the chunk.
    tail: Option<&'a Tail>,
    chunk_len: usize,
}

impl<'a> BitReader<'a> {
    /// A reader over `chunk` continuing at `cursor`; `tail` must be
    /// `Tail::new(chunk)`.
    #[inline(always)]
    pub(crate) fn resume(chunk: &'a [u8], tail: &'a Tail, cursor: Cursor) -> Self {
        let mut r = BitReader {
            data: chunk,
            pos: cursor.pos,
            buf: cursor.buf,
            avail: cursor.avail,
            limit: chunk.len() * 8,
            base: 0,
            tail: Some(tail),
            chunk_len: chunk.len(),
        };
        if cursor.pos + 8 > chunk.len() {
            r.switch_to_tail();
        }
        r
    }

    /// Where the reader stands.
    #[inline(always)]
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            pos: self.pos + self.base,
            buf: self.buf,
            avail: self.avail,
        }
    }

    /// Number of bits consumed from `data`.
    #[inline(always)]
    fn consumed(&self) -> usize {
        (self.pos * 8).wrapping_sub(self.avail as usize)
    }

    /// Number of bits consumed from [`BitReader::data`]; what
    /// [`load_at`] takes.
    #[inline(always)]
    pub(crate) fn bit_position(&self) -> usize {
        self.consumed()
    }

    /// Continues reading at bit `bitpos` of [`BitReader::data`], which must
    /// not be past the real bits (`<= limit`).
    #[inline(always)]
    pub(crate) fn set_bit_position(&mut self, bitpos: usize) {
        self.pos = bitpos >> 3;
        self.buf = 0;
        self.avail = 0;
        let skip = (bitpos & 7) as u32;
        if skip > 0 {
            // The byte holding bit `bitpos` exists, so this loads it.
            self.refill();
            if self.avail >= skip {
                self.consume(skip);
            }
        }
    }

    /// Whether the reader reads the zero-padded tail, where it must check
    /// for [`BitReader::overrun`].
    #[inline(always)]
    pub(crate) fn in_tail(&self) -> bool {
        self.base > 0 || self.tail.is_none()
    }

    /// Whether the reader consumed padding after the end of the chunk: the
    /// chunk is truncated. Checked after each sample.
    #[inline(always)]
    pub(crate) fn overrun(&self) -> bool {
        self.consumed() > self.limit
    }

    /// `res`, the result of decoding one sample, unless the sample read
    /// padding past the end of the chunk: then the chunk is truncated.
    #[inline(always)]
    pub(crate) fn unless_overrun<T>(
        &self,
        res: Result<T, super::Fault>,
    ) -> Result<T, super::Fault> {
        match res {
            Ok(_) if self.overrun() => Err(super::Fault::Truncated(Truncated)),
            other => other,
        }
    }

    /// Chunk byte offset of the next unread bit (for error reports).
    pub(crate) fn byte_offset(&self) -> usize {
        (self.base + self.consumed() / 8).min(self.chunk_len)
    }

    #[cold]
    #[inline(never)]
    fn switch_to_tail(&mut self) {
        if let Some(tail) = self.tail.take() {
            self.data = &tail.bytes;
            self.base = tail.start;
            self.pos -= tail.start;
            self.limit = (self.chunk_len - tail.start) * 8;
        }
    }

    /// Tops the buffer up to at least 56 valid bits unless the input ended.
    /// Cheap enough to call unconditionally before each group of reads
    /// (one load, no data-dependent branch), which keeps branch predictors
    /// out of the decoding loop.
    #[inline(always)]
    pub(crate) fn refill(&mut self) {
        if !refill_fast(self.data, &mut self.pos, &mut self.buf, &mut self.avail) {
            self.switch_to_tail();
            // Past the tail's padding nothing real is left: reads fail.
            refill_fast(self.data, &mut self.pos, &mut self.buf, &mut self.avail);
        }
    }

    /// Ensures at least `n <= 56` valid bits are buffered.
    #[inline(always)]
    pub(crate) fn ensure(&mut self, n: u32) -> Result<(), Truncated> {
        if self.avail < n {
            self.refill();
            if self.avail < n {
                return Err(Truncated);
            }
        }
        Ok(())
    }

    /// Number of valid buffered bits.
    #[inline(always)]
    pub(crate) fn avail(&self) -> u32 {
        self.avail
    }

    /// The buffered bits, left aligned. Only the top [`BitReader::avail`]
    /// bits are meaningful; the rest are zero or later stream bits.
    #[inline(always)]
    pub(crate) fn peek_word(&self) -> u64 {
        self.buf
    }

    /// Drops `n <= avail` buffered bits.
    #[inline(always)]
    pub(crate) fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.avail);
        // avail <= 63, so n < 64.
        self.buf <<= n & 63;
        self.avail -= n;
    }

    /// Reads `1 <= n <= 56` bits.
    #[inline(always)]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64, Truncated> {
        debug_assert!((1..=56).contains(&n));
        self.ensure(n)?;
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.avail -= n;
        Ok(v)
    }

    /// Reads `0 <= n <= 64` bits.
    #[inline(always)]
    pub(crate) fn read_long(&mut self, n: u32) -> Result<u64, Truncated> {
        if n > 32 {
            let hi = self.read(n - 32)?;
            let lo = self.read(32)?;
            Ok((hi << 32) | lo)
        } else if n > 0 {
            self.read(n)
        } else {
            Ok(0)
        }
    }

    /// Reads one bit.
    #[inline(always)]
    pub(crate) fn read_bit(&mut self) -> Result<bool, Truncated> {
        Ok(self.read(1)? != 0)
    }
}

/// The 64 bits of `data` starting at bit `bitpos`, of which at least the
/// top 57 are real data (the rest zero); `None` if fewer than 8 bytes are
/// left from byte `bitpos / 8`.
#[inline(always)]
pub(crate) fn load_at(data: &[u8], bitpos: usize) -> Option<u64> {
    let i = bitpos >> 3;
    let chunk = data.get(i..i + 8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    Some(u64::from_be_bytes(word) << (bitpos & 7))
}

/// The refill of a fast path working on a reader's fields: tops `buf` up to
/// at least 56 valid bits with one load, or returns false (changing
/// nothing) when fewer than 8 bytes are left. `avail <= 63` always holds:
/// only this function adds bits, and it leaves at most 63.
#[inline(always)]
pub(crate) fn refill_fast(data: &[u8], pos: &mut usize, buf: &mut u64, avail: &mut u32) -> bool {
    let Some(chunk) = data.get(*pos..*pos + 8) else {
        return false;
    };
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    *buf |= u64::from_be_bytes(word) >> (*avail & 63);
    *pos += ((63 - (*avail & 63)) >> 3) as usize;
    *avail |= 56;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `chunk` from byte `start` with refills after every read.
    fn reader(chunk: &[u8], start: usize) -> (Tail, Cursor) {
        (Tail::new(chunk), Cursor::at(start))
    }

    #[test]
    fn writer_reader_round_trip_all_widths() {
        let mut w = BitWriter::with_header(&[0xAB], 0);
        let mut expect = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..2000u32 {
            x = x.rotate_left(7).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let n = i % 65;
            let v = if n == 64 { x } else { x & ((1u64 << n) - 1) };
            w.write_long(v, n);
            expect.push((v, n));
            // The bytes are complete after every write.
            assert_eq!(w.bytes().len(), w.bit_len().div_ceil(8));
        }
        let total = w.bit_len();
        let bytes = w.bytes().to_vec();
        assert_eq!(bytes[0], 0xAB);
        assert_eq!(w.into_bytes(), bytes);
        let (tail, cursor) = reader(&bytes, 1);
        let mut r = BitReader::resume(&bytes, &tail, cursor);
        for (v, n) in expect {
            assert_eq!(r.read_long(n), Ok(v), "width {n}");
            assert!(!r.overrun());
        }
        // Only the zero padding of the last byte is left.
        let pad = (bytes.len() * 8 - total) as u32;
        if pad > 0 {
            assert_eq!(r.read(pad), Ok(0));
        }
        assert!(!r.overrun());
        // Reading on consumes the tail's padding, which counts as overrun.
        if r.read(1).is_ok() {
            assert!(r.overrun());
        }
    }

    #[test]
    fn reader_reports_truncation_instead_of_panicking() {
        let bytes = [0xFFu8; 3];
        let (tail, cursor) = reader(&bytes, 0);
        let mut r = BitReader::resume(&bytes, &tail, cursor);
        assert_eq!(r.read(20), Ok(0xFFFFF));
        assert!(!r.overrun());
        assert_eq!(r.read(4), Ok(0xF));
        assert!(!r.overrun());
        assert_eq!(r.byte_offset(), 3);
        let _ = r.read_long(64);
        assert!(r.overrun());
        let (tail, cursor) = reader(&[], 0);
        let mut r = BitReader::resume(&[], &tail, cursor);
        assert!(r.read_bit().is_err() || r.overrun());
        // Far past the end of a short chunk reads fail outright.
        for _ in 0..10 {
            let _ = r.read_long(64);
        }
        assert_eq!(r.read_long(64), Err(Truncated));
    }

    #[test]
    fn reads_across_the_switch_to_the_tail() {
        // Odd widths with refills in between, so the switch from the chunk
        // to its tail happens at every bit alignment.
        let bytes: Vec<u8> = (1..=40u8).map(|b| b.wrapping_mul(37)).collect();
        for len in 0..bytes.len() {
            for width in [1u32, 3, 7, 8, 13] {
                let data = &bytes[..len];
                let (tail, cursor) = reader(data, 0);
                let mut r = BitReader::resume(data, &tail, cursor);
                let mut w = BitWriter::with_header(&[], 0);
                let mut bits = 0;
                while bits + width as usize <= len * 8 {
                    w.write(r.read(width).unwrap(), width);
                    assert!(!r.overrun());
                    bits += width as usize;
                    r.refill();
                    // Suspend and resume like an iterator between batches.
                    let c = r.cursor();
                    r = BitReader::resume(data, &tail, c);
                }
                assert!(r.read(width).is_err() || r.overrun());
                assert_eq!(w.bytes()[..bits / 8], data[..bits / 8]);
            }
        }
    }
}
