//! Recording and alerting rules, ready to evaluate: parsed expressions,
//! parsed templates, and the per-rule health that `/api/v1/rules` shows.

use std::collections::BTreeMap;

use promql_parser::parser::Expr;
use vigil_model::{Labels, LabelsBuilder};
use vigil_promql::Sample;

use crate::alert::{self, Alert, AlertState};
use crate::file::RuleDef;
use crate::query::QueryFunc;
use crate::template::{QueryFn, QuerySample, RenderOptions, Template, TemplateData};

/// The health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed.
    Err,
}

impl Health {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// What every rule records about its last evaluation.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    /// Health.
    pub health: Health,
    /// The error of the last evaluation.
    pub last_error: Option<String>,
    /// When it last ran (ms), if it did.
    pub last_evaluation: Option<i64>,
    /// How long it took, in seconds.
    pub evaluation_seconds: f64,
}

impl Default for RuleStatus {
    fn default() -> Self {
        RuleStatus {
            health: Health::Unknown,
            last_error: None,
            last_evaluation: None,
            evaluation_seconds: 0.0,
        }
    }
}

/// A recording rule.
#[derive(Debug, Clone)]
pub struct RecordingRule {
    /// The series name written.
    pub name: String,
    /// The expression.
    pub expr: Expr,
    /// Labels added (group labels merged in, the rule's winning).
    pub labels: Labels,
    /// Evaluation status.
    pub status: RuleStatus,
}

/// An alerting rule and its alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The alert name.
    pub name: String,
    /// The expression.
    pub expr: Expr,
    /// `for`, in ms.
    pub hold: i64,
    /// `keep_firing_for`, in ms.
    pub keep_firing_for: i64,
    /// Label templates (group labels merged in, the rule's winning).
    pub labels: Vec<(String, String, Template)>,
    /// Annotation templates.
    pub annotations: Vec<(String, String, Template)>,
    /// The alert instances, by label set.
    pub active: BTreeMap<Labels, Alert>,
    /// Evaluation status.
    pub status: RuleStatus,
}

/// A rule of either kind.
#[derive(Debug, Clone)]
pub enum Rule {
    /// A recording rule.
    Recording(RecordingRule),
    /// An alerting rule.
    Alerting(AlertingRule),
}

impl Rule {
    /// Builds a rule from its definition; `group_labels` are added under
    /// the rule's own labels. The definition must have passed the file
    /// checks; anything still wrong is returned as an error.
    pub fn from_def(
        def: &RuleDef,
        group_labels: &BTreeMap<String, String>,
    ) -> Result<Rule, String> {
        let expr = vigil_promql::parse(&def.expr.0).map_err(|e| e.to_string())?;
        let mut labels: BTreeMap<String, String> = group_labels.clone();
        labels.extend(def.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(name) = &def.record {
            return Ok(Rule::Recording(RecordingRule {
                name: name.clone(),
                expr,
                labels: Labels::from_pairs(labels),
                status: RuleStatus::default(),
            }));
        }
        let name = def.alert.clone().unwrap_or_default();
        let tmpl = |kind: &str, m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| {
                    Template::parse_alert(&format!("__alert_{name}"), v)
                        .map(|t| (k.clone(), v.clone(), t))
                        .map_err(|e| format!("{kind} {k:?}: {e}"))
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(Rule::Alerting(AlertingRule {
            hold: def.for_.map_or(0, |d| d.0),
            keep_firing_for: def.keep_firing_for.map_or(0, |d| d.0),
            labels: tmpl("label", &labels)?,
            annotations: tmpl("annotation", &def.annotations)?,
            name,
            expr,
            active: BTreeMap::new(),
            status: RuleStatus::default(),
        }))
    }

    /// The rule's name (`record` or `alert`).
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    /// The expression.
    pub fn expr(&self) -> &Expr {
        match self {
            Rule::Recording(r) => &r.expr,
            Rule::Alerting(r) => &r.expr,
        }
    }

    /// The status of the last evaluation.
    pub fn status(&self) -> &RuleStatus {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(r) => &r.status,
        }
    }

    pub(crate) fn status_mut(&mut self) -> &mut RuleStatus {
        match self {
            Rule::Recording(r) => &mut r.status,
            Rule::Alerting(r) => &mut r.status,
        }
    }
}

/// What an evaluation needs besides the rule.
pub struct EvalEnv<'a> {
    /// The query function.
    pub query: &'a dyn QueryFunc,
    /// `global.external_labels`, for templates.
    pub external_labels: &'a Labels,
    /// The external URL, for templates and generator URLs.
    pub external_url: &'a str,
    /// The group's `limit` (0: none).
    pub limit: u64,
}

