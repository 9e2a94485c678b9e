//! `email_configs`: a message over SMTP with lettre's async tokio
//! transport (rustls with ring; no OpenSSL). `require_tls` means STARTTLS,
//! port 465 (or `force_implicit_tls`) means TLS from the first byte, as in
//! Alertmanager. HTML and text bodies come from templates; both make a
//! `multipart/alternative` message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use vigil_template::TemplateSet;

use super::data::View;
use super::http::{read_tls_file, SecretSource, TlsConfig};
use super::{check_template, de_opt_duration, render, BuildContext, BuildError, Secret};
use crate::config::resolve_path;
use crate::types::{Integration, NotificationData, NotifyError, NotifyFuture};

/// One `email_configs` entry (Alertmanager's keys; `to`, `from`, `html`,
/// `text` and header values are templates).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Whether resolved notifications are sent (default false).
    #[serde(default)]
    pub send_resolved: bool,
    /// The recipients, comma-separated.
    pub to: String,
    /// The sender (default `global.smtp_from`).
    #[serde(default)]
    pub from: Option<String>,
    /// The name sent in EHLO (default `global.smtp_hello`).
    #[serde(default)]
    pub hello: Option<String>,
    /// The SMTP server, `host:port` (default `global.smtp_smarthost`).
    #[serde(default)]
    pub smarthost: Option<String>,
    /// The user name to authenticate with (PLAIN or LOGIN).
    #[serde(default)]
    pub auth_username: Option<String>,
    /// The password.
    #[serde(default)]
    pub auth_password: Option<Secret>,
    /// A file holding the password.
    #[serde(default)]
    pub auth_password_file: Option<PathBuf>,
    /// CRAM-MD5's secret: not supported by vigil.
    #[serde(default)]
    pub auth_secret: Option<Secret>,
    /// A file holding the CRAM-MD5 secret: not supported by vigil.
    #[serde(default)]
    pub auth_secret_file: Option<PathBuf>,
    /// PLAIN's authorization identity: accepted; the authentication
    /// identity (the user name) is used.
    #[serde(default)]
    pub auth_identity: Option<String>,
    /// Whether STARTTLS is required (default `global.smtp_require_tls`,
    /// true). Without it the connection is not encrypted.
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// TLS from the first byte (default: when the port is 465).
    #[serde(default)]
    pub force_implicit_tls: Option<bool>,
    /// TLS settings.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// The HTML body (default `{{ template "email.default.html" . }}`);
    /// empty for none.
    #[serde(default)]
    pub html: Option<String>,
    /// The text body (default `{{ template "email.default.text" . }}`);
    /// empty for none.
    #[serde(default)]
    pub text: Option<String>,
    /// Headers; `Subject` defaults to
    /// `{{ template "email.default.subject" . }}`, `To` and `From` to the
    /// fields above.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The SMTP session timeout (none by default).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

impl EmailConfig {
    /// Joins the relative paths (`auth_password_file`, `auth_secret_file`,
    /// `tls_config`'s files) onto `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve_path(base, &mut self.auth_password_file);
        resolve_path(base, &mut self.auth_secret_file);
        if let Some(t) = &mut self.tls_config {
            t.resolve_paths(base);
        }
    }
}

/// An email integration.
#[derive(Debug)]
pub(crate) struct Email {
    cfg: EmailConfig,
    headers: BTreeMap<String, String>,
    html: String,
    text: String,
    host: String,
    port: u16,
    hello: String,
    tls: TlsMode,
    tls_config: Option<TlsConfig>,
    username: Option<String>,
    password: Option<SecretSource>,
    templates: Arc<TemplateSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    None,
    StartTls,
    Implicit,
}

/// Alertmanager's header-name normalization (`textproto.CanonicalMIMEHeaderKey`).
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

fn split_host_port(s: &str) -> Result<(String, u16), BuildError> {
    let bad = || BuildError::Invalid(format!("smarthost {s:?}: want host:port"));
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((host.to_string(), port))
}

/// Strips line breaks so a rendered header value cannot add headers.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ").trim().to_string()
}

