//! Rule unit tests in promtool's format (`promtool test rules`), run by
//! `vigil test rules FILE...`: input series in the expanding notation,
//! alert expectations at evaluation times, and PromQL expectations over
//! what the rules recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use vigil_model::{Appendable, Appender, Labels, MatchOp, MemStorage, Value};
use vigil_promql::{Engine, EngineOptions};

use crate::file::Duration;
use crate::group::GroupEnv;
use crate::query::{EngineQuery, QueryFunc};
use crate::rule::Rule;
use crate::{AlertState, Group};

/// A unit test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Rule files under test, relative to the test file.
    pub rule_files: Vec<String>,
    /// How often rules are evaluated (1m).
    #[serde(default)]
    pub evaluation_interval: Option<Duration>,
    /// Accepted for compatibility; groups are evaluated in file order.
    #[serde(default)]
    pub group_eval_order: Vec<String>,
    /// The tests.
    #[serde(default)]
    pub tests: Vec<TestGroup>,
}

/// One test: its series and expectations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    /// A name shown in failures.
    #[serde(default)]
    pub name: Option<String>,
    /// The series' sample interval (the evaluation interval by default).
    #[serde(default)]
    pub interval: Option<Duration>,
    /// Input series.
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    /// Expected firing alerts.
    #[serde(default)]
    pub alert_rule_test: Vec<AlertTest>,
    /// Expected query results.
    #[serde(default)]
    pub promql_expr_test: Vec<ExprTest>,
    /// External labels for templates and alerts.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// External URL for templates.
    #[serde(default)]
    pub external_url: Option<String>,
}

/// An input series: `series: 'up{job="x"}'`, `values: '0 1+1x5 _ stale'`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    /// The series, as a selector with `=` matchers.
    pub series: String,
    /// The values.
    pub values: String,
}

/// Expected alerts of one name at one time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTest {
    /// When.
    pub eval_time: Duration,
    /// Which alert.
    pub alertname: String,
    /// The firing alerts expected (none: nothing firing).
    #[serde(default)]
    pub exp_alerts: Vec<ExpAlert>,
}

/// One expected alert.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    /// Its labels, without `alertname`.
    #[serde(default)]
    pub exp_labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, String>,
}

/// An expected query result.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprTest {
    /// The expression.
    pub expr: String,
    /// When.
    pub eval_time: Duration,
    /// The samples expected.
    #[serde(default)]
    pub exp_samples: Vec<ExpSample>,
}

/// One expected sample.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    /// Its labels, as a series selector.
    #[serde(default)]
    pub labels: String,
    /// Its value.
    pub value: f64,
}

/// Expands promtool's value notation: `1 2 3`, `1+2x3` (1 3 5 7),
/// `5-1x2` (5 4 3), `7x2` (7 7 7), `_` (missing), `_x3` (three missing),
/// `stale`, `NaN`,
/// `Inf`, `-Inf`. `None` entries are missing samples.
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        let (head, count) = match tok.rsplit_once('x') {
            Some((h, n))
                if !h.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() =>
            {
                (
                    h,
                    Some(n.parse::<usize>().map_err(|e| format!("{tok:?}: {e}"))?),
                )
            }
            _ => (tok, None),
        };
        if head == "_" {
            // `_xN` is N blanks (not N+1, unlike numbers).
            out.extend(std::iter::repeat_n(None, count.unwrap_or(1)));
            continue;
        }
        if head == "stale" {
            if count.is_some() {
                return Err(format!("{tok:?}: stale cannot repeat"));
            }
            out.push(Some(vigil_model::stale_nan()));
            continue;
        }
        // `a+b` or `a-b` (the sign of `a` itself may be a leading `-`).
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| {
                (c == '+' || c == '-') && !matches!(head.as_bytes()[i - 1], b'e' | b'E')
            })
            .map(|(i, _)| i);
        let (start, step) = match split {
            Some(i) => {
                let a = parse_num(&head[..i]).ok_or_else(|| format!("bad value {tok:?}"))?;
                let b = parse_num(&head[i + 1..]).ok_or_else(|| format!("bad value {tok:?}"))?;
                (a, if &head[i..=i] == "-" { -b } else { b })
            }
            None => (
                parse_num(head).ok_or_else(|| format!("bad value {tok:?}"))?,
                0.0,
            ),
        };
        match count {
            None if split.is_some() => return Err(format!("{tok:?}: a step needs a count (x<n>)")),
            None => out.push(Some(start)),
            Some(n) => {
                for k in 0..=n {
                    out.push(Some(start + step * k as f64));
                }
            }
        }
    }
    Ok(out)
}

