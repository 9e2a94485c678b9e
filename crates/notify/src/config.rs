//! The notifier's configuration: Alertmanager's `alertmanager.yml` schema
//! (`global`, `route`, `receivers`, `inhibit_rules`, `time_intervals`,
//! `mute_time_intervals`, `templates`) plus vigil's `escalations`.
//!
//! Deserialization parses and checks each piece locally (durations,
//! matchers, time intervals, `group_by`); [`Config::validate`] checks what
//! spans pieces, with Alertmanager's messages where it has one.
//!
//! ```yaml
//! route:
//!   receiver: devops-slack
//!   group_by: [alertname]
//!   routes:
//!     - matchers: ['severity="critical"']
//!       escalation: paging
//! escalations:
//!   - name: paging
//!     levels:
//!       - { receivers: [devops-sms], timeout: 15m }
//!       - { receivers: [lead-sms], timeout: 30m }
//!       - { receivers: [cto-sms], timeout: 1h }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::matcher::{MatchType, Matcher, MatcherParseError, Matchers};
use crate::receivers::ReceiverConfig;
use crate::timeinterval::NamedTimeInterval;

/// A duration in Prometheus's syntax (`1h30m`, `5m`, `30s`, `1d`, `1w`,
/// `1y`, `250ms`), held in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub i64);

impl PromDuration {
    /// From minutes.
    pub const fn minutes(m: i64) -> PromDuration {
        PromDuration(m * 60_000)
    }
    /// From seconds.
    pub const fn seconds(s: i64) -> PromDuration {
        PromDuration(s * 1000)
    }
    /// Milliseconds.
    pub const fn ms(self) -> i64 {
        self.0
    }

    /// Parses Prometheus's duration syntax; units in descending order,
    /// each at most once.
    pub fn parse(s: &str) -> Result<PromDuration, String> {
        let bad = || format!("not a valid duration string: {s:?}");
        if s == "0" {
            return Ok(PromDuration(0));
        }
        if s.is_empty() {
            return Err(bad());
        }
        const UNITS: [(&str, i64); 8] = [
            ("y", 365 * 86_400_000),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
            ("", 0),
        ];
        let b = s.as_bytes();
        let mut i = 0;
        let mut total: i64 = 0;
        let mut last_unit = 0usize;
        while i < b.len() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(bad());
            }
            let n: i64 = s[start..i].parse().map_err(|_| bad())?;
            let ustart = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit = &s[ustart..i];
            let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit && !u.is_empty()) else {
                return Err(bad());
            };
            if pos < last_unit || (pos == last_unit && total > 0) {
                return Err(bad());
            }
            last_unit = pos;
            total = n
                .checked_mul(UNITS[pos].1)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        Ok(PromDuration(total))
    }
}

