//! Authentication, roles and the audit log, in front of every route.
//!
//! Every request passes [`guard`]: its route decides the role it needs
//! ([`access_for`]), its credentials (HTTP basic auth checked against
//! bcrypt hashes, or a bearer token checked in constant time against
//! SHA-256 digests) decide the role it has. Refusals are counted in
//! `vigil_http_auth_failures_total{reason}`. Admin actions are written to
//! the audit log ([`audit`]) whether or not authentication is on.
//!
//! The web configuration file is read at start and again when it changes
//! (checked at most once a second); a file that no longer parses keeps the
//! previous settings and is logged, as a bad config reload does. TLS
//! settings take effect at start.

pub mod audit;
pub mod config;
pub mod tls;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use parking_lot::{Mutex, RwLock};
use subtle::ConstantTimeEq;

pub use config::{Role, WebConfig};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing (health endpoints, when the file opens them).
    Health,
    /// The `read` role (or `admin`).
    Read,
    /// The `admin` role.
    Admin,
    /// The `remote_write` role (or `admin`).
    Write,
    /// No credentials: the request carries its own, checked by the handler
    /// (the signed token of an ack link, which a person opens from an SMS
    /// or a chat message without logging in). Credentials that are sent
    /// must still be valid, and then name who acted in the audit log.
    Signed,
}

/// The access a request needs; `path` is without the route prefix.
pub fn access_for(method: &Method, path: &str) -> Access {
    let mutating = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    match path {
        "/-/healthy" | "/-/ready" | "/api/health" => Access::Health,
        "/api/v1/write" => Access::Write,
        "/-/reload" | "/-/quit" => Access::Admin,
        "/api/v2/alerts" | "/api/v2/silences" | "/api/v1/notify/ack" if mutating => Access::Admin,
        p if p.starts_with("/api/v1/admin/") => Access::Admin,
        p if p.starts_with("/api/v2/silence/") && mutating => Access::Admin,
        p if p.starts_with("/api/v1/notify/acks/") && mutating => Access::Admin,
        // An ack link: its token is the credential. GET shows a form,
        // POST acknowledges.
        p if p.starts_with("/api/v1/notify/ack/") => Access::Signed,
        _ => Access::Read,
    }
}

/// The name of an admin action for the audit log, `None` for requests
/// that change nothing.
pub fn audit_action(method: &Method, path: &str) -> Option<&'static str> {
    let mutating = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    Some(match path {
        "/-/reload" if mutating => "config_reload",
        "/-/quit" if mutating => "quit",
        "/api/v1/admin/tsdb/delete_series" if mutating => "delete_series",
        "/api/v1/admin/tsdb/clean_tombstones" if mutating => "clean_tombstones",
        "/api/v1/admin/tsdb/snapshot" if mutating => "snapshot",
        "/api/v1/admin/tsdb/flush" if mutating => "flush",
        "/api/v2/silences" if mutating => "silence_create",
        "/api/v1/notify/ack" if mutating => "ack",
        p if p.starts_with("/api/v2/silence/") && *method == Method::DELETE => "silence_expire",
        p if p.starts_with("/api/v1/notify/acks/") && *method == Method::DELETE => "ack_remove",
        p if p.starts_with("/api/v1/notify/ack/") && mutating => "ack_link",
        _ => return None,
    })
}

/// Why a request was refused: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No credentials.
    Missing,
    /// An `Authorization` header vigil cannot read.
    Malformed,
    /// An unknown user or a wrong password.
    BadPassword,
    /// An unknown token.
    BadToken,
    /// Known, but the role does not allow the route.
    Forbidden,
}

const FAILURES: [Failure; 5] = [
    Failure::Missing,
    Failure::Malformed,
    Failure::BadPassword,
    Failure::BadToken,
    Failure::Forbidden,
];

impl Failure {
    fn label(self) -> &'static str {
        match self {
            Failure::Missing => "missing_credentials",
            Failure::Malformed => "malformed_credentials",
            Failure::BadPassword => "bad_password",
            Failure::BadToken => "bad_token",
            Failure::Forbidden => "forbidden",
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A user or token name; `anonymous` without authentication.
    pub name: String,
    /// `basic`, `bearer`, `none`, or `link` (an ack link without
    /// credentials).
    pub via: &'static str,
}

/// How many bcrypt results are remembered (bcrypt is slow on purpose; a
/// client sends the same credentials with every request).
const CACHE_MAX: usize = 1024;

/// A hash of a random password, checked for unknown users so that the
/// time taken does not tell which users exist.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let random = config::sha256(format!("{:?}{:?}", SystemTime::now(), Instant::now()).as_bytes());
    bcrypt::hash(random, bcrypt::DEFAULT_COST).unwrap_or_default()
});

