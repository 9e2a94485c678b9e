//! The evaluator: every node is evaluated for all steps of the query at
//! once.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};
use vigil_model::{
    is_stale, Labels, MatchOp, Matcher, Queryable, SampleIterator, ValueType, METRIC_NAME,
};

use crate::engine::{EngineOptions, QueryError};
use crate::value::{Annotations, Point, QueryValue, Sample, Series};

/// A series of an instant-vector node: one point per step where it has a
/// value (the point's `t` is the step's time).
#[derive(Debug, Clone)]
pub(crate) struct VSeries {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<Point>,
    /// Delayed name removal: `__name__` is to be dropped at the end.
    pub(crate) drop_name: bool,
}

/// A series of raw samples and the windows over it.
#[derive(Debug, Clone)]
pub(crate) struct RawSeries {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<Point>,
}

/// A range-vector operand: raw series, the window length, and for each step
/// the window's end.
#[derive(Debug)]
pub(crate) struct Windows {
    pub(crate) series: Vec<RawSeries>,
    pub(crate) range: i64,
    pub(crate) ends: Vec<i64>,
}

/// The selection a matrix selector makes (see
/// [`Evaluator::matrix_selection`]).
pub(crate) struct MatrixSelection {
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) range: i64,
    pub(crate) ends: Vec<i64>,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
}

/// The value of a node over all steps.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Vector(Vec<VSeries>),
    /// Only for an instant query of a range-vector expression.
    Matrix(Windows),
    String(String),
}

pub(crate) struct Evaluator<'a> {
    pub(crate) opts: &'a EngineOptions,
    storage: &'a dyn Queryable,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
    deadline: Instant,
    pub(crate) annotations: Annotations,
    pub(crate) samples_loaded: u64,
    pub(crate) current_samples: usize,
    pub(crate) peak_samples: usize,
    pub(crate) prepare_seconds: f64,
    /// Seconds spent sorting the result.
    pub(crate) sort_seconds: f64,
    /// The query's own start, end and step (0 for instant queries), for
    /// `@ start()`, `start()`, `end()`, `range()` and `step()`.
    query_start: i64,
    query_end: i64,
    query_step: i64,
}

pub(crate) type EResult<T> = Result<T, QueryError>;

