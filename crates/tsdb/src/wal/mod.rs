//! Write-ahead log: segmented, append-only files of opaque, checksummed
//! records.
//!
//! As in Prometheus (`tsdb/wlog` vs `tsdb/record`), this module moves bytes
//! and the record module gives them meaning. The byte layout is specified in
//! `docs/formats.md`, section "WAL".
//!
//! # Design decisions
//!
//! - **Segments.** The log is a directory of files named by index
//!   (`00000000`, `00000001`, ...; at least 8 zero-padded digits), each at
//!   most [`WalOptions::segment_size`] bytes (128 MiB by default). A record
//!   never spans two segments, so each segment can be replayed, checkpointed
//!   or deleted on its own, and replay can be split across threads by
//!   segment ([`WalReader::open_range`]).
//! - **Framing.** Each record is `[u32 len][u32 crc32][payload]`,
//!   little-endian, with the CRC covering the length bytes and the payload.
//!   Unlike Prometheus there are no 32 KiB pages and no fragment types: a
//!   frame is contiguous, which keeps the reader a single bounds check plus
//!   a checksum per record. Covering the length makes an all-zero header
//!   invalid, so a zero-filled tail (a crash after the file grew but before
//!   data reached disk) reads as corruption, never as empty records.
//! - **Opening never reads old segments.** [`Wal::open`] always appends to a
//!   fresh segment (reusing the last one only if it is empty), so a torn tail
//!   cannot stop the database from starting. The caller replays, and on
//!   [`WalError::Corruption`] calls [`Wal::repair`], which truncates the
//!   damaged segment at the bad frame and deletes later segments, reporting
//!   what was dropped ([`RepairReport`], [`WalStats`]).
//! - **Group commit.** Appends take one mutex, frame the batch into a 32 KiB
//!   page buffer and hand it to the OS with one `write` per page; fsync runs
//!   outside that mutex. With [`SyncPolicy::always`], callers that arrive
//!   while an fsync is in flight wait and share the next one. With
//!   [`SyncPolicy::interval`], a background thread fsyncs. Closed segments
//!   are fsynced when cut, so one fsync of the active segment covers
//!   everything written. A failed fsync poisons the writer
//!   ([`WalError::Poisoned`]): retrying fsync after a failure can report
//!   success for data the kernel already dropped.
//! - **Replay without per-record allocation.** [`WalReader`] reads segments
//!   in 1 MiB chunks into one reusable buffer and lends each payload as a
//!   slice. Decoding is bounds-checked throughout; arbitrary file contents
//!   yield a typed error, never a panic.
//! - **Checkpoints** are mini-WALs in `checkpoint.NNNNNNNN` directories,
//!   written to a `.tmp` name and renamed once durable
//!   ([`write_checkpoint`], [`CheckpointWriter`], [`last_checkpoint`]).
//! - **Readers that follow the log** ([`WalTail`], for remote write) take a
//!   [`SegmentHold`]: [`Wal::truncate_before`] never deletes a held segment,
//!   so a slow or disconnected reader loses nothing the disk still holds.
//!
//! # Example
//!
//! ```
//! use vigil_tsdb::wal::{Wal, WalError, WalOptions, WalReader};
//!
//! # fn main() -> Result<(), WalError> {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path();
//! let wal = Wal::open(dir, WalOptions::default())?;
//!
//! // Replay what a previous run left, cutting off a torn tail.
//! let mut reader = WalReader::open(dir)?;
//! while let Some(record) = reader.next_record() {
//!     match record {
//!         Ok(record) => {
//!             let _payload: &[u8] = record.data; // decode with the record module
//!         }
//!         Err(e @ WalError::Corruption { .. }) => {
//!             let report = wal.repair(&e)?;
//!             eprintln!("dropped {} bytes of damaged WAL", report.bytes_dropped);
//!             break;
//!         }
//!         Err(e) => return Err(e),
//!     }
//! }
//!
//! wal.log(&[b"series record".as_slice(), b"samples record"])?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod checkpoint;
mod error;
mod frame;
mod reader;
mod segment;
mod tail;
mod writer;

#[cfg(test)]
mod tests;

pub use checkpoint::{
    checkpoint_name, delete_checkpoints_before, last_checkpoint, write_checkpoint, CheckpointWriter,
};
pub use error::{CorruptionReason, RepairRefusal, WalError};
pub use frame::MAX_RECORD_LEN;
pub use reader::{Record, WalReader};
pub use segment::{segment_name, segment_path, segments};
pub use tail::{SegmentHold, TailRecord, WalPosition, WalTail};
pub use writer::{RepairReport, SyncPolicy, Wal, WalOptions, WalStats, DEFAULT_SEGMENT_SIZE};
