//! Relabeling, as Prometheus's `model/relabel`: every action (`replace`,
//! `keep`, `drop`, `keepequal`, `dropequal`, `hashmod`, `labelmap`,
//! `labeldrop`, `labelkeep`, `lowercase`, `uppercase`), the same defaults
//! (separator `;`, regex `(.*)`, replacement `$1`, action `replace`), fully
//! anchored regexes and the same validation, done while deserializing so a
//! YAML error points at the rule's line.

use std::fmt;

use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_model::LabelsBuilder;

/// A relabel action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Write the regex replacement into `target_label` (the default).
    #[default]
    Replace,
    /// Drop the label set unless the source value matches.
    Keep,
    /// Drop the label set if the source value matches.
    Drop,
    /// Drop the label set unless the source value equals `target_label`'s.
    KeepEqual,
    /// Drop the label set if the source value equals `target_label`'s.
    DropEqual,
    /// Set `target_label` to the source value's MD5 modulo `modulus`.
    HashMod,
    /// Copy labels whose names match to the replacement name.
    LabelMap,
    /// Remove labels whose names match.
    LabelDrop,
    /// Remove labels whose names do not match.
    LabelKeep,
    /// Set `target_label` to the lower-cased source value.
    Lowercase,
    /// Set `target_label` to the upper-cased source value.
    Uppercase,
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Prometheus lower-cases the action before matching.
        Ok(match s.to_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown relabel action {s:?}"
                )))
            }
        })
    }
}

