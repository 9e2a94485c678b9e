//! The alert state machine: inactive → pending → firing → resolved, with
//! `for` and `keep_firing_for`, exactly as Prometheus's `AlertingRule.Eval`
//! moves alerts, and the decision of when an alert is (re)sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_model::Labels;

/// How long a resolved alert is kept and re-sent, as in Prometheus.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The state of one alert instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Not active (or resolved).
    Inactive,
    /// Active, waiting for `for` to pass.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// The name the API and `ALERTS{alertstate}` use.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance of an alerting rule: one label set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The alert's labels (the series' labels without `__name__`, the
    /// rule's labels, `alertname`).
    #[serde(with = "labels_serde")]
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// The state.
    pub state: AlertState,
    /// The value of the expression at the last evaluation.
    pub value: f64,
    /// When the expression first returned this label set (ms).
    pub active_at: i64,
    /// When it started firing (ms), if it did.
    pub fired_at: Option<i64>,
    /// When it resolved (ms), if it did.
    pub resolved_at: Option<i64>,
    /// When it was last sent (ms).
    pub last_sent_at: Option<i64>,
    /// Until when the last sent alert is valid (its `endsAt` while firing).
    pub valid_until: Option<i64>,
    /// Since when it keeps firing although the expression no longer returns
    /// it (`keep_firing_for`).
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// A new pending alert.
    pub fn pending(
        labels: Labels,
        annotations: BTreeMap<String, String>,
        value: f64,
        ts: i64,
    ) -> Alert {
        Alert {
            labels,
            annotations,
            state: AlertState::Pending,
            value,
            active_at: ts,
            fired_at: None,
            resolved_at: None,
            last_sent_at: None,
            valid_until: None,
            keep_firing_since: None,
        }
    }

    /// Whether the alert must be sent at `ts`: never while pending; at once
    /// when it resolved since the last send; otherwise every `resend_delay`.
    pub fn needs_sending(&self, ts: i64, resend_delay: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if let Some(r) = self.resolved_at {
            if r > last {
                return true;
            }
        }
        last.saturating_add(resend_delay) < ts
    }
}

/// The outcome of one evaluation for the alerts of one rule.
#[derive(Debug, Default)]
pub(crate) struct Transition {
    /// Alerts active (pending or firing) after the evaluation.
    pub active_or_pending: usize,
}

/// Moves the alerts of one rule through one evaluation at `ts`.
///
/// `found` holds the label sets the expression returned, with their
/// annotations and value. The rules are Prometheus's: an alert seen again
/// keeps its state and takes the new value and annotations; a new one (or
/// one that was inactive) starts pending; a pending alert that disappears
/// is dropped; a firing one resolves unless `keep_firing_for` holds it;
/// a resolved one is kept for 15 minutes; pending turns firing once `for`
/// has passed.
pub(crate) fn step(
    active: &mut BTreeMap<Labels, Alert>,
    found: Vec<(Labels, BTreeMap<String, String>, f64)>,
    ts: i64,
    hold: i64,
    keep_firing_for: i64,
) -> Transition {
    let mut seen = std::collections::HashSet::with_capacity(found.len());
    for (labels, annotations, value) in found {
        seen.insert(labels.clone());
        match active.get_mut(&labels) {
            Some(a) if a.state != AlertState::Inactive => {
                a.value = value;
                a.annotations = annotations;
            }
            _ => {
                active.insert(
                    labels.clone(),
                    Alert::pending(labels, annotations, value, ts),
                );
            }
        }
    }
    let mut t = Transition::default();
    let mut delete = Vec::new();
    for (labels, a) in active.iter_mut() {
        if !seen.contains(labels) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && keep_firing_for > 0 {
                let since = *a.keep_firing_since.get_or_insert(ts);
                if ts - since < keep_firing_for {
                    keep_firing = true;
                }
            }
            if a.state == AlertState::Pending
                || a.resolved_at
                    .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
            {
                delete.push(labels.clone());
            }
            if a.state != AlertState::Inactive && !keep_firing {
                a.state = AlertState::Inactive;
                a.resolved_at = Some(ts);
            }
            if !keep_firing {
                continue;
            }
        } else {
            a.keep_firing_since = None;
        }
        t.active_or_pending += 1;
        if a.state == AlertState::Pending && ts - a.active_at >= hold {
            a.state = AlertState::Firing;
            a.fired_at = Some(ts);
        }
    }
    for l in delete {
        active.remove(&l);
    }
    t
}

/// Labels as a JSON object (sorted by name).
mod labels_serde {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use vigil_model::Labels;

    pub fn serialize<S: Serializer>(l: &Labels, s: S) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&str, &str> = l.iter().map(|l| (l.name, l.value)).collect();
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels::from_pairs(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(i: &str) -> Labels {
        Labels::from_pairs([("alertname", "A".to_string()), ("i", i.to_string())])
    }

    fn found(is: &[&str]) -> Vec<(Labels, BTreeMap<String, String>, f64)> {
        is.iter().map(|i| (l(i), BTreeMap::new(), 1.0)).collect()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn pending_then_firing_after_for() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 0, 5 * MIN, 0);
        assert_eq!(a[&l("x")].state, AlertState::Pending);
        assert!(!a[&l("x")].needs_sending(0, MIN), "pending is never sent");
        step(&mut a, found(&["x"]), 4 * MIN, 5 * MIN, 0);
        assert_eq!(a[&l("x")].state, AlertState::Pending);
        step(&mut a, found(&["x"]), 5 * MIN, 5 * MIN, 0);
        let x = &a[&l("x")];
        assert_eq!(x.state, AlertState::Firing);
        assert_eq!(x.active_at, 0);
        assert_eq!(x.fired_at, Some(5 * MIN));
    }

