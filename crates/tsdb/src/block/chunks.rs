//! Chunk segment files: `chunks/000001`, `000002`, ... holding every chunk
//! of a block back to back.
//!
//! A segment is an 8-byte header (magic `VBC1`, version, padding) followed
//! by records `len uvarint | chunk bytes | crc32`, where the chunk bytes are
//! exactly what [`ChunkEncoder`](crate::chunkenc::ChunkEncoder) produced
//! (encoding byte first) and the CRC covers them. A [`ChunkRef`] packs the
//! segment number and the record's offset. The layout is in
//! `docs/formats.md`, section "Blocks".
//!
//! The writer streams records through a buffered file and fsyncs each
//! segment when it is cut; the reader maps every segment read-only and
//! checks bounds and the CRC on every read, handing out owned
//! [`MmapSlice`]s so chunks can be decoded lazily or copied unchanged.

use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::encoding::{crc32, uvarint_len, Decbuf, Encbuf, CRC_LEN};
use super::error::{BlockError, InputError};
use super::sync_dir;
use crate::mmap::{DirLock, MappedFile, MmapSlice};

/// Name of the chunk directory inside a block.
pub const CHUNKS_DIR: &str = "chunks";

/// First four bytes of every segment, big-endian: ASCII `VBC1`.
pub const SEGMENT_MAGIC: u32 = 0x5642_4331;

/// Version byte of the segment format.
pub const SEGMENT_VERSION: u8 = 1;

/// Bytes before the first record: magic (4), version (1), padding (3).
pub const SEGMENT_HEADER_LEN: usize = 8;

/// Default largest segment: 512 MiB, as in Prometheus.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 << 20;

/// Smallest accepted segment size (small sizes are for tests).
pub const MIN_SEGMENT_SIZE: u64 = 64;

/// Largest accepted segment size: offsets are 32 bits in a [`ChunkRef`].
pub const MAX_SEGMENT_SIZE: u64 = u32::MAX as u64;

/// Where a chunk is in a block: `segment << 32 | offset`, the segment
/// number (from 1, the number in the file name) and the byte offset of the
/// chunk's record in that file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkRef(u64);

impl ChunkRef {
    /// Packs a segment number and offset.
    pub const fn new(segment: u32, offset: u32) -> ChunkRef {
        ChunkRef(((segment as u64) << 32) | offset as u64)
    }

    /// Reinterprets a packed value.
    pub const fn from_u64(v: u64) -> ChunkRef {
        ChunkRef(v)
    }

    /// The packed value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The segment number.
    pub const fn segment(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Offset of the record in its segment.
    pub const fn offset(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Debug for ChunkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}@{}", self.segment(), self.offset())
    }
}

impl fmt::Display for ChunkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// File name of segment `seq`.
pub(crate) fn segment_name(seq: u32) -> String {
    format!("{seq:06}")
}

/// Writes the segment files of a block being created.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    max_size: u64,
    seq: u32,
    cur: Option<(BufWriter<File>, PathBuf)>,
    /// Bytes in the current segment.
    pos: u64,
    /// Bytes written in all segments.
    total: u64,
    scratch: Encbuf,
}

