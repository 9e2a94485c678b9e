//! Receivers: their configuration (Alertmanager's `receivers` schema plus
//! vigil's `sms_configs`) and the integrations built from it.
//!
//! ```yaml
//! receivers:
//!   - name: devops
//!     slack_configs:
//!       - api_url: https://hooks.slack.com/services/T/B/X
//!         channel: '#alerts'
//!     email_configs:
//!       - to: devops@example.com
//!         from: vigil@example.com
//!         smarthost: smtp.example.com:587
//!         auth_username: vigil
//!         auth_password: secret
//!     webhook_configs:
//!       - url: http://127.0.0.1:5001/hook
//!     sms_configs:
//!       - preset: twilio
//!         account_sid: AC123
//!         auth_token: secret
//!         from: '+15550001111'
//!         to: ['+15550002222']
//! ```
//!
//! Every integration renders its texts with a [`TemplateSet`] (vigil's
//! default templates plus the files of `templates:`) against Alertmanager's
//! data model, and sends once: retries, timeouts around the whole attempt
//! and metrics are the pipeline's. Errors say whether a retry may help
//! (network errors, 5xx, 429, SMTP 4xx) and never carry a secret (URLs of
//! webhooks and Slack are treated as secrets, as Alertmanager does).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use vigil_template::TemplateSet;

use crate::types::{Integration, NotifyError};

mod data;
mod email;
mod http;
mod slack;
mod sms;
mod webhook;

pub use email::EmailConfig;
pub use http::{Authorization, BasicAuth, HttpConfig, TlsConfig};
pub use slack::{SlackConfig, SlackField};
pub use sms::{SmsConfig, SmsFormat, SmsPreset};
pub use webhook::WebhookConfig;

/// A secret configuration value: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// One `receivers` entry. Integrations of Alertmanager's that vigil does
/// not have (`pagerduty_configs`, `opsgenie_configs`, ...) are accepted so
/// an existing `alertmanager.yml` loads, and skipped with a warning.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RawReceiver")]
pub struct ReceiverConfig {
    /// The receiver's name, referenced by routes.
    pub name: String,
    /// Webhooks (Alertmanager's version 4 payload).
    pub webhook_configs: Vec<WebhookConfig>,
    /// Slack incoming webhooks.
    pub slack_configs: Vec<SlackConfig>,
    /// Email over SMTP.
    pub email_configs: Vec<EmailConfig>,
    /// SMS through an HTTP gateway (vigil's own).
    pub sms_configs: Vec<SmsConfig>,
    /// Alertmanager integrations vigil does not implement that the entry
    /// configures: their key and how many entries.
    pub unsupported: Vec<(String, usize)>,
}

impl ReceiverConfig {
    /// A receiver with no integrations (a black hole, as in Alertmanager).
    pub fn new(name: impl Into<String>) -> ReceiverConfig {
        ReceiverConfig {
            name: name.into(),
            webhook_configs: Vec::new(),
            slack_configs: Vec::new(),
            email_configs: Vec::new(),
            sms_configs: Vec::new(),
            unsupported: Vec::new(),
        }
    }