fn parse_num(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Labels from a selector with only `=` matchers (`up{job="x"}`).
fn selector_labels(s: &str) -> Result<Labels, String> {
    if s.trim().is_empty() {
        return Ok(Labels::empty());
    }
    let ms = vigil_promql::parse_series_selector(s).map_err(|e| format!("{s:?}: {e}"))?;
    let mut pairs = Vec::new();
    for m in ms {
        if m.op() != MatchOp::Equal {
            return Err(format!("{s:?}: only = matchers describe a series"));
        }
        pairs.push((m.name().to_string(), m.value().to_string()));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Runs a unit test file. `Ok` with the failures found (empty: passed);
/// `Err` when the file itself or a rule file is invalid.
pub fn run_test_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tf: TestFile =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let files = crate::file::expand_globs(&tf.rule_files, base)?;
    let eval_interval = tf.evaluation_interval.map_or(60_000, |d| d.0).max(1);
    let groups = crate::manager::load_groups(&files, eval_interval).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let mut failures = Vec::new();
    for (i, tg) in tf.tests.iter().enumerate() {
        let name = tg.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
        match run_group(tg, groups.clone(), eval_interval, &files) {
            Ok(f) => failures.extend(f.into_iter().map(|f| format!("test {name}: {f}"))),
            Err(e) => failures.push(format!("test {name}: {e}")),
        }
    }
    Ok(failures)
}

type Firing = Vec<(Labels, BTreeMap<String, String>)>;

fn run_group(
    tg: &TestGroup,
    mut groups: Vec<Group>,
    eval_interval: i64,
    _files: &[PathBuf],
) -> Result<Vec<String>, String> {
    let store = MemStorage::new();
    let interval = tg.interval.map_or(eval_interval, |d| d.0).max(1);
    {
        let mut app = store.appender();
        for s in &tg.input_series {
            let labels = selector_labels(&s.series)?;
            for (k, v) in expand_values(&s.values)?.into_iter().enumerate() {
                if let Some(v) = v {
                    app.append(None, &labels, k as i64 * interval, Value::Float(v))
                        .map_err(|e| format!("{}: {e}", s.series))?;
                }
            }
        }
        app.commit().map_err(|e| e.to_string())?;
    }
    let q = EngineQuery::new(Arc::new(Engine::new(EngineOptions::default())), &store);
    let ext = Labels::from_pairs(tg.external_labels.iter());
    let url = tg.external_url.clone().unwrap_or_default();
    let max_t = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time.0)
        .chain(tg.promql_expr_test.iter().map(|e| e.eval_time.0))
        .max()
        .unwrap_or(0);
    let sink = |_: Vec<crate::OutgoingAlert>| {};
    let env = GroupEnv {
        query: &q,
        storage: &store,
        sink: &sink,
        external_labels: &ext,
        // promtool: external labels reach templates, not stored series.
        stored_labels: &Labels::empty(),
        external_url: &url,
        resend_delay: 60_000,
        outage_tolerance: 3_600_000,
    };
    // Alerts firing after each evaluation, by alert name.
    let mut alert_tests: Vec<&AlertTest> = tg.alert_rule_test.iter().collect();
    alert_tests.sort_by_key(|a| a.eval_time.0);
    let mut failures = Vec::new();
    let mut next_alert = 0;
    let mut ts = 0;
    while ts <= max_t {
        for g in &mut groups {
            g.eval(ts, &env);
        }
        // An expectation at `eval_time` is checked against the evaluation
        // at the last `ts <= eval_time`, as promtool does.
        while next_alert < alert_tests.len()
            && alert_tests[next_alert].eval_time.0 < ts + eval_interval
        {
            let at = alert_tests[next_alert];
            let mut got: Firing = Vec::new();
            for g in &groups {
                for r in &g.rules {
                    if let Rule::Alerting(a) = r {
                        if a.name == at.alertname {
                            got.extend(
                                a.active
                                    .values()
                                    .filter(|x| x.state == AlertState::Firing)
                                    .map(|x| (x.labels.clone(), x.annotations.clone())),
                            );
                        }
                    }
                }
            }
            let mut exp: Firing = at
                .exp_alerts
                .iter()
                .map(|e| {
                    let mut l = e.exp_labels.clone();
                    l.insert("alertname".into(), at.alertname.clone());
                    (Labels::from_pairs(l), e.exp_annotations.clone())
                })
                .collect();
            got.sort();
            exp.sort();
            if got != exp {
                failures.push(format!(
                    "alertname: {}, time: {},\n        exp:{},\n        got:{}",
                    at.alertname,
                    vigil_model::format_duration(at.eval_time.0),
                    show(&exp),
                    show(&got)
                ));
            }
            next_alert += 1;
        }
        ts += eval_interval;
    }
    for et in &tg.promql_expr_test {
        let expr = vigil_promql::parse(&et.expr).map_err(|e| format!("expr {:?}: {e}", et.expr))?;
        let got = match q.query(&expr, et.eval_time.0) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "expr: {:?}, time: {}, err: {e}",
                    et.expr,
                    vigil_model::format_duration(et.eval_time.0)
                ));
                continue;
            }
        };
        let mut got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.labels, s.v)).collect();
        let mut exp = Vec::new();
        for s in &et.exp_samples {
            exp.push((selector_labels(&s.labels)?, s.value));
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && (g.1 == e.1 || (g.1.is_nan() && e.1.is_nan())));
        if !same {
            failures.push(format!(
                "expr: {:?}, time: {},\n        exp: {},\n        got: {}",
                et.expr,
                vigil_model::format_duration(et.eval_time.0),
                show_samples(&exp),
                show_samples(&got)
            ));
        }
    }
    Ok(failures)
}

