//! Inhibition, as Alertmanager's `inhibit` package.
//!
//! An alert matching a rule's target matchers is muted while a firing alert
//! matches the rule's source matchers and has the same values for the
//! rule's `equal` labels (a label missing on both sides counts as equal).
//! When an alert matches both source and target of a rule, source alerts
//! that also match the target are not considered, so such alerts cannot
//! inhibit each other. Source alerts are all firing alerts received,
//! whether silenced or not.

use vigil_model::Labels;

use crate::config::InhibitRuleConfig;
use crate::matcher::{MatchType, Matcher, MatcherParseError, Matchers};

/// A compiled inhibition rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    /// Its optional name.
    pub name: Option<String>,
    /// Source matchers.
    pub source: Matchers,
    /// Target matchers.
    pub target: Matchers,
    /// Labels that must be equal.
    pub equal: Vec<String>,
}

fn merge(
    eq: &std::collections::BTreeMap<String, String>,
    re: &std::collections::BTreeMap<String, crate::config::RegexString>,
    m: &Matchers,
) -> Result<Matchers, MatcherParseError> {
    let mut v = Vec::new();
    for (k, val) in eq {
        v.push(Matcher::new(k.clone(), MatchType::Equal, val.clone())?);
    }
    for (k, val) in re {
        v.push(Matcher::new(k.clone(), MatchType::Regexp, val.0.clone())?);
    }
    v.extend(m.0.iter().cloned());
    Ok(Matchers(v))
}

impl InhibitRule {
    /// Compiles a rule from its configuration.
    pub fn new(c: &InhibitRuleConfig) -> Result<InhibitRule, MatcherParseError> {
        Ok(InhibitRule {
            name: c.name.clone(),
            source: merge(&c.source_match, &c.source_match_re, &c.source_matchers)?,
            target: merge(&c.target_match, &c.target_match_re, &c.target_matchers)?,
            equal: c.equal.clone(),
        })
    }
}

/// The rules together with the firing source alerts of each, built once per
/// evaluation.
#[derive(Debug)]
pub struct InhibitIndex<'a> {
    rules: &'a [InhibitRule],
    sources: Vec<Vec<(u64, &'a Labels)>>,
}

impl<'a> InhibitIndex<'a> {
    /// Indexes the firing alerts `(fingerprint, labels)`.
    pub fn new(rules: &'a [InhibitRule], firing: &[(u64, &'a Labels)]) -> InhibitIndex<'a> {
        let sources = rules
            .iter()
            .map(|r| {
                firing
                    .iter()
                    .filter(|(_, l)| r.source.matches(l))
                    .copied()
                    .collect()
            })
            .collect();
        InhibitIndex { rules, sources }
    }

    /// The fingerprint of an alert that inhibits these labels, if any.
    pub fn inhibited_by(&self, labels: &Labels) -> Option<u64> {
        for (r, srcs) in self.rules.iter().zip(&self.sources) {
            if !r.target.matches(labels) {
                continue;
            }
            let two_sided = r.source.matches(labels);
            for (fp, sl) in srcs {
                if two_sided && r.target.matches(sl) {
                    continue;
                }
                if r.equal
                    .iter()
                    .all(|n| sl.get_or_empty(n) == labels.get_or_empty(n))
                {
                    return Some(*fp);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(y: &str) -> InhibitRule {
        InhibitRule::new(&serde_yaml_ng::from_str::<InhibitRuleConfig>(y).unwrap()).unwrap()
    }

    #[test]
    fn critical_inhibits_warning_with_equal_labels() {
        let rules = vec![rule(
            "source_matchers: [severity=critical]\ntarget_matchers: [severity=warning]\nequal: [cluster]",
        )];
        let crit = Labels::from_pairs([
            ("alertname", "Down"),
            ("severity", "critical"),
            ("cluster", "a"),
        ]);
        let idx = InhibitIndex::new(&rules, &[(1, &crit)]);
        let warn_a = Labels::from_pairs([
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("cluster", "a"),
        ]);
        let warn_b = Labels::from_pairs([
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("cluster", "b"),
        ]);
        assert_eq!(idx.inhibited_by(&warn_a), Some(1));
        assert_eq!(idx.inhibited_by(&warn_b), None);
        assert_eq!(idx.inhibited_by(&crit), None);
        // Missing on both sides counts as equal.
        let rules = vec![rule("source_match: {severity: critical}\ntarget_match_re: {severity: 'warn.*'}\nequal: [zone]")];
        let idx = InhibitIndex::new(&rules, &[(1, &crit)]);
        assert_eq!(idx.inhibited_by(&warn_a), Some(1));
    }

    #[test]
    fn alerts_matching_both_sides_do_not_inhibit_each_other() {
        let rules = vec![rule(
            "source_matchers: [alertname=X]\ntarget_matchers: [alertname=X]\nequal: [job]",
        )];
        let a = Labels::from_pairs([("alertname", "X"), ("job", "j"), ("i", "1")]);
        let b = Labels::from_pairs([("alertname", "X"), ("job", "j"), ("i", "2")]);
        let idx = InhibitIndex::new(&rules, &[(1, &a), (2, &b)]);
        assert_eq!(idx.inhibited_by(&a), None);
        assert_eq!(idx.inhibited_by(&b), None);
    }
}
