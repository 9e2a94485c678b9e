//! The superset error of the storage engine. Each subsystem has its own
//! typed error; this enum wraps them, and converts to the model's
//! [`StorageError`] at the trait boundary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_model::StorageError;

use crate::block::BlockError;
use crate::chunks_head::ChunkDiskError;
use crate::mmap::MmapError;
use crate::wal::WalError;

/// Any error of the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsdbError {
    /// An IO operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The WAL failed.
    #[error("WAL: {0}")]
    Wal(#[from] WalError),
    /// The head chunk files failed.
    #[error("head chunks: {0}")]
    HeadChunks(#[from] ChunkDiskError),
    /// A block failed.
    #[error("block: {0}")]
    Block(#[from] BlockError),
    /// Mapping or locking a file failed (for example, the data directory is
    /// in use by another process).
    #[error("{0}")]
    Mmap(#[from] MmapError),
    /// [`Db::open_in_memory`](crate::Db::open_in_memory) found no RAM
    /// filesystem to hold the database, and refuses to use a disk instead.
    #[error("no RAM filesystem for an in-memory database: {path} is {found}, not tmpfs or ramfs")]
    NoRamFilesystem {
        /// Where one was looked for (`/dev/shm`).
        path: PathBuf,
        /// The filesystem type found there, or "no such mount".
        found: String,
    },
}

impl TsdbError {
    /// An IO error with what was attempted and on which path.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        TsdbError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<TsdbError> for StorageError {
    fn from(e: TsdbError) -> StorageError {
        match e {
            TsdbError::Io { op, path, source } => StorageError::Io {
                op,
                path,
                source: Arc::new(source),
            },
            TsdbError::Wal(WalError::Io { op, path, source }) => StorageError::Io {
                op,
                path,
                source: Arc::new(source),
            },
            TsdbError::Wal(WalError::Corruption {
                segment, offset, ..
            }) => StorageError::Corruption {
                path: PathBuf::from(format!("wal/{segment:08}")),
                offset,
                what: "WAL record damaged",
            },
            TsdbError::HeadChunks(e) => e.into(),
            TsdbError::Block(e) => e.into(),
            other => StorageError::Io {
                op: "storage operation",
                path: PathBuf::new(),
                source: Arc::new(std::io::Error::other(other.to_string())),
            },
        }
    }
}
