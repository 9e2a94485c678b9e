//! Error types of the WAL.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while writing, reading or repairing a WAL.
///
/// Damage found on disk is always [`WalError::Corruption`], which carries the
/// segment and byte offset that [`Wal::repair`](super::Wal::repair) needs.
/// Nothing a file on disk contains can make this module panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A filesystem operation failed.
    #[error("wal: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was attempted, e.g. `"create segment"` or `"fsync segment"`.
        op: &'static str,
        /// The file or directory the operation was applied to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A record could not be read back: a torn write, a zero-filled tail,
    /// flipped bits or a missing segment.
    ///
    /// Everything before `offset` in `segment` (and in all earlier segments)
    /// is intact. Pass the error to [`Wal::repair`](super::Wal::repair) to cut
    /// the log there.
    #[error("wal: corruption in segment {segment} at offset {offset}: {reason}")]
    Corruption {
        /// Index of the damaged segment.
        segment: u64,
        /// Byte offset inside the segment of the first damaged frame.
        offset: u64,
        /// What was wrong with it.
        reason: CorruptionReason,
    },

    /// A record passed to [`Wal::log`](super::Wal::log) is longer than
    /// [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN). Nothing of its batch was
    /// written.
    #[error("wal: record of {len} bytes exceeds the maximum record length")]
    RecordTooLarge {
        /// Length of the rejected record.
        len: usize,
    },

    /// [`Wal::repair`](super::Wal::repair) was asked to do something unsafe.
    #[error("wal: repair refused: {reason}")]
    RepairRefused {
        /// Why the repair was refused.
        reason: RepairRefusal,
    },

    /// An earlier write or fsync failed in a way that leaves the durability
    /// of already written data unknown (see PostgreSQL's "fsyncgate": a failed
    /// fsync may drop dirty pages, and a retry can wrongly succeed). The
    /// writer refuses all further work; reopen the WAL, which starts a fresh
    /// segment, and replay to learn what survived.
    #[error("wal: writer is poisoned by an earlier write or fsync failure; reopen the WAL")]
    Poisoned,
}

/// Why a frame could not be decoded. See `docs/formats.md`, section "WAL".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorruptionReason {
    /// Fewer bytes than a frame header remain at the end of the segment
    /// (typically a torn write).
    TruncatedHeader,
    /// The header announces more payload bytes than the segment holds
    /// (typically a torn write, or a damaged length field).
    TruncatedPayload,
    /// The header is all zero bytes: a zero-filled or preallocated tail left
    /// behind by a crash. A real frame header is never all zero because the
    /// checksum also covers the length field.
    ZeroHeader,
    /// The CRC32 stored in the header does not match the length and payload.
    ChecksumMismatch,
    /// A segment is missing from an otherwise contiguous sequence.
    MissingSegment,
}

impl std::fmt::Display for CorruptionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TruncatedHeader => "truncated frame header",
            Self::TruncatedPayload => "frame length runs past the end of the segment",
            Self::ZeroHeader => "zero-filled frame header",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::MissingSegment => "missing segment",
        })
    }
}

/// Why [`Wal::repair`](super::Wal::repair) refused to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RepairRefusal {
    /// The error passed in is not a [`WalError::Corruption`].
    NotCorruption,
    /// The corruption lies in a segment this writer created. It wrote those
    /// bytes itself, so the "corruption" is a reader racing the writer (or a
    /// checkpoint's segment numbering), not damage from a crash.
    SegmentInUse,
    /// Records were logged since the WAL was opened (or last repaired).
    /// Repair deletes every segment after the damaged one, which would drop
    /// them; repair must run between replay and the first append.
    WritesSinceOpen,
}

impl std::fmt::Display for RepairRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotCorruption => "the error is not a corruption error",
            Self::SegmentInUse => "the corruption is in a segment written by this writer",
            Self::WritesSinceOpen => "records were logged since the WAL was opened",
        })
    }
}

/// Returns a closure that wraps an [`io::Error`] with the attempted operation
/// and path, for use with `map_err`.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> WalError {
    let path = path.into();
    move |source| WalError::Io { op, path, source }
}
