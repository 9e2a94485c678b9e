//! `--web.config.file` end to end: a real server with users, tokens and
//! roles; every route refused without credentials and accepted with the
//! right role; failures counted; admin actions audited; the file reloaded
//! when it changes; TLS.

use std::path::Path;
use std::time::Duration;

use vigil_server::{start, ServerOptions};

/// Every route the server has, with the role it needs. The path is what a
/// client sends; `{id}`-style parts are filled in.
const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/-/healthy", Need::Health),
    ("GET", "/-/ready", Need::Health),
    ("GET", "/api/health", Need::Health),
    ("GET", "/api/health-check", Need::Read),
    ("GET", "/metrics", Need::Read),
    ("GET", "/api/metrics", Need::Read),
    ("GET", "/api/v1/query?query=1", Need::Read),
    ("POST", "/api/v1/query?query=1", Need::Read),
    (
        "GET",
        "/api/v1/query_range?query=1&start=0&end=60&step=15",
        Need::Read,
    ),
    ("GET", "/api/v1/labels", Need::Read),
    ("GET", "/api/v1/label/job/values", Need::Read),
    ("GET", "/api/v1/series?match[]=up", Need::Read),
    ("GET", "/api/v1/metadata", Need::Read),
    ("GET", "/api/v2/alerts", Need::Read),
    ("POST", "/api/v2/alerts", Need::Admin),
    ("GET", "/api/v2/alerts/groups", Need::Read),
    ("GET", "/api/v2/silences", Need::Read),
    ("POST", "/api/v2/silences", Need::Admin),
    ("GET", "/api/v2/silence/x", Need::Read),
    ("DELETE", "/api/v2/silence/x", Need::Admin),
    ("GET", "/api/v2/status", Need::Read),
    ("GET", "/api/v2/receivers", Need::Read),
    ("POST", "/api/v1/notify/ack", Need::Admin),
    ("GET", "/api/v1/notify/ack/g/t", Need::Signed),
    ("POST", "/api/v1/notify/ack/g/t", Need::Signed),
    ("GET", "/api/v1/notify/acks", Need::Read),
    ("DELETE", "/api/v1/notify/acks/1", Need::Admin),
    ("GET", "/api/v1/notify/escalations", Need::Read),
    ("GET", "/api/v1/notify/history", Need::Read),
    ("GET", "/api/v1/rules", Need::Read),
    ("GET", "/api/v1/alerts", Need::Read),
    ("GET", "/api/v1/targets", Need::Read),
    ("GET", "/api/v1/targets/metadata", Need::Read),
    ("GET", "/api/v1/scrape_pools", Need::Read),
    ("GET", "/api/v1/format_query?query=up", Need::Read),
    ("GET", "/api/v1/parse_query?query=up", Need::Read),
    ("GET", "/api/v1/status/config", Need::Read),
    ("GET", "/api/v1/status/flags", Need::Read),
    ("GET", "/api/v1/status/runtimeinfo", Need::Read),
    ("GET", "/api/v1/status/buildinfo", Need::Read),
    ("GET", "/api/v1/status/tsdb", Need::Read),
    (
        "POST",
        "/api/v1/admin/tsdb/delete_series?match[]=nothing_here",
        Need::Admin,
    ),
    ("POST", "/api/v1/admin/tsdb/clean_tombstones", Need::Admin),
    ("POST", "/api/v1/admin/tsdb/snapshot", Need::Admin),
    ("POST", "/api/v1/admin/tsdb/flush", Need::Admin),
    ("POST", "/api/v1/write", Need::Write),
    ("POST", "/api/v1/read", Need::Read),
    ("GET", "/federate?match[]=up", Need::Read),
    ("GET", "/graph", Need::Read),
    ("GET", "/alerts", Need::Read),
    ("GET", "/dashboards/vigil", Need::Read),
    ("GET", "/api/v1/dashboards", Need::Read),
    ("GET", "/no/such/page", Need::Read),
    ("POST", "/-/reload", Need::Admin),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Health,
    Read,
    Admin,
    Write,
    /// No credentials needed: the request carries its own (an ack link's
    /// signed token, which the handler checks).
    Signed,
}

