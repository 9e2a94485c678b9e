//! Rule files in Prometheus's YAML format, read and checked as promtool
//! checks them: every error names the file, the group, the rule and the
//! reason.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;
use vigil_model::labels::{is_valid_label_name, is_valid_metric_name};
use vigil_model::ValidationScheme;

use crate::template::Template;

/// Where in a rule file an error is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct RuleFileError {
    /// The file.
    pub file: PathBuf,
    /// The group, when the error is inside one.
    pub group: Option<String>,
    /// The rule (its `alert` or `record` name, or its 1-based index), when
    /// the error is about one.
    pub rule: Option<String>,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl RuleFileError {
    fn describe(&self) -> String {
        // Groups built in code may have no file: the message then starts
        // with the group.
        let mut s = self.file.display().to_string();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
        }
        if let Some(g) = &self.group {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&format!("group {g:?}"));
        }
        if let Some(r) = &self.rule {
            s.push_str(&format!(", rule {r}"));
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&self.reason);
        s
    }
}

/// A duration in Prometheus's syntax, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Duration(pub i64);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        vigil_model::parse_duration(&s)
            .map(Duration)
            .map_err(de::Error::custom)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&vigil_model::format_duration(self.0))
    }
}

/// A rule file as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The groups.
    #[serde(default)]
    pub groups: Vec<GroupDef>,
}

/// A rule group as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    /// The group's name, unique in its file.
    pub name: String,
    /// How often the group is evaluated; the global `evaluation_interval`
    /// when absent.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// The most series a recording rule, or alerts an alerting rule, may
    /// produce (0: no limit).
    #[serde(default)]
    pub limit: u64,
    /// How far in the past the group's queries look.
    #[serde(default)]
    pub query_offset: Option<Duration>,
    /// Labels added to every rule's results; a rule's own labels win.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The rules, evaluated in order.
    #[serde(default)]
    pub rules: Vec<RuleDef>,
}

/// A rule as written: recording (`record`) or alerting (`alert`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// The name of the series a recording rule writes.
    #[serde(default)]
    pub record: Option<String>,
    /// The name of the alert.
    #[serde(default)]
    pub alert: Option<String>,
    /// The PromQL expression.
    pub expr: ExprText,
    /// How long an alert stays pending before it fires.
    #[serde(default, rename = "for")]
    pub for_: Option<Duration>,
    /// How long an alert keeps firing after its expression stops
    /// returning it.
    #[serde(default)]
    pub keep_firing_for: Option<Duration>,
    /// Labels added to the results (templates for alerting rules).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (templates), alerting rules only.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An expression: YAML allows a string or, as Prometheus accepts, a number.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprText(pub String);

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml_ng::Value::deserialize(d)?;
        match v {
            serde_yaml_ng::Value::String(s) => Ok(ExprText(s)),
            serde_yaml_ng::Value::Number(n) => Ok(ExprText(n.to_string())),
            serde_yaml_ng::Value::Bool(b) => Ok(ExprText(b.to_string())),
            _ => Err(de::Error::custom("expr must be a string")),
        }
    }
}

impl RuleDef {
    /// `alert` or `record` name, for messages.
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or("")
    }
}

/// Parses and checks a rule file's text. Every problem found is returned,
/// not just the first, as promtool reports them.
pub fn parse_rule_file(text: &str, file: &Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let parsed: RuleFile = if text.trim().is_empty() {
        RuleFile::default()
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let reason = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            vec![RuleFileError {
                file: file.to_path_buf(),
                group: None,
                rule: None,
                line: e.location().map(|l| l.line()),
                reason,
            }]
        })?
    };
    let errors = check(&parsed, file);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// Reads and checks a rule file.
pub fn load_rule_file(file: &Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![RuleFileError {
            file: file.to_path_buf(),
            group: None,
            rule: None,
            line: None,
            reason: format!("cannot read: {e}"),
        }]
    })?;
    parse_rule_file(&text, file)
}

pub(crate) fn check(f: &RuleFile, file: &Path) -> Vec<RuleFileError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for g in &f.groups {
        let err = |rule: Option<String>, reason: String| RuleFileError {
            file: file.to_path_buf(),
            group: Some(g.name.clone()),
            rule,
            line: None,
            reason,
        };
        if g.name.is_empty() {
            errors.push(err(None, "group name must not be empty".into()));
        }
        if !seen.insert(g.name.as_str()) {
            errors.push(err(
                None,
                format!("groupname: \"{}\" is repeated in the same file", g.name),
            ));
        }
        if let Some(i) = g.interval {
            if i.0 <= 0 {
                errors.push(err(None, "interval must be greater than 0".into()));
            }
        }
        for name in g.labels.keys() {
            if !is_valid_label_name(name, ValidationScheme::Utf8) || name == "__name__" {
                errors.push(err(None, format!("invalid group label name: {name}")));
            }
        }
        for (i, r) in g.rules.iter().enumerate() {
            let rule_id = if r.name().is_empty() {
                format!("#{}", i + 1)
            } else {
                format!("#{} ({})", i + 1, r.name())
            };
            for reason in check_rule(r) {
                errors.push(err(Some(rule_id.clone()), reason));
            }
        }
    }
    errors
}

