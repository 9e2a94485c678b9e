//! `slack_configs`: a message with one attachment, POSTed to a Slack
//! incoming webhook (or `chat.postMessage` with a bearer token).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_template::TemplateSet;

use super::data::View;
use super::http::{read_file, Body, Client, HttpConfig};
use super::webhook::check_url;
use super::{check_template, de_opt_duration, render, BuildContext, BuildError, Secret};
use crate::config::resolve_path;
use crate::types::{Integration, NotificationData, NotifyError, NotifyFuture};

/// A field of the attachment: title and value are templates.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    /// The field's title.
    pub title: String,
    /// The field's value.
    pub value: String,
    /// Whether it is short enough to sit beside another (default: the
    /// config's `short_fields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// One `slack_configs` entry (Alertmanager's keys; every text is a
/// template).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Whether resolved notifications are sent (default false).
    #[serde(default)]
    pub send_resolved: bool,
    /// The incoming-webhook URL (a secret); default `global.slack_api_url`.
    #[serde(default)]
    pub api_url: Option<Secret>,
    /// A file holding the URL.
    #[serde(default)]
    pub api_url_file: Option<PathBuf>,
    /// HTTP client settings.
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    /// The channel or user (`#alerts`, `@someone`).
    #[serde(default)]
    pub channel: Option<String>,
    /// The bot's name (default `{{ template "slack.default.username" . }}`).
    #[serde(default)]
    pub username: Option<String>,
    /// The attachment colour: `good`, `warning`, `danger` or `#RRGGBB`.
    /// Default: by severity of the firing alerts (critical: `danger`,
    /// warning: `warning`, info: blue, none: `danger`), `good` when
    /// resolved.
    #[serde(default)]
    pub color: Option<String>,
    /// The title (default `{{ template "slack.default.title" . }}`).
    #[serde(default)]
    pub title: Option<String>,
    /// The title's link (default `{{ template "slack.default.titlelink" . }}`).
    #[serde(default)]
    pub title_link: Option<String>,
    /// The pretext.
    #[serde(default)]
    pub pretext: Option<String>,
    /// The text (default `{{ template "slack.default.text" . }}`).
    #[serde(default)]
    pub text: Option<String>,
    /// The fields.
    #[serde(default)]
    pub fields: Vec<SlackField>,
    /// Whether fields are short by default.
    #[serde(default)]
    pub short_fields: bool,
    /// The footer.
    #[serde(default)]
    pub footer: Option<String>,
    /// The fallback text (default `{{ template "slack.default.fallback" . }}`).
    #[serde(default)]
    pub fallback: Option<String>,
    /// The callback id.
    #[serde(default)]
    pub callback_id: Option<String>,
    /// An emoji as the bot's icon (`:fire:`).
    #[serde(default)]
    pub icon_emoji: Option<String>,
    /// An image URL as the bot's icon.
    #[serde(default)]
    pub icon_url: Option<String>,
    /// An image in the attachment.
    #[serde(default)]
    pub image_url: Option<String>,
    /// A thumbnail in the attachment.
    #[serde(default)]
    pub thumb_url: Option<String>,
    /// Whether names are linked.
    #[serde(default)]
    pub link_names: bool,
    /// Which attachment fields Slack formats as mrkdwn (default
    /// `fallback`, `pretext`, `text`).
    #[serde(default)]
    pub mrkdwn_in: Option<Vec<String>>,
    /// The request timeout (none by default).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

