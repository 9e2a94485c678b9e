//! The head's inverted index: label name -> value -> sorted postings (series
//! references), and the matcher evaluation over it.
//!
//! Series references are handed out in increasing order, so adding a series
//! appends to its postings lists and they stay sorted without work. Matchers
//! are served as Prometheus's `PostingsForMatchers` does: matchers that do not
//! accept the empty string intersect the union of their values' postings;
//! matchers that accept it subtract the postings of the values they reject
//! (so that series lacking the label still match). A regex matcher scans only
//! the values of its own label, and a literal set looks its values up.

use std::collections::HashMap;

use parking_lot::RwLock;
use vigil_model::{Labels, MatchOp, Matcher};

use crate::block::mark_common;

type Postings = Vec<u64>;

/// Cardinality statistics of the head's index.
#[derive(Debug, Clone, Default)]
pub struct Cardinality {
    /// Each label name with its number of distinct values.
    pub values_per_name: Vec<(String, usize)>,
    /// Each label pair with its number of series.
    pub series_per_pair: Vec<(String, String, usize)>,
}

/// The inverted index.
#[derive(Debug, Default)]
pub(crate) struct PostingsIndex {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// name -> value -> postings.
    map: HashMap<Box<str>, HashMap<Box<str>, Postings>>,
    /// Every series reference, sorted.
    all: Postings,
}

impl PostingsIndex {
    /// Adds a series. References must be added in increasing order for the
    /// fast path; an older reference (during replay) is inserted in place.
    pub(crate) fn add(&self, sref: u64, labels: &Labels) {
        let mut inner = self.inner.write();
        insert_sorted(&mut inner.all, sref);
        for l in labels.iter() {
            let values = match inner.map.get_mut(l.name) {
                Some(v) => v,
                None => inner.map.entry(l.name.into()).or_default(),
            };
            let postings = match values.get_mut(l.value) {
                Some(p) => p,
                None => values.entry(l.value.into()).or_default(),
            };
            insert_sorted(postings, sref);
        }
    }

    /// How many series have the label `name="value"` (`value` may be empty:
    /// series without the label are not counted).
    pub(crate) fn count(&self, name: &str, value: &str) -> usize {
        self.inner
            .read()
            .map
            .get(name)
            .and_then(|v| v.get(value))
            .map_or(0, Vec::len)
    }

    /// Removes series (garbage collection).
    #[allow(dead_code)] // used by head truncation, which lands with blocks
    pub(crate) fn remove(&self, refs: &[(u64, Labels)]) {
        let mut inner = self.inner.write();
        for (sref, labels) in refs {
            if let Ok(i) = inner.all.binary_search(sref) {
                inner.all.remove(i);
            }
            for l in labels.iter() {
                let mut drop_name = false;
                if let Some(values) = inner.map.get_mut(l.name) {
                    if let Some(p) = values.get_mut(l.value) {
                        if let Ok(i) = p.binary_search(sref) {
                            p.remove(i);
                        }
                        if p.is_empty() {
                            values.remove(l.value);
                        }
                    }
                    drop_name = values.is_empty();
                }
                if drop_name {
                    inner.map.remove(l.name);
                }
            }
        }
    }

