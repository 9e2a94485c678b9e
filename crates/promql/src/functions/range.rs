//! Functions over a range-vector window (`rate`, `*_over_time`, ...), for
//! float samples, with Prometheus 3.x semantics.
//!
//! The engine evaluates one of these once per step per series: it selects
//! the float samples of the window `(range_start, range_end]` (stale markers
//! removed) and calls [`eval`]. A window without samples yields no output,
//! and the engine does not call `eval` for it (it handles `absent_over_time`
//! itself); `eval` returns `Ok(None)` for an empty window all the same.
//!
//! The arithmetic follows Prometheus's `promql/functions.go` operation by
//! operation (including the order of floating-point operations and the
//! Kahan-Neumaier compensated sums), so that results agree bit for bit where
//! Prometheus's own results are deterministic.

use std::cmp::Ordering;
use std::fmt;

use crate::value::{Annotations, Point};

/// A PromQL function whose (first) argument is a range vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFn {
    /// `rate(v range-vector)`
    Rate,
    /// `increase(v range-vector)`
    Increase,
    /// `delta(v range-vector)`
    Delta,
    /// `irate(v range-vector)`
    Irate,
    /// `idelta(v range-vector)`
    Idelta,
    /// `deriv(v range-vector)`
    Deriv,
    /// `predict_linear(v range-vector, t scalar)`
    PredictLinear,
    /// `resets(v range-vector)`
    Resets,
    /// `changes(v range-vector)`
    Changes,
    /// `avg_over_time(v range-vector)`
    AvgOverTime,
    /// `sum_over_time(v range-vector)`
    SumOverTime,
    /// `count_over_time(v range-vector)`
    CountOverTime,
    /// `min_over_time(v range-vector)`
    MinOverTime,
    /// `max_over_time(v range-vector)`
    MaxOverTime,
    /// `stddev_over_time(v range-vector)`
    StddevOverTime,
    /// `stdvar_over_time(v range-vector)`
    StdvarOverTime,
    /// `quantile_over_time(q scalar, v range-vector)`
    QuantileOverTime,
    /// `mad_over_time(v range-vector)`
    MadOverTime,
    /// `last_over_time(v range-vector)`
    LastOverTime,
    /// `first_over_time(v range-vector)`
    FirstOverTime,
    /// `present_over_time(v range-vector)`
    PresentOverTime,
    /// `double_exponential_smoothing(v range-vector, sf scalar, tf scalar)`
    DoubleExponentialSmoothing,
    /// `ts_of_min_over_time(v range-vector)`
    TsOfMinOverTime,
    /// `ts_of_max_over_time(v range-vector)`
    TsOfMaxOverTime,
    /// `ts_of_last_over_time(v range-vector)`
    TsOfLastOverTime,
    /// `ts_of_first_over_time(v range-vector)`
    TsOfFirstOverTime,
}

impl RangeFn {
    /// Every range function, in declaration order.
    pub(crate) const ALL: [RangeFn; 26] = [
        RangeFn::Rate,
        RangeFn::Increase,
        RangeFn::Delta,
        RangeFn::Irate,
        RangeFn::Idelta,
        RangeFn::Deriv,
        RangeFn::PredictLinear,
        RangeFn::Resets,
        RangeFn::Changes,
        RangeFn::AvgOverTime,
        RangeFn::SumOverTime,
        RangeFn::CountOverTime,
        RangeFn::MinOverTime,
        RangeFn::MaxOverTime,
        RangeFn::StddevOverTime,
        RangeFn::StdvarOverTime,
        RangeFn::QuantileOverTime,
        RangeFn::MadOverTime,
        RangeFn::LastOverTime,
        RangeFn::FirstOverTime,
        RangeFn::PresentOverTime,
        RangeFn::DoubleExponentialSmoothing,
        RangeFn::TsOfMinOverTime,
        RangeFn::TsOfMaxOverTime,
        RangeFn::TsOfLastOverTime,
        RangeFn::TsOfFirstOverTime,
    ];

    /// The function called `name` in PromQL, if it is one of these.
    pub(crate) fn from_name(name: &str) -> Option<RangeFn> {
        RangeFn::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The function's PromQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RangeFn::Rate => "rate",
            RangeFn::Increase => "increase",
            RangeFn::Delta => "delta",
            RangeFn::Irate => "irate",
            RangeFn::Idelta => "idelta",
            RangeFn::Deriv => "deriv",
            RangeFn::PredictLinear => "predict_linear",
            RangeFn::Resets => "resets",
            RangeFn::Changes => "changes",
            RangeFn::AvgOverTime => "avg_over_time",
            RangeFn::SumOverTime => "sum_over_time",
            RangeFn::CountOverTime => "count_over_time",
            RangeFn::MinOverTime => "min_over_time",
            RangeFn::MaxOverTime => "max_over_time",
            RangeFn::StddevOverTime => "stddev_over_time",
            RangeFn::StdvarOverTime => "stdvar_over_time",
            RangeFn::QuantileOverTime => "quantile_over_time",
            RangeFn::MadOverTime => "mad_over_time",
            RangeFn::LastOverTime => "last_over_time",
            RangeFn::FirstOverTime => "first_over_time",
            RangeFn::PresentOverTime => "present_over_time",
            RangeFn::DoubleExponentialSmoothing => "double_exponential_smoothing",
            RangeFn::TsOfMinOverTime => "ts_of_min_over_time",
            RangeFn::TsOfMaxOverTime => "ts_of_max_over_time",
            RangeFn::TsOfLastOverTime => "ts_of_last_over_time",
            RangeFn::TsOfFirstOverTime => "ts_of_first_over_time",
        }
    }
}

/// The inputs of one evaluation of a range function: one series' window at
/// one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RangeArgs<'a> {
    /// The float samples in the window `(range_start, range_end]`, in time
    /// order, stale markers already removed.
    pub points: &'a [Point],
    /// Exclusive window start in ms (`eval_time - offset - range`, or the
    /// `@` time minus the range).
    pub range_start: i64,
    /// Inclusive window end in ms (`eval_time - offset`, or the `@` time).
    pub range_end: i64,
    /// The function's scalar arguments at this step, in call order, without
    /// the range vector: `predict_linear`: `[t]`; `quantile_over_time`:
    /// `[q]`; `double_exponential_smoothing`: `[sf, tf]`; otherwise empty.
    pub scalars: &'a [f64],
    /// The series' `__name__`, if any, for the `rate`/`increase` info
    /// annotation about names that do not look like counters.
    pub metric_name: Option<&'a str>,
    /// For `rate`, `increase` and `resets`: the value before each counter
    /// reset in the window (a sample lower than its predecessor, both in
    /// the window), in time order, when the caller tracks them across
    /// steps; `None` makes the function find them in `points`.
    pub counter_resets: Option<&'a [f64]>,
}

/// An error that fails the whole query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeFnError {
    /// A scalar argument is out of its domain; the text is Prometheus's
    /// error message.
    InvalidArgument(String),
}

