//! The query function rules evaluate through, and the ready-made one over
//! the PromQL engine.

use std::fmt;
use std::sync::Arc;

use promql_parser::parser::Expr;
use vigil_model::{Labels, Queryable};
use vigil_promql::{Engine, QueryValue, Sample};

/// Evaluates PromQL for rules: an instant query at `t` (ms since the
/// epoch).
///
/// The contract: the answer is an instant vector; a scalar result is
/// returned as one sample with no labels. Implementations are called from
/// whatever thread evaluates the group (a blocking-pool thread under
/// [`RuleManager`](crate::RuleManager), the caller's thread under
/// [`RuleEngine`](crate::RuleEngine)) and may block.
///
/// [`EngineQuery`] is the implementation almost everyone wants: the vigil
/// PromQL engine over any [`Queryable`].
pub trait QueryFunc: Send + Sync {
    /// Runs `expr` at `t`.
    fn query(&self, expr: &Expr, t: i64) -> Result<Vec<Sample>, RuleQueryError>;
}

/// Why a rule's query failed. The rule's health becomes `err` with this
/// error's text; the group goes on with its next rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleQueryError {
    /// The PromQL engine refused or failed the query.
    #[error(transparent)]
    Query(#[from] vigil_promql::QueryError),
    /// The expression evaluated to something other than an instant vector
    /// or a scalar (a range vector or a string).
    #[error("rule expressions must return an instant vector or a scalar, not a {0}")]
    NotInstant(&'static str),
    /// A failure of a caller-provided [`QueryFunc`].
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Rules' queries through a [`vigil_promql::Engine`] over any
/// [`Queryable`]: the vigil TSDB, [`vigil_model::MemStorage`], or a store
/// of your own. The server, `vigil test rules` and embedders all use it.
///
/// `Q` is typically an `Arc` of the storage (the rule engine also needs
/// the storage to append to) or a reference.
///
/// ```
/// use std::sync::Arc;
/// use vigil_model::{labels, MemStorage, Sample};
/// use vigil_promql::{Engine, EngineOptions};
/// use vigil_rules::{EngineQuery, QueryFunc};
///
/// let store = Arc::new(MemStorage::new());
/// store.add_series(labels!("__name__" => "up", "job" => "api"), [Sample::new(0, 0.0)]).unwrap();
/// let query = EngineQuery::new(Arc::new(Engine::new(EngineOptions::default())), store);
/// let expr = vigil_promql::parse("up == 0").unwrap();
/// let down = query.query(&expr, 10_000).unwrap();
/// assert_eq!(down.len(), 1);
/// ```
pub struct EngineQuery<Q> {
    engine: Arc<Engine>,
    storage: Q,
}

impl<Q: Queryable> EngineQuery<Q> {
    /// Queries `storage` through `engine`.
    pub fn new(engine: Arc<Engine>, storage: Q) -> Self {
        EngineQuery { engine, storage }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The storage queried.
    pub fn storage(&self) -> &Q {
        &self.storage
    }
}

impl<Q> fmt::Debug for EngineQuery<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineQuery")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl<Q: Queryable> QueryFunc for EngineQuery<Q> {
    fn query(&self, expr: &Expr, t: i64) -> Result<Vec<Sample>, RuleQueryError> {
        let r = self.engine.instant_query_expr(&self.storage, expr, t)?;
        match r.value {
            QueryValue::Vector(v) => Ok(v),
            QueryValue::Scalar { t, v } => Ok(vec![Sample {
                labels: Labels::empty(),
                t,
                v,
            }]),
            QueryValue::Matrix(_) => Err(RuleQueryError::NotInstant("range vector")),
            QueryValue::String { .. } => Err(RuleQueryError::NotInstant("string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::{labels, MemStorage};
    use vigil_promql::EngineOptions;

    #[test]
    fn scalars_are_one_unlabelled_sample_and_ranges_are_refused() {
        let store = MemStorage::new();
        store
            .add_series(
                labels!("__name__" => "m"),
                [vigil_model::Sample::new(0, 2.0)],
            )
            .unwrap();
        let q = EngineQuery::new(Arc::new(Engine::new(EngineOptions::default())), &store);
        let s = q.query(&vigil_promql::parse("1 + 1").unwrap(), 0).unwrap();
        assert_eq!(s.len(), 1);
        assert!(s[0].labels.is_empty());
        assert_eq!(s[0].v, 2.0);
        let e = q
            .query(&vigil_promql::parse("m[1m]").unwrap(), 0)
            .unwrap_err();
        assert!(
            matches!(e, RuleQueryError::NotInstant("range vector")),
            "{e}"
        );
        let e = q
            .query(&vigil_promql::parse("\"x\"").unwrap(), 0)
            .unwrap_err();
        assert!(matches!(e, RuleQueryError::NotInstant("string")), "{e}");
    }
}
