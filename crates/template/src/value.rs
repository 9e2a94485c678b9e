//! Template values: the Go types a Prometheus template sees, reduced to
//! what rule templates can produce.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::gotime;

/// A query result sample (`*template.sample` in Prometheus).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SampleV {
    pub labels: Rc<BTreeMap<String, String>>,
    pub value: f64,
}

/// The data of an alert template (the struct Prometheus passes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RootV {
    pub labels: Rc<BTreeMap<String, String>>,
    pub external_labels: Rc<BTreeMap<String, String>>,
    pub external_url: Rc<str>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// An untyped nil (a missing value).
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `float64`.
    Float(f64),
    Str(Rc<str>),
    /// `map[string]string` (label sets).
    StrMap(Rc<BTreeMap<String, String>>),
    /// `map[string]interface{}` (from `args`).
    AnyMap(Rc<BTreeMap<String, Value>>),
    /// `template.queryResult`.
    Samples(Rc<Vec<Rc<SampleV>>>),
    /// `*template.sample`.
    Sample(Rc<SampleV>),
    /// `*time.Time`, as Unix nanoseconds (always UTC).
    Time(i64),
    /// `*time.Duration`, in nanoseconds.
    Duration(i64),
    /// The alert template data struct.
    Root(Rc<RootV>),
    /// Alertmanager's `template.KV`: a `map[string]string` with the
    /// methods `SortedPairs`, `Remove`, `Names`, `Values` and `String`.
    Kv(Rc<BTreeMap<String, String>>),
    /// Alertmanager's `template.Pairs` (`Names`, `Values`, `String`).
    Pairs(Rc<Vec<(String, String)>>),
    /// Alertmanager's `template.Pair` (`.Name`, `.Value`).
    Pair(Rc<(String, String)>),
    /// A slice (`[]interface {}`); alert lists have `Firing` and `Resolved`.
    List(Rc<Vec<Value>>),
    /// A `time.Time` in a time zone other than UTC: Unix nanoseconds and
    /// the zone in force at that instant.
    ZTime(i64, Rc<Zone>),
}

/// A time zone at one instant: its offset east of UTC and abbreviation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Zone {
    pub offset_secs: i32,
    pub abbr: String,
}

pub(crate) const ROOT_TYPE: &str =
    "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }";

impl Value {
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// The Go type name, as `%T` prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::StrMap(_) => "map[string]string",
            Value::AnyMap(_) => "map[string]interface {}",
            Value::Samples(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Time(_) => "*time.Time",
            Value::Duration(_) => "*time.Duration",
            Value::Root(_) => ROOT_TYPE,
            Value::Kv(_) => "template.KV",
            Value::Pairs(_) => "template.Pairs",
            Value::Pair(_) => "template.Pair",
            Value::List(v) => {
                if !v.is_empty() && v.iter().all(|x| matches!(x, Value::Str(_))) {
                    "[]string"
                } else {
                    "[]interface {}"
                }
            }
            Value::ZTime(..) => "time.Time",
        }
    }

    /// Go's `isTrue`: the truth of a value for `if`, `with`, `and`, `or`, `not`.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::AnyMap(m) => !m.is_empty(),
            Value::Samples(v) => !v.is_empty(),
            Value::Kv(m) => !m.is_empty(),
            Value::Pairs(v) => !v.is_empty(),
            Value::List(v) => !v.is_empty(),
            // Non-nil pointers and structs are true.
            Value::Sample(_)
            | Value::Time(_)
            | Value::Duration(_)
            | Value::Root(_)
            | Value::Pair(_)
            | Value::ZTime(..) => true,
        }
    }

    /// The `String()` method of Stringer types, if this value has one.
    pub fn stringer(&self) -> Option<String> {
        match self {
            Value::Time(ns) => Some(gotime::time_string(*ns)),
            Value::Duration(ns) => Some(gotime::duration_string(*ns)),
            Value::ZTime(ns, z) => Some(gotime::time_string_in(*ns, z.offset_secs, &z.abbr)),
            Value::Kv(m) => Some(pairs_string(&sorted_pairs(m))),
            Value::Pairs(p) => Some(pairs_string(p)),
            _ => None,
        }
    }
}

/// Converts label pairs to the map a template sees.
pub(crate) fn labels_map(l: &vigil_model::Labels) -> Rc<BTreeMap<String, String>> {
    Rc::new(
        l.iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect(),
    )
}

/// `KV.SortedPairs`: by name, with `alertname` first.
pub(crate) fn sorted_pairs(m: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(m.len());
    if let Some(v) = m.get("alertname") {
        out.push(("alertname".to_string(), v.clone()));
    }
    out.extend(
        m.iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out
}

/// `Pairs.String`: `a=1, b=2`.
pub(crate) fn pairs_string(p: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in p.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}
