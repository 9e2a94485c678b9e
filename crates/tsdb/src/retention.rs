//! Retention by series (Prometheus issue #15350): rules that keep the
//! series matching a selector for less time than the database's retention,
//! for example `debug_.*` for 7 days while everything else stays 90.
//!
//! A rule is a list of series selectors (each a list of matchers, as in a
//! `match[]` parameter) and a retention. A series is governed by the first
//! rule that one of its selectors matches; series that no rule matches keep
//! the database's retention. Every rule's retention is measured back from
//! the newest data in the database ([`RetentionRules::cutoffs`]).
//!
//! How the rules act (see [`Db`](crate::Db)):
//!
//! - **Reads** leave out a governed series' samples older than its cutoff at
//!   once, whatever the blocks still hold.
//! - **Compaction** drops those samples from the block it writes.
//! - **Retention** rewrites a block whose whole range lies behind a rule's
//!   cutoff while it still holds series of that rule, without them.
//!
//! A block that straddles a cutoff is trimmed when it is next compacted or
//! once it lies wholly behind the cutoff, so expired samples are hidden at
//! once and gone from disk at most one block range later. Rules only ever
//! remove data: a rule longer than the database's retention changes nothing,
//! since whole blocks past the database's retention are deleted.

use std::fmt;
use std::sync::Arc;

use vigil_model::{
    storage::matches_all, Labels, Matcher, Querier, SampleIterator, SelectHints, Series, SeriesSet,
    StorageError, ValueType,
};

/// Why a [`RetentionRule`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionRuleError {
    /// The rule has no selector.
    #[error("a retention rule needs at least one selector")]
    NoSelectors,
    /// A selector has no matcher, or only matchers that match the empty
    /// string (it would select every series).
    #[error("selector #{index} matches every series; it needs a matcher that does not match the empty string")]
    SelectsEverything {
        /// The selector's 0-based position in the rule.
        index: usize,
    },
    /// The retention is zero or negative.
    #[error("retention must be positive, got {ms} ms")]
    NotPositive {
        /// The retention given, in milliseconds.
        ms: i64,
    },
}

/// One retention rule: the series any of its selectors match keep samples
/// for `retention` milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    selectors: Vec<Vec<Matcher>>,
    retention: i64,
}

impl RetentionRule {
    /// A rule. Each selector must contain a matcher that does not match the
    /// empty string (as Prometheus requires of a series selector), and the
    /// retention must be positive.
    pub fn new(
        selectors: Vec<Vec<Matcher>>,
        retention: i64,
    ) -> Result<RetentionRule, RetentionRuleError> {
        if selectors.is_empty() {
            return Err(RetentionRuleError::NoSelectors);
        }
        for (index, s) in selectors.iter().enumerate() {
            if s.iter().all(|m| m.matches_empty()) {
                return Err(RetentionRuleError::SelectsEverything { index });
            }
        }
        if retention <= 0 {
            return Err(RetentionRuleError::NotPositive { ms: retention });
        }
        Ok(RetentionRule {
            selectors,
            retention,
        })
    }

    /// The selectors.
    pub fn selectors(&self) -> &[Vec<Matcher>] {
        &self.selectors
    }

    /// The retention in milliseconds.
    pub fn retention(&self) -> i64 {
        self.retention
    }

    /// Does one of the rule's selectors match `labels`?
    pub fn matches(&self, labels: &Labels) -> bool {
        self.selectors.iter().any(|s| matches_all(labels, s))
    }
}

impl fmt::Display for RetentionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.selectors.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            f.write_str("{")?;
            for (j, m) in s.iter().enumerate() {
                if j > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{m}")?;
            }
            f.write_str("}")?;
        }
        write!(f, " for {}", vigil_model::format_duration(self.retention))
    }
}

/// An ordered list of [`RetentionRule`]s; the first that matches a series
/// governs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionRules {
    rules: Vec<RetentionRule>,
}

impl RetentionRules {
    /// The rules, in order of precedence.
    pub fn new(rules: Vec<RetentionRule>) -> RetentionRules {
        RetentionRules { rules }
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in order of precedence.
    pub fn rules(&self) -> &[RetentionRule] {
        &self.rules
    }

    /// The position of the rule that governs `labels`, if any.
    pub fn rule_for(&self, labels: &Labels) -> Option<usize> {
        self.rules.iter().position(|r| r.matches(labels))
    }

    /// The cutoff of each rule when the newest data is at `newest` (ms):
    /// samples before it are expired. Saturates instead of overflowing.
    pub fn cutoffs(&self, newest: i64) -> Cutoffs<'_> {
        Cutoffs {
            rules: self,
            cutoffs: self
                .rules
                .iter()
                .map(|r| newest.saturating_sub(r.retention))
                .collect(),
        }
    }
}

/// The rules with their cutoffs at one reference time
/// ([`RetentionRules::cutoffs`]).
#[derive(Debug, Clone)]
pub struct Cutoffs<'a> {
    rules: &'a RetentionRules,
    cutoffs: Vec<i64>,
}

