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
    fn eval_select_aggr(
        &mut self,
        op: u16,
        input: Vec<VSeries>,
        k: &[f64],
        group_labels: impl Fn(&Labels) -> Labels,
    ) -> EResult<Val> {
        let n = self.n_steps();
        // group -> per step -> (series index, value)
        let mut groups: HashMap<Labels, Vec<Vec<(usize, f64)>>> = HashMap::new();
        let mut order: Vec<Labels> = Vec::new();
        for (si, s) in input.iter().enumerate() {
            let g = group_labels(&s.labels);
            let e = groups.entry(g.clone()).or_insert_with(|| {
                order.push(g);
                vec![Vec::new(); n]
            });
            for p in &s.points {
                e[self.step_index(p.t)].push((si, p.v));
            }
        }
        let mut keep: Vec<Vec<Point>> = vec![Vec::new(); input.len()];
        for g in &order {
            let per_step = &groups[g];
            for (i, cands) in per_step.iter().enumerate() {
                if cands.is_empty() {
                    continue;
                }
                let kv = k.get(i).copied().unwrap_or(f64::NAN);
                let chosen: Vec<(usize, f64)> = if op == tok::T_LIMIT_RATIO {
                    if kv.is_nan() {
                        return Err(QueryError::BadData("Ratio value is NaN".into()));
                    }
                    let r = kv.clamp(-1.0, 1.0);
                    if !(-1.0..=1.0).contains(&kv) {
                        self.annotations.warn(format!(
                            "ratio value should be between -1 and 1, got {}, capping to {}",
                            format_go_float(kv),
                            format_go_float(r)
                        ));
                    }
                    cands
                        .iter()
                        .copied()
                        .filter(|(si, _)| {
                            let off = prometheus_hash(&input[*si].labels) as f64 / u64::MAX as f64;
                            (r >= 0.0 && off < r) || (r < 0.0 && off >= 1.0 + r)
                        })
                        .collect()
                } else {
                    if kv.is_nan() {
                        return Err(QueryError::BadData("Parameter value is NaN".into()));
                    }
                    if kv.abs() > 9.2e18 {
                        return Err(QueryError::BadData(format!(
                            "Scalar value {} overflows int64",
                            format_go_float(kv)
                        )));
                    }
                    let kk = kv as i64;
                    if kk < 1 {
                        continue;
                    }
                    let kk = (kk as usize).min(cands.len());
                    let mut c = cands.clone();
                    if op == tok::T_TOPK {
                        c.sort_by(|a, b| cmp_desc_nan_last(a.1, b.1));
                    } else if op == tok::T_BOTTOMK {
                        c.sort_by(|a, b| cmp_asc_nan_last(a.1, b.1));
                    }
                    c.truncate(kk);
                    c
                };
                for (si, v) in chosen {
                    keep[si].push(Point {
                        t: self.step_time(i),
                        v,
                    });
                }
            }
        }
        let mut out = Vec::new();
        for (s, mut pts) in input.into_iter().zip(keep) {
            if pts.is_empty() {
                continue;
            }
            pts.sort_by_key(|p| p.t);
            out.push(VSeries {
                labels: s.labels,
                points: pts,
                drop_name: s.drop_name,
            });
        }
        if n == 1 && (op == tok::T_TOPK || op == tok::T_BOTTOMK) {
            // An instant topk/bottomk lists its results best first within
            // each group, as Prometheus does.
            let desc = op == tok::T_TOPK;
            out.sort_by(|a, b| {
                let (x, y) = (a.points[0].v, b.points[0].v);
                if desc {
                    cmp_desc_nan_last(x, y)
                } else {
                    cmp_asc_nan_last(x, y)
                }
            });
        }
        Ok(Val::Vector(out))
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

fn cmp_desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn cmp_asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}
