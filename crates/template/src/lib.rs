//! Prometheus rule templates: the Go `text/template` language as alert
//! annotations and labels use it, with Prometheus's template functions and
//! exact output formats.
//!
//! The language: text and `{{ }}` actions with `{{-`/`-}}` trim markers,
//! comments `{{/* */}}`, variables (`$x := ...`, `$x = ...`, `$`), field
//! access on the data and on maps (`.Labels.instance`, `$labels.job`),
//! pipelines with `|`, parenthesized pipelines, literals (strings with
//! escapes, raw strings, character constants, numbers, `true`, `false`,
//! `nil`), `if`/`else if`/`else`, `with`/`else with`, `range` (over query
//! results, over maps in key order, over an integer; with `$i, $e :=`,
//! `else`, `break`, `continue`), `define`, `template` and `block`.
//!
//! Functions: Go's builtins (`and or not len index slice print printf
//! println eq ne lt le gt ge html js urlquery call`) and Prometheus's
//! (`query first label value strvalue sortByLabel args reReplaceAll match
//! title toUpper toLower safeHtml graphLink tableLink stripPort stripDomain
//! humanize humanize1024 humanizeDuration humanizePercentage
//! humanizeTimestamp toTime toDuration parseDuration now pathPrefix
//! externalURL`). Values print as Go's `fmt` prints them (`1.234567e+06`,
//! `<no value>`, `map[a:b]`), and `printf` follows Go's verbs, flags, width
//! and precision, including its `%!d(float64=1.5)` error forms.
//!
//! Semantics follow Go with the `missingkey=zero` option Prometheus sets: a
//! missing label reads as the empty string. Comparisons are typed as in Go:
//! `gt $value 1` fails with "incompatible types for comparison" (an integer
//! literal against a float); write `gt $value 1.0`.
//!
//! Rendering never panics and is bounded: see [`RenderOptions`].
#![warn(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

mod exec;
mod funcs;
mod gofmt;
mod gotime;
mod lexer;
mod notification;
mod parse;
mod tzdata;
mod value;

pub use notification::{Data, LoadError, TemplateSet, DEFAULT_TEMPLATES};

#[cfg(test)]
mod notification_tests;
#[cfg(test)]
mod tests;

use value::{labels_map, RootV, Value};

/// A position-tagged parse failure before it is placed in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseErr {
    pub pos: usize,
    pub msg: String,
}

/// Whether a template failed to parse or to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The template text is not a valid template.
    Parse,
    /// The template parsed but rendering it failed (a function error, a type
    /// mismatch, a missing field, a limit of [`RenderOptions`]).
    Exec,
}

/// Why a template did not parse or render, and where.
///
/// `Display` reads as Prometheus's messages do, for example
/// `error executing template summary: template: summary:1:4: executing
/// "summary" at <humanize "one">: error calling humanize: strconv.ParseFloat:
/// parsing "one": invalid syntax`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TemplateError {
    /// Parse or execution error.
    pub kind: ErrorKind,
    /// The name the template was parsed with.
    pub name: String,
    /// The template executing when the error happened (the name given to
    /// `define` for errors inside one); equal to `name` for parse errors.
    pub executing: String,
    /// 1-based line of the error in the template text.
    pub line: usize,
    /// 1-based column of the error, counted in characters.
    pub column: usize,
    /// The source text of the failing action or command, shortened to 20
    /// characters (empty for parse errors).
    pub context: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.name;
        match self.kind {
            ErrorKind::Parse => write!(
                f,
                "error parsing template {n}: template: {n}:{}:{}: {}",
                self.line, self.column, self.reason
            ),
            ErrorKind::Exec => write!(
                f,
                "error executing template {n}: template: {n}:{}:{}: executing {:?} at <{}>: {}",
                self.line, self.column, self.executing, self.context, self.reason
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let mut p = pos.min(src.len());
    while !src.is_char_boundary(p) {
        p -= 1;
    }
    let before = &src[..p];
    let line = 1 + before.matches('\n').count();
    let col = 1 + before.rsplit('\n').next().map_or(0, |l| l.chars().count());
    (line, col)
}

/// One sample of a query result, as the `query` function returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// The series labels, including `__name__` if the result has one.
    pub labels: vigil_model::Labels,
    /// The sample value.
    pub value: f64,
}

/// Runs the PromQL queries of the template `query` function, at the
/// evaluation time of the rule. Implemented for closures
/// `Fn(&str) -> Result<Vec<QuerySample>, String>`.
pub trait QueryFn: Send + Sync {
    /// Evaluates `expr` as an instant query; an error becomes a template
    /// execution error (`error calling query: ...`).
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String>;
}

impl<F> QueryFn for F
where
    F: Fn(&str) -> Result<Vec<QuerySample>, String> + Send + Sync,
{
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        self(expr)
    }
}

/// A [`QueryFn`] for templates that must not query: every query fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoQueries;

impl QueryFn for NoQueries {
    fn query(&self, _expr: &str) -> Result<Vec<QuerySample>, String> {
        Err("queries are not available here".to_string())
    }
}

/// The data a rule template sees: `.Labels`, `.Value`, `.ExternalLabels`
/// and `.ExternalURL` (and `$labels`, `$value`, `$externalLabels`,
/// `$externalURL` in alert templates).
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// The alert's (or series') labels.
    pub labels: &'a vigil_model::Labels,
    /// The sample value that triggered the alert.
    pub value: f64,
    /// The configured external labels.
    pub external_labels: &'a vigil_model::Labels,
    /// The external URL vigil is reachable at (`--web.external-url`).
    pub external_url: &'a str,
}

