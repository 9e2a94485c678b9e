//! vigil-promql: a PromQL engine over any [`vigil_model::Queryable`].
//!
//! Queries are parsed with `promql-parser` and evaluated with Prometheus 3
//! semantics for float samples.
//!
//! The central design decision: a range query evaluates each node of the
//! expression for **all steps at once**. A selector selects and decodes its
//! series once for the whole query and then sweeps the steps; functions,
//! aggregations and binary operators work on whole step-aligned series. An
//! instant query is a range query with one step. So the cost of selecting
//! and decoding is paid once per query, not once per step.
//!
//! ```
//! use vigil_model::{labels, MemStorage, Sample};
//! use vigil_promql::{Engine, EngineOptions, QueryValue};
//!
//! let storage = MemStorage::new();
//! storage
//!     .add_series(labels!("__name__" => "up", "job" => "api"), [Sample::new(0, 1.0)])
//!     .unwrap();
//! let engine = Engine::new(EngineOptions::default());
//! let result = engine.instant_query(&storage, "sum(up)", 60_000).unwrap();
//! let QueryValue::Vector(v) = result.value else { panic!("a vector") };
//! assert_eq!(v[0].v, 1.0);
//! ```
#![warn(missing_docs)]

mod aggregate;
mod binary;
mod engine;
mod eval;
mod functions;
mod parse;
mod value;

pub use engine::{Engine, EngineOptions, QueryError, QueryOptions};
pub use parse::{parse, parse_series_selector};
pub use value::{
    Annotation, AnnotationKind, Annotations, Matrix, Point, QueryResult, QueryStats, QueryValue,
    Sample, Series, Vector,
};
