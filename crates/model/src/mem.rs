//! A simple in-memory storage implementing every storage trait.
//!
//! It is meant for tests, for examples, and for embedding where data is small
//! and need not survive a restart. It keeps each series as a sorted vector of
//! samples behind one lock, and follows the same rules as the TSDB head for
//! what it accepts: samples of a series in time order, a repeated timestamp
//! only with the identical value.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::storage::{
    matches_all, AppendError, Appendable, Appender, CommitError, Querier, Queryable,
    SampleIterator, SelectHints, Series, SeriesRef, SeriesSet, SliceIterator, StorageError,
};
use crate::value::{Sample, Value};

#[derive(Debug, Default)]
struct Inner {
    /// Series by labels, each with its samples in time order.
    series: BTreeMap<Labels, Vec<Sample>>,
}

/// An in-memory storage. Cloning it gives another handle to the same data.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    inner: Arc<RwLock<Inner>>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends samples for one series directly, in one batch, bypassing the
    /// appender. Convenient for tests.
    pub fn add_series(
        &self,
        labels: Labels,
        samples: impl IntoIterator<Item = Sample>,
    ) -> Result<(), AppendError> {
        let mut app = self.appender();
        for s in samples {
            app.append(None, &labels, s.t, Value::Float(s.v))?;
        }
        app.commit()
            .map_err(|CommitError::Storage(e)| AppendError::Storage(e))
    }

    /// The number of series held.
    pub fn num_series(&self) -> usize {
        self.inner.read().series.len()
    }
}

/// A batch of appends to a [`MemStorage`].
#[derive(Debug)]
pub struct MemAppender<'a> {
    store: &'a MemStorage,
    pending: Vec<(Labels, Sample)>,
    /// The newest pending sample of each series in the batch.
    last_pending: HashMap<Labels, Sample>,
}

impl MemAppender<'_> {
    /// The newest sample of `labels` counting what is committed and what is
    /// pending in this batch.
    fn last_sample(&self, inner: &Inner, labels: &Labels) -> Option<Sample> {
        let pending = self.last_pending.get(labels).copied();
        pending.or_else(|| inner.series.get(labels).and_then(|v| v.last().copied()))
    }
}

impl Appender for MemAppender<'_> {
    fn append(
        &mut self,
        _sref: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: Value,
    ) -> Result<SeriesRef, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        let Some(v) = v.as_f64() else {
            return Err(AppendError::UnsupportedValue);
        };
        let inner = self.store.inner.read();
        if let Some(last) = self.last_sample(&inner, labels) {
            if t < last.t {
                return Err(AppendError::OutOfOrder);
            }
            if t == last.t {
                if last.v.to_bits() == v.to_bits() {
                    // Prometheus accepts an exact duplicate silently.
                    return Ok(SeriesRef(labels.stable_hash()));
                }
                return Err(AppendError::DuplicateSampleForTimestamp);
            }
        }
        drop(inner);
        self.pending.push((labels.clone(), Sample::new(t, v)));
        self.last_pending.insert(labels.clone(), Sample::new(t, v));
        Ok(SeriesRef(labels.stable_hash()))
    }

    fn commit(self) -> Result<(), CommitError> {
        let mut inner = self.store.inner.write();
        for (l, s) in self.pending {
            let v = inner.series.entry(l).or_default();
            // Another batch may have committed newer samples meanwhile: keep
            // the series sorted and free of duplicate timestamps.
            match v.last() {
                Some(last) if last.t >= s.t => {
                    if let Err(i) = v.binary_search_by_key(&s.t, |x| x.t) {
                        v.insert(i, s);
                    }
                }
                _ => v.push(s),
            }
        }
        Ok(())
    }
}

impl Appendable for MemStorage {
    type Appender<'a> = MemAppender<'a>;

    fn appender(&self) -> MemAppender<'_> {
        MemAppender {
            store: self,
            pending: Vec::new(),
            last_pending: HashMap::new(),
        }
    }
}

/// A series copied out of a [`MemStorage`], restricted to the query range.
#[derive(Debug)]
struct MemSeries {
    labels: Labels,
    samples: Vec<Sample>,
}

impl Series for MemSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + Send + '_> {
        Box::new(SliceIterator::new(&self.samples))
    }
}

/// A read view of a [`MemStorage`].
#[derive(Debug)]
pub struct MemQuerier<'a> {
    store: &'a MemStorage,
    mint: i64,
    maxt: i64,
}

