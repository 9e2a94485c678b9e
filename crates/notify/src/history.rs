//! The alert history: what fired and resolved, who acknowledged, what was
//! sent to whom, how escalations went. Alertmanager keeps none (its issues
//! #2223, #1976). Events are kept for a retention period and persisted
//! with the rest of the state.

use serde::{Deserialize, Serialize};

use crate::escalation::AckTarget;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// When (ms).
    pub at: i64,
    /// What.
    pub kind: HistoryKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HistoryKind {
    /// An alert started firing (first received, or firing again).
    Fired {
        /// Fingerprint.
        fingerprint: u64,
        /// Labels.
        labels: Vec<(String, String)>,
        /// Its `startsAt`.
        starts_at: i64,
    },
    /// An alert resolved.
    Resolved {
        /// Fingerprint.
        fingerprint: u64,
        /// Labels.
        labels: Vec<(String, String)>,
        /// Its `endsAt`.
        ends_at: i64,
    },
    /// A notification was sent.
    Notified {
        /// Group key.
        group_key: String,
        /// Receiver.
        receiver: String,
        /// Integration kind.
        integration: String,
        /// Firing alerts sent.
        firing: Vec<u64>,
        /// Resolved alerts sent.
        resolved: Vec<u64>,
        /// The escalation level, when sent because of one.
        escalation_level: Option<usize>,
    },
    /// A notification failed after its retries.
    NotifyFailed {
        /// Group key.
        group_key: String,
        /// Receiver.
        receiver: String,
        /// Integration kind.
        integration: String,
        /// The last error.
        error: String,
    },
    /// An acknowledgement.
    Acked {
        /// What.
        target: AckTarget,
        /// Who.
        by: String,
        /// Comment.
        comment: String,
        /// Expiry.
        expires_at: Option<i64>,
    },
    /// An acknowledgement ended: removed, expired, or cleared because the
    /// group changed or the alert resolved.
    AckCleared {
        /// What.
        target: AckTarget,
        /// Why.
        reason: String,
    },
    /// An escalation notified a level.
    Escalated {
        /// Group key.
        group_key: String,
        /// Policy.
        policy: String,
        /// The level, 1-based.
        level: usize,
    },
    /// An escalation ended.
    EscalationEnded {
        /// Group key.
        group_key: String,
        /// Why: `resolved`, `group changed`, `route changed`.
        reason: String,
    },
    /// A silence was created, updated or expired.
    Silence {
        /// Its ID.
        id: String,
        /// `created`, `updated`, `expired`.
        action: String,
        /// Who created it.
        by: String,
    },
}

impl HistoryEvent {
    /// The alert fingerprint the event is about, if one.
    pub fn fingerprint(&self) -> Option<u64> {
        match &self.kind {
            HistoryKind::Fired { fingerprint, .. } | HistoryKind::Resolved { fingerprint, .. } => {
                Some(*fingerprint)
            }
            HistoryKind::Acked {
                target: AckTarget::Alert(f),
                ..
            }
            | HistoryKind::AckCleared {
                target: AckTarget::Alert(f),
                ..
            } => Some(*f),
            _ => None,
        }
    }

    /// The group key the event is about, if one.
    pub fn group_key(&self) -> Option<&str> {
        match &self.kind {
            HistoryKind::Notified { group_key, .. }
            | HistoryKind::NotifyFailed { group_key, .. }
            | HistoryKind::Escalated { group_key, .. }
            | HistoryKind::EscalationEnded { group_key, .. } => Some(group_key),
            HistoryKind::Acked {
                target: AckTarget::Group(g),
                ..
            }
            | HistoryKind::AckCleared {
                target: AckTarget::Group(g),
                ..
            } => Some(g),
            _ => None,
        }
    }
}

/// A history query; all given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Events at or after (ms).
    pub since: Option<i64>,
    /// Events before (ms).
    pub until: Option<i64>,
    /// Events about this alert (including notifications that carried it).
    pub fingerprint: Option<u64>,
    /// Events about this group.
    pub group_key: Option<String>,
    /// At most this many, the most recent; 0 for all.
    pub limit: usize,
}

impl HistoryQuery {
    /// Whether an event satisfies the query.
    pub fn matches(&self, e: &HistoryEvent) -> bool {
        if self.since.is_some_and(|s| e.at < s) || self.until.is_some_and(|u| e.at >= u) {
            return false;
        }
        if let Some(fp) = self.fingerprint {
            let carried = match &e.kind {
                HistoryKind::Notified {
                    firing, resolved, ..
                } => firing.contains(&fp) || resolved.contains(&fp),
                _ => false,
            };
            if e.fingerprint() != Some(fp) && !carried {
                return false;
            }
        }
        if let Some(g) = &self.group_key {
            if e.group_key() != Some(g.as_str()) {
                return false;
            }
        }
        true
    }
}
