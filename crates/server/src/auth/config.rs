//! The web configuration file (`--web.config.file`): Prometheus's format
//! (`tls_server_config`, `http_server_config.headers`, `basic_auth_users`
//! with bcrypt hashes) plus vigil's additions: roles per user, bearer
//! tokens with a role each, and open health endpoints.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: vigil.crt
//!   key_file: vigil.key
//! basic_auth_users:
//!   alice: $2y$10$...        # bcrypt
//!   grafana: $2y$10$...
//! user_roles:                # vigil: users not listed are admin
//!   grafana: read
//! bearer_tokens:             # vigil
//!   - name: agent
//!     token_file: agent.token   # or token_sha256: <hex>, or token: <text>
//!     role: remote_write
//! open_health_endpoints: true   # vigil: /-/healthy, /-/ready, /api/health
//! ```
//!
//! Relative paths are relative to the file's directory, as Prometheus
//! resolves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Queries, the UI and metadata.
    Read,
    /// Everything: the admin API, reload, silences and acks, remote write,
    /// and all that `read` may do.
    Admin,
    /// Remote write (`POST /api/v1/write`) only: the role of the token
    /// senders use.
    RemoteWrite,
}

impl Role {
    /// The role's name as the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
            Role::RemoteWrite => "remote_write",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    user_roles: BTreeMap<String, Role>,
    #[serde(default)]
    bearer_tokens: Vec<TokenFile>,
    #[serde(default)]
    open_health_endpoints: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Accepted; vigil serves HTTP/1.1 and, over TLS, what ALPN agrees.
    #[serde(default, rename = "http2")]
    _http2: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    name: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    token_sha256: Option<String>,
    role: Role,
}

/// Whether and how client certificates are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert` (the default).
    None,
    /// `VerifyClientCertIfGiven`.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert`.
    RequireAndVerify,
}

/// The TLS settings, with paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The private key (PEM).
    pub key_file: PathBuf,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// The CAs client certificates are checked against.
    pub client_ca_file: Option<PathBuf>,
    /// Only TLS 1.3 (`min_version: TLS13`).
    pub tls13_only: bool,
    /// Only TLS 1.2 (`max_version: TLS12`).
    pub tls12_only: bool,
}

/// A user of basic auth.
#[derive(Clone)]
pub struct User {
    /// The bcrypt hash.
    pub hash: String,
    /// The role.
    pub role: Role,
}

impl std::fmt::Debug for User {
    // The hash is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("role", &self.role).finish()
    }
}

/// A bearer token: its SHA-256 and role.
#[derive(Clone)]
pub struct Token {
    /// The name used in logs, metrics and the audit log.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// The role.
    pub role: Role,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

/// A checked web configuration.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// TLS, when set.
    pub tls: Option<TlsSettings>,
    /// Headers added to every response (checked when the file is read).
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    /// Basic-auth users by name.
    pub users: BTreeMap<String, User>,
    /// Bearer tokens.
    pub tokens: Vec<Token>,
    /// Serve `/-/healthy`, `/-/ready` and `/api/health` without
    /// credentials.
    pub open_health: bool,
}