/// Converts a parser duration to ms.
pub(crate) fn dur_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(d),
        Some(Offset::Neg(d)) => -dur_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        opts: &'a EngineOptions,
        storage: &'a dyn Queryable,
        start: i64,
        end: i64,
        step: i64,
        deadline: Instant,
    ) -> Self {
        Evaluator {
            opts,
            storage,
            start,
            end,
            step: step.max(1),
            deadline,
            annotations: Annotations::default(),
            samples_loaded: 0,
            current_samples: 0,
            peak_samples: 0,
            prepare_seconds: 0.0,
            sort_seconds: 0.0,
            query_start: start,
            query_end: end,
            query_step: step,
        }
    }

    /// Marks this evaluator as an instant query (its step is 0).
    pub(crate) fn set_instant(&mut self) {
        self.query_step = 0;
    }

    pub(crate) fn query_step(&self) -> i64 {
        self.query_step
    }

    pub(crate) fn query_bounds(&self) -> (i64, i64) {
        (self.query_start, self.query_end)
    }

    /// A child evaluator over other steps (subqueries), sharing limits.
    fn child(&self, start: i64, end: i64, step: i64) -> Evaluator<'a> {
        let mut c = Evaluator::new(self.opts, self.storage, start, end, step, self.deadline);
        c.query_start = self.query_start;
        c.query_end = self.query_end;
        c.query_step = self.query_step;
        c.current_samples = self.current_samples;
        c
    }

    fn absorb(&mut self, c: Evaluator<'a>) {
        self.annotations.extend(c.annotations);
        self.samples_loaded += c.samples_loaded;
        self.peak_samples = self.peak_samples.max(c.peak_samples);
        self.prepare_seconds += c.prepare_seconds;
    }

    pub(crate) fn n_steps(&self) -> usize {
        ((self.end - self.start) / self.step) as usize + 1
    }

    pub(crate) fn step_time(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub(crate) fn check_deadline(&self, what: &'static str) -> EResult<()> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout(what));
        }
        Ok(())
    }

    pub(crate) fn add_samples(&mut self, n: usize) -> EResult<()> {
        self.current_samples += n;
        self.peak_samples = self.peak_samples.max(self.current_samples);
        if self.current_samples > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// Runs the query and shapes the result.
    pub(crate) fn run(&mut self, expr: &Expr, instant: bool) -> EResult<QueryValue> {
        let v = self.eval(expr)?;
        let t = self.start;
        Ok(match v {
            Val::Scalar(s) => {
                if instant {
                    QueryValue::Scalar {
                        t,
                        v: s.first().copied().unwrap_or(f64::NAN),
                    }
                } else {
                    let points = s
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Point {
                            t: self.step_time(i),
                            v: *v,
                        })
                        .collect();
                    QueryValue::Matrix(vec![Series {
                        labels: Labels::empty(),
                        points,
                    }])
                }
            }
            Val::String(s) => QueryValue::String { t, s },
            Val::Vector(series) => {
                let series = self.finish_names(series)?;
                if instant {
                    let mut out: Vec<Sample> = series
                        .into_iter()
                        .filter_map(|s| {
                            s.points.first().map(|p| Sample {
                                labels: s.labels,
                                t: p.t,
                                v: p.v,
                            })
                        })
                        .collect();
                    out.shrink_to_fit();
                    QueryValue::Vector(out)
                } else {
                    let mut m: Vec<Series> = series
                        .into_iter()
                        .filter(|s| !s.points.is_empty())
                        .map(|s| Series {
                            labels: s.labels,
                            points: s.points,
                        })
                        .collect();
                    let sorting = Instant::now();
                    m.sort_by(|a, b| a.labels.cmp(&b.labels));
                    self.sort_seconds += sorting.elapsed().as_secs_f64();
                    QueryValue::Matrix(m)
                }
            }
            Val::Matrix(w) => {
                if !instant {
                    return Err(QueryError::BadData(
                        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                    ));
                }
                let end = w.ends.first().copied().unwrap_or(t);
                let mut m: Vec<Series> = w
                    .series
                    .into_iter()
                    .filter_map(|s| {
                        let pts: Vec<Point> = s
                            .points
                            .into_iter()
                            .filter(|p| p.t > end - w.range && p.t <= end)
                            .collect();
                        (!pts.is_empty()).then_some(Series {
                            labels: s.labels,
                            points: pts,
                        })
                    })
                    .collect();
                let sorting = Instant::now();
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                self.sort_seconds += sorting.elapsed().as_secs_f64();
                QueryValue::Matrix(m)
            }
        })
    }

    /// Applies delayed name removal and checks that no two series ended up
    /// with the same labels at the same step.
    pub(crate) fn finish_names(&self, series: Vec<VSeries>) -> EResult<Vec<VSeries>> {
        let mut out = Vec::with_capacity(series.len());
        let mut any_dropped = false;
        for mut s in series {
            if s.drop_name {
                s.labels = s.labels.without_metric_name();
                s.drop_name = false;
                any_dropped = true;
            }
            out.push(s);
        }
        if any_dropped {
            // Series that differ only by the dropped name become one, unless
            // they have values at the same step.
            return crate::functions::merge_same_labels(out);
        }
        Ok(out)
    }

    pub(crate) fn eval(&mut self, expr: &Expr) -> EResult<Val> {
        self.check_deadline("query evaluation")?;
        // A step-invariant subexpression (every selector pinned with `@`,
        // no time-dependent function) has the same value at every step:
        // evaluate it once and repeat it.
        if self.n_steps() > 1
            && !matches!(expr, Expr::NumberLiteral(_) | Expr::StringLiteral(_))
            && is_step_invariant(expr)
        {
            let mut one = self.child(self.start, self.start, self.step);
            let v = one.eval_inner(expr)?;
            self.absorb(one);
            return Ok(self.broadcast(v));
        }
        self.eval_inner(expr)
    }

    /// Repeats a one-step value over all steps.
    fn broadcast(&self, v: Val) -> Val {
        let n = self.n_steps();
        match v {
            Val::Scalar(s) => Val::Scalar(vec![s.first().copied().unwrap_or(f64::NAN); n]),
            Val::Vector(vs) => Val::Vector(
                vs.into_iter()
                    .map(|s| {
                        let v = s.points.first().map(|p| p.v);
                        VSeries {
                            labels: s.labels,
                            points: match v {
                                Some(v) => (0..n)
                                    .map(|i| Point {
                                        t: self.step_time(i),
                                        v,
                                    })
                                    .collect(),
                                None => Vec::new(),
                            },
                            drop_name: s.drop_name,
                        }
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    fn eval_inner(&mut self, expr: &Expr) -> EResult<Val> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; self.n_steps()])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(s) => Ok(Val::Scalar(s.into_iter().map(|v| -v).collect())),
                Val::Vector(mut vs) => {
                    for s in &mut vs {
                        for p in &mut s.points {
                            p.v = -p.v;
                        }
                        self.drop_name(s);
                    }
                    Ok(Val::Vector(vs))
                }
                _ => Err(QueryError::BadData(
                    "unary expression only allowed on expressions of type scalar or instant vector"
                        .into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs)?)),
            Expr::MatrixSelector(ms) => Ok(Val::Matrix(self.eval_matrix_selector(ms)?)),
            Expr::Subquery(sq) => Ok(Val::Matrix(self.eval_subquery(sq)?)),
            Expr::Aggregate(a) => self.eval_aggregate(a),
            Expr::Binary(b) => self.eval_binary(b),
            Expr::Call(c) => self.eval_call(c),
            Expr::Extension(_) => Err(QueryError::BadData("unsupported expression".into())),
        }
    }

    /// Marks (delayed) or performs (immediate) the removal of `__name__`.
    pub(crate) fn drop_name(&self, s: &mut VSeries) {
        if self.opts.enable_delayed_name_removal {
            s.drop_name = true;
        } else {
            s.labels = s.labels.without_metric_name();
        }
    }

    /// The reference time of each step for a selector with `@` and offset.
    pub(crate) fn ref_times(&self, at: &Option<AtModifier>, offset: i64) -> Vec<i64> {
        let fixed = at.as_ref().map(|a| match a {
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
            AtModifier::At(t) => system_time_ms(t),
        });
        (0..self.n_steps())
            .map(|i| fixed.unwrap_or_else(|| self.step_time(i)) - offset)
            .collect()
    }

    /// Converts the parser's matchers to vigil's, with Prometheus 3's regex
    /// semantics.
    pub(crate) fn matchers(vs: &VectorSelector) -> EResult<Vec<Matcher>> {
        let mut out = Vec::new();
        if let Some(n) = &vs.name {
            out.push(Matcher::equal(METRIC_NAME, n.clone()));
        }
        if !vs.matchers.or_matchers.is_empty() {
            return Err(QueryError::BadData(
                "\"or\" in label matchers is not supported".into(),
            ));
        }
        for m in &vs.matchers.matchers {
            let op = match &m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| QueryError::BadData(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Selects the series matching `matchers` and reads their samples in
    /// `[mint, maxt]`.
    pub(crate) fn select_with(
        &mut self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> EResult<Vec<RawSeries>> {
        self.select_points(matchers, mint, maxt, false)
    }

    /// As [`Self::select_with`]; with `last_only`, each series keeps only
    /// its newest sample in `[mint, maxt]` (all an instant vector selector
    /// evaluated at one time looks at).
    fn select_points(
        &mut self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        last_only: bool,
    ) -> EResult<Vec<RawSeries>> {
        let mut out = Vec::new();
        self.for_each_series(matchers, mint, maxt, last_only, |_, labels, points| {
            out.push(RawSeries {
                labels: labels.clone(),
                points: std::mem::take(points),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Selects the series matching `matchers` and hands them to `f` one at
    /// a time, each with its samples in `[mint, maxt]` (only the newest
    /// with `last_only`) in a buffer that is reused for the next series
    /// unless `f` takes it. The samples count against the query's sample
    /// limit from the moment they are read; a caller that drops them calls
    /// [`Self::release_samples`].
    ///
    /// Streaming keeps one series' samples in memory at a time where the
    /// caller needs no more (range functions, vector selectors), instead
    /// of every selected sample at once.
    pub(crate) fn for_each_series(
        &mut self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        last_only: bool,
        mut f: impl FnMut(&mut Self, &Labels, &mut Vec<Point>) -> EResult<()>,
    ) -> EResult<()> {
        let started = Instant::now();
        let storage = self.storage;
        let q = storage.querier(mint, maxt)?;
        let set = q.select(true, None, matchers)?;
        for w in &set.warnings {
            self.annotations.warn(w.to_string());
        }
        let mut points = Vec::new();
        let mut select_time = started.elapsed();
        for s in &set.series {
            let read_started = Instant::now();
            points.clear();
            let mut it = s.iter();
            let mut ty = it.seek(mint);
            if last_only {
                let mut last = None;
                while ty == ValueType::Float {
                    let (t, v) = it.at();
                    if t > maxt {
                        break;
                    }
                    last = Some(Point { t, v });
                    ty = it.next();
                }
                points.extend(last);
            } else {
                while ty == ValueType::Float {
                    let (t, v) = it.at();
                    if t > maxt {
                        break;
                    }
                    points.push(Point { t, v });
                    ty = it.next();
                }
            }
            if let Some(e) = it.err() {
                return Err(e.into());
            }
            self.samples_loaded += points.len() as u64;
            self.add_samples(points.len())?;
            select_time += read_started.elapsed();
            f(self, s.labels(), &mut points)?;
        }
        self.prepare_seconds += select_time.as_secs_f64();
        Ok(())
    }

    /// Takes `n` samples that [`Self::for_each_series`] counted off the
    /// query's current total once the caller has dropped them.
    pub(crate) fn release_samples(&mut self, n: usize) {
        self.current_samples = self.current_samples.saturating_sub(n);
    }

    fn eval_vector_selector(&mut self, vs: &VectorSelector) -> EResult<Vec<VSeries>> {
        self.eval_vector_selector_with(vs, |p| p.v)
    }

    /// A vector selector: at every step, the newest sample within the
    /// lookback window (none after a stale marker), mapped by `value`.
    fn eval_vector_selector_with(
        &mut self,
        vs: &VectorSelector,
        value: impl Fn(Point) -> f64,
    ) -> EResult<Vec<VSeries>> {
        let refs = self.ref_times(&vs.at, offset_ms(&vs.offset));
        let lookback = self.opts.lookback_delta;
        let min_ref = refs.iter().copied().min().unwrap_or(0);
        let max_ref = refs.iter().copied().max().unwrap_or(0);
        // At a single reference time (an instant query, or `@`), only each
        // series' newest sample up to it matters.
        let last_only = min_ref == max_ref;
        let matchers = Self::matchers(vs)?;
        let mut out = Vec::new();
        self.for_each_series(
            &matchers,
            min_ref - lookback + 1,
            max_ref,
            last_only,
            |ev, labels, raw| {
                let mut points = Vec::new();
                // Reference times never decrease: the position slides forward.
                let mut idx = 0usize;
                let mut prev_r = i64::MIN;
                for (i, &r) in refs.iter().enumerate() {
                    // The newest sample in (r - lookback, r].
                    if r < prev_r {
                        idx = 0;
                    }
                    prev_r = r;
                    while idx < raw.len() && raw[idx].t <= r {
                        idx += 1;
                    }
                    if idx == 0 {
                        continue;
                    }
                    let p = raw[idx - 1];
                    if p.t <= r - lookback || is_stale(p.v) {
                        continue;
                    }
                    points.push(Point {
                        t: ev.step_time(i),
                        v: value(p),
                    });
                }
                ev.release_samples(raw.len());
                if !points.is_empty() {
                    ev.add_samples(points.len())?;
                    out.push(VSeries {
                        labels: labels.clone(),
                        points,
                        drop_name: false,
                    });
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The sample timestamps a vector selector picks (for `timestamp()`).
    pub(crate) fn eval_selector_timestamps(
        &mut self,
        vs: &VectorSelector,
    ) -> EResult<Vec<VSeries>> {
        let mut out =
            self.eval_vector_selector_with(vs, |p| vigil_model::time::to_seconds_f64(p.t))?;
        for s in &mut out {
            self.drop_name(s);
        }
        Ok(out)
    }

    /// What a matrix selector reads: its matchers, the window length, each
    /// step's window end, and the time span covering every window.
    pub(crate) fn matrix_selection(&self, ms: &MatrixSelector) -> EResult<MatrixSelection> {
        let range = dur_ms(&ms.range);
        let ends = self.ref_times(&ms.vs.at, offset_ms(&ms.vs.offset));
        let min_ref = ends.iter().copied().min().unwrap_or(0);
        let max_ref = ends.iter().copied().max().unwrap_or(0);
        Ok(MatrixSelection {
            matchers: Self::matchers(&ms.vs)?,
            range,
            ends,
            mint: min_ref - range + 1,
            maxt: max_ref,
        })
    }

    pub(crate) fn eval_matrix_selector(&mut self, ms: &MatrixSelector) -> EResult<Windows> {
        let sel = self.matrix_selection(ms)?;
        let mut raw = self.select_with(&sel.matchers, sel.mint, sel.maxt)?;
        // Range functions never see stale markers.
        for s in &mut raw {
            s.points.retain(|p| !is_stale(p.v));
        }
        Ok(Windows {
            series: raw,
            range: sel.range,
            ends: sel.ends,
        })
    }

    pub(crate) fn eval_subquery(&mut self, sq: &SubqueryExpr) -> EResult<Windows> {
        let range = dur_ms(&sq.range);
        let step = sq
            .step
            .as_ref()
            .map(dur_ms)
            .filter(|s| *s > 0)
            .unwrap_or(self.opts.no_step_subquery_interval)
            .max(1);
        let ends = self.ref_times(&sq.at, offset_ms(&sq.offset));
        let min_ref = ends.iter().copied().min().unwrap_or(0);
        let max_ref = ends.iter().copied().max().unwrap_or(0);
        // Inner steps are multiples of the step, starting after min_ref - range.
        let mint = min_ref - range;
        let mut start = mint.div_euclid(step) * step;
        if start <= mint {
            start += step;
        }
        let end = max_ref.div_euclid(step) * step;
        let mut series = Vec::new();
        if start <= end {
            let mut child = self.child(start, end, step);
            let v = child.eval(&sq.expr)?;
            let inner = match v {
                Val::Vector(vs) => child.finish_names(vs)?,
                Val::Scalar(s) => vec![VSeries {
                    labels: Labels::empty(),
                    points: s
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Point {
                            t: child.step_time(i),
                            v: *v,
                        })
                        .collect(),
                    drop_name: false,
                }],
                _ => {
                    return Err(QueryError::BadData(
                        "subquery is only allowed on instant vector or scalar".into(),
                    ))
                }
            };
            self.absorb(child);
            for s in inner {
                series.push(RawSeries {
                    labels: s.labels,
                    points: s.points,
                });
            }
        }
        Ok(Windows {
            series,
            range,
            ends,
        })
    }

    /// Evaluates an operand that must be a scalar: one value per step.
    pub(crate) fn eval_scalar(&mut self, e: &Expr) -> EResult<Vec<f64>> {
        match self.eval(e)? {
            Val::Scalar(s) => Ok(s),
            _ => Err(QueryError::BadData(format!(
                "expected type scalar in call, got {}",
                type_name(e)
            ))),
        }
    }

    /// Evaluates an operand that must be an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &Expr) -> EResult<Vec<VSeries>> {
        match self.eval(e)? {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::BadData(format!(
                "expected type instant vector, got {}",
                type_name(e)
            ))),
        }
    }

    /// Evaluates an operand that must be a range vector.
    pub(crate) fn eval_windows(&mut self, e: &Expr) -> EResult<Windows> {
        match e {
            Expr::Paren(p) => self.eval_windows(&p.expr),
            Expr::MatrixSelector(ms) => self.eval_matrix_selector(ms),
            Expr::Subquery(sq) => self.eval_subquery(sq),
            _ => Err(QueryError::BadData(format!(
                "expected type range vector, got {}",
                type_name(e)
            ))),
        }
    }
}

/// True when `e` evaluates to the same value at every step: all its
/// selectors and subqueries carry `@`, and it calls nothing that reads the
/// evaluation time.
pub(crate) fn is_step_invariant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::Paren(p) => is_step_invariant(&p.expr),
        Expr::Unary(u) => is_step_invariant(&u.expr),
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Aggregate(a) => {
            is_step_invariant(&a.expr) && a.param.as_ref().is_none_or(|p| is_step_invariant(p))
        }
        Expr::Binary(b) => is_step_invariant(&b.lhs) && is_step_invariant(&b.rhs),
        Expr::Call(c) => {
            !matches!(
                c.func.name,
                "time"
                    | "timestamp"
                    | "minute"
                    | "hour"
                    | "day_of_week"
                    | "day_of_month"
                    | "day_of_year"
                    | "days_in_month"
                    | "month"
                    | "year"
                    | "predict_linear"
                    | "vector"
                    | "scalar"
                    | "absent"
            ) && !c.args.args.is_empty()
                && c.args.args.iter().all(|a| is_step_invariant(a))
        }
        Expr::Extension(_) => false,
    }
}

/// Prometheus's name for an expression's type.
pub(crate) fn type_name(e: &Expr) -> &'static str {
    use promql_parser::parser::value::ValueType as VT;
    match e.value_type() {
        VT::Scalar => "scalar",
        VT::String => "string",
        VT::Vector => "instant vector",
        VT::Matrix => "range vector",
    }
}

/// Fails if two series have the same labels at the same step. Only series
/// whose labels repeat have their timestamps compared.
pub(crate) fn check_duplicates(series: &[VSeries]) -> EResult<()> {
    let mut groups: HashMap<&Labels, Vec<usize>> = HashMap::with_capacity(series.len());
    for (i, s) in series.iter().enumerate() {
        groups.entry(&s.labels).or_default().push(i);
    }
    for members in groups.values().filter(|m| m.len() > 1) {
        let mut ts: Vec<i64> = members
            .iter()
            .flat_map(|&k| series[k].points.iter().map(|p| p.t))
            .collect();
        let n = ts.len();
        ts.sort_unstable();
        ts.dedup();
        if ts.len() != n {
            return Err(QueryError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

/// Token ids used by the evaluator.
pub(crate) mod tok {
    pub(crate) use promql_parser::parser::token::{
        T_ADD, T_ATAN2, T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_DIV, T_EQLC, T_GROUP, T_GTE,
        T_GTR, T_LAND, T_LIMITK, T_LIMIT_RATIO, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MAX, T_MIN,
        T_MOD, T_MUL, T_NEQ, T_POW, T_QUANTILE, T_STDDEV, T_STDVAR, T_SUB, T_SUM, T_TOPK,
    };
}
