//! Notification templates: Alertmanager's dialect of the language over a
//! dynamic data model.
//!
//! Alertmanager renders `text/template` against its `template.Data` struct
//! and adds its own functions (`join`, `trimSpace`, `date`, `tz`, `since`,
//! ...) and methods (`KV.SortedPairs`, `KV.Remove`, `Alerts.Firing`, ...).
//! Here the data is a [`Data`] tree built by the caller, so the template
//! crate stays independent of the notifier's types: maps give Go field
//! access (`.Alerts`, `.Labels.severity`), [`Data::Kv`] maps carry the
//! `KV` methods, lists of maps with a `Status` field carry `Firing` and
//! `Resolved`.
//!
//! A [`TemplateSet`] holds the files of Alertmanager's `templates:` globs
//! (and vigil's defaults, [`DEFAULT_TEMPLATES`]); every `define` in any of
//! them can be called with `template` from any text rendered with the set.
//! As in Go, a later definition of a name replaces an earlier one.
//!
//! Differences from Alertmanager: HTML bodies are rendered with the text
//! engine, so they are not escaped automatically (the default HTML template
//! escapes with `html`); a missing map key reads as `<no value>` (or `""`
//! in a [`Data::Kv`]) where Alertmanager's structs fail with "can't
//! evaluate field".

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use super::exec::Exec;
use super::funcs::{Dialect, Env};
use super::value::Value;
use super::{exec_error, parse, parse_error, Inner, NoQueries, RenderOptions, TemplateError};

/// vigil's default notification templates: Alertmanager's template names
/// (`__subject`, `__text_alert_list`, `slack.default.title`,
/// `slack.default.text`, `email.default.subject`, `email.default.html`, ...)
/// plus `email.default.text` and `sms.default.message`, which add the
/// acknowledgement link.
pub const DEFAULT_TEMPLATES: &str = include_str!("default.tmpl");

/// A value notification templates render against: Go's dynamic view of
/// Alertmanager's data.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Data {
    /// A missing value (prints `<no value>`).
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A Go `int`.
    Int(i64),
    /// A Go `float64`.
    Float(f64),
    /// A string.
    Str(String),
    /// A `time.Time` in UTC, as Unix nanoseconds; [`Data::ZERO_TIME`] is
    /// Go's zero time (`0001-01-01 00:00:00 +0000 UTC`).
    Time(i64),
    /// A `time.Duration` in nanoseconds.
    Duration(i64),
    /// A slice. A list of maps with a `Status` field has Alertmanager's
    /// `Alerts` methods `Firing` and `Resolved`.
    List(Vec<Data>),
    /// A struct or `map[string]interface{}`: `.Name` reads a key.
    Map(BTreeMap<String, Data>),
    /// Alertmanager's `KV` (label and annotation sets): a string map with
    /// `SortedPairs`, `Remove`, `Names`, `Values`; prints as `a=1, b=2`.
    Kv(BTreeMap<String, String>),
}

impl Data {
    /// Go's zero `time.Time`, as a [`Data::Time`] value.
    pub const ZERO_TIME: i64 = super::gotime::ZERO_TIME;

    /// A time from Unix milliseconds.
    pub fn time_ms(ms: i64) -> Data {
        Data::Time(ms.saturating_mul(1_000_000))
    }

    fn to_value(&self, depth: usize) -> Value {
        if depth > 64 {
            return Value::Nil;
        }
        match self {
            Data::Nil => Value::Nil,
            Data::Bool(b) => Value::Bool(*b),
            Data::Int(i) => Value::Int(*i),
            Data::Float(f) => Value::Float(*f),
            Data::Str(s) => Value::str(s.as_str()),
            Data::Time(ns) => Value::Time(*ns),
            Data::Duration(ns) => Value::Duration(*ns),
            Data::List(l) => {
                Value::List(Rc::new(l.iter().map(|x| x.to_value(depth + 1)).collect()))
            }
            Data::Map(m) => Value::AnyMap(Rc::new(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.to_value(depth + 1)))
                    .collect(),
            )),
            Data::Kv(m) => Value::Kv(Rc::new(m.clone())),
        }
    }
}

impl From<&str> for Data {
    fn from(s: &str) -> Data {
        Data::Str(s.to_string())
    }
}

impl From<String> for Data {
    fn from(s: String) -> Data {
        Data::Str(s)
    }
}

impl From<bool> for Data {
    fn from(b: bool) -> Data {
        Data::Bool(b)
    }
}

impl From<i64> for Data {
    fn from(i: i64) -> Data {
        Data::Int(i)
    }
}

