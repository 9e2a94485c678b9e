//! Segment files: naming, listing, and the low-level buffered frame writer
//! shared by [`Wal`](super::Wal) and checkpoints.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::io_err;
use super::frame::{encode_header, HEADER_LEN};
use super::WalError;

/// Size of the in-memory page buffer: frames are gathered here and written
/// with one `write` per page, so a batch of small records costs one syscall.
pub(crate) const PAGE_SIZE: usize = 32 * 1024;

/// The file name of segment `index`: at least 8 zero-padded decimal digits,
/// as in Prometheus (`00000000`, `00000001`, ...).
pub fn segment_name(index: u64) -> String {
    format!("{index:08}")
}

/// The path of segment `index` inside `dir`.
pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(segment_name(index))
}

/// Longest accepted segment name. Indices stay below 10^16, so computing
/// the next index can never overflow, whatever file names a directory holds.
const MAX_NAME_DIGITS: usize = 16;

/// Parses a canonical segment file name. Names that would not be produced
/// by [`segment_name`] (`1`, `000000001`, `00000001.tmp`) are not segments,
/// so no two files can claim the same index.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    if !(8..=MAX_NAME_DIGITS).contains(&name.len()) || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: u64 = name.parse().ok()?;
    (segment_name(index) == name).then_some(index)
}

/// Lists the indices of the segment files in `dir`, ascending.
///
/// Only regular files with canonical names count; checkpoint directories and
/// temporary files are ignored. A missing directory is an error.
pub fn segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(io_err("read directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let Some(index) = entry.file_name().to_str().and_then(parse_segment_name) else {
            continue;
        };
        let file_type = entry.file_type().map_err(io_err("stat", entry.path()))?;
        if file_type.is_file() {
            out.push(index);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Makes directory entry changes (create, rename, unlink) in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir; // Directories cannot be opened for fsync here; renames are durable on NTFS.
    Ok(())
}

/// Total size in bytes of the regular files under `dir`, recursively.
/// Entries deleted while walking are skipped.
pub(crate) fn dir_size(dir: &Path) -> Result<u64, WalError> {
    let mut total = 0u64;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("stat", entry.path())(e)),
        };
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// The segment currently being appended to.
#[derive(Debug)]
struct ActiveSegment {
    index: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Bytes handed to the OS (the file length, since we only append).
    flushed: u64,
}

impl ActiveSegment {
    /// Creates (or truncates) segment `index` and makes its directory entry
    /// durable. Callers only create indices past every existing segment, so
    /// an existing file is a leftover of an earlier failed attempt.
    fn create(dir: &Path, index: u64) -> Result<Self, WalError> {
        let path = segment_path(dir, index);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("create segment", &path))?;
        sync_dir(dir)?;
        Ok(Self {
            index,
            path,
            file: Arc::new(file),
            flushed: 0,
        })
    }
}

/// Appends frames to consecutive segments of one directory through a page
/// buffer. Not synchronised: [`Wal`](super::Wal) wraps it in a mutex.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    segment_size: u64,
    active: ActiveSegment,
    buf: Vec<u8>,
    /// An fsync failed: data already handed to the OS may be lost, and a
    /// retried fsync could wrongly report success.
    sync_failed: bool,
}

