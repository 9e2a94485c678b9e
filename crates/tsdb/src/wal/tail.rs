//! Following the log while it is written, for readers outside the head
//! (the remote-write queues), and holding segments they still need.
//!
//! Two pieces, after Prometheus's `wlog/watcher.go` but with one
//! difference: Prometheus's watcher never stops truncation, so a receiver
//! outage longer than the head's compaction cycle loses data. Here a reader
//! takes a [`SegmentHold`] on the oldest segment it still needs, and
//! [`Wal::truncate_before`] (called by checkpoints) never deletes it or any
//! later segment.
//!
//! - [`WalTail`] reads frames from a position (segment, byte offset) on.
//!   At the end of the newest segment it reports "nothing more for now"
//!   rather than corruption: the writer may be in the middle of a frame.
//!   Once a later segment exists the earlier one is complete (the writer
//!   flushes and fsyncs a segment before creating the next), so a partial or
//!   bad frame there is real damage: the rest of that segment is skipped and
//!   counted ([`WalTail::skipped`]). A missing segment (deleted before the
//!   reader held it) is skipped the same way.
//! - [`SegmentHold`] is a low-water mark: `Wal::hold_segments(n)` keeps
//!   segments `n..` on disk until the hold is moved forward or dropped.
//!   While a hold lags behind a checkpoint, the head's checkpoint also keeps
//!   the series records of series it has dropped, because samples in the
//!   held segments may still refer to them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::io_err;
use super::frame::{Header, HEADER_LEN};
use super::segment::{segment_path, segments};
use super::{Wal, WalError};

/// A place in the log: the next frame starts at byte `offset` of segment
/// `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WalPosition {
    /// Segment index.
    pub segment: u64,
    /// Byte offset of the next frame in that segment.
    pub offset: u64,
}

/// The low-water marks of a WAL's readers.
#[derive(Debug, Default)]
pub(crate) struct SegmentHolds {
    marks: Mutex<BTreeMap<u64, u64>>,
    next_id: AtomicU64,
}

impl SegmentHolds {
    /// The lowest held segment, if any reader holds one.
    pub(crate) fn low_water(&self) -> Option<u64> {
        self.marks.lock().values().min().copied()
    }
}

/// Keeps WAL segments from a given index on from being deleted. Dropping
/// the hold releases them.
#[derive(Debug)]
pub struct SegmentHold {
    holds: Arc<SegmentHolds>,
    id: u64,
}

impl SegmentHold {
    /// Moves the mark: segments `segment..` are kept from now on.
    pub fn set(&self, segment: u64) {
        self.holds.marks.lock().insert(self.id, segment);
    }

    /// The segment the hold keeps from.
    pub fn segment(&self) -> u64 {
        self.holds.marks.lock().get(&self.id).copied().unwrap_or(0)
    }
}

impl Drop for SegmentHold {
    fn drop(&mut self) {
        self.holds.marks.lock().remove(&self.id);
    }
}

impl Wal {
    /// Keeps segments `segment..` on disk until the returned hold moves or
    /// is dropped. Segments already deleted are not brought back: a reader
    /// registers its hold first, then checks what exists.
    pub fn hold_segments(&self, segment: u64) -> SegmentHold {
        let id = self.holds.next_id.fetch_add(1, Ordering::Relaxed);
        self.holds.marks.lock().insert(id, segment);
        SegmentHold {
            holds: Arc::clone(&self.holds),
            id,
        }
    }

    /// The lowest segment a [`SegmentHold`] keeps, if any.
    pub fn held_from(&self) -> Option<u64> {
        self.holds.low_water()
    }
}

/// One record read by [`WalTail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailRecord<'a> {
    /// Where the record's frame starts.
    pub at: WalPosition,
    /// Where the next frame starts.
    pub next: WalPosition,
    /// The payload.
    pub data: &'a [u8],
}

/// Reads the WAL in `dir` from a position on, following appends.
///
/// A lending cursor like [`WalReader`](super::WalReader): the payload
/// borrows the tail's buffer until the next call. Not tied to the writer:
/// it only reads files, so it can run on any thread.
pub struct WalTail {
    dir: PathBuf,
    pos: WalPosition,
    file: Option<File>,
    /// Unread bytes: `buf[start..end]` are the segment's bytes from
    /// `pos.offset`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    skipped: u64,
}