/// A fully anchored regex (`^(?:<source>)$`) that remembers its source.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    re: Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored at both ends.
    pub fn new(source: &str) -> Result<RelabelRegex, regex::Error> {
        Ok(RelabelRegex {
            source: source.to_string(),
            re: Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// The regex as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn default_regex() -> RelabelRegex {
        // The default pattern always compiles.
        RelabelRegex::new(DEFAULT_REGEX).unwrap_or_else(|_| RelabelRegex {
            source: DEFAULT_REGEX.to_string(),
            re: Regex::new("^(.*)$").unwrap_or_else(|_| unreachable!()),
        })
    }
}

const DEFAULT_REGEX: &str = "(.*)";

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for RelabelRegex {}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelabelRegex::new(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// One relabeling rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "RawRelabelConfig")]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` into the source value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    /// The separator; `;` by default.
    pub separator: String,
    /// The regex; `(.*)` by default.
    pub regex: RelabelRegex,
    /// The modulus for `hashmod`.
    #[serde(skip_serializing_if = "is_zero")]
    pub modulus: u64,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`,
    /// or compared by `keepequal` and `dropequal`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    /// The replacement; `$1` by default.
    pub replacement: String,
    /// The action; `replace` by default.
    pub action: Action,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    regex: Option<RelabelRegex>,
    #[serde(default)]
    modulus: u64,
    #[serde(default)]
    target_label: String,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Action,
}

/// Why a relabel rule is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelabelConfigError {
    /// `hashmod` without a modulus.
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    /// The action needs a `target_label`.
    #[error("relabel configuration for {0:?} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    /// The `target_label` is not a valid label name (or template).
    #[error("{label:?} is invalid 'target_label' for {action:?} action")]
    InvalidTargetLabel {
        /// The target label.
        label: String,
        /// The action.
        action: Action,
    },
    /// The action takes no `replacement`.
    #[error("'replacement' can not be set for {0:?} action")]
    ReplacementNotAllowed(Action),
    /// The `labelmap` replacement is not a valid label name template.
    #[error("{0:?} is invalid 'replacement' for labelmap action")]
    InvalidReplacement(String),
    /// `keepequal`/`dropequal` with other fields than source and target.
    #[error("{0:?} action requires only 'source_labels' and 'target_label', and no other fields")]
    OnlySourceAndTarget(Action),
    /// `labeldrop`/`labelkeep` with other fields than `regex`.
    #[error("{0:?} action requires only 'regex', and no other fields")]
    OnlyRegex(Action),
}

/// Prometheus's pattern for a `target_label` with `$` references.
fn is_valid_template(s: &str) -> bool {
    // ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$
    static PATTERN: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(s))
}

/// A valid label name under UTF-8 validation: non-empty.
fn is_valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

impl TryFrom<RawRelabelConfig> for RelabelConfig {
    type Error = RelabelConfigError;

    fn try_from(r: RawRelabelConfig) -> Result<Self, Self::Error> {
        let regex_default = r.regex.is_none();
        let c = RelabelConfig {
            source_labels: r.source_labels.clone().unwrap_or_default(),
            separator: r.separator.clone().unwrap_or_else(|| ";".to_string()),
            regex: r.regex.unwrap_or_else(RelabelRegex::default_regex),
            modulus: r.modulus,
            target_label: r.target_label,
            replacement: r.replacement.clone().unwrap_or_else(|| "$1".to_string()),
            action: r.action,
        };
        use Action::*;
        let a = c.action;
        if a == HashMod && c.modulus == 0 {
            return Err(RelabelConfigError::ZeroModulus);
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && c.target_label.is_empty()
        {
            return Err(RelabelConfigError::MissingTargetLabel(a));
        }
        let invalid_target = || RelabelConfigError::InvalidTargetLabel {
            label: c.target_label.clone(),
            action: a,
        };
        if a == Replace && c.target_label.contains('$') && !is_valid_template(&c.target_label) {
            return Err(invalid_target());
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual | HashMod)
            && !is_valid_label_name(&c.target_label)
        {
            return Err(invalid_target());
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) && c.replacement != "$1" {
            return Err(RelabelConfigError::ReplacementNotAllowed(a));
        }
        if a == LabelMap && !is_valid_template(&c.replacement) {
            return Err(RelabelConfigError::InvalidReplacement(c.replacement));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (!regex_default || c.modulus != 0 || c.separator != ";" || c.replacement != "$1")
        {
            return Err(RelabelConfigError::OnlySourceAndTarget(a));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (r.source_labels.is_some()
                || !c.target_label.is_empty()
                || c.modulus != 0
                || c.separator != ";"
                || c.replacement != "$1")
        {
            return Err(RelabelConfigError::OnlyRegex(a));
        }
        Ok(c)
    }
}

impl RelabelConfig {
    /// A rule with every default and `action`, for building rules in code.
    pub fn with_action(action: Action) -> RelabelConfig {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".to_string(),
            regex: RelabelRegex::default_regex(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".to_string(),
            action,
        }
    }
}

/// Applies `rules` in order to the labels in `lb`. Returns false when a rule
/// drops the label set (the builder is then in an unspecified state).
pub fn process(lb: &mut LabelsBuilder, rules: &[RelabelConfig]) -> bool {
    rules.iter().all(|r| apply(r, lb))
}

fn apply(cfg: &RelabelConfig, lb: &mut LabelsBuilder) -> bool {
    let mut val = String::new();
    for (i, name) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            val.push_str(&cfg.separator);
        }
        val.push_str(lb.get(name).unwrap_or(""));
    }
    let re = &cfg.regex.re;
    match cfg.action {
        Action::Drop => {
            if re.is_match(&val) {
                return false;
            }
        }
        Action::Keep => {
            if !re.is_match(&val) {
                return false;
            }
        }
        Action::DropEqual => {
            if lb.get(&cfg.target_label).unwrap_or("") == val {
                return false;
            }
        }
        Action::KeepEqual => {
            if lb.get(&cfg.target_label).unwrap_or("") != val {
                return false;
            }
        }
        Action::Replace => {
            let Some(caps) = re.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&cfg.target_label, &mut target);
            if !is_valid_label_name(&target) {
                return true;
            }
            let mut res = String::new();
            caps.expand(&cfg.replacement, &mut res);
            // An empty value deletes the label, as Prometheus's builder does.
            lb.set(&target, &res);
        }
        Action::Lowercase => {
            lb.set(&cfg.target_label, &val.to_lowercase());
        }
        Action::Uppercase => {
            lb.set(&cfg.target_label, &val.to_uppercase());
        }
        Action::HashMod => {
            let hash = Md5::digest(val.as_bytes());
            let mut last = [0u8; 8];
            last.copy_from_slice(&hash[8..16]);
            let m = u64::from_be_bytes(last) % cfg.modulus.max(1);
            lb.set(&cfg.target_label, &m.to_string());
        }
        Action::LabelMap => {
            let snapshot = lb.build();
            for l in snapshot.iter() {
                if re.is_match(l.name) {
                    let name = re.replace_all(l.name, cfg.replacement.as_str());
                    lb.set(&name, l.value);
                }
            }
        }
        Action::LabelDrop => {
            lb.retain(|n, _| !re.is_match(n));
        }
        Action::LabelKeep => {
            lb.retain(|n, _| re.is_match(n));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::{labels, Labels};

    fn rules(yaml: &str) -> Vec<RelabelConfig> {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn run(input: Labels, yaml: &str) -> Option<Labels> {
        let mut lb = LabelsBuilder::from_labels(&input);
        process(&mut lb, &rules(yaml)).then(|| lb.build())
    }

    // Cases follow Prometheus's model/relabel/relabel_test.go and the
    // documented behaviour of each action.
    #[test]
    fn replace() {
        let l = labels!("a" => "foo", "b" => "bar", "c" => "baz");
        assert_eq!(
            run(l.clone(), "- {source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}-ch${1}'}"),
            Some(labels!("a" => "foo", "b" => "bar", "c" => "baz", "d" => "choo-choo"))
        );
        // Several sources joined by the separator.
        assert_eq!(
            run(l.clone(), "- {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, replacement: 'b${1}${2}m'}"),
            Some(labels!("a" => "boobam", "b" => "bar", "c" => "baz"))
        );
        // No match: nothing changes.
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: 'x(.*)', target_label: d}"
            ),
            Some(l.clone())
        );
        // Anchoring: 'o' alone does not match 'foo'.
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: o, target_label: d, replacement: x}"
            ),
            Some(l.clone())
        );
        // An empty result deletes the target.
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: '(f).*', target_label: b, replacement: '$2'}"
            ),
            Some(labels!("a" => "foo", "c" => "baz"))
        );
        // A missing source is the empty string, and the default regex
        // matches it: the literal replacement is written.
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [z], target_label: d, replacement: static}"
            ),
            Some(labels!("a" => "foo", "b" => "bar", "c" => "baz", "d" => "static"))
        );
        // Templated target label; an invalid (empty) expansion is skipped.
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: '(.*)', target_label: 'x_${1}', replacement: 'y'}"
            ),
            Some(labels!("a" => "foo", "b" => "bar", "c" => "baz", "x_foo" => "y"))
        );
        assert_eq!(
            run(
                labels!("a" => ""),
                "- {source_labels: [a], regex: '(.*)', target_label: '${1}', replacement: 'y'}"
            ),
            Some(labels!())
        );
        // `$1x` is the group named "1x", which does not exist: empty.
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: '(f)oo', target_label: d, replacement: '$1x'}"
            ),
            Some(l.clone())
        );
    }

    #[test]
    fn keep_drop_and_equal() {
        let l = labels!("a" => "foo", "b" => "foo", "c" => "bar");
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: 'f.*', action: drop}"
            ),
            None
        );
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: 'b.*', action: drop}"
            ),
            Some(l.clone())
        );
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: 'f.*', action: keep}"
            ),
            Some(l.clone())
        );
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], regex: 'f', action: keep}"
            ),
            None
        );
        // keep with a missing label and a regex that matches "" keeps.
        assert_eq!(
            run(l.clone(), "- {source_labels: [z], regex: '', action: keep}"),
            Some(l.clone())
        );
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], target_label: b, action: keepequal}"
            ),
            Some(l.clone())
        );
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], target_label: c, action: keepequal}"
            ),
            None
        );
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], target_label: b, action: dropequal}"
            ),
            None
        );
        assert_eq!(
            run(
                l.clone(),
                "- {source_labels: [a], target_label: c, action: DropEqual}"
            ),
            Some(l.clone())
        );
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // The case of Prometheus's relabel_test.go: "baz" mod 1000 is 976.
        assert_eq!(
            run(
                labels!("c" => "baz"),
                "- {source_labels: [c], target_label: d, modulus: 1000, action: hashmod}"
            ),
            Some(labels!("c" => "baz", "d" => "976"))
        );
    }

    #[test]
    fn label_actions() {
        let l =
            labels!("__meta_my_bar" => "aaa", "__meta_my_baz" => "bbb", "__meta_other" => "ccc");
        assert_eq!(
            run(
                l.clone(),
                "- {regex: '__meta_my_(.+)', replacement: '${1}', action: labelmap}"
            ),
            Some(
                labels!("__meta_my_bar" => "aaa", "__meta_my_baz" => "bbb", "__meta_other" => "ccc", "bar" => "aaa", "baz" => "bbb")
            )
        );
        assert_eq!(
            run(l.clone(), "- {regex: '__meta_my_.*', action: labeldrop}"),
            Some(labels!("__meta_other" => "ccc"))
        );
        assert_eq!(
            run(l.clone(), "- {regex: '__meta_my_.*', action: labelkeep}"),
            Some(labels!("__meta_my_bar" => "aaa", "__meta_my_baz" => "bbb"))
        );
        assert_eq!(
            run(labels!("a" => "AbC"), "- {source_labels: [a], target_label: l, action: lowercase}\n- {source_labels: [a], target_label: u, action: uppercase}"),
            Some(labels!("a" => "AbC", "l" => "abc", "u" => "ABC"))
        );
    }

    /// One relabeling case: labels in, rules (YAML), labels out (`None`:
    /// dropped), and where the expectation comes from.
    struct Case {
        action: Action,
        input: &'static [(&'static str, &'static str)],
        rules: &'static str,
        want: Option<&'static [(&'static str, &'static str)]>,
        source: &'static str,
    }

    const RT: &str = "model/relabel/relabel_test.go TestRelabel";
    const DOC: &str = "docs/configuration/configuration.md <relabel_config>";
    /// hashmod values not in Prometheus's tests, computed with Python's
    /// hashlib by Prometheus's formula (big-endian u64 of md5 bytes 8..16,
    /// mod modulus), which reproduces its 976 and 734.
    const MD5: &str = "md5 formula, cross-checked in Python";

    fn cases() -> Vec<Case> {
        use Action::*;
        vec![
            // replace
            Case { action: Replace, source: RT,
                input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
                rules: "- {source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}-ch${1}'}",
                want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]) },
            Case { action: Replace, source: RT,
                input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
                rules: "- {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, replacement: 'b${1}${2}m'}\n- {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', target_label: d, replacement: '$1$2$2$3'}",
                want: Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]) },
            Case { action: Replace, source: RT,
                input: &[("a", "abc")],
                rules: "- {source_labels: [a], regex: '.*(b).*', target_label: d, replacement: '$1'}",
                want: Some(&[("a", "abc"), ("d", "b")]) },
            Case { action: Replace, source: RT, // no replacement without a match
                input: &[("a", "boo")],
                rules: "- {source_labels: [a], regex: f, target_label: b, replacement: bar}",
                want: Some(&[("a", "boo")]) },
            Case { action: Replace, source: RT, // templated target label
                input: &[("a", "some-name-value")],
                rules: "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${1}', replacement: '${2}'}",
                want: Some(&[("a", "some-name-value"), ("name", "value")]) },
            Case { action: Replace, source: RT, // replacement expands to "": nothing set
                input: &[("a", "some-name-value")],
                rules: "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${1}', replacement: '${3}'}",
                want: Some(&[("a", "some-name-value")]) },
            Case { action: Replace, source: RT, // target expands to "": skipped
                input: &[("a", "some-name-0")],
                rules: "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${3}', replacement: '${1}'}\n- {source_labels: [a], regex: 'some-([^-]+)(-[^,]+)', target_label: '${3}', replacement: '${1}'}",
                want: Some(&[("a", "some-name-0")]) },
            Case { action: Replace, source: RT, // real-life tags
                input: &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
                rules: "- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)path:(/[^,]+).*', target_label: __metrics_path__, replacement: '${1}'}\n- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)job:([^,]+).*', target_label: job, replacement: '${1}'}\n- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)label:([^=]+)=([^,]+).*', target_label: '${1}', replacement: '${2}'}",
                want: Some(&[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"), ("__metrics_path__", "/secret"), ("foo", "bar"), ("job", "some-job")]) },
            Case { action: Replace, source: DOC, // defaults: regex (.*), replacement $1 copy a label
                input: &[("__address__", "h:9100")],
                rules: "- {source_labels: [__address__], target_label: instance}",
                want: Some(&[("__address__", "h:9100"), ("instance", "h:9100")]) },
            Case { action: Replace, source: DOC, // regex anchored at both ends
                input: &[("a", "foo")],
                rules: "- {source_labels: [a], regex: o, target_label: b, replacement: x}",
                want: Some(&[("a", "foo")]) },
            // keep
            Case { action: Keep, source: RT,
                input: &[("a", "foo")],
                rules: "- {source_labels: [a], regex: no-match, action: keep}",
                want: None },
            Case { action: Keep, source: RT,
                input: &[("a", "foo")],
                rules: "- {source_labels: [a], regex: 'f.*', action: keep}",
                want: Some(&[("a", "foo")]) },
            Case { action: Keep, source: DOC, // concatenated sources, separator
                input: &[("a", "foo"), ("b", "bar")],
                rules: "- {source_labels: [a, b], separator: '-', regex: 'foo-bar', action: keep}",
                want: Some(&[("a", "foo"), ("b", "bar")]) },
            Case { action: Keep, source: RT, // issues/12283: labeldrop, replace, keep
                input: &[("__meta_kubernetes_pod_container_port_name", "foo"), ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091")],
                rules: "- {regex: '^__meta_kubernetes_pod_container_port_name$', action: labeldrop}\n- {source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port], regex: '(.+)', target_label: __meta_kubernetes_pod_container_port_name, replacement: metrics}\n- {source_labels: [__meta_kubernetes_pod_container_port_name], regex: '^metrics$', action: keep}",
                want: Some(&[("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"), ("__meta_kubernetes_pod_container_port_name", "metrics")]) },
            // drop
            Case { action: Drop, source: RT, // drop ends processing
                input: &[("a", "foo")],
                rules: "- {source_labels: [a], regex: '.*o.*', action: drop}\n- {source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch$1-ch$1'}",
                want: None },
            Case { action: Drop, source: RT,
                input: &[("a", "foo"), ("b", "bar")],
                rules: "- {source_labels: [a], regex: '.*o.*', action: drop}",
                want: None },
            Case { action: Drop, source: RT,
                input: &[("a", "foo")],
                rules: "- {source_labels: [a], regex: no-match, action: drop}",
                want: Some(&[("a", "foo")]) },
            Case { action: Drop, source: RT, // anchored: f|o does not match foo
                input: &[("a", "foo")],
                rules: "- {source_labels: [a], regex: 'f|o', action: drop}",
                want: Some(&[("a", "foo")]) },
            // keepequal / dropequal
            Case { action: KeepEqual, source: RT,
                input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
                rules: "- {source_labels: [__tmp_port], target_label: __port1, action: keepequal}",
                want: Some(&[("__port1", "1234"), ("__port2", "5678"), ("__tmp_port", "1234")]) },
            Case { action: KeepEqual, source: RT,
                input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
                rules: "- {source_labels: [__tmp_port], target_label: __port2, action: keepequal}",
                want: None },
            Case { action: DropEqual, source: RT,
                input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
                rules: "- {source_labels: [__tmp_port], target_label: __port1, action: dropequal}",
                want: None },
            Case { action: DropEqual, source: RT,
                input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
                rules: "- {source_labels: [__tmp_port], target_label: __port2, action: dropequal}",
                want: Some(&[("__port1", "1234"), ("__port2", "5678"), ("__tmp_port", "1234")]) },
            // hashmod
            Case { action: HashMod, source: RT,
                input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
                rules: "- {source_labels: [c], target_label: d, modulus: 1000, action: hashmod}",
                want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]) },
            Case { action: HashMod, source: RT,
                input: &[("a", "foo\nbar")],
                rules: "- {source_labels: [a], target_label: b, modulus: 1000, action: hashmod}",
                want: Some(&[("a", "foo\nbar"), ("b", "734")]) },
            Case { action: HashMod, source: MD5, // sharding: hashmod + keep
                input: &[("__address__", "10.0.0.1:9100")],
                rules: "- {source_labels: [__address__], target_label: __tmp_hash, modulus: 3, action: hashmod}\n- {source_labels: [__tmp_hash], regex: '2', action: keep}",
                want: Some(&[("__address__", "10.0.0.1:9100"), ("__tmp_hash", "2")]) },
            Case { action: HashMod, source: MD5, // sources joined by the separator
                input: &[("x", "a"), ("y", "b")],
                rules: "- {source_labels: [x, y], target_label: h, modulus: 16, action: hashmod}",
                want: Some(&[("h", "10"), ("x", "a"), ("y", "b")]) },
            Case { action: HashMod, source: MD5, // a missing source hashes ""
                input: &[("x", "a")],
                rules: "- {source_labels: [nope], target_label: h, modulus: 1000, action: hashmod}",
                want: Some(&[("h", "958"), ("x", "a")]) },
            Case { action: HashMod, source: MD5,
                input: &[("i", "node-1.example:9100")],
                rules: "- {source_labels: [i], target_label: h, modulus: 4294967296, action: hashmod}",
                want: Some(&[("h", "1545636160"), ("i", "node-1.example:9100")]) },
            // labelmap
            Case { action: LabelMap, source: RT,
                input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
                rules: "- {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}",
                want: Some(&[("a", "foo"), ("b1", "bar"), ("b2", "baz"), ("bar_b1", "bar"), ("bar_b2", "baz")]) },
            Case { action: LabelMap, source: RT,
                input: &[("a", "foo"), ("__meta_my_bar", "aaa"), ("__meta_my_baz", "bbb"), ("__meta_other", "ccc")],
                rules: "- {regex: '__meta_(my.*)', replacement: '${1}', action: labelmap}",
                want: Some(&[("__meta_my_bar", "aaa"), ("__meta_my_baz", "bbb"), ("__meta_other", "ccc"), ("a", "foo"), ("my_bar", "aaa"), ("my_baz", "bbb")]) },
            // labeldrop / labelkeep
            Case { action: LabelDrop, source: RT,
                input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
                rules: "- {regex: '(b.*)', action: labeldrop}",
                want: Some(&[("a", "foo")]) },
            Case { action: LabelDrop, source: DOC, // matched against names, anchored
                input: &[("ab", "1"), ("b", "2")],
                rules: "- {regex: b, action: labeldrop}",
                want: Some(&[("ab", "1")]) },
            Case { action: LabelKeep, source: RT,
                input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
                rules: "- {regex: '(b.*)', action: labelkeep}",
                want: Some(&[("b1", "bar"), ("b2", "baz")]) },
            Case { action: LabelKeep, source: DOC,
                input: &[("__name__", "up"), ("job", "x"), ("instance", "y")],
                rules: "- {regex: '__name__|job', action: labelkeep}",
                want: Some(&[("__name__", "up"), ("job", "x")]) },
            // lowercase / uppercase
            Case { action: Uppercase, source: RT,
                input: &[("foo", "bAr123Foo")],
                rules: "- {source_labels: [foo], target_label: foo_uppercase, action: uppercase}\n- {source_labels: [foo], target_label: foo_lowercase, action: lowercase}",
                want: Some(&[("foo", "bAr123Foo"), ("foo_lowercase", "bar123foo"), ("foo_uppercase", "BAR123FOO")]) },
            Case { action: Lowercase, source: DOC, // the concatenated sources
                input: &[("a", "Foo"), ("b", "BAR")],
                rules: "- {source_labels: [a, b], target_label: l, action: lowercase}",
                want: Some(&[("a", "Foo"), ("b", "BAR"), ("l", "foo;bar")]) },
            Case { action: Uppercase, source: DOC,
                input: &[("a", "Foo"), ("b", "BAR")],
                rules: "- {source_labels: [a, b], separator: '', target_label: a, action: uppercase}",
                want: Some(&[("a", "FOOBAR"), ("b", "BAR")]) },
        ]
    }

    #[test]
    fn every_action_against_prometheus_expectations() {
        use std::collections::HashMap;
        let mut per_action: HashMap<Action, usize> = HashMap::new();
        for (i, c) in cases().iter().enumerate() {
            *per_action.entry(c.action).or_default() += 1;
            let input = Labels::from_pairs(c.input.iter().copied());
            let got = run(input, c.rules);
            let want = c.want.map(|w| Labels::from_pairs(w.iter().copied()));
            assert_eq!(
                got, want,
                "case {i} ({:?}, from {}): {}",
                c.action, c.source, c.rules
            );
        }
        for a in [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ] {
            assert!(
                per_action.get(&a).copied().unwrap_or(0) >= 1,
                "no case for {a:?}"
            );
        }
    }

    #[test]
    fn target_label_templates_as_prometheus() {
        // model/relabel/relabel_test.go TestTargetLabelValidity (the cases
        // with `$`: without one, any non-empty name is valid under UTF-8
        // validation).
        for (s, valid) in [
            ("label${1}", true),
            ("${1}label", true),
            ("${1}", true),
            ("${", false),
            ("$", false),
            ("${}", false),
            ("foo${", false),
            ("$1", true),
            ("asd$2asd", true),
            ("-foo${1}bar-", false),
            ("_${1}_", true),
            ("foo${bar}foo", true),
        ] {
            assert_eq!(is_valid_template(s), valid, "{s}");
            let yaml = format!("- {{target_label: '{s}'}}");
            assert_eq!(
                serde_yaml_ng::from_str::<Vec<RelabelConfig>>(&yaml).is_ok(),
                valid,
                "{s}"
            );
        }
    }

    #[test]
    fn validation_as_prometheus() {
        for bad in [
            "- {action: hashmod, target_label: a}",
            "- {action: replace}",
            "- {action: lowercase}",
            "- {action: lowercase, target_label: a, replacement: x}",
            "- {action: keepequal, target_label: a, regex: x}",
            "- {action: labeldrop, regex: a, source_labels: [b]}",
            "- {action: labelkeep, regex: a, target_label: b}",
            "- {action: labelmap, regex: a, replacement: '1bad'}",
            "- {action: replace, target_label: '$1-x'}",
            "- {action: frobnicate}",
            "- {regex: '('}",
            "- {target_label: a, unknown_key: 1}",
        ] {
            assert!(
                serde_yaml_ng::from_str::<Vec<RelabelConfig>>(bad).is_err(),
                "{bad}"
            );
        }
        let ok = rules("- {target_label: a}");
        assert_eq!(ok[0].separator, ";");
        assert_eq!(ok[0].regex.as_str(), "(.*)");
        assert_eq!(ok[0].replacement, "$1");
        assert_eq!(ok[0].action, Action::Replace);
    }
}
