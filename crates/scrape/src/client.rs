//! The HTTP side of a scrape: one reqwest client per scrape config, over
//! rustls with the ring provider, and the request Prometheus sends.
//!
//! reqwest's own `rustls` feature brings aws-lc-rs (a large C build); we use
//! `rustls-no-provider` and hand reqwest a finished rustls `ClientConfig`
//! instead, which also gives `tls_config` exact control: `ca_file` trusts
//! only those CAs (as Prometheus does), no `ca_file` uses the system's
//! roots, `insecure_skip_verify` skips chain and name checks (handshake
//! signatures are still verified).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ScrapeConfig, TlsConfig};
use crate::parse::ACCEPT_HEADER;

/// Why a scrape config's HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The CA file could not be read or holds no certificate.
    #[error("tls_config ca_file {path}: {what}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// The client certificate or its key could not be read, or they do not
    /// belong together.
    #[error("tls_config {path}: {what}")]
    ClientCert {
        /// The certificate or key file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// rustls refused the TLS setup.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest refused the client setup.
    #[error("HTTP client setup: {0}")]
    Http(#[from] reqwest::Error),
}

/// Why one fetch failed. Shown to users as the target's last error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("Get {url:?}: context deadline exceeded (scrape timeout {timeout:?})")]
    Timeout { url: String, timeout: Duration },
    #[error("Get {url:?}: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded")]
    BodySizeLimit,
    #[error("reading {path}: {source}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a request authenticates.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic { username: String, password: Secret },
    Header { kind: String, credentials: Secret },
}

/// A secret given inline or read from a file at every scrape (so that a
/// rotated file is picked up, as Prometheus does).
#[derive(Clone)]
enum Secret {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("<secret>"),
            Secret::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

impl Secret {
    async fn read(&self) -> Result<String, FetchError> {
        match self {
            Secret::Inline(s) => Ok(s.clone()),
            Secret::File(p) => {
                let path = p.clone();
                let r = tokio::task::spawn_blocking(move || std::fs::read_to_string(&path)).await;
                match r {
                    Ok(Ok(s)) => Ok(s.trim().to_string()),
                    Ok(Err(source)) => Err(FetchError::Credentials {
                        path: p.clone(),
                        source,
                    }),
                    Err(_) => Err(FetchError::Credentials {
                        path: p.clone(),
                        source: std::io::Error::other("reader task failed"),
                    }),
                }
            }
        }
    }
}

/// The client of one scrape config.
#[derive(Debug)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    auth: Auth,
}

/// A fetched body and its `Content-Type`.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_ca(path: &Path) -> Result<RootCertStore, ClientError> {
    let err = |what: String| ClientError::CaFile {
        path: path.to_path_buf(),
        what,
    };
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