impl std::fmt::Debug for WalTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalTail")
            .field("dir", &self.dir)
            .field("pos", &self.pos)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

const TAIL_READ: usize = 256 * 1024;

impl WalTail {
    /// A tail of the WAL in `dir` that starts at `pos`.
    pub fn new(dir: &Path, pos: WalPosition) -> Self {
        Self {
            dir: dir.to_path_buf(),
            pos,
            file: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
            skipped: 0,
        }
    }

    /// Where the next record starts.
    pub fn position(&self) -> WalPosition {
        self.pos
    }

    /// How many times damage or a missing segment made the tail skip ahead.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next record, or `None` when the reader has caught up with the
    /// writer (call again later). IO errors other than a missing segment
    /// are returned; the position is unchanged by them.
    pub fn next_record(&mut self) -> Result<Option<TailRecord<'_>>, WalError> {
        loop {
            if self.file.is_none() && !self.open_current()? {
                return Ok(None);
            }
            match self.frame()? {
                Frame::Complete(len) => {
                    let at = self.pos;
                    let payload = self.start + HEADER_LEN..self.start + len;
                    self.start += len;
                    self.pos.offset += len as u64;
                    return Ok(Some(TailRecord {
                        at,
                        next: self.pos,
                        data: &self.buf[payload],
                    }));
                }
                Frame::Incomplete { damaged } => {
                    // Only a later segment proves this one is finished.
                    let later = segments(&self.dir)?
                        .into_iter()
                        .find(|&s| s > self.pos.segment);
                    let Some(next) = later else {
                        return Ok(None);
                    };
                    // Bytes may have landed between the read and the listing.
                    if !damaged && self.read_more()? {
                        continue;
                    }
                    if damaged || self.end > self.start {
                        self.skipped += 1;
                        tracing::warn!(segment = self.pos.segment, offset = self.pos.offset,
                            dir = %self.dir.display(), "wal tail: damaged frame; skipping the rest of the segment");
                    }
                    self.move_to(next);
                }
            }
        }
    }

    fn move_to(&mut self, segment: u64) {
        self.pos = WalPosition { segment, offset: 0 };
        self.file = None;
        self.start = 0;
        self.end = 0;
    }

    /// Opens the segment at the position. Returns `false` when it does not
    /// exist yet; a missing segment with later ones present is skipped.
    fn open_current(&mut self) -> Result<bool, WalError> {
        loop {
            let path = segment_path(&self.dir, self.pos.segment);
            match File::open(&path) {
                Ok(mut file) => {
                    let len = file
                        .metadata()
                        .map_err(io_err("stat segment", &path))?
                        .len();
                    if self.pos.offset > len {
                        // A repair cut this segment shorter than where the
                        // reader was: what followed is gone.
                        self.skipped += 1;
                        self.pos.offset = len;
                    }
                    file.seek(SeekFrom::Start(self.pos.offset))
                        .map_err(io_err("seek segment", &path))?;
                    self.file = Some(file);
                    self.start = 0;
                    self.end = 0;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let present = segments(&self.dir)?;
                    match present.iter().find(|&&s| s > self.pos.segment) {
                        Some(&next) => {
                            // Deleted before the reader held it: lost.
                            self.skipped += 1;
                            self.move_to(next);
                        }
                        None => return Ok(false),
                    }
                }
                Err(e) => return Err(io_err("open segment", path)(e)),
            }
        }
    }

    /// Decodes the frame at the position, reading as needed.
    fn frame(&mut self) -> Result<Frame, WalError> {
        if !self.fill(HEADER_LEN)? {
            return Ok(Frame::Incomplete { damaged: false });
        }
        let mut raw = [0u8; HEADER_LEN];
        raw.copy_from_slice(&self.buf[self.start..self.start + HEADER_LEN]);
        let Ok(header) = Header::decode(raw) else {
            return Ok(Frame::Incomplete { damaged: true });
        };
        let Some(len) = usize::try_from(header.len)
            .ok()
            .and_then(|l| l.checked_add(HEADER_LEN))
        else {
            return Ok(Frame::Incomplete { damaged: true });
        };
        if !self.fill(len)? {
            return Ok(Frame::Incomplete { damaged: false });
        }
        if header
            .verify(&self.buf[self.start + HEADER_LEN..self.start + len])
            .is_err()
        {
            return Ok(Frame::Incomplete { damaged: true });
        }
        Ok(Frame::Complete(len))
    }

    /// Makes `need` unread bytes available if the file has them.
    fn fill(&mut self, need: usize) -> Result<bool, WalError> {
        while self.end - self.start < need {
            if !self.read_more()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads more of the segment into the buffer. `false` at the end of
    /// what the file holds now.
    fn read_more(&mut self) -> Result<bool, WalError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < TAIL_READ {
            self.buf.resize(self.end + TAIL_READ, 0);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        loop {
            match file.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io_err(
                        "read segment",
                        segment_path(&self.dir, self.pos.segment),
                    )(e))
                }
            }
        }
    }
}

