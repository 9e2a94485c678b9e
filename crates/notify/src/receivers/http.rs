//! The HTTP side of the webhook, Slack and SMS receivers: Prometheus's
//! `http_config` (basic auth, authorization, bearer token, TLS), one
//! reqwest client per integration over rustls with the ring provider (as
//! crates/scrape/src/client.rs does), and the classification of failures
//! into retryable (network errors, 5xx, 429) and not (other 4xx).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use super::{BuildError, Secret};
use crate::config::resolve_path;
use crate::types::NotifyError;

/// Prometheus's `basic_auth`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (read at every notification).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// Prometheus's `authorization`: `Authorization: <type> <credentials>`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme (default `Bearer`).
    #[serde(rename = "type", default = "bearer")]
    pub kind: String,
    /// The credentials.
    #[serde(default)]
    pub credentials: Option<Secret>,
    /// A file holding the credentials (read at every notification).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

fn bearer() -> String {
    "Bearer".to_string()
}

/// Prometheus's `tls_config` (the parts vigil supports).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file of CA certificates; when set, only these are trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A PEM file of the client certificate (and its chain) to present to
    /// servers that ask for one; needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The PEM file of the client certificate's private key; needs
    /// `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The server name to verify instead of the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Skip verification of the server certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Prometheus's `http_config`, as Alertmanager's HTTP receivers take it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization` header.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// A bearer token (deprecated form of `authorization`).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// A file holding the bearer token.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// Whether redirects are followed (default true).
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Whether HTTP/2 may be used (accepted; vigil speaks HTTP/1.1).
    #[serde(default)]
    pub enable_http2: Option<bool>,
}

impl TlsConfig {
    /// Joins relative `ca_file`, `cert_file` and `key_file` onto `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve_path(base, &mut self.ca_file);
        resolve_path(base, &mut self.cert_file);
        resolve_path(base, &mut self.key_file);
    }

    /// The client certificate's PEM file and its key's, if both are set;
    /// one without the other is an error (Prometheus's messages).
    pub(crate) fn client_cert_files(&self) -> Result<Option<(&Path, &Path)>, BuildError> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(BuildError::Invalid(
                "tls_config: exactly one of key or key_file must be configured when a client certificate is configured".into(),
            )),
            (None, Some(_)) => Err(BuildError::Invalid(
                "tls_config: exactly one of cert or cert_file must be configured when a client key is configured".into(),
            )),
        }
    }
}

impl HttpConfig {
    /// Joins the relative paths (`basic_auth.password_file`,
    /// `authorization.credentials_file`, `bearer_token_file`,
    /// `tls_config.ca_file`, `cert_file`, `key_file`) onto `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(b) = &mut self.basic_auth {
            resolve_path(base, &mut b.password_file);
        }
        if let Some(a) = &mut self.authorization {
            resolve_path(base, &mut a.credentials_file);
        }
        resolve_path(base, &mut self.bearer_token_file);
        if let Some(t) = &mut self.tls_config {
            t.resolve_paths(base);
        }
    }
}

/// A secret given inline or read from a file at every use.
#[derive(Clone)]
pub(crate) enum SecretSource {
    Inline(Secret),
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("<secret>"),
            SecretSource::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

impl SecretSource {
    pub(crate) fn from_parts(
        inline: Option<&Secret>,
        file: Option<&PathBuf>,
    ) -> Option<SecretSource> {
        match (inline, file) {
            (_, Some(f)) => Some(SecretSource::File(f.clone())),
            (Some(s), None) => Some(SecretSource::Inline(s.clone())),
            (None, None) => None,
        }
    }