impl fmt::Display for RangeFnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeFnError::InvalidArgument(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for RangeFnError {}

/// Evaluates `f` over one window, taking the window end as the evaluation
/// time: [`eval_at`] with `eval_time = a.range_end`.
///
/// That is right unless `offset` or `@` moved the window; only
/// `predict_linear` cares, so the engine should prefer [`eval_at`].
#[allow(dead_code)] // the engine calls eval_at; tests use eval
pub(crate) fn eval(
    f: RangeFn,
    a: &RangeArgs<'_>,
    ann: &mut Annotations,
) -> Result<Option<f64>, RangeFnError> {
    eval_at(f, a, a.range_end, ann)
}

/// Evaluates `f` over one window at the step timestamp `eval_time` (ms).
///
/// `eval_time` is the step's evaluation timestamp, unaffected by `offset`
/// and `@`; only `predict_linear` reads it, because Prometheus predicts `t`
/// seconds after the evaluation time whatever window the selector reads
/// (`predict_linear(x[5m] @ 3000, 3600)` evaluated at 600s predicts for
/// 4200s).
///
/// Returns `Ok(None)` when the function has no output sample for this
/// window (no samples, too few samples, or a missing scalar argument), and
/// `Err` when the query must fail (`double_exponential_smoothing` with a
/// factor outside `(0, 1)`). Warnings and infos go to `ann`.
pub(crate) fn eval_at(
    f: RangeFn,
    a: &RangeArgs<'_>,
    eval_time: i64,
    ann: &mut Annotations,
) -> Result<Option<f64>, RangeFnError> {
    let pts = a.points;
    if pts.is_empty() {
        return Ok(None);
    }
    let out = match f {
        RangeFn::Rate => counter_info(extrapolated_rate(a, true, true), a, ann),
        RangeFn::Increase => counter_info(extrapolated_rate(a, true, false), a, ann),
        RangeFn::Delta => extrapolated_rate(a, false, false),
        RangeFn::Irate => instant_value(pts, true),
        RangeFn::Idelta => instant_value(pts, false),
        RangeFn::Deriv => deriv(pts),
        RangeFn::PredictLinear => predict_linear(a, eval_time),
        RangeFn::Resets => Some(
            a.counter_resets
                .map_or_else(|| resets(pts), |r| r.len() as f64),
        ),
        RangeFn::Changes => Some(changes(pts)),
        RangeFn::AvgOverTime => Some(avg_over_time(pts)),
        RangeFn::SumOverTime => Some(sum_over_time(pts)),
        RangeFn::CountOverTime => Some(pts.len() as f64),
        RangeFn::MinOverTime => compare_over_time(pts, |cur, best| cur < best).map(|p| p.v),
        RangeFn::MaxOverTime => compare_over_time(pts, |cur, best| cur > best).map(|p| p.v),
        RangeFn::TsOfMinOverTime => {
            compare_over_time(pts, |cur, best| cur <= best).map(|p| ms_to_seconds(p.t))
        }
        RangeFn::TsOfMaxOverTime => {
            compare_over_time(pts, |cur, best| cur >= best).map(|p| ms_to_seconds(p.t))
        }
        RangeFn::StddevOverTime => Some(variance_over_time(pts).sqrt()),
        RangeFn::StdvarOverTime => Some(variance_over_time(pts)),
        RangeFn::QuantileOverTime => quantile_over_time(a, ann),
        RangeFn::MadOverTime => Some(mad_over_time(pts)),
        RangeFn::LastOverTime => pts.last().map(|p| p.v),
        RangeFn::FirstOverTime => pts.first().map(|p| p.v),
        RangeFn::TsOfLastOverTime => pts.last().map(|p| ms_to_seconds(p.t)),
        RangeFn::TsOfFirstOverTime => pts.first().map(|p| ms_to_seconds(p.t)),
        RangeFn::PresentOverTime => Some(1.0),
        RangeFn::DoubleExponentialSmoothing => double_exponential_smoothing(a)?,
    };
    Ok(out)
}

/// A timestamp in ms as float seconds, as Prometheus's `float64(t) / 1000`.
fn ms_to_seconds(t: i64) -> f64 {
    t as f64 / 1000.0
}

/// Go's `time.Duration.Seconds()` for a duration of `ms` milliseconds:
/// whole seconds plus the nanosecond remainder, each converted separately.
fn duration_seconds(ms: i64) -> f64 {
    let secs = ms / 1000;
    let nanos = (ms % 1000) * 1_000_000;
    secs as f64 + nanos as f64 / 1e9
}

/// One step of Kahan-Neumaier summation (Prometheus's `kahansum.Inc`):
/// adds `inc` to `sum` with running compensation `c`, returning the new
/// pair. The compensation is dropped once the sum overflows to infinity.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Adds Prometheus's "metric might not be a counter" info for `rate` and
/// `increase` when there is an output sample and the series' name lacks
/// every counter suffix.
fn counter_info(out: Option<f64>, a: &RangeArgs<'_>, ann: &mut Annotations) -> Option<f64> {
    if out.is_some() {
        if let Some(name) = a.metric_name {
            if !name.is_empty()
                && !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|suffix| name.ends_with(suffix))
            {
                ann.info(format!(
                    "metric might not be a counter, name does not end in \
                     _total/_sum/_count/_bucket: {}",
                    go_quote(name)
                ));
            }
        }
    }
    out
}