struct Loaded {
    config: Arc<WebConfig>,
    /// (modified time, length) of the file when read.
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

/// The state of the guard: settings, caches and counters.
pub struct Guard {
    file: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    /// sha256(user \0 password \0 hash) -> the check's outcome.
    cache: Mutex<HashMap<[u8; 32], bool>>,
    failures: [AtomicU64; 5],
    reload_ok: std::sync::atomic::AtomicBool,
    prefix: String,
    audit: audit::AuditLog,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("file", &self.file)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Guard {
    /// Reads the web configuration file (none: no TLS, no authentication).
    /// `prefix` is the route prefix (`""` or `/vigil`).
    pub fn new(
        file: Option<PathBuf>,
        prefix: &str,
        audit: audit::AuditLog,
    ) -> Result<Guard, String> {
        let config = match &file {
            Some(p) => WebConfig::load(p)?,
            None => WebConfig::default(),
        };
        Ok(Guard::with_config(file, config, prefix, audit))
    }

    /// As [`Guard::new`], with the file's settings already read.
    pub fn with_config(
        file: Option<PathBuf>,
        config: WebConfig,
        prefix: &str,
        audit: audit::AuditLog,
    ) -> Guard {
        Guard {
            loaded: RwLock::new(Loaded {
                config: Arc::new(config),
                stamp: file.as_deref().and_then(stamp),
                checked: Instant::now(),
            }),
            file,
            cache: Mutex::new(HashMap::new()),
            failures: Default::default(),
            reload_ok: std::sync::atomic::AtomicBool::new(true),
            prefix: prefix.trim_end_matches('/').to_string(),
            audit,
        }
    }

    /// The settings in force, re-reading the file if it changed.
    pub fn config(&self) -> Arc<WebConfig> {
        {
            let l = self.loaded.read();
            if self.file.is_none() || l.checked.elapsed() < Duration::from_secs(1) {
                return l.config.clone();
            }
        }
        let Some(path) = &self.file else {
            return self.loaded.read().config.clone();
        };
        let mut l = self.loaded.write();
        if l.checked.elapsed() < Duration::from_secs(1) {
            return l.config.clone();
        }
        l.checked = Instant::now();
        let now = stamp(path);
        if now == l.stamp {
            return l.config.clone();
        }
        l.stamp = now;
        match WebConfig::load(path) {
            Ok(c) => {
                if c.tls != l.config.tls {
                    tracing::warn!(
                        "the web config's TLS settings changed; they apply at the next start"
                    );
                }
                tracing::info!(file = %path.display(), "web config reloaded");
                l.config = Arc::new(c);
                self.cache.lock().clear();
                self.reload_ok.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "web config reload failed; the previous settings stay");
                self.reload_ok.store(false, Ordering::Relaxed);
            }
        }
        l.config.clone()
    }

    /// The audit log.
    pub fn audit(&self) -> &audit::AuditLog {
        &self.audit
    }

