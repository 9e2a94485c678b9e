//! Comparing query results and annotations with an eval's expectations
//! (FORMAT.md §3.2, §3.3, §5.1).

use std::collections::{HashMap, HashSet};

use regex::Regex;
use vigil_model::{is_stale, Labels};
use vigil_promql::{QueryResult, QueryValue, Sample, Series};

use crate::script::{EvalCmd, EvalKind, MsgMatch};
use crate::series_desc::SeqValue;

/// The harness's tolerance.
pub const EPSILON: f64 = 1e-6;

/// `almost.Equal` of the 3.x harness: stale markers equal only each other,
/// NaN equals NaN, otherwise a relative tolerance on `|a|+|b|`.
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if is_stale(a) || is_stale(b) {
        return is_stale(a) && is_stale(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Formats a float like Prometheus prints values (`stale` for the marker).
pub fn fmt_f(v: f64) -> String {
    if is_stale(v) {
        "stale".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn fmt_seq(vals: &[SeqValue]) -> String {
    vals.iter()
        .map(|v| match v {
            SeqValue::Omitted => "_".to_string(),
            SeqValue::Float(f) => fmt_f(*f),
            SeqValue::Histogram => "{{…}}".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fmt_points(s: &Series) -> String {
    s.points
        .iter()
        .map(|p| format!("{}@{}", fmt_f(p.v), p.t))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The expectations of `cmd`, one per line, for diffs.
pub fn render_expected(cmd: &EvalCmd) -> String {
    if let Some(f) = cmd.scalar {
        return format!("  scalar {}\n", fmt_f(f));
    }
    if let Some(s) = &cmd.string_result {
        return format!("  string {s:?}\n");
    }
    if cmd.series.is_empty() {
        return "  (empty)\n".into();
    }
    let mut out = String::new();
    for e in &cmd.series {
        out.push_str(&format!(
            "  {} {}\n",
            e.desc.labels,
            fmt_seq(&e.desc.values)
        ));
    }
    out
}

/// A query value, one series per line, for diffs.
pub fn render_value(v: &QueryValue) -> String {
    match v {
        QueryValue::Scalar { v, .. } => format!("  scalar {}\n", fmt_f(*v)),
        QueryValue::String { s, .. } => format!("  string {s:?}\n"),
        QueryValue::Vector(vec) if vec.is_empty() => "  (empty vector)\n".into(),
        QueryValue::Matrix(m) if m.is_empty() => "  (empty matrix)\n".into(),
        QueryValue::Vector(vec) => vec
            .iter()
            .map(|s| format!("  {} {}\n", s.labels, fmt_f(s.v)))
            .collect(),
        QueryValue::Matrix(m) => m
            .iter()
            .map(|s| format!("  {} {}\n", s.labels, fmt_points(s)))
            .collect(),
    }
}

/// The harness's `assertMatrixSorted` (`labels.Compare` order).
pub fn assert_matrix_sorted(m: &[Series]) -> Result<(), String> {
    for (i, w) in m.windows(2).enumerate() {
        if w[0].labels > w[1].labels {
            return Err(format!(
                "matrix results should always be sorted by labels, but matrix is not sorted: series at index {} with labels {} sorts before series at index {} with labels {}",
                i + 1,
                w[1].labels,
                i,
                w[0].labels
            ));
        }
    }
    Ok(())
}

/// Compares a result value with the expectations of `cmd`.
pub fn compare_result(cmd: &EvalCmd, val: &QueryValue) -> Result<(), String> {
    let expected: HashMap<&Labels, usize> = cmd
        .series
        .iter()
        .enumerate()
        .map(|(i, e)| (&e.desc.labels, i))
        .collect();
    match val {
        QueryValue::Scalar { v, .. } => {
            let Some(exp) = cmd.scalar else {
                return Err(format!(
                    "expected {} result, but got scalar {}",
                    if cmd.string_result.is_some() {
                        "string"
                    } else {
                        "vector or matrix"
                    },
                    fmt_f(*v)
                ));
            };
            if !almost_equal(exp, *v, EPSILON) {
                return Err(format!(
                    "expected scalar {} but got {}",
                    fmt_f(exp),
                    fmt_f(*v)
                ));
            }
            Ok(())
        }
        QueryValue::String { s, .. } => match &cmd.string_result {
            Some(e) if e == s => Ok(()),
            Some(e) => Err(format!("expected string {e:?} but got {s:?}")),
            None => Err(format!("unexpected string result {s:?}")),
        },
        QueryValue::Vector(vec) => {
            if cmd.scalar.is_some() {
                return Err(format!(
                    "expected scalar result, but got vector of {} samples",
                    vec.len()
                ));
            }
            if cmd.string_result.is_some() {
                return Err("expected string result, but got vector".into());
            }
            if cmd.range_result.is_some() {
                return Err("expected range vector (matrix) result, but got instant vector".into());
            }
            compare_vector(cmd, &expected, vec)
        }
        QueryValue::Matrix(m) => {
            if cmd.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if cmd.scalar.is_some() {
                return Err("expected scalar result, but got matrix".into());
            }
            if cmd.string_result.is_some() {
                return Err("expected string result, but got matrix".into());
            }
            assert_matrix_sorted(m)?;
            let (start, end, step) = match (cmd.kind, cmd.range_result) {
                (EvalKind::Range { start, end, step }, _) => (start, end, step),
                (EvalKind::Instant { .. }, Some(r)) => (r.start, r.end, r.step),
                (EvalKind::Instant { .. }, None) => {
                    if m.is_empty() && cmd.series.is_empty() {
                        return Ok(());
                    }
                    return Err(
                        "instant query returned a matrix but the eval has no `expect range vector`"
                            .into(),
                    );
                }
            };
            compare_matrix(cmd, &expected, m, start, end, step)
        }
    }
}

fn compare_vector(
    cmd: &EvalCmd,
    expected: &HashMap<&Labels, usize>,
    vec: &[Sample],
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for (pos, s) in vec.iter().enumerate() {
        let Some(&ei) = expected.get(&s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has value {}",
                s.labels,
                fmt_f(s.v)
            ));
        };
        let exp = &cmd.series[ei];
        if cmd.ordered && exp.pos != pos + 1 {
            return Err(format!(
                "expected metric {} with {} at position {} but was at {}",
                s.labels,
                fmt_seq(&exp.desc.values),
                exp.pos,
                pos + 1
            ));
        }
        match exp.desc.values.first() {
            Some(SeqValue::Float(f)) => {
                if !almost_equal(*f, s.v, EPSILON) {
                    return Err(format!(
                        "expected {} for {} but got {}",
                        fmt_f(*f),
                        s.labels,
                        fmt_f(s.v)
                    ));
                }
            }
            Some(SeqValue::Histogram) => {
                return Err(format!(
                    "expected histogram value for {} but got float {}",
                    s.labels,
                    fmt_f(s.v)
                ))
            }
            _ => return Err(format!("expected line for {} has no value", s.labels)),
        }
        seen.insert(&s.labels);
    }
    for e in &cmd.series {
        if !seen.contains(&e.desc.labels) {
            return Err(format!(
                "expected metric {} with {} not found",
                e.desc.labels,
                fmt_seq(&e.desc.values)
            ));
        }
    }
    Ok(())
}

fn compare_matrix(
    cmd: &EvalCmd,
    expected: &HashMap<&Labels, usize>,
    m: &[Series],
    start: i64,
    end: i64,
    step: i64,
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for s in m {
        let Some(&ei) = expected.get(&s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has {}",
                s.labels,
                fmt_points(s)
            ));
        };
        seen.insert(&s.labels);
        let exp = &cmd.series[ei];
        let mut floats: Vec<(i64, f64)> = Vec::new();
        let mut hists = 0;
        for (i, e) in exp.desc.values.iter().enumerate() {
            let ts = start + i as i64 * step;
            if ts > end {
                return Err(format!(
                    "expected {} points for {}, but query time range cannot return this many points",
                    exp.desc.values.len(),
                    s.labels
                ));
            }
            match e {
                SeqValue::Float(f) => floats.push((ts, *f)),
                SeqValue::Histogram => hists += 1,
                SeqValue::Omitted => {}
            }
        }
        if floats.len() != s.points.len() || hists != 0 {
            return Err(format!(
                "expected {} float points and {} histogram points for {}, but got {}",
                floats.len(),
                hists,
                s.labels,
                fmt_points(s)
            ));
        }
        for (i, ((et, ev), p)) in floats.iter().zip(&s.points).enumerate() {
            if *et != p.t {
                return Err(format!(
                    "expected float value at index {i} for {} to have timestamp {et}, but it had timestamp {} (result has {})",
                    s.labels,
                    p.t,
                    fmt_points(s)
                ));
            }
            if !almost_equal(*ev, p.v, EPSILON) {
                return Err(format!(
                    "expected float value at index {i} (t={et}) for {} to be {}, but got {} (result has {})",
                    s.labels,
                    fmt_f(*ev),
                    fmt_f(p.v),
                    fmt_points(s)
                ));
            }
        }
    }
    for e in &cmd.series {
        if !seen.contains(&e.desc.labels) {
            return Err(format!("expected metric {} not found", e.desc.labels));
        }
    }
    Ok(())
}

/// Drops a trailing ` (line:col)` position from an expected message: vigil
/// does not track positions.
pub fn strip_position(s: &str) -> &str {
    let t = s.trim_end();
    if let Some(open) = t.rfind(" (") {
        let inner = &t[open + 2..];
        if let Some(inner) = inner.strip_suffix(')') {
            if let Some((l, c)) = inner.split_once(':') {
                if !l.is_empty()
                    && !c.is_empty()
                    && l.bytes().all(|b| b.is_ascii_digit())
                    && c.bytes().all(|b| b.is_ascii_digit())
                {
                    return &t[..open];
                }
            }
        }
    }
    t
}

/// Drops a trailing escaped-parenthesis position pattern from a regex
/// source, such as ` \([0-9]+:[0-9]+\)` or ` \(1:21\)`.
pub fn strip_regex_position(src: &str) -> Option<&str> {
    let t = src.trim_end();
    let open = t.rfind("\\(")?;
    let tail = &t[open + 2..];
    let inner = tail.strip_suffix("\\)")?;
    if inner.contains(':') && !inner.contains('(') && !inner.contains(')') {
        Some(t[..open].trim_end())
    } else {
        None
    }
}

/// Whether an expected message matches `got` (see the module docs of the
/// runner for the position rules).
pub fn msg_matches(m: &MsgMatch, got: &str) -> bool {
    match m {
        MsgMatch::Any => true,
        MsgMatch::Exact(e) => e == got || strip_position(e) == got,
        MsgMatch::Regex(r, src) => {
            r.is_match(got)
                || strip_regex_position(src)
                    .and_then(|s| Regex::new(s).ok())
                    .is_some_and(|r| r.is_match(got))
        }
    }
}

fn describe(m: &MsgMatch) -> String {
    match m {
        MsgMatch::Any => "any".into(),
        MsgMatch::Exact(e) => format!("msg {e:?}"),
        MsgMatch::Regex(_, s) => format!("regex {s:?}"),
    }
}

fn check_kind(
    kind: &str,
    exp: Option<&Vec<MsgMatch>>,
    no: bool,
    got: &[String],
) -> Result<(), String> {
    if no && !got.is_empty() {
        return Err(format!("unexpected {kind} annotations: {got:?}"));
    }
    if let Some(exp) = exp {
        if got.is_empty() {
            return Err(format!("expected {kind} annotations but got none"));
        }
        for m in exp {
            if !got.iter().any(|g| msg_matches(m, g)) {
                return Err(format!(
                    "expected {kind} annotation matching {} but got {got:?}",
                    describe(m)
                ));
            }
        }
        for g in got {
            if !exp.iter().any(|m| msg_matches(m, g)) {
                return Err(format!(
                    "unexpected {kind} annotation {g:?} (matches no expect {kind} line)"
                ));
            }
        }
    }
    Ok(())
}

/// Checks the warn/info expectations against the result's annotations.
pub fn check_annotations(cmd: &EvalCmd, res: &QueryResult) -> Result<(), String> {
    let warns: Vec<String> = res.annotations.warnings().map(|a| a.to_string()).collect();
    let infos: Vec<String> = res.annotations.infos().map(|a| a.to_string()).collect();
    check_kind("warn", cmd.warn.as_ref(), cmd.no_warn, &warns)?;
    check_kind("info", cmd.info.as_ref(), cmd.no_info, &infos)
}

/// Checks a query error against the eval's expected failure message.
pub fn check_expected_failure(cmd: &EvalCmd, err: &str) -> Result<(), String> {
    match &cmd.fail_msg {
        None => Ok(()),
        Some(m) if msg_matches(m, err) => Ok(()),
        Some(m) => Err(format!("expected error {} but got: {err}", describe(m))),
    }
}