fn show(a: &Firing) -> String {
    let parts: Vec<String> = a
        .iter()
        .map(|(l, ann)| {
            let ann: Vec<String> = ann.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!(
                "\n            labels: {l}, annotations: {{{}}}",
                ann.join(", ")
            )
        })
        .collect();
    if parts.is_empty() {
        "[]".into()
    } else {
        parts.concat()
    }
}

fn show_samples(s: &[(Labels, f64)]) -> String {
    let parts: Vec<String> = s
        .iter()
        .map(|(l, v)| format!("{{Labels:{l} Value:{v}}}"))
        .collect();
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expand_as_promtool() {
        let v = |s: &str| expand_values(s).unwrap();
        assert_eq!(v("1 2 3"), [Some(1.0), Some(2.0), Some(3.0)]);
        assert_eq!(v("1+2x3"), [Some(1.0), Some(3.0), Some(5.0), Some(7.0)]);
        assert_eq!(v("5-1x2"), [Some(5.0), Some(4.0), Some(3.0)]);
        assert_eq!(v("-2+1x1"), [Some(-2.0), Some(-1.0)]);
        assert_eq!(v("7x2"), [Some(7.0), Some(7.0), Some(7.0)]);
        assert_eq!(v("_ _x3 1"), [None, None, None, None, Some(1.0)]);
        assert_eq!(v("1e3"), [Some(1000.0)]);
        let s = v("stale");
        assert!(vigil_model::is_stale(s[0].unwrap()));
        assert!(expand_values("1+2").is_err());
        assert!(expand_values("abc").is_err());
    }
}