/// `rate`, `increase` and `delta` (Prometheus's `extrapolatedRate`): the
/// difference between the last and first sample, corrected for counter
/// resets when `is_counter`, extrapolated towards the window boundaries,
/// and divided by the range in seconds when `is_rate`.
///
/// Extrapolation reaches a boundary only when the first/last sample is
/// within 1.1 average sample intervals of it; otherwise it goes half an
/// average interval. For counters, the start-side extrapolation also stops
/// where the counter would reach zero. Needs at least two samples.
fn extrapolated_rate(a: &RangeArgs<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let pts = a.points;
    let (first, last) = match pts {
        [first, .., last] => (first, last),
        _ => return None,
    };
    let mut result = last.v - first.v;
    if let (true, Some(resets)) = (is_counter, a.counter_resets) {
        // The same additions, in the same order, as the loop below.
        for &prev in resets {
            result += prev;
        }
    } else if is_counter {
        let mut prev = first.v;
        for p in pts.iter().skip(1) {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }

    let mut duration_to_start = first.t.wrapping_sub(a.range_start) as f64 / 1000.0;
    let mut duration_to_end = a.range_end.wrapping_sub(last.t) as f64 / 1000.0;
    let sampled_interval = last.t.wrapping_sub(first.t) as f64 / 1000.0;
    let average_interval = sampled_interval / (pts.len() - 1) as f64;

    let threshold = average_interval * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_interval / 2.0;
    }
    if is_counter {
        // A counter cannot go below zero: when extrapolating backwards would
        // cross zero, start the extrapolation at the zero point instead.
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first.v >= 0.0 {
            duration_to_zero = sampled_interval * (first.v / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_interval / 2.0;
    }

    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= duration_seconds(a.range_end.wrapping_sub(a.range_start));
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples only. For `irate`, a
/// decrease is a counter reset (the result is then the last value), and the
/// result is per second. Needs two samples with distinct timestamps.
fn instant_value(pts: &[Point], is_rate: bool) -> Option<f64> {
    let (prev, last) = match pts {
        [.., prev, last] => (prev, last),
        _ => return None,
    };
    let interval = last.t.wrapping_sub(prev.t);
    if interval == 0 {
        return None;
    }
    let reset = is_rate && last.v < prev.v;
    let mut result = if reset { last.v } else { last.v - prev.v };
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares linear regression of value over time (in seconds relative
/// to `intercept_time`), with Kahan-compensated sums, as Prometheus's
/// `linearRegression`. Returns `(slope, intercept)`, the intercept being
/// the fitted value at `intercept_time`.
///
/// All-equal values give slope 0 (and NaN for both when that value is
/// infinite). Callers pass at least two points.
fn linear_regression(pts: &[Point], intercept_time: i64) -> (f64, f64) {
    let init_y = pts.first().map_or(f64::NAN, |p| p.v);
    let mut const_y = true;
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    for (i, p) in pts.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = p.t.wrapping_sub(intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;

    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`: the regression slope in units per second. Needs two samples.
fn deriv(pts: &[Point]) -> Option<f64> {
    let first = match pts {
        [first, _, ..] => first,
        _ => return None,
    };
    // Prometheus regresses relative to the first sample's time to keep the
    // x values small (prometheus/prometheus#2674).
    Some(linear_regression(pts, first.t).0)
}

/// `predict_linear(v, t)`: the regression line's value `t` seconds after
/// `eval_time`. Needs two samples and the `t` argument.
fn predict_linear(a: &RangeArgs<'_>, eval_time: i64) -> Option<f64> {
    let duration = *a.scalars.first()?;
    if a.points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(a.points, eval_time);
    Some(slope * duration + intercept)
}

/// `resets`: how many times a value is lower than the one before it.
fn resets(pts: &[Point]) -> f64 {
    let mut count = 0u64;
    let mut prev = match pts.first() {
        Some(p) => p.v,
        None => return 0.0,
    };
    for p in pts.iter().skip(1) {
        if p.v < prev {
            count += 1;
        }
        prev = p.v;
    }
    count as f64
}

/// `changes`: how many times a value differs from the one before it; two
/// NaNs in a row are no change, a NaN next to a number is.
fn changes(pts: &[Point]) -> f64 {
    let mut count = 0u64;
    let mut prev = match pts.first() {
        Some(p) => p.v,
        None => return 0.0,
    };
    for p in pts.iter().skip(1) {
        if p.v != prev && !(p.v.is_nan() && prev.is_nan()) {
            count += 1;
        }
        prev = p.v;
    }
    count as f64
}

/// `avg_over_time`: the mean, computed as a Kahan-compensated sum divided by
/// the count while the sum stays finite, switching to an incremental
/// (Kahan-compensated) mean from the first sample whose addition would
/// overflow, as Prometheus does.
fn avg_over_time(pts: &[Point]) -> f64 {
    let mut sum = match pts.first() {
        Some(p) => p.v,
        None => return f64::NAN,
    };
    let mut count = 1.0;
    let mut mean = 0.0;
    let mut c = 0.0;
    let mut incremental = false;
    for (i, p) in pts.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(p.v, sum, c);
            if !new_sum.is_infinite() {
                sum = new_sum;
                c = new_c;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// `sum_over_time`: Kahan-compensated sum; an overflowed (infinite) sum is
/// returned without its compensation.
fn sum_over_time(pts: &[Point]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in pts {
        (sum, c) = kahan_inc(p.v, sum, c);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

/// The sample that wins `better(candidate, best)` scanning in time order,
/// starting from the first sample; a NaN best is always replaced. With a
/// non-strict comparison the latest of equal values wins (the `ts_of_*`
/// functions), with a strict one the earliest.
fn compare_over_time(pts: &[Point], better: impl Fn(f64, f64) -> bool) -> Option<Point> {
    let mut best = *pts.first()?;
    for p in pts {
        if better(p.v, best.v) || best.v.is_nan() {
            best = *p;
        }
    }
    Some(best)
}

/// Population variance by Welford's online algorithm with Kahan-compensated
/// mean and sum of squared deviations (Prometheus's `varianceOverTime`).
fn variance_over_time(pts: &[Point]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for p in pts {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `quantile_over_time(q, v)`: warns when `q` is NaN or outside `[0, 1]`.
fn quantile_over_time(a: &RangeArgs<'_>, ann: &mut Annotations) -> Option<f64> {
    let q = *a.scalars.first()?;
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        ann.warn(format!(
            "quantile value should be between 0 and 1, got {}",
            go_format_g(q)
        ));
    }
    let mut values: Vec<f64> = a.points.iter().map(|p| p.v).collect();
    Some(quantile(q, &mut values))
}

/// `mad_over_time`: the median of the absolute deviations from the median.
/// Any NaN sample makes the result NaN (Prometheus 3.x after #19040).
fn mad_over_time(pts: &[Point]) -> f64 {
    if pts.iter().any(|p| p.v.is_nan()) {
        return f64::NAN;
    }
    let mut values: Vec<f64> = pts.iter().map(|p| p.v).collect();
    let median = quantile(0.5, &mut values);
    for v in &mut values {
        *v = (*v - median).abs();
    }
    quantile(0.5, &mut values)
}

/// The order Prometheus sorts values in for quantiles: NaN before
/// everything, then ascending (with -0 and +0 equal).
fn nan_first_order(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// The `q`-quantile of `values` (sorted in place) by linear interpolation
/// between the closest ranks, as Prometheus's `quantile`: NaN for no values
/// or a NaN `q`, -Inf for `q < 0`, +Inf for `q > 1`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first_order);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower_index = rank.floor().max(0.0);
    let upper_index = (n - 1.0).min(lower_index + 1.0);
    let weight = rank - rank.floor();
    let lower = values
        .get(lower_index as usize)
        .copied()
        .unwrap_or(f64::NAN);
    let upper = values
        .get(upper_index as usize)
        .copied()
        .unwrap_or(f64::NAN);
    lower * (1.0 - weight) + upper * weight
}

/// `double_exponential_smoothing(v, sf, tf)` (Holt's linear method). Both
/// factors must lie in `(0, 1)` (a NaN factor passes the check, as in
/// Prometheus); needs two samples.
fn double_exponential_smoothing(a: &RangeArgs<'_>) -> Result<Option<f64>, RangeFnError> {
    let (sf, tf) = match a.scalars {
        [sf, tf, ..] => (*sf, *tf),
        _ => return Ok(None),
    };
    if sf <= 0.0 || sf >= 1.0 {
        return Err(RangeFnError::InvalidArgument(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            go_format_f6(sf)
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(RangeFnError::InvalidArgument(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            go_format_f6(tf)
        )));
    }
    let pts = a.points;
    let (p0, p1) = match pts {
        [p0, p1, ..] => (p0, p1),
        _ => return Ok(None),
    };
    let mut s0 = 0.0;
    let mut s1 = p0.v;
    let mut b = p1.v - p0.v;
    for (i, p) in pts.iter().enumerate().skip(1) {
        // Scale the raw value by the smoothing factor.
        let x = sf * p.v;
        // Update the trend, then scale the previous smoothed value plus trend.
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

/// Formats `v` like Go's `fmt` verb `%g` (shortest representation that
/// round-trips; exponent form when the decimal exponent is below -4 or at
/// least 6, with a signed exponent of at least two digits).
pub(crate) fn go_format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Go.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1.min(digits.len()));
        let dot = if tail.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!(
            "{sign}{head}{dot}{tail}e{exp_sign}{:02}",
            exp.unsigned_abs()
        );
    }
    // Plain form: place the decimal point `exp + 1` digits in.
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if point >= digits.len() {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point);
            format!("{int}.{frac}")
        }
    };
    format!("{sign}{body}")
}

/// Formats `v` like Go's `%f` (six decimals; `NaN`, `+Inf`, `-Inf`).
fn go_format_f6(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v:.6}")
    }
}

/// Quotes `s` like Go's `%q`: double quotes, with `"` and `\` escaped and
/// control characters written as escapes. (Metric names are printable, so
/// the common case is just the name in quotes.)
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    /// Points at `start_ms + i * step_ms` with the given values.
    fn series(start_ms: i64, step_ms: i64, values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Point {
                t: start_ms + i as i64 * step_ms,
                v,
            })
            .collect()
    }

    /// The points of `all` inside `(eval - range, eval]`.
    fn window(all: &[Point], eval: i64, range: i64) -> Vec<Point> {
        all.iter()
            .filter(|p| p.t > eval - range && p.t <= eval)
            .copied()
            .collect()
    }

    struct Out {
        value: Result<Option<f64>, RangeFnError>,
        ann: Annotations,
    }

    /// Evaluates `f` at `eval` over `[range]` of `all`, without offset.
    fn run(f: RangeFn, all: &[Point], eval: i64, range: i64, scalars: &[f64]) -> Out {
        run_named(f, all, eval, range, scalars, Some("x_total"))
    }

    fn run_named(
        f: RangeFn,
        all: &[Point],
        at: i64,
        range: i64,
        scalars: &[f64],
        name: Option<&str>,
    ) -> Out {
        let pts = window(all, at, range);
        let args = RangeArgs {
            points: &pts,
            range_start: at - range,
            range_end: at,
            scalars,
            metric_name: name,
            counter_resets: None,
        };
        let mut ann = Annotations::default();
        let value = eval(f, &args, &mut ann);
        // Without offset or @, the eval time is the window end.
        let mut ann_at = Annotations::default();
        let value_at = eval_at(f, &args, at, &mut ann_at);
        assert!(same(&value, &value_at), "{}", f.name());
        assert_eq!(ann, ann_at);
        // Resets handed in by a caller that tracks them give the same
        // answer, to the bit, as the function's own scan.
        let resets: Vec<f64> = pts
            .windows(2)
            .filter(|w| w[1].v < w[0].v)
            .map(|w| w[0].v)
            .collect();
        let tracked = RangeArgs {
            counter_resets: Some(&resets),
            ..args
        };
        let value_tracked = eval(f, &tracked, &mut Annotations::default());
        assert!(
            same(&value, &value_tracked),
            "{} with tracked resets",
            f.name()
        );
        Out { value, ann }
    }

    /// Equal results, NaN equal to NaN.
    fn same(a: &Result<Option<f64>, RangeFnError>, b: &Result<Option<f64>, RangeFnError>) -> bool {
        match (a, b) {
            (Ok(Some(x)), Ok(Some(y))) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    fn value(f: RangeFn, all: &[Point], eval: i64, range: i64, scalars: &[f64]) -> Option<f64> {
        run(f, all, eval, range, scalars).value.expect("no error")
    }

    /// Prometheus's test tolerance: relative 1e-6, exact for 0, NaN = NaN.
    fn assert_close(got: Option<f64>, want: f64) {
        let got = got.unwrap_or_else(|| panic!("no value, want {want}"));
        if want.is_nan() {
            assert!(got.is_nan(), "got {got}, want NaN");
        } else if want == 0.0 || want.is_infinite() {
            assert_eq!(got, want);
        } else {
            let diff = (got - want).abs();
            assert!(
                diff <= 1e-6 * want.abs().max(got.abs()),
                "got {got}, want {want}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for f in RangeFn::ALL {
            assert_eq!(RangeFn::from_name(f.name()), Some(f));
        }
        assert_eq!(RangeFn::from_name("absent_over_time"), None);
        assert_eq!(RangeFn::from_name("Rate"), None);
        assert_eq!(
            RangeFn::from_name("double_exponential_smoothing"),
            Some(RangeFn::DoubleExponentialSmoothing)
        );
    }

    #[test]
    fn empty_window_has_no_output() {
        for f in RangeFn::ALL {
            let out = run(f, &[], 1000, 1000, &[0.5, 0.5]);
            assert_eq!(out.value, Ok(None), "{}", f.name());
            assert!(out.ann.is_empty());
        }
    }

    #[test]
    fn no_panics_on_odd_input() {
        let nasty = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            1.0,
        ];
        let scalar_sets: [&[f64]; 6] = [
            &[],
            &[f64::NAN],
            &[0.5, 0.5],
            &[-1.0, 2.0],
            &[f64::INFINITY, f64::NEG_INFINITY],
            &[0.5, f64::NAN],
        ];
        for f in RangeFn::ALL {
            for scalars in scalar_sets {
                for n in 0..nasty.len() {
                    // Same timestamps, extreme timestamps, normal ones.
                    for (start, step) in [(0, 0), (i64::MIN, i64::MAX / 8), (-5, 7)] {
                        let pts: Vec<Point> = nasty[..n]
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| Point {
                                t: start.wrapping_add(step.wrapping_mul(i as i64)),
                                v,
                            })
                            .collect();
                        let args = RangeArgs {
                            points: &pts,
                            range_start: i64::MIN,
                            range_end: i64::MAX,
                            scalars,
                            metric_name: Some(""),
                            counter_resets: None,
                        };
                        let _ = eval(f, &args, &mut Annotations::default());
                        for at in [i64::MIN, 0, i64::MAX] {
                            let _ = eval_at(f, &args, at, &mut Annotations::default());
                        }
                    }
                }
            }
        }
    }

    // --- rate, increase, delta -------------------------------------------

    #[test]
    fn increase_extrapolates_to_window_boundaries() {
        // functions.test: load 5m, increase(http_requests_total[50m]) at 50m.
        let foo = series(
            0,
            5 * MIN,
            &[0., 10., 20., 30., 40., 50., 60., 70., 80., 90., 100.],
        );
        assert_close(
            value(RangeFn::Increase, &foo, 50 * MIN, 50 * MIN, &[]),
            100.0,
        );
        let bar: Vec<f64> = (0..6).chain(0..6).map(|i| f64::from(i) * 18.0).collect();
        let bar = series(0, 5 * MIN, &bar);
        assert_close(
            value(RangeFn::Increase, &bar, 50 * MIN, 50 * MIN, &[]),
            160.0,
        );
        let dings: Vec<f64> = (0..11).map(|i| 10.0 + f64::from(i) * 10.0).collect();
        let dings = series(0, 5 * MIN, &dings);
        assert_close(
            value(RangeFn::Increase, &dings, 50 * MIN, 50 * MIN, &[]),
            100.0,
        );
    }

    #[test]
    fn increase_limits_extrapolation_by_half_interval_and_zero_point() {
        // functions.test: increase(http_requests_total[100m]) at 50m.
        let mk = |first: f64| {
            let v: Vec<f64> = (0..11).map(|i| first + f64::from(i) * 10.0).collect();
            series(0, 5 * MIN, &v)
        };
        // Starts at 0: no extrapolation before the first sample.
        assert_close(
            value(RangeFn::Increase, &mk(0.0), 50 * MIN, 100 * MIN, &[]),
            100.0,
        );
        // Zero point 5m before the start: half an interval (2m30s) wins.
        assert_close(
            value(RangeFn::Increase, &mk(10.0), 50 * MIN, 100 * MIN, &[]),
            105.0,
        );
        // Zero point 30s before the start: it wins.
        assert_close(
            value(RangeFn::Increase, &mk(1.0), 50 * MIN, 100 * MIN, &[]),
            101.0,
        );
        let bar: Vec<f64> = (0..6).chain(0..6).map(|i| f64::from(i) * 18.0).collect();
        let bar = series(0, 5 * MIN, &bar);
        assert_close(
            value(RangeFn::Increase, &bar, 50 * MIN, 100 * MIN, &[]),
            162.0,
        );
    }

    #[test]
    fn increase_counter_reset_is_a_restart_from_zero() {
        let s = series(0, 5 * MIN, &[0., 1., 2., 3., 2., 3., 4.]);
        assert_close(value(RangeFn::Increase, &s, 30 * MIN, 30 * MIN, &[]), 7.0);
    }

    #[test]
    fn rate_handles_resets_and_divides_by_range() {
        // testcounter_reset_middle_total 0+27x4 0+27x5
        let v: Vec<f64> = (0..5).chain(0..6).map(|i| f64::from(i) * 27.0).collect();
        let s = series(0, 5 * MIN, &v);
        assert_close(value(RangeFn::Rate, &s, 50 * MIN, 50 * MIN, &[]), 0.08);
        // calculate_rate_window_total 0+80x10
        let v: Vec<f64> = (0..11).map(|i| f64::from(i) * 80.0).collect();
        let s = series(0, 5 * MIN, &v);
        assert_close(
            value(RangeFn::Rate, &s, 50 * MIN, 50 * MIN, &[]),
            0.266_666_666_666_666_66,
        );
    }

    #[test]
    fn rate_reset_at_window_end() {
        // testcounter_reset_end_total 0+10x9 0 10
        let mut v: Vec<f64> = (0..10).map(|i| f64::from(i) * 10.0).collect();
        v.extend([0.0, 10.0]);
        let s = series(0, 5 * MIN, &v);
        // One sample in the window: nothing.
        assert_eq!(value(RangeFn::Rate, &s, 50 * MIN, 5 * MIN, &[]), None);
        // 90 then 0: the reset makes the increase 0.
        assert_close(value(RangeFn::Rate, &s, 50 * MIN, 6 * MIN, &[]), 0.0);
    }

    #[test]
    fn rate_zero_cutoff() {
        // load 4m; testcounter_zero_cutoff_total{start=...} N+240x10;
        // rate(...[20m]) at 10m.
        let cases = [
            (0.0, 0.5),
            (60.0, 0.55),
            (120.0, 0.6),
            (180.0, 0.6),
            (300.0, 0.6),
        ];
        for (first, want) in cases {
            let v: Vec<f64> = (0..11).map(|i| first + f64::from(i) * 240.0).collect();
            let s = series(0, 4 * MIN, &v);
            assert_close(value(RangeFn::Rate, &s, 10 * MIN, 20 * MIN, &[]), want);
            // At 50m the normal half-interval cutoff applies.
            assert_close(value(RangeFn::Rate, &s, 50 * MIN, 20 * MIN, &[]), 0.6);
        }
    }

    #[test]
    fn rate_needs_two_samples() {
        let s = series(0, 5 * MIN, &[1.0]);
        for f in [RangeFn::Rate, RangeFn::Increase, RangeFn::Delta] {
            assert_eq!(value(f, &s, 0, 5 * MIN, &[]), None);
        }
    }

    #[test]
    fn rate_exact_arithmetic() {
        // Two samples 10s apart inside a 60s window ending 5s after the
        // last: both sides extrapolate by half the interval (5s).
        let s = [
            Point {
                t: 20_000,
                v: 100.0,
            },
            Point {
                t: 30_000,
                v: 110.0,
            },
        ];
        let out = value(RangeFn::Increase, &s, 35_000, 60_000, &[]);
        // to_start = 55s >= 11s -> 5s; zero point 100s away; to_end = 5s.
        assert_eq!(out, Some(10.0 * ((10.0 + 5.0 + 5.0) / 10.0)));
        let rate = value(RangeFn::Rate, &s, 35_000, 60_000, &[]);
        assert_eq!(rate, Some(10.0 * ((10.0 + 5.0 + 5.0) / 10.0 / 60.0)));
    }

    #[test]
    fn delta_is_gauge_difference() {
        let foo = series(0, 5 * MIN, &[0., 50., 100., 150., 200.]);
        assert_close(value(RangeFn::Delta, &foo, 20 * MIN, 20 * MIN, &[]), 200.0);
        let bar = series(0, 5 * MIN, &[200., 150., 100., 50., 0.]);
        assert_close(value(RangeFn::Delta, &bar, 20 * MIN, 20 * MIN, &[]), -200.0);
        // A decrease is no reset for delta, and there is no zero cutoff.
        let s = series(0, 10_000, &[5.0, 3.0, 1.0]);
        // Window (−30s, 20s]: to_start 30s >= 11s -> 5s, to_end 0.
        assert_eq!(
            value(RangeFn::Delta, &s, 20_000, 50_000, &[]),
            Some(-4.0 * ((20.0 + 5.0) / 20.0))
        );
    }

    #[test]
    fn rate_nan_and_inf_values() {
        // A NaN in the middle is invisible to rate: NaN < x and x < NaN are
        // both false. 2 over 20s, extrapolated by 10s at the start, per 30s.
        let s = series(0, 10_000, &[1.0, f64::NAN, 3.0]);
        assert_close(value(RangeFn::Rate, &s, 20_000, 30_000, &[]), 0.1);
        let s = series(0, 10_000, &[1.0, 2.0, f64::NAN]);
        assert!(value(RangeFn::Rate, &s, 20_000, 30_000, &[]).is_some_and(f64::is_nan));
        let s = series(0, 10_000, &[1.0, f64::INFINITY]);
        assert_eq!(
            value(RangeFn::Delta, &s, 10_000, 20_000, &[]),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn rate_info_for_non_counter_names() {
        let s = series(0, 10_000, &[1.0, 2.0, 3.0]);
        let out = run_named(
            RangeFn::Rate,
            &s,
            20_000,
            30_000,
            &[],
            Some("http_requests"),
        );
        assert!(out.value.unwrap().is_some());
        let infos: Vec<String> = out.ann.infos().map(|a| a.to_string()).collect();
        assert_eq!(
            infos,
            [
                "PromQL info: metric might not be a counter, name does not end in \
              _total/_sum/_count/_bucket: \"http_requests\""
            ]
        );
        assert_eq!(out.ann.warnings().count(), 0);

        for name in ["a_total", "a_sum", "a_count", "a_bucket"] {
            let out = run_named(RangeFn::Increase, &s, 20_000, 30_000, &[], Some(name));
            assert!(out.ann.is_empty(), "{name}");
        }
        // No name, an empty name, no output, or another function: no info.
        for name in [None, Some("")] {
            assert!(run_named(RangeFn::Rate, &s, 20_000, 30_000, &[], name)
                .ann
                .is_empty());
        }
        let one = run_named(RangeFn::Rate, &s, 0, 5_000, &[], Some("gauge"));
        assert_eq!(one.value, Ok(None));
        assert!(one.ann.is_empty());
        let delta = run_named(RangeFn::Delta, &s, 20_000, 30_000, &[], Some("gauge"));
        assert!(delta.ann.is_empty());
        let irate = run_named(RangeFn::Irate, &s, 20_000, 30_000, &[], Some("gauge"));
        assert!(irate.ann.is_empty());
    }

    #[test]
    fn duration_seconds_matches_go() {
        assert_eq!(duration_seconds(300_000), 300.0);
        assert_eq!(duration_seconds(61_001), 61.0 + 0.001);
        assert_eq!(duration_seconds(1), 0.001);
    }

    // --- irate, idelta ---------------------------------------------------

    #[test]
    fn irate_and_idelta() {
        let v: Vec<f64> = (0..11).map(|i| f64::from(i) * 10.0).collect();
        let foo = series(0, 5 * MIN, &v);
        assert_close(
            value(RangeFn::Irate, &foo, 50 * MIN, 50 * MIN, &[]),
            0.033_333_333_333_333_33,
        );
        // Counter reset: 50 then 0 -> the last value over the interval.
        let v: Vec<f64> = (0..6).chain(0..6).map(|i| f64::from(i) * 10.0).collect();
        let bar = series(0, 5 * MIN, &v);
        assert_eq!(
            value(RangeFn::Irate, &bar, 30 * MIN, 50 * MIN, &[]),
            Some(0.0)
        );
        let s = series(0, 5 * MIN, &[0., 50., 100., 50.]);
        assert_eq!(
            value(RangeFn::Idelta, &s, 15 * MIN, 20 * MIN, &[]),
            Some(-50.0)
        );
        let s = series(0, 5 * MIN, &[0., 50., 100., 150.]);
        assert_eq!(
            value(RangeFn::Idelta, &s, 15 * MIN, 20 * MIN, &[]),
            Some(50.0)
        );
    }

    #[test]
    fn irate_idelta_with_nan() {
        // http_requests_nan 1 NaN NaN 5 11, range query 0..20m step 5m
        // over [15m1s]: _ NaN NaN NaN 0.02 (irate) / 6 (idelta).
        let s = series(0, 5 * MIN, &[1.0, f64::NAN, f64::NAN, 5.0, 11.0]);
        let range = 15 * MIN + 1000;
        assert_eq!(value(RangeFn::Irate, &s, 0, range, &[]), None);
        for step in 1..4 {
            let v = value(RangeFn::Irate, &s, step * 5 * MIN, range, &[]);
            assert!(v.is_some_and(f64::is_nan), "step {step}");
            let v = value(RangeFn::Idelta, &s, step * 5 * MIN, range, &[]);
            assert!(v.is_some_and(f64::is_nan), "step {step}");
        }
        assert_close(value(RangeFn::Irate, &s, 20 * MIN, range, &[]), 0.02);
        assert_eq!(value(RangeFn::Idelta, &s, 20 * MIN, range, &[]), Some(6.0));
    }

    #[test]
    fn irate_needs_distinct_timestamps() {
        let s = [Point { t: 5, v: 1.0 }, Point { t: 5, v: 2.0 }];
        assert_eq!(value(RangeFn::Irate, &s, 10, 10, &[]), None);
        assert_eq!(value(RangeFn::Idelta, &s, 10, 10, &[]), None);
        let s = [Point { t: 5, v: 1.0 }];
        assert_eq!(value(RangeFn::Irate, &s, 10, 10, &[]), None);
    }

    // --- deriv, predict_linear -------------------------------------------

    /// testcounter_reset_middle_total 0+10x4 0+10x5 at 5m intervals.
    fn reset_middle() -> Vec<Point> {
        let v: Vec<f64> = (0..5).chain(0..6).map(|i| f64::from(i) * 10.0).collect();
        series(0, 5 * MIN, &v)
    }

    #[test]
    fn deriv_least_squares_slope() {
        let v: Vec<f64> = (0..11).map(|i| f64::from(i) * 80.0).collect();
        let s = series(0, 5 * MIN, &v);
        assert_close(
            value(RangeFn::Deriv, &s, 50 * MIN, 50 * MIN, &[]),
            0.266_666_666_666_666_66,
        );
        assert_close(
            value(RangeFn::Deriv, &reset_middle(), 50 * MIN, 100 * MIN, &[]),
            0.010_606_060_606_060_607,
        );
        // Constant values: slope exactly 0; one sample: no output.
        let s = series(0, 10_000, &[3.0, 3.0, 3.0]);
        assert_eq!(value(RangeFn::Deriv, &s, 20_000, 60_000, &[]), Some(0.0));
        assert_eq!(value(RangeFn::Deriv, &s, 0, 60_000, &[]), None);
    }

    #[test]
    fn deriv_and_predict_linear_with_infinities() {
        let s = series(5 * MIN, 5 * MIN, &[0.0, 80.0, 160.0, f64::INFINITY]);
        assert!(value(RangeFn::Deriv, &s, 100 * MIN, 100 * MIN, &[]).is_some_and(f64::is_nan));
        assert!(
            value(RangeFn::PredictLinear, &s, 100 * MIN, 100 * MIN, &[6000.0])
                .is_some_and(f64::is_nan)
        );
        // All values the same infinity: NaN rather than a flat line.
        let s = series(0, 10_000, &[f64::INFINITY, f64::INFINITY]);
        assert!(value(RangeFn::Deriv, &s, 10_000, 60_000, &[]).is_some_and(f64::is_nan));
    }

    #[test]
    fn predict_linear_from_eval_time() {
        let s = reset_middle();
        assert_close(
            value(RangeFn::PredictLinear, &s, 50 * MIN, 50 * MIN, &[3600.0]),
            70.0,
        );
        // `[55m] @ 3000` evaluated at 50m, 10m and 70m: the window is fixed
        // (all 11 samples) but the prediction is relative to the eval time.
        let pts = window(&s, 50 * MIN, 55 * MIN);
        assert_eq!(pts.len(), 11);
        for (eval_time, want) in [
            (50 * MIN, 76.818_181_818_181_81),
            (10 * MIN, 51.363_636_363_636_37),
            (70 * MIN, 89.545_454_545_454_55),
        ] {
            let args = RangeArgs {
                points: &pts,
                range_start: 50 * MIN - 55 * MIN,
                range_end: 50 * MIN,
                scalars: &[3600.0],
                metric_name: None,
                counter_resets: None,
            };
            let got = eval_at(
                RangeFn::PredictLinear,
                &args,
                eval_time,
                &mut Annotations::default(),
            );
            assert_close(got.unwrap(), want);
        }
        // `eval` predicts from the window end instead.
        let args = RangeArgs {
            points: &pts,
            range_start: 50 * MIN - 55 * MIN,
            range_end: 50 * MIN,
            scalars: &[3600.0],
            metric_name: None,
            counter_resets: None,
        };
        let got = eval(RangeFn::PredictLinear, &args, &mut Annotations::default());
        assert_close(got.unwrap(), 76.818_181_818_181_81);
        // Without the scalar argument there is nothing to predict.
        assert_eq!(
            value(RangeFn::PredictLinear, &s, 50 * MIN, 50 * MIN, &[]),
            None
        );
    }

    // --- resets, changes -------------------------------------------------

    #[test]
    fn resets_and_changes() {
        let foo = series(0, 5 * MIN, &[1., 2., 3., 0., 1., 0., 0., 1., 2., 0.]);
        let bar = series(0, 5 * MIN, &[1., 2., 3., 4., 5., 1., 2., 3., 4., 5.]);
        let biz = series(0, 5 * MIN, &[0., 0., 0., 0., 0., 1., 1., 1., 1., 1.]);
        let at = 50 * MIN;
        for (range, want) in [
            (10 * MIN, [0., 0., 0.]),
            (20 * MIN, [1., 0., 0.]),
            (32 * MIN, [2., 1., 0.]),
            (50 * MIN, [3., 1., 0.]),
        ] {
            for (s, w) in [&foo, &bar, &biz].into_iter().zip(want) {
                assert_eq!(value(RangeFn::Resets, s, at, range, &[]), Some(w));
            }
        }
        for (range, want) in [
            (6 * MIN, [0., 0., 0.]),
            (20 * MIN, [2., 2., 0.]),
            (30 * MIN, [3., 4., 0.]),
            (50 * MIN, [7., 8., 1.]),
        ] {
            for (s, w) in [&foo, &bar, &biz].into_iter().zip(want) {
                assert_eq!(value(RangeFn::Changes, s, at, range, &[]), Some(w));
            }
        }
    }

    #[test]
    fn changes_with_nan() {
        let nan = f64::NAN;
        let b = series(0, 5 * MIN, &[nan, nan, nan]);
        let c = series(0, 5 * MIN, &[0.0, nan, 0.0]);
        assert_eq!(
            value(RangeFn::Changes, &b, 15 * MIN, 20 * MIN, &[]),
            Some(0.0)
        );
        assert_eq!(
            value(RangeFn::Changes, &c, 15 * MIN, 20 * MIN, &[]),
            Some(2.0)
        );
        // NaN is never lower than anything: no resets.
        assert_eq!(
            value(RangeFn::Resets, &c, 15 * MIN, 20 * MIN, &[]),
            Some(0.0)
        );
        // -0 == +0: no change.
        let z = series(0, 1000, &[0.0, -0.0]);
        assert_eq!(value(RangeFn::Changes, &z, 1000, 5000, &[]), Some(0.0));
    }

    // --- aggregations over time ------------------------------------------

    fn over(f: RangeFn, values: &[f64]) -> Option<f64> {
        let s = series(1000, 1000, values);
        value(
            f,
            &s,
            1000 * values.len() as i64,
            1000 * values.len() as i64,
            &[],
        )
    }

    #[test]
    fn avg_sum_count_over_time() {
        assert_eq!(over(RangeFn::AvgOverTime, &[5.0]), Some(5.0));
        assert_eq!(over(RangeFn::AvgOverTime, &[1., 2., 3., 4., 5.]), Some(3.0));
        assert_eq!(
            over(RangeFn::SumOverTime, &[1., 2., 3., 4., 5.]),
            Some(15.0)
        );
        assert_eq!(over(RangeFn::CountOverTime, &[1., f64::NAN, 3.]), Some(3.0));
        assert_eq!(over(RangeFn::PresentOverTime, &[f64::NAN]), Some(1.0));
        let inf = f64::INFINITY;
        let cases: [(&[f64], f64); 9] = [
            (&[1., 2., 3., 4., inf], inf),
            (&[1., 2., 3., 4., -inf], -inf),
            (&[1., 2., 3., inf, -inf], f64::NAN),
            (&[inf, 0., inf], inf),
            (&[inf, inf, inf, -inf], f64::NAN),
            (&[1., 2., 3., -inf, -inf], -inf),
            (&[-inf, 0., -inf], -inf),
            (&[1., 2., -inf, -inf, inf], f64::NAN),
            (&[1., 2., 3., f64::NAN, f64::NAN], f64::NAN),
        ];
        for (values, want) in cases {
            assert_close(over(RangeFn::AvgOverTime, values), want);
            let sum = over(RangeFn::SumOverTime, values).unwrap();
            assert_close(Some(sum / values.len() as f64), want);
        }
    }

    #[test]
    fn avg_over_time_survives_overflow() {
        // 9.988465674311579e+307 in functions.test.
        let big = 9.988_465_674_311_58e307;
        assert_eq!(over(RangeFn::AvgOverTime, &[big, big]), Some(big));
        assert_eq!(over(RangeFn::AvgOverTime, &[-big, -big, -big]), Some(-big));
        assert_eq!(over(RangeFn::AvgOverTime, &[-big, big]), Some(0.0));
        // The sum itself overflows.
        assert_eq!(over(RangeFn::SumOverTime, &[big, big]), Some(f64::INFINITY));
    }

    #[test]
    fn kahan_sums_keep_small_values() {
        assert_eq!(
            over(RangeFn::SumOverTime, &[1.0, 1e100, 1.0, -1e100]),
            Some(2.0)
        );
        assert_eq!(
            over(RangeFn::AvgOverTime, &[1.0, 1e100, 1.0, -1e100]),
            Some(0.5)
        );
        // Exactly 52 however many samples (functions.test relies on ==).
        for n in 1..20 {
            assert_eq!(over(RangeFn::AvgOverTime, &vec![52.0; n]), Some(52.0));
        }
        assert_eq!(over(RangeFn::SumOverTime, &vec![1.0; 1003]), Some(1003.0));
        // Values from Prometheus's functions.test.
        assert_close(
            over(RangeFn::AvgOverTime, &[1e10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6]),
            1.666_666_666_666_667_5e9,
        );
        assert_close(
            over(
                RangeFn::AvgOverTime,
                &[
                    1.78264e50, 0.76342771, 1.9592258, 2.258e220, 7.69805412, 458.90154,
                ],
            ),
            3.763_333_333_333_33e219,
        );
        assert_close(
            over(
                RangeFn::AvgOverTime,
                &[
                    -1.78264e219,
                    0.76342771,
                    1.9592258,
                    2.3757689e217,
                    -2.3757689e217,
                    2.258e220,
                    7.69805412,
                    1.78264e219,
                    -458.90154,
                ],
            ),
            2.508_888_888_888_888_8e219,
        );
        // Even Kahan summation cannot cope here; Prometheus gets 0.
        assert_eq!(
            over(
                RangeFn::AvgOverTime,
                &[
                    -2.258e220,
                    -1.78264e219,
                    0.76342771,
                    1.9592258,
                    2.3757689e217,
                    -2.3757689e217,
                    2.258e220,
                    7.69805412,
                    1.78264e219,
                    -458.90154,
                ],
            ),
            Some(0.0)
        );
    }

    #[test]
    fn min_max_over_time_skip_nan() {
        let nan = f64::NAN;
        let cases: [(&[f64], f64, f64); 5] = [
            (&[2., 0., 3.], 0., 3.),
            (&[2., 0., nan], 0., 2.),
            (&[2., nan, 1.], 1., 2.),
            (&[nan, 0., 1.], 0., 1.),
            (&[nan, nan, nan], nan, nan),
        ];
        for (values, min, max) in cases {
            assert_close(over(RangeFn::MinOverTime, values), min);
            assert_close(over(RangeFn::MaxOverTime, values), max);
        }
    }

    #[test]
    fn first_last_over_time() {
        let nan = f64::NAN;
        assert_eq!(over(RangeFn::FirstOverTime, &[2., 0., 3.]), Some(2.0));
        assert_eq!(over(RangeFn::LastOverTime, &[2., 0., 3.]), Some(3.0));
        assert!(over(RangeFn::LastOverTime, &[2., 0., nan]).is_some_and(f64::is_nan));
        assert!(over(RangeFn::FirstOverTime, &[nan, 0., 1.]).is_some_and(f64::is_nan));
    }

    #[test]
    fn ts_of_functions() {
        // load 10s53ms; metric 1 2 3 0 5 6 2 1 4; at 90s over [90s].
        let s = series(0, 10_053, &[1., 2., 3., 0., 5., 6., 2., 1., 4.]);
        assert_eq!(
            value(RangeFn::TsOfMinOverTime, &s, 90_000, 90_000, &[]),
            Some(30.159)
        );
        assert_eq!(
            value(RangeFn::TsOfMaxOverTime, &s, 90_000, 90_000, &[]),
            Some(50.265)
        );
        assert_eq!(
            value(RangeFn::TsOfFirstOverTime, &s, 90_000, 90_000, &[]),
            Some(10.053)
        );
        assert_eq!(
            value(RangeFn::TsOfLastOverTime, &s, 90_000, 90_000, &[]),
            Some(80.424)
        );
        // Ties: the latest occurrence wins; NaN is skipped unless all NaN.
        let nan = f64::NAN;
        let s = series(1000, 1000, &[1., 5., nan, 5., 2.]);
        assert_eq!(
            value(RangeFn::TsOfMaxOverTime, &s, 5000, 5000, &[]),
            Some(4.0)
        );
        let s = series(1000, 1000, &[3., 1., 1., nan]);
        assert_eq!(
            value(RangeFn::TsOfMinOverTime, &s, 4000, 4000, &[]),
            Some(3.0)
        );
        let s = series(1000, 1000, &[nan, nan]);
        assert_eq!(
            value(RangeFn::TsOfMinOverTime, &s, 2000, 2000, &[]),
            Some(2.0)
        );
        // Negative timestamps.
        let s = [Point { t: -1500, v: 1.0 }];
        assert_eq!(
            value(RangeFn::TsOfLastOverTime, &s, 0, 2000, &[]),
            Some(-1.5)
        );
    }

    #[test]
    fn stddev_stdvar_over_time() {
        assert_close(over(RangeFn::StdvarOverTime, &[0., 8., 8., 2., 3.]), 10.56);
        assert_close(
            over(RangeFn::StddevOverTime, &[0., 8., 8., 2., 3.]),
            3.249_615,
        );
        let c = 1.599_050_563_727_786_8;
        assert_eq!(over(RangeFn::StdvarOverTime, &[c, c, c]), Some(0.0));
        assert_eq!(over(RangeFn::StddevOverTime, &[c, c, c]), Some(0.0));
        assert_eq!(over(RangeFn::StddevOverTime, &[7.0]), Some(0.0));
        assert!(over(RangeFn::StdvarOverTime, &[1.0, f64::NAN]).is_some_and(f64::is_nan));
    }

    #[test]
    fn mad_over_time() {
        // metric 4 6 2 1 999 1 2 at 70s over [70s]: the 4 is outside.
        let s = series(0, 10_000, &[4., 6., 2., 1., 999., 1., 2.]);
        assert_eq!(
            value(RangeFn::MadOverTime, &s, 70_000, 70_000, &[]),
            Some(1.0)
        );
        assert_eq!(over(RangeFn::MadOverTime, &[1., 2., 3., 4., 5.]), Some(1.0));
        assert_eq!(over(RangeFn::MadOverTime, &[7.; 5]), Some(0.0));
        assert_eq!(over(RangeFn::MadOverTime, &[5.]), Some(0.0));
        assert!(over(RangeFn::MadOverTime, &[1., 2., f64::NAN, 4.]).is_some_and(f64::is_nan));
    }

    // --- quantile_over_time ----------------------------------------------

    #[test]
    fn quantile_over_time_values() {
        let two = [0., 1.];
        let three = [0., 1., 2.];
        let uneven = [0., 1., 4.];
        let cases = [
            (0.0, [0.0, 0.0, 0.0]),
            (0.5, [0.5, 1.0, 1.0]),
            (0.75, [0.75, 1.5, 2.5]),
            (0.8, [0.8, 1.6, 2.8]),
            (1.0, [1.0, 2.0, 4.0]),
        ];
        for (q, want) in cases {
            for (values, w) in [&two[..], &three[..], &uneven[..]].into_iter().zip(want) {
                let s = series(0, 10_000, values);
                let out = run(RangeFn::QuantileOverTime, &s, 60_000, 120_000, &[q]);
                assert_close(out.value.unwrap(), w);
                assert!(out.ann.is_empty());
            }
        }
    }

    #[test]
    fn quantile_over_time_out_of_range() {
        let s = series(0, 10_000, &[0., 1., 4.]);
        let cases = [
            (-1.0, f64::NEG_INFINITY, "-1"),
            (2.0, f64::INFINITY, "2"),
            (1.5, f64::INFINITY, "1.5"),
            (-0.25, f64::NEG_INFINITY, "-0.25"),
            (f64::NAN, f64::NAN, "NaN"),
            (f64::INFINITY, f64::INFINITY, "+Inf"),
            (1e-300 - 1.0, f64::NEG_INFINITY, "-1"),
        ];
        for (q, want, shown) in cases {
            let out = run(RangeFn::QuantileOverTime, &s, 60_000, 120_000, &[q]);
            assert_close(out.value.unwrap(), want);
            let warnings: Vec<String> = out.ann.warnings().map(|a| a.to_string()).collect();
            assert_eq!(
                warnings,
                [format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {shown}"
                )]
            );
            assert_eq!(out.ann.infos().count(), 0);
        }
    }

    #[test]
    fn quantile_sorts_nan_first() {
        // Prometheus sorts NaN below every number.
        let nan = f64::NAN;
        assert_eq!(quantile(1.0, &mut [nan, 3.0, 1.0]), 3.0);
        assert!(quantile(0.0, &mut [3.0, nan, 1.0]).is_nan());
        assert_eq!(quantile(0.5, &mut [nan, 3.0, 1.0]), 1.0);
        assert!(quantile(0.5, &mut []).is_nan());
        // Interpolating next to an infinity multiplies it by 0: NaN, as in
        // Prometheus.
        assert!(quantile(0.5, &mut [1.0, 2.0, f64::INFINITY]).is_nan());
        assert_eq!(quantile(0.25, &mut [1.0, 2.0, f64::INFINITY]), 1.5);
    }

    // --- double_exponential_smoothing ------------------------------------

    #[test]
    fn double_exponential_smoothing_follows_linear_trends() {
        // load 10s; 0+10x1000 ...; at 8000s over [1m] with sf=0.01, tf=0.1.
        for (slope, want) in [(10.0, 8000.0), (20.0, 16000.0), (-20.0, -16000.0)] {
            let v: Vec<f64> = (0..1001).map(|i| f64::from(i) * slope).collect();
            let s = series(0, 10_000, &v);
            assert_close(
                value(
                    RangeFn::DoubleExponentialSmoothing,
                    &s,
                    8_000_000,
                    60_000,
                    &[0.01, 0.1],
                ),
                want,
            );
        }
        let v: Vec<f64> = (0..1001).map(|i| 8000.0 - f64::from(i) * 10.0).collect();
        let s = series(0, 10_000, &v);
        assert_close(
            value(
                RangeFn::DoubleExponentialSmoothing,
                &s,
                8_000_000,
                60_000,
                &[0.01, 0.1],
            ),
            0.0,
        );
    }

    #[test]
    fn double_exponential_smoothing_by_hand() {
        // s1=0, b=10; i=1: s1 = 0.5*10 + 0.5*(0+10) = 10;
        // i=2: b = 0.5*(10-0) + 0.5*10 = 10, s1 = 0.5*0 + 0.5*(10+10) = 10.
        assert_eq!(
            over_with(
                RangeFn::DoubleExponentialSmoothing,
                &[0., 10., 0.],
                &[0.5, 0.5]
            ),
            Some(10.0)
        );
        // One sample or missing factors: no output.
        assert_eq!(
            over_with(RangeFn::DoubleExponentialSmoothing, &[1.], &[0.5, 0.5]),
            None
        );
        assert_eq!(
            over_with(RangeFn::DoubleExponentialSmoothing, &[1., 2.], &[0.5]),
            None
        );
        // A NaN factor passes Prometheus's check and poisons the result.
        let nan = over_with(
            RangeFn::DoubleExponentialSmoothing,
            &[1., 2.],
            &[f64::NAN, 0.5],
        );
        assert!(nan.is_some_and(f64::is_nan));
    }

    fn over_with(f: RangeFn, values: &[f64], scalars: &[f64]) -> Option<f64> {
        let s = series(1000, 1000, values);
        let n = 1000 * values.len() as i64;
        value(f, &s, n, n, scalars)
    }

    #[test]
    fn double_exponential_smoothing_rejects_bad_factors() {
        let s = series(1000, 1000, &[1.0]);
        let err = |scalars: &[f64]| {
            run(RangeFn::DoubleExponentialSmoothing, &s, 1000, 1000, scalars)
                .value
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[1.5, 0.5]),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.500000"
        );
        assert_eq!(
            err(&[0.0, 0.5]),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 0.000000"
        );
        assert_eq!(
            err(&[0.5, 1.0]),
            "invalid trend factor. Expected: 0 < tf < 1, got: 1.000000"
        );
        assert_eq!(
            err(&[0.5, f64::NEG_INFINITY]),
            "invalid trend factor. Expected: 0 < tf < 1, got: -Inf"
        );
        // The smoothing factor is checked first.
        assert_eq!(
            err(&[-2.0, 7.0]),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: -2.000000"
        );
        assert!(matches!(
            run(
                RangeFn::DoubleExponentialSmoothing,
                &s,
                1000,
                1000,
                &[2.0, 0.5]
            )
            .value,
            Err(RangeFnError::InvalidArgument(_))
        ));
    }

    // --- formatting helpers ----------------------------------------------

    #[test]
    fn go_g_formatting() {
        let cases = [
            (1.5, "1.5"),
            (-1.0, "-1"),
            (2.0, "2"),
            (0.1, "0.1"),
            (100.0, "100"),
            (123_456.0, "123456"),
            (1e6, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.000_123, "0.000123"),
            (0.00001, "1e-05"),
            (1e100, "1e+100"),
            (-2.5e-7, "-2.5e-07"),
            (5e-324, "5e-324"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1.0 / 3.0, "0.3333333333333333"),
        ];
        for (v, want) in cases {
            assert_eq!(go_format_g(v), want, "{v:e}");
        }
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("up"), "\"up\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("ü"), "\"ü\"");
    }
}