    /// The secret's value; a file is read off the async workers and trimmed.
    pub(crate) async fn read(&self) -> Result<String, NotifyError> {
        match self {
            SecretSource::Inline(s) => Ok(s.expose().to_string()),
            SecretSource::File(p) => read_file(p).await,
        }
    }
}

/// Reads a credentials file (trimmed). A missing file is not retryable.
pub(crate) async fn read_file(p: &Path) -> Result<String, NotifyError> {
    let path = p.to_path_buf();
    let r = tokio::task::spawn_blocking(move || std::fs::read_to_string(&path)).await;
    match r {
        Ok(Ok(s)) => Ok(s.trim().to_string()),
        Ok(Err(e)) => Err(NotifyError {
            retryable: false,
            message: format!("reading {}: {e}", p.display()),
        }),
        Err(_) => Err(NotifyError {
            retryable: true,
            message: format!("reading {}: reader task failed", p.display()),
        }),
    }
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic {
        username: String,
        password: Option<SecretSource>,
    },
    Header {
        kind: String,
        credentials: Option<SecretSource>,
    },
}

/// An HTTP client of one integration.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    client: reqwest::Client,
    auth: Auth,
    timeout: Option<Duration>,
}

/// A request body and its content type.
#[derive(Debug)]
pub(crate) enum Body {
    Json(Vec<u8>),
    Form(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_ca(path: &Path) -> Result<RootCertStore, BuildError> {
    let err = |what: String| BuildError::Tls(format!("ca_file {}: {what}", path.display()));
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    for c in certs {
        let c = c.map_err(|e| err(e.to_string()))?;
        roots.add(c).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificate found".to_string()));
    }
    Ok(roots)
}

pub(crate) fn tls_config(tls: Option<&TlsConfig>) -> Result<ClientConfig, BuildError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Tls(e.to_string()))?;
    let tls = tls.cloned().unwrap_or_default();
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else if let Some(ca) = &tls.ca_file {
        builder.with_root_certificates(load_ca(ca)?)
    } else {
        use rustls_platform_verifier::BuilderVerifierExt;
        builder
            .with_platform_verifier()
            .map_err(|e| BuildError::Tls(e.to_string()))?
    };
    match tls.client_cert_files()? {
        Some((cert, key)) => {
            let chain = read_tls_file(cert, "cert_file")?;
            let chain = CertificateDer::pem_slice_iter(&chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BuildError::Tls(format!("cert_file {}: {e}", cert.display())))?;
            if chain.is_empty() {
                return Err(BuildError::Tls(format!(
                    "cert_file {}: no certificate found",
                    cert.display()
                )));
            }
            let key_der = PrivateKeyDer::from_pem_slice(&read_tls_file(key, "key_file")?)
                .map_err(|e| BuildError::Tls(format!("key_file {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| BuildError::Tls(format!("key_file {}: {e}", key.display())))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The bytes of `tls_config`'s `what` file at `path`.
pub(crate) fn read_tls_file(path: &Path, what: &str) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|e| BuildError::Tls(format!("{what} {}: {e}", path.display())))
}

impl Client {
    /// Builds the client of `cfg`. Reads the CA file.
    pub(crate) fn new(cfg: &HttpConfig, timeout: Option<Duration>) -> Result<Client, BuildError> {
        let redirect = if cfg.follow_redirects.unwrap_or(true) {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        };
        if cfg
            .tls_config
            .as_ref()
            .is_some_and(|t| t.server_name.is_some())
        {
            return Err(BuildError::Unsupported("tls_config.server_name".into()));
        }
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(cfg.tls_config.as_ref())?)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect)
            .no_proxy()
            .build()
            .map_err(|e| BuildError::Tls(e.without_url().to_string()))?;
        let set = [
            cfg.basic_auth.is_some(),
            cfg.authorization.is_some(),
            cfg.bearer_token.is_some() || cfg.bearer_token_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set > 1 {
            return Err(BuildError::Invalid(
                "at most one of basic_auth, authorization and bearer_token may be configured"
                    .into(),
            ));
        }
        let auth = if let Some(b) = &cfg.basic_auth {
            Auth::Basic {
                username: b.username.clone(),
                password: SecretSource::from_parts(b.password.as_ref(), b.password_file.as_ref()),
            }
        } else if let Some(a) = &cfg.authorization {
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(BuildError::Invalid(
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
                        .into(),
                ));
            }
            Auth::Header {
                kind: a.kind.clone(),
                credentials: SecretSource::from_parts(
                    a.credentials.as_ref(),
                    a.credentials_file.as_ref(),
                ),
            }
        } else if cfg.bearer_token.is_some() || cfg.bearer_token_file.is_some() {
            Auth::Header {
                kind: "Bearer".into(),
                credentials: SecretSource::from_parts(
                    cfg.bearer_token.as_ref(),
                    cfg.bearer_token_file.as_ref(),
                ),
            }
        } else {
            Auth::None
        };
        Ok(Client {
            client,
            auth,
            timeout,
        })
    }

    /// A client whose requests authenticate with basic auth (Twilio).
    pub(crate) fn with_basic_auth(mut self, username: String, password: SecretSource) -> Client {
        self.auth = Auth::Basic {
            username,
            password: Some(password),
        };
        self
    }

    /// POSTs `body` to `url`. Any 2xx is success; the error never includes
    /// the URL (it can hold a secret, as Slack's does).
    pub(crate) async fn post(&self, url: &str, body: Body) -> Result<(), NotifyError> {
        let fut = self.post_inner(url, body);
        match self.timeout {
            Some(t) if !t.is_zero() => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(NotifyError {
                    retryable: true,
                    message: format!("request timed out after {t:?}"),
                }),
            },
            _ => fut.await,
        }
    }

    async fn post_inner(&self, url: &str, body: Body) -> Result<(), NotifyError> {
        let mut req = self.client.post(url);
        req = match body {
            Body::Json(b) => req
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(b),
            Body::Form(b) => req
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(b),
        };
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let p = match password {
                    Some(p) => Some(p.read().await?),
                    None => None,
                };
                req = req.basic_auth(username, p);
            }
            Auth::Header { kind, credentials } => {
                let c = match credentials {
                    Some(c) => c.read().await?,
                    None => String::new(),
                };
                let mut v =
                    HeaderValue::from_str(&format!("{kind} {c}")).map_err(|_| NotifyError {
                        retryable: false,
                        message: "authorization credentials are not a valid header value".into(),
                    })?;
                v.set_sensitive(true);
                req = req.header(AUTHORIZATION, v);
            }
        }
        let resp = req.send().await.map_err(|e| NotifyError {
            // A request that could not be built (a bad URL) will not
            // succeed later; everything else is the network.
            retryable: !e.is_builder(),
            message: format!("POST: {}", e.without_url()),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // A little of the body says why (Slack answers `invalid_token`).
        let text = resp.text().await.unwrap_or_default();
        let detail: String = text.trim().chars().take(200).collect();
        Err(status_error(status.as_u16(), &detail))
    }
}

/// The error of an unsuccessful response: 5xx and 429 are retryable.
pub(crate) fn status_error(status: u16, detail: &str) -> NotifyError {
    let retryable = status >= 500 || status == 429;
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut message = format!("unexpected status code {status} {reason}")
        .trim_end()
        .to_string();
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(detail);
    }
    NotifyError { retryable, message }
}

