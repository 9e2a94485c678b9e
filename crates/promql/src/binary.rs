//! Binary operators: arithmetic, comparison (with `bool`), `and or unless`
//! and `atan2`, with vector matching (`on`, `ignoring`, `group_left`,
//! `group_right`).

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use vigil_model::{Labels, LabelsBuilder};

use crate::engine::QueryError;
use crate::eval::{tok, EResult, Evaluator, VSeries, Val};
use crate::value::Point;

/// Applies `op` to two floats. Returns the value and, for comparisons,
/// whether the comparison holds (the value is then the left operand).
pub(crate) fn apply(op: u16, l: f64, r: f64) -> (f64, bool) {
    match op {
        x if x == tok::T_ADD => (l + r, true),
        x if x == tok::T_SUB => (l - r, true),
        x if x == tok::T_MUL => (l * r, true),
        x if x == tok::T_DIV => (l / r, true),
        x if x == tok::T_MOD => (l % r, true),
        x if x == tok::T_POW => (l.powf(r), true),
        x if x == tok::T_ATAN2 => (l.atan2(r), true),
        x if x == tok::T_EQLC => (l, l == r),
        x if x == tok::T_NEQ => (l, l != r),
        x if x == tok::T_GTR => (l, l > r),
        x if x == tok::T_LSS => (l, l < r),
        x if x == tok::T_GTE => (l, l >= r),
        x if x == tok::T_LTE => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

fn is_comparison(op: u16) -> bool {
    [
        tok::T_EQLC,
        tok::T_NEQ,
        tok::T_GTR,
        tok::T_LSS,
        tok::T_GTE,
        tok::T_LTE,
    ]
    .contains(&op)
}

fn drops_name(op: u16) -> bool {
    [
        tok::T_ADD,
        tok::T_SUB,
        tok::T_MUL,
        tok::T_DIV,
        tok::T_MOD,
        tok::T_POW,
        tok::T_ATAN2,
    ]
    .contains(&op)
}

/// How series are matched: the signature function.
struct Matching<'m> {
    on: bool,
    labels: Vec<&'m str>,
}

impl Matching<'_> {
    fn signature(&self, l: &Labels) -> u64 {
        if self.on {
            l.hash_with(&self.labels)
        } else {
            l.hash_without(&self.labels)
        }
    }

    fn group(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep_only(&self.labels)
        } else {
            let mut d = self.labels.clone();
            d.push(vigil_model::METRIC_NAME);
            l.drop_names(&d)
        }
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&mut self, b: &BinaryExpr) -> EResult<Val> {
        let op = b.op.id();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let fill = b
            .modifier
            .as_ref()
            .map_or((None, None), |m| (m.fill_values.lhs, m.fill_values.rhs));
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(a, c)| {
                        let (v, keep) = apply(op, *a, *c);
                        if is_comparison(op) {
                            if keep {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(self.vector_scalar(
                op,
                v,
                &s,
                false,
                return_bool,
            ))),
            (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(self.vector_scalar(
                op,
                v,
                &s,
                true,
                return_bool,
            ))),
            (Val::Vector(l), Val::Vector(r)) => {
                let (on, labels): (bool, Vec<&str>) =
                    match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                        Some(LabelModifier::Include(ls)) => {
                            (true, ls.labels.iter().map(String::as_str).collect())
                        }
                        Some(LabelModifier::Exclude(ls)) => {
                            (false, ls.labels.iter().map(String::as_str).collect())
                        }
                        None => (false, Vec::new()),
                    };
                let matching = Matching { on, labels };
                if op == tok::T_LAND || op == tok::T_LOR || op == tok::T_LUNLESS {
                    return Ok(Val::Vector(self.set_op(op, l, r, &matching)));
                }
                let card = b
                    .modifier
                    .as_ref()
                    .map(|m| m.card.clone())
                    .unwrap_or(VectorMatchCardinality::OneToOne);
                self.vector_vector(op, l, r, &matching, card, return_bool, fill)
                    .map(Val::Vector)
            }
            _ => Err(QueryError::BadData(
                "binary expression must contain only scalar and instant vector types".into(),
            )),
        }
    }

    fn vector_scalar(
        &self,
        op: u16,
        v: Vec<VSeries>,
        s: &[f64],
        swap: bool,
        return_bool: bool,
    ) -> Vec<VSeries> {
        let mut out = Vec::with_capacity(v.len());
        for mut series in v {
            let mut points = Vec::with_capacity(series.points.len());
            for p in &series.points {
                let sv = s[self.step_index(p.t)];
                let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
                let (mut value, keep) = apply(op, l, r);
                if is_comparison(op) && swap {
                    value = r;
                }
                if return_bool {
                    points.push(Point {
                        t: p.t,
                        v: if keep { 1.0 } else { 0.0 },
                    });
                } else if keep {
                    points.push(Point { t: p.t, v: value });
                }
            }
            if points.is_empty() {
                continue;
            }
            series.points = points;
            if drops_name(op) || return_bool {
                self.drop_name(&mut series);
            }
            out.push(series);
        }
        out
    }

    fn set_op(&self, op: u16, l: Vec<VSeries>, r: Vec<VSeries>, m: &Matching<'_>) -> Vec<VSeries> {
        let n = self.n_steps();
        // Per step, the signatures present on each side.
        let mut rsigs: Vec<HashSet<u64>> = vec![HashSet::new(); n];
        for s in &r {
            let sig = m.signature(&s.labels);
            for p in &s.points {
                rsigs[self.step_index(p.t)].insert(sig);
            }
        }
        match op {
            x if x == tok::T_LAND || x == tok::T_LUNLESS => {
                let want = x == tok::T_LAND;
                l.into_iter()
                    .filter_map(|mut s| {
                        let sig = m.signature(&s.labels);
                        s.points
                            .retain(|p| rsigs[self.step_index(p.t)].contains(&sig) == want);
                        (!s.points.is_empty()).then_some(s)
                    })
                    .collect()
            }
            _ => {
                let mut lsigs: Vec<HashSet<u64>> = vec![HashSet::new(); n];
                for s in &l {
                    let sig = m.signature(&s.labels);
                    for p in &s.points {
                        lsigs[self.step_index(p.t)].insert(sig);
                    }
                }
                let mut out = l;
                for mut s in r {
                    let sig = m.signature(&s.labels);
                    s.points
                        .retain(|p| !lsigs[self.step_index(p.t)].contains(&sig));
                    if !s.points.is_empty() {
                        out.push(s);
                    }
                }
                out
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn vector_vector(
        &self,
        op: u16,
        l: Vec<VSeries>,
        r: Vec<VSeries>,
        m: &Matching<'_>,
        card: VectorMatchCardinality,
        return_bool: bool,
        fill: (Option<f64>, Option<f64>),
    ) -> EResult<Vec<VSeries>> {
        let n = self.n_steps();
        let (fill_lhs, fill_rhs) = fill;
        // The "many" side and the "one" side; for one-to-one both are one.
        let (many, one, swapped, include): (Vec<VSeries>, Vec<VSeries>, bool, Vec<String>) =
            match &card {
                VectorMatchCardinality::OneToMany(inc) => (r, l, true, inc.labels.clone()),
                VectorMatchCardinality::ManyToOne(inc) => (l, r, false, inc.labels.clone()),
                _ => (l, r, false, Vec::new()),
            };
        // Fill values for a missing "one" and a missing "many" series. As in
        // Prometheus, they refer to the sides after `group_right` swapped
        // them: `fill_right` always fills the "one" side.
        let (fill_one, fill_many) = (fill_rhs, fill_lhs);
        let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
        let drop_name = drops_name(op) || return_bool;
        // Per step: signature -> index into `one`.
        let mut one_by_sig: Vec<HashMap<u64, usize>> = vec![HashMap::new(); n];
        for (oi, s) in one.iter().enumerate() {
            let sig = m.signature(&s.labels);
            for p in &s.points {
                let i = self.step_index(p.t);
                if let Some(prev) = one_by_sig[i].insert(sig, oi) {
                    if prev != oi {
                        let side = if swapped { "left" } else { "right" };
                        return Err(QueryError::Execution(format!(
                            "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                            m.group(&s.labels),
                            one[prev].labels,
                            s.labels
                        )));
                    }
                }
            }
        }
        // The labels of a result, as Prometheus's resultMetric: from the
        // "many" series, with the "one" series' included labels.
        let result_labels = |base: &Labels, one_labels: Option<&Labels>| -> Labels {
            let mut bld = LabelsBuilder::from_labels(base);
            let name = base.metric_name().map(str::to_string);
            if drop_name && !self.opts.enable_delayed_name_removal {
                bld.del(vigil_model::METRIC_NAME);
            }
            if one_to_one || one_labels.is_none() {
                if m.on {
                    let keep_names = &m.labels;
                    bld.retain(|n, _| keep_names.contains(&n));
                    if drop_name && self.opts.enable_delayed_name_removal {
                        if let Some(nm) = &name {
                            bld.set(vigil_model::METRIC_NAME, nm);
                        }
                    }
                } else {
                    for n in &m.labels {
                        bld.del(n);
                    }
                }
            }
            if let Some(ol) = one_labels {
                for ln in &include {
                    match ol.get(ln) {
                        Some(v) => bld.set(ln, v),
                        None => bld.del(ln),
                    };
                }
            }
            bld.build()
        };
        let mut out: HashMap<Labels, (VSeries, Vec<bool>)> = HashMap::new();
        let mut order: Vec<Labels> = Vec::new();
        let delayed = self.opts.enable_delayed_name_removal;
        let mut emit = |labels: Labels, i: usize, t: i64, lv: f64, rv: f64| -> EResult<()> {
            let (value, keep) = apply(op, lv, rv);
            let value = if return_bool {
                if keep {
                    1.0
                } else {
                    0.0
                }
            } else if !keep {
                return Ok(());
            } else {
                value
            };
            let (entry, filled) = out.entry(labels.clone()).or_insert_with(|| {
                order.push(labels.clone());
                (
                    VSeries {
                        labels,
                        points: Vec::new(),
                        drop_name: drop_name && delayed,
                    },
                    vec![false; n],
                )
            });
            if std::mem::replace(&mut filled[i], true) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            entry.points.push(Point { t, v: value });
            Ok(())
        };
        let mut one_matched: Vec<HashSet<usize>> = vec![HashSet::new(); n];
        let mut pair_labels: HashMap<(usize, usize), Labels> = HashMap::new();
        let mut seen_many: Vec<HashMap<u64, usize>> = vec![HashMap::new(); n];
        for (mi, s) in many.iter().enumerate() {
            let sig = m.signature(&s.labels);
            let mut cursor = (usize::MAX, 0usize);
            for p in &s.points {
                let i = self.step_index(p.t);
                let Some(&oi) = one_by_sig[i].get(&sig) else {
                    if let Some(f) = fill_one {
                        let (lv, rv) = if swapped { (f, p.v) } else { (p.v, f) };
                        let empty = Labels::empty();
                        let one_labels = (!one_to_one).then_some(&empty);
                        emit(result_labels(&s.labels, one_labels), i, p.t, lv, rv)?;
                    }
                    continue;
                };
                if one_to_one {
                    if let Some(prev) = seen_many[i].insert(sig, mi) {
                        if prev != mi {
                            return Err(QueryError::Execution(format!(
                                "found duplicate series for the match group {} on the left hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                                m.group(&s.labels),
                                many[prev].labels,
                                s.labels
                            )));
                        }
                    }
                }
                if fill_many.is_some() {
                    one_matched[i].insert(oi);
                }
                let o = &one[oi];
                // Points of a series come in time order: the position in
                // the matched series moves forward while the match holds.
                if cursor.0 != oi {
                    cursor = (oi, o.points.partition_point(|q| q.t < p.t));
                }
                while cursor.1 < o.points.len() && o.points[cursor.1].t < p.t {
                    cursor.1 += 1;
                }
                let Some(op) = o.points.get(cursor.1) else {
                    continue;
                };
                let ov = op.v;
                let (lv, rv) = if swapped { (ov, p.v) } else { (p.v, ov) };
                // The result's labels depend only on the pair of series.
                let labels = pair_labels
                    .entry((mi, oi))
                    .or_insert_with(|| result_labels(&s.labels, Some(&o.labels)))
                    .clone();
                emit(labels, i, p.t, lv, rv)?;
            }
        }
        if let Some(f) = fill_many {
            for (oi, o) in one.iter().enumerate() {
                for p in &o.points {
                    let i = self.step_index(p.t);
                    if one_matched[i].contains(&oi) {
                        continue;
                    }
                    let (lv, rv) = if swapped { (p.v, f) } else { (f, p.v) };
                    // The result takes the present series' labels, without
                    // its name: the name would be the other operand's.
                    let mut bld = LabelsBuilder::from_labels(&result_labels(&o.labels, None));
                    bld.del(vigil_model::METRIC_NAME);
                    if !one_to_one {
                        // The filled "many" side has none of its own labels.
                        for ln in &include {
                            if let Some(v) = o.labels.get(ln) {
                                bld.set(ln, v);
                            }
                        }
                    }
                    emit(bld.build(), i, p.t, lv, rv)?;
                }
            }
        }
        let mut result: Vec<VSeries> = order
            .into_iter()
            .filter_map(|l| out.remove(&l).map(|e| e.0))
            .map(|mut s| {
                s.points.sort_by_key(|p| p.t);
                s
            })
            .collect();
        result.retain(|s| !s.points.is_empty());
        Ok(result)
    }
}
