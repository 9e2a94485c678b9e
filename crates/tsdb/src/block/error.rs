//! The error of every block operation.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_model::{Labels, StorageError};

use crate::chunkenc::ChunkError;
use crate::mmap::MmapError;

/// Anything that can go wrong writing, opening, reading, deleting from or
/// compacting a block.
///
/// Nothing in a block's files can make this module panic: damage surfaces as
/// [`BlockError::Corruption`] (or [`BlockError::Chunk`],
/// [`BlockError::MetaJson`], [`BlockError::InvalidMeta`],
/// [`BlockError::UnsupportedVersion`]) naming the file and the offset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// A filesystem operation failed.
    #[error("block: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was attempted, e.g. `"fsync index"`.
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Locking or mapping a file failed.
    #[error("block: {0}")]
    Mmap(#[from] MmapError),

    /// A block file is damaged: a checksum mismatch, a bad magic number, a
    /// field out of range, a reference into nowhere.
    #[error("block: corruption in {} at offset {offset}: {what}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage in the file.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },

    /// A chunk passed its checksum but its samples cannot be decoded.
    #[error("block: chunk at offset {offset} of {} cannot be decoded: {source}", file.display())]
    Chunk {
        /// The chunk segment file.
        file: PathBuf,
        /// Byte offset of the chunk's record in the file.
        offset: u64,
        /// What the decoder said.
        #[source]
        source: ChunkError,
    },

    /// `meta.json` is not valid JSON of the expected shape.
    #[error("block: cannot parse {}: {source}", path.display())]
    MetaJson {
        /// The meta file.
        path: PathBuf,
        /// What the parser said (it carries line and column).
        #[source]
        source: serde_json::Error,
    },

    /// `meta.json` parses but says something impossible.
    #[error("block: invalid {}: {what}", path.display())]
    InvalidMeta {
        /// The meta file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },

    /// A file was written by a newer (or unknown) format version.
    #[error("block: {} has format version {version}; this build reads version {supported}", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },

    /// The data handed to the block writer (or compactor) is invalid.
    #[error("block: invalid input: {0}")]
    Input(#[from] InputError),
}

/// Why the series handed to [`BlockWriter`](super::BlockWriter) were
/// refused. These are caller bugs, not damage.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The block's time range is empty (`mint >= maxt`).
    #[error("empty block range [{mint}, {maxt})")]
    EmptyRange {
        /// Inclusive start.
        mint: i64,
        /// Exclusive end.
        maxt: i64,
    },
    /// Series must come in strictly increasing label order.
    #[error("series {next} does not sort after {prev}")]
    SeriesOutOfOrder {
        /// The series before.
        prev: Labels,
        /// The offending series.
        next: Labels,
    },
    /// A series has no labels.
    #[error("series without labels")]
    EmptyLabels,
    /// A chunk's range is reversed or overlaps or precedes the previous
    /// chunk of the series.
    #[error("chunk {index} of {labels} is out of order or overlaps the previous one")]
    ChunkOutOfOrder {
        /// The series.
        labels: Labels,
        /// Index of the chunk in the series' list.
        index: usize,
    },
    /// A chunk lies (partly) outside the block's range.
    #[error("chunk [{mint}, {maxt}] of {labels} is outside the block range")]
    ChunkOutsideBlock {
        /// The series.
        labels: Labels,
        /// The chunk's first timestamp.
        mint: i64,
        /// The chunk's last timestamp.
        maxt: i64,
    },
    /// A chunk's bytes do not start with a valid chunk header, or it holds
    /// no samples.
    #[error("chunk {index} of {labels} is not a valid non-empty chunk")]
    BadChunk {
        /// The series.
        labels: Labels,
        /// Index of the chunk in the series' list.
        index: usize,
    },
    /// A chunk is larger than a segment file may be.
    #[error("chunk of {len} bytes does not fit in a segment of {max} bytes")]
    ChunkTooLarge {
        /// The chunk's length.
        len: usize,
        /// The segment size limit.
        max: u64,
    },
    /// The segment size option is outside the accepted range.
    #[error("segment size {size} is outside [{min}, {max}]")]
    SegmentSize {
        /// The rejected size.
        size: u64,
        /// Smallest accepted size.
        min: u64,
        /// Largest accepted size.
        max: u64,
    },
}

impl BlockError {
    /// An IO error with what was attempted and on which path.
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> BlockError + 'a {
        move |source| BlockError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A corruption of `file` at `offset`.
    pub(crate) fn corruption(file: &Path, offset: u64, what: &'static str) -> BlockError {
        BlockError::Corruption {
            file: file.to_path_buf(),
            offset,
            what,
        }
    }

    /// True when the error means damaged block files (as opposed to an IO
    /// failure or a caller bug).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            BlockError::Corruption { .. }
                | BlockError::Chunk { .. }
                | BlockError::MetaJson { .. }
                | BlockError::InvalidMeta { .. }
                | BlockError::UnsupportedVersion { .. }
        )
    }
}

impl From<BlockError> for StorageError {
    fn from(e: BlockError) -> StorageError {
        match e {
            BlockError::Io { op, path, source } => StorageError::Io {
                op,
                path,
                source: Arc::new(source),
            },
            BlockError::Mmap(MmapError::Io { op, path, source }) => StorageError::Io {
                op,
                path,
                source: Arc::new(source),
            },
            BlockError::Corruption { file, offset, what } => StorageError::Corruption {
                path: file,
                offset,
                what,
            },
            BlockError::Chunk { file, offset, .. } => StorageError::Corruption {
                path: file,
                offset,
                what: "chunk cannot be decoded",
            },
            BlockError::MetaJson { path, .. } => StorageError::Corruption {
                path,
                offset: 0,
                what: "meta.json cannot be parsed",
            },
            BlockError::InvalidMeta { path, what } => StorageError::Corruption {
                path,
                offset: 0,
                what,
            },
            BlockError::UnsupportedVersion { file, .. } => StorageError::Corruption {
                path: file,
                offset: 0,
                what: "unsupported format version",
            },
            // The model has no variant for these (lock conflicts, caller
            // bugs); keep the typed error as the source.
            other => {
                let kind = match &other {
                    BlockError::Input(_) => io::ErrorKind::InvalidInput,
                    _ => io::ErrorKind::Other,
                };
                StorageError::Io {
                    op: "block operation",
                    path: PathBuf::new(),
                    source: Arc::new(io::Error::new(kind, other)),
                }
            }
        }
    }
}