const READ_TOKEN: &str = "read-token-0123456789";
const ADMIN_TOKEN: &str = "admin-token-0123456789";
const WRITE_TOKEN: &str = "write-token-0123456789";

/// Who asks.
#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    Basic(&'static str, &'static str),
    Bearer(&'static str),
}

struct TestServer {
    rt: tokio::runtime::Runtime,
    server: Option<vigil_server::Server>,
    dir: tempfile::TempDir,
    client: reqwest::Client,
    base: String,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = self.rt.block_on(s.shutdown());
        }
    }
}

fn hash(pw: &str) -> String {
    // Cost 4: the test's hashes need not resist anyone.
    bcrypt::hash(pw, 4).unwrap()
}

fn web_config(open_health: bool) -> String {
    format!(
        "basic_auth_users:\n  alice: {}\n  viewer: {}\nuser_roles:\n  viewer: read\n\
         bearer_tokens:\n  - name: reader\n    token: {READ_TOKEN}\n    role: read\n\
         \x20 - name: ci\n    token_sha256: {}\n    role: admin\n\
         \x20 - name: agent\n    token_file: agent.token\n    role: remote_write\n\
         open_health_endpoints: {open_health}\n\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        hash("alice-pw"),
        hash("viewer-pw"),
        sha256_hex(ADMIN_TOKEN),
    )
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TestServer {
    /// A server with the web config `text` (and `agent.token` beside it);
    /// `tls` adds a certificate and returns a client that trusts it.
    fn start(text: &str, tls: bool) -> TestServer {
        install_crypto();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agent.token"), format!("{WRITE_TOKEN}\n")).unwrap();
        let mut text = text.to_string();
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(20));
        if tls {
            let (cert, key, ca) = certificate();
            std::fs::write(dir.path().join("vigil.crt"), cert).unwrap();
            std::fs::write(dir.path().join("vigil.key"), key).unwrap();
            text.push_str("tls_server_config:\n  cert_file: vigil.crt\n  key_file: vigil.key\n");
            client = client
                .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
                .https_only(true);
        }
        let file = dir.path().join("web.yml");
        std::fs::write(&file, text).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(2)
            .build()
            .unwrap();
        let server = rt
            .block_on(start(ServerOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: dir.path().join("data"),
                web_config_file: Some(file),
                enable_admin_api: true,
                enable_lifecycle: true,
                ..ServerOptions::default()
            }))
            .unwrap();
        let scheme = if tls { "https" } else { "http" };
        let base = if tls {
            format!("{scheme}://localhost:{}", server.addr().port())
        } else {
            format!("{scheme}://{}", server.addr())
        };
        TestServer {
            rt,
            server: Some(server),
            dir,
            client: client.build().unwrap(),
            base,
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        who: Who,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m, url);
        req = match who {
            Who::Nobody => req,
            Who::Basic(u, p) => req.basic_auth(u, Some(p)),
            Who::Bearer(t) => req.bearer_auth(t),
        };
        self.rt.block_on(async {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, r.text().await.unwrap_or_default(), headers)
        })
    }

    fn metric(&self, line_start: &str) -> f64 {
        let (_, body, _) = self.call("GET", "/metrics", Who::Basic("alice", "alice-pw"));
        body.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
    }
}

/// A CA-less self-signed certificate for `localhost`: (cert, key, the cert
/// again as the client's root).
fn certificate() -> (String, String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = c.cert.pem();
    (pem.clone(), c.key_pair.serialize_pem(), pem)
}

fn refused(status: u16) -> bool {
    status == 401 || status == 403
}

