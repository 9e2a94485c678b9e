//! vigil-model: the data model every vigil crate shares.
//!
//! - [`Labels`]: immutable, sorted label sets with a stable on-disk hash;
//! - [`Matcher`]: `=`, `!=`, `=~`, `!~` with Prometheus 3 regex semantics;
//! - time helpers ([`time`]) and the stale marker ([`value::is_stale`]);
//! - the storage traits: [`Appender`] for writes, [`Queryable`] ->
//!   [`Querier`] -> [`SeriesSet`] -> [`SampleIterator`] for reads;
//! - [`MemStorage`], a small in-memory implementation of those traits.
//!
//! The central decision: query and rule engines see storage only through
//! these traits, so they run unchanged over the TSDB, over [`MemStorage`], or
//! over storage an embedding program brings.
#![warn(missing_docs)]

pub mod labels;
pub mod matcher;
pub mod mem;
pub mod storage;
pub mod time;
pub mod value;

pub use labels::{Label, LabelError, Labels, LabelsBuilder, ValidationScheme, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use mem::MemStorage;
pub use storage::{
    AppendError, Appendable, Appender, CommitError, LimitError, Querier, Queryable, SampleIterator,
    SelectHints, Series, SeriesRef, SeriesSet, StorageError, ValueType, Warning,
};
pub use time::{format_duration, parse_duration, DurationError, Timestamp};
pub use value::{is_stale, stale_nan, Sample, Value, STALE_NAN_BITS};
