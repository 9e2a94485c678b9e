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
//!
//! The central decision: the pipeline's logic is one synchronous
//! [`dispatch::Core`] that only *plans* (what is due at a time) and
//! *records* (what was sent); [`Notifier`] wraps it, sends on tokio with
//! retries, and is driven by `tick(now)`. Alertmanager runs a goroutine and
//! a timer per aggregation group instead, which is why its timing is hard
//! to test; here every timing rule is a plain function of `now`.
//!
//! Modules: [`config`] (the `alertmanager.yml` schema plus `escalations`),
//! [`matcher`], [`route`], [`dispatch`] (groups and their timers),
//! [`nflog`] (dedup), [`inhibit`], [`silence`], [`timeinterval`],
//! [`escalation`] (policies, acks, ack links), [`history`], [`state`] (the
//! CRC-framed state file) and [`notifier`].
//!
//! ```
//! use std::sync::Arc;
//! use vigil_notify::{Alert, AlertFilter, Config, FakeClock, Notifier};
//!
//! let config: Config = serde_yaml_ng::from_str(
//!     "route: {receiver: team, group_wait: 30s}\nreceivers: [{name: team}]",
//! )
//! .unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let clock = Arc::new(FakeClock::new(1_700_000_000_000));
//! let n = Notifier::new(config, dir.path(), clock.clone()).unwrap();
//! n.receive(vec![Alert {
//!     labels: vigil_model::Labels::from_pairs([("alertname", "Down")]),
//!     annotations: Default::default(),
//!     starts_at: 0, // absent: now
//!     ends_at: 0,   // absent: now + resolve_timeout
//!     generator_url: String::new(),
//!     updated_at: 0,
//! }])
//! .unwrap();
//! assert_eq!(n.alerts(&AlertFilter::default()).len(), 1);
//! assert_eq!(n.next_due(), Some(1_700_000_030_000)); // group_wait
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! rt.block_on(n.tick(1_700_000_030_000));
//! ```
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
