//! `webhook_configs`: Alertmanager's version 4 JSON payload, POSTed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::data::View;
use super::http::{read_file, Body, Client, HttpConfig};
use super::{de_opt_duration, default_true, BuildContext, BuildError, Secret};
use crate::config::resolve_path;
use crate::types::{Integration, NotificationData, NotifyError, NotifyFuture};

/// One `webhook_configs` entry (Alertmanager's keys).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Whether resolved notifications are sent (default true).
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// The endpoint (a secret: it is never logged).
    #[serde(default)]
    pub url: Option<Secret>,
    /// A file holding the endpoint, read at every notification.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// HTTP client settings.
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    /// At most this many alerts per payload (0: all); the rest are counted
    /// in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: u64,
    /// The request timeout (none by default).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

impl WebhookConfig {
    /// Joins the relative paths (`url_file`, `http_config`'s files) onto
    /// `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve_path(base, &mut self.url_file);
        if let Some(h) = &mut self.http_config {
            h.resolve_paths(base);
        }
    }
}

#[derive(Debug, Clone)]
enum Url {
    Inline(Secret),
    File(PathBuf),
}

/// A webhook integration.
#[derive(Debug)]
pub(crate) struct Webhook {
    url: Url,
    client: Client,
    max_alerts: u64,
    send_resolved: bool,
}

impl Webhook {
    pub(crate) fn new(c: &WebhookConfig, ctx: &BuildContext) -> Result<Webhook, BuildError> {
        let url = match (&c.url, &c.url_file) {
            (Some(_), Some(_)) => {
                return Err(BuildError::Invalid(
                    "one of url or url_file must be configured, not both".into(),
                ))
            }
            (Some(u), None) => {
                check_url(u.expose())?;
                Url::Inline(u.clone())
            }
            (None, Some(f)) => Url::File(f.clone()),
            (None, None) => {
                return Err(BuildError::Invalid(
                    "one of url or url_file must be configured".into(),
                ))
            }
        };
        let http = c
            .http_config
            .as_ref()
            .or(ctx.defaults.http_config.as_ref())
            .cloned()
            .unwrap_or_default();
        Ok(Webhook {
            url,
            client: Client::new(&http, c.timeout)?,
            max_alerts: c.max_alerts,
            send_resolved: c.send_resolved,
        })
    }
}

/// Checks that `u` is an absolute http(s) URL without printing it.
pub(crate) fn check_url(u: &str) -> Result<(), BuildError> {
    match reqwest::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.has_host() => Ok(()),
        Ok(_) => Err(BuildError::Invalid(
            "the URL must be http or https with a host".into(),
        )),
        Err(e) => Err(BuildError::Invalid(format!("invalid URL: {e}"))),
    }
}

impl Integration for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn notify<'a>(&'a self, data: &'a NotificationData) -> NotifyFuture<'a> {
        Box::pin(async move {
            let body = {
                let view = View::new(data, self.max_alerts);
                serde_json::to_vec(&view.webhook_message()).map_err(|e| NotifyError {
                    retryable: false,
                    message: format!("encoding the payload: {e}"),
                })?
            };
            let url = match &self.url {
                Url::Inline(u) => u.expose().to_string(),
                Url::File(f) => read_file(f).await?,
            };
            self.client.post(&url, Body::Json(body)).await
        })
    }
}
