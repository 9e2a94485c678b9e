//! Sequential replay of segments.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::frame::{Header, HEADER_LEN};
use super::segment::{segment_path, segments};
use super::{CorruptionReason, WalError};

/// Initial size of the read buffer. Segments are read in chunks of this
/// size; the buffer grows (doubling) only to hold a larger record.
const READ_BUF_SIZE: usize = 1 << 20;

/// One record read back from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Index of the segment holding the record.
    pub segment: u64,
    /// Byte offset of the record's frame header inside the segment.
    pub offset: u64,
    /// The payload, exactly as passed to [`Wal::log`](super::Wal::log).
    pub data: &'a [u8],
}

/// Reads the records of consecutive segments in order.
///
/// A lending cursor: [`next_record`](Self::next_record) returns a slice into
/// a buffer owned by the reader, valid until the next call, so replay does
/// no allocation per record. Copy the bytes (or decode them) before
/// advancing.
///
/// The first error ends the iteration: after it, `next_record` returns
/// `None`. Damage is reported as [`WalError::Corruption`] with the segment
/// and offset of the first bad frame; every record returned before it is
/// intact (checksummed). Arbitrary bytes never cause a panic, and a garbage
/// length field never makes the reader allocate more than about twice the
/// bytes actually present in the segment.
///
/// Segments are expected to be contiguous; a hole is reported as
/// [`CorruptionReason::MissingSegment`] at the first missing index.
///
/// Read closed segments (or call [`Wal::sync`](super::Wal::sync) first): the
/// tail of the segment a writer is appending to may hold a half-written
/// frame, which reads as corruption.
pub struct WalReader {
    dir: PathBuf,
    /// Segment files present in the wanted range, ascending.
    present: Vec<u64>,
    /// Position in `present` of the next segment to open.
    pos: usize,
    /// Next wanted index and the last one, or `None` when all were opened.
    pending: Option<(u64, u64)>,
    current: Option<SegmentCursor>,
    buf: Vec<u8>,
    done: bool,
}

impl fmt::Debug for WalReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalReader")
            .field("dir", &self.dir)
            .field("segment", &self.current.as_ref().map(|c| c.index))
            .field("pending", &self.pending)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl WalReader {
    /// Reads every segment in `dir`, from the first to the last present.
    /// Also reads a checkpoint directory, which has the same layout.
    pub fn open(dir: &Path) -> Result<Self, WalError> {
        let present = segments(dir)?;
        let pending = present.first().copied().zip(present.last().copied());
        Ok(Self::new(dir, present, pending))
    }

    /// Reads segments `first..=last` of `dir`, e.g. the range a checkpoint
    /// covers, or a single segment for parallel replay. Every segment in
    /// the range must exist; a missing one is reported as
    /// [`CorruptionReason::MissingSegment`] when reached.
    pub fn open_range(dir: &Path, range: RangeInclusive<u64>) -> Result<Self, WalError> {
        let (first, last) = range.into_inner();
        let mut present = segments(dir)?;
        present.retain(|i| (first..=last).contains(i));
        let pending = (first <= last).then_some((first, last));
        Ok(Self::new(dir, present, pending))
    }

    fn new(dir: &Path, present: Vec<u64>, pending: Option<(u64, u64)>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            present,
            pos: 0,
            pending,
            current: None,
            buf: Vec::new(),
            done: false,
        }
    }

    /// Returns the next record, `None` at the end, or the error that ended
    /// the iteration.
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, WalError>> {
        match self.advance() {
            Ok(Some((segment, offset, range))) => Some(Ok(Record {
                segment,
                offset,
                data: self.buf.get(range).unwrap_or_default(),
            })),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                self.current = None;
                Some(Err(e))
            }
        }
    }

    /// Calls `f` with every record until the end of the log or the first
    /// error, which is returned.
    pub fn for_each_record(mut self, mut f: impl FnMut(Record<'_>)) -> Result<(), WalError> {
        while let Some(record) = self.next_record() {
            f(record?);
        }
        Ok(())
    }

    /// Finds the next frame without borrowing the buffer, so the borrow
    /// handed out by `next_record` is taken once, outside the loop.
    fn advance(&mut self) -> Result<Option<(u64, u64, Range<usize>)>, WalError> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(cursor) = &mut self.current {
                match cursor.next_frame(&mut self.buf)? {
                    Some((offset, range)) => return Ok(Some((cursor.index, offset, range))),
                    None => self.current = None,
                }
            }
            let Some((index, last)) = self.pending else {
                self.done = true;
                return Ok(None);
            };
            self.pending = (index < last).then(|| (index + 1, last));
            if self.present.get(self.pos) != Some(&index) {
                return Err(missing(index));
            }
            self.pos += 1;
            let path = segment_path(&self.dir, index);
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(index)),
                Err(e) => return Err(io_err("open segment", path)(e)),
            };
            if self.buf.len() < READ_BUF_SIZE {
                self.buf.resize(READ_BUF_SIZE, 0);
            }
            self.current = Some(SegmentCursor {
                index,
                path,
                file,
                base: 0,
                start: 0,
                end: 0,
                eof: false,
            });
        }
    }
}