/// Accepts any certificate chain and name; checks handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_load_or_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
        let with = |cert_file: Option<&Path>, key_file: Option<&Path>| TlsConfig {
            cert_file: cert_file.map(Path::to_path_buf),
            key_file: key_file.map(Path::to_path_buf),
            insecure_skip_verify: true,
            ..Default::default()
        };
        tls_config(Some(&with(Some(&cert), Some(&key)))).unwrap();
        let err = |t: TlsConfig| tls_config(Some(&t)).unwrap_err().to_string();
        assert!(err(with(Some(&cert), None)).contains("key_file"));
        assert!(err(with(None, Some(&key))).contains("cert_file"));
        // The key file given as the certificate, and a missing key file.
        assert!(err(with(Some(&key), Some(&key))).contains("k.pem"));
        let missing = dir.path().join("missing.pem");
        assert!(err(with(Some(&cert), Some(&missing))).contains("missing.pem"));
    }

    #[test]
    fn statuses_classify() {
        assert!(status_error(500, "").retryable);
        assert!(status_error(503, "").retryable);
        assert!(status_error(429, "").retryable);
        assert!(!status_error(400, "").retryable);
        assert!(!status_error(404, "").retryable);
        assert_eq!(
            status_error(404, "no_service").message,
            "unexpected status code 404 Not Found: no_service"
        );
    }
}
