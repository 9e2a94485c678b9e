//! vigil as a library: a time-series store, a PromQL engine and a rule
//! engine to embed in any Rust program, with no second process.
//!
//! This crate is the facade: it re-exports the crates that do the work,
//! so one dependency gives the common path.
//!
//! | path | crate | what |
//! |---|---|---|
//! | [`vigil::model`](model) | `vigil-model` | labels, matchers, samples, time; the storage traits ([`Appendable`](model::Appendable), [`Queryable`](model::Queryable)) and an in-memory store |
//! | [`vigil::tsdb`](tsdb) | `vigil-tsdb` | the storage engine: [`Db`](tsdb::Db), on disk or [in memory](tsdb::Db::open_in_memory) |
//! | [`vigil::promql`](promql) | `vigil-promql` | the PromQL [`Engine`](promql::Engine), over any `Queryable` |
//! | [`vigil::rules`](rules) | `vigil-rules` | recording and alerting rules: [`RuleEngine`](rules::RuleEngine) (manual clock), [`RuleManager`](rules::RuleManager) (your tokio runtime) |
//! | `vigil::scrape` | `vigil-scrape` | scrape loops and exposition parsers (feature `scrape`) |
//! | `vigil::notify` | `vigil-notify` | alert routing and receivers (feature `notify`) |
//! | `vigil::server` | `vigil-server` | the Prometheus-compatible HTTP server (feature `server`) |
//!
//! # Features
//!
//! - `server` (default): the HTTP server and the `vigil` binary; implies
//!   `scrape`. Pulls in axum, hyper and reqwest.
//! - `scrape`: scraping (reqwest).
//! - `notify`: notification routing and receivers.
//!
//! To embed, turn the defaults off: storage, query and rules only, with no
//! HTTP server or client in the dependency tree.
//!
//! ```toml
//! [dependencies]
//! vigil = { version = "0.1", default-features = false }
//! ```
//!
//! # Example
//!
//! Record a counter, then ask for its rate:
//!
//! ```
//! use vigil::model::{labels, Appendable, Appender, Value};
//! use vigil::promql::{Engine, EngineOptions, QueryValue};
//! use vigil::tsdb::Db;
//!
//! let db = Db::open_in_memory()?;
//! let requests = labels!("__name__" => "requests_total", "route" => "/api");
//! let mut app = db.appender();
//! for i in 0..=20 {
//!     // 30 requests every 15 s: 2 per second.
//!     app.append(None, &requests, i * 15_000, Value::Float((i * 30) as f64))?;
//! }
//! app.commit()?;
//!
//! let engine = Engine::new(EngineOptions::default());
//! let result = engine.instant_query(&db, "rate(requests_total[5m])", 300_000)?;
//! let QueryValue::Vector(v) = result.value else { unreachable!() };
//! assert!((v[0].v - 2.0).abs() < 1e-9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The storage engine is a blocking library: from async code, call it
//! through `tokio::task::spawn_blocking` or a thread of your own. See
//! `docs/embedding.md` in the repository for threading, durability and
//! the stability promise, and `crates/vigil/examples/` for whole programs.
#![warn(missing_docs)]

pub use vigil_model as model;
pub use vigil_promql as promql;
pub use vigil_rules as rules;
pub use vigil_tsdb as tsdb;

#[cfg(feature = "notify")]
pub use vigil_notify as notify;
#[cfg(feature = "scrape")]
pub use vigil_scrape as scrape;
#[cfg(feature = "server")]
pub use vigil_server as server;

/// The traits needed to call the common methods (`appender`, `append`,
/// `commit`, `querier`, alert sinks, query functions), in one import.
pub mod prelude {
    pub use vigil_model::{Appendable, Appender, Querier, Queryable, SampleIterator, Series};
    pub use vigil_rules::{AlertSink, QueryFunc};
}
