//! Rule groups built in code rather than read from YAML.
//!
//! A builder produces the same [`GroupDef`] a rule file would, and
//! [`GroupBuilder::build`] runs the same checks `promtool check rules`
//! runs on files (expression syntax, names, templates), so a group built
//! in code behaves exactly like its YAML twin.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use crate::file::{check, Duration, ExprText, GroupDef, RuleDef, RuleFile, RuleFileError};
use crate::group::Group;

/// The evaluation interval of a built group that sets none: Prometheus's
/// default `evaluation_interval`, one minute.
pub const DEFAULT_INTERVAL: StdDuration = StdDuration::from_secs(60);

fn ms(d: StdDuration) -> Duration {
    Duration(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Builds a [`Group`] in code.
///
/// ```
/// use std::time::Duration;
/// use vigil_rules::{AlertBuilder, GroupBuilder};
///
/// let group = GroupBuilder::new("app")
///     .interval(Duration::from_secs(15))
///     .record("job:http_errors:rate5m", "sum by (job) (rate(http_errors_total[5m]))")
///     .rule(
///         AlertBuilder::new("ErrorsHigh", "job:http_errors:rate5m > 1")
///             .for_duration(Duration::from_secs(60))
///             .label("severity", "page")
///             .annotation("summary", "{{ $labels.job }} errs {{ $value }}/s"),
///     )
///     .build()
///     .unwrap();
/// assert_eq!(group.interval, 15_000);
/// assert_eq!(group.rules.len(), 2);
///
/// // The checks of rule files apply.
/// let err = GroupBuilder::new("bad").record("x", "sum(").build().unwrap_err();
/// assert!(err[0].to_string().contains("could not parse expression"), "{}", err[0]);
/// ```
#[derive(Debug, Clone)]
pub struct GroupBuilder {
    def: GroupDef,
    file: PathBuf,
}

impl GroupBuilder {
    /// A group named `name` with no rules, evaluated every minute.
    pub fn new(name: impl Into<String>) -> Self {
        GroupBuilder {
            def: GroupDef {
                name: name.into(),
                interval: None,
                limit: 0,
                query_offset: None,
                labels: BTreeMap::new(),
                rules: Vec::new(),
            },
            file: PathBuf::new(),
        }
    }

    /// How often the group is evaluated (a zero interval is refused by
    /// [`build`](Self::build)). Millisecond precision.
    pub fn interval(mut self, every: StdDuration) -> Self {
        self.def.interval = Some(ms(every));
        self
    }

    /// How far in the past the group's queries look (Prometheus's
    /// `query_offset`).
    pub fn query_offset(mut self, offset: StdDuration) -> Self {
        self.def.query_offset = Some(ms(offset));
        self
    }

    /// The most series a recording rule, or alerts an alerting rule, may
    /// produce in one evaluation; 0 (the default) means no limit.
    pub fn limit(mut self, limit: u64) -> Self {
        self.def.limit = limit;
        self
    }

    /// A label added to every rule's results (a rule's own label of the
    /// same name wins).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.def.labels.insert(name.into(), value.into());
        self
    }

    /// The source the group is said to come from: empty by default. With
    /// the name it identifies the group (replacing a group in a
    /// [`RuleEngine`](crate::RuleEngine), the file of its persisted alert
    /// state, its evaluation offset under a
    /// [`RuleManager`](crate::RuleManager)), and it is shown as the group's
    /// `file` by the rules API.
    pub fn source(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = file.into();
        self
    }

    /// Adds a recording rule writing `expr` as the series `name`.
    pub fn record(self, name: impl Into<String>, expr: impl Into<String>) -> Self {
        self.rule(RecordBuilder::new(name, expr))
    }

    /// Adds a rule: a [`RecordBuilder`], an [`AlertBuilder`] or a
    /// [`RuleDef`] as a rule file spells it.
    pub fn rule(mut self, rule: impl Into<RuleDef>) -> Self {
        self.def.rules.push(rule.into());
        self
    }

    /// The definition, as a rule file would hold it.
    pub fn def(&self) -> &GroupDef {
        &self.def
    }

    /// Checks the group as a rule file's group is checked, and builds it.
    /// Every problem found is returned.
    pub fn build(self) -> Result<Group, Vec<RuleFileError>> {
        let file = RuleFile {
            groups: vec![self.def],
        };
        let errors = check(&file, &self.file);
        if !errors.is_empty() {
            return Err(errors);
        }
        let def = &file.groups[0];
        Group::new(def, &self.file, ms(DEFAULT_INTERVAL).0).map_err(|reason| {
            vec![RuleFileError {
                file: self.file.clone(),
                group: Some(def.name.clone()),
                rule: None,
                line: None,
                reason,
            }]
        })
    }
}

/// A recording rule for [`GroupBuilder::rule`].
#[derive(Debug, Clone)]
pub struct RecordBuilder(RuleDef);

impl RecordBuilder {
    /// A rule writing the result of `expr` as the series `name`.
    pub fn new(name: impl Into<String>, expr: impl Into<String>) -> Self {
        RecordBuilder(RuleDef {
            record: Some(name.into()),
            alert: None,
            expr: ExprText(expr.into()),
            for_: None,
            keep_firing_for: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        })
    }

    /// A label set on every series written.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.labels.insert(name.into(), value.into());
        self
    }
}