impl WebConfig {
    /// Whether requests need credentials.
    pub fn auth_enabled(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        WebConfig::parse(&text, dir).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks the text; relative paths are taken from `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
        let f: File = if text.trim().is_empty() {
            serde_yaml_ng::from_str("{}").map_err(|e| e.to_string())?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
        };
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        };
        let tls = match f.tls_server_config {
            None => None,
            Some(t) => {
                let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) else {
                    return Err(
                        "tls_server_config: both cert_file and key_file are required".into(),
                    );
                };
                let client_auth = match t.client_auth_type.as_deref() {
                    None | Some("") | Some("NoClientCert") => ClientAuth::None,
                    Some("VerifyClientCertIfGiven") => ClientAuth::VerifyIfGiven,
                    Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerify,
                    Some(o @ ("RequestClientCert" | "RequireAnyClientCert")) => {
                        return Err(format!(
                            "tls_server_config: client_auth_type {o} (a certificate that is not verified) is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                        ))
                    }
                    Some(o) => {
                        return Err(format!("tls_server_config: unknown client_auth_type {o:?}"))
                    }
                };
                if client_auth != ClientAuth::None && t.client_ca_file.is_none() {
                    return Err(
                        "tls_server_config: client_ca_file is required to verify client certificates"
                            .into(),
                    );
                }
                let version = |v: &Option<String>, what: &str| -> Result<Option<u8>, String> {
                    match v.as_deref() {
                        None | Some("") => Ok(None),
                        Some("TLS12") => Ok(Some(12)),
                        Some("TLS13") => Ok(Some(13)),
                        Some(o @ ("TLS10" | "TLS11")) => {
                            Err(format!("tls_server_config: {what} {o} is not supported (TLS 1.2 is the oldest)"))
                        }
                        Some(o) => Err(format!("tls_server_config: unknown {what} {o:?}")),
                    }
                };
                let min = version(&t.min_version, "min_version")?;
                let max = version(&t.max_version, "max_version")?;
                if let (Some(a), Some(b)) = (min, max) {
                    if a > b {
                        return Err("tls_server_config: min_version is above max_version".into());
                    }
                }
                Some(TlsSettings {
                    cert_file: abs(cert),
                    key_file: abs(key),
                    client_auth,
                    client_ca_file: t.client_ca_file.as_deref().map(abs),
                    tls13_only: min == Some(13),
                    tls12_only: max == Some(12),
                })
            }
        };
        let mut headers = Vec::new();
        for (k, v) in f.http_server_config.map(|h| h.headers).unwrap_or_default() {
            match (
                axum::http::HeaderName::try_from(k.as_str()),
                axum::http::HeaderValue::try_from(v.as_str()),
            ) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                _ => return Err(format!("http_server_config.headers: invalid header {k:?}")),
            }
        }
        let mut users = BTreeMap::new();
        for (name, hash) in &f.basic_auth_users {
            if name.is_empty() || name.contains(':') {
                return Err(format!(
                    "basic_auth_users: invalid user name {name:?} (empty or with ':')"
                ));
            }
            if !is_bcrypt(hash) {
                // The hash itself is not repeated in the error.
                return Err(format!(
                    "basic_auth_users: the password of {name:?} is not a bcrypt hash ($2a$, $2b$ or $2y$)"
                ));
            }
            users.insert(
                name.clone(),
                User {
                    hash: hash.clone(),
                    role: f.user_roles.get(name).copied().unwrap_or(Role::Admin),
                },
            );
        }
        for name in f.user_roles.keys() {
            if !users.contains_key(name) {
                return Err(format!("user_roles: {name:?} is not in basic_auth_users"));
            }
        }
        let mut tokens: Vec<Token> = Vec::new();
        for t in f.bearer_tokens {
            if t.name.is_empty() {
                return Err("bearer_tokens: every token needs a name".into());
            }
            if tokens.iter().any(|o| o.name == t.name) {
                return Err(format!("bearer_tokens: duplicate name {:?}", t.name));
            }
            let what = format!("bearer_tokens {:?}", t.name);
            let sha256 = match (t.token, t.token_file, t.token_sha256) {
                (Some(s), None, None) => digest_of_secret(&s, &what)?,
                (None, Some(p), None) => {
                    let p = abs(&p);
                    let s = std::fs::read_to_string(&p)
                        .map_err(|e| format!("{what}: reading {}: {e}", p.display()))?;
                    digest_of_secret(s.trim_end_matches(['\n', '\r']), &what)?
                }
                (None, None, Some(hex)) => parse_hex32(&hex)
                    .ok_or_else(|| format!("{what}: token_sha256 must be 64 hex digits"))?,
                _ => {
                    return Err(format!(
                        "{what}: set exactly one of token, token_file and token_sha256"
                    ))
                }
            };
            if tokens.iter().any(|o| o.sha256 == sha256) {
                return Err(format!("{what}: the same token is listed twice"));
            }
            tokens.push(Token {
                name: t.name,
                sha256,
                role: t.role,
            });
        }
        Ok(WebConfig {
            tls,
            headers,
            users,
            tokens,
            open_health: f.open_health_endpoints,
        })
    }
}

fn digest_of_secret(s: &str, what: &str) -> Result<[u8; 32], String> {
    if s.len() < 16 {
        return Err(format!("{what}: a token must be at least 16 characters"));
    }
    Ok(sha256(s.as_bytes()))
}

/// SHA-256 of `b`.
pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn is_bcrypt(h: &str) -> bool {
    // $2y$10$ + 53 characters of salt and hash.
    h.len() == 60
        && (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$"))
        && h.as_bytes()[6] == b'$'
        && h[4..6].bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W";

    fn parse(t: &str) -> Result<WebConfig, String> {
        WebConfig::parse(t, Path::new("/etc/vigil"))
    }

    #[test]
    fn prometheus_files_are_read() {
        let c = parse(&format!(
            "tls_server_config:\n  cert_file: a.crt\n  key_file: /k/a.key\n  min_version: TLS13\n\
             basic_auth_users:\n  alice: {HASH}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ))
        .unwrap();
        let tls = c.tls.clone().unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/vigil/a.crt"));
        assert_eq!(tls.key_file, Path::new("/k/a.key"));
        assert!(tls.tls13_only);
        assert_eq!(c.users["alice"].role, Role::Admin, "the default role");
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.headers[0].0, "x-frame-options");
        assert_eq!(c.headers[0].1, "deny");
        assert!(c.auth_enabled());
        assert!(!parse("").unwrap().auth_enabled());
    }

    #[test]
    fn roles_and_tokens() {
        let c = parse(&format!(
            "basic_auth_users:\n  grafana: {HASH}\nuser_roles:\n  grafana: read\n\
             bearer_tokens:\n  - name: agent\n    token: 0123456789abcdef-agent\n    role: remote_write\n\
             \x20 - name: ci\n    token_sha256: {}\n    role: admin\nopen_health_endpoints: true\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(c.users["grafana"].role, Role::Read);
        assert_eq!(c.tokens[0].sha256, sha256(b"0123456789abcdef-agent"));
        assert_eq!(c.tokens[0].role, Role::RemoteWrite);
        assert_eq!(c.tokens[1].sha256, [0xab; 32]);
        assert!(c.open_health);
        // Debug output never holds a hash.
        assert!(!format!("{c:?}").contains("$2y$"));
    }

    #[test]
    fn bad_files_say_why() {
        for (text, want) in [
            ("nope: 1\n", "unknown field"),
            ("basic_auth_users:\n  a: plain\n", "not a bcrypt hash"),
            ("user_roles:\n  a: read\n", "not in basic_auth_users"),
            (
                &format!("basic_auth_users:\n  a: {HASH}\nuser_roles:\n  a: root\n") as &str,
                "unknown variant",
            ),
            ("tls_server_config:\n  cert_file: a\n", "both cert_file and key_file"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
                "client_ca_file is required",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n",
                "not supported",
            ),
            (
                "bearer_tokens:\n  - name: a\n    token: short\n    role: read\n",
                "at least 16",
            ),
            (
                "bearer_tokens:\n  - name: a\n    role: read\n",
                "exactly one of",
            ),
            (
                "bearer_tokens:\n  - name: a\n    token_sha256: xyz\n    role: read\n",
                "64 hex digits",
            ),
            (
                "bearer_tokens:\n  - name: a\n    token: 0123456789abcdef\n    role: read\n  - name: b\n    token: 0123456789abcdef\n    role: admin\n",
                "listed twice",
            ),
            (
                "bearer_tokens:\n  - name: a\n    token_file: /nonexistent/t\n    role: read\n",
                "reading /nonexistent/t",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