impl fmt::Display for PromDuration {
    /// Prometheus's canonical form (`1h30m`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms < 0 {
            f.write_str("-")?;
            ms = ms.saturating_neg();
        }
        for (unit, size) in [
            ("y", 365 * 86_400_000i64),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The `global` section. vigil reads `resolve_timeout`; the other keys
/// are Alertmanager's defaults for receivers (`smtp_*` for email,
/// `slack_api_url` for Slack, `http_config` for every HTTP receiver) and
/// are read by [`crate::receivers`]. Keys for integrations vigil does not
/// have (PagerDuty, OpsGenie, ...) are accepted so an existing
/// `alertmanager.yml` loads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct GlobalConfig {
    /// When an alert received without `endsAt` is considered resolved if
    /// not received again (default 5m).
    pub resolve_timeout: PromDuration,
    /// Default HTTP client settings (Prometheus's `http_config`), kept as
    /// a tree for the receivers to interpret.
    pub http_config: Option<serde_json::Value>,
    pub smtp_from: Option<String>,
    /// Default `localhost`.
    pub smtp_hello: String,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_auth_password_file: Option<String>,
    pub smtp_auth_secret: Option<String>,
    pub smtp_auth_secret_file: Option<String>,
    pub smtp_auth_identity: Option<String>,
    /// Default true.
    pub smtp_require_tls: bool,
    pub smtp_tls_config: Option<serde_json::Value>,
    pub slack_api_url: Option<String>,
    pub slack_api_url_file: Option<String>,
    pub pagerduty_url: Option<String>,
    pub opsgenie_api_url: Option<String>,
    pub opsgenie_api_key: Option<String>,
    pub opsgenie_api_key_file: Option<String>,
    pub wechat_api_url: Option<String>,
    pub wechat_api_secret: Option<String>,
    pub wechat_api_corp_id: Option<String>,
    pub victorops_api_url: Option<String>,
    pub victorops_api_key: Option<String>,
    pub victorops_api_key_file: Option<String>,
    pub telegram_api_url: Option<String>,
    pub webex_api_url: Option<String>,
    pub jira_api_url: Option<String>,
    pub rocketchat_api_url: Option<String>,
    pub rocketchat_token: Option<String>,
    pub rocketchat_token_file: Option<String>,
    pub rocketchat_token_id: Option<String>,
    pub rocketchat_token_id_file: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: PromDuration::minutes(5),
            http_config: None,
            smtp_from: None,
            smtp_hello: "localhost".into(),
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_auth_secret: None,
            smtp_auth_secret_file: None,
            smtp_auth_identity: None,
            smtp_require_tls: true,
            smtp_tls_config: None,
            slack_api_url: None,
            slack_api_url_file: None,
            pagerduty_url: None,
            opsgenie_api_url: None,
            opsgenie_api_key: None,
            opsgenie_api_key_file: None,
            wechat_api_url: None,
            wechat_api_secret: None,
            wechat_api_corp_id: None,
            victorops_api_url: None,
            victorops_api_key: None,
            victorops_api_key_file: None,
            telegram_api_url: None,
            webex_api_url: None,
            jira_api_url: None,
            rocketchat_api_url: None,
            rocketchat_token: None,
            rocketchat_token_file: None,
            rocketchat_token_id: None,
            rocketchat_token_id_file: None,
        }
    }
}

impl GlobalConfig {
    /// Joins the relative paths of the section (every `*_file`, and those
    /// in `http_config` and `smtp_tls_config`) onto `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for f in [
            &mut self.smtp_auth_password_file,
            &mut self.smtp_auth_secret_file,
            &mut self.slack_api_url_file,
            &mut self.opsgenie_api_key_file,
            &mut self.victorops_api_key_file,
            &mut self.rocketchat_token_file,
            &mut self.rocketchat_token_id_file,
        ] {
            resolve_path(base, f);
        }
        for tree in [&mut self.http_config, &mut self.smtp_tls_config]
            .into_iter()
            .flatten()
        {
            resolve_tree_paths(base, tree);
        }
    }
}

/// A configuration field holding a path (or paths), for [`resolve_path`].
pub(crate) trait PathField {
    /// Joins the path(s) onto `base` when relative.
    fn join_onto(&mut self, base: &Path);
}

impl PathField for PathBuf {
    fn join_onto(&mut self, base: &Path) {
        if self.is_relative() && !self.as_os_str().is_empty() {
            *self = base.join(&*self);
        }
    }
}

impl PathField for String {
    fn join_onto(&mut self, base: &Path) {
        if Path::new(self.as_str()).is_relative() && !self.is_empty() {
            *self = base.join(self.as_str()).to_string_lossy().into_owned();
        }
    }
}

impl<T: PathField> PathField for Option<T> {
    fn join_onto(&mut self, base: &Path) {
        if let Some(p) = self {
            p.join_onto(base);
        }
    }
}

impl<T: PathField> PathField for Vec<T> {
    fn join_onto(&mut self, base: &Path) {
        for p in self {
            p.join_onto(base);
        }
    }
}

/// Makes a relative path absolute against `base`, the directory of the
/// file it was read from, as Alertmanager's `JoinDir` does; absolute and
/// empty paths stay as they are.
pub(crate) fn resolve_path(base: &Path, field: &mut impl PathField) {
    field.join_onto(base);
}

/// Resolves, in a configuration kept as a tree (`global.http_config`),
/// every string under a key ending in `_file`: in Prometheus's HTTP client
/// configuration those are all paths.
fn resolve_tree_paths(base: &Path, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                match v {
                    serde_json::Value::String(s) if k.ends_with("_file") => resolve_path(base, s),
                    _ => resolve_tree_paths(base, v),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| resolve_tree_paths(base, v)),
        _ => {}
    }
}

