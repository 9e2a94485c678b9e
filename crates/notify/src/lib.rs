//! vigil-notify: what Alertmanager does for a small team, plus the two
//! things its users keep asking for: escalation and acknowledgement.
//!
//! Alerts come in (from vigil's rules, or from Prometheus through the
//! Alertmanager v2 API the server exposes), are routed through a routing
//! tree into aggregation groups, inhibited and silenced, and sent by
//! receiver integrations (webhook, Slack, email, SMS) at Alertmanager's
//! group_wait / group_interval / repeat_interval times. Escalation policies
//! move an unacknowledged group up levels of receivers; acknowledgements
//! stop that. State (silences, acks, escalation progress, the notification
//! log) is persisted in a CRC-framed append-only file.
//!
//! This crate depends on vigil-model and vigil-template only; the clock is
//! explicit, so everything runs under tests with a fake clock.
#![warn(missing_docs)]

pub mod receivers;
pub mod types;

pub use types::{Alert, Integration, NotificationData, NotifyError};
