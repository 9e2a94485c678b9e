//! `sms_configs` (vigil's own): one HTTP POST per recipient to an SMS
//! gateway. The `twilio` preset sends Twilio's Messages API form
//! (`To`, `From`, `Body`, basic auth with the account SID and auth token);
//! the `generic` preset sends the `fields` templates as a JSON object or a
//! form. The message is cut to `max_length` characters with an ellipsis.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use vigil_template::{Data, TemplateSet};

use super::data::View;
use super::http::{read_file, Body, Client, HttpConfig, SecretSource};
use super::webhook::check_url;
use super::{
    check_template, de_opt_duration, render, truncate_chars, BuildContext, BuildError, Secret,
};
use crate::config::resolve_path;
use crate::types::{Integration, NotificationData, NotifyError, NotifyFuture};

/// The request format of an SMS gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsPreset {
    /// Twilio's Messages API (and gateways compatible with it).
    Twilio,
    /// Any gateway: `fields` rendered and sent as JSON or a form.
    #[default]
    Generic,
}

/// How the `generic` preset encodes its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsFormat {
    /// A JSON object of strings.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

fn default_max_length() -> usize {
    160
}

fn default_message() -> String {
    r#"{{ template "sms.default.message" . }}"#.to_string()
}

/// One `sms_configs` entry.
///
/// ```yaml
/// sms_configs:
///   - preset: generic
///     url: https://sms.example.com/send
///     format: json
///     to: ['+15550002222']
///     fields:
///       number: '{{ .SMS.To }}'
///       text: '{{ .SMS.Message }}'
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Whether resolved notifications are sent (default false).
    #[serde(default)]
    pub send_resolved: bool,
    /// `twilio` or `generic` (default).
    #[serde(default)]
    pub preset: SmsPreset,
    /// The gateway URL (a secret). Default for `twilio`: Twilio's
    /// Messages API for `account_sid`.
    #[serde(default)]
    pub url: Option<Secret>,
    /// A file holding the URL.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Twilio's account SID (the basic-auth user name).
    #[serde(default)]
    pub account_sid: Option<String>,
    /// Twilio's auth token (the basic-auth password).
    #[serde(default)]
    pub auth_token: Option<Secret>,
    /// A file holding the auth token.
    #[serde(default)]
    pub auth_token_file: Option<PathBuf>,
    /// The sender number or name.
    #[serde(default)]
    pub from: String,
    /// The recipients; one request each.
    pub to: Vec<String>,
    /// The message template (default `{{ template "sms.default.message" . }}`).
    #[serde(default = "default_message")]
    pub message: String,
    /// The message is cut to this many characters, ending in `…`
    /// (default 160; 0: no limit).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// `generic`: how `fields` are encoded (`json`, the default, or `form`).
    #[serde(default)]
    pub format: SmsFormat,
    /// `generic`: the request's fields, each a template over the
    /// notification data plus `.SMS.To`, `.SMS.From` and `.SMS.Message`
    /// (the cut message). Default `to`, `from`, `message`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// HTTP client settings (`generic`; `twilio` uses basic auth).
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    /// The request timeout (none by default).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

impl SmsConfig {
    /// Joins the relative paths (`url_file`, `auth_token_file`,
    /// `http_config`'s files) onto `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve_path(base, &mut self.url_file);
        resolve_path(base, &mut self.auth_token_file);
        if let Some(h) = &mut self.http_config {
            h.resolve_paths(base);
        }
    }
}

#[derive(Debug, Clone)]
enum Url {
    Inline(String),
    Secret(Secret),
    File(PathBuf),
}

/// An SMS integration.
#[derive(Debug)]
pub(crate) struct Sms {
    cfg: SmsConfig,
    url: Url,
    client: Client,
    templates: Arc<TemplateSet>,
}

const TWILIO_API: &str = "https://api.twilio.com/2010-04-01/Accounts";