    fn count(&self, f: Failure) {
        let i = FAILURES.iter().position(|x| *x == f).unwrap_or(0);
        self.failures[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The guard's self-metrics.
    pub fn write_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP vigil_http_auth_failures_total Requests refused for their credentials, by reason.\n\
             # TYPE vigil_http_auth_failures_total counter"
        );
        for (f, n) in FAILURES.iter().zip(&self.failures) {
            let _ = writeln!(
                out,
                "vigil_http_auth_failures_total{{reason=\"{}\"}} {}",
                f.label(),
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vigil_web_config_last_reload_successful Whether the web config file last read parsed.\n\
             # TYPE vigil_web_config_last_reload_successful gauge\n\
             vigil_web_config_last_reload_successful {}",
            u8::from(self.reload_ok.load(Ordering::Relaxed))
        );
        self.audit.write_metrics(out);
    }

    /// Checks basic-auth credentials: the user's role, or why not.
    async fn check_basic(
        &self,
        c: &WebConfig,
        user: &str,
        password: &str,
    ) -> Result<Role, Failure> {
        let (hash, role) = match c.users.get(user) {
            Some(u) => (Some(u.hash.clone()), Some(u.role)),
            None => (None, None),
        };
        let mut key_in = Vec::with_capacity(
            user.len() + password.len() + hash.as_ref().map_or(0, String::len) + 2,
        );
        key_in.extend_from_slice(user.as_bytes());
        key_in.push(0);
        key_in.extend_from_slice(password.as_bytes());
        key_in.push(0);
        key_in.extend_from_slice(hash.as_deref().unwrap_or("").as_bytes());
        let key = config::sha256(&key_in);
        let cached = self.cache.lock().get(&key).copied();
        let ok = match cached {
            Some(ok) => ok,
            None => {
                let password = password.to_string();
                let ok = tokio::task::spawn_blocking(move || {
                    let hash = hash.as_deref().unwrap_or(DUMMY_HASH.as_str());
                    bcrypt::verify(password, hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                let mut cache = self.cache.lock();
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                cache.insert(key, ok);
                ok
            }
        };
        match (ok, role) {
            (true, Some(r)) => Ok(r),
            _ => Err(Failure::BadPassword),
        }
    }

    /// Checks a bearer token: its name and role, or why not. Every token
    /// is compared, in constant time, so the time taken says nothing.
    fn check_token(c: &WebConfig, token: &str) -> Result<(String, Role), Failure> {
        let d = config::sha256(token.as_bytes());
        let mut found = None;
        for t in &c.tokens {
            if bool::from(t.sha256.ct_eq(&d)) {
                found = Some((t.name.clone(), t.role));
            }
        }
        found.ok_or(Failure::BadToken)
    }

    /// Who is asking, from the `Authorization` header.
    async fn authenticate(
        &self,
        c: &WebConfig,
        authorization: Option<HeaderValue>,
    ) -> Result<(Principal, Role), Failure> {
        let Some(h) = authorization else {
            return Err(Failure::Missing);
        };
        let h = h.to_str().map_err(|_| Failure::Malformed)?;
        let (scheme, rest) = h.trim().split_once(' ').ok_or(Failure::Malformed)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| Failure::Malformed)?;
            let raw = String::from_utf8(raw).map_err(|_| Failure::Malformed)?;
            let (user, password) = raw.split_once(':').ok_or(Failure::Malformed)?;
            let role = self.check_basic(c, user, password).await?;
            Ok((
                Principal {
                    name: user.to_string(),
                    via: "basic",
                },
                role,
            ))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let (name, role) = Self::check_token(c, rest)?;
            Ok((
                Principal {
                    name,
                    via: "bearer",
                },
                role,
            ))
        } else {
            Err(Failure::Malformed)
        }
    }

    /// The request path without the route prefix.
    fn route_path<'a>(&self, path: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return path;
        }
        match path.strip_prefix(self.prefix.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        }
    }
}

fn allowed(role: Role, access: Access) -> bool {
    match access {
        Access::Health => true,
        Access::Read => matches!(role, Role::Read | Role::Admin),
        Access::Admin => role == Role::Admin,
        Access::Write => matches!(role, Role::RemoteWrite | Role::Admin),
        Access::Signed => true,
    }
}

fn refuse(f: Failure, role: Option<Role>) -> Response {
    if f == Failure::Forbidden {
        let role = role.map_or("none", Role::as_str);
        return (
            StatusCode::FORBIDDEN,
            format!("forbidden: the role {role} may not use this endpoint\n"),
        )
            .into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"vigil\", charset=\"UTF-8\"",
        )],
        "Unauthorized\n",
    )
        .into_response()
}

