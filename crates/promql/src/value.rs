//! Query results: scalars, instant vectors, range vectors (matrices) and
//! strings, as Prometheus returns them, with their annotations.

use std::fmt;

use vigil_model::Labels;

/// One float value at a timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub labels: Labels,
    /// The evaluation timestamp (ms).
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One series of a range vector: labels and points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Points in time order.
    pub points: Vec<Point>,
}

/// An instant vector.
pub type Vector = Vec<Sample>;
/// A range vector, sorted by labels.
pub type Matrix = Vec<Series>;

/// The value a query returns.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// A scalar at a timestamp.
    Scalar {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// An instant vector.
    Vector(Vector),
    /// A range vector: the result of a range query, or of an instant query
    /// of a range selector.
    Matrix(Matrix),
    /// A string at a timestamp.
    String {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        s: String,
    },
}

impl QueryValue {
    /// The Prometheus name of the result type: `scalar`, `vector`,
    /// `matrix` or `string`.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
            QueryValue::String { .. } => "string",
        }
    }
}

/// Whether an annotation is a warning or an info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationKind {
    /// `PromQL warning: ...`: the result may be wrong.
    Warning,
    /// `PromQL info: ...`: the result is right but possibly not meant.
    Info,
}

/// A warning or info attached to a result, rendered as Prometheus renders
/// it (without the `(line:col)` position, which vigil's parser does not
/// track).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Warning or info.
    pub kind: AnnotationKind,
    /// The text after the `PromQL warning: ` / `PromQL info: ` prefix.
    pub message: String,
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AnnotationKind::Warning => write!(f, "PromQL warning: {}", self.message),
            AnnotationKind::Info => write!(f, "PromQL info: {}", self.message),
        }
    }
}

/// Annotations collected while evaluating a query, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations(Vec<Annotation>);

impl Annotations {
    /// Adds a warning.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.add(AnnotationKind::Warning, message.into());
    }

    /// Adds an info.
    pub fn info(&mut self, message: impl Into<String>) {
        self.add(AnnotationKind::Info, message.into());
    }

    fn add(&mut self, kind: AnnotationKind, message: String) {
        if !self
            .0
            .iter()
            .any(|a| a.kind == kind && a.message == message)
        {
            self.0.push(Annotation { kind, message });
        }
    }

    /// Adds every annotation of `other`.
    pub fn extend(&mut self, other: Annotations) {
        for a in other.0 {
            self.add(a.kind, a.message);
        }
    }

    /// All annotations.
    pub fn all(&self) -> &[Annotation] {
        &self.0
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Annotation> {
        self.0.iter().filter(|a| a.kind == AnnotationKind::Warning)
    }

    /// The infos.
    pub fn infos(&self) -> impl Iterator<Item = &Annotation> {
        self.0.iter().filter(|a| a.kind == AnnotationKind::Info)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Statistics of one query, as Prometheus returns with `stats=all`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    /// Samples read from storage.
    pub total_samples_loaded: u64,
    /// Peak number of samples held in memory at once.
    pub peak_samples: u64,
    /// Seconds spent preparing (selecting series).
    pub prepare_seconds: f64,
    /// Seconds spent evaluating, preparation and sorting excluded.
    pub eval_seconds: f64,
    /// Seconds spent sorting the result.
    pub sort_seconds: f64,
    /// Seconds spent waiting for a free query slot.
    pub queue_seconds: f64,
    /// Wall seconds of the whole query.
    pub total_seconds: f64,
}

/// What a query returns.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The value.
    pub value: QueryValue,
    /// Warnings and infos.
    pub annotations: Annotations,
    /// Statistics.
    pub stats: QueryStats,
}
