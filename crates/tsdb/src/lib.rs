//! vigil-tsdb: the storage engine.
//!
//! The design follows the Prometheus TSDB: an in-memory head for recent
//! samples backed by a write-ahead log, completed chunks written to an
//! append-only file and read back through a memory map, and immutable
//! block directories for older data.
//!
//! The storage engine is a blocking library: call it from async code
//! through `spawn_blocking` or a dedicated thread.

pub mod analyze;
pub mod block;
pub mod chunkenc;
pub mod chunks_head;
pub mod db;
pub mod error;
pub mod head;
mod metrics;
pub mod mmap;
pub mod querier;
pub mod record;
pub mod wal;

pub use db::{Db, Options};
pub use error::TsdbError;
pub use head::{Head, HeadOptions, HeadStats};