impl std::fmt::Debug for EvalEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalEnv")
            .field("external_labels", self.external_labels)
            .field("external_url", &self.external_url)
            .field("limit", &self.limit)
            .finish()
    }
}

/// The query function seen by templates (`query "..."`): a string parsed
/// and run at the evaluation time.
struct TemplateQuery<'a> {
    query: &'a dyn QueryFunc,
    t: i64,
}

impl QueryFn for TemplateQuery<'_> {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        let e = vigil_promql::parse(expr).map_err(|e| e.to_string())?;
        let v = self.query.query(&e, self.t).map_err(|e| e.to_string())?;
        Ok(v.into_iter()
            .map(|s| QuerySample {
                labels: s.labels,
                value: s.v,
            })
            .collect())
    }
}

impl RecordingRule {
    /// Evaluates the rule at `t` (the query time: evaluation time minus the
    /// group's query offset): the series to store, named and labelled.
    pub fn eval(&self, t: i64, env: &EvalEnv<'_>) -> Result<Vec<Sample>, String> {
        let res = env.query.query(&self.expr, t).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(res.len());
        let mut seen = std::collections::HashSet::with_capacity(res.len());
        for s in res {
            let mut b = LabelsBuilder::from_labels(&s.labels);
            b.set("__name__", &self.name);
            for l in self.labels.iter() {
                b.set(l.name, l.value);
            }
            let labels = b.build();
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
            out.push(Sample { labels, t, v: s.v });
        }
        if env.limit > 0 && out.len() as u64 > env.limit {
            return Err(format!(
                "exceeded limit of {} with {} series",
                env.limit,
                out.len()
            ));
        }
        Ok(out)
    }
}

impl AlertingRule {
    /// Evaluates the rule at `t` (query time) with `ts` the evaluation
    /// time, moves its alerts, and returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples to store (at `t`).
    pub fn eval(&mut self, ts: i64, t: i64, env: &EvalEnv<'_>) -> Result<Vec<Sample>, String> {
        let res = env.query.query(&self.expr, t).map_err(|e| e.to_string())?;
        let tq = TemplateQuery {
            query: env.query,
            t: ts,
        };
        let mut found = Vec::with_capacity(res.len());
        let mut seen = std::collections::HashSet::with_capacity(res.len());
        for s in res {
            let data = TemplateData {
                labels: &s.labels.without_metric_name(),
                value: s.v,
                external_labels: env.external_labels,
                external_url: env.external_url,
            };
            let opts = RenderOptions {
                now: Some(ts as f64 / 1000.0),
                ..RenderOptions::default()
            };
            let expand = |t: &Template| match t.render_with(&data, &tq, &opts) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(alert = %self.name, error = %e, "expanding alert template failed");
                    format!("<error expanding template: {e}>")
                }
            };
            let mut b = LabelsBuilder::from_labels(&s.labels);
            b.del("__name__");
            for (name, _, tmpl) in &self.labels {
                b.set(name, &expand(tmpl));
            }
            b.set("alertname", &self.name);
            let labels = b.build();
            let annotations: BTreeMap<String, String> = self
                .annotations
                .iter()
                .map(|(k, _, tmpl)| (k.clone(), expand(tmpl)))
                .collect();
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            found.push((labels, annotations, s.v));
        }
        let tr = alert::step(&mut self.active, found, ts, self.hold, self.keep_firing_for);
        if env.limit > 0 && tr.active_or_pending as u64 > env.limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {} with {} alerts",
                env.limit, tr.active_or_pending
            ));
        }
        let mut out = Vec::new();
        for a in self.active.values() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let mut b = LabelsBuilder::from_labels(&a.labels);
            b.set("__name__", "ALERTS");
            b.set("alertstate", a.state.as_str());
            out.push(Sample {
                labels: b.build(),
                t,
                v: 1.0,
            });
            let mut b = LabelsBuilder::from_labels(&a.labels);
            b.set("__name__", "ALERTS_FOR_STATE");
            out.push(Sample {
                labels: b.build(),
                t,
                v: (a.active_at / 1000) as f64,
            });
        }
        Ok(out)
    }

    /// The rule's overall state: the highest of its alerts'.
    pub fn state(&self) -> Option<AlertState> {
        self.status.last_evaluation?;
        Some(
            self.active
                .values()
                .map(|a| a.state)
                .max()
                .unwrap_or(AlertState::Inactive),
        )
    }
}
