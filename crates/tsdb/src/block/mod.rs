//! Persistent, immutable blocks: Prometheus's block design in Rust.
//!
//! A block holds every sample of a time range `[minTime, maxTime)` in a
//! directory named by its [`Ulid`]:
//!
//! ```text
//! 01JD8Z3K6W5N8C2X4V7B9M1Q0R/
//!   meta.json      what the block holds and where it came from (JSON)
//!   index          symbols, series, label index, postings, TOC
//!   chunks/000001  chunk segment files
//!   tombstones     deleted intervals
//! ```
//!
//! The byte layouts are in `docs/formats.md`, section "Blocks".
//!
//! Design decisions:
//!
//! - **Write once, appear atomically.** [`BlockWriter`] writes into
//!   `<ulid>.tmp-for-creation`, fsyncs every file and directory and renames
//!   the directory into place; [`cleanup_tmp`] removes what a crash left.
//!   Only the tombstones file and `meta.json`'s tombstone count are ever
//!   replaced, each atomically (temporary file, fsync, rename).
//! - **Small on disk.** Chunks are stored exactly as the chunk codec made
//!   them; the index uses varints, delta-coded symbol ids, postings and
//!   chunk metadata, and series references are unpadded byte offsets. See
//!   the measurements in `docs/formats.md`.
//! - **Untrusted bytes.** Files are mapped read-only through
//!   [`crate::mmap`] under the data directory's [`DirLock`]; every read is
//!   bounds-checked and checksummed (the index per section, at open; every
//!   chunk, when read). Damage is a typed [`BlockError`] naming the file and
//!   offset, never a panic.
//! - **Lazy reads.** [`Block::select`] resolves matchers on the postings
//!   (Prometheus's `PostingsForMatchers`) and decodes only series entries;
//!   a [`BlockSeries`] cursor decodes one chunk at a time, skips chunks by
//!   their time range and hides deleted samples.
//! - **Compaction works on chunks.** It copies untouched chunks byte for
//!   byte and re-encodes only those with deleted or overlapping samples
//!   ([`compact`]); planning is a pure function of the metas ([`plan`]).
//!
//! [`Block::open`] takes the lock of the directory that holds the blocks
//! (the mmap module maps files only under a held lock) rather than taking
//! a lock of its own, which would have to live inside the immutable block
//! directory.

mod chunks;
mod compact;
mod encoding;
mod error;
mod index;
mod meta;
mod reader;
mod tombstones;
mod ulid;
mod writer;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

pub use chunks::{ChunkRef, CHUNKS_DIR, DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
pub use compact::{
    cap_ranges, compact, compact_trimmed, compact_with_options, exponential_ranges, plan,
    MAX_BLOCK_DURATION, MERGED_CHUNK_SAMPLES,
};
pub use error::{BlockError, InputError};
pub(crate) use index::mark_common;
pub use index::ChunkInfo;
pub use meta::{BlockMeta, BlockStats, CompactionMeta, META_VERSION};
pub use reader::{
    Block, BlockQuerier, BlockSeries, BlockSeriesIter, BlockSize, ChunkSeriesIter, SeriesChunks,
};
pub use tombstones::{Intervals, Tombstones};
pub use ulid::{Ulid, UlidParseError};
pub use writer::{write_block, BlockWriter, BlockWriterOptions, ChunkMeta};

#[cfg(doc)]
use crate::mmap::DirLock;

/// Name of the meta file.
pub const META_FILE: &str = "meta.json";

/// Name of the index file.
pub const INDEX_FILE: &str = "index";

/// Name of the tombstones file.
pub const TOMBSTONES_FILE: &str = "tombstones";

/// Suffix of a block directory being written.
pub const TMP_FOR_CREATION: &str = ".tmp-for-creation";

/// Suffix of a block directory being deleted.
pub const TMP_FOR_DELETION: &str = ".tmp-for-deletion";

/// A series in a block: the byte offset of its entry in the index's series
/// section. Means nothing outside its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockSeriesRef(pub(crate) u64);

impl BlockSeriesRef {
    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// A reference from its raw value.
    pub const fn from_u64(v: u64) -> BlockSeriesRef {
        BlockSeriesRef(v)
    }
}

/// Fsyncs a directory, so that entries created or renamed in it are
/// durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BlockError::io("fsync directory", dir))
}

/// Splits a directory name into its ULID and the rest.
fn split_name(name: &str) -> Option<(Ulid, &str)> {
    let id = name.get(..ulid::ULID_LEN)?.parse().ok()?;
    Some((id, name.get(ulid::ULID_LEN..)?))
}

/// Removes leftovers of interrupted block writes and deletions in `parent`:
/// entries named `<ulid>.tmp…`. Nothing else is touched. Returns what was
/// removed.
pub fn cleanup_tmp(parent: impl AsRef<Path>) -> Result<Vec<PathBuf>, BlockError> {
    let parent = parent.as_ref();
    let mut removed = Vec::new();
    let entries = fs::read_dir(parent).map_err(BlockError::io("list directory", parent))?;
    for e in entries {
        let e = e.map_err(BlockError::io("list directory", parent))?;
        let name = e.file_name();
        let Some((_, rest)) = name.to_str().and_then(split_name) else {
            continue;
        };
        if !rest.starts_with(".tmp") {
            continue;
        }
        let path = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let res = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        res.map_err(BlockError::io("remove leftover", &path))?;
        removed.push(path);
    }
    if !removed.is_empty() {
        sync_dir(parent)?;
    }
    Ok(removed)
}

/// The block directories in `parent` (names that are exactly a ULID), in
/// id order.
pub fn list_blocks(parent: impl AsRef<Path>) -> Result<Vec<(Ulid, PathBuf)>, BlockError> {
    let parent = parent.as_ref();
    let mut out = Vec::new();
    let entries = fs::read_dir(parent).map_err(BlockError::io("list directory", parent))?;
    for e in entries {
        let e = e.map_err(BlockError::io("list directory", parent))?;
        let name = e.file_name();
        let Some((id, "")) = name.to_str().and_then(split_name) else {
            continue;
        };
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push((id, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes a block directory so that it never appears half-deleted: it is
/// renamed to `<ulid>.tmp-for-deletion` first (and the parent fsynced),
/// then removed. Open [`Block`]s of it keep working until dropped.
pub fn delete_block_dir(dir: impl AsRef<Path>) -> Result<(), BlockError> {
    let dir = dir.as_ref();
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(BlockError::io("delete block", dir)(
            std::io::ErrorKind::InvalidInput.into(),
        ));
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(TMP_FOR_DELETION);
    let tmp = parent.join(tmp_name);
    fs::rename(dir, &tmp).map_err(BlockError::io("rename block for deletion", dir))?;
    sync_dir(parent)?;
    fs::remove_dir_all(&tmp).map_err(BlockError::io("remove block", &tmp))?;
    sync_dir(parent)
}