impl Sms {
    pub(crate) fn new(c: &SmsConfig, ctx: &BuildContext) -> Result<Sms, BuildError> {
        if c.to.is_empty() {
            return Err(BuildError::Invalid("no recipients in `to`".into()));
        }
        if c.to.iter().any(|t| t.trim().is_empty()) {
            return Err(BuildError::Invalid("an empty recipient in `to`".into()));
        }
        let url = match (&c.url, &c.url_file) {
            (Some(_), Some(_)) => {
                return Err(BuildError::Invalid(
                    "at most one of url and url_file must be configured".into(),
                ))
            }
            (Some(u), None) => {
                check_url(u.expose())?;
                Url::Secret(u.clone())
            }
            (None, Some(f)) => Url::File(f.clone()),
            (None, None) => match (c.preset, &c.account_sid) {
                (SmsPreset::Twilio, Some(sid)) if !sid.is_empty() => {
                    if !sid.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                        return Err(BuildError::Invalid(
                            "account_sid must be letters and digits".into(),
                        ));
                    }
                    Url::Inline(format!("{TWILIO_API}/{sid}/Messages.json"))
                }
                _ => {
                    return Err(BuildError::Invalid(
                        "one of url or url_file must be configured (or account_sid for twilio)"
                            .into(),
                    ))
                }
            },
        };
        let http = c
            .http_config
            .as_ref()
            .or(ctx.defaults.http_config.as_ref())
            .cloned()
            .unwrap_or_default();
        let mut client = Client::new(&http, c.timeout)?;
        match c.preset {
            SmsPreset::Twilio => {
                let sid = c.account_sid.clone().unwrap_or_default();
                if sid.is_empty() {
                    return Err(BuildError::Invalid("twilio needs account_sid".into()));
                }
                let token =
                    SecretSource::from_parts(c.auth_token.as_ref(), c.auth_token_file.as_ref())
                        .ok_or_else(|| {
                            BuildError::Invalid("twilio needs auth_token or auth_token_file".into())
                        })?;
                if !c.fields.is_empty() {
                    return Err(BuildError::Invalid(
                        "fields apply to the generic preset only".into(),
                    ));
                }
                if c.from.is_empty() {
                    return Err(BuildError::Invalid("twilio needs `from`".into()));
                }
                client = client.with_basic_auth(sid, token);
            }
            SmsPreset::Generic => {
                if c.account_sid.is_some() || c.auth_token.is_some() || c.auth_token_file.is_some()
                {
                    return Err(BuildError::Invalid(
                        "account_sid and auth_token apply to the twilio preset; use http_config"
                            .into(),
                    ));
                }
            }
        }
        check_template(&ctx.templates, "message", &c.message)?;
        for (k, v) in &c.fields {
            check_template(&ctx.templates, &format!("fields.{k}"), v)?;
        }
        Ok(Sms {
            cfg: c.clone(),
            url,
            client,
            templates: ctx.templates.clone(),
        })
    }

    /// The request bodies, one per recipient.
    fn bodies(&self, data: &NotificationData) -> Result<Vec<Body>, NotifyError> {
        let view = View::new(data, 0);
        let mut d = view.template_data();
        let c = &self.cfg;
        let t = &*self.templates;
        let message = render(t, "message", &c.message, &d, data.now)?;
        let (message, _) = truncate_chars(message.trim(), c.max_length);
        let mut out = Vec::with_capacity(c.to.len());
        for to in &c.to {
            match c.preset {
                SmsPreset::Twilio => {
                    let form = form_encode(&[("To", to), ("From", &c.from), ("Body", &message)]);
                    out.push(Body::Form(form));
                }
                SmsPreset::Generic => {
                    if let Data::Map(m) = &mut d {
                        let mut sms = BTreeMap::new();
                        sms.insert("To".to_string(), Data::from(to.as_str()));
                        sms.insert("From".to_string(), Data::from(c.from.as_str()));
                        sms.insert("Message".to_string(), Data::from(message.as_str()));
                        m.insert("SMS".to_string(), Data::Map(sms));
                    }
                    let fields: Vec<(String, String)> = if c.fields.is_empty() {
                        vec![
                            ("from".into(), c.from.clone()),
                            ("message".into(), message.clone()),
                            ("to".into(), to.clone()),
                        ]
                    } else {
                        let mut f = Vec::with_capacity(c.fields.len());
                        for (k, v) in &c.fields {
                            f.push((
                                k.clone(),
                                render(t, &format!("fields.{k}"), v, &d, data.now)?,
                            ));
                        }
                        f
                    };
                    out.push(match c.format {
                        SmsFormat::Json => {
                            let obj: serde_json::Map<String, serde_json::Value> = fields
                                .into_iter()
                                .map(|(k, v)| (k, serde_json::Value::String(v)))
                                .collect();
                            Body::Json(serde_json::to_vec(&obj).map_err(|e| NotifyError {
                                retryable: false,
                                message: format!("encoding the payload: {e}"),
                            })?)
                        }
                        SmsFormat::Form => {
                            let pairs: Vec<(&str, &str)> = fields
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str()))
                                .collect();
                            Body::Form(form_encode(&pairs))
                        }
                    });
                }
            }
        }
        Ok(out)
    }
}

/// `application/x-www-form-urlencoded` encoding.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Integration for Sms {
    fn kind(&self) -> &'static str {
        "sms"
    }

    fn send_resolved(&self) -> bool {
        self.cfg.send_resolved
    }

    /// Sends to every recipient; fails with the first failure after trying
    /// them all (retryable if any failure is), so one bad number does not
    /// keep the others from being paged.
    fn notify<'a>(&'a self, data: &'a NotificationData) -> NotifyFuture<'a> {
        Box::pin(async move {
            let bodies = self.bodies(data)?;
            let url = match &self.url {
                Url::Inline(u) => u.clone(),
                Url::Secret(u) => u.expose().to_string(),
                Url::File(f) => read_file(f).await?,
            };
            let mut failed: Option<NotifyError> = None;
            let mut retryable = false;
            let mut n_failed = 0;
            for body in bodies {
                if let Err(e) = self.client.post(&url, body).await {
                    retryable |= e.retryable;
                    n_failed += 1;
                    failed.get_or_insert(e);
                }
            }
            match failed {
                None => Ok(()),
                Some(e) => Err(NotifyError {
                    retryable,
                    message: format!(
                        "{n_failed} of {} recipients failed: {}",
                        self.cfg.to.len(),
                        e.message
                    ),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_encode() {
        assert_eq!(
            form_encode(&[("To", "+1 555"), ("Body", "a&b=c é…")]),
            "To=%2B1+555&Body=a%26b%3Dc+%C3%A9%E2%80%A6"
        );
    }
}
