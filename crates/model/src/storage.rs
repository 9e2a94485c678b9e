//! The storage traits: how samples get in ([`Appender`]) and how they come
//! out ([`Queryable`] -> [`Querier`] -> [`SeriesSet`] -> [`SampleIterator`]).
//!
//! They are shaped after Prometheus's `storage` interfaces so that the PromQL
//! engine and the rule engine can run over the TSDB, over the in-memory store
//! of this crate, or over storage a caller brings.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::labels::{LabelError, Labels};
use crate::matcher::Matcher;
use crate::value::Value;

/// A reference to a series inside one storage, returned by
/// [`Appender::append`] so that later appends can skip the label lookup. It
/// means nothing to another storage, and may go stale when the series is
/// garbage-collected: storages then fall back to the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef(pub u64);

/// What kind of sample a [`SampleIterator`] stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueType {
    /// No sample: the iterator is exhausted (or failed; see
    /// [`SampleIterator::err`]).
    None,
    /// A float sample; read it with [`SampleIterator::at`].
    Float,
}

/// An error from storage, shared by every operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An IO operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Stored data is damaged.
    #[error("corruption in {path} at offset {offset}: {what}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// The byte offset of the damage.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// The storage has been closed.
    #[error("storage is closed")]
    Closed,
    /// A query would select more series than allowed.
    #[error("query selects more than {limit} series")]
    TooManySeries {
        /// The limit.
        limit: usize,
    },
    /// The operation was cancelled (for example by a query timeout).
    #[error("operation cancelled")]
    Cancelled,
}

impl StorageError {
    /// An IO error with what was attempted and on which path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// Why one sample was not appended.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The sample is older than the newest sample of its series and no
    /// out-of-order window covers it.
    #[error("out of order sample")]
    OutOfOrder,
    /// The sample is older than the storage accepts at all (before the head's
    /// lower bound, or outside the out-of-order window).
    #[error("out of bounds")]
    OutOfBounds,
    /// A sample with the same timestamp and a different value exists.
    #[error("duplicate sample for timestamp")]
    DuplicateSampleForTimestamp,
    /// The sample is older than the out-of-order window allows.
    #[error("too old sample")]
    TooOld,
    /// The label set is invalid.
    #[error("invalid labels: {0}")]
    InvalidLabels(#[from] LabelError),
    /// The label set is empty.
    #[error("empty label set")]
    EmptyLabels,
    /// A configured limit would be exceeded.
    #[error("limit exceeded: {0}")]
    Limit(LimitError),
    /// The value kind is not supported by this storage.
    #[error("unsupported value type")]
    UnsupportedValue,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Which limit an append hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Too many labels in one series.
    #[error("series has {count} labels, more than the limit of {limit}")]
    LabelCount {
        /// Labels in the series.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A label name is too long.
    #[error("label name {len} bytes long, more than the limit of {limit}")]
    LabelNameLength {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A label value is too long.
    #[error("label value {len} bytes long, more than the limit of {limit}")]
    LabelValueLength {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The storage holds as many series as allowed.
    #[error("series limit of {limit} reached")]
    SeriesCount {
        /// The limit.
        limit: usize,
    },
    /// The metric has as many series as allowed.
    #[error("series limit of {limit} for metric {metric:?} reached")]
    SeriesPerMetric {
        /// The metric name.
        metric: String,
        /// The limit.
        limit: usize,
    },
}

impl LimitError {
    /// The limit's name, as the `limit` label of vigil's metrics gives it.
    pub fn limit_name(&self) -> &'static str {
        match self {
            LimitError::LabelCount { .. } => "labels_per_series",
            LimitError::LabelNameLength { .. } => "label_name_length",
            LimitError::LabelValueLength { .. } => "label_value_length",
            LimitError::SeriesCount { .. } => "series_total",
            LimitError::SeriesPerMetric { .. } => "series_per_metric",
        }
    }
}

/// Why a commit failed. Nothing of the batch is stored when it does.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The storage failed while writing the batch.
    #[error("commit failed: {0}")]
    Storage(#[from] StorageError),
}

/// A batch of appends that becomes visible all at once.
///
/// An appender is a transaction: [`Appender::commit`] consumes it and makes
/// every accepted sample visible atomically; dropping it without a commit
/// rolls the batch back. Samples rejected by [`Appender::append`] are simply
/// not part of the batch; the caller decides whether to commit the rest.
pub trait Appender {
    /// Adds a sample for the series `labels` to the batch. `sref`, when
    /// given, is a reference an earlier append of this storage returned for
    /// the same labels; it saves the lookup. Returns the series' reference.
    fn append(
        &mut self,
        sref: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: Value,
    ) -> Result<SeriesRef, AppendError>;

    /// Makes the batch durable (as the storage's durability policy says) and
    /// visible.
    fn commit(self) -> Result<(), CommitError>
    where
        Self: Sized;

    /// Discards the batch. Dropping the appender does the same.
    fn rollback(self)
    where
        Self: Sized,
    {
    }
}

/// A cursor over the samples of one series, in time order.
///
/// The contract, shared by every implementation:
/// - it starts before the first sample: call [`next`](Self::next) or
///   [`seek`](Self::seek) first;
/// - [`at`](Self::at) is only meaningful after a call returned
///   [`ValueType::Float`];
/// - after it returned [`ValueType::None`] once it keeps returning it, and
///   [`err`](Self::err) says whether it ended because of an error.
pub trait SampleIterator {
    /// Moves to the next sample.
    fn next(&mut self) -> ValueType;

    /// Moves to the first sample at or after `t`. Never moves backwards: if
    /// the current sample is already at or after `t`, stays on it.
    fn seek(&mut self, t: i64) -> ValueType {
        loop {
            match self.current_type() {
                ValueType::Float if self.at().0 >= t => return ValueType::Float,
                _ => {}
            }
            if self.next() == ValueType::None {
                return ValueType::None;
            }
        }
    }

    /// The kind of the current sample ([`ValueType::None`] before the first
    /// call and after the end).
    fn current_type(&self) -> ValueType;

    /// The current sample's timestamp and value.
    fn at(&self) -> (i64, f64);

    /// The error that ended iteration, if any. Takes it out.
    fn err(&mut self) -> Option<StorageError> {
        None
    }
}

impl<I: SampleIterator + ?Sized> SampleIterator for Box<I> {
    fn next(&mut self) -> ValueType {
        (**self).next()
    }
    fn seek(&mut self, t: i64) -> ValueType {
        (**self).seek(t)
    }
    fn current_type(&self) -> ValueType {
        (**self).current_type()
    }
    fn at(&self) -> (i64, f64) {
        (**self).at()
    }
    fn err(&mut self) -> Option<StorageError> {
        (**self).err()
    }
}

/// One series of a selection: its labels and a way to read its samples.
pub trait Series: Send + Sync {
    /// The series' labels.
    fn labels(&self) -> &Labels;

    /// A new cursor over the series' samples within the querier's range. Each
    /// call starts from the beginning; the samples are decoded lazily.
    fn iter(&self) -> Box<dyn SampleIterator + Send + '_>;
}

/// A warning that came with a result: the answer is usable but may be
/// incomplete or approximate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// Part of the data could not be read; the rest is returned.
    PartialData {
        /// What was skipped and why.
        what: String,
    },
    /// A result was cut at a limit the caller asked for.
    Truncated {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::PartialData { what } => write!(f, "partial data: {what}"),
            Warning::Truncated { limit } => write!(f, "results truncated to {limit}"),
        }
    }
}

/// The series a [`Querier::select`] found, sorted by labels when asked to
/// be, with any warnings.
pub struct SeriesSet<'q> {
    /// The series.
    pub series: Vec<Box<dyn Series + 'q>>,
    /// Warnings about the selection.
    pub warnings: Vec<Warning>,
}

