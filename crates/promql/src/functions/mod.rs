//! Function calls. The numeric families live in their own files
//! (`range.rs`: functions over range-vector windows; `math.rs`: elementwise
//! functions); this module dispatches calls and implements the functions
//! that work on whole vectors (labels, sorting, `absent`, `histogram_quantile`,
//! `vector`, `scalar`, `time`, `timestamp`).

mod info;
pub(crate) mod math;
pub(crate) mod range;

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};
use vigil_model::{is_stale, Labels, LabelsBuilder, METRIC_NAME};

use crate::engine::QueryError;
use crate::eval::{EResult, Evaluator, VSeries, Val};
use crate::value::Point;

/// Neumaier's variant of Kahan summation, as Prometheus's `kahanSumInc`:
/// one implementation, shared with the range functions.
pub(crate) use range::kahan_inc as kahan_sum_inc;

/// Prometheus's `quantile` over a set of values (linear interpolation,
/// NaN sorting first).
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    range::quantile(q, &mut values)
}

/// Formats a float as Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Functions that return samples of their input series and so keep
/// `__name__`.
fn keeps_name(name: &str) -> bool {
    matches!(
        name,
        "last_over_time"
            | "first_over_time"
            | "sort"
            | "sort_desc"
            | "sort_by_label"
            | "sort_by_label_desc"
            | "label_replace"
            | "label_join"
    )
}

/// Functions Prometheus puts behind `promql-experimental-functions`.
pub(crate) const EXPERIMENTAL: &[&str] = &[
    "sort_by_label",
    "sort_by_label_desc",
    "mad_over_time",
    "double_exponential_smoothing",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "first_over_time",
    "info",
    "histogram_quantiles",
];

