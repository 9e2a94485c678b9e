//! Merging queriers: one sorted series set out of the head and the blocks.
//!
//! Each source answers on its own; the merge sorts the series of all sources
//! by labels and joins series with equal labels into one whose iterator
//! merges the sources' samples in time order. Where two sources hold a
//! sample at the same timestamp (overlapping blocks, or a block and the head
//! right after a block was cut), the earlier source in the list wins, so
//! callers list the freshest source first.

use vigil_model::{
    Labels, Matcher, Querier, SampleIterator, SelectHints, Series, SeriesSet, StorageError,
    ValueType,
};

/// A querier over several sources.
pub struct MergeQuerier<'a> {
    sources: Vec<Box<dyn Querier + 'a>>,
}

impl std::fmt::Debug for MergeQuerier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeQuerier")
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl<'a> MergeQuerier<'a> {
    /// A querier over `sources`; on equal timestamps the first source wins.
    pub fn new(sources: Vec<Box<dyn Querier + 'a>>) -> Self {
        MergeQuerier { sources }
    }
}

impl Querier for MergeQuerier<'_> {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        if self.sources.len() == 1 {
            return self.sources[0].select(sorted, hints, matchers);
        }
        let mut all: Vec<(usize, Box<dyn Series + '_>)> = Vec::new();
        let mut warnings = Vec::new();
        for (i, s) in self.sources.iter().enumerate() {
            let set = s.select(true, hints, matchers)?;
            warnings.extend(set.warnings);
            all.extend(set.series.into_iter().map(|x| (i, x)));
        }
        // Stable: equal labels keep their source order.
        all.sort_by(|a, b| a.1.labels().cmp(b.1.labels()).then(a.0.cmp(&b.0)));
        let mut series: Vec<Box<dyn Series + '_>> = Vec::with_capacity(all.len());
        let mut group: Vec<Box<dyn Series + '_>> = Vec::new();
        for (_, s) in all {
            if let Some(first) = group.first() {
                if first.labels() != s.labels() {
                    series.push(merge_group(std::mem::take(&mut group)));
                }
            }
            group.push(s);
        }
        if !group.is_empty() {
            series.push(merge_group(group));
        }
        Ok(SeriesSet { series, warnings })
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        for s in &self.sources {
            out.extend(s.label_names(matchers)?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        for s in &self.sources {
            out.extend(s.label_values(name, matchers)?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn merge_group<'a>(mut group: Vec<Box<dyn Series + 'a>>) -> Box<dyn Series + 'a> {
    if group.len() == 1 {
        return group.pop().expect("one element");
    }
    let labels = group[0].labels().clone();
    Box::new(MergedSeries {
        labels,
        parts: group,
    })
}

/// Series with equal labels from several sources, read as one.
struct MergedSeries<'a> {
    labels: Labels,
    parts: Vec<Box<dyn Series + 'a>>,
}

impl Series for MergedSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + Send + '_> {
        Box::new(MergeIter::new(
            self.parts.iter().map(|p| p.iter()).collect(),
        ))
    }
}

/// Merges sample iterators in time order; on equal timestamps the iterator
/// earlier in the list wins and the others skip that timestamp.
pub struct MergeIter<'a> {
    its: Vec<Box<dyn SampleIterator + Send + 'a>>,
    /// Whether each iterator stands on an unconsumed sample.
    live: Vec<bool>,
    at: (i64, f64),
    state: ValueType,
    started: bool,
    err: Option<StorageError>,
}

impl std::fmt::Debug for MergeIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeIter")
            .field("parts", &self.its.len())
            .finish()
    }
}

impl<'a> MergeIter<'a> {
    /// Merges `its`, none of which has been advanced yet.
    pub fn new(its: Vec<Box<dyn SampleIterator + Send + 'a>>) -> Self {
        let n = its.len();
        MergeIter {
            its,
            live: vec![false; n],
            at: (0, 0.0),
            state: ValueType::None,
            started: false,
            err: None,
        }
    }

    /// Advances every iterator to its first sample at or after `t`.
    fn position(&mut self, t: i64) {
        for (i, it) in self.its.iter_mut().enumerate() {
            let ok = (it.current_type() == ValueType::Float && it.at().0 >= t)
                || it.seek(t) == ValueType::Float;
            self.live[i] = ok;
            if !ok {
                if let Some(e) = it.err() {
                    self.err.get_or_insert(e);
                }
            }
        }
    }

    /// Picks the smallest current sample.
    fn pick(&mut self) -> ValueType {
        let mut best: Option<(i64, f64)> = None;
        for (i, it) in self.its.iter().enumerate() {
            if !self.live[i] {
                continue;
            }
            let s = it.at();
            if best.is_none_or(|b| s.0 < b.0) {
                best = Some(s);
            }
        }
        match best {
            Some(s) if self.err.is_none() => {
                self.at = s;
                self.state = ValueType::Float;
            }
            _ => self.state = ValueType::None,
        }
        self.state
    }
}

impl SampleIterator for MergeIter<'_> {
    fn next(&mut self) -> ValueType {
        if self.started && self.state == ValueType::None {
            return ValueType::None;
        }
        let t = if self.started {
            self.at.0.saturating_add(1)
        } else {
            i64::MIN
        };
        self.started = true;
        self.position(t);
        self.pick()
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.started && self.state == ValueType::None {
            return ValueType::None;
        }
        if self.state == ValueType::Float && self.at.0 >= t {
            return ValueType::Float;
        }
        let t = if self.started {
            t.max(self.at.0.saturating_add(1))
        } else {
            t
        };
        self.started = true;
        self.position(t);
        self.pick()
    }

    fn current_type(&self) -> ValueType {
        self.state
    }

    fn at(&self) -> (i64, f64) {
        self.at
    }

    fn err(&mut self) -> Option<StorageError> {
        self.err.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::{labels, MemStorage, Queryable, Sample};

    fn collect(it: &mut dyn SampleIterator) -> Vec<(i64, f64)> {
        let mut v = Vec::new();
        while it.next() == ValueType::Float {
            v.push(it.at());
        }
        v
    }

    #[test]
    fn merges_sources_by_labels_and_time() {
        let a = MemStorage::new();
        let b = MemStorage::new();
        let x = labels!("__name__" => "x");
        let y = labels!("__name__" => "y");
        a.add_series(x.clone(), [Sample::new(1, 1.0), Sample::new(3, 3.0)])
            .unwrap();
        b.add_series(
            x.clone(),
            [
                Sample::new(2, 2.0),
                Sample::new(3, 30.0),
                Sample::new(4, 4.0),
            ],
        )
        .unwrap();
        b.add_series(y.clone(), [Sample::new(1, 1.0)]).unwrap();
        let q = MergeQuerier::new(vec![a.querier(0, 10).unwrap(), b.querier(0, 10).unwrap()]);
        let set = q.select(true, None, &[]).unwrap();
        assert_eq!(set.series.len(), 2);
        assert_eq!(set.series[0].labels(), &x);
        assert_eq!(
            collect(&mut *set.series[0].iter()),
            vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
        );
        let mut it = set.series[0].iter();
        assert_eq!(it.seek(3), ValueType::Float);
        assert_eq!(it.at(), (3, 3.0));
        assert_eq!(it.next(), ValueType::Float);
        assert_eq!(it.at(), (4, 4.0));
        assert_eq!(it.next(), ValueType::None);
        assert_eq!(q.label_values("__name__", &[]).unwrap(), vec!["x", "y"]);
    }
}