    /// Joins the relative paths of every integration (`url_file`,
    /// `api_url_file`, `auth_password_file`, `http_config` and
    /// `tls_config` files, ...) onto `base`; see
    /// [`crate::Config::resolve_paths`].
    pub fn resolve_paths(&mut self, base: &Path) {
        for c in &mut self.webhook_configs {
            c.resolve_paths(base);
        }
        for c in &mut self.slack_configs {
            c.resolve_paths(base);
        }
        for c in &mut self.email_configs {
            c.resolve_paths(base);
        }
        for c in &mut self.sms_configs {
            c.resolve_paths(base);
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    #[serde(default)]
    webhook_configs: Vec<WebhookConfig>,
    #[serde(default)]
    slack_configs: Vec<SlackConfig>,
    #[serde(default)]
    email_configs: Vec<EmailConfig>,
    #[serde(default)]
    sms_configs: Vec<SmsConfig>,
    #[serde(default)]
    discord_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    incidentio_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    jira_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    msteams_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    msteamsv2_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    opsgenie_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pagerduty_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pushover_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    rocketchat_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    sns_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    telegram_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    victorops_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    webex_configs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    wechat_configs: Vec<serde::de::IgnoredAny>,
}

impl From<RawReceiver> for ReceiverConfig {
    fn from(r: RawReceiver) -> ReceiverConfig {
        let unsupported = [
            ("discord_configs", r.discord_configs.len()),
            ("incidentio_configs", r.incidentio_configs.len()),
            ("jira_configs", r.jira_configs.len()),
            ("msteams_configs", r.msteams_configs.len()),
            ("msteamsv2_configs", r.msteamsv2_configs.len()),
            ("opsgenie_configs", r.opsgenie_configs.len()),
            ("pagerduty_configs", r.pagerduty_configs.len()),
            ("pushover_configs", r.pushover_configs.len()),
            ("rocketchat_configs", r.rocketchat_configs.len()),
            ("sns_configs", r.sns_configs.len()),
            ("telegram_configs", r.telegram_configs.len()),
            ("victorops_configs", r.victorops_configs.len()),
            ("webex_configs", r.webex_configs.len()),
            ("wechat_configs", r.wechat_configs.len()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), n))
        .collect();
        ReceiverConfig {
            name: r.name,
            webhook_configs: r.webhook_configs,
            slack_configs: r.slack_configs,
            email_configs: r.email_configs,
            sms_configs: r.sms_configs,
            unsupported,
        }
    }
}

/// Why a receiver's integrations could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is missing or invalid.
    #[error("{0}")]
    Invalid(String),
    /// A setting vigil does not support.
    #[error("{0} is not supported by vigil")]
    Unsupported(String),
    /// TLS or HTTP client setup failed.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A template does not parse.
    #[error("template: {0}")]
    Template(String),
}

/// Defaults the `global` section gives receivers (Alertmanager's
/// `smtp_*`, `slack_api_url` and `http_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverDefaults {
    /// `smtp_from`.
    pub smtp_from: Option<String>,
    /// `smtp_hello` (default `localhost`).
    pub smtp_hello: String,
    /// `smtp_smarthost` (`host:port`).
    pub smtp_smarthost: Option<String>,
    /// `smtp_auth_username`.
    pub smtp_auth_username: Option<String>,
    /// `smtp_auth_password`.
    pub smtp_auth_password: Option<Secret>,
    /// `smtp_auth_password_file`.
    pub smtp_auth_password_file: Option<PathBuf>,
    /// `smtp_auth_identity`.
    pub smtp_auth_identity: Option<String>,
    /// `smtp_require_tls` (default true).
    pub smtp_require_tls: bool,
    /// `slack_api_url`.
    pub slack_api_url: Option<Secret>,
    /// `slack_api_url_file`.
    pub slack_api_url_file: Option<PathBuf>,
    /// `http_config`: used by HTTP integrations that set none.
    pub http_config: Option<HttpConfig>,
}

impl Default for ReceiverDefaults {
    fn default() -> Self {
        ReceiverDefaults {
            smtp_from: None,
            smtp_hello: "localhost".into(),
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_auth_identity: None,
            smtp_require_tls: true,
            slack_api_url: None,
            slack_api_url_file: None,
            http_config: None,
        }
    }
}

/// What building integrations needs besides the receiver's own config.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The templates texts may call: [`TemplateSet::with_defaults`] plus
    /// the files of `templates:`.
    pub templates: Arc<TemplateSet>,
    /// The `global` defaults.
    pub defaults: ReceiverDefaults,
}

impl Default for BuildContext {
    fn default() -> Self {
        BuildContext {
            templates: Arc::new(TemplateSet::with_defaults()),
            defaults: ReceiverDefaults::default(),
        }
    }
}

/// Builds the integrations of a receiver with vigil's default templates
/// and no `global` defaults; see [`build_with`].
pub fn build(cfg: &ReceiverConfig) -> Result<Vec<Box<dyn Integration>>, String> {
    thread_local! {
        static CTX: BuildContext = BuildContext::default();
    }
    CTX.with(|ctx| build_with(cfg, ctx))
        .map_err(|e| e.to_string())
}