#[test]
fn every_route_needs_the_right_role() {
    let s = TestServer::start(&web_config(false), false);
    let alice = Who::Basic("alice", "alice-pw");
    let viewer = Who::Basic("viewer", "viewer-pw");
    for &(method, path, need) in ROUTES {
        // Nobody: refused everywhere, the health endpoints included
        // (they are not opened in this file), but for ack links.
        let (st, _, h) = s.call(method, path, Who::Nobody);
        if need == Need::Signed {
            // The handler checks the link (here: no notifier, 503).
            assert!(!refused(st), "{method} {path} without credentials: {st}");
        } else {
            assert_eq!(st, 401, "{method} {path} without credentials");
            assert!(
                h.get("www-authenticate").is_some(),
                "{method} {path}: a browser is asked to log in"
            );
        }
        assert_eq!(
            h.get("x-frame-options").map(|v| v.to_str().unwrap()),
            Some("deny")
        );
        for (who, ok) in [
            (viewer, need != Need::Admin && need != Need::Write),
            (
                Who::Bearer(READ_TOKEN),
                need != Need::Admin && need != Need::Write,
            ),
            (alice, true),
            (Who::Bearer(ADMIN_TOKEN), true),
            (
                Who::Bearer(WRITE_TOKEN),
                matches!(need, Need::Write | Need::Health | Need::Signed),
            ),
        ] {
            let (st, body, _) = s.call(method, path, who);
            if ok {
                assert!(!refused(st), "{method} {path} as {who:?}: {st} {body}");
            } else {
                assert_eq!(st, 403, "{method} {path} as {who:?}: {body}");
            }
        }
    }
    // The refusals were counted by reason.
    let missing = s.metric("vigil_http_auth_failures_total{reason=\"missing_credentials\"}");
    let closed = ROUTES.iter().filter(|r| r.2 != Need::Signed).count();
    assert!(missing >= closed as f64, "{missing}");
    // Credentials sent to an ack link must still be right.
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/notify/ack/g/t",
            Who::Basic("alice", "wrong")
        )
        .0,
        401
    );
    let forbidden = s.metric("vigil_http_auth_failures_total{reason=\"forbidden\"}");
    assert!(forbidden > 0.0);
    let before = s.metric("vigil_http_auth_failures_total{reason=\"bad_password\"}");
    for who in [
        Who::Basic("alice", "wrong"),
        Who::Basic("mallory", "alice-pw"),
    ] {
        assert_eq!(s.call("GET", "/api/v1/labels", who).0, 401);
    }
    assert_eq!(
        s.metric("vigil_http_auth_failures_total{reason=\"bad_password\"}"),
        before + 2.0
    );
    assert_eq!(
        s.call("GET", "/api/v1/labels", Who::Bearer("not-a-token-at-all"))
            .0,
        401
    );
    assert_eq!(
        s.metric("vigil_http_auth_failures_total{reason=\"bad_token\"}"),
        1.0
    );

    // Admin actions are in the audit log with who did them.
    let audit = std::fs::read_to_string(s.dir.path().join("data/audit.log")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for action in [
        "config_reload",
        "delete_series",
        "snapshot",
        "silence_create",
        "ack",
    ] {
        let mine: Vec<_> = lines.iter().filter(|l| l["action"] == action).collect();
        assert!(!mine.is_empty(), "{action} not audited: {audit}");
        // Refused attempts never reach the handler, so only admins appear.
        assert!(
            mine.iter().all(|l| l["who"] == "alice" || l["who"] == "ci"),
            "{action}: {audit}"
        );
        assert!(mine
            .iter()
            .all(|l| l["ts"].as_str().is_some_and(|t| t.ends_with('Z'))));
    }
    // Ack links: audited when POSTed (a GET only shows a form), as the
    // user who sent credentials, or as `anonymous` via the link.
    let links: Vec<_> = lines.iter().filter(|l| l["action"] == "ack_link").collect();
    assert!(links.iter().all(|l| l["method"] == "POST"), "{audit}");
    assert!(
        links
            .iter()
            .any(|l| l["who"] == "anonymous" && l["via"] == "link"),
        "{audit}"
    );
    assert!(links.iter().any(|l| l["who"] == "alice"), "{audit}");
    let delete = lines
        .iter()
        .find(|l| l["action"] == "delete_series")
        .unwrap();
    assert_eq!(delete["query"], "match[]=nothing_here");
    assert!(delete["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    // /-/quit last: refused, then it stops the server for an admin.
    assert_eq!(s.call("POST", "/-/quit", viewer).0, 403);
    assert_eq!(s.call("POST", "/-/quit", alice).0, 200);
}

#[test]
fn health_endpoints_open_by_setting_and_the_file_reloads() {
    let s = TestServer::start(&web_config(true), false);
    for p in ["/-/healthy", "/-/ready", "/api/health"] {
        assert_eq!(s.call("GET", p, Who::Nobody).0, 200, "{p}");
    }
    assert_eq!(s.call("GET", "/api/v1/query?query=1", Who::Nobody).0, 401);
    // A changed file takes effect without a restart: bob appears.
    let file = s.dir.path().join("web.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    let with_bob = text.replacen(
        "basic_auth_users:\n",
        &format!("basic_auth_users:\n  bob: {}\n", hash("bob-pw")),
        1,
    );
    std::fs::write(&file, &with_bob).unwrap();
    let bob = Who::Basic("bob", "bob-pw");
    wait(|| s.call("GET", "/api/v1/labels", bob).0 == 200, "bob");
    assert_eq!(s.metric("vigil_web_config_last_reload_successful"), 1.0);
    // A broken file keeps the settings in force and says so.
    std::fs::write(&file, "basic_auth_users: [not, a, map]\n").unwrap();
    wait(
        || s.metric("vigil_web_config_last_reload_successful") == 0.0,
        "the failed reload",
    );
    assert_eq!(s.call("GET", "/api/v1/labels", bob).0, 200);
    assert_eq!(s.call("GET", "/api/v1/labels", Who::Nobody).0, 401);
    // A reload by the process (SIGHUP in the binary) is audited too.
    s.rt.block_on(s.server.as_ref().unwrap().reload()).unwrap();
    let audit = std::fs::read_to_string(s.dir.path().join("data/audit.log")).unwrap();
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["who"], &last["via"], &last["action"]),
        (&"local".into(), &"process".into(), &"config_reload".into())
    );
}

