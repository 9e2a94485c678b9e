//! Conformance runner for the Prometheus PromQL test-script language
//! (`*.test`), as specified in `shared/conformance/FORMAT.md`.
//!
//! It runs the shared Prometheus scripts (`$VIGIL_PROMQL_TESTDATA`, default
//! `<crate>/../../../shared/conformance/promqltest`, read in place) and our
//! own scripts in `crates/promql/testdata/*.test`.
//!
//! Every eval is classified as PASS, FAIL or UNSUPPORTED:
//! * UNSUPPORTED (counted apart, never passing):
//!   - the expression does not parse with promql-parser 0.11.1 itself (when
//!     only `vigil_promql::parse` rejects it, that is the engine's answer and
//!     is treated as a query error);
//!   - the eval needs native histograms: its expected lines contain `{{`, or
//!     one of its selectors (vector, matrix, inside subqueries too) matches a
//!     series of the current storage that was loaded with histogram values
//!     (`{{…}}`), or an NHCB series a `load_with_nhcb` would synthesise
//!     (`X_bucket`/`X_count`/`X_sum` → `X` without `le`). Histogram values
//!     are not loaded; the float samples of such series are;
//!   - every eval of `start_timestamps.test` and `type_and_unit.test`.
//!
//!   The histogram rule is per eval and errs on the side of "unsupported":
//!   an `info()` call counts as reading any histogram series named `*_info`.
//!   (The tag table `tools/evals-tagged-latest.tsv` is not used: it is tied
//!   to one copy of the suite, does not cover our scripts, and misses evals
//!   such as `max({job="api-server"})` that select histogram series.)
//! * FAIL: anything else that does not meet the expectations, including a
//!   malformed eval body, an engine panic (caught), and every eval after a
//!   failed `load` (which aborts the rest of the file, as in Prometheus). A
//!   file-level error (unknown command) counts as one failure at its line.
//! * FAIL-KNOWN: a failing eval listed in `testdata/known-failures.txt`.
//!
//! Annotations and error messages: vigil does not track `(line:col)`
//! positions. An expected `msg:` matches when it equals our rendered text
//! (`PromQL warning: …`) as is, or after removing a trailing ` (L:C)`. A
//! `regex:` matches when it matches our text as is, or, with a trailing
//! escaped position pattern such as ` \([0-9]+:[0-9]+\)` removed from the
//! pattern, matches our text.
//!
//! The `@` re-check (FORMAT.md §5.3) sets `@ <t>` on every selector and
//! subquery that has no `@ <time>`; like the Go harness (whose `Timestamp`
//! field is nil for them) it also replaces `@ start()`/`@ end()`, and never
//! descends into subqueries.
//!
//! Environment:
//! * `VIGIL_PROMQL_TESTDATA`: the shared script directory.
//! * `VIGIL_PROMQL_FILTER=<substring>`: only files whose name contains it.
//! * `VIGIL_PROMQL_VERBOSE=1`: print every failing eval with its diff, and
//!   the reason of every unsupported eval.
//! * `VIGIL_PROMQL_WRITE_KNOWN_FAILURES=1`: rewrite the known-failures list
//!   with the current failures.
//!
//! The process exits non-zero when the self-tests fail or any eval fails
//! that is not in the known-failures list.

#[path = "conformance/compare.rs"]
mod compare;
#[path = "conformance/script.rs"]
mod script;
#[path = "conformance/selftest.rs"]
mod selftest;
#[path = "conformance/series_desc.rs"]
mod series_desc;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use promql_parser::parser::{AtModifier, Expr, VectorSelector};
use vigil_model::{Appendable, Appender, Labels, MemStorage, Queryable, Value as ModelValue};
use vigil_promql::{Engine, EngineOptions, QueryResult, QueryValue, Sample};

use compare::{
    assert_matrix_sorted, check_annotations, check_expected_failure, compare_result,
    render_expected, render_value,
};
use script::{Command, EvalCmd, EvalKind, LoadCmd};
use series_desc::{parse_series_desc, SeqValue};

