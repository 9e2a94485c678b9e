//! The types shared by the notification pipeline and the receiver
//! integrations. Times are milliseconds since the Unix epoch.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use vigil_model::Labels;

/// An alert as Alertmanager holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it started (ms).
    pub starts_at: i64,
    /// When it ends or ended (ms); alerts received without one get
    /// `now + resolve_timeout`, as in Alertmanager.
    pub ends_at: i64,
    /// A link back to the source.
    pub generator_url: String,
    /// When vigil last received it (ms).
    pub updated_at: i64,
}

impl Alert {
    /// Alertmanager's fingerprint of the label set.
    pub fn fingerprint(&self) -> u64 {
        self.labels.stable_hash()
    }

    /// Whether the alert is resolved at `now`.
    pub fn resolved_at(&self, now: i64) -> bool {
        self.ends_at <= now
    }
}

/// What one notification carries: Alertmanager's template data model
/// (`.Receiver`, `.Status`, `.Alerts`, `.GroupLabels`, `.CommonLabels`,
/// `.CommonAnnotations`, `.ExternalURL`) plus vigil's acknowledgement and
/// escalation fields.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationData {
    /// The receiver's name.
    pub receiver: String,
    /// `firing` when any alert is firing, else `resolved`.
    pub status: String,
    /// The alerts, firing first.
    pub alerts: Vec<Alert>,
    /// The group's labels (its `group_by` values).
    pub group_labels: Labels,
    /// Labels all alerts share.
    pub common_labels: Labels,
    /// Annotations all alerts share.
    pub common_annotations: BTreeMap<String, String>,
    /// The URL vigil is reached at.
    pub external_url: String,
    /// The aggregation group's key.
    pub group_key: String,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: u64,
    /// The time of the notification (ms).
    pub now: i64,
    /// A link that acknowledges the group (vigil's).
    pub ack_url: Option<String>,
    /// The escalation level notified, 1-based, when the route escalates.
    pub escalation_level: Option<usize>,
}

/// Why a notification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// Whether trying again may succeed (network errors, 5xx, 429).
    pub retryable: bool,
    /// What failed.
    pub message: String,
}

/// A future returned by [`Integration::notify`].
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// One receiver integration (a webhook, a Slack channel, an email
/// address, an SMS gateway): sends one notification, once. Retries,
/// timeouts and metrics are the pipeline's.
pub trait Integration: Send + Sync + fmt::Debug {
    /// The integration's kind: `webhook`, `slack`, `email`, `sms`.
    fn kind(&self) -> &'static str;
    /// Whether resolved notifications are sent (`send_resolved`).
    fn send_resolved(&self) -> bool;
    /// Sends one notification.
    fn notify<'a>(&'a self, data: &'a NotificationData) -> NotifyFuture<'a>;
}