impl fmt::Debug for SeriesSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesSet")
            .field("series", &self.series.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Hints a querier may use to read less. They never change the answer.
#[derive(Debug, Clone, Default)]
pub struct SelectHints {
    /// Earliest timestamp the caller will read.
    pub start: i64,
    /// Latest timestamp the caller will read.
    pub end: i64,
    /// The query step in ms, 0 for instant queries.
    pub step: i64,
    /// The function around the selector, if any (e.g. `"rate"`).
    pub func: Option<String>,
    /// The range of a matrix selector in ms, 0 for instant vectors.
    pub range: i64,
}

/// A read view of storage over a time range `[mint, maxt]`.
pub trait Querier: Send + Sync {
    /// The series that satisfy every matcher and have samples in the range.
    /// A series lacking a label matches a matcher that accepts `""`. When
    /// `sorted` is true the series come sorted by labels.
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError>;

    /// The sorted, unique label names of the series that satisfy the
    /// matchers (all series when there are none).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// The sorted, unique values of label `name` over the series that satisfy
    /// the matchers.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// Something that can be queried: it hands out [`Querier`]s.
pub trait Queryable: Send + Sync {
    /// A querier over `[mint, maxt]`, both in ms and inclusive.
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError>;
}

impl<Q: Queryable + ?Sized> Queryable for Arc<Q> {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        (**self).querier(mint, maxt)
    }
}

impl<Q: Queryable + ?Sized> Queryable for &Q {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        (**self).querier(mint, maxt)
    }
}

/// Something that hands out [`Appender`]s.
pub trait Appendable: Send + Sync {
    /// The appender type.
    type Appender<'a>: Appender
    where
        Self: 'a;

    /// A new, empty batch.
    fn appender(&self) -> Self::Appender<'_>;
}

/// Does `labels` satisfy every matcher? Missing labels count as `""`.
pub fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get_or_empty(m.name())))
}

/// A [`SampleIterator`] over a slice of samples, for tests and simple
/// storages.
#[derive(Debug, Clone)]
pub struct SliceIterator<'a> {
    samples: &'a [crate::value::Sample],
    /// Index of the current sample plus one; 0 before the first.
    pos: usize,
}

impl<'a> SliceIterator<'a> {
    /// A cursor over `samples`, which must be in time order.
    pub fn new(samples: &'a [crate::value::Sample]) -> Self {
        SliceIterator { samples, pos: 0 }
    }
}

impl SampleIterator for SliceIterator<'_> {
    fn next(&mut self) -> ValueType {
        if self.pos < self.samples.len() {
            self.pos += 1;
            ValueType::Float
        } else {
            self.pos = self.samples.len() + 1;
            ValueType::None
        }
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.pos > self.samples.len() {
            return ValueType::None;
        }
        let cur = self.pos.saturating_sub(1);
        if self.pos > 0 && self.samples[cur].t >= t {
            return ValueType::Float;
        }
        let rest = &self.samples[cur..];
        let i = cur + rest.partition_point(|s| s.t < t);
        if i < self.samples.len() {
            self.pos = i + 1;
            ValueType::Float
        } else {
            self.pos = self.samples.len() + 1;
            ValueType::None
        }
    }

    fn current_type(&self) -> ValueType {
        if self.pos >= 1 && self.pos <= self.samples.len() {
            ValueType::Float
        } else {
            ValueType::None
        }
    }

    fn at(&self) -> (i64, f64) {
        match self.samples.get(self.pos.wrapping_sub(1)) {
            Some(s) => (s.t, s.v),
            None => (i64::MIN, f64::NAN),
        }
    }
}