/// Files whose evals need features outside the parser's grammar.
const UNSUPPORTED_FILES: [(&str, &str); 2] = [
    ("start_timestamps.test", "needs start timestamps (@st)"),
    ("type_and_unit.test", "needs __type__/__unit__ labels"),
];

/// Functions whose result can vary with evaluation time even when their
/// arguments are step invariant (Prometheus `AtModifierUnsafeFunctions`).
const AT_UNSAFE_FUNCTIONS: [&str; 15] = [
    "time",
    "timestamp",
    "predict_linear",
    "hour",
    "minute",
    "month",
    "year",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "start",
    "end",
    "range",
    "step",
];

#[derive(Debug, Clone)]
enum Status {
    Pass,
    Fail(String),
    /// A category and the details.
    Unsupported(&'static str, String),
}

#[derive(Debug)]
struct EvalReport {
    line: usize,
    expr: String,
    status: Status,
}

#[derive(Debug)]
struct FileReport {
    /// Display name, also the key prefix in the known-failures file.
    name: String,
    evals: Vec<EvalReport>,
    /// A file-level error (line, message): unreadable file, unknown command.
    file_error: Option<(usize, String)>,
}

#[derive(Debug)]
struct Config {
    shared_dir: PathBuf,
    own_dir: PathBuf,
    known_path: PathBuf,
    verbose: bool,
    filter: Option<String>,
    write_known: bool,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn config() -> Config {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared_dir = std::env::var_os("VIGIL_PROMQL_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../shared/conformance/promqltest"));
    Config {
        shared_dir,
        own_dir: manifest.join("testdata"),
        known_path: manifest.join("testdata/known-failures.txt"),
        verbose: env_flag("VIGIL_PROMQL_VERBOSE"),
        filter: std::env::var("VIGIL_PROMQL_FILTER")
            .ok()
            .filter(|s| !s.is_empty()),
        write_known: env_flag("VIGIL_PROMQL_WRITE_KNOWN_FAILURES"),
    }
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test") && p.is_file())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Panic capture.

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        PANIC_LOCATION.with(|p| *p.borrow_mut() = Some(loc));
    }));
}

/// Runs `f`, turning a panic into an error message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-string panic payload)".to_string()
        };
        let loc = PANIC_LOCATION
            .with(|p| p.borrow_mut().take())
            .unwrap_or_default();
        format!("panicked at {loc}: {msg}")
    })
}

// ---------------------------------------------------------------------------
// Loading.

/// Storage state of a file: the data, the label sets that had histogram
/// values (not loaded), and a sticky load error.
struct State {
    storage: MemStorage,
    hist_series: Vec<Labels>,
    aborted: Option<String>,
}

/// The NHCB series `load_with_nhcb` derives from a classic-histogram series.
fn nhcb_labels(l: &Labels) -> Option<Labels> {
    let name = l.get("__name__")?;
    let base = ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|s| name.strip_suffix(s))?;
    let mut b = l.builder();
    b.set("__name__", base);
    b.del("le");
    Some(b.build())
}

fn load(state: &mut State, cmd: &LoadCmd) -> Result<(), String> {
    let interval = cmd
        .interval
        .clone()
        .map_err(|e| format!("line {}: invalid interval: {e}", cmd.line))?;
    let mut order: Vec<Labels> = Vec::new();
    let mut defs: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
    for (ln, text) in &cmd.body {
        let d = parse_series_desc(text).map_err(|e| format!("line {ln}: {e}"))?;
        let mut samples = Vec::new();
        let mut has_hist = false;
        for (k, v) in d.values.iter().enumerate() {
            match v {
                SeqValue::Omitted => {}
                SeqValue::Float(f) => samples.push((k as i64 * interval, *f)),
                SeqValue::Histogram => has_hist = true,
            }
        }
        if has_hist {
            state.hist_series.push(d.labels.clone());
        }
        if cmd.with_nhcb {
            if let Some(l) = nhcb_labels(&d.labels) {
                state.hist_series.push(l);
            }
        }
        if defs.insert(d.labels.clone(), samples).is_none() {
            order.push(d.labels);
        }
    }
    let mut app = state.storage.appender();
    for l in &order {
        for &(t, v) in &defs[l] {
            app.append(None, l, t, ModelValue::Float(v))
                .map_err(|e| format!("line {}: appending {l} at {t}: {e}", cmd.line))?;
        }
    }
    app.commit()
        .map_err(|e| format!("line {}: commit: {e}", cmd.line))
}

