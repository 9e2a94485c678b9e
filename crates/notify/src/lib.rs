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

pub mod config;
pub mod dispatch;
pub mod escalation;
pub mod history;
pub mod inhibit;
pub mod matcher;
pub mod nflog;
pub mod notifier;
pub mod receivers;
pub mod route;
pub mod silence;
pub mod state;
pub mod timeinterval;
pub mod types;

pub use config::{Config, ConfigError, GlobalConfig, PromDuration};
pub use dispatch::{AlertFilter, AlertStatus, CoreOptions, GroupStatus, ReceiveError};
pub use escalation::{Ack, AckError, AckRequest, AckTarget, EscalationState, ACK_PATH_PREFIX};
pub use history::{HistoryEvent, HistoryKind, HistoryQuery};
pub use matcher::{parse_matchers, MatchType, Matcher, Matchers};
pub use notifier::{
    Clock, FakeClock, IntegrationFactory, Notifier, NotifierError, NotifierOptions, SystemClock,
    TickReport,
};
pub use silence::{Silence, SilenceError, SilenceRequest, SilenceState};
pub use types::{Alert, Integration, NotificationData, NotifyError};