    #[test]
    fn without_for_an_alert_fires_at_once() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 10, 0, 0);
        assert_eq!(a[&l("x")].state, AlertState::Firing);
        assert_eq!(a[&l("x")].fired_at, Some(10));
    }

    #[test]
    fn a_pending_alert_that_goes_away_is_dropped() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 0, 5 * MIN, 0);
        step(&mut a, found(&[]), MIN, 5 * MIN, 0);
        assert!(a.is_empty());
        // Flapping: it starts over, `for` counts from the new activation.
        step(&mut a, found(&["x"]), 2 * MIN, 5 * MIN, 0);
        step(&mut a, found(&["x"]), 6 * MIN, 5 * MIN, 0);
        assert_eq!(a[&l("x")].state, AlertState::Pending);
        step(&mut a, found(&["x"]), 7 * MIN, 5 * MIN, 0);
        assert_eq!(a[&l("x")].state, AlertState::Firing);
        assert_eq!(a[&l("x")].active_at, 2 * MIN);
    }

    #[test]
    fn a_firing_alert_resolves_and_is_kept_fifteen_minutes() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 0, 0, 0);
        let x = a.get_mut(&l("x")).unwrap();
        assert!(x.needs_sending(0, MIN));
        x.last_sent_at = Some(0);
        step(&mut a, found(&[]), MIN, 0, 0);
        let x = &a[&l("x")];
        assert_eq!(x.state, AlertState::Inactive);
        assert_eq!(x.resolved_at, Some(MIN));
        assert!(x.needs_sending(MIN, MIN), "the resolution is sent at once");
        // Kept (and re-sent every resend delay) for 15 minutes, then dropped.
        step(&mut a, found(&[]), 16 * MIN, 0, 0);
        assert!(a.contains_key(&l("x")));
        step(&mut a, found(&[]), 16 * MIN + 1, 0, 0);
        assert!(a.is_empty());
    }

    #[test]
    fn a_resolved_alert_that_returns_starts_pending_again() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 0, MIN, 0);
        step(&mut a, found(&["x"]), MIN, MIN, 0);
        step(&mut a, found(&[]), 2 * MIN, MIN, 0);
        assert_eq!(a[&l("x")].state, AlertState::Inactive);
        step(&mut a, found(&["x"]), 3 * MIN, MIN, 0);
        let x = &a[&l("x")];
        assert_eq!(x.state, AlertState::Pending);
        assert_eq!(x.active_at, 3 * MIN);
        assert_eq!(x.resolved_at, None);
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 0, 0, 0);
        step(&mut a, found(&[]), MIN, 0, 3 * MIN);
        let x = &a[&l("x")];
        assert_eq!(x.state, AlertState::Firing);
        assert_eq!(x.keep_firing_since, Some(MIN));
        step(&mut a, found(&[]), 3 * MIN, 0, 3 * MIN);
        assert_eq!(a[&l("x")].state, AlertState::Firing);
        // True again: the keep-firing clock resets.
        step(&mut a, found(&["x"]), 4 * MIN - 1, 0, 3 * MIN);
        assert_eq!(a[&l("x")].keep_firing_since, None);
        step(&mut a, found(&[]), 5 * MIN, 0, 3 * MIN);
        step(&mut a, found(&[]), 8 * MIN - 1, 0, 3 * MIN);
        assert_eq!(a[&l("x")].state, AlertState::Firing);
        step(&mut a, found(&[]), 8 * MIN, 0, 3 * MIN);
        let x = &a[&l("x")];
        assert_eq!(x.state, AlertState::Inactive);
        assert_eq!(x.resolved_at, Some(8 * MIN));
    }

    #[test]
    fn keep_firing_for_does_not_hold_pending_alerts() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 0, 5 * MIN, 10 * MIN);
        step(&mut a, found(&[]), MIN, 5 * MIN, 10 * MIN);
        assert!(a.is_empty());
    }

    #[test]
    fn firing_alerts_are_resent_every_resend_delay() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x"]), 0, 0, 0);
        let x = a.get_mut(&l("x")).unwrap();
        x.last_sent_at = Some(0);
        assert!(!x.needs_sending(30_000, MIN));
        assert!(!x.needs_sending(MIN, MIN));
        assert!(x.needs_sending(MIN + 1, MIN));
    }

    #[test]
    fn independent_label_sets_are_independent_alerts() {
        let mut a = BTreeMap::new();
        step(&mut a, found(&["x", "y"]), 0, MIN, 0);
        step(&mut a, found(&["x"]), MIN, MIN, 0);
        assert_eq!(a.len(), 1);
        assert_eq!(a[&l("x")].state, AlertState::Firing);
    }
}