impl Querier for MemQuerier<'_> {
    fn select(
        &self,
        _sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        let inner = self.store.inner.read();
        let mut series: Vec<Box<dyn Series>> = Vec::new();
        // BTreeMap iteration is already in label order.
        for (labels, samples) in &inner.series {
            if !matches_all(labels, matchers) {
                continue;
            }
            let lo = samples.partition_point(|s| s.t < self.mint);
            let hi = samples.partition_point(|s| s.t <= self.maxt);
            if lo >= hi {
                continue;
            }
            series.push(Box::new(MemSeries {
                labels: labels.clone(),
                samples: samples[lo..hi].to_vec(),
            }));
        }
        Ok(SeriesSet {
            series,
            warnings: Vec::new(),
        })
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let set = self.select(false, None, matchers)?;
        let mut names: Vec<String> = set
            .series
            .iter()
            .flat_map(|s| {
                s.labels()
                    .iter()
                    .map(|l| l.name.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let set = self.select(false, None, matchers)?;
        let mut values: Vec<String> = set
            .series
            .iter()
            .filter_map(|s| s.labels().get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(MemQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::matcher::MatchOp;
    use crate::storage::ValueType;

    fn collect(it: &mut dyn SampleIterator) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        while it.next() == ValueType::Float {
            out.push(it.at());
        }
        out
    }

    #[test]
    fn append_commit_query() {
        let s = MemStorage::new();
        let a = labels!("__name__" => "up", "job" => "a");
        let b = labels!("__name__" => "up", "job" => "b");
        let mut app = s.appender();
        app.append(None, &b, 10, Value::Float(1.0)).unwrap();
        app.append(None, &a, 10, Value::Float(2.0)).unwrap();
        app.append(None, &a, 20, Value::Float(3.0)).unwrap();
        assert!(matches!(
            app.append(None, &a, 15, Value::Float(3.0)),
            Err(AppendError::OutOfOrder)
        ));
        assert!(matches!(
            app.append(None, &a, 20, Value::Float(4.0)),
            Err(AppendError::DuplicateSampleForTimestamp)
        ));
        app.append(None, &a, 20, Value::Float(3.0)).unwrap();
        // Nothing is visible before the commit.
        assert_eq!(s.num_series(), 0);
        app.commit().unwrap();

        let q = s.querier(0, 15).unwrap();
        let set = q
            .select(true, None, &[Matcher::equal("__name__", "up")])
            .unwrap();
        assert_eq!(set.series.len(), 2);
        assert_eq!(set.series[0].labels(), &a);
        assert_eq!(collect(&mut set.series[0].iter()), vec![(10, 2.0)]);
        let m = Matcher::new(MatchOp::Regex, "job", "b|c").unwrap();
        let set = q.select(true, None, &[m]).unwrap();
        assert_eq!(set.series.len(), 1);
        assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a", "b"]);
        assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "job"]);
    }

    #[test]
    fn dropped_appender_rolls_back() {
        let s = MemStorage::new();
        {
            let mut app = s.appender();
            app.append(None, &labels!("a" => "1"), 1, Value::Float(1.0))
                .unwrap();
        }
        assert_eq!(s.num_series(), 0);
    }

    #[test]
    fn missing_label_matches_empty_matcher() {
        let s = MemStorage::new();
        s.add_series(labels!("__name__" => "x"), [Sample::new(1, 1.0)])
            .unwrap();
        s.add_series(
            labels!("__name__" => "x", "a" => "1"),
            [Sample::new(1, 1.0)],
        )
        .unwrap();
        let q = s.querier(0, 10).unwrap();
        let set = q.select(true, None, &[Matcher::equal("a", "")]).unwrap();
        assert_eq!(set.series.len(), 1);
        assert_eq!(set.series[0].labels(), &labels!("__name__" => "x"));
    }

    #[test]
    fn seek_contract() {
        let samples: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        let mut it = SliceIterator::new(&samples);
        assert_eq!(it.seek(25), ValueType::Float);
        assert_eq!(it.at(), (30, 3.0));
        // Never backwards.
        assert_eq!(it.seek(0), ValueType::Float);
        assert_eq!(it.at(), (30, 3.0));
        assert_eq!(it.next(), ValueType::Float);
        assert_eq!(it.at(), (40, 4.0));
        assert_eq!(it.seek(1000), ValueType::None);
        assert_eq!(it.next(), ValueType::None);
        let empty: [Sample; 0] = [];
        let mut it = SliceIterator::new(&empty);
        assert_eq!(it.next(), ValueType::None);
        assert_eq!(it.seek(0), ValueType::None);
    }
}