impl From<RecordBuilder> for RuleDef {
    fn from(b: RecordBuilder) -> RuleDef {
        b.0
    }
}

/// An alerting rule for [`GroupBuilder::rule`].
#[derive(Debug, Clone)]
pub struct AlertBuilder(RuleDef);

impl AlertBuilder {
    /// An alert named `name`, active for every series `expr` returns.
    pub fn new(name: impl Into<String>, expr: impl Into<String>) -> Self {
        AlertBuilder(RuleDef {
            record: None,
            alert: Some(name.into()),
            expr: ExprText(expr.into()),
            for_: None,
            keep_firing_for: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        })
    }

    /// How long an alert stays pending before it fires (`for`).
    pub fn for_duration(mut self, hold: StdDuration) -> Self {
        self.0.for_ = Some(ms(hold));
        self
    }

    /// How long an alert keeps firing after the expression stops returning
    /// it (`keep_firing_for`).
    pub fn keep_firing_for(mut self, keep: StdDuration) -> Self {
        self.0.keep_firing_for = Some(ms(keep));
        self
    }

    /// A label added to the alert: a template, as in rule files
    /// (`{{ $labels.instance }}`, `{{ $value }}`).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.labels.insert(name.into(), value.into());
        self
    }

    /// An annotation of the alert: a template, as in rule files.
    pub fn annotation(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.annotations.insert(name.into(), value.into());
        self
    }
}

impl From<AlertBuilder> for RuleDef {
    fn from(b: AlertBuilder) -> RuleDef {
        b.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_groups;
    use std::path::Path;

    #[test]
    fn a_built_group_equals_its_yaml_twin() {
        let built = GroupBuilder::new("g")
            .interval(StdDuration::from_secs(30))
            .query_offset(StdDuration::from_secs(5))
            .limit(10)
            .label("team", "a")
            .source("app.yml")
            .rule(RecordBuilder::new("job:up:sum", "sum by (job) (up)").label("k", "v"))
            .rule(
                AlertBuilder::new("Down", "up == 0")
                    .for_duration(StdDuration::from_secs(300))
                    .keep_firing_for(StdDuration::from_secs(60))
                    .label("severity", "page")
                    .annotation("summary", "{{ $labels.instance }} is down"),
            )
            .build()
            .unwrap();
        let yaml = parse_groups(
            "groups:\n- name: g\n  interval: 30s\n  query_offset: 5s\n  limit: 10\n  labels: {team: a}\n  rules:\n  \
             - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {k: v}\n  \
             - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    \
             labels: {severity: page}\n    annotations:\n      summary: \"{{ $labels.instance }} is down\"\n",
            Path::new("app.yml"),
            60_000,
        )
        .unwrap()
        .remove(0);
        assert_eq!(built.def, yaml.def);
        assert_eq!(built.key(), yaml.key());
        assert_eq!(built.interval, 30_000);
        assert_eq!(built.query_offset, 5_000);
    }

    #[test]
    fn built_groups_are_checked_like_files() {
        let e = GroupBuilder::new("g")
            .interval(StdDuration::ZERO)
            .record("", "up")
            .rule(AlertBuilder::new("A", "up").annotation("s", "{{ .Foo "))
            .build()
            .unwrap_err();
        let msgs: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs.iter()
                .any(|m| m == "group \"g\": interval must be greater than 0"),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("rule #1: field 'record' must be set")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("rule #2 (A): annotation \"s\": template")),
            "{msgs:?}"
        );
        let e = GroupBuilder::new("").build().unwrap_err();
        assert!(e[0].to_string().contains("group name must not be empty"));
    }
}