/// Why template files could not be loaded into a [`TemplateSet`].
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The glob pattern is invalid.
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A matched file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file is not a valid template.
    Parse(TemplateError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Pattern { pattern, reason } => {
                write!(f, "template glob {pattern:?}: {reason}")
            }
            LoadError::Read { path, source } => {
                write!(f, "reading template file {}: {source}", path.display())
            }
            LoadError::Parse(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::Parse(e) => Some(e),
            LoadError::Pattern { .. } => None,
        }
    }
}

/// Template files whose `define`s notification texts can call, as
/// Alertmanager's `templates:` builds them. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    units: Vec<Arc<Inner>>,
}

impl TemplateSet {
    /// An empty set: no named templates.
    pub fn new() -> TemplateSet {
        TemplateSet::default()
    }

    /// A set holding [`DEFAULT_TEMPLATES`].
    pub fn with_defaults() -> TemplateSet {
        let mut set = TemplateSet::new();
        // The defaults are tested to parse; a failure leaves the set empty
        // rather than panicking.
        let _ = set.add("default.tmpl", DEFAULT_TEMPLATES);
        set
    }

    /// Parses `text` (a template file named `name`) and adds its
    /// definitions, replacing earlier ones of the same names.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let parsed = parse::parse(text, &[], Dialect::Alertmanager)
            .map_err(|e| parse_error(name, text, e))?;
        self.units.push(Arc::new(Inner {
            name: name.to_string(),
            source: text.to_string(),
            parsed,
            alert: false,
        }));
        Ok(())
    }

    /// Adds every file matching the glob `pattern`, in path order, each
    /// named by its file name (Go's `ParseGlob`). A pattern that matches
    /// nothing is not an error (Alertmanager allows it). Reads files:
    /// call it off the async workers. Returns how many files were added.
    pub fn add_glob(&mut self, pattern: &str) -> Result<usize, LoadError> {
        let paths = glob::glob(pattern).map_err(|e| LoadError::Pattern {
            pattern: pattern.to_string(),
            reason: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for p in paths {
            match p {
                Ok(p) if p.is_file() => files.push(p),
                Ok(_) => {}
                Err(e) => {
                    return Err(LoadError::Read {
                        path: e.path().to_path_buf(),
                        source: std::io::Error::new(e.error().kind(), e.error().to_string()),
                    })
                }
            }
        }
        files.sort();
        for path in &files {
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                path: path.clone(),
                source,
            })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.add(&name, &text).map_err(LoadError::Parse)?;
        }
        Ok(files.len())
    }

    /// Whether a template named `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.units
            .iter()
            .any(|u| u.parsed.defs.contains_key(name) || u.name == name)
    }

    /// Renders `text` against `data` with default [`RenderOptions`]
    /// (Alertmanager's `ExecuteTextString`): empty text renders empty.
    pub fn render(&self, text: &str, data: &Data) -> Result<String, TemplateError> {
        self.render_with(text, data, &RenderOptions::default())
    }

    /// Renders `text` with explicit limits; `opts.now` is what `now` and
    /// `since` take as the current time.
    pub fn render_with(
        &self,
        text: &str,
        data: &Data,
        opts: &RenderOptions,
    ) -> Result<String, TemplateError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let parsed =
            parse::parse(text, &[], Dialect::Alertmanager).map_err(|e| parse_error("", text, e))?;
        let main = Inner {
            name: String::new(),
            source: text.to_string(),
            parsed,
            alert: false,
        };
        let mut units: Vec<&Inner> = self.units.iter().map(|u| &**u).collect();
        units.push(&main);
        let dot = data.to_value(0);
        let now = opts.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        let external_url: Rc<str> = match data {
            Data::Map(m) => match m.get("ExternalURL") {
                Some(Data::Str(s)) => Rc::from(s.as_str()),
                _ => Rc::from(""),
            },
            _ => Rc::from(""),
        };
        let env = Env {
            query: &NoQueries,
            queries_left: 0,
            max_queries: 0,
            now,
            external_url,
            regexes: HashMap::new(),
            dialect: Dialect::Alertmanager,
        };
        let vars = vec![("$".to_string(), dot.clone())];
        let mut ex = Exec::with_units(units, env, opts, vars);
        match ex.run(&dot) {
            Ok(()) => Ok(std::mem::take(&mut ex.out)),
            Err(e) => Err(exec_error(&ex.units, *e)),
        }
    }

    /// Renders the named template (`{{ template "name" . }}`).
    pub fn execute(&self, name: &str, data: &Data) -> Result<String, TemplateError> {
        let text = format!("{{{{ template {} . }}}}", super::gofmt::quote(name, false));
        self.render(&text, data)
    }
}