/// Builds the integrations of a receiver, in the order webhook, Slack,
/// email, SMS (each in config order). Reads CA and template files: call
/// it off the async workers.
pub fn build_with(
    cfg: &ReceiverConfig,
    ctx: &BuildContext,
) -> Result<Vec<Box<dyn Integration>>, BuildError> {
    let mut out: Vec<Box<dyn Integration>> = Vec::new();
    let at = |kind: &str, i: usize, e: BuildError| -> BuildError {
        let msg = format!("{kind}[{i}]: {e}");
        match e {
            BuildError::Invalid(_) => BuildError::Invalid(msg),
            BuildError::Unsupported(s) => BuildError::Unsupported(format!("{kind}[{i}]: {s}")),
            BuildError::Tls(s) => BuildError::Tls(format!("{kind}[{i}]: {s}")),
            BuildError::Template(s) => BuildError::Template(format!("{kind}[{i}]: {s}")),
        }
    };
    for (key, n) in &cfg.unsupported {
        tracing::warn!(
            receiver = %cfg.name,
            integration = %key,
            entries = n,
            "integration not supported by vigil; skipped"
        );
    }
    for (i, c) in cfg.webhook_configs.iter().enumerate() {
        out.push(Box::new(
            webhook::Webhook::new(c, ctx).map_err(|e| at("webhook_configs", i, e))?,
        ));
    }
    for (i, c) in cfg.slack_configs.iter().enumerate() {
        out.push(Box::new(
            slack::Slack::new(c, ctx).map_err(|e| at("slack_configs", i, e))?,
        ));
    }
    for (i, c) in cfg.email_configs.iter().enumerate() {
        out.push(Box::new(
            email::Email::new(c, ctx).map_err(|e| at("email_configs", i, e))?,
        ));
    }
    for (i, c) in cfg.sms_configs.iter().enumerate() {
        out.push(Box::new(
            sms::Sms::new(c, ctx).map_err(|e| at("sms_configs", i, e))?,
        ));
    }
    Ok(out)
}

/// A duration in Prometheus's syntax (`10s`, `1m`), for `timeout` keys.
pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(None),
        Some(s) => {
            let ms = vigil_model::parse_duration(&s).map_err(serde::de::Error::custom)?;
            Ok(Some(Duration::from_millis(ms.max(0) as u64)))
        }
    }
}

fn default_true() -> bool {
    true
}

/// Checks that a template parses, so errors show at load, not at 3 am.
pub(crate) fn check_template(
    templates: &TemplateSet,
    field: &str,
    text: &str,
) -> Result<(), BuildError> {
    if text.is_empty() {
        return Ok(());
    }
    match templates.render(text, &vigil_template::Data::Nil) {
        Err(e) if e.kind == vigil_template::ErrorKind::Parse => {
            Err(BuildError::Template(format!("{field}: {e}")))
        }
        _ => Ok(()),
    }
}

/// Renders a template for a notification; failures are not retryable.
pub(crate) fn render(
    templates: &TemplateSet,
    field: &str,
    text: &str,
    data: &vigil_template::Data,
    now_ms: i64,
) -> Result<String, NotifyError> {
    let opts = vigil_template::RenderOptions {
        now: Some(now_ms as f64 / 1000.0),
        ..vigil_template::RenderOptions::default()
    };
    templates
        .render_with(text, data, &opts)
        .map_err(|e| NotifyError {
            retryable: false,
            message: format!("{field}: {e}"),
        })
}

/// Truncates `s` to at most `max` characters, ending in `…` when cut
/// (Alertmanager's `TruncateInRunes`). `max == 0` keeps everything.
pub(crate) fn truncate_chars(s: &str, max: usize) -> (String, bool) {
    if max == 0 || s.chars().count() <= max {
        return (s.to_string(), false);
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    (out, true)
}

#[cfg(test)]
mod tests;
