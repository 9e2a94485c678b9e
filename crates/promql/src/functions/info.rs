//! `info(v, {selector})`: enriches series with the data labels of info
//! metrics (by default `target_info`) that share their identifying labels
//! (`instance`, `job`), as Prometheus 3's experimental `info` function.

use std::collections::HashMap;

use promql_parser::parser::Expr;
use vigil_model::{is_stale, Labels, LabelsBuilder, MatchOp, Matcher, METRIC_NAME};

use crate::eval::{offset_ms, EResult, Evaluator, RawSeries, VSeries, Val};
use crate::value::Point;

/// The labels that tie a series to its info series.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

impl Evaluator<'_> {
    pub(crate) fn eval_info(&mut self, args: &[&Expr]) -> EResult<Val> {
        let base_expr = args
            .first()
            .copied()
            .ok_or_else(|| crate::engine::QueryError::BadData("info() needs an argument".into()))?;
        // The info selector: __name__ matchers pick the info metrics, the
        // others filter them and name the data labels to add.
        let (mut name_matchers, data_matchers) = match args.get(1).map(|e| strip(e)) {
            Some(Expr::VectorSelector(vs)) => {
                let all = Self::matchers(vs)?;
                all.into_iter()
                    .partition::<Vec<_>, _>(|m| m.name() == METRIC_NAME)
            }
            Some(_) => {
                return Err(crate::engine::QueryError::BadData(
                    "expected a label selector as the second argument of info()".into(),
                ))
            }
            None => (Vec::new(), Vec::new()),
        };
        if name_matchers.is_empty() {
            name_matchers.push(Matcher::equal(METRIC_NAME, "target_info"));
        } else if name_matchers
            .iter()
            .all(|m| matches!(m.op(), MatchOp::NotEqual | MatchOp::NotRegex))
        {
            // Only exclusions: the candidates are still info metrics.
            name_matchers.push(
                Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info")
                    .map_err(|e| crate::engine::QueryError::BadData(e.to_string()))?,
            );
        }
        // The time each step reads the info series at: the base selector's
        // own `@` and offset, when it is a selector.
        let (qs, qe) = self.query_bounds();
        let refs: Vec<i64> = (0..self.n_steps())
            .map(|i| reference_time(base_expr, self.step_time(i), qs, qe))
            .collect();
        let base = self.eval_vector(base_expr)?;
        let lookback = self.opts.lookback_delta;
        let min_ref = refs.iter().copied().min().unwrap_or(0);
        let max_ref = refs.iter().copied().max().unwrap_or(0);
        let mut info_matchers = name_matchers.clone();
        info_matchers.extend(data_matchers.iter().cloned());
        let infos = self.select_with(&info_matchers, min_ref - lookback + 1, max_ref)?;
        // Info series by identifying labels.
        let mut by_id: HashMap<Vec<String>, Vec<&RawSeries>> = HashMap::new();
        for s in &infos {
            let key: Vec<String> = IDENTIFYING
                .iter()
                .map(|n| s.labels.get_or_empty(n).to_string())
                .collect();
            by_id.entry(key).or_default().push(s);
        }
        let data_names: Vec<&str> = data_matchers.iter().map(|m| m.name()).collect();
        let needs_match = data_matchers.iter().any(|m| !m.matches_empty());
        let mut out: Vec<VSeries> = Vec::new();
        let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
        for s in base {
            // Info series themselves pass through unchanged.
            let is_info = name_matchers
                .iter()
                .all(|m| m.matches(s.labels.get_or_empty(METRIC_NAME)));
            if is_info {
                let key = (s.labels.clone(), s.drop_name);
                index.insert(key, out.len());
                out.push(s);
                continue;
            }
            let key: Vec<String> = IDENTIFYING
                .iter()
                .map(|n| s.labels.get_or_empty(n).to_string())
                .collect();
            let candidates = by_id.get(&key);
            for p in &s.points {
                let i = self.step_index(p.t);
                let r = refs[i];
                // Per info metric name, the series with the newest sample in
                // the lookback window.
                let mut chosen: HashMap<&str, (i64, &RawSeries)> = HashMap::new();
                for c in candidates.into_iter().flatten() {
                    let idx = c.points.partition_point(|q| q.t <= r);
                    if idx == 0 {
                        continue;
                    }
                    let q = c.points[idx - 1];
                    if q.t <= r - lookback || is_stale(q.v) {
                        continue;
                    }
                    let name = c.labels.get_or_empty(METRIC_NAME);
                    match chosen.get(name) {
                        Some((t, _)) if *t >= q.t => {}
                        _ => {
                            chosen.insert(name, (q.t, c));
                        }
                    }
                }
                if chosen.is_empty() && needs_match {
                    continue;
                }
                let mut b = LabelsBuilder::from_labels(&s.labels);
                let mut names: Vec<&&str> = chosen.keys().collect();
                names.sort();
                let mut added: HashMap<&str, &str> = HashMap::new();
                for n in names {
                    let (_, c) = chosen[*n];
                    for l in c.labels.iter() {
                        if l.name == METRIC_NAME
                            || IDENTIFYING.contains(&l.name)
                            || s.labels.has(l.name)
                            || (!data_names.is_empty() && !data_names.contains(&l.name))
                        {
                            continue;
                        }
                        if let Some(prev) = added.insert(l.name, l.value) {
                            if prev != l.value {
                                return Err(crate::engine::QueryError::Execution(format!(
                                    "conflicting label: {} has values {prev:?} and {:?} in different info metrics",
                                    l.name, l.value
                                )));
                            }
                        }
                        b.set(l.name, l.value);
                    }
                }
                let labels = b.build();
                let k = (labels.clone(), s.drop_name);
                let slot = match index.get(&k) {
                    Some(&j) => j,
                    None => {
                        index.insert(k, out.len());
                        out.push(VSeries {
                            labels,
                            points: Vec::new(),
                            drop_name: s.drop_name,
                        });
                        out.len() - 1
                    }
                };
                out[slot].points.push(Point { t: p.t, v: p.v });
            }
        }
        for s in &mut out {
            s.points.sort_by_key(|p| p.t);
        }
        out.retain(|s| !s.points.is_empty());
        Ok(Val::Vector(out))
    }
}