impl Email {
    pub(crate) fn new(c: &EmailConfig, ctx: &BuildContext) -> Result<Email, BuildError> {
        let g = &ctx.defaults;
        let smarthost = c
            .smarthost
            .clone()
            .or_else(|| g.smtp_smarthost.clone())
            .ok_or_else(|| {
                BuildError::Invalid("no smarthost (nor global smtp_smarthost)".into())
            })?;
        let (host, port) = split_host_port(&smarthost)?;
        let from = c
            .from
            .clone()
            .or_else(|| g.smtp_from.clone())
            .ok_or_else(|| BuildError::Invalid("no from address (nor global smtp_from)".into()))?;
        if c.to.trim().is_empty() {
            return Err(BuildError::Invalid("missing to address".into()));
        }
        if c.auth_secret.is_some() || c.auth_secret_file.is_some() {
            return Err(BuildError::Unsupported("auth_secret (CRAM-MD5)".into()));
        }
        let require_tls = c.require_tls.unwrap_or(g.smtp_require_tls);
        let implicit = c.force_implicit_tls.unwrap_or(port == 465);
        let tls = if implicit {
            TlsMode::Implicit
        } else if require_tls {
            TlsMode::StartTls
        } else {
            TlsMode::None
        };
        let (username, password) = match &c.auth_username {
            Some(u) if !u.is_empty() => (
                Some(u.clone()),
                SecretSource::from_parts(c.auth_password.as_ref(), c.auth_password_file.as_ref()),
            ),
            _ => match &g.smtp_auth_username {
                Some(u) if !u.is_empty() && c.auth_username.is_none() => (
                    Some(u.clone()),
                    SecretSource::from_parts(
                        g.smtp_auth_password.as_ref(),
                        g.smtp_auth_password_file.as_ref(),
                    ),
                ),
                _ => (None, None),
            },
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &c.headers {
            if HeaderName::new_from_ascii(canonical(k)).is_err() {
                return Err(BuildError::Invalid(format!("invalid header name {k:?}")));
            }
            headers.insert(canonical(k), v.clone());
        }
        headers
            .entry("Subject".into())
            .or_insert_with(|| r#"{{ template "email.default.subject" . }}"#.into());
        headers.entry("To".into()).or_insert_with(|| c.to.clone());
        headers.entry("From".into()).or_insert_with(|| from.clone());
        let html = c
            .html
            .clone()
            .unwrap_or_else(|| r#"{{ template "email.default.html" . }}"#.into());
        let text = c
            .text
            .clone()
            .unwrap_or_else(|| r#"{{ template "email.default.text" . }}"#.into());
        for (k, v) in &headers {
            check_template(&ctx.templates, &format!("headers.{k}"), v)?;
        }
        check_template(&ctx.templates, "html", &html)?;
        check_template(&ctx.templates, "text", &text)?;
        if tls != TlsMode::None {
            // Fail at load on a bad CA file rather than at the first alert.
            tls_parameters(&host, c.tls_config.as_ref())?;
        }
        Ok(Email {
            cfg: c.clone(),
            headers,
            html,
            text,
            hello: c.hello.clone().unwrap_or_else(|| g.smtp_hello.clone()),
            host,
            port,
            tls,
            tls_config: c.tls_config.clone(),
            username,
            password,
            templates: ctx.templates.clone(),
        })
    }

    /// Renders the message.
    fn message(&self, data: &NotificationData) -> Result<Message, NotifyError> {
        let view = View::new(data, 0);
        let d = view.template_data();
        let t = &*self.templates;
        let now = data.now;
        let bad = |what: String| NotifyError {
            retryable: false,
            message: what,
        };
        let mut rendered: BTreeMap<&str, String> = BTreeMap::new();
        for (k, v) in &self.headers {
            rendered.insert(
                k,
                one_line(&render(t, &format!("headers.{k}"), v, &d, now)?),
            );
        }
        let from_text = rendered.remove("From").unwrap_or_default();
        let from: Mailbox = from_text
            .parse()
            .map_err(|e| bad(format!("parsing from address {from_text:?}: {e}")))?;
        let to_text = rendered.remove("To").unwrap_or_default();
        let to: Mailboxes = to_text
            .parse()
            .map_err(|e| bad(format!("parsing to addresses {to_text:?}: {e}")))?;
        let subject = rendered.remove("Subject").unwrap_or_default();
        let mut b = Message::builder()
            .from(from)
            .subject(subject)
            .message_id(None);
        for m in to {
            b = b.to(m);
        }
        for (k, v) in rendered {
            // Validated at build time; skipped rather than failing here.
            if let Ok(name) = HeaderName::new_from_ascii(k.to_string()) {
                b = b.raw_header(HeaderValue::new(name, v));
            }
        }
        let html = render(t, "html", &self.html, &d, now)?;
        let text = render(t, "text", &self.text, &d, now)?;
        let msg = match (text.is_empty(), html.is_empty()) {
            (false, false) => b.multipart(MultiPart::alternative_plain_html(text, html)),
            (true, false) => b.singlepart(SinglePart::html(html)),
            (false, true) => b.singlepart(SinglePart::plain(text)),
            (true, true) => b.singlepart(SinglePart::plain(String::new())),
        };
        msg.map_err(|e| bad(format!("building the message: {e}")))
    }

    async fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .hello_name(ClientId::Domain(self.hello.clone()))
            .timeout(self.cfg.timeout);
        let params = || {
            tls_parameters(&self.host, self.tls_config.as_ref()).map_err(|e| NotifyError {
                retryable: false,
                message: e.to_string(),
            })
        };
        b = match self.tls {
            TlsMode::None => b.tls(Tls::None),
            TlsMode::StartTls => b.tls(Tls::Required(params()?)),
            TlsMode::Implicit => b.tls(Tls::Wrapper(params()?)),
        };
        if let Some(user) = &self.username {
            let password = match &self.password {
                Some(p) => p.read().await?,
                None => String::new(),
            };
            b = b
                .credentials(Credentials::new(user.clone(), password))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(b.build())
    }
}

fn tls_parameters(host: &str, tls: Option<&TlsConfig>) -> Result<TlsParameters, BuildError> {
    let tls = tls.cloned().unwrap_or_default();
    // insecure_skip_verify skips every check, as Go's InsecureSkipVerify
    // does; lettre's invalid-certs switch alone still checks the name.
    let mut b = TlsParameters::builder(tls.server_name.clone().unwrap_or_else(|| host.into()))
        .dangerous_accept_invalid_certs(tls.insecure_skip_verify)
        .dangerous_accept_invalid_hostnames(tls.insecure_skip_verify);
    if let Some((cert, key)) = tls.client_cert_files()? {
        let identity = lettre::transport::smtp::client::Identity::from_pem(
            &read_tls_file(cert, "cert_file")?,
            &read_tls_file(key, "key_file")?,
        )
        .map_err(|e| BuildError::Tls(format!("cert_file {}: {e}", cert.display())))?;
        b = b.identify_with(identity);
    }
    if let Some(ca) = &tls.ca_file {
        let pem = read_tls_file(ca, "ca_file")?;
        let cert = lettre::transport::smtp::client::Certificate::from_pem(&pem)
            .map_err(|e| BuildError::Tls(format!("ca_file {}: {e}", ca.display())))?;
        b = b
            .certificate_store(lettre::transport::smtp::client::CertificateStore::None)
            .add_root_certificate(cert);
    }
    b.build_rustls().map_err(|e| BuildError::Tls(e.to_string()))
}

impl Integration for Email {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.cfg.send_resolved
    }

    fn notify<'a>(&'a self, data: &'a NotificationData) -> NotifyFuture<'a> {
        Box::pin(async move {
            let msg = self.message(data)?;
            let transport = self.transport().await?;
            transport
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| NotifyError {
                    // SMTP 5xx replies are permanent; 4xx, network and TLS
                    // failures may pass.
                    retryable: !e.is_permanent(),
                    message: format!("sending email via {}:{}: {e}", self.host, self.port),
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical("x-priority"), "X-Priority");
        assert_eq!(canonical("SUBJECT"), "Subject");
    }

    #[test]
    fn smarthosts() {
        assert_eq!(
            split_host_port("smtp.example.com:587").unwrap(),
            ("smtp.example.com".to_string(), 587)
        );
        assert_eq!(
            split_host_port("[::1]:25").unwrap(),
            ("::1".to_string(), 25)
        );
        assert!(split_host_port("nohost").is_err());
        assert!(split_host_port(":25").is_err());
    }
}
