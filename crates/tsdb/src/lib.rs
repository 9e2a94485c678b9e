//! vigil-tsdb: the storage engine.
//!
//! The design follows the Prometheus TSDB: an in-memory head for recent
//! samples backed by a write-ahead log, completed chunks written to an
//! append-only file and read back through a memory map, and immutable
//! block directories for older data.
//!
//! The storage engine is a blocking library: call it from async code
//! through `spawn_blocking` or a dedicated thread.
//!
//! Open a database ([`Db::open`] on disk, [`Db::open_in_memory`] in RAM),
//! append in transactions, and read through a querier (or hand the `Db` to
//! the PromQL engine, which takes any [`vigil_model::Queryable`]):
//!
//! ```
//! use vigil_model::{labels, Appender, Matcher, Querier, Queryable, SampleIterator, Value, ValueType};
//! use vigil_tsdb::{Db, Options};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Options::default())?;
//!
//! // An appender is a transaction: commit makes the batch visible (and
//! // durable in the WAL); dropping it uncommitted rolls it back.
//! let up = labels!("__name__" => "up", "job" => "api");
//! let mut app = db.appender();
//! let r = app.append(None, &up, 1_000, Value::Float(1.0))?;
//! app.append(Some(r), &up, 2_000, Value::Float(0.0))?; // by reference: no label lookup
//! app.commit()?;
//!
//! let mut samples = Vec::new();
//! {
//!     let querier = db.querier(0, 10_000)?;
//!     let set = querier.select(true, None, &[Matcher::equal("job", "api")])?;
//!     let mut it = set.series[0].iter();
//!     while it.next() == ValueType::Float {
//!         samples.push(it.at());
//!     }
//! }
//! assert_eq!(samples, [(1_000, 1.0), (2_000, 0.0)]);
//!
//! // Keep a week; `maintain` (or `spawn_maintenance`) applies it.
//! db.set_retention(Some(7 * 24 * 3600 * 1000), None);
//! db.maintain()?;
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod analyze;
pub mod block;
pub mod chunkenc;
pub mod chunks_head;
pub mod db;
pub mod error;
pub mod head;
pub mod import;
mod memory;
mod metrics;
pub mod mmap;
pub mod querier;
pub mod record;
pub mod retention;
pub mod wal;

pub use db::{Db, Options};
pub use error::TsdbError;
pub use head::{Head, HeadOptions, HeadStats, Limits, LIMIT_NAMES};