fn missing(segment: u64) -> WalError {
    WalError::Corruption {
        segment,
        offset: 0,
        reason: CorruptionReason::MissingSegment,
    }
}

/// Reading position in one segment. The bytes `buf[start..end]` are the
/// file's bytes at `base + start ..`.
struct SegmentCursor {
    index: u64,
    path: PathBuf,
    file: File,
    base: u64,
    start: usize,
    end: usize,
    eof: bool,
}

impl SegmentCursor {
    fn corruption(&self, offset: u64, reason: CorruptionReason) -> WalError {
        WalError::Corruption {
            segment: self.index,
            offset,
            reason,
        }
    }

    /// Decodes the next frame. Returns its offset and the payload's range
    /// in `buf`, or `None` at a clean end of the segment.
    fn next_frame(&mut self, buf: &mut Vec<u8>) -> Result<Option<(u64, Range<usize>)>, WalError> {
        let offset = self.base + self.start as u64;
        if !self.fill(buf, HEADER_LEN)? {
            if self.start == self.end {
                return Ok(None);
            }
            return Err(self.corruption(offset, CorruptionReason::TruncatedHeader));
        }
        let mut raw = [0u8; HEADER_LEN];
        raw.copy_from_slice(&buf[self.start..self.start + HEADER_LEN]);
        let header = Header::decode(raw).map_err(|r| self.corruption(offset, r))?;
        let frame_len = usize::try_from(header.len)
            .ok()
            .and_then(|len| len.checked_add(HEADER_LEN))
            .ok_or_else(|| self.corruption(offset, CorruptionReason::TruncatedPayload))?;
        if !self.fill(buf, frame_len)? {
            return Err(self.corruption(offset, CorruptionReason::TruncatedPayload));
        }
        let payload = self.start + HEADER_LEN..self.start + frame_len;
        header
            .verify(&buf[payload.clone()])
            .map_err(|r| self.corruption(offset, r))?;
        self.start += frame_len;
        Ok(Some((offset, payload)))
    }

    /// Makes at least `need` unread bytes available in `buf[start..end]`.
    /// Returns `false` if the segment ends first. May move the unread bytes
    /// to the front of the buffer (`base + start` is unchanged) and grows the buffer by doubling, so memory follows the
    /// bytes actually read rather than a possibly corrupt length.
    fn fill(&mut self, buf: &mut Vec<u8>, need: usize) -> Result<bool, WalError> {
        while self.end - self.start < need {
            if self.eof {
                return Ok(false);
            }
            if self.start > 0 {
                buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.base += self.start as u64;
                self.start = 0;
            }
            if self.end == buf.len() {
                let grown = need.min(buf.len().saturating_mul(2)).max(buf.len() + 1);
                buf.resize(grown, 0);
            }
            match self.file.read(&mut buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("read segment", &self.path)(e)),
            }
        }
        Ok(true)
    }
}