/// `group_by`: label names, or `...` for every label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// Group by these labels (none: one group for the route).
    Labels(Vec<String>),
    /// `...`: every alert is its own group.
    All,
}

impl<'de> Deserialize<'de> for GroupBy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        let all = v.iter().any(|s| s == "...");
        if all {
            if v.len() > 1 {
                return Err(serde::de::Error::custom(
                    "cannot have wildcard group_by (`...`) and other labels at the same time",
                ));
            }
            return Ok(GroupBy::All);
        }
        let mut seen = HashSet::new();
        for l in &v {
            if l.is_empty() {
                return Err(serde::de::Error::custom(format!(
                    "invalid label name {l:?} in group_by list"
                )));
            }
            if !seen.insert(l.as_str()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicated label {l:?} in group_by"
                )));
            }
        }
        Ok(GroupBy::Labels(v))
    }
}

/// A regex for the deprecated `match_re` / `source_match_re` keys, checked
/// when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexString(pub String);

impl<'de> Deserialize<'de> for RegexString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::new("x", MatchType::Regexp, s.clone()).map_err(serde::de::Error::custom)?;
        Ok(RegexString(s))
    }
}

/// A route of the routing tree.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The receiver; inherited from the parent when absent.
    #[serde(default)]
    pub receiver: Option<String>,
    /// Grouping labels; inherited when absent.
    #[serde(default)]
    pub group_by: Option<GroupBy>,
    /// Deprecated equality matchers.
    #[serde(default, rename = "match")]
    pub match_: BTreeMap<String, String>,
    /// Deprecated regex matchers.
    #[serde(default)]
    pub match_re: BTreeMap<String, RegexString>,
    /// Matchers.
    #[serde(default)]
    pub matchers: Matchers,
    /// Time intervals during which the route is muted (not inherited).
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Time intervals outside which the route is muted (not inherited).
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// Whether matching continues with the next sibling.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Child routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Initial wait; default 30s, inherited.
    #[serde(default)]
    pub group_wait: Option<PromDuration>,
    /// Wait between notifications about changes; default 5m, inherited.
    #[serde(default)]
    pub group_interval: Option<PromDuration>,
    /// Wait before re-sending an unchanged notification; default 4h, inherited.
    #[serde(default)]
    pub repeat_interval: Option<PromDuration>,
    /// vigil: the escalation policy of the route's groups; inherited.
    #[serde(default)]
    pub escalation: Option<String>,
}

impl RouteConfig {
    /// All matchers of the route: `match`, `match_re`, then `matchers`,
    /// sorted as Alertmanager sorts them.
    pub fn all_matchers(&self) -> Result<Matchers, MatcherParseError> {
        let mut out = Vec::new();
        for (k, v) in &self.match_ {
            out.push(Matcher::new(k.clone(), MatchType::Equal, v.clone())?);
        }
        for (k, v) in &self.match_re {
            out.push(Matcher::new(k.clone(), MatchType::Regexp, v.0.clone())?);
        }
        out.extend(self.matchers.0.iter().cloned());
        let mut m = Matchers(out);
        m.sort();
        Ok(m)
    }
}

/// An inhibition rule.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// An optional name.
    #[serde(default)]
    pub name: Option<String>,
    /// Deprecated.
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    /// Deprecated.
    #[serde(default)]
    pub source_match_re: BTreeMap<String, RegexString>,
    /// What the inhibiting alert matches.
    #[serde(default)]
    pub source_matchers: Matchers,
    /// Deprecated.
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    /// Deprecated.
    #[serde(default)]
    pub target_match_re: BTreeMap<String, RegexString>,
    /// What the inhibited alert matches.
    #[serde(default)]
    pub target_matchers: Matchers,
    /// Labels whose values must be equal in source and target.
    #[serde(default)]
    pub equal: Vec<String>,
}

/// One level of an escalation policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationLevelConfig {
    /// Receivers notified at this level.
    pub receivers: Vec<String>,
    /// How long the level waits for an acknowledgement before the next
    /// level is notified.
    pub timeout: PromDuration,
}

/// A named escalation policy (vigil's).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicyConfig {
    /// The name routes refer to with `escalation:`.
    pub name: String,
    /// The levels, first notified first.
    pub levels: Vec<EscalationLevelConfig>,
}