fn tls_config(tls: Option<&TlsConfig>) -> Result<ClientConfig, ClientError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let tls = tls.cloned().unwrap_or_default();
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else if let Some(ca) = &tls.ca_file {
        builder.with_root_certificates(load_ca(ca)?)
    } else {
        use rustls_platform_verifier::BuilderVerifierExt;
        builder.with_platform_verifier()?
    };
    let files = tls
        .client_cert_files()
        .map_err(|what| ClientError::ClientCert {
            path: tls
                .cert_file
                .clone()
                .or(tls.key_file.clone())
                .unwrap_or_default(),
            what: what.to_string(),
        })?;
    match files {
        Some((cert, key)) => {
            let (chain, key_der) = load_client_cert(cert, key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ClientError::ClientCert {
                    path: key.to_path_buf(),
                    what: e.to_string(),
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The client certificate chain of `cert` and the private key of `key`
/// (PEM files), as `tls_config`'s `cert_file` and `key_file` give them.
fn load_client_cert(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ClientError> {
    let err = |path: &Path, what: String| ClientError::ClientCert {
        path: path.to_path_buf(),
        what,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(err(cert, "no certificate found".to_string()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, e.to_string()))?;
    Ok((chain, key_der))
}

/// The HTTP client builder of vigil's outgoing requests that have no TLS
/// settings of their own (alerts to Alertmanager, remote write, rules
/// backfill): rustls with the ring provider and the platform's roots,
/// vigil's user agent, no proxy. Callers add timeouts and headers.
pub fn client_builder() -> Result<reqwest::ClientBuilder, ClientError> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(None)?)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .no_proxy())
}

impl HttpClient {
    /// Builds the client of `cfg`. Reads the CA file; call it off the async
    /// workers.
    pub(crate) fn new(cfg: &ScrapeConfig) -> Result<HttpClient, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER));
        if !cfg.enable_compression {
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        let redirect = if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(cfg.tls_config.as_ref())?)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .redirect(redirect)
            .gzip(cfg.enable_compression)
            .no_proxy()
            .build()?;
        let auth = if let Some(b) = &cfg.basic_auth {
            Auth::Basic {
                username: b.username.clone(),
                password: match (&b.password, &b.password_file) {
                    (_, Some(f)) => Secret::File(f.clone()),
                    (Some(p), None) => Secret::Inline(p.clone()),
                    (None, None) => Secret::Inline(String::new()),
                },
            }
        } else if let Some(a) = &cfg.authorization {
            Auth::Header {
                kind: a.kind.clone(),
                credentials: match (&a.credentials, &a.credentials_file) {
                    (_, Some(f)) => Secret::File(f.clone()),
                    (Some(c), None) => Secret::Inline(c.clone()),
                    (None, None) => Secret::Inline(String::new()),
                },
            }
        } else {
            Auth::None
        };
        Ok(HttpClient { client, auth })
    }

    /// GETs `url` within `timeout`, reading at most `body_limit` bytes of
    /// (decompressed) body (0: no limit). Any status but 200 is an error.
    pub(crate) async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        body_limit: u64,
    ) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(timeout, self.fetch_inner(url, timeout, body_limit)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_string(),
                timeout,
            }),
        }
    }

    async fn fetch_inner(
        &self,
        url: &str,
        timeout: Duration,
        body_limit: u64,
    ) -> Result<Fetched, FetchError> {
        let req_err = |source| FetchError::Request {
            url: url.to_string(),
            source,
        };
        let mut req = self.client.get(url).header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format_seconds(timeout),
        );
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                req = req.basic_auth(username, Some(password.read().await?));
            }
            Auth::Header { kind, credentials } => {
                let v = format!("{kind} {}", credentials.read().await?);
                req = req.header(AUTHORIZATION, v);
            }
        }
        let mut resp = req.send().await.map_err(req_err)?;
        if resp.status() != reqwest::StatusCode::OK {
            let s = resp.status();
            return Err(FetchError::Status(
                format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
                    .trim_end()
                    .to_string(),
            ));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let limit = if body_limit == 0 {
            u64::MAX
        } else {
            body_limit
        };
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(req_err)? {
            body.extend_from_slice(&chunk);
            // Prometheus fails at n >= limit.
            if body.len() as u64 >= limit {
                return Err(FetchError::BodySizeLimit);
            }
        }
        Ok(Fetched { body, content_type })
    }
}

/// A plain client for HTTP probes: the same TLS setup as scrapes, vigil's
/// user agent, no proxy, gzip accepted. Reads the CA file; call it off the
/// async workers.
pub(crate) fn probe_client(
    tls: Option<&TlsConfig>,
    follow_redirects: bool,
) -> Result<reqwest::Client, ClientError> {
    let redirect = if follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(tls)?)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect)
        .gzip(true)
        .no_proxy()
        .build()?)
}

/// Seconds as Go's `strconv.FormatFloat(s, 'f', -1, 64)` writes them.
fn format_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
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
    fn seconds_like_go() {
        assert_eq!(format_seconds(Duration::from_secs(10)), "10");
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.5");
    }

    #[test]
    fn clients_build_for_every_tls_mode() {
        let mut c = ScrapeConfig::new("a", vec![]);
        HttpClient::new(&c).unwrap();
        c.tls_config = Some(crate::config::TlsConfig {
            insecure_skip_verify: true,
            ..Default::default()
        });
        HttpClient::new(&c).unwrap();
        c.tls_config = Some(crate::config::TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        });
        assert!(matches!(
            HttpClient::new(&c),
            Err(ClientError::CaFile { .. })
        ));
    }
}