// ---------------------------------------------------------------------------
// AST helpers.

fn at_of(t: i64) -> AtModifier {
    let d = Duration::from_millis(t.unsigned_abs());
    AtModifier::At(if t >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    })
}

fn set_at(slot: &mut Option<AtModifier>, at: &AtModifier) {
    // As in the harness, `@ start()`/`@ end()` count as "no timestamp" and
    // are replaced (at the original time they equal it).
    if !matches!(slot, Some(AtModifier::At(_))) {
        *slot = Some(at.clone());
    }
}

/// The harness's `@` rewrite (FORMAT.md §5.3.1). Subqueries always end up
/// with an `@`, so the walk never descends into one (nor checks calls in it,
/// as the harness does not).
fn rewrite_at(e: &mut Expr, at: &AtModifier, unsafe_fn: &mut bool) {
    match e {
        Expr::Aggregate(a) => {
            rewrite_at(&mut a.expr, at, unsafe_fn);
            if let Some(p) = &mut a.param {
                rewrite_at(p, at, unsafe_fn);
            }
        }
        Expr::Unary(u) => rewrite_at(&mut u.expr, at, unsafe_fn),
        Expr::Binary(b) => {
            rewrite_at(&mut b.lhs, at, unsafe_fn);
            rewrite_at(&mut b.rhs, at, unsafe_fn);
        }
        Expr::Paren(p) => rewrite_at(&mut p.expr, at, unsafe_fn),
        Expr::Subquery(s) => set_at(&mut s.at, at),
        Expr::VectorSelector(vs) => set_at(&mut vs.at, at),
        Expr::MatrixSelector(ms) => set_at(&mut ms.vs.at, at),
        Expr::Call(c) => {
            if AT_UNSAFE_FUNCTIONS.contains(&c.func.name) {
                *unsafe_fn = true;
            }
            for a in &mut c.args.args {
                rewrite_at(a, at, unsafe_fn);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The `@`-rewritten expression, or `None` when the expression calls an
/// `@`-unsafe function.
fn at_variant(expr: &Expr, t: i64) -> Option<Expr> {
    let mut e = expr.clone();
    let mut unsafe_fn = false;
    rewrite_at(&mut e, &at_of(t), &mut unsafe_fn);
    (!unsafe_fn).then_some(e)
}

fn at_times(t: i64) -> Vec<i64> {
    if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t, 0, t / 5, t, 10 * t]
    }
}

/// Calls `f` on every selector of `e`, subqueries included. `info()` calls
/// are reported too (they read `*_info` series implicitly).
fn for_each_selector(e: &Expr, f: &mut dyn FnMut(Option<&VectorSelector>)) {
    match e {
        Expr::Aggregate(a) => {
            for_each_selector(&a.expr, f);
            if let Some(p) = &a.param {
                for_each_selector(p, f);
            }
        }
        Expr::Unary(u) => for_each_selector(&u.expr, f),
        Expr::Binary(b) => {
            for_each_selector(&b.lhs, f);
            for_each_selector(&b.rhs, f);
        }
        Expr::Paren(p) => for_each_selector(&p.expr, f),
        Expr::Subquery(s) => for_each_selector(&s.expr, f),
        Expr::VectorSelector(vs) => f(Some(vs)),
        Expr::MatrixSelector(ms) => f(Some(&ms.vs)),
        Expr::Call(c) => {
            if c.func.name == "info" {
                f(None);
            }
            for a in &c.args.args {
                for_each_selector(a, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector_matches(vs: &VectorSelector, l: &Labels) -> bool {
    let get = |n: &str| l.get(n).unwrap_or("");
    if let Some(name) = &vs.name {
        if get("__name__") != name {
            return false;
        }
    }
    let all = |ms: &[promql_parser::label::Matcher]| ms.iter().all(|m| m.is_match(get(&m.name)));
    let m = &vs.matchers;
    all(&m.matchers) || m.or_matchers.iter().any(|g| all(g))
}

/// The first histogram series that `e` may read, if any.
fn selects_histogram(e: &Expr, hist: &[Labels]) -> Option<Labels> {
    if hist.is_empty() {
        return None;
    }
    let mut found = None;
    for_each_selector(e, &mut |vs| {
        if found.is_some() {
            return;
        }
        found = hist
            .iter()
            .find(|l| match vs {
                Some(vs) => selector_matches(vs, l),
                None => l.get("__name__").is_some_and(|n| n.ends_with("_info")),
            })
            .cloned();
    });
    found
}

// ---------------------------------------------------------------------------
// Evaluation.

struct Ctx<'a> {
    engine: &'a Engine,
    storage: &'a MemStorage,
}

/// A comparison failure with the expected and actual results appended.
fn diff(cmd: &EvalCmd, err: String, got: &QueryValue) -> String {
    format!(
        "{err}\n    expected:\n{}    got:\n{}",
        indent(&render_expected(cmd)),
        indent(&render_value(got))
    )
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

fn run_instant(
    ctx: &Ctx<'_>,
    q: &dyn Queryable,
    e: &Expr,
    t: i64,
) -> Result<Result<QueryResult, String>, String> {
    guarded(|| {
        ctx.engine
            .instant_query_expr(q, e, t)
            .map_err(|e| e.to_string())
    })
}

fn run_range(
    ctx: &Ctx<'_>,
    q: &dyn Queryable,
    e: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Result<QueryResult, String>, String> {
    guarded(|| {
        ctx.engine
            .range_query_expr(q, e, start, end, step)
            .map_err(|e| e.to_string())
    })
}

/// One instant query of an instant eval (the original or an `@` variant),
/// with the range-mode re-check.
fn check_instant_case(
    ctx: &Ctx<'_>,
    cmd: &EvalCmd,
    e: &Expr,
    t: i64,
    what: &str,
) -> Result<(), String> {
    let q: &dyn Queryable = ctx.storage;
    let res = match run_instant(ctx, q, e, t).map_err(|p| format!("engine {p}{what}"))? {
        Err(err) if cmd.fail => {
            return check_expected_failure(cmd, &err).map_err(|m| format!("{m}{what}"))
        }
        Err(err) => return Err(format!("error evaluating query{what}: {err}")),
        Ok(_) if cmd.fail => {
            return Err(format!(
                "expected error evaluating query{what} but got none"
            ))
        }
        Ok(r) => r,
    };
    check_annotations(cmd, &res).map_err(|m| format!("{m}{what}"))?;
    compare_result(cmd, &res.value).map_err(|m| diff(cmd, format!("{m}{what}"), &res.value))?;

    let skip_range_mode = cmd.ordered
        || cmd.range_result.is_some()
        || cmd.string_result.is_some()
        || ["start()", "end()", "range()", "step()"]
            .iter()
            .any(|f| cmd.expr.contains(f));
    if skip_range_mode {
        return Ok(());
    }
    let what = format!("{what} in range mode [t-1m, t+1m] step 1m");
    let rr = match run_range(ctx, q, e, t - 60_000, t + 60_000, 60_000)
        .map_err(|p| format!("engine {p}{what}"))?
    {
        Ok(r) => r,
        Err(err) => return Err(format!("error evaluating query{what}: {err}")),
    };
    let QueryValue::Matrix(m) = &rr.value else {
        return Err(format!(
            "range query returned a {} instead of a matrix{what}",
            rr.value.type_name()
        ));
    };
    assert_matrix_sorted(m).map_err(|m| format!("{m}{what}"))?;
    let vec: Vec<Sample> = m
        .iter()
        .filter_map(|s| {
            s.points.iter().find(|p| p.t == t).map(|p| Sample {
                labels: s.labels.clone(),
                t: p.t,
                v: p.v,
            })
        })
        .collect();
    let val = if matches!(res.value, QueryValue::Scalar { .. }) {
        let Some(first) = vec.first() else {
            return Err(format!("no point at t={t} for a scalar expression{what}"));
        };
        QueryValue::Scalar { t, v: first.v }
    } else {
        QueryValue::Vector(vec)
    };
    compare_result(cmd, &val).map_err(|m| diff(cmd, format!("{m}{what}"), &val))
}

fn check_eval(ctx: &Ctx<'_>, cmd: &EvalCmd, expr: Result<&Expr, &str>) -> Result<(), String> {
    let expr = match expr {
        Ok(e) => e,
        // vigil_promql::parse rejected an expression promql-parser reads:
        // that is the engine's answer, a query error.
        Err(err) if cmd.fail => return check_expected_failure(cmd, err),
        Err(err) => return Err(format!("error parsing query (vigil_promql::parse): {err}")),
    };
    match cmd.kind {
        EvalKind::Instant { at } => {
            let t = cmd.range_result.map_or(at, |r| r.end);
            check_instant_case(ctx, cmd, expr, t, "")?;
            if let Some(v) = at_variant(expr, t) {
                for et in at_times(t) {
                    let what = format!(" (@-rewritten query at t={et}ms)");
                    check_instant_case(ctx, cmd, &v, et, &what)?;
                }
            }
            Ok(())
        }
        EvalKind::Range { start, end, step } => {
            let q: &dyn Queryable = ctx.storage;
            let res = match run_range(ctx, q, expr, start, end, step)
                .map_err(|p| format!("engine {p}"))?
            {
                Err(err) if cmd.fail => return check_expected_failure(cmd, &err),
                Err(err) => return Err(format!("error evaluating query: {err}")),
                Ok(_) if cmd.fail => {
                    return Err("expected error evaluating query but got none".into())
                }
                Ok(r) => r,
            };
            check_annotations(cmd, &res)?;
            compare_result(cmd, &res.value).map_err(|m| diff(cmd, m, &res.value))
        }
    }
}

fn classify_eval(engine: &Engine, state: &State, cmd: &EvalCmd) -> Status {
    let parsed = vigil_promql::parse(&cmd.expr).map_err(|e| e.to_string());
    let raw = match &parsed {
        Ok(_) => None,
        Err(err) => match promql_parser::parser::parse(&cmd.expr) {
            Err(_) => return Status::Unsupported("promql-parser cannot parse", err.clone()),
            Ok(e) => Some(e),
        },
    };
    if cmd.body_text.contains("{{") {
        return Status::Unsupported("expects native-histogram values", String::new());
    }
    if let Some(be) = &cmd.body_error {
        return Status::Fail(format!("script error at line {}: {}", be.line, be.msg));
    }
    if let Some(a) = &state.aborted {
        return Status::Fail(format!("file aborted by an earlier load error: {a}"));
    }
    let ast = parsed.as_ref().ok().or(raw.as_ref());
    if let Some(l) = ast.and_then(|e| selects_histogram(e, &state.hist_series)) {
        return Status::Unsupported("reads native-histogram series", l.to_string());
    }
    let ctx = Ctx {
        engine,
        storage: &state.storage,
    };
    let expr = parsed.as_ref().map_err(String::as_str);
    match check_eval(&ctx, cmd, expr) {
        Ok(()) => Status::Pass,
        Err(e) => Status::Fail(e),
    }
}

fn run_file(engine: &Engine, name: &str, path: &Path) -> FileReport {
    let mut report = FileReport {
        name: name.to_string(),
        evals: Vec::new(),
        file_error: None,
    };
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            report.file_error = Some((0, format!("cannot read {}: {e}", path.display())));
            return report;
        }
    };
    let cmds = match script::parse_script(&text) {
        Ok(c) => c,
        Err(e) => {
            report.file_error = Some((e.line, e.msg));
            return report;
        }
    };
    let base = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
    let whole_file = UNSUPPORTED_FILES
        .iter()
        .find(|(f, _)| *f == base)
        .map(|(_, why)| *why);
    let mut state = State {
        storage: MemStorage::new(),
        hist_series: Vec::new(),
        aborted: None,
    };
    for cmd in &cmds {
        match cmd {
            Command::Clear => {
                state.storage = MemStorage::new();
                state.hist_series.clear();
            }
            Command::Load(l) => {
                if whole_file.is_none() && state.aborted.is_none() {
                    if let Err(e) = load(&mut state, l) {
                        state.aborted = Some(e);
                    }
                }
            }
            Command::Eval(ev) => {
                let status = match whole_file {
                    Some(why) => Status::Unsupported(why, String::new()),
                    None => guarded(|| classify_eval(engine, &state, ev))
                        .unwrap_or_else(|p| Status::Fail(format!("runner {p}"))),
                };
                report.evals.push(EvalReport {
                    line: ev.line,
                    expr: ev.expr.clone(),
                    status,
                });
            }
        }
    }
    report
}

// ---------------------------------------------------------------------------
// Known failures.

/// Reads `file:line` keys (text after `#` is a comment).
fn read_known(path: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeSet::new();
    };
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn key_file(key: &str) -> &str {
    key.rsplit_once(':').map_or(key, |(f, _)| f)
}

fn first_line(s: &str, max: usize) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.chars().count() > max {
        let mut t: String = l.chars().take(max).collect();
        t.push('…');
        t
    } else {
        l.to_string()
    }
}

fn write_known(
    path: &Path,
    failures: &[(String, String)],
    old: &BTreeSet<String>,
    ran: &BTreeSet<String>,
) -> std::io::Result<()> {
    let mut out = String::from(
        "# Evals of the PromQL conformance suite that are expected to fail for now.\n\
         # One `file:line` per line (the line of the eval command); text after `#` is a\n\
         # comment. Shared Prometheus scripts are named by file name, our own scripts\n\
         # (crates/promql/testdata) as `vigil/<file>`. Regenerate with\n\
         # VIGIL_PROMQL_WRITE_KNOWN_FAILURES=1 cargo test -p vigil-promql --test conformance\n",
    );
    // Keep entries of files that did not run (filter, missing suite).
    let mut entries: BTreeMap<(String, usize), String> = BTreeMap::new();
    let split = |k: &str| -> (String, usize) {
        let (f, l) = k.rsplit_once(':').unwrap_or((k, "0"));
        (f.to_string(), l.parse().unwrap_or(0))
    };
    for k in old {
        if !ran.contains(key_file(k)) {
            entries.insert(split(k), String::new());
        }
    }
    for (k, why) in failures {
        entries.insert(split(k), why.clone());
    }
    for ((f, l), why) in entries {
        if why.is_empty() {
            let _ = writeln!(out, "{f}:{l}");
        } else {
            let _ = writeln!(out, "{f}:{l}  # {}", why.replace('#', "♯"));
        }
    }
    std::fs::write(path, out)
}

// ---------------------------------------------------------------------------

fn main() {
    if let Err(e) = selftest::run() {
        eprintln!("conformance runner self-test FAILED: {e}");
        std::process::exit(1);
    }
    install_panic_hook();
    let cfg = config();
    let engine = Engine::new(EngineOptions {
        lookback_delta: 300_000,
        max_samples: 10_000,
        enable_delayed_name_removal: true,
        enable_experimental_functions: true,
        no_step_subquery_interval: 60_000,
        ..EngineOptions::default()
    });

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if cfg.shared_dir.is_dir() {
        for p in test_files(&cfg.shared_dir) {
            let n = p
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
                .to_string();
            files.push((n, p));
        }
    } else {
        println!(
            "NOTE: external PromQL suite not found at {} (set VIGIL_PROMQL_TESTDATA); \
             SKIPPED, running only our own scripts",
            cfg.shared_dir.display()
        );
    }
    for p in test_files(&cfg.own_dir) {
        let n = p.file_name().and_then(|s| s.to_str()).unwrap_or("?");
        files.push((format!("vigil/{n}"), p));
    }
    if let Some(f) = &cfg.filter {
        files.retain(|(n, _)| n.contains(f.as_str()));
    }

    let known = read_known(&cfg.known_path);
    let mut ran: BTreeSet<String> = BTreeSet::new();
    let mut seen_keys: BTreeSet<String> = BTreeSet::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut unexpected: Vec<String> = Vec::new();
    let mut fixed: Vec<String> = Vec::new();
    let mut unsupported_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut n_pass, mut n_fail_new, mut n_fail_known, mut n_unsup) = (0, 0, 0, 0);

    for (name, path) in &files {
        ran.insert(name.clone());
        let rep = guarded(|| run_file(&engine, name, path)).unwrap_or_else(|p| FileReport {
            name: name.clone(),
            evals: Vec::new(),
            file_error: Some((0, format!("runner {p}"))),
        });
        let (mut p, mut f, mut k, mut u) = (0, 0, 0, 0);
        let mut fail_items: Vec<(String, &str, &str)> = Vec::new();
        if let Some((line, msg)) = &rep.file_error {
            fail_items.push((format!("{}:{line}", rep.name), "(file)", msg));
        }
        for ev in &rep.evals {
            let key = format!("{}:{}", rep.name, ev.line);
            seen_keys.insert(key.clone());
            match &ev.status {
                Status::Pass => {
                    p += 1;
                    if known.contains(&key) {
                        fixed.push(key);
                    }
                }
                Status::Fail(msg) => fail_items.push((key, &ev.expr, msg)),
                Status::Unsupported(cat, detail) => {
                    u += 1;
                    *unsupported_reasons.entry(cat).or_default() += 1;
                    if cfg.verbose {
                        println!("  UNSUPPORTED {key}: {}  -- {cat} {detail}", ev.expr);
                    }
                }
            }
        }
        for (key, expr, msg) in &fail_items {
            failures.push((
                key.clone(),
                format!("{} -- {}", first_line(expr, 60), first_line(msg, 120)),
            ));
            let is_known = known.contains(key);
            if is_known {
                k += 1;
            } else {
                unexpected.push(format!("  {key}: {expr}\n    {}", first_line(msg, 300)));
            }
            f += 1;
            if cfg.verbose {
                println!(
                    "  FAIL{} {key}: {expr}\n    {}",
                    if is_known { " (known)" } else { "" },
                    msg.trim_end().replace('\n', "\n    ")
                );
            }
        }
        let known_note = if k > 0 {
            format!(" ({k} known)")
        } else {
            String::new()
        };
        println!(
            "{}: {p} passed, {f} failed{known_note}, {u} unsupported",
            rep.name
        );
        n_pass += p;
        n_fail_new += f - k;
        n_fail_known += k;
        n_unsup += u;
    }

    let stale: Vec<&String> = known
        .iter()
        .filter(|k| ran.contains(key_file(k)) && !seen_keys.contains(*k))
        .filter(|k| !failures.iter().any(|(f, _)| f == *k))
        .collect();

    if !unexpected.is_empty() {
        println!(
            "\nUnexpected failures (not in {}):",
            cfg.known_path.display()
        );
        for u in &unexpected {
            println!("{u}");
        }
    }
    if !fixed.is_empty() {
        println!("\nKnown failures that now PASS (remove them from the list):");
        for k in &fixed {
            println!("  {k}");
        }
    }
    if !stale.is_empty() {
        println!("\nKnown-failure entries that match no failing eval (unsupported or gone):");
        for k in &stale {
            println!("  {k}");
        }
    }
    if !unsupported_reasons.is_empty() {
        println!("\nUnsupported by reason:");
        for (r, n) in &unsupported_reasons {
            println!("  {n:5}  {r}");
        }
    }
    println!();
    println!("{n_pass} passed, {n_fail_new} failed");
    println!("{n_fail_known} known failures, {n_unsup} unsupported");

    if cfg.write_known {
        match write_known(&cfg.known_path, &failures, &known, &ran) {
            Ok(()) => println!(
                "wrote {} entries to {}",
                failures.len(),
                cfg.known_path.display()
            ),
            Err(e) => {
                eprintln!("cannot write {}: {e}", cfg.known_path.display());
                std::process::exit(1);
            }
        }
        return;
    }
    if n_fail_new > 0 {
        std::process::exit(1);
    }
}
