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
            // Non-nil pointers and structs are true.
            Value::Sample(_) | Value::Time(_) | Value::Duration(_) | Value::Root(_) => true,
        }
    }

    /// The `String()` method of Stringer types, if this value has one.
    pub fn stringer(&self) -> Option<String> {
        match self {
            Value::Time(ns) => Some(gotime::time_string(*ns)),
            Value::Duration(ns) => Some(gotime::duration_string(*ns)),
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