/// Limits and context of one render.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// What `now` returns: the rule evaluation time in Unix seconds. `None`
    /// uses the wall clock.
    pub now: Option<f64>,
    /// The rendered text may be at most this long (default 1 MiB).
    pub max_output_bytes: usize,
    /// `template` calls, control structures and parentheses may nest this
    /// deep at run time (default 100); guards against runaway recursion.
    pub max_depth: usize,
    /// At most this many actions, commands and loop iterations run
    /// (default 1,000,000).
    pub max_steps: u64,
    /// At most this many `query` calls run (default 100).
    pub max_queries: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            now: None,
            max_output_bytes: 1 << 20,
            max_depth: 100,
            max_steps: 1_000_000,
            max_queries: 100,
        }
    }
}

/// The variables Prometheus defines for alert templates by prepending
/// `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`.
const ALERT_VARS: [&str; 4] = ["$labels", "$externalLabels", "$externalURL", "$value"];

#[derive(Debug)]
pub(crate) struct Inner {
    pub name: String,
    pub source: String,
    pub parsed: parse::Parsed,
    pub alert: bool,
}

/// A parsed template, ready to render any number of times. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Template {
    inner: Arc<Inner>,
}

impl Template {
    /// Parses `text` as a Go template named `name`. The data it renders
    /// against is the struct Prometheus gives alert templates, as dot.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        Self::parse_inner(name, text, false)
    }

    /// Parses rule-template text as Prometheus does: with `$labels`,
    /// `$externalLabels`, `$externalURL` and `$value` defined at top level.
    /// Error positions are in `text` itself (Prometheus's count the
    /// prepended definitions).
    pub fn parse_alert(name: &str, text: &str) -> Result<Template, TemplateError> {
        Self::parse_inner(name, text, true)
    }

    fn parse_inner(name: &str, text: &str, alert: bool) -> Result<Template, TemplateError> {
        let predeclared: &[&str] = if alert { &ALERT_VARS } else { &[] };
        let parsed = parse::parse(text, predeclared, funcs::Dialect::Prometheus)
            .map_err(|e| parse_error(name, text, e))?;
        Ok(Template {
            inner: Arc::new(Inner {
                name: name.to_string(),
                source: text.to_string(),
                parsed,
                alert,
            }),
        })
    }

    /// The name the template was parsed with.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Renders the template with default [`RenderOptions`].
    pub fn render(
        &self,
        data: &TemplateData<'_>,
        query: &dyn QueryFn,
    ) -> Result<String, TemplateError> {
        self.render_with(data, query, &RenderOptions::default())
    }

    /// Renders the template with explicit limits and evaluation time.
    pub fn render_with(
        &self,
        data: &TemplateData<'_>,
        query: &dyn QueryFn,
        opts: &RenderOptions,
    ) -> Result<String, TemplateError> {
        let inner = &*self.inner;
        let root = Rc::new(RootV {
            labels: labels_map(data.labels),
            external_labels: labels_map(data.external_labels),
            external_url: Rc::from(data.external_url),
            value: data.value,
        });
        let dot = Value::Root(root.clone());
        let mut vars = vec![("$".to_string(), dot.clone())];
        if inner.alert {
            vars.push(("$labels".into(), Value::StrMap(root.labels.clone())));
            vars.push((
                "$externalLabels".into(),
                Value::StrMap(root.external_labels.clone()),
            ));
            vars.push(("$externalURL".into(), Value::Str(root.external_url.clone())));
            vars.push(("$value".into(), Value::Float(root.value)));
        }
        let now = opts.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
        });
        let env = funcs::Env {
            query,
            queries_left: opts.max_queries,
            max_queries: opts.max_queries,
            now,
            external_url: root.external_url.clone(),
            regexes: HashMap::new(),
            dialect: funcs::Dialect::Prometheus,
        };
        let mut ex = exec::Exec::new(inner, env, opts, vars);
        match ex.run(&dot) {
            Ok(()) => Ok(std::mem::take(&mut ex.out)),
            Err(e) => Err(exec_error(&ex.units, *e)),
        }
    }
}

pub(crate) fn parse_error(name: &str, text: &str, e: ParseErr) -> TemplateError {
    let (line, column) = line_col(text, e.pos);
    TemplateError {
        kind: ErrorKind::Parse,
        name: name.to_string(),
        executing: name.to_string(),
        line,
        column,
        context: String::new(),
        reason: e.msg,
    }
}

/// Places an execution error in the text it happened in.
pub(crate) fn exec_error(units: &[&Inner], e: exec::ExecErr) -> TemplateError {
    let (name, source) = match units.get(e.unit) {
        Some(u) => (u.name.as_str(), u.source.as_str()),
        None => ("", ""),
    };
    let (line, column) = line_col(source, e.span.start);
    let text = source.get(e.span.start..e.span.end).unwrap_or("");
    let context = if text.chars().count() > 20 {
        format!("{}...", text.chars().take(20).collect::<String>())
    } else {
        text.to_string()
    };
    TemplateError {
        kind: ErrorKind::Exec,
        name: name.to_string(),
        executing: e.template,
        line,
        column,
        context,
        reason: e.msg,
    }
}

/// Parses rule-template text as Prometheus does (with the prepended
/// `$labels`, `$externalLabels`, `$externalURL` and `$value` definitions)
/// and renders it. Prometheus puts `<error expanding template: {err}>` in
/// the annotation when this fails.
pub fn expand_alert_template(
    name: &str,
    text: &str,
    data: &TemplateData<'_>,
    query: &dyn QueryFn,
) -> Result<String, TemplateError> {
    Template::parse_alert(name, text)?.render(data, query)
}
