//! The engine: options, limits, errors and the query entry points.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use promql_parser::parser::Expr;
use vigil_model::{Queryable, StorageError};

use crate::eval::Evaluator;
use crate::value::{QueryResult, QueryStats};

/// Settings of an [`Engine`]. The defaults are Prometheus's.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (ms). Default 5m.
    pub lookback_delta: i64,
    /// Most samples a query may hold in memory at once. Default 50M.
    pub max_samples: usize,
    /// Longest a query may run. Default 2m.
    pub timeout: Duration,
    /// Most queries running at once; more wait their turn. Default 20.
    pub max_concurrent: usize,
    /// Remove `__name__` at the end of evaluation rather than where a
    /// function or operator drops it (Prometheus's
    /// `promql-delayed-name-removal`).
    pub enable_delayed_name_removal: bool,
    /// Allow the experimental functions (`sort_by_label`, `limitk`,
    /// `mad_over_time`, `double_exponential_smoothing`, ...).
    pub enable_experimental_functions: bool,
    /// The step of a subquery that gives none (ms). Default 1m.
    pub no_step_subquery_interval: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_concurrent: 20,
            enable_delayed_name_removal: false,
            enable_experimental_functions: false,
            no_step_subquery_interval: 60_000,
        }
    }
}

/// Settings of one query that override the engine's.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// A shorter timeout for this query (the HTTP API's `timeout`
    /// parameter). The engine's own timeout still applies when it is
    /// shorter.
    pub timeout: Option<Duration>,
}

/// Why a query failed. [`QueryError::error_type`] gives Prometheus's
/// `errorType` for the HTTP API.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query does not parse.
    #[error("{0}")]
    Parse(String),
    /// The query parses but is invalid (wrong argument types, bad values).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (for example many-to-many matching).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query would hold more samples than allowed.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// Storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
}

impl QueryError {
    /// Prometheus's `errorType`: `bad_data`, `execution`, `timeout`.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::Timeout(_) => "timeout",
            QueryError::Execution(_) | QueryError::TooManySamples(_) | QueryError::Storage(_) => {
                "execution"
            }
        }
    }
}

/// Admits at most `max` queries at once; the others wait in line.
#[derive(Debug)]
struct Gate {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Gate {
    fn enter(&self, deadline: Instant) -> Result<GateGuard<'_>, QueryError> {
        let mut n = self.running.lock();
        while *n >= self.max {
            if self.freed.wait_until(&mut n, deadline).timed_out() {
                return Err(QueryError::Timeout("query queue"));
            }
        }
        *n += 1;
        Ok(GateGuard { gate: self })
    }
}

struct GateGuard<'a> {
    gate: &'a Gate,
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *self.gate.running.lock() -= 1;
        self.gate.freed.notify_one();
    }
}

/// The PromQL engine. Cheap to share between threads; each query is
/// independent.
#[derive(Debug)]
pub struct Engine {
    opts: EngineOptions,
    gate: Gate,
}

impl Engine {
    /// A new engine.
    pub fn new(opts: EngineOptions) -> Engine {
        let max = opts.max_concurrent.max(1);
        Engine {
            opts,
            gate: Gate {
                running: Mutex::new(0),
                freed: Condvar::new(),
                max,
            },
        }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at time `t` (ms).
    pub fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = crate::parse(query)?;
        self.instant_query_expr(storage, &expr, t)
    }

    /// Evaluates a parsed expression at time `t` (ms) with per-query
    /// options.
    pub fn instant_query_with(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        t: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        self.run(storage, expr, t, t, 1, true, opts)
    }

    /// Evaluates a parsed expression over a range with per-query options.
    pub fn range_query_with(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        Self::check_range(start, end, step)?;
        self.run(storage, expr, start, end, step, false, opts)
    }

    /// Evaluates `query` at `start, start+step, ..., end` (ms).
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = crate::parse(query)?;
        self.range_query_expr(storage, &expr, start, end, step)
    }

    /// Evaluates a parsed expression at time `t` (ms).
    pub fn instant_query_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        t: i64,
    ) -> Result<QueryResult, QueryError> {
        self.instant_query_with(storage, expr, t, &QueryOptions::default())
    }

    /// Evaluates a parsed expression over a range.
    pub fn range_query_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        self.range_query_with(storage, expr, start, end, step, &QueryOptions::default())
    }

    fn check_range(start: i64, end: i64, step: i64) -> Result<(), QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end - start) / step > 11_000 {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        instant: bool,
        opts: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        let started = Instant::now();
        let timeout = opts
            .timeout
            .map_or(self.opts.timeout, |t| t.min(self.opts.timeout));
        let deadline = started + timeout;
        let _guard = self.gate.enter(deadline)?;
        let queue_seconds = started.elapsed().as_secs_f64();
        let mut ev = Evaluator::new(&self.opts, storage, start, end, step, deadline);
        if instant {
            ev.set_instant();
        }
        let value = ev.run(expr, instant)?;
        let total = started.elapsed().as_secs_f64();
        Ok(QueryResult {
            value,
            annotations: ev.annotations,
            stats: QueryStats {
                total_samples_loaded: ev.samples_loaded,
                peak_samples: ev.peak_samples as u64,
                prepare_seconds: ev.prepare_seconds,
                eval_seconds: (total - queue_seconds - ev.prepare_seconds - ev.sort_seconds)
                    .max(0.0),
                sort_seconds: ev.sort_seconds,
                queue_seconds,
                total_seconds: total,
            },
        })
    }
}
