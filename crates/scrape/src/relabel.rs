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