/// The notifier's configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Global settings.
    #[serde(default)]
    pub global: GlobalConfig,
    /// The root route.
    #[serde(default)]
    pub route: Option<RouteConfig>,
    /// The receivers.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Deprecated name of `time_intervals`.
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    /// Named time intervals.
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeInterval>,
    /// Template file globs.
    #[serde(default)]
    pub templates: Vec<String>,
    /// vigil's escalation policies.
    #[serde(default)]
    pub escalations: Vec<EscalationPolicyConfig>,
}

/// The configuration is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No `route`.
    #[error("no routes provided")]
    NoRoute,
    /// The root route has no receiver.
    #[error("root route must specify a default receiver")]
    RootWithoutReceiver,
    /// The root route has matchers.
    #[error("root route must not have any matchers")]
    RootWithMatchers,
    /// The root route has mute or active time intervals.
    #[error("root route must not have any {0} time intervals")]
    RootWithTimeIntervals(&'static str),
    /// A receiver name is empty.
    #[error("missing name in receiver")]
    ReceiverWithoutName,
    /// Two receivers share a name.
    #[error("notification config name {0:?} is not unique")]
    DuplicateReceiver(String),
    /// A route or escalation level names a receiver that does not exist.
    #[error("undefined receiver {0:?} used in route")]
    UnknownReceiver(String),
    /// Two time intervals share a name.
    #[error("time interval {0:?} is not unique")]
    DuplicateTimeInterval(String),
    /// A route names a time interval that does not exist.
    #[error("undefined time interval {0:?} used in route")]
    UnknownTimeInterval(String),
    /// `group_interval: 0` or `repeat_interval: 0`.
    #[error("{0} cannot be zero")]
    ZeroInterval(&'static str),
    /// A negative duration.
    #[error("{0} cannot be negative")]
    NegativeDuration(&'static str),
    /// An escalation policy problem.
    #[error("escalation {policy:?}: {message}")]
    Escalation {
        /// The policy.
        policy: String,
        /// What is wrong.
        message: String,
    },
    /// A route names an escalation policy that does not exist.
    #[error("undefined escalation {0:?} used in route")]
    UnknownEscalation(String),
    /// A deprecated `match` key is not a valid label name.
    #[error("invalid label name {0:?}")]
    BadLabelName(String),
    /// An inhibit rule's `equal` lists an empty name.
    #[error("inhibit rule: invalid label name {0:?} in equal")]
    BadEqual(String),
    /// A matcher could not be built.
    #[error("bad matcher: {0}")]
    BadMatcher(#[from] MatcherParseError),
    /// A receiver's integrations could not be built.
    #[error("receiver {receiver:?}: {message}")]
    Receiver {
        /// The receiver.
        receiver: String,
        /// What `receivers::build` said.
        message: String,
    },
}

impl Config {
    /// Checks what spans sections, as Alertmanager's `Config.UnmarshalYAML`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for r in &self.receivers {
            if r.name.is_empty() {
                return Err(ConfigError::ReceiverWithoutName);
            }
            if !names.insert(r.name.as_str()) {
                return Err(ConfigError::DuplicateReceiver(r.name.clone()));
            }
        }
        let route = self.route.as_ref().ok_or(ConfigError::NoRoute)?;
        if route.receiver.as_deref().unwrap_or("").is_empty() {
            return Err(ConfigError::RootWithoutReceiver);
        }
        if !route.match_.is_empty() || !route.match_re.is_empty() || !route.matchers.is_empty() {
            return Err(ConfigError::RootWithMatchers);
        }
        if !route.mute_time_intervals.is_empty() {
            return Err(ConfigError::RootWithTimeIntervals("mute"));
        }
        if !route.active_time_intervals.is_empty() {
            return Err(ConfigError::RootWithTimeIntervals("active"));
        }
        let mut ti = HashSet::new();
        for t in self.mute_time_intervals.iter().chain(&self.time_intervals) {
            if !ti.insert(t.name.as_str()) {
                return Err(ConfigError::DuplicateTimeInterval(t.name.clone()));
            }
        }
        let mut esc = HashSet::new();
        for p in &self.escalations {
            let err = |m: &str| ConfigError::Escalation {
                policy: p.name.clone(),
                message: m.to_string(),
            };
            if p.name.is_empty() {
                return Err(err("missing name"));
            }
            if !esc.insert(p.name.as_str()) {
                return Err(err("name is not unique"));
            }
            if p.levels.is_empty() {
                return Err(err("needs at least one level"));
            }
            for (i, l) in p.levels.iter().enumerate() {
                if l.receivers.is_empty() {
                    return Err(err(&format!("level {} has no receivers", i + 1)));
                }
                if l.timeout.0 <= 0 {
                    return Err(err(&format!("level {} needs a positive timeout", i + 1)));
                }
                for r in &l.receivers {
                    if !names.contains(r.as_str()) {
                        return Err(ConfigError::UnknownReceiver(r.clone()));
                    }
                }
            }
        }
        check_route(route, &names, &ti, &esc)?;
        for r in &self.inhibit_rules {
            for l in &r.equal {
                if l.is_empty() {
                    return Err(ConfigError::BadEqual(l.clone()));
                }
            }
        }
        if self.global.resolve_timeout.0 < 0 {
            return Err(ConfigError::NegativeDuration("resolve_timeout"));
        }
        Ok(())
    }

    /// Joins every relative path of the configuration (`templates`, the
    /// `global` and receiver `*_file` keys, CA files) onto `base`, the
    /// directory of the file it was read from, as Alertmanager does; call
    /// it once when loading. Absolute paths stay as they are.
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve_path(base, &mut self.templates);
        self.global.resolve_paths(base);
        for r in &mut self.receivers {
            r.resolve_paths(base);
        }
    }

    /// All named time intervals (`time_intervals` and the deprecated
    /// `mute_time_intervals`).
    pub fn all_time_intervals(&self) -> impl Iterator<Item = &NamedTimeInterval> {
        self.mute_time_intervals.iter().chain(&self.time_intervals)
    }
}

fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

fn check_route(
    r: &RouteConfig,
    receivers: &HashSet<&str>,
    ti: &HashSet<&str>,
    esc: &HashSet<&str>,
) -> Result<(), ConfigError> {
    if let Some(rc) = &r.receiver {
        if !rc.is_empty() && !receivers.contains(rc.as_str()) {
            return Err(ConfigError::UnknownReceiver(rc.clone()));
        }
    }
    for k in r.match_.keys().chain(r.match_re.keys()) {
        if !valid_label_name(k) {
            return Err(ConfigError::BadLabelName(k.clone()));
        }
    }
    for t in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
        if !ti.contains(t.as_str()) {
            return Err(ConfigError::UnknownTimeInterval(t.clone()));
        }
    }
    for (name, d) in [
        ("group_wait", r.group_wait),
        ("group_interval", r.group_interval),
        ("repeat_interval", r.repeat_interval),
    ] {
        if let Some(d) = d {
            if d.0 < 0 {
                return Err(ConfigError::NegativeDuration(name));
            }
        }
    }
    if r.group_interval == Some(PromDuration(0)) {
        return Err(ConfigError::ZeroInterval("group_interval"));
    }
    if r.repeat_interval == Some(PromDuration(0)) {
        return Err(ConfigError::ZeroInterval("repeat_interval"));
    }
    if let Some(e) = &r.escalation {
        if !esc.contains(e.as_str()) {
            return Err(ConfigError::UnknownEscalation(e.clone()));
        }
    }
    for c in &r.routes {
        check_route(c, receivers, ti, esc)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn parse(y: &str) -> Result<Config, String> {
        let c: Config = serde_yaml_ng::from_str(y).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn durations() {
        assert_eq!(PromDuration::parse("1h30m").unwrap().0, 5_400_000);
        assert_eq!(PromDuration::parse("250ms").unwrap().0, 250);
        assert_eq!(PromDuration::parse("0").unwrap().0, 0);
        assert_eq!(PromDuration::parse("2d").unwrap().to_string(), "2d");
        assert_eq!(PromDuration(5_400_000).to_string(), "1h30m");
        for bad in [
            "",
            "1",
            "m",
            "1m1h",
            "1x",
            "-1m",
            "1.5h",
            "99999999999999999y",
        ] {
            assert!(PromDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn full_alertmanager_config_loads() {
        let c = parse(
            r#"
global:
  resolve_timeout: 2m
  smtp_smarthost: 'localhost:25'
  smtp_from: 'alertmanager@example.org'
  slack_api_url: 'https://hooks.slack.com/services/x'
templates: ['/etc/alertmanager/template/*.tmpl']
route:
  receiver: team-X
  group_by: ['alertname', 'cluster', 'service']
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 3h
  routes:
    - matchers: ['service=~"foo1|foo2|baz"']
      receiver: team-X
      routes:
        - matchers: [severity="critical"]
          receiver: team-Y
    - match: {service: files}
      match_re: {env: 'prod|staging'}
      receiver: team-Y
      continue: true
      mute_time_intervals: [offhours]
    - matchers: ['{team="db", severity!~"info|debug"}']
      group_by: ['...']
      active_time_intervals: [offhours]
      escalation: paging
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: ['alertname', 'cluster', 'service']
  - source_match: {severity: critical}
    target_match_re: {severity: 'info|warning'}
time_intervals:
  - name: offhours
    time_intervals:
      - times: [{start_time: '17:00', end_time: '24:00'}]
        weekdays: ['monday:friday']
receivers:
  - name: team-X
  - name: team-Y
escalations:
  - name: paging
    levels:
      - {receivers: [team-X], timeout: 15m}
      - {receivers: [team-Y], timeout: 30m}
"#,
        )
        .unwrap();
        assert_eq!(c.global.resolve_timeout, PromDuration::minutes(2));
        assert_eq!(c.global.smtp_hello, "localhost");
        let r = c.route.unwrap();
        assert_eq!(r.routes.len(), 3);
        assert_eq!(r.routes[2].group_by, Some(GroupBy::All));
        assert_eq!(r.routes[2].matchers.0.len(), 2);
        assert_eq!(
            r.routes[1].all_matchers().unwrap().to_string(),
            r#"{env=~"prod|staging",service="files"}"#
        );
    }

    #[test]
    fn relative_paths_are_joined_onto_the_base_directory() {
        let mut c = parse(
            r#"
global:
  smtp_auth_password_file: smtp.pass
  slack_api_url_file: /abs/slack.url
  opsgenie_api_key_file: opsgenie.key
  http_config:
    bearer_token_file: global.token
    tls_config: {ca_file: /abs/global-ca.pem, cert_file: client.pem}
    oauth2: {client_secret_file: oauth.secret, tls_config: {key_file: client.key}}
    proxy_url: http://proxy:3128
  smtp_tls_config: {ca_file: smtp-ca.pem}
templates: ['*.tmpl', /etc/am/*.tmpl]
route: {receiver: r}
receivers:
  - name: r
    webhook_configs:
      - url_file: hook.url
        http_config:
          basic_auth: {username: u, password_file: secrets/basic.pass}
          tls_config: {ca_file: ca.pem}
      - url_file: /abs/hook.url
        http_config:
          authorization: {credentials_file: creds}
    slack_configs:
      - api_url_file: slack.url
        http_config: {bearer_token_file: slack.token}
    email_configs:
      - to: a@example.com
        auth_password_file: mail.pass
        auth_secret_file: /abs/mail.secret
        tls_config: {ca_file: ../mail-ca.pem}
    sms_configs:
      - preset: twilio
        url_file: sms.url
        auth_token_file: twilio.token
        to: ['+1']
"#,
        )
        .unwrap();
        let base = Path::new("/etc/vigil/am");
        c.resolve_paths(base);
        let at = |p: &str| Some(base.join(p));
        let abs = |p: &str| Some(PathBuf::from(p));
        let s = |p: &str| Some(base.join(p).to_string_lossy().into_owned());

        assert_eq!(c.templates, ["/etc/vigil/am/*.tmpl", "/etc/am/*.tmpl"]);
        let g = &c.global;
        assert_eq!(g.smtp_auth_password_file, s("smtp.pass"));
        assert_eq!(g.slack_api_url_file.as_deref(), Some("/abs/slack.url"));
        assert_eq!(g.opsgenie_api_key_file, s("opsgenie.key"));
        assert_eq!(
            g.http_config,
            Some(serde_json::json!({
                "bearer_token_file": "/etc/vigil/am/global.token",
                "tls_config": {
                    "ca_file": "/abs/global-ca.pem",
                    "cert_file": "/etc/vigil/am/client.pem",
                },
                "oauth2": {
                    "client_secret_file": "/etc/vigil/am/oauth.secret",
                    "tls_config": {"key_file": "/etc/vigil/am/client.key"},
                },
                "proxy_url": "http://proxy:3128",
            }))
        );
        assert_eq!(
            g.smtp_tls_config,
            Some(serde_json::json!({"ca_file": "/etc/vigil/am/smtp-ca.pem"}))
        );

        let r = &c.receivers[0];
        let w = &r.webhook_configs[0];
        assert_eq!(w.url_file, at("hook.url"));
        let h = w.http_config.as_ref().unwrap();
        let basic = h.basic_auth.as_ref().unwrap();
        assert_eq!(basic.password_file, at("secrets/basic.pass"));
        assert_eq!(h.tls_config.as_ref().unwrap().ca_file, at("ca.pem"));
        let w = &r.webhook_configs[1];
        assert_eq!(w.url_file, abs("/abs/hook.url"));
        let auth = w.http_config.as_ref().unwrap().authorization.as_ref();
        assert_eq!(auth.unwrap().credentials_file, at("creds"));
        let sl = &r.slack_configs[0];
        assert_eq!(sl.api_url_file, at("slack.url"));
        let h = sl.http_config.as_ref().unwrap();
        assert_eq!(h.bearer_token_file, at("slack.token"));
        let e = &r.email_configs[0];
        assert_eq!(e.auth_password_file, at("mail.pass"));
        assert_eq!(e.auth_secret_file, abs("/abs/mail.secret"));
        let tls = e.tls_config.as_ref().unwrap();
        assert_eq!(tls.ca_file, at("../mail-ca.pem"));
        let sms = &r.sms_configs[0];
        assert_eq!(sms.url_file, at("sms.url"));
        assert_eq!(sms.auth_token_file, at("twilio.token"));
    }

    #[test]
    fn validation_errors() {
        let base = "receivers: [{name: a}]\n";
        let cases = [
            ("receivers: [{name: a}]", "no routes provided"),
            ("route: {group_by: [x]}\nreceivers: [{name: a}]", "root route must specify a default receiver"),
            ("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]", "not unique"),
            ("route: {receiver: b}\nreceivers: [{name: a}]", "undefined receiver \"b\""),
            ("route: {receiver: a, routes: [{receiver: c}]}\nreceivers: [{name: a}]", "undefined receiver \"c\""),
            ("route: {receiver: a, matchers: [x=y]}\nreceivers: [{name: a}]", "root route must not have any matchers"),
            ("route: {receiver: a, routes: [{matchers: ['x=~(']}]}\nreceivers: [{name: a}]", "regular expression"),
            ("route: {receiver: a, routes: [{matchers: ['x']}]}\nreceivers: [{name: a}]", "operator"),
            ("route: {receiver: a, routes: [{mute_time_intervals: [nope]}]}\nreceivers: [{name: a}]", "undefined time interval"),
            ("route: {receiver: a, group_by: ['...', 'x']}\nreceivers: [{name: a}]", "wildcard"),
            ("route: {receiver: a, group_by: [x, x]}\nreceivers: [{name: a}]", "duplicated label"),
            ("route: {receiver: a, group_interval: 0s}\nreceivers: [{name: a}]", "group_interval cannot be zero"),
            ("route: {receiver: a, recevier: b}\nreceivers: [{name: a}]", "unknown field"),
            ("route: {receiver: a, routes: [{escalation: p}]}\nreceivers: [{name: a}]", "undefined escalation"),
            ("route: {receiver: a}\nreceivers: [{name: a}]\nescalations: [{name: p, levels: []}]", "at least one level"),
            ("route: {receiver: a}\nreceivers: [{name: a}]\nescalations: [{name: p, levels: [{receivers: [z], timeout: 1m}]}]", "undefined receiver \"z\""),
            ("route: {receiver: a}\nreceivers: [{name: a}]\ntime_intervals: [{name: t, time_intervals: [{weekdays: [noday]}]}]", "weekday"),
            ("route: {receiver: a}\nreceivers: [{name: a}]\ntime_intervals: [{name: t}, {name: t}]", "not unique"),
        ];
        let _ = base;
        for (y, want) in cases {
            let err = parse(y).expect_err(y);
            assert!(err.contains(want), "{y}: {err} should contain {want}");
        }
    }
}
