//! The binary's command line, run as a user runs it.

mod common;

use common::{free_port, http, serial, vigil, wait_ready};
use vigil_model::{labels, Appender, Value};

#[test]
fn version_prints_the_crate_version() {
    let _g = serial();
    let out = vigil().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("vigil {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_web_config_reads_users_tokens_and_tls_files() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("web.yml");
    std::fs::write(
        &good,
        "basic_auth_users:\n  alice: $2y$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W\n\
         bearer_tokens:\n  - name: agent\n    token: 0123456789abcdef0123\n    role: remote_write\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n",
    )
    .unwrap();
    let out = vigil()
        .args(["check", "web-config"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("web.yml SUCCESS"), "{text}");
    assert!(
        text.contains("bad.yml FAILED: tls_server_config: cert_file"),
        "{text}"
    );
    assert!(text.contains("none.crt"), "{text}");
}

#[test]
fn web_hash_password_prints_a_bcrypt_hash_of_stdin() {
    use std::io::Write;
    let mut child = vigil()
        .args(["web", "hash-password", "--cost", "4"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret pw\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$2b$04$") && hash.len() == 60, "{hash}");
    assert!(bcrypt::verify("s3cret pw", hash).unwrap());
    assert!(!bcrypt::verify("s3cret pw\n", hash).unwrap());
}

#[test]
fn check_rules_reports_file_group_rule_and_reason() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  \
         - alert: Down\n    expr: up == 0\n    for: 5m\n    annotations:\n      \
         summary: '{{ $labels.instance }} down'\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(up\n- name: g\n  rules: []\n",
    )
    .unwrap();
    let out = vigil()
        .args(["check", "rules"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 2 rules found"), "{text}");
    let out = vigil()
        .args(["check", "rules"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("bad.yml: group \"g\", rule #1 (x): could not parse expression"),
        "{text}"
    );
    assert!(text.contains("groupname: \"g\" is repeated"), "{text}");
}

#[test]
fn unknown_flags_are_errors_that_suggest_the_nearest_flag() {
    let _g = serial();
    let out = vigil().arg("--no-such-flag").output().unwrap();
    assert!(!out.status.success());
    let out = vigil().arg("--web.enable-lifecyle").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--web.enable-lifecycle"), "{err}");
    // A bad value names the flag.
    let out = vigil()
        .args(["--query.timeout", "2 minutes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("query.timeout"), "{err}");
}

#[test]
fn check_config_reports_valid_and_invalid_files() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "global:\n  scrape_interval: 15s\n  external_labels:\n    site: a\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "global:\n  scrape_interval: 15s\n  scrape_intervl: 1m\n",
    )
    .unwrap();
    let out = vigil()
        .args(["check", "config"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    let out = vigil()
        .args(["check", "config"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains("bad.yml:3:"), "file and line: {text}");
    assert!(text.contains("scrape_intervl"), "the key: {text}");
    let out = vigil()
        .args(["check", "config", "/nonexistent/prometheus.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // serve refuses to start on an invalid file.
    let out = vigil().arg("--config.file").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("scrape_intervl"), "{err}");
}

/// Starts `vigil` with `args` on a free port and waits until it is ready.
/// The caller waits on the child.
#[allow(clippy::zombie_processes)]
fn start(args: &[&std::ffi::OsStr]) -> (std::process::Child, u16) {
    let port = free_port();
    let mut child = vigil()
        .arg("--web.listen-address")
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    if wait_ready(port) {
        return (child, port);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("vigil never became ready");
}

fn status_config(port: u16) -> String {
    let (code, body) = http(port, "GET", "/api/v1/status/config").unwrap();
    assert_eq!(code, 200, "{body}");
    body
}

#[test]
fn reload_applies_a_good_file_and_keeps_running_on_a_bad_one() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  external_labels:\n    v: one\n").unwrap();
    let data = dir.path().join("data");
    let (mut child, port) = start(&[
        "--config.file".as_ref(),
        cfg.as_os_str(),
        "--storage.tsdb.path".as_ref(),
        data.as_os_str(),
        "--web.enable-lifecycle".as_ref(),
    ]);
    assert!(status_config(port).contains("v: one"));

    // POST /-/reload with a good file: applied.
    std::fs::write(&cfg, "global:\n  external_labels:\n    v: two\n").unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(status_config(port).contains("v: two"));

    // A bad file: 500 with the reason; the running configuration stays.
    std::fs::write(&cfg, "global:\n  external_labelz:\n    v: three\n").unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("external_labelz"), "{body}");
    assert!(status_config(port).contains("v: two"));
    let (_, metrics) = http(port, "GET", "/metrics").unwrap();
    assert!(
        metrics.contains("vigil_config_last_reload_successful 0"),
        "{metrics}"
    );

    // SIGHUP with a good file: applied, and the server keeps serving.
    std::fs::write(&cfg, "global:\n  external_labels:\n    v: four\n").unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    let t = std::time::Instant::now();
    while !status_config(port).contains("v: four") {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "SIGHUP did not reload"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, metrics) = http(port, "GET", "/metrics").unwrap();
    assert!(
        metrics.contains("vigil_config_last_reload_successful 1"),
        "{metrics}"
    );

    // /-/quit stops the server cleanly.
    let (code, _) = http(port, "POST", "/-/quit").unwrap();
    assert_eq!(code, 200);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Admin actions land in `<data>/audit.log` by default; an empty
/// `--web.audit-log-file` writes them to the log only.
#[test]
fn the_audit_log_file_and_its_empty_value() {
    let _g = serial();
    for (flag, file_wanted) in [(None, true), (Some("--web.audit-log-file="), false)] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--storage.tsdb.path".as_ref(),
            data.as_os_str(),
            "--web.enable-lifecycle".as_ref(),
        ];
        if let Some(f) = flag {
            args.push(f.as_ref());
        }
        let (mut child, port) = start(&args);
        let (code, body) = http(port, "POST", "/-/reload").unwrap();
        assert_eq!(code, 200, "{body}");
        let audit = std::fs::read_to_string(data.join("audit.log")).unwrap_or_default();
        if file_wanted {
            let line: serde_json::Value =
                serde_json::from_str(audit.lines().next().unwrap_or("null")).unwrap();
            assert_eq!(line["action"], "config_reload", "{audit}");
            assert_eq!(line["who"], "anonymous", "{audit}");
        } else {
            assert_eq!(audit, "");
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn lifecycle_endpoints_are_off_without_the_flag() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, port) = start(&["--storage.tsdb.path".as_ref(), data.as_os_str()]);
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("Lifecycle API is not enabled"), "{body}");
    let (code, _) = http(port, "POST", "/-/quit").unwrap();
    assert_eq!(code, 403);
    // The embedded default configuration is in force.
    assert!(status_config(port).contains("built-in configuration"));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn tsdb_analyze_reports_a_data_directory() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    {
        let db = vigil_tsdb::Db::open(dir.path(), vigil_tsdb::Options::default()).unwrap();
        let mut app = db.appender();
        for i in 0..5 {
            let l = labels!("__name__" => "up", "instance" => format!("h{i}").as_str());
            app.append(None, &l, 1_000, Value::Float(1.0)).unwrap();
        }
        app.commit().unwrap();
    }
    let out = vigil()
        .args(["tsdb", "analyze", "--limit", "3"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Series (head and blocks): 5"), "{text}");
    assert!(text.contains("5 up"), "{text}");
    assert!(text.contains("WAL size:"), "{text}");

    let out = vigil()
        .args(["tsdb", "analyze"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn serve_answers_health_checks_and_stops_on_sigterm() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = vigil()
        .args([
            "serve",
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--storage.tsdb.path")
        .arg(dir.path().join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut ready = false;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SIGTERM: a graceful stop with status 0.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(ready, "the server never became ready");
    assert!(status.success(), "{status:?}");
    assert!(dir.path().join("data").join("wal").is_dir());
}

fn query(port: u16, q: &str) -> String {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (code, body) = http(port, "GET", &format!("/api/v1/query?query={enc}")).unwrap();
    assert_eq!(code, 200, "{body}");
    body
}

fn wait_for(port: u16, q: &str, want: &str) {
    let t = std::time::Instant::now();
    loop {
        let body = query(port, q);
        if body.contains(want) {
            return;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{q}: never saw {want}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The configuration's scrape jobs run, and a reload starts and stops them.
#[test]
fn scrape_jobs_follow_the_configuration() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    let port = free_port();
    let job = |names: &[&str]| {
        let mut s = String::from("global:\n  scrape_interval: 1s\nscrape_configs:\n");
        for n in names {
            s.push_str(&format!(
                "  - job_name: {n}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            ));
        }
        s
    };
    std::fs::write(&cfg, job(&["self"])).unwrap();
    let data = dir.path().join("data");
    let mut child = vigil()
        .arg("--web.listen-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config.file")
        .arg(&cfg)
        .arg("--storage.tsdb.path")
        .arg(&data)
        .arg("--web.enable-lifecycle")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !matches!(http(port, "GET", "/-/ready"), Some((200, _))) {
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // vigil scrapes its own /metrics: up is 1 and its own series arrive.
    wait_for(port, "up{job=\"self\"}", "\"1\"]");
    wait_for(
        port,
        "vigil_http_requests_total{job=\"self\"}",
        "\"job\":\"self\"",
    );

    // A reload adds a job.
    std::fs::write(&cfg, job(&["self", "again"])).unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    wait_for(port, "up{job=\"again\"}", "\"1\"]");
    // Removing it stops its loop: its up series goes stale (absent).
    std::fs::write(&cfg, job(&["self"])).unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    wait_for(port, "absent(up{job=\"again\"})", "\"1\"]");

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

/// POSTs a remote-write 1.0 body: (status code, response body).
fn remote_write(port: u16, req: &vigil_server::remote_write::WriteRequest) -> (u16, String) {
    use prost::Message;
    use std::io::{Read, Write};
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out[9..12].parse().unwrap();
    (code, out)
}

/// Every sample acknowledged with 204 before a SIGKILL is there after the
/// restart: the WAL is written before the answer goes out.
#[test]
fn acknowledged_samples_survive_sigkill() {
    use vigil_server::remote_write::{Label, Sample, TimeSeries, WriteRequest};
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let empty = dir.path().join("empty.yml");
    std::fs::write(&empty, "").unwrap();
    let args = [
        "--storage.tsdb.path".as_ref(),
        data.as_os_str(),
        "--config.file".as_ref(),
        empty.as_os_str(),
    ];
    let (mut child, port) = start(&args);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = now - 60_000;
    let mut acked = 0;
    for round in 0..20i64 {
        let req = WriteRequest {
            timeseries: (0..50)
                .map(|i| TimeSeries {
                    labels: vec![
                        Label {
                            name: "__name__".into(),
                            value: "killtest".into(),
                        },
                        Label {
                            name: "i".into(),
                            value: i.to_string(),
                        },
                    ],
                    samples: vec![Sample {
                        value: (round * 100 + i) as f64,
                        timestamp: base + round * 1000,
                    }],
                })
                .collect(),
        };
        let (code, body) = remote_write(port, &req);
        assert_eq!(code, 204, "{body}");
        acked += 50;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, port) = start(&args);
    let body = query(port, "sum(count_over_time(killtest[10m]))");
    assert!(
        body.contains(&format!("\"{acked}\"]")),
        "{acked} samples: {body}"
    );
    let body = query(port, "sum(sum_over_time(killtest[10m]))");
    let want: i64 = (0..20i64)
        .flat_map(|r| (0..50i64).map(move |i| r * 100 + i))
        .sum();
    assert!(body.contains(&format!("\"{want}\"]")), "sum {want}: {body}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

/// A stand-in Alertmanager: records the body of every POST it receives.
fn fake_alertmanager() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            g.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

fn push_flag(port: u16, v: f64) -> u16 {
    use vigil_server::remote_write::{Label, Sample, TimeSeries, WriteRequest};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "flag".into(),
                },
                Label {
                    name: "instance".into(),
                    value: "x".into(),
                },
            ],
            samples: vec![Sample {
                value: v,
                timestamp: now,
            }],
        }],
    };
    remote_write(port, &req).0
}

/// An alert fires and is sent; vigil is killed with SIGKILL and restarted;
/// the alert is still firing with the same start, and no second
/// notification goes out for it.
#[test]
fn a_firing_alert_survives_sigkill_without_a_second_notification() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let (am_port, got) = fake_alertmanager();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Flag\n    expr: flag == 1\n    \
         for: 2s\n    labels: {severity: page}\n    annotations: {summary: 'flag on {{ $labels.instance }}'}\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n  \
             - static_configs:\n    - targets: ['127.0.0.1:{am_port}']\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = [
        "--config.file".as_ref(),
        cfg.as_os_str(),
        "--storage.tsdb.path".as_ref(),
        data.as_os_str(),
    ];
    let (mut child, port) = start(&args);
    let alerts = |port: u16| {
        http(port, "GET", "/api/v1/alerts")
            .map(|r| r.1)
            .unwrap_or_default()
    };
    let t = std::time::Instant::now();
    while got.lock().unwrap().is_empty() {
        assert_eq!(push_flag(port, 1.0), 204);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "never notified: {}",
            alerts(port)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let before = alerts(port);
    assert!(before.contains("\"state\":\"firing\""), "{before}");
    let first = got.lock().unwrap()[0].clone();
    assert!(
        first.contains("\"alertname\":\"Flag\"") && first.contains("flag on x"),
        "{first}"
    );
    let active_at = |body: &str| {
        let i = body.find("\"activeAt\":\"").expect("activeAt") + 12;
        body[i..i + 23].to_string()
    };
    let started = active_at(&before);

    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before = got.lock().unwrap().len();
    let (mut child, port) = start(&args);
    // Evaluations continue every second; give them several rounds.
    for _ in 0..15 {
        assert_eq!(push_flag(port, 1.0), 204);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let after = alerts(port);
    assert!(
        after.contains("\"state\":\"firing\""),
        "still firing: {after}"
    );
    assert_eq!(active_at(&after), started, "the same alert, not a new one");
    assert_eq!(
        got.lock().unwrap().len(),
        sent_before,
        "no notification within the resend delay after the restart"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

/// `/api/v1/rules` and `/api/v1/alerts` as Prometheus shapes them.
#[test]
fn rules_and_alerts_api() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - record: flag:sum\n    expr: sum(flag)\n  \
         - alert: Flag\n    expr: flag == 1\n    labels: {severity: page}\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg,
        "global:\n  external_labels: {site: a}\nrule_files: [rules.yml]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (mut child, port) = start(&[
        "--config.file".as_ref(),
        cfg.as_os_str(),
        "--storage.tsdb.path".as_ref(),
        data.as_os_str(),
        "--web.enable-lifecycle".as_ref(),
    ]);
    let t = std::time::Instant::now();
    loop {
        assert_eq!(push_flag(port, 1.0), 204);
        let (_, body) = http(port, "GET", "/api/v1/alerts").unwrap();
        if body.contains("\"state\":\"firing\"") {
            assert!(body.contains("\"value\":\"1e+00\""), "{body}");
            // A reload with unchanged rules keeps the alert's state.
            let (code, r) = http(port, "POST", "/-/reload").unwrap();
            assert_eq!(code, 200, "{r}");
            let (_, again) = http(port, "GET", "/api/v1/alerts").unwrap();
            let at = |b: &str| b.find("\"activeAt\"").map(|i| b[i..i + 40].to_string());
            assert_eq!(at(&again), at(&body), "{again}");
            assert!(again.contains("\"state\":\"firing\""), "{again}");
            break;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(20), "{body}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, body) = http(port, "GET", "/api/v1/rules").unwrap();
    assert_eq!(code, 200);
    for want in [
        "\"name\":\"g\"",
        "\"interval\":1.0",
        "\"type\":\"recording\"",
        "\"type\":\"alerting\"",
        "\"query\":\"sum(flag)\"",
        "\"health\":\"ok\"",
        "\"state\":\"firing\"",
    ] {
        assert!(body.contains(want), "{want}: {body}");
    }
    let (_, body) = http(port, "GET", "/api/v1/rules?type=record").unwrap();
    assert!(!body.contains("\"type\":\"alerting\""), "{body}");
    let (code, body) = http(port, "GET", "/api/v1/rules?type=bogus").unwrap();
    assert_eq!(code, 400, "{body}");
    let q = query(port, "flag:sum");
    assert!(q.contains("\"1\"]"), "{q}");
    // Rule results are stored with the external labels (issue #7).
    assert!(q.contains("\"site\":\"a\""), "{q}");
    let q = query(port, "ALERTS{alertname=\"Flag\"}");
    assert!(q.contains("\"site\":\"a\""), "{q}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

/// A raw request with a body: (status, headers and body as text).
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    (text[9..12].parse().unwrap(), text)
}

/// Every endpoint of the HTTP API answers through the real binary, with a
/// success and an error case each: remote write 1.0 and 2.0 in, queries,
/// metadata, status, admin, remote read and federation out.
#[test]
fn every_endpoint_through_the_binary() {
    use prost::Message;
    use vigil_server::remote_write::{v2, Sample};
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(&cfg, "global:\n  external_labels: {site: t}\n").unwrap();
    let data = dir.path().join("data");
    let (mut child, port) = start(&[
        "--config.file".as_ref(),
        cfg.as_os_str(),
        "--storage.tsdb.path".as_ref(),
        data.as_os_str(),
        "--web.enable-admin-api".as_ref(),
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    // Remote write 1.0 and 2.0.
    assert_eq!(push_flag(port, 1.0), 204);
    let req = v2::Request {
        symbols: vec![
            "".into(),
            "__name__".into(),
            "v2_metric".into(),
            "job".into(),
            "w".into(),
        ],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![Sample {
                value: 42.0,
                timestamp: now,
            }],
            histograms: vec![],
            exemplars: vec![],
            created_timestamp: 0,
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let v2_type = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let (code, resp) = request(
        port,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", v2_type),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "2.0.0"),
        ],
        &body,
    );
    assert_eq!(code, 204, "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("x-prometheus-remote-write-samples-written: 1"),
        "{resp}"
    );
    let (code, _) = request(
        port,
        "POST",
        "/api/v1/write",
        &[("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(code, 415);
    let (code, _) = request(
        port,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        b"garbage",
    );
    assert_eq!(code, 400);

    let ok = |path: &str, want: &str| {
        let (code, body) = http(port, "GET", path).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
        assert!(body.contains(want), "{path}: want {want}: {body}");
    };
    let bad = |path: &str, code_want: u16| {
        let (code, body) = http(port, "GET", path).unwrap();
        assert_eq!(code, code_want, "{path}: {body}");
        if path.starts_with("/api/") {
            assert!(
                body.contains("\"status\":\"error\"") && body.contains("\"errorType\""),
                "{path}: {body}"
            );
        }
    };
    ok("/api/v1/query?query=v2_metric", "\"42\"");
    bad("/api/v1/query?query=sum(", 400);
    ok(
        &format!(
            "/api/v1/query_range?query=flag&start={}&end={}&step=1",
            now / 1000 - 5,
            now / 1000 + 5
        ),
        "\"matrix\"",
    );
    bad("/api/v1/query_range?query=flag&start=10&end=0&step=1", 400);
    ok("/api/v1/series?match[]=v2_metric", "\"job\":\"w\"");
    bad("/api/v1/series", 400);
    ok("/api/v1/labels", "\"job\"");
    bad("/api/v1/labels?start=nope", 400);
    ok("/api/v1/label/__name__/values", "\"flag\"");
    bad("/api/v1/label/__name__/values?match[]=%7B", 400);
    ok("/api/v1/metadata", "\"success\"");
    bad("/api/v1/metadata?limit=x", 400);
    ok(
        "/api/v1/format_query?query=sum(rate(x%5B5m%5D))by(job)",
        "sum by (job)",
    );
    bad("/api/v1/format_query?query=sum(", 400);
    ok("/api/v1/parse_query?query=up", "\"vectorSelector\"");
    bad("/api/v1/parse_query?query=up%7B", 400);
    ok("/api/v1/status/config", "site: t");
    ok("/api/v1/status/flags", "\"web.enable-admin-api\":\"true\"");
    ok("/api/v1/status/runtimeinfo", "\"storageRetention\"");
    ok("/api/v1/status/buildinfo", "\"version\"");
    ok("/api/v1/status/tsdb", "\"headStats\"");
    ok("/api/v1/targets", "\"activeTargets\"");
    ok("/api/v1/rules", "\"groups\"");
    ok("/api/v1/alerts", "\"alerts\"");
    ok(
        "/federate?match[]=v2_metric",
        "v2_metric{job=\"w\",site=\"t\"} 42",
    );
    bad("/federate?match[]=%7B", 400);
    ok("/api/health-check", "\"storage\"");
    ok("/metrics", "vigil_http_requests_total");
    ok("/api/metrics", "process_resident_memory_bytes");
    ok("/-/healthy", "");
    ok("/-/ready", "");
    // Admin (enabled by the flag).
    let (code, body) = request(port, "POST", "/api/v1/admin/tsdb/snapshot", &[], b"");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"name\""), "{body}");
    let (code, body) = request(
        port,
        "POST",
        "/api/v1/admin/tsdb/delete_series?match[]=flag",
        &[],
        b"",
    );
    assert_eq!(code, 204, "{body}");
    let (code, _) = request(port, "POST", "/api/v1/admin/tsdb/delete_series", &[], b"");
    assert_eq!(code, 400);
    let (code, _) = request(
        port,
        "POST",
        "/api/v1/admin/tsdb/clean_tombstones",
        &[],
        b"",
    );
    assert_eq!(code, 204);
    // Remote read: a malformed body is refused.
    let (code, _) = request(
        port,
        "POST",
        "/api/v1/read",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        b"nope",
    );
    assert_eq!(code, 400);

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

/// vigil's notifier through the binary: a rule's alert is routed to a
/// webhook; the group is acknowledged through the API and the ack shows in
/// /api/v1/alerts and the history; a silence is created and expired through
/// Alertmanager's v2 API.
#[test]
fn notifier_routes_acks_and_silences() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let (hook, got) = fake_alertmanager();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Flag\n    expr: flag == 1\n    \
         labels: {severity: critical}\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg,
        format!(
            "rule_files: [rules.yml]\nnotify:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    \
             group_wait: 1s\n    group_interval: 1s\n  receivers:\n  - name: hook\n    webhook_configs:\n    \
             - url: http://127.0.0.1:{hook}/\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let (mut child, port) = start(&[
        "--config.file".as_ref(),
        cfg.as_os_str(),
        "--storage.tsdb.path".as_ref(),
        data.as_os_str(),
    ]);
    let t = std::time::Instant::now();
    while got.lock().unwrap().is_empty() {
        assert_eq!(push_flag(port, 1.0), 204);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "never notified"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let first = got.lock().unwrap()[0].clone();
    assert!(
        first.contains("\"version\":\"4\"") && first.contains("\"alertname\":\"Flag\""),
        "{first}"
    );
    let (code, groups) = http(port, "GET", "/api/v2/alerts/groups").unwrap();
    assert_eq!(code, 200, "{groups}");
    let i = groups.find("\"id\":\"").expect("group id") + 6;
    let id = &groups[i..i + 16];
    let body = format!("{{\"group\":\"{id}\",\"by\":\"alice\",\"comment\":\"on it\"}}");
    let (code, resp) = request(
        port,
        "POST",
        "/api/v1/notify/ack",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(code, 200, "{resp}");
    let (_, alerts) = http(port, "GET", "/api/v1/alerts").unwrap();
    assert!(
        alerts.contains("\"by\":\"alice\"") && alerts.contains("on it"),
        "{alerts}"
    );
    let (_, hist) = http(port, "GET", "/api/v1/notify/history").unwrap();
    assert!(hist.contains("alice"), "{hist}");
    let (code, bad) = request(port, "POST", "/api/v1/notify/ack", &[], b"{\"by\":\"x\"}");
    assert_eq!(code, 400, "{bad}");

    let silence = br#"{"matchers":[{"name":"alertname","value":"Flag","isRegex":false,"isEqual":true}],"startsAt":"2020-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"bob","comment":"maintenance"}"#;
    let (code, resp) = request(
        port,
        "POST",
        "/api/v2/silences",
        &[("Content-Type", "application/json")],
        silence,
    );
    assert_eq!(code, 200, "{resp}");
    let i = resp.find("\"silenceID\":\"").unwrap() + 13;
    let sid = resp[i..].split('"').next().unwrap().to_string();
    let (_, list) = http(port, "GET", "/api/v2/silences").unwrap();
    assert!(
        list.contains(&sid) && list.contains("\"state\":\"active\""),
        "{list}"
    );
    let (code, _) = request(port, "DELETE", &format!("/api/v2/silence/{sid}"), &[], b"");
    assert_eq!(code, 200);
    let (_, one) = http(port, "GET", &format!("/api/v2/silence/{sid}")).unwrap();
    assert!(one.contains("\"state\":\"expired\""), "{one}");
    let (code, _) = request(port, "POST", "/api/v2/silences", &[], b"{}");
    assert_eq!(code, 400);

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}