/// The time at which the innermost selector of `e` reads its data when `e`
/// is evaluated at `t`: `@` pins it, `offset` shifts it, through
/// subqueries and the first argument of functions.
fn reference_time(e: &Expr, t: i64, qs: i64, qe: i64) -> i64 {
    use promql_parser::parser::AtModifier;
    let at = |a: &Option<AtModifier>, cur: i64| -> i64 {
        match a {
            None => cur,
            Some(AtModifier::Start) => qs,
            Some(AtModifier::End) => qe,
            Some(AtModifier::At(st)) => match st.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
            },
        }
    };
    match e {
        Expr::Paren(p) => reference_time(&p.expr, t, qs, qe),
        Expr::Unary(u) => reference_time(&u.expr, t, qs, qe),
        Expr::VectorSelector(vs) => at(&vs.at, t) - offset_ms(&vs.offset),
        Expr::MatrixSelector(ms) => at(&ms.vs.at, t) - offset_ms(&ms.vs.offset),
        Expr::Subquery(sq) => {
            let cur = at(&sq.at, t) - offset_ms(&sq.offset);
            reference_time(&sq.expr, cur, qs, qe)
        }
        Expr::Call(c) => match c.args.args.iter().find(|a| {
            matches!(
                strip(a),
                Expr::VectorSelector(_)
                    | Expr::MatrixSelector(_)
                    | Expr::Subquery(_)
                    | Expr::Call(_)
            )
        }) {
            Some(a) => reference_time(a, t, qs, qe),
            None => t,
        },
        _ => t,
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        other => other,
    }
}