#[test]
fn tls_serves_https_and_refuses_plain_http() {
    let s = TestServer::start(&web_config(false), true);
    let (st, body, _) = s.call("GET", "/api/v1/query?query=1%2B1", Who::Bearer(READ_TOKEN));
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"2\""), "{body}");
    assert_eq!(s.call("GET", "/api/v1/labels", Who::Nobody).0, 401);
    // Plain HTTP to the TLS port gets no HTTP answer.
    let addr = s.server.as_ref().unwrap().addr();
    let plain = reqwest::Client::new();
    let r =
        s.rt.block_on(async { plain.get(format!("http://{addr}/-/healthy")).send().await });
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn bad_web_config_stops_the_start_with_the_reason() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("basic_auth_users:\n  a: plain-text\n", "not a bcrypt hash"),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
            "missing.crt",
        ),
    ] {
        let file = dir.path().join("web.yml");
        std::fs::write(&file, text).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let e = rt
            .block_on(start(ServerOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: dir.path().join("data"),
                web_config_file: Some(file.clone()),
                ..ServerOptions::default()
            }))
            .expect_err("refused");
        assert!(e.to_string().contains(want), "{e}");
        assert!(
            !e.to_string().contains("plain-text"),
            "secrets stay out of errors: {e}"
        );
    }
    assert!(!Path::new(&dir.path().join("data/wal")).exists());
}

fn wait(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}