/// The remote address of a connection, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// The middleware: authenticates, authorises, audits, adds the
/// configured headers.
pub async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let c = g.config();
    let path = g.route_path(req.uri().path());
    let access = access_for(req.method(), path);
    // Most requests change nothing: only an admin action keeps copies of
    // its method, path and query for the audit line.
    let audited = audit_action(req.method(), path).map(|action| {
        (
            action,
            req.method().clone(),
            path.to_string(),
            req.uri().query().unwrap_or("").to_string(),
        )
    });
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let principal = if access == Access::Signed && authorization.is_none() {
        Principal {
            name: "anonymous".into(),
            via: "link",
        }
    } else if c.auth_enabled() && !(access == Access::Health && c.open_health) {
        match g.authenticate(&c, authorization).await {
            Ok((p, role)) if allowed(role, access) => p,
            Ok((p, role)) => {
                g.count(Failure::Forbidden);
                tracing::info!(user = %p.name, role = role.as_str(), method = %req.method(), path = %req.uri().path(), "request refused: role");
                return with_headers(refuse(Failure::Forbidden, Some(role)), &c);
            }
            Err(f) => {
                g.count(f);
                if f != Failure::Missing {
                    tracing::info!(reason = f.label(), method = %req.method(), path = %req.uri().path(), "request refused: credentials");
                }
                return with_headers(refuse(f, None), &c);
            }
        }
    } else {
        Principal {
            name: "anonymous".into(),
            via: "none",
        }
    };
    let Some((action, method, path, query)) = audited else {
        return with_headers(next.run(req).await, &c);
    };
    let remote = req
        .extensions()
        .get::<axum::extract::ConnectInfo<PeerAddr>>()
        .map(|a| a.0 .0.to_string());
    let resp = next.run(req).await;
    g.audit.record(&audit::Entry {
        who: &principal.name,
        via: principal.via,
        remote: remote.as_deref().unwrap_or(""),
        action,
        method: method.as_str(),
        path: &path,
        query: &query,
        status: resp.status().as_u16(),
    });
    with_headers(resp, &c)
}

fn with_headers(mut resp: Response, c: &WebConfig) -> Response {
    for (k, v) in &c.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_roles_the_issue_gives_them() {
        let g = Method::GET;
        let p = Method::POST;
        let d = Method::DELETE;
        for (m, path, want) in [
            (&g, "/-/healthy", Access::Health),
            (&g, "/api/health", Access::Health),
            (&g, "/api/v1/query", Access::Read),
            (&p, "/api/v1/query", Access::Read),
            (&g, "/graph", Access::Read),
            (&g, "/assets/app.js", Access::Read),
            (&g, "/api/v1/status/config", Access::Read),
            (&g, "/api/v2/silences", Access::Read),
            (&p, "/api/v2/silences", Access::Admin),
            (&d, "/api/v2/silence/abc", Access::Admin),
            (&p, "/api/v1/notify/ack", Access::Admin),
            (&g, "/api/v1/notify/ack/g/t", Access::Signed),
            (&p, "/api/v1/notify/ack/g/t", Access::Signed),
            (&d, "/api/v1/notify/acks/1", Access::Admin),
            (&p, "/api/v2/alerts", Access::Admin),
            (&p, "/-/reload", Access::Admin),
            (&p, "/api/v1/admin/tsdb/snapshot", Access::Admin),
            (&p, "/api/v1/write", Access::Write),
            (&p, "/api/v1/read", Access::Read),
            (&g, "/federate", Access::Read),
        ] {
            assert_eq!(access_for(m, path), want, "{m} {path}");
        }
        assert!(allowed(Role::Admin, Access::Write));
        assert!(!allowed(Role::Read, Access::Write));
        assert!(!allowed(Role::RemoteWrite, Access::Read));
        assert!(!allowed(Role::Read, Access::Admin));
    }

    #[test]
    fn the_prefix_is_stripped() {
        let g = Guard::new(None, "/vigil/", audit::AuditLog::disabled()).unwrap();
        assert_eq!(g.route_path("/vigil/-/reload"), "/-/reload");
        assert_eq!(g.route_path("/vigil"), "/");
        assert_eq!(g.route_path("/vigilant/x"), "/vigilant/x");
    }

    #[test]
    fn tokens_are_found_by_digest() {
        let c = WebConfig::parse(
            "bearer_tokens:\n  - name: a\n    token: aaaaaaaaaaaaaaaaaaaa\n    role: read\n  - name: b\n    token: bbbbbbbbbbbbbbbbbbbb\n    role: admin\n",
            std::path::Path::new("."),
        )
        .unwrap();
        assert_eq!(
            Guard::check_token(&c, "bbbbbbbbbbbbbbbbbbbb"),
            Ok(("b".to_string(), Role::Admin))
        );
        assert_eq!(
            Guard::check_token(&c, "cccccccccccccccccccc"),
            Err(Failure::BadToken)
        );
    }
}