impl Evaluator<'_> {
    pub(crate) fn eval_call(&mut self, c: &Call) -> EResult<Val> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
        if !self.opts.enable_experimental_functions && EXPERIMENTAL.contains(&name) {
            return Err(QueryError::BadData(format!(
                "function {name:?} is not enabled (experimental functions are off)"
            )));
        }
        let n = self.n_steps();
        match name {
            "time" => {
                return Ok(Val::Scalar(
                    (0..n)
                        .map(|i| vigil_model::time::to_seconds_f64(self.step_time(i)))
                        .collect(),
                ))
            }
            "pi" => return Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
            "step" => return Ok(Val::Scalar(vec![self.query_step() as f64 / 1000.0; n])),
            "range" => {
                let (s, e) = self.query_bounds();
                return Ok(Val::Scalar(vec![(e - s) as f64 / 1000.0; n]));
            }
            "start" => {
                let (s, _) = self.query_bounds();
                return Ok(Val::Scalar(vec![vigil_model::time::to_seconds_f64(s); n]));
            }
            "end" => {
                let (_, e) = self.query_bounds();
                return Ok(Val::Scalar(vec![vigil_model::time::to_seconds_f64(e); n]));
            }
            "min_of" | "max_of" => {
                let mut acc: Option<Vec<f64>> = None;
                for a in &args {
                    let v = self.eval_scalar(a)?;
                    acc = Some(match acc {
                        None => v,
                        Some(prev) => prev
                            .iter()
                            .zip(&v)
                            .map(|(x, y)| {
                                if x.is_nan() || y.is_nan() {
                                    f64::NAN
                                } else if name == "min_of" {
                                    x.min(*y)
                                } else {
                                    x.max(*y)
                                }
                            })
                            .collect(),
                    });
                }
                return Ok(Val::Scalar(acc.unwrap_or_else(|| vec![f64::NAN; n])));
            }
            "vector" => {
                let s = self.eval_scalar(arg(&args, 0)?)?;
                return Ok(Val::Vector(vec![VSeries {
                    labels: Labels::empty(),
                    points: s
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Point {
                            t: self.step_time(i),
                            v: *v,
                        })
                        .collect(),
                    drop_name: false,
                }]));
            }
            "scalar" => {
                let v = self.eval_vector(arg(&args, 0)?)?;
                let mut out = vec![f64::NAN; n];
                let mut count = vec![0u32; n];
                for s in &v {
                    for p in &s.points {
                        let i = self.step_index(p.t);
                        out[i] = p.v;
                        count[i] += 1;
                    }
                }
                for (o, c) in out.iter_mut().zip(count) {
                    if c != 1 {
                        *o = f64::NAN;
                    }
                }
                return Ok(Val::Scalar(out));
            }
            "timestamp" => {
                let a = arg(&args, 0)?;
                let inner = strip_parens(a);
                let v = match inner {
                    Expr::VectorSelector(vs) => self.eval_selector_timestamps(vs)?,
                    _ => {
                        let mut v = self.eval_vector(a)?;
                        for s in &mut v {
                            for p in &mut s.points {
                                p.v = vigil_model::time::to_seconds_f64(p.t);
                            }
                            self.drop_name(s);
                        }
                        v
                    }
                };
                return Ok(Val::Vector(v));
            }
            "absent" => return self.absent(arg(&args, 0)?),
            "absent_over_time" => return self.absent_over_time(arg(&args, 0)?),
            "label_replace" => return self.label_replace(&args),
            "label_join" => return self.label_join(&args),
            "sort" | "sort_desc" => {
                let mut v = self.eval_vector(arg(&args, 0)?)?;
                self.warn_sort_in_range_query();
                if n == 1 {
                    let desc = name == "sort_desc";
                    v.sort_by(|a, b| {
                        let (x, y) = (a.points[0].v, b.points[0].v);
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ => {
                                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                                if desc {
                                    o.reverse()
                                } else {
                                    o
                                }
                            }
                        }
                    });
                }
                return Ok(Val::Vector(v));
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = self.eval_vector(arg(&args, 0)?)?;
                self.warn_sort_in_range_query();
                let mut names = Vec::new();
                for a in args.iter().skip(1) {
                    match strip_parens(a) {
                        Expr::StringLiteral(s) => names.push(s.val.clone()),
                        _ => return Err(QueryError::BadData("expected label name strings".into())),
                    }
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    for n in &names {
                        let o = natural_cmp(a.labels.get_or_empty(n), b.labels.get_or_empty(n));
                        if o != std::cmp::Ordering::Equal {
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
                return Ok(Val::Vector(v));
            }
            "histogram_quantile" => return self.histogram_quantile(&args),
            "info" => return self.eval_info(&args),
            "histogram_fraction" => return self.histogram_fraction(&args),
            "histogram_quantiles" => return self.histogram_quantiles(&args),
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // Native histograms only: float series yield nothing.
                for a in &args {
                    let _ = self.eval(a)?;
                }
                return Ok(Val::Vector(Vec::new()));
            }
            _ => {}
        }
        if let Some(f) = range::RangeFn::from_name(name) {
            return self.call_range_fn(f, name, &args);
        }
        if let Some(f) = math::MathFn::from_name(name) {
            return self.call_math_fn(f, name, &args);
        }
        Err(QueryError::BadData(format!(
            "unknown function with name {name:?}"
        )))
    }

    fn warn_sort_in_range_query(&mut self) {
        if self.query_step() != 0 {
            self.annotations.warn(
                "sort is ineffective for range queries since results are always ordered by labels",
            );
        }
    }

    fn call_range_fn(&mut self, f: range::RangeFn, name: &str, args: &[&Expr]) -> EResult<Val> {
        // The range-vector argument is the first, except for
        // quantile_over_time, whose first argument is the quantile.
        let (range_idx, scalar_idx): (usize, Vec<usize>) = match f {
            range::RangeFn::QuantileOverTime => (1, vec![0]),
            _ => (0, (1..args.len()).collect()),
        };
        let mut scalars = Vec::new();
        for &i in &scalar_idx {
            scalars.push(self.eval_scalar(arg(args, i)?)?);
        }
        let keep = keeps_name(name);
        let mut out = Vec::new();
        let range_arg = strip_parens(arg(args, range_idx)?);
        if let Expr::MatrixSelector(ms) = range_arg {
            // Streamed: one series' samples in memory at a time.
            let sel = self.matrix_selection(ms)?;
            self.for_each_series(
                &sel.matchers,
                sel.mint,
                sel.maxt,
                false,
                |ev, labels, points| {
                    let read = points.len();
                    points.retain(|p| !is_stale(p.v));
                    let s = ev.range_fn_series(f, labels, points, &sel.ends, sel.range, &scalars);
                    ev.release_samples(read);
                    if let Some(s) = s? {
                        ev.add_samples(s.points.len())?;
                        out.push(s);
                    }
                    Ok(())
                },
            )?;
        } else {
            let w = self.eval_windows(range_arg)?;
            for s in &w.series {
                out.extend(
                    self.range_fn_series(f, &s.labels, &s.points, &w.ends, w.range, &scalars)?,
                );
            }
        }
        if !keep {
            for s in &mut out {
                self.drop_name(s);
            }
            if !self.opts.enable_delayed_name_removal {
                crate::eval::check_duplicates(&out)?;
            }
        }
        Ok(Val::Vector(out))
    }

    /// One series of a range function's result: `f` over the series'
    /// window at every step (`ends` are the windows' ends, `scalars` the
    /// function's scalar arguments per step), or `None` when no step has
    /// an output.
    fn range_fn_series(
        &mut self,
        f: range::RangeFn,
        labels: &Labels,
        points: &[Point],
        ends: &[i64],
        range_ms: i64,
        scalars: &[Vec<f64>],
    ) -> EResult<Option<VSeries>> {
        let mut out = Vec::new();
        let metric_name = labels.metric_name();
        let mut sc = vec![0.0; scalars.len()];
        // Counter resets found once per series rather than once per window:
        // sample index and the value before it.
        let track_resets = matches!(
            f,
            range::RangeFn::Rate | range::RangeFn::Increase | range::RangeFn::Resets
        );
        let (reset_at, reset_prev): (Vec<usize>, Vec<f64>) = if track_resets {
            points
                .windows(2)
                .enumerate()
                .filter(|(_, w)| w[1].v < w[0].v)
                .map(|(i, w)| (i + 1, w[0].v))
                .unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        // Window ends never decrease, so the window's bounds (and the
        // resets inside it) slide forward: no search per step.
        let (mut lo, mut hi) = (0usize, 0usize);
        let (mut ra, mut rb) = (0usize, 0usize);
        let mut prev_end = i64::MIN;
        for (i, &end) in ends.iter().enumerate() {
            let start = end - range_ms;
            if end < prev_end {
                (lo, hi, ra, rb) = (0, 0, 0, 0);
            }
            prev_end = end;
            while lo < points.len() && points[lo].t <= start {
                lo += 1;
            }
            hi = hi.max(lo);
            while hi < points.len() && points[hi].t <= end {
                hi += 1;
            }
            if lo >= hi {
                continue;
            }
            // The resets whose sample and predecessor are both in the window.
            while ra < reset_at.len() && reset_at[ra] <= lo {
                ra += 1;
            }
            rb = rb.max(ra);
            while rb < reset_at.len() && reset_at[rb] < hi {
                rb += 1;
            }
            for (k, vals) in scalars.iter().enumerate() {
                sc[k] = vals.get(i).copied().unwrap_or(f64::NAN);
            }
            let a = range::RangeArgs {
                points: &points[lo..hi],
                range_start: start,
                range_end: end,
                scalars: &sc,
                // The per-series info annotation needs checking only until
                // the series' first output.
                metric_name: if out.is_empty() { metric_name } else { None },
                counter_resets: track_resets.then(|| &reset_prev[ra..rb]),
            };
            match range::eval_at(f, &a, self.step_time(i), &mut self.annotations) {
                Ok(Some(v)) => out.push(Point {
                    t: self.step_time(i),
                    v,
                }),
                Ok(None) => {}
                Err(range::RangeFnError::InvalidArgument(msg)) => {
                    return Err(QueryError::Execution(msg))
                }
            }
        }
        Ok((!out.is_empty()).then(|| VSeries {
            labels: labels.clone(),
            points: out,
            drop_name: false,
        }))
    }

    fn call_math_fn(&mut self, f: math::MathFn, name: &str, args: &[&Expr]) -> EResult<Val> {
        use math::MathFn as M;
        let n = self.n_steps();
        let is_time_fn = matches!(
            f,
            M::DayOfMonth
                | M::DayOfWeek
                | M::DayOfYear
                | M::DaysInMonth
                | M::Hour
                | M::Minute
                | M::Month
                | M::Year
        );
        let mut v = if is_time_fn && args.is_empty() {
            vec![VSeries {
                labels: Labels::empty(),
                points: (0..n)
                    .map(|i| Point {
                        t: self.step_time(i),
                        v: vigil_model::time::to_seconds_f64(self.step_time(i)),
                    })
                    .collect(),
                drop_name: false,
            }]
        } else {
            self.eval_vector(arg(args, 0)?)?
        };
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for a in args.iter().skip(1) {
            scalars.push(self.eval_scalar(a)?);
        }
        if f == M::Round && scalars.is_empty() {
            scalars.push(vec![1.0; n]);
        }
        let mut sc = vec![0.0; scalars.len()];
        let mut out = Vec::with_capacity(v.len());
        for mut s in v.drain(..) {
            let mut points = Vec::with_capacity(s.points.len());
            for p in &s.points {
                let i = self.step_index(p.t);
                for (k, vals) in scalars.iter().enumerate() {
                    sc[k] = vals.get(i).copied().unwrap_or(f64::NAN);
                }
                // clamp with min > max yields nothing.
                if f == M::Clamp && sc.len() == 2 && sc[0] > sc[1] {
                    continue;
                }
                points.push(Point {
                    t: p.t,
                    v: math::apply(f, p.v, &sc),
                });
            }
            if points.is_empty() {
                continue;
            }
            s.points = points;
            if !keeps_name(name) {
                self.drop_name(&mut s);
            }
            out.push(s);
        }
        if !self.opts.enable_delayed_name_removal {
            crate::eval::check_duplicates(&out)?;
        }
        Ok(Val::Vector(out))
    }

    fn absent(&mut self, a: &Expr) -> EResult<Val> {
        let v = self.eval_vector(a)?;
        let n = self.n_steps();
        let mut present = vec![false; n];
        for s in &v {
            for p in &s.points {
                present[self.step_index(p.t)] = true;
            }
        }
        let labels = absent_labels(a);
        let points: Vec<Point> = (0..n)
            .filter(|i| !present[*i])
            .map(|i| Point {
                t: self.step_time(i),
                v: 1.0,
            })
            .collect();
        Ok(Val::Vector(if points.is_empty() {
            Vec::new()
        } else {
            vec![VSeries {
                labels,
                points,
                drop_name: false,
            }]
        }))
    }

    fn absent_over_time(&mut self, a: &Expr) -> EResult<Val> {
        let w = self.eval_windows(a)?;
        let n = self.n_steps();
        let mut points = Vec::new();
        for (i, &end) in w.ends.iter().enumerate().take(n) {
            let start = end - w.range;
            let any = w
                .series
                .iter()
                .any(|s| s.points.iter().any(|p| p.t > start && p.t <= end));
            if !any {
                points.push(Point {
                    t: self.step_time(i),
                    v: 1.0,
                });
            }
        }
        let inner = match strip_parens(a) {
            Expr::MatrixSelector(ms) => Expr::VectorSelector(ms.vs.clone()),
            other => other.clone(),
        };
        Ok(Val::Vector(if points.is_empty() {
            Vec::new()
        } else {
            vec![VSeries {
                labels: absent_labels(&inner),
                points,
                drop_name: false,
            }]
        }))
    }

    fn string_arg(&self, args: &[&Expr], i: usize) -> EResult<String> {
        match strip_parens(arg(args, i)?) {
            Expr::StringLiteral(s) => Ok(s.val.clone()),
            _ => Err(QueryError::BadData(format!("expected string argument {i}"))),
        }
    }

    fn label_replace(&mut self, args: &[&Expr]) -> EResult<Val> {
        let dst = self.string_arg(args, 1)?;
        let repl = self.string_arg(args, 2)?;
        let src = self.string_arg(args, 3)?;
        let re_str = self.string_arg(args, 4)?;
        let re = vigil_model::matcher::compile_anchored(&re_str).map_err(|_| {
            QueryError::BadData(format!(
                "invalid regular expression in label_replace(): {re_str}"
            ))
        })?;
        if dst.is_empty() || dst.contains(crate::parse::INVALID_UTF8_MARK) {
            return Err(QueryError::BadData(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let v = self.eval_vector(arg(args, 0)?)?;
        let mut out = Vec::with_capacity(v.len());
        for mut s in v {
            let src_val = s.labels.get_or_empty(&src).to_string();
            if let Some(caps) = re.captures(&src_val) {
                let mut res = String::new();
                caps.expand(&go_template_to_rust(&repl), &mut res);
                let mut b = LabelsBuilder::from_labels(&s.labels);
                b.set(&dst, &res);
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
                s.labels = b.build();
            }
            out.push(s);
        }
        Ok(Val::Vector(merge_same_labels(out)?))
    }

    fn label_join(&mut self, args: &[&Expr]) -> EResult<Val> {
        let dst = self.string_arg(args, 1)?;
        let sep = self.string_arg(args, 2)?;
        let mut srcs = Vec::new();
        for i in 3..args.len() {
            srcs.push(self.string_arg(args, i)?);
        }
        let v = self.eval_vector(arg(args, 0)?)?;
        let mut out = Vec::with_capacity(v.len());
        for mut s in v {
            let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get_or_empty(n)).collect();
            let value = joined.join(&sep);
            let mut b = LabelsBuilder::from_labels(&s.labels);
            b.set(&dst, &value);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
            s.labels = b.build();
            out.push(s);
        }
        Ok(Val::Vector(merge_same_labels(out)?))
    }

    /// Groups classic-histogram bucket series by their labels without `le`
    /// (name included, so two histograms never mix), per step.
    #[allow(clippy::type_complexity)]
    fn classic_buckets(&mut self, v: &[VSeries]) -> Vec<(Labels, Vec<Vec<(f64, f64)>>)> {
        let n = self.n_steps();
        let mut groups: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<(Labels, Vec<Vec<(f64, f64)>>)> = Vec::new();
        for s in v {
            let le = s.labels.get_or_empty("le");
            let upper = match parse_go_float(le).filter(|_| !le.is_empty()) {
                Some(u) => u,
                None => {
                    self.annotations.warn(format!(
                        "bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {:?}",
                        s.labels.get_or_empty(METRIC_NAME)
                    ));
                    continue;
                }
            };
            let key = s.labels.drop_names(&["le"]);
            let idx = *groups.entry(key.clone()).or_insert_with(|| {
                out.push((key, vec![Vec::new(); n]));
                out.len() - 1
            });
            for p in &s.points {
                out[idx].1[self.step_index(p.t)].push((upper, p.v));
            }
        }
        out
    }

    fn warn_quantiles(&mut self, qs: &[f64]) {
        for &q in qs {
            if !(0.0..=1.0).contains(&q) {
                self.annotations.warn(format!(
                    "quantile value should be between 0 and 1, got {}",
                    range::go_format_g(q)
                ));
            }
        }
    }

    /// Output series of a classic-histogram function: labels without the
    /// metric name (delayed or now), duplicates rejected.
    fn histogram_output(&self, out: Vec<VSeries>) -> EResult<Val> {
        let mut res = Vec::with_capacity(out.len());
        for mut s in out {
            self.drop_name(&mut s);
            res.push(s);
        }
        if !self.opts.enable_delayed_name_removal {
            crate::eval::check_duplicates(&res)?;
        }
        Ok(Val::Vector(res))
    }

    fn histogram_quantile(&mut self, args: &[&Expr]) -> EResult<Val> {
        let q = self.eval_scalar(arg(args, 0)?)?;
        self.warn_quantiles(&q);
        let v = self.eval_vector(arg(args, 1)?)?;
        let groups = self.classic_buckets(&v);
        let mut out = Vec::new();
        let mut forced = false;
        for (labels, per_step) in groups {
            let mut points = Vec::new();
            for (i, mut buckets) in per_step.into_iter().enumerate() {
                if buckets.is_empty() {
                    continue;
                }
                let (v, f) = bucket_quantile(q[i], &mut buckets);
                forced |= f;
                points.push(Point {
                    t: self.step_time(i),
                    v,
                });
            }
            if !points.is_empty() {
                out.push(VSeries {
                    labels,
                    points,
                    drop_name: false,
                });
            }
        }
        if forced {
            self.monotonicity_info();
        }
        self.histogram_output(out)
    }

    fn monotonicity_info(&mut self) {
        self.annotations.info(
            "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)",
        );
    }

    fn histogram_quantiles(&mut self, args: &[&Expr]) -> EResult<Val> {
        let v = self.eval_vector(arg(args, 0)?)?;
        let label = self.string_arg(args, 1)?;
        let mut qs = Vec::new();
        for a in args.iter().skip(2) {
            qs.push(self.eval_scalar(a)?);
        }
        for q in &qs {
            self.warn_quantiles(q);
        }
        if v.iter().any(|s| s.labels.has(&label)) {
            return Err(QueryError::Execution(format!(
                "label {label:?} already exists in the input of histogram_quantiles"
            )));
        }
        let groups = self.classic_buckets(&v);
        let mut out = Vec::new();
        let mut forced = false;
        for (labels, per_step) in groups {
            for q in &qs {
                let mut points = Vec::new();
                let mut value_label = None;
                for (i, buckets) in per_step.iter().enumerate() {
                    if buckets.is_empty() {
                        continue;
                    }
                    let mut b = buckets.clone();
                    let (v, f) = bucket_quantile(q[i], &mut b);
                    forced |= f;
                    value_label.get_or_insert_with(|| format_openmetrics_float(q[i]));
                    points.push(Point {
                        t: self.step_time(i),
                        v,
                    });
                }
                if let Some(lv) = value_label {
                    let mut bld = LabelsBuilder::from_labels(&labels);
                    bld.set(&label, &lv);
                    out.push(VSeries {
                        labels: bld.build(),
                        points,
                        drop_name: false,
                    });
                }
            }
        }
        if forced {
            self.monotonicity_info();
        }
        self.histogram_output(out)
    }

    fn histogram_fraction(&mut self, args: &[&Expr]) -> EResult<Val> {
        let lower = self.eval_scalar(arg(args, 0)?)?;
        let upper = self.eval_scalar(arg(args, 1)?)?;
        let v = self.eval_vector(arg(args, 2)?)?;
        let groups = self.classic_buckets(&v);
        let mut out = Vec::new();
        for (labels, per_step) in groups {
            let mut points = Vec::new();
            for (i, mut buckets) in per_step.into_iter().enumerate() {
                if buckets.is_empty() {
                    continue;
                }
                points.push(Point {
                    t: self.step_time(i),
                    v: bucket_fraction(lower[i], upper[i], &mut buckets),
                });
            }
            if !points.is_empty() {
                out.push(VSeries {
                    labels,
                    points,
                    drop_name: false,
                });
            }
        }
        self.histogram_output(out)
    }
}

/// Formats a float as OpenMetrics does: integers get a `.0`.
fn format_openmetrics_float(f: f64) -> String {
    let s = format_go_float(f);
    if f.is_finite() && !s.contains(['.', 'e', 'E']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// Sorts classic buckets, merges equal bounds and repairs counts: tiny
/// decreases from floating-point error are flattened silently, real ones
/// are forced monotonic and reported. Returns `None` without a `+Inf`
/// bucket.
fn prepare_buckets(buckets: &mut [(f64, f64)]) -> Option<(Vec<(f64, f64)>, bool)> {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().map(|x| x.0) != Some(f64::INFINITY) {
        return None;
    }
    let mut b: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(u, c) in buckets.iter() {
        match b.last_mut() {
            Some(last) if last.0 == u => last.1 += c,
            _ => b.push((u, c)),
        }
    }
    // Precision errors (relative 1e-12) are flattened.
    let mut prev = b[0].1;
    for x in b.iter_mut().skip(1) {
        let delta = (x.1 - prev).abs();
        if delta == 0.0 {
            continue;
        }
        if delta / x.1 <= 1e-12 {
            x.1 = prev;
        } else {
            prev = x.1;
        }
    }
    let mut forced = false;
    let mut max = b[0].1;
    for x in b.iter_mut().skip(1) {
        if x.1 > max {
            max = x.1;
        } else if x.1 < max {
            x.1 = max;
            forced = true;
        }
    }
    Some((b, forced))
}

/// Prometheus's `bucketQuantile` over classic buckets (upper bound,
/// cumulative count). Returns the value and whether counts had to be made
/// monotonic.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some((b, forced)) = prepare_buckets(buckets) else {
        return (f64::NAN, false);
    };
    if b.len() < 2 {
        return (f64::NAN, false);
    }
    let observations = b[b.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, false);
    }
    let rank = q * observations;
    let idx = b[..b.len() - 1].partition_point(|x| x.1 < rank);
    if idx == b.len() - 1 {
        return (b[b.len() - 2].0, forced);
    }
    if idx == 0 && b[0].0 <= 0.0 {
        return (b[0].0, forced);
    }
    let (mut start, end, mut count, mut rank) = (0.0, b[idx].0, b[idx].1, rank);
    if idx > 0 {
        start = b[idx - 1].0;
        count -= b[idx - 1].1;
        rank -= b[idx - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// The fraction of observations between `lower` and `upper` in classic
/// buckets, interpolating linearly inside a bucket (a first bucket with a
/// positive upper bound starts at 0), as Prometheus's `BucketFraction`.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some((b, _)) = prepare_buckets(buckets) else {
        return f64::NAN;
    };
    let total = b[b.len() - 1].1;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(ub, cum)) in b.iter().enumerate() {
        let lb = if i == 0 {
            if ub > 0.0 {
                0.0
            } else {
                f64::NEG_INFINITY
            }
        } else {
            b[i - 1].0
        };
        let count = if i == 0 { cum } else { cum - b[i - 1].1 };
        let interp = |x: f64| -> f64 {
            if ub.is_infinite() {
                // Nothing is known inside the +Inf bucket: its mass sits at
                // its lower edge.
                rank
            } else if lb.is_infinite() {
                rank + count
            } else {
                rank + count * (x - lb) / (ub - lb)
            }
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = interp(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = interp(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += count;
    }
    if !lower_set || lower_rank > total {
        lower_rank = total;
    }
    if !upper_set || upper_rank > total {
        upper_rank = total;
    }
    (upper_rank - lower_rank) / total
}

/// Parses a float as Go's `strconv.ParseFloat` does for `le` labels.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        t => t.parse::<f64>().ok(),
    }
}

/// Turns Go's `$1` / `${1}` / `$name` replacement syntax into the `regex`
/// crate's, which is the same except that `$1x` means group `1x` in both;
/// the syntaxes agree, so only `$$` needs no change either. Kept as a
/// function so differences can be handled in one place.
fn go_template_to_rust(s: &str) -> String {
    s.to_string()
}

/// Compares strings as Prometheus's `sort_by_label` does (natural order:
/// runs of digits compare by number).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        } else {
            let o = ab[i].cmp(&bb[j]);
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

/// Joins series that ended up with the same labels into one, as long as
/// they have no value at the same step; otherwise the query fails as in
/// Prometheus.
pub(crate) fn merge_same_labels(series: Vec<VSeries>) -> EResult<Vec<VSeries>> {
    let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
    let mut out: Vec<VSeries> = Vec::with_capacity(series.len());
    for s in series {
        let key = (s.labels.clone(), s.drop_name);
        match index.get(&key) {
            None => {
                index.insert(key, out.len());
                out.push(s);
            }
            Some(&i) => {
                let target = &mut out[i];
                let mut merged = Vec::with_capacity(target.points.len() + s.points.len());
                let (mut a, mut b) = (target.points.iter().peekable(), s.points.iter().peekable());
                loop {
                    match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) if x.t == y.t => {
                            return Err(QueryError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ))
                        }
                        (Some(x), Some(y)) => {
                            if x.t < y.t {
                                merged.push(**x);
                                a.next();
                            } else {
                                merged.push(**y);
                                b.next();
                            }
                        }
                        (Some(x), None) => {
                            merged.push(**x);
                            a.next();
                        }
                        (None, Some(y)) => {
                            merged.push(**y);
                            b.next();
                        }
                        (None, None) => break,
                    }
                }
                target.points = merged;
            }
        }
    }
    Ok(out)
}

fn arg<'e>(args: &[&'e Expr], i: usize) -> EResult<&'e Expr> {
    args.get(i)
        .copied()
        .ok_or_else(|| QueryError::BadData(format!("missing argument {i}")))
}

fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

/// The labels `absent()` returns: the equality matchers of a selector
/// argument (unless a label is matched twice).
fn absent_labels(e: &Expr) -> Labels {
    let Expr::VectorSelector(vs) = strip_parens(e) else {
        return Labels::empty();
    };
    let mut eq: HashMap<&str, &str> = HashMap::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for m in &vs.matchers.matchers {
        *seen.entry(m.name.as_str()).or_default() += 1;
        if let promql_parser::label::MatchOp::Equal = m.op {
            eq.insert(m.name.as_str(), m.value.as_str());
        }
    }
    // A label matched more than once (by any operator) is left out.
    let dup: Vec<&str> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    Labels::from_pairs(
        eq.into_iter()
            .filter(|(n, _)| !dup.contains(n) && *n != METRIC_NAME),
    )
}