/// The problems of one rule, as promtool words them.
fn check_rule(r: &RuleDef) -> Vec<String> {
    let mut out = Vec::new();
    match (&r.record, &r.alert) {
        (Some(_), Some(_)) => out.push("only one of 'record' and 'alert' must be set".into()),
        (None, None) => out.push("one of 'record' or 'alert' must be set".into()),
        _ => {}
    }
    if r.expr.0.trim().is_empty() {
        out.push("field 'expr' must be set in rule".into());
    } else if let Err(e) = vigil_promql::parse(&r.expr.0) {
        out.push(format!("could not parse expression: {e}"));
    }
    if let Some(rec) = &r.record {
        if rec.is_empty() {
            out.push("field 'record' must be set in rule".into());
        } else if !is_valid_metric_name(rec, ValidationScheme::Utf8) {
            out.push(format!("invalid recording rule name: {rec}"));
        }
        if !r.annotations.is_empty() {
            out.push("invalid field 'annotations' in recording rule".into());
        }
        if r.for_.is_some() {
            out.push("invalid field 'for' in recording rule".into());
        }
        if r.keep_firing_for.is_some() {
            out.push("invalid field 'keep_firing_for' in recording rule".into());
        }
    }
    if let Some(a) = &r.alert {
        if a.is_empty() {
            out.push("field 'alert' must be set in rule".into());
        }
    }
    for (name, value) in &r.labels {
        if !is_valid_label_name(name, ValidationScheme::Utf8) || name == "__name__" {
            out.push(format!("invalid label name: {name}"));
        }
        if r.alert.is_some() {
            if let Err(e) = Template::parse_alert(&format!("__alert_label_{name}"), value) {
                out.push(format!("label {name:?}: template: {e}"));
            }
        }
    }
    for (name, value) in &r.annotations {
        if !is_valid_label_name(name, ValidationScheme::Utf8) {
            out.push(format!("invalid annotation name: {name}"));
        }
        if let Err(e) = Template::parse_alert(&format!("__alert_annotation_{name}"), value) {
            out.push(format!("annotation {name:?}: template: {e}"));
        }
    }
    out
}

/// Expands `rule_files` globs, relative to the configuration file's
/// directory, into a sorted list of files. A pattern that matches nothing
/// is not an error, as in Prometheus.
pub fn expand_globs(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        out.extend(glob(&full).map_err(|e| format!("rule_files: {p:?}: {e}"))?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A small glob: `*`, `?` and `[...]` in the last path component only
/// (as in the common `rules/*.yml`), literal directories before it.
fn glob(path: &Path) -> Result<Vec<PathBuf>, String> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err("not a file pattern".into());
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir_text = dir.to_string_lossy();
    if dir_text.contains(['*', '?', '[']) {
        return Err("wildcards are only supported in the file name".into());
    }
    if !name.contains(['*', '?', '[']) {
        return Ok(if path.exists() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let re = glob_regex(name)?;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let n = e.file_name();
        if let Some(n) = n.to_str() {
            if re.is_match(n) && e.path().is_file() {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}

fn glob_regex(pat: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("^");
    let mut chars = pat.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'^') || chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' {
                        re.push_str("\\\\");
                    } else {
                        re.push(c);
                    }
                }
                if !closed {
                    return Err(format!("unterminated [ in {pat:?}"));
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<String> {
        match parse_rule_file(text, Path::new("r.yml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_file_parses() {
        let f = parse_rule_file(
            "groups:\n- name: g\n  interval: 30s\n  labels: {team: a}\n  rules:\n  \
             - record: job:up:sum\n    expr: sum by (job) (up)\n  \
             - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    \
             labels: {severity: page}\n    annotations:\n      summary: \"{{ $labels.instance }} is down\"\n",
            Path::new("r.yml"),
        )
        .unwrap();
        assert_eq!(f.groups.len(), 1);
        let g = &f.groups[0];
        assert_eq!(g.interval, Some(Duration(30_000)));
        assert_eq!(g.rules[1].for_, Some(Duration(300_000)));
        assert_eq!(g.rules[1].keep_firing_for, Some(Duration(60_000)));
    }

    #[test]
    fn every_error_names_file_group_rule_and_reason() {
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(\n  \
             - alert: A\n    expr: up\n    labels: {\"0bad\": x}\n    annotations: {s: \"{{ .Foo \"}\n\
             - name: g\n  rules: []\n",
        );
        assert!(
            e.iter()
                .any(|m| m
                    .starts_with("r.yml: group \"g\", rule #1 (x): could not parse expression")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("rule #2 (A): annotation \"s\": template")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("groupname: \"g\" is repeated")),
            "{e:?}"
        );
        let e = errs("groups:\n- name: g\n  rules:\n  - record: a\n    alert: b\n    expr: up\n");
        assert!(e[0].contains("only one of 'record' and 'alert'"), "{e:?}");
        let e = errs("groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    for: 1m\n");
        assert!(
            e[0].contains("invalid field 'for' in recording rule"),
            "{e:?}"
        );
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    labels: {__name__: x}\n",
        );
        assert!(e[0].contains("invalid label name: __name__"), "{e:?}");
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = errs("groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    fro: 5m\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("r.yml:6: "), "{e:?}");
        assert!(e[0].contains("fro"), "{e:?}");
    }

    #[test]
    fn globs_expand_in_the_file_name() {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.yml", "b.yml", "c.yaml", "x.txt"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let got = expand_globs(
            &["*.yml".into(), "c.yaml".into(), "none/*.yml".into()],
            d.path(),
        )
        .unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.yml", "b.yml", "c.yaml"]);
        assert!(expand_globs(&["*/x.yml".into()], d.path()).is_err());
    }
}