    /// The references of the series that satisfy every matcher, sorted.
    ///
    /// Matchers that reject `""` go first, the one naming the fewest series
    /// first (one that names its values before one that must scan them);
    /// each later one narrows the candidates by intersecting each of its
    /// values' postings with them, so a broad matcher after a selective one
    /// costs about the candidates, not the union of its postings. Matchers
    /// that accept `""` then subtract the postings of the values they
    /// reject, one list at a time.
    pub(crate) fn postings_for_matchers(&self, matchers: &[Matcher]) -> Postings {
        let inner = self.inner.read();
        let (mut positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        positive.sort_by_cached_key(|m| inner.cost(m));
        let mut result: Option<Postings> = None;
        for m in positive {
            let lists = inner.lists(m, true);
            let r = match &result {
                None => union(&lists),
                Some(r) => intersect_any(r, &lists),
            };
            if r.is_empty() {
                return r;
            }
            result = Some(r);
        }
        let mut result = result.unwrap_or_else(|| inner.all.clone());
        for m in negative {
            // Series whose value of this label the matcher rejects. A series
            // lacking the label has value "" which the matcher accepts.
            for rejected in inner.lists(m, false) {
                if result.is_empty() {
                    return result;
                }
                result = subtract(&result, rejected);
            }
        }
        result
    }

    /// Sorted label names of the series in `refs` (all series when `None`).
    pub(crate) fn label_names(&self) -> Vec<String> {
        let inner = self.inner.read();
        let mut v: Vec<String> = inner.map.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Sorted values of `name` over all series.
    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        let inner = self.inner.read();
        let mut v: Vec<String> = inner
            .map
            .get(name)
            .map(|vals| vals.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Label names with their number of values, and (name, value) pairs with
    /// their number of series, for cardinality statistics.
    pub(crate) fn cardinality(&self) -> Cardinality {
        let inner = self.inner.read();
        let names = inner
            .map
            .iter()
            .map(|(n, v)| (n.to_string(), v.len()))
            .collect();
        let pairs = inner
            .map
            .iter()
            .flat_map(|(n, vals)| {
                vals.iter()
                    .map(move |(v, p)| (n.to_string(), v.to_string(), p.len()))
            })
            .collect();
        Cardinality {
            values_per_name: names,
            series_per_pair: pairs,
        }
    }
}

impl Inner {
    /// With `accepting`, the postings lists of the values `m` accepts;
    /// otherwise of the values it rejects. Only values of `m`'s label are
    /// looked at.
    fn lists<'a>(&'a self, m: &Matcher, accepting: bool) -> Vec<&'a Postings> {
        let Some(values) = self.map.get(m.name()) else {
            return Vec::new();
        };
        // Direct lookups where the matcher names its values.
        if accepting {
            if let Some(set) = m.set_matches() {
                return set.iter().filter_map(|v| values.get(*v)).collect();
            }
        } else if m.op() == MatchOp::NotEqual {
            return values.get(m.value()).into_iter().collect();
        }
        values
            .iter()
            .filter(|(v, _)| m.matches(v) == accepting)
            .map(|(_, p)| p)
            .collect()
    }

    /// A rough cost of evaluating positive matcher `m`, to order matchers:
    /// the series a lookup names, or more than any lookup for a matcher
    /// that must test every value of its label.
    fn cost(&self, m: &Matcher) -> usize {
        let Some(values) = self.map.get(m.name()) else {
            return 0;
        };
        match m.set_matches() {
            Some(set) => set
                .iter()
                .filter_map(|v| values.get(*v))
                .map(Vec::len)
                .sum(),
            None => self.all.len().saturating_add(values.len()),
        }
    }
}

fn insert_sorted(p: &mut Postings, r: u64) {
    match p.last() {
        Some(&last) if last >= r => {
            if let Err(i) = p.binary_search(&r) {
                p.insert(i, r);
            }
        }
        _ => p.push(r),
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Postings {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len() * 16 < large.len() {
        // Galloping: look each of the few up in the many.
        let mut rest = large;
        for &x in small {
            let i = rest.partition_point(|&y| y < x);
            if i < rest.len() && rest[i] == x {
                out.push(x);
            }
            rest = &rest[i..];
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract(a: &[u64], b: &[u64]) -> Postings {
    if b.is_empty() {
        return a.to_vec();
    }
    let mut out = Vec::with_capacity(a.len());
    if a.len() * 16 < b.len() {
        // Galloping: look each of the few up in the many.
        let mut rest = b;
        for &x in a {
            let i = rest.partition_point(|&y| y < x);
            if i >= rest.len() || rest[i] != x {
                out.push(x);
            }
            rest = &rest[i..];
        }
        return out;
    }
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// The elements of sorted `a` found in any of the sorted `lists`: `a`
/// intersected with their union, without building the union.
fn intersect_any(a: &[u64], lists: &[&Postings]) -> Postings {
    match lists {
        [] => Vec::new(),
        [one] => intersect(a, one),
        _ => {
            let mut keep = vec![false; a.len()];
            for l in lists {
                mark_common(a, l, &mut keep);
            }
            a.iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(&x, _)| x)
                .collect()
        }
    }
}

fn union(lists: &[&Postings]) -> Postings {
    match lists {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut out: Postings = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_model::labels;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        let big: Vec<u64> = (0..1000).collect();
        assert_eq!(intersect(&[5, 500, 2000], &big), vec![5, 500]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        assert_eq!(union(&[&vec![1, 4], &vec![2, 4]]), vec![1, 2, 4]);
        assert_eq!(subtract(&[5, 500, 2000], &big), vec![2000]);
        assert_eq!(
            intersect_any(&[1, 4, 7, 9], &[&vec![4, 5], &vec![1, 9, 10], &vec![]]),
            vec![1, 4, 9]
        );
        assert_eq!(intersect_any(&[3, 999], &[&big, &vec![3]]), vec![3, 999]);
        assert_eq!(intersect_any(&big, &[&vec![3, 2000], &vec![7]]), vec![3, 7]);
    }

    fn label_sets() -> impl Strategy<Value = Vec<Labels>> {
        prop::collection::vec(
            prop::collection::vec(("[abc]", "[xyz]{0,2}"), 0..4).prop_map(Labels::from_pairs),
            0..20,
        )
    }

    fn matcher() -> impl Strategy<Value = Matcher> {
        (
            "[abcd]",
            prop_oneof![
                Just(MatchOp::Equal),
                Just(MatchOp::NotEqual),
                Just(MatchOp::Regex),
                Just(MatchOp::NotRegex)
            ],
            prop_oneof![
                "[xyz]{0,2}",
                Just("x|y".to_string()),
                Just(".*".to_string()),
                Just(".+".to_string()),
                Just("x.*".to_string())
            ],
        )
            .prop_map(|(n, op, v)| Matcher::new(op, n, v).unwrap())
    }

    proptest! {
        /// The index gives exactly the series a naive scan gives.
        #[test]
        fn prop_postings_match_naive_scan(sets in label_sets(), ms in prop::collection::vec(matcher(), 0..3)) {
            let idx = PostingsIndex::default();
            for (i, l) in sets.iter().enumerate() {
                idx.add(i as u64 + 1, l);
            }
            let want: Vec<u64> = sets
                .iter()
                .enumerate()
                .filter(|(_, l)| vigil_model::storage::matches_all(l, &ms))
                .map(|(i, _)| i as u64 + 1)
                .collect();
            prop_assert_eq!(idx.postings_for_matchers(&ms), want);
        }
    }

    #[test]
    fn remove_cleans_up() {
        let idx = PostingsIndex::default();
        let a = labels!("__name__" => "m", "x" => "1");
        idx.add(1, &a);
        idx.add(2, &labels!("__name__" => "m"));
        idx.remove(&[(1, a)]);
        assert_eq!(idx.label_names(), vec!["__name__"]);
        assert_eq!(idx.postings_for_matchers(&[]), vec![2]);
    }
}