impl SegmentWriter {
    /// Starts writing at segment `index`, which must not hold data.
    pub(crate) fn create(dir: &Path, index: u64, segment_size: u64) -> Result<Self, WalError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_size,
            active: ActiveSegment::create(dir, index)?,
            buf: Vec::with_capacity(PAGE_SIZE),
            sync_failed: false,
        })
    }

    /// Index of the segment being written.
    pub(crate) fn current(&self) -> u64 {
        self.active.index
    }

    /// The maximum segment size.
    pub(crate) fn segment_size(&self) -> u64 {
        self.segment_size
    }

    /// Whether an fsync has failed.
    pub(crate) fn sync_failed(&self) -> bool {
        self.sync_failed
    }

    /// A handle to the active segment file and its path, for fsync outside
    /// the writer's lock.
    pub(crate) fn handle(&self) -> (Arc<File>, PathBuf) {
        (Arc::clone(&self.active.file), self.active.path.clone())
    }

    /// Logical end of the active segment: flushed bytes plus buffered ones.
    fn logical_len(&self) -> u64 {
        self.active.flushed + self.buf.len() as u64
    }

    /// Appends one record. It may stay buffered until [`flush`](Self::flush).
    ///
    /// A frame never spans segments: if it does not fit in the rest of the
    /// active segment, the segment is cut first. A frame larger than the
    /// segment size is written alone into a fresh segment.
    pub(crate) fn append(&mut self, record: &[u8]) -> Result<(), WalError> {
        let header = encode_header(record).ok_or(WalError::RecordTooLarge { len: record.len() })?;
        let frame_len = (HEADER_LEN + record.len()) as u64;
        let logical = self.logical_len();
        if logical > 0 && logical.saturating_add(frame_len) > self.segment_size {
            self.cut()?;
        }
        if self.buf.len() as u64 + frame_len > PAGE_SIZE as u64 {
            self.flush()?;
        }
        if frame_len > PAGE_SIZE as u64 {
            // Large record: skip the copy into the page buffer.
            self.write_direct(&header)?;
            self.write_direct(record)?;
        } else {
            self.buf.extend_from_slice(&header);
            self.buf.extend_from_slice(record);
        }
        Ok(())
    }

    fn write_direct(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        (&*self.active.file)
            .write_all(bytes)
            .map_err(io_err("write segment", &self.active.path))?;
        self.active.flushed += bytes.len() as u64;
        Ok(())
    }

    /// Hands the page buffer to the OS.
    pub(crate) fn flush(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = (&*self.active.file).write_all(&self.buf);
        // On error the file may hold part of the buffer; `rollback` fixes that.
        result.map_err(io_err("write segment", &self.active.path))?;
        self.active.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// fsyncs the active segment (data and length).
    pub(crate) fn sync(&mut self) -> Result<(), WalError> {
        let result = self.active.file.sync_data();
        self.sync_failed |= result.is_err();
        result.map_err(io_err("fsync segment", &self.active.path))
    }

    /// Flushes and fsyncs the active segment, then starts the next one.
    /// Returns the new index. Every closed segment is durable.
    pub(crate) fn cut(&mut self) -> Result<u64, WalError> {
        self.flush()?;
        self.sync()?;
        let next = self.active.index + 1;
        self.active = ActiveSegment::create(&self.dir, next)?;
        Ok(next)
    }

    /// Where a batch starts: used by [`rollback`](Self::rollback).
    pub(crate) fn mark(&self) -> (u64, u64) {
        (self.active.index, self.logical_len())
    }

    /// Undoes a failed batch started at `mark`: drops the buffer and cuts the
    /// active segment back so no partial frame stays in the middle of the
    /// log. Frames already completed in segments cut during the batch stay
    /// (the batch is not atomic; each record is).
    pub(crate) fn rollback(&mut self, mark: (u64, u64)) -> io::Result<()> {
        self.buf.clear();
        let keep = if self.active.index == mark.0 {
            mark.1
        } else {
            0
        };
        self.active.file.set_len(keep)?;
        (&*self.active.file).seek(SeekFrom::Start(keep))?;
        self.active.flushed = keep;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names() {
        assert_eq!(segment_name(0), "00000000");
        assert_eq!(segment_name(42), "00000042");
        assert_eq!(segment_name(123_456_789), "123456789");
        assert_eq!(parse_segment_name("00000042"), Some(42));
        assert_eq!(parse_segment_name("123456789"), Some(123_456_789));
        for bad in [
            "42",
            "000000042",
            "0000004x",
            "00000042.tmp",
            "",
            "checkpoint.00000001",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
        assert_eq!(
            parse_segment_name("9999999999999999"),
            Some(9_999_999_999_999_999)
        );
        assert_eq!(parse_segment_name("18446744073709551615"), None);
    }

    #[test]
    fn listing_ignores_foreign_entries() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["00000003", "00000001", "1", "00000002.tmp", "junk"] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        fs::create_dir(dir.path().join("00000007")).unwrap();
        fs::create_dir(dir.path().join("checkpoint.00000000")).unwrap();
        assert_eq!(segments(dir.path()).unwrap(), vec![1, 3]);
    }
}