impl Cutoffs<'_> {
    /// The earliest timestamp `labels` keeps: the cutoff of the rule that
    /// governs it, `None` when no rule does.
    pub fn keep_from(&self, labels: &Labels) -> Option<i64> {
        self.rules
            .rule_for(labels)
            .and_then(|i| self.cutoffs.get(i).copied())
    }

    /// The latest cutoff of all rules, `None` without rules. A query that
    /// starts at or after it sees no expired sample.
    pub fn latest(&self) -> Option<i64> {
        self.cutoffs.iter().copied().max()
    }

    /// Each rule with its cutoff.
    pub fn iter(&self) -> impl Iterator<Item = (&RetentionRule, i64)> + '_ {
        self.rules.rules.iter().zip(self.cutoffs.iter().copied())
    }
}

/// A querier that hides the samples retention rules expired: a governed
/// series starts at its cutoff, and a series left with no sample in the
/// range is left out. Label names and values are not filtered (as with
/// tombstones).
pub(crate) struct RetentionQuerier<'a> {
    inner: Box<dyn Querier + 'a>,
    rules: Arc<RetentionRules>,
    newest: i64,
}

impl<'a> RetentionQuerier<'a> {
    /// Filters `inner` by `rules` with cutoffs counted back from `newest`.
    pub(crate) fn new(
        inner: Box<dyn Querier + 'a>,
        rules: Arc<RetentionRules>,
        newest: i64,
    ) -> Self {
        RetentionQuerier {
            inner,
            rules,
            newest,
        }
    }
}

impl Querier for RetentionQuerier<'_> {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        let set = self.inner.select(sorted, hints, matchers)?;
        let cutoffs = self.rules.cutoffs(self.newest);
        let mut series: Vec<Box<dyn Series + '_>> = Vec::with_capacity(set.series.len());
        for s in set.series {
            let Some(from) = cutoffs.keep_from(s.labels()) else {
                series.push(s);
                continue;
            };
            // Keep the series only if a sample survives.
            let mut it = s.iter();
            let kept = it.seek(from) != ValueType::None;
            if let Some(e) = it.err() {
                return Err(e);
            }
            drop(it);
            if kept {
                series.push(Box::new(TrimmedSeries { inner: s, from }));
            }
        }
        Ok(SeriesSet {
            series,
            warnings: set.warnings,
        })
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.inner.label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.inner.label_values(name, matchers)
    }
}

/// A series read from `from` on.
struct TrimmedSeries<'a> {
    inner: Box<dyn Series + 'a>,
    from: i64,
}

impl Series for TrimmedSeries<'_> {
    fn labels(&self) -> &Labels {
        self.inner.labels()
    }

    fn iter(&self) -> Box<dyn SampleIterator + Send + '_> {
        Box::new(TrimmedIter {
            inner: self.inner.iter(),
            from: self.from,
            started: false,
        })
    }
}

/// A cursor that skips the samples before `from`.
struct TrimmedIter<I> {
    inner: I,
    from: i64,
    started: bool,
}

impl<I: SampleIterator> SampleIterator for TrimmedIter<I> {
    fn next(&mut self) -> ValueType {
        if self.started {
            self.inner.next()
        } else {
            self.started = true;
            self.inner.seek(self.from)
        }
    }

    fn seek(&mut self, t: i64) -> ValueType {
        self.started = true;
        self.inner.seek(t.max(self.from))
    }

    fn current_type(&self) -> ValueType {
        self.inner.current_type()
    }

    fn at(&self) -> (i64, f64) {
        self.inner.at()
    }

    fn err(&mut self) -> Option<StorageError> {
        self.inner.err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::labels;

    fn re(name: &str, v: &str) -> Matcher {
        Matcher::new(vigil_model::MatchOp::Regex, name, v).unwrap()
    }

    #[test]
    fn the_first_matching_rule_governs() {
        let rules = RetentionRules::new(vec![
            RetentionRule::new(vec![vec![Matcher::equal("__name__", "debug_keep")]], 90).unwrap(),
            RetentionRule::new(vec![vec![re("__name__", "debug_.*")]], 7).unwrap(),
        ]);
        let c = rules.cutoffs(100);
        assert_eq!(c.keep_from(&labels!("__name__" => "debug_keep")), Some(10));
        assert_eq!(c.keep_from(&labels!("__name__" => "debug_x")), Some(93));
        assert_eq!(c.keep_from(&labels!("__name__" => "up")), None);
        assert_eq!(c.latest(), Some(93));
    }

    #[test]
    fn bad_rules_are_rejected() {
        assert_eq!(
            RetentionRule::new(vec![], 1),
            Err(RetentionRuleError::NoSelectors)
        );
        assert_eq!(
            RetentionRule::new(vec![vec![re("job", ".*")]], 1),
            Err(RetentionRuleError::SelectsEverything { index: 0 })
        );
        assert_eq!(
            RetentionRule::new(vec![vec![Matcher::equal("job", "a")]], 0),
            Err(RetentionRuleError::NotPositive { ms: 0 })
        );
    }

    #[test]
    fn cutoffs_saturate() {
        let rules = RetentionRules::new(vec![RetentionRule::new(
            vec![vec![Matcher::equal("job", "a")]],
            i64::MAX,
        )
        .unwrap()]);
        assert_eq!(rules.cutoffs(i64::MIN + 5).latest(), Some(i64::MIN));
    }
}