impl ChunkWriter {
    /// A writer creating segments in `dir` (created here).
    pub(crate) fn new(dir: PathBuf, max_size: u64) -> Result<ChunkWriter, BlockError> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&max_size) {
            return Err(InputError::SegmentSize {
                size: max_size,
                min: MIN_SEGMENT_SIZE,
                max: MAX_SEGMENT_SIZE,
            }
            .into());
        }
        fs::create_dir(&dir).map_err(BlockError::io("create chunk directory", &dir))?;
        Ok(ChunkWriter {
            dir,
            max_size,
            seq: 0,
            cur: None,
            pos: 0,
            total: 0,
            scratch: Encbuf::default(),
        })
    }

    /// Appends one chunk and returns where it went.
    pub(crate) fn write(&mut self, chunk: &[u8]) -> Result<ChunkRef, BlockError> {
        let rec_len = (uvarint_len(chunk.len() as u64) + chunk.len() + CRC_LEN) as u64;
        if rec_len + SEGMENT_HEADER_LEN as u64 > self.max_size {
            return Err(InputError::ChunkTooLarge {
                len: chunk.len(),
                max: self.max_size,
            }
            .into());
        }
        let mut rec = std::mem::take(&mut self.scratch);
        rec.buf.clear();
        rec.put_uvarint(chunk.len() as u64);
        rec.put_bytes(chunk);
        rec.put_u32_be(crc32(chunk));
        let res = self.write_record(&rec.buf);
        self.scratch = rec;
        res
    }

    fn write_record(&mut self, rec: &[u8]) -> Result<ChunkRef, BlockError> {
        let len = rec.len() as u64;
        let fits = self.pos + len <= self.max_size;
        let (w, path) = match self.cur.take() {
            Some(cur) if fits => self.cur.insert(cur),
            cur => {
                self.cur = cur;
                self.cut()?
            }
        };
        w.write_all(rec)
            .map_err(BlockError::io("write chunk segment", path))?;
        // Offsets fit: `pos + len <= max_size <= u32::MAX`.
        let chunk_ref = ChunkRef::new(self.seq, self.pos as u32);
        self.pos += len;
        self.total += len;
        Ok(chunk_ref)
    }

    /// Finishes the current segment (flush and fsync) and starts the next.
    fn cut(&mut self) -> Result<&mut (BufWriter<File>, PathBuf), BlockError> {
        self.finish_segment()?;
        self.seq += 1;
        let path = self.dir.join(segment_name(self.seq));
        let f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(BlockError::io("create chunk segment", &path))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut h = Encbuf::default();
        h.put_u32_be(SEGMENT_MAGIC);
        h.put_u8(SEGMENT_VERSION);
        h.put_bytes(&[0; 3]);
        w.write_all(&h.buf)
            .map_err(BlockError::io("write chunk segment", &path))?;
        self.pos = SEGMENT_HEADER_LEN as u64;
        self.total += SEGMENT_HEADER_LEN as u64;
        Ok(self.cur.insert((w, path)))
    }

    fn finish_segment(&mut self) -> Result<(), BlockError> {
        if let Some((w, path)) = self.cur.take() {
            let f = w
                .into_inner()
                .map_err(|e| BlockError::io("flush chunk segment", &path)(e.into_error()))?;
            f.sync_all()
                .map_err(BlockError::io("fsync chunk segment", &path))?;
        }
        Ok(())
    }

    /// Flushes and fsyncs the last segment and the directory. Returns the
    /// bytes written.
    pub(crate) fn finish(mut self) -> Result<u64, BlockError> {
        self.finish_segment()?;
        sync_dir(&self.dir)?;
        Ok(self.total)
    }
}

/// Reads the segments of an open block.
#[derive(Debug)]
pub(crate) struct ChunkReader {
    dir: PathBuf,
    /// Segment `n` is at index `n - 1`; `None` for a missing number.
    segments: Vec<Option<MappedFile>>,
    size: u64,
}

impl ChunkReader {
    /// Maps every segment in `dir` and checks its header.
    pub(crate) fn open(lock: &DirLock, dir: &Path) -> Result<ChunkReader, BlockError> {
        let mut found: Vec<(u32, PathBuf)> = Vec::new();
        let entries = fs::read_dir(dir).map_err(BlockError::io("list chunk directory", dir))?;
        for e in entries {
            let e = e.map_err(BlockError::io("list chunk directory", dir))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() < 6 || !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(seq) = name.parse::<u32>() else {
                continue;
            };
            if seq == 0 || seq > 1 << 20 {
                continue;
            }
            found.push((seq, e.path()));
        }
        found.sort();
        let max = found.last().map_or(0, |(s, _)| *s as usize);
        let mut segments: Vec<Option<MappedFile>> = vec![None; max];
        let mut size = 0;
        for (seq, path) in found {
            let map = MappedFile::open(lock, &path)?;
            check_header(&path, map.bytes())?;
            size += map.len() as u64;
            if let Some(slot) = segments.get_mut(seq as usize - 1) {
                *slot = Some(map);
            }
        }
        Ok(ChunkReader {
            dir: dir.to_path_buf(),
            segments,
            size,
        })
    }