enum Frame {
    /// A whole, checksummed frame of this many bytes (header included).
    Complete(usize),
    /// No whole frame yet; `damaged` when what is there cannot become one.
    Incomplete { damaged: bool },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::WalOptions;

    fn collect(tail: &mut WalTail) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = tail.next_record().unwrap() {
            out.push(r.data.to_vec());
        }
        out
    }

    #[test]
    fn follows_appends_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default().with_segment_size(64)).unwrap();
        let mut tail = WalTail::new(dir.path(), WalPosition::default());
        assert!(collect(&mut tail).is_empty());
        wal.log(&[b"one".as_slice(), b"two"]).unwrap();
        assert_eq!(collect(&mut tail), vec![b"one".to_vec(), b"two".to_vec()]);
        let recs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 10]).collect();
        wal.log(&recs).unwrap();
        assert!(wal.current_segment() > 2);
        assert_eq!(collect(&mut tail), recs);
        // A new tail from a saved position sees only what follows it.
        let saved = tail.position();
        wal.log(&[b"after".as_slice()]).unwrap();
        let mut again = WalTail::new(dir.path(), saved);
        assert_eq!(collect(&mut again), vec![b"after".to_vec()]);
        assert_eq!(tail.skipped(), 0);
    }

    #[test]
    fn partial_frame_at_the_end_waits() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.log(&[b"whole".as_slice()]).unwrap();
        drop(wal);
        // Half a frame: a writer caught mid-write.
        let seg = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        std::fs::write(&seg, &bytes).unwrap();
        let mut tail = WalTail::new(dir.path(), WalPosition::default());
        assert_eq!(collect(&mut tail), vec![b"whole".to_vec()]);
        assert_eq!(tail.skipped(), 0);
        // Once a later segment exists, the bad tail is skipped and counted.
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.log(&[b"next".as_slice()]).unwrap();
        assert_eq!(collect(&mut tail), vec![b"next".to_vec()]);
        assert_eq!(tail.skipped(), 1);
        assert_eq!(tail.position().segment, 1);
    }

    #[test]
    fn missing_segments_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.log(&[b"a".as_slice()]).unwrap();
        wal.cut_segment().unwrap();
        wal.log(&[b"b".as_slice()]).unwrap();
        wal.truncate_before(1).unwrap();
        let mut tail = WalTail::new(dir.path(), WalPosition::default());
        assert_eq!(collect(&mut tail), vec![b"b".to_vec()]);
        assert_eq!(tail.skipped(), 1);
    }

    #[test]
    fn holds_stop_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        for _ in 0..4 {
            wal.log(&[b"x".as_slice()]).unwrap();
            wal.cut_segment().unwrap();
        }
        let hold = wal.hold_segments(1);
        let other = wal.hold_segments(2);
        assert_eq!(wal.held_from(), Some(1));
        wal.truncate_before(4).unwrap();
        assert_eq!(segments(dir.path()).unwrap(), vec![1, 2, 3, 4]);
        hold.set(3);
        assert_eq!(wal.held_from(), Some(2));
        drop(other);
        wal.truncate_before(4).unwrap();
        assert_eq!(segments(dir.path()).unwrap(), vec![3, 4]);
        drop(hold);
        assert_eq!(wal.held_from(), None);
        wal.truncate_before(4).unwrap();
        assert_eq!(segments(dir.path()).unwrap(), vec![4]);
    }
}
