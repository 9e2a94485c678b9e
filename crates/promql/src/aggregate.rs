//! Aggregations: `sum avg min max count group stddev stdvar topk bottomk
//! quantile count_values limitk limit_ratio`, with `by` / `without`.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};
use vigil_model::{Labels, LabelsBuilder, METRIC_NAME};

use crate::engine::QueryError;
use crate::eval::{tok, EResult, Evaluator, VSeries, Val};
use crate::functions::{format_go_float, kahan_sum_inc, quantile};
use crate::value::Point;

/// Per-group, per-step accumulator of the simple aggregations.
#[derive(Debug, Clone, Copy)]
struct Acc {
    count: f64,
    value: f64,
    comp: f64,
    mean: f64,
    incremental: bool,
}

impl Acc {
    fn new(v: f64) -> Acc {
        Acc {
            count: 1.0,
            value: v,
            comp: 0.0,
            mean: v,
            incremental: false,
        }
    }
}

/// Prometheus's hash of a label set (xxh64 over `name 0xff value 0xff`),
/// which `limit_ratio` samples by.
fn prometheus_hash(l: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(64);
    for lb in l.iter() {
        buf.extend_from_slice(lb.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(lb.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&mut self, a: &AggregateExpr) -> EResult<Val> {
        let op = a.op.id();
        let param = match &a.param {
            None => None,
            Some(p) => Some(self.eval(p)?),
        };
        let input = self.eval_vector(&a.expr)?;
        let n = self.n_steps();
        // Group key per series.
        let (include, names): (bool, Vec<&str>) = match &a.modifier {
            None => (true, Vec::new()),
            Some(LabelModifier::Include(l)) => {
                (true, l.labels.iter().map(String::as_str).collect())
            }
            Some(LabelModifier::Exclude(l)) => {
                (false, l.labels.iter().map(String::as_str).collect())
            }
        };
        let group_labels = |l: &Labels| -> Labels {
            if include {
                l.keep_only(&names)
            } else {
                let mut drop = names.clone();
                drop.push(METRIC_NAME);
                l.drop_names(&drop)
            }
        };
        let scalar_param = |v: &Option<Val>, what: &str| -> EResult<Vec<f64>> {
            match v {
                Some(Val::Scalar(s)) => Ok(s.clone()),
                _ => Err(QueryError::BadData(format!(
                    "expected scalar parameter for {what}"
                ))),
            }
        };

        if op == tok::T_TOPK
            || op == tok::T_BOTTOMK
            || op == tok::T_LIMITK
            || op == tok::T_LIMIT_RATIO
        {
            let k = scalar_param(&param, "k")?;
            if k.iter().any(|v| v.is_nan()) {
                return Err(QueryError::BadData(if op == tok::T_LIMIT_RATIO {
                    "Ratio value is NaN".into()
                } else {
                    "Parameter value is NaN".into()
                }));
            }
            return self.eval_select_aggr(op, input, &k, group_labels);
        }
        if op == tok::T_COUNT_VALUES {
            let label = match &param {
                Some(Val::String(s)) => s.clone(),
                _ => {
                    return Err(QueryError::BadData(
                        "expected string parameter for count_values".into(),
                    ))
                }
            };
            if label.is_empty() || label.contains(crate::parse::INVALID_UTF8_MARK) {
                return Err(QueryError::Execution(format!(
                    "invalid label name {label:?}"
                )));
            }
            let mut counts: HashMap<Labels, Vec<f64>> = HashMap::new();
            for s in &input {
                let g = group_labels(&s.labels);
                for p in &s.points {
                    let mut b = LabelsBuilder::from_labels(&g);
                    b.set(&label, &format_go_float(p.v));
                    let c = counts.entry(b.build()).or_insert_with(|| vec![0.0; n]);
                    c[self.step_index(p.t)] += 1.0;
                }
            }
            let mut out: Vec<VSeries> = counts
                .into_iter()
                .map(|(labels, c)| VSeries {
                    labels,
                    points: c
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| **v > 0.0)
                        .map(|(i, v)| Point {
                            t: self.step_time(i),
                            v: *v,
                        })
                        .collect(),
                    drop_name: false,
                })
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(Val::Vector(out));
        }
        if op == tok::T_QUANTILE {
            let q = scalar_param(&param, "quantile")?;
            let mut groups: HashMap<Labels, Vec<Vec<f64>>> = HashMap::new();
            for s in &input {
                let g = group_labels(&s.labels);
                let e = groups.entry(g).or_insert_with(|| vec![Vec::new(); n]);
                for p in &s.points {
                    e[self.step_index(p.t)].push(p.v);
                }
            }
            let mut warned = false;
            let mut out = Vec::with_capacity(groups.len());
            for (labels, per_step) in groups {
                let mut points = Vec::new();
                for (i, vals) in per_step.into_iter().enumerate() {
                    if vals.is_empty() {
                        continue;
                    }
                    let qv = q.get(i).copied().unwrap_or(f64::NAN);
                    if !(0.0..=1.0).contains(&qv) && !warned {
                        self.annotations.warn(format!(
                            "quantile value should be between 0 and 1, got {}",
                            format_go_float(qv)
                        ));
                        warned = true;
                    }
                    points.push(Point {
                        t: self.step_time(i),
                        v: quantile(qv, vals),
                    });
                }
                out.push(VSeries {
                    labels,
                    points,
                    drop_name: false,
                });
            }
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(Val::Vector(out));
        }

        let mut groups: HashMap<Labels, Vec<Option<Acc>>> = HashMap::new();
        // Groups that kept `__name__` (by (__name__)) from a member whose
        // name delayed removal will drop: the result drops it too.
        let mut dropped: std::collections::HashSet<Labels> = std::collections::HashSet::new();
        for s in &input {
            let g = group_labels(&s.labels);
            if s.drop_name && g.has(METRIC_NAME) {
                dropped.insert(g.clone());
            }
            let e = groups.entry(g).or_insert_with(|| vec![None; n]);
            for p in &s.points {
                let i = self.step_index(p.t);
                let f = p.v;
                match &mut e[i] {
                    slot @ None => {
                        let mut acc = Acc::new(f);
                        if op == tok::T_STDDEV || op == tok::T_STDVAR {
                            acc.value = 0.0;
                            acc.incremental = !f.is_finite();
                        }
                        *slot = Some(acc);
                    }
                    Some(acc) => {
                        acc.count += 1.0;
                        match op {
                            x if x == tok::T_SUM => {
                                let (v, c) = kahan_sum_inc(f, acc.value, acc.comp);
                                acc.value = v;
                                acc.comp = c;
                            }
                            x if x == tok::T_AVG => avg_inc(acc, f),
                            x if x == tok::T_MAX && (acc.value < f || acc.value.is_nan()) => {
                                acc.value = f;
                            }
                            x if x == tok::T_MIN && (acc.value > f || acc.value.is_nan()) => {
                                acc.value = f;
                            }
                            x if x == tok::T_STDDEV || x == tok::T_STDVAR => {
                                if !f.is_finite() {
                                    acc.incremental = true; // marks "saw NaN or Inf"
                                }
                                let delta = f - acc.mean;
                                acc.mean += delta / acc.count;
                                acc.value += delta * (f - acc.mean);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for (labels, per_step) in groups {
            let mut points = Vec::new();
            for (i, acc) in per_step.into_iter().enumerate() {
                let Some(acc) = acc else { continue };
                let v = match op {
                    x if x == tok::T_SUM => acc.value + acc.comp,
                    x if x == tok::T_AVG => {
                        if acc.incremental {
                            acc.mean + acc.comp
                        } else {
                            (acc.value + acc.comp) / acc.count
                        }
                    }
                    x if x == tok::T_COUNT => acc.count,
                    x if x == tok::T_GROUP => 1.0,
                    x if x == tok::T_MAX || x == tok::T_MIN => acc.value,
                    // `incremental` marks a NaN or infinity among the inputs here.
                    x if x == tok::T_STDVAR && acc.incremental => f64::NAN,
                    x if x == tok::T_STDDEV && acc.incremental => f64::NAN,
                    x if x == tok::T_STDVAR => acc.value / acc.count,
                    x if x == tok::T_STDDEV => (acc.value / acc.count).sqrt(),
                    _ => {
                        return Err(QueryError::BadData(format!(
                            "unsupported aggregation {}",
                            a.op
                        )))
                    }
                };
                points.push(Point {
                    t: self.step_time(i),
                    v,
                });
            }
            let drop_name = dropped.contains(&labels);
            out.push(VSeries {
                labels,
                points,
                drop_name,
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Val::Vector(out))
    }

    /// `topk`, `bottomk`, `limitk` and `limit_ratio`: they select series and
    /// keep their labels.
    /// `topk`, `bottomk`, `limitk` and `limit_ratio`: per step and group,
    /// the selected input samples, chosen as Prometheus's `aggregationK`
    /// chooses them (a k-bounded heap fed in input order, so ties and NaNs
    /// pick the same series).
    fn eval_select_aggr(
        &mut self,
        op: u16,
        input: Vec<VSeries>,
        k: &[f64],
        group_labels: impl Fn(&Labels) -> Labels,
    ) -> EResult<Val> {
        let n = self.n_steps();
        // Group index per input series, groups numbered by first appearance.
        let mut group_ids: HashMap<Labels, usize> = HashMap::new();
        let group_of: Vec<usize> = input
            .iter()
            .map(|s| {
                let next = group_ids.len();
                *group_ids.entry(group_labels(&s.labels)).or_insert(next)
            })
            .collect();
        let n_groups = group_ids.len();
        drop(group_ids);
        // limit_ratio samples by label hash: computed once per series.
        let ratio_offsets: Vec<f64> = if op == tok::T_LIMIT_RATIO {
            input
                .iter()
                .map(|s| prometheus_hash(&s.labels) as f64 / u64::MAX as f64)
                .collect()
        } else {
            Vec::new()
        };
        let heap_op = match op {
            tok::T_TOPK => HeapOp::Top,
            tok::T_BOTTOMK => HeapOp::Bottom,
            _ => HeapOp::Keep,
        };
        let instant = n == 1;
        let mut cursor = vec![0usize; input.len()];
        let mut heaps: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_groups];
        let mut keep: Vec<Vec<Point>> = vec![Vec::new(); input.len()];
        // An instant query lists its results group by group, each group in
        // its heap's order (best first for topk/bottomk), as Prometheus does.
        let mut instant_order: Vec<(usize, f64)> = Vec::new();
        for i in 0..n {
            let t = self.step_time(i);
            let kv = k.get(i).copied().unwrap_or(f64::NAN);
            let mut limit: Option<StepLimit> = None;
            for h in heaps.iter_mut() {
                h.clear();
            }
            for (si, s) in input.iter().enumerate() {
                let c = &mut cursor[si];
                while *c < s.points.len() && s.points[*c].t < t {
                    *c += 1;
                }
                let Some(p) = s.points.get(*c).filter(|p| p.t == t) else {
                    continue;
                };
                *c += 1;
                let lim = match limit {
                    Some(l) => l,
                    None => {
                        let l = self.step_limit(op, kv, input.len())?;
                        limit = Some(l);
                        l
                    }
                };
                let h = &mut heaps[group_of[si]];
                match lim {
                    StepLimit::Skip => break,
                    StepLimit::Ratio(r) => {
                        let off = ratio_offsets[si];
                        if (r >= 0.0 && off < r) || (r < 0.0 && off >= 1.0 + r) {
                            heap_push(h, (si, p.v), HeapOp::Keep);
                        }
                    }
                    StepLimit::K(kk) => {
                        if h.len() < kk {
                            heap_push(h, (si, p.v), heap_op);
                        } else if heap_op.replaces(h[0].1, p.v) {
                            h[0] = (si, p.v);
                            if kk > 1 {
                                heap_fix_top(h, heap_op);
                            }
                        }
                    }
                }
            }
            for h in heaps.iter_mut() {
                if heap_op != HeapOp::Keep && h.len() > 1 {
                    // Prometheus: sort.Sort(sort.Reverse(heap)).
                    insertion_sort_by(h, |a, b| heap_op.less(b.1, a.1));
                }
                for &(si, v) in h.iter() {
                    if instant {
                        instant_order.push((si, v));
                    } else {
                        keep[si].push(Point { t, v });
                    }
                }
            }
        }
        let mut input: Vec<Option<VSeries>> = input.into_iter().map(Some).collect();
        let t = self.step_time(0);
        let out = if instant {
            instant_order
                .into_iter()
                .filter_map(|(si, v)| {
                    let s = input[si].take()?;
                    Some(VSeries {
                        labels: s.labels,
                        points: vec![Point { t, v }],
                        drop_name: s.drop_name,
                    })
                })
                .collect()
        } else {
            input
                .iter_mut()
                .zip(keep)
                .filter(|(_, pts)| !pts.is_empty())
                .filter_map(|(s, points)| {
                    let s = s.take()?;
                    Some(VSeries {
                        labels: s.labels,
                        points,
                        drop_name: s.drop_name,
                    })
                })
                .collect()
        };
        Ok(Val::Vector(out))
    }

    /// The `k` (or ratio) of one step of a selecting aggregation, checked
    /// as Prometheus checks it when the step has any input sample.
    fn step_limit(&mut self, op: u16, kv: f64, n_input: usize) -> EResult<StepLimit> {
        if op == tok::T_LIMIT_RATIO {
            if kv.is_nan() {
                return Err(QueryError::BadData("Ratio value is NaN".into()));
            }
            let r = kv.clamp(-1.0, 1.0);
            if r != kv {
                self.annotations.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to {}",
                    format_go_float(kv),
                    format_go_float(r)
                ));
            }
            return Ok(if r == 0.0 {
                StepLimit::Skip
            } else {
                StepLimit::Ratio(r)
            });
        }
        if kv.is_nan() {
            return Err(QueryError::BadData("Parameter value is NaN".into()));
        }
        if kv.abs() > 9.2e18 {
            return Err(QueryError::BadData(format!(
                "Scalar value {} overflows int64",
                format_go_float(kv)
            )));
        }
        let kk = (kv as i64).min(n_input as i64);
        Ok(if kk < 1 {
            StepLimit::Skip
        } else {
            StepLimit::K(kk as usize)
        })
    }

    pub(crate) fn step_index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }
}

fn avg_inc(acc: &mut Acc, f: f64) {
    if !acc.incremental {
        let (v, c) = kahan_sum_inc(f, acc.value, acc.comp);
        if !v.is_infinite() {
            acc.value = v;
            acc.comp = c;
            return;
        }
        acc.incremental = true;
        acc.mean = acc.value / (acc.count - 1.0);
        acc.comp /= acc.count - 1.0;
    }
    if acc.mean.is_infinite() {
        if f.is_infinite() && (acc.mean > 0.0) == (f > 0.0) {
            return;
        }
        if !f.is_infinite() && !f.is_nan() {
            return;
        }
    }
    let q = (acc.count - 1.0) / acc.count;
    let (m, c) = kahan_sum_inc(f / acc.count, q * acc.mean, q * acc.comp);
    acc.mean = m;
    acc.comp = c;
}

/// The `k` of one step of a selecting aggregation.
#[derive(Debug, Clone, Copy)]
enum StepLimit {
    /// The step has no output (`k < 1`, or a ratio of 0).
    Skip,
    /// Keep at most this many samples per group.
    K(usize),
    /// `limit_ratio`'s ratio, capped to [-1, 1].
    Ratio(f64),
}

/// Which of Prometheus's two sample heaps a selecting aggregation keeps:
/// `vectorByValueHeap` (smallest on top, for `topk`, `limitk` and
/// `limit_ratio`) or `vectorByReverseValueHeap` (largest on top, for
/// `bottomk`). Both order NaN before everything, NaN included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeapOp {
    Top,
    Bottom,
    Keep,
}

impl HeapOp {
    /// The heap's `Less`.
    fn less(self, a: f64, b: f64) -> bool {
        a.is_nan()
            || match self {
                HeapOp::Bottom => a > b,
                HeapOp::Top | HeapOp::Keep => a < b,
            }
    }

    /// Whether `v` displaces the heap's top once the heap holds k samples.
    fn replaces(self, top: f64, v: f64) -> bool {
        let better = match self {
            HeapOp::Bottom => top > v,
            HeapOp::Top | HeapOp::Keep => top < v,
        };
        better || (top.is_nan() && !v.is_nan())
    }
}

/// Go's `heap.Push`: append, then sift up.
fn heap_push(h: &mut Vec<(usize, f64)>, x: (usize, f64), op: HeapOp) {
    h.push(x);
    let mut j = h.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if !op.less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `heap.Fix(h, 0)`: sift the top down (sifting the root up is a
/// no-op).
fn heap_fix_top(h: &mut [(usize, f64)], op: HeapOp) {
    let n = h.len();
    let mut i = 0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && op.less(h[j1 + 1].1, h[j1].1) {
            j = j1 + 1;
        }
        if !op.less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}

/// Go's insertion sort (what `sort.Sort` does for up to 12 elements), with
/// its exact tie behaviour under a comparator that is not a strict order.
fn insertion_sort_by<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}