    /// Total bytes of all segments.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Path of segment `seq`, for error messages.
    pub(crate) fn segment_path(&self, seq: u32) -> PathBuf {
        self.dir.join(segment_name(seq))
    }

    /// The chunk bytes at `r` (encoding byte first), bounds- and
    /// CRC-checked.
    pub(crate) fn chunk(&self, r: ChunkRef) -> Result<MmapSlice, BlockError> {
        let seq = r.segment();
        let seg = (seq as usize)
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .and_then(Option::as_ref);
        let off = r.offset() as usize;
        let corrupt = |what| {
            Err(BlockError::corruption(
                &self.segment_path(seq),
                u64::from(r.offset()),
                what,
            ))
        };
        let Some(seg) = seg else {
            return corrupt("chunk reference names a missing segment");
        };
        if off < SEGMENT_HEADER_LEN {
            return corrupt("chunk reference points into the segment header");
        }
        let Some(rest) = seg.bytes().get(off..) else {
            return corrupt("chunk reference points past the end of the segment");
        };
        let mut d = Decbuf::new(rest);
        let Ok(len) = d.uvarint_len(rest.len(), "chunk length") else {
            return corrupt("chunk length is malformed or runs past the end of the segment");
        };
        if len < crate::chunkenc::HEADER_LEN {
            return corrupt("chunk shorter than its header");
        }
        let start = off + d.pos();
        let end = start + len;
        let (Some(data), Some(crc)) = (seg.slice(start..end), seg.bytes().get(end..end + CRC_LEN))
        else {
            return corrupt("chunk runs past the end of the segment");
        };
        let mut d = Decbuf::new(crc);
        let Ok(want) = d.u32_be("crc") else {
            return corrupt("chunk runs past the end of the segment");
        };
        if crc32(&data) != want {
            return corrupt("chunk checksum mismatch");
        }
        Ok(data)
    }
}

fn check_header(path: &Path, b: &[u8]) -> Result<(), BlockError> {
    let mut d = Decbuf::new(b);
    let corrupt = |offset, what| Err(BlockError::corruption(path, offset, what));
    let (Ok(magic), Ok(version)) = (d.u32_be("magic"), d.u8("version")) else {
        return corrupt(0, "segment shorter than its header");
    };
    if magic != SEGMENT_MAGIC {
        return corrupt(0, "bad segment magic number");
    }
    if version != SEGMENT_VERSION {
        return Err(BlockError::UnsupportedVersion {
            file: path.to_path_buf(),
            version: u32::from(version),
            supported: u32::from(SEGMENT_VERSION),
        });
    }
    if b.len() < SEGMENT_HEADER_LEN {
        return corrupt(0, "segment shorter than its header");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_across_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(tmp.path()).unwrap();
        let dir = tmp.path().join(CHUNKS_DIR);
        let mut w = ChunkWriter::new(dir.clone(), 100).unwrap();
        let chunks: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 10 + i as usize]).collect();
        let refs: Vec<ChunkRef> = chunks.iter().map(|c| w.write(c).unwrap()).collect();
        assert!(matches!(
            w.write(&[0; 100]),
            Err(BlockError::Input(InputError::ChunkTooLarge { .. }))
        ));
        let total = w.finish().unwrap();
        assert!(refs.last().unwrap().segment() > 3);
        let r = ChunkReader::open(&lock, &dir).unwrap();
        assert_eq!(r.size(), total);
        for (c, cr) in chunks.iter().zip(&refs) {
            assert_eq!(&*r.chunk(*cr).unwrap(), &c[..]);
        }
        for bad in [
            ChunkRef::new(0, 8),
            ChunkRef::new(99, 8),
            ChunkRef::new(1, 0),
            ChunkRef::new(1, 9),
            ChunkRef::new(1, 1000),
        ] {
            assert!(r.chunk(bad).unwrap_err().is_corruption(), "{bad}");
        }
    }

    #[test]
    fn bad_segment_sizes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for size in [0, MIN_SEGMENT_SIZE - 1, MAX_SEGMENT_SIZE + 1] {
            assert!(matches!(
                ChunkWriter::new(tmp.path().join("c"), size),
                Err(BlockError::Input(InputError::SegmentSize { .. }))
            ));
        }
    }
}