impl SlackConfig {
    /// Joins the relative paths (`api_url_file`, `http_config`'s files)
    /// onto `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve_path(base, &mut self.api_url_file);
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

/// A Slack integration.
#[derive(Debug)]
pub(crate) struct Slack {
    cfg: SlackConfig,
    url: Url,
    client: Client,
    templates: Arc<TemplateSet>,
}

#[derive(Debug, Serialize)]
struct Request {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    link_names: bool,
    attachments: Vec<Attachment>,
}

#[derive(Debug, Serialize)]
struct Attachment {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pretext: String,
    text: String,
    fallback: String,
    callback_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<SlackField>,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mrkdwn_in: Vec<String>,
}

/// Slack truncates titles past this many characters; so does Alertmanager.
const MAX_TITLE: usize = 1024;

impl Slack {
    pub(crate) fn new(c: &SlackConfig, ctx: &BuildContext) -> Result<Slack, BuildError> {
        let url = match (&c.api_url, &c.api_url_file) {
            (Some(_), Some(_)) => {
                return Err(BuildError::Invalid(
                    "at most one of api_url and api_url_file must be configured".into(),
                ))
            }
            (Some(u), None) => Url::Inline(u.clone()),
            (None, Some(f)) => Url::File(f.clone()),
            (None, None) => match (
                &ctx.defaults.slack_api_url,
                &ctx.defaults.slack_api_url_file,
            ) {
                (Some(u), _) => Url::Inline(u.clone()),
                (None, Some(f)) => Url::File(f.clone()),
                (None, None) => {
                    return Err(BuildError::Invalid(
                        "no global Slack API URL set either inline or in a file".into(),
                    ))
                }
            },
        };
        if let Url::Inline(u) = &url {
            check_url(u.expose())?;
        }
        let t = &ctx.templates;
        for (field, text) in [
            ("channel", &c.channel),
            ("username", &c.username),
            ("color", &c.color),
            ("title", &c.title),
            ("title_link", &c.title_link),
            ("pretext", &c.pretext),
            ("text", &c.text),
            ("footer", &c.footer),
            ("fallback", &c.fallback),
            ("callback_id", &c.callback_id),
            ("icon_emoji", &c.icon_emoji),
            ("icon_url", &c.icon_url),
            ("image_url", &c.image_url),
            ("thumb_url", &c.thumb_url),
        ] {
            check_template(t, field, text.as_deref().unwrap_or(""))?;
        }
        for f in &c.fields {
            check_template(t, "fields.title", &f.title)?;
            check_template(t, "fields.value", &f.value)?;
        }
        let http = c
            .http_config
            .as_ref()
            .or(ctx.defaults.http_config.as_ref())
            .cloned()
            .unwrap_or_default();
        Ok(Slack {
            cfg: c.clone(),
            url,
            client: Client::new(&http, c.timeout)?,
            templates: ctx.templates.clone(),
        })
    }

    /// The default colour: severity decides while firing.
    fn default_color(view: &View<'_>) -> &'static str {
        if !view.firing() {
            return "good";
        }
        match view.severity().as_deref() {
            Some("warning") => "warning",
            Some("info") | Some("none") => "#439FE0",
            _ => "danger",
        }
    }

    fn payload(&self, data: &NotificationData) -> Result<Vec<u8>, NotifyError> {
        let view = View::new(data, 0);
        let d = view.template_data();
        let c = &self.cfg;
        let t = &*self.templates;
        let now = data.now;
        let r = |field: &str, v: &Option<String>, default: &str| -> Result<String, NotifyError> {
            render(t, field, v.as_deref().unwrap_or(default), &d, now)
        };
        let (title, _) = super::truncate_chars(
            &r(
                "title",
                &c.title,
                r#"{{ template "slack.default.title" . }}"#,
            )?,
            MAX_TITLE,
        );
        let color = match &c.color {
            Some(tmpl) => render(t, "color", tmpl, &d, now)?,
            None => Self::default_color(&view).to_string(),
        };
        let mut fields = Vec::with_capacity(c.fields.len());
        for f in &c.fields {
            fields.push(SlackField {
                title: render(t, "fields.title", &f.title, &d, now)?,
                value: render(t, "fields.value", &f.value, &d, now)?,
                short: Some(f.short.unwrap_or(c.short_fields)),
            });
        }
        let req = Request {
            channel: r("channel", &c.channel, "")?,
            username: r(
                "username",
                &c.username,
                r#"{{ template "slack.default.username" . }}"#,
            )?,
            icon_emoji: r("icon_emoji", &c.icon_emoji, "")?,
            icon_url: r("icon_url", &c.icon_url, "")?,
            link_names: c.link_names,
            attachments: vec![Attachment {
                title,
                title_link: r(
                    "title_link",
                    &c.title_link,
                    r#"{{ template "slack.default.titlelink" . }}"#,
                )?,
                pretext: r("pretext", &c.pretext, "")?,
                text: r("text", &c.text, r#"{{ template "slack.default.text" . }}"#)?,
                fallback: r(
                    "fallback",
                    &c.fallback,
                    r#"{{ template "slack.default.fallback" . }}"#,
                )?,
                callback_id: r("callback_id", &c.callback_id, "")?,
                fields,
                image_url: r("image_url", &c.image_url, "")?,
                thumb_url: r("thumb_url", &c.thumb_url, "")?,
                footer: r("footer", &c.footer, "")?,
                color,
                mrkdwn_in: c
                    .mrkdwn_in
                    .clone()
                    .unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
            }],
        };
        serde_json::to_vec(&req).map_err(|e| NotifyError {
            retryable: false,
            message: format!("encoding the payload: {e}"),
        })
    }
}

impl Integration for Slack {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn send_resolved(&self) -> bool {
        self.cfg.send_resolved
    }

    fn notify<'a>(&'a self, data: &'a NotificationData) -> NotifyFuture<'a> {
        Box::pin(async move {
            let body = self.payload(data)?;
            let url = match &self.url {
                Url::Inline(u) => u.expose().to_string(),
                Url::File(f) => read_file(f).await?,
            };
            self.client.post(&url, Body::Json(body)).await
        })
    }
}
