//! Receivers against real local servers on 127.0.0.1: an HTTP sink that
//! records webhook, Slack and SMS requests, and a real SMTP server
//! (Python's aiosmtpd, installed with pip into a directory of the target
//! dir when missing; the email tests fail, not skip, without it), plain or
//! requiring STARTTLS with a certificate rcgen makes for the test.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{json, Value};
use vigil_model::Labels;
use vigil_notify::receivers::{self, ReceiverConfig};
use vigil_notify::{Alert, Integration, NotificationData};

/// One recorded request.
#[derive(Debug, Clone)]
struct Req {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Sink {
    reqs: Arc<Mutex<Vec<Req>>>,
    status: Arc<AtomicU16>,
}

async fn record(State(s): State<Sink>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    s.reqs.lock().unwrap().push(Req {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    });
    StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap()
}

/// Starts the HTTP sink; answers every request with the current status.
async fn sink() -> (SocketAddr, Sink) {
    let s = Sink {
        reqs: Arc::new(Mutex::new(Vec::new())),
        status: Arc::new(AtomicU16::new(200)),
    };
    let app = axum::Router::new()
        .fallback(axum::routing::any(record))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, s)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

const NOW: i64 = 1_700_000_900_000;

fn alert(instance: &str, severity: &str, ends_at: i64) -> Alert {
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), format!("{instance} is slow"));
    Alert {
        labels: labels(&[
            ("alertname", "HighLatency"),
            ("instance", instance),
            ("job", "api"),
            ("severity", severity),
        ]),
        annotations,
        starts_at: 1_700_000_000_000,
        ends_at,
        generator_url: "http://prom:9090/graph?g0.expr=up".into(),
        updated_at: NOW,
    }
}

/// A group of two alerts, one firing and one resolved.
fn data(severity: &str) -> NotificationData {
    let mut common_annotations = BTreeMap::new();
    common_annotations.insert("runbook".to_string(), "http://runbooks/latency".to_string());
    NotificationData {
        receiver: "team-x".into(),
        status: "firing".into(),
        alerts: vec![
            alert("a:9090", severity, NOW + 300_000),
            alert("b:9090", severity, NOW - 60_000),
        ],
        group_labels: labels(&[("alertname", "HighLatency")]),
        common_labels: labels(&[
            ("alertname", "HighLatency"),
            ("job", "api"),
            ("severity", severity),
        ]),
        common_annotations,
        external_url: "http://vigil:9090".into(),
        group_key: "{}:{alertname=\"HighLatency\"}".into(),
        truncated_alerts: 0,
        now: NOW,
        ack_url: Some("http://vigil:9090/api/v1/notify/ack/t0k".into()),
        escalation_level: Some(1),
    }
}

fn resolved(mut d: NotificationData) -> NotificationData {
    for a in &mut d.alerts {
        a.ends_at = NOW - 1000;
    }
    d.status = "resolved".into();
    d
}

fn build(yaml: &str) -> Vec<Box<dyn Integration>> {
    let cfg: ReceiverConfig = serde_yaml_ng::from_str(yaml).unwrap();
    receivers::build(&cfg).unwrap()
}

fn only(mut v: Vec<Box<dyn Integration>>) -> Box<dyn Integration> {
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn fnv_fingerprint(pairs: &[(&str, &str)]) -> String {
    let mut p = pairs.to_vec();
    p.sort();
    let mut h: u64 = 0xcbf29ce484222325;
    for (n, v) in p {
        for b in n.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

#[tokio::test]
async fn webhook_sends_alertmanagers_version_4_payload() {
    let (addr, s) = sink().await;
    let w = only(build(&format!(
        "name: team-x\nwebhook_configs:\n  - url: http://{addr}/hook\n    http_config:\n      authorization: {{ credentials: s3cret }}\n"
    )));
    assert_eq!(w.kind(), "webhook");
    assert!(w.send_resolved());
    w.notify(&data("critical")).await.unwrap();
    let reqs = s.reqs.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/hook");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["authorization"], "Bearer s3cret");
    let fp_a = fnv_fingerprint(&[
        ("alertname", "HighLatency"),
        ("instance", "a:9090"),
        ("job", "api"),
        ("severity", "critical"),
    ]);
    // The exact bytes, keys in Alertmanager's order.
    let expected = format!(
        concat!(
            r#"{{"receiver":"team-x","status":"firing","alerts":["#,
            r#"{{"status":"firing","labels":{{"alertname":"HighLatency","instance":"a:9090","job":"api","severity":"critical"}},"annotations":{{"summary":"a:9090 is slow"}},"startsAt":"2023-11-14T22:13:20Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom:9090/graph?g0.expr=up","fingerprint":"{fp}"}},"#,
            r#"{{"status":"resolved","labels":{{"alertname":"HighLatency","instance":"b:9090","job":"api","severity":"critical"}},"annotations":{{"summary":"b:9090 is slow"}},"startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-14T22:27:20Z","generatorURL":"http://prom:9090/graph?g0.expr=up","fingerprint":"{fpb}"}}],"#,
            r#""groupLabels":{{"alertname":"HighLatency"}},"commonLabels":{{"alertname":"HighLatency","job":"api","severity":"critical"}},"commonAnnotations":{{"runbook":"http://runbooks/latency"}},"externalURL":"http://vigil:9090","version":"4","groupKey":"{{}}:{{alertname=\"HighLatency\"}}","truncatedAlerts":0}}"#
        ),
        fp = fp_a,
        fpb = fnv_fingerprint(&[
            ("alertname", "HighLatency"),
            ("instance", "b:9090"),
            ("job", "api"),
            ("severity", "critical"),
        ]),
    );
    assert_eq!(String::from_utf8(r.body.clone()).unwrap(), expected);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn webhook_max_alerts_truncates_and_recomputes_common_labels() {
    let (addr, s) = sink().await;
    let w = only(build(&format!(
        "name: r\nwebhook_configs:\n  - url: http://{addr}/\n    max_alerts: 1\n    http_config:\n      basic_auth: {{ username: u, password: p }}\n"
    )));
    let mut d = data("warning");
    d.alerts[1].labels = labels(&[("alertname", "HighLatency"), ("instance", "c")]);
    d.common_labels = labels(&[("alertname", "HighLatency")]);
    w.notify(&d).await.unwrap();
    let r = s.reqs.lock().unwrap()[0].clone();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["truncatedAlerts"], 1);
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["commonLabels"],
        json!({"alertname":"HighLatency","instance":"a:9090","job":"api","severity":"warning"})
    );
    // u:p in base64.
    assert_eq!(r.headers["authorization"], "Basic dTpw");
}

#[tokio::test]
async fn http_errors_classify_retryable() {
    let (addr, s) = sink().await;
    let w = only(build(&format!(
        "name: r\nwebhook_configs:\n  - url: http://{addr}/secret-path\n"
    )));
    for (status, retryable) in [
        (500, true),
        (503, true),
        (429, true),
        (400, false),
        (404, false),
    ] {
        s.status.store(status, Ordering::SeqCst);
        let e = w.notify(&data("critical")).await.unwrap_err();
        assert_eq!(e.retryable, retryable, "{status}: {e:?}");
        assert!(e.message.contains(&status.to_string()), "{e:?}");
        assert!(!e.message.contains("secret-path"), "the URL leaked: {e:?}");
    }
    // Nothing listens: a network error, retryable, without the URL.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = only(build(&format!(
        "name: r\nwebhook_configs:\n  - url: http://127.0.0.1:{port}/secret-path\n"
    )));
    let e = w.notify(&data("critical")).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(!e.message.contains("secret-path"), "the URL leaked: {e:?}");
}

#[tokio::test]
async fn webhook_url_file_and_timeout() {
    let (addr, s) = sink().await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("url");
    std::fs::write(&f, format!("http://{addr}/from-file\n")).unwrap();
    let w = only(build(&format!(
        "name: r\nwebhook_configs:\n  - url_file: {}\n    timeout: 5s\n",
        f.display()
    )));
    w.notify(&data("critical")).await.unwrap();
    assert_eq!(s.reqs.lock().unwrap()[0].path, "/from-file");
}

#[tokio::test]
async fn webhook_files_relative_to_the_config_directory() {
    let (addr, s) = sink().await;
    // The notify configuration's directory, which is not the working
    // directory (cargo runs tests in the crate's directory).
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_ne!(cwd, dir.path());
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("vigil-test-hook.url"),
        format!("http://{addr}/relative-url-file\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("secrets/hook.token"), "t0ken\n").unwrap();
    let yaml = "route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs:\n      \
                - url_file: vigil-test-hook.url\n        http_config: \
                {bearer_token_file: secrets/hook.token}\n";
    let mut cfg: vigil_notify::Config = serde_yaml_ng::from_str(yaml).unwrap();
    cfg.validate().unwrap();

    // As written, the paths are relative to the working directory, where
    // the files are not: sending fails.
    let w = only(receivers::build(&cfg.receivers[0]).unwrap());
    let e = w.notify(&data("critical")).await.unwrap_err();
    assert!(e.message.contains("vigil-test-hook.url"), "{e:?}");
    assert!(s.reqs.lock().unwrap().is_empty());

    // Resolved against the configuration's directory when loaded, they
    // are read from there.
    cfg.resolve_paths(dir.path());
    let wc = &cfg.receivers[0].webhook_configs[0];
    assert_eq!(wc.url_file, Some(dir.path().join("vigil-test-hook.url")));
    let w = only(receivers::build(&cfg.receivers[0]).unwrap());
    w.notify(&data("critical")).await.unwrap();
    let reqs = s.reqs.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/relative-url-file");
    assert_eq!(reqs[0].headers["authorization"], "Bearer t0ken");
}

#[tokio::test]
async fn slack_attachment_and_severity_colours() {
    let (addr, s) = sink().await;
    let sl = only(build(&format!(
        r#"
name: team-x
slack_configs:
  - api_url: http://{addr}/services/T/B/X
    channel: '#alerts'
    icon_emoji: ':fire:'
    fields:
      - title: Runbook
        value: '{{{{ .CommonAnnotations.runbook }}}}'
      - title: Level
        value: 'L{{{{ .EscalationLevel }}}}'
        short: true
"#
    )));
    assert_eq!(sl.kind(), "slack");
    assert!(!sl.send_resolved());
    for (sev, colour) in [
        ("critical", "danger"),
        ("warning", "warning"),
        ("info", "#439FE0"),
    ] {
        sl.notify(&data(sev)).await.unwrap();
        let r = s.reqs.lock().unwrap().pop().unwrap();
        assert_eq!(r.path, "/services/T/B/X");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["channel"], "#alerts");
        assert_eq!(v["username"], "vigil");
        assert_eq!(v["icon_emoji"], ":fire:");
        let a = &v["attachments"][0];
        assert_eq!(a["color"], colour, "{sev}");
        assert_eq!(
            a["title"],
            format!("[FIRING:1] HighLatency (api {sev})"),
            "{sev}"
        );
        assert_eq!(
            a["title_link"],
            "http://vigil:9090/#/alerts?receiver=team-x"
        );
        assert_eq!(
            a["text"],
            format!(
                "*FIRING* HighLatency [{sev}]: a:9090 is slow\n*RESOLVED* HighLatency [{sev}]: b:9090 is slow\n<http://vigil:9090/api/v1/notify/ack/t0k|Acknowledge>"
            )
        );
        assert_eq!(
            a["fallback"],
            format!(
                "[FIRING:1] HighLatency (api {sev}) | http://vigil:9090/#/alerts?receiver=team-x"
            )
        );
        assert_eq!(
            a["fields"],
            json!([
                {"title": "Runbook", "value": "http://runbooks/latency", "short": false},
                {"title": "Level", "value": "L1", "short": true}
            ])
        );
        assert_eq!(a["mrkdwn_in"], json!(["fallback", "pretext", "text"]));
    }
    sl.notify(&resolved(data("critical"))).await.unwrap();
    let r = s.reqs.lock().unwrap().pop().unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["attachments"][0]["color"], "good");
    assert_eq!(
        v["attachments"][0]["title"],
        "[RESOLVED] HighLatency (api critical)"
    );
}

#[tokio::test]
async fn slack_custom_templates_and_colour() {
    let (addr, s) = sink().await;
    let sl = only(build(&format!(
        r#"
name: r
slack_configs:
  - api_url: http://{addr}/x
    title: '{{{{ .CommonLabels.alertname | toLower }}}} on {{{{ len .Alerts.Firing }}}}'
    text: '{{{{ range .Alerts.Firing }}}}{{{{ .Labels.instance }}}} since {{{{ .StartsAt.Format "15:04" }}}}{{{{ end }}}}'
    color: '{{{{ if eq .Status "firing" }}}}#FF0000{{{{ else }}}}#00FF00{{{{ end }}}}'
"#
    )));
    sl.notify(&data("critical")).await.unwrap();
    let v: Value = serde_json::from_slice(&s.reqs.lock().unwrap()[0].body).unwrap();
    let a = &v["attachments"][0];
    assert_eq!(a["title"], "highlatency on 1");
    assert_eq!(a["text"], "a:9090 since 22:13");
    assert_eq!(a["color"], "#FF0000");
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    let s = std::str::from_utf8(body).unwrap();
    let dec = |x: &str| {
        let x = x.replace('+', " ");
        let b = x.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&x[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    s.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (dec(k), dec(v))
        })
        .collect()
}

#[tokio::test]
async fn sms_twilio_form_with_basic_auth_and_truncation() {
    let (addr, s) = sink().await;
    let sms = only(build(&format!(
        r#"
name: oncall
sms_configs:
  - preset: twilio
    url: http://{addr}/2010-04-01/Accounts/AC123/Messages.json
    account_sid: AC123
    auth_token: tw-s3cret
    from: '+15550001111'
    to: ['+15550002222', '+15550003333']
    message: '{{{{ template "sms.default.message" . }}}}{{{{ range 10 }}}} padding{{{{ end }}}}'
    send_resolved: true
"#
    )));
    assert_eq!(sms.kind(), "sms");
    assert!(sms.send_resolved());
    s.status.store(201, Ordering::SeqCst);
    sms.notify(&data("critical")).await.unwrap();
    let reqs = s.reqs.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2);
    let want_body =
        "[FIRING:1] HighLatency (api critical) Ack: http://vigil:9090/api/v1/notify/ack/t0k";
    for (r, to) in reqs.iter().zip(["+15550002222", "+15550003333"]) {
        assert_eq!(r.path, "/2010-04-01/Accounts/AC123/Messages.json");
        assert_eq!(
            r.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        // AC123:tw-s3cret
        assert_eq!(r.headers["authorization"], "Basic QUMxMjM6dHctczNjcmV0");
        let f = form(&r.body);
        assert_eq!(f["To"], to);
        assert_eq!(f["From"], "+15550001111");
        assert_eq!(f.len(), 3);
        // The message is cut at 160 characters with an ellipsis.
        assert_eq!(f["Body"].chars().count(), 160);
        assert!(f["Body"].ends_with('…'));
        assert!(f["Body"].starts_with(want_body), "{}", f["Body"]);
    }
}

#[tokio::test]
async fn sms_generic_json_and_form() {
    let (addr, s) = sink().await;
    let sms = only(build(&format!(
        r#"
name: oncall
sms_configs:
  - url: http://{addr}/send
    to: ['+4915112345678']
    from: vigil
    message: '{{{{ .Status | toUpper }}}} {{{{ .CommonLabels.alertname }}}} {{{{ .CommonAnnotations.runbook }}}}'
    max_length: 20
    http_config:
      authorization: {{ type: Token, credentials: gw-key }}
"#
    )));
    sms.notify(&data("critical")).await.unwrap();
    let r = s.reqs.lock().unwrap().pop().unwrap();
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["authorization"], "Token gw-key");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        json!({"to": "+4915112345678", "from": "vigil", "message": "FIRING HighLatency …"})
    );

    let sms = only(build(&format!(
        r#"
name: oncall
sms_configs:
  - url: http://{addr}/form
    format: form
    to: ['111', '222']
    fields:
      number: '{{{{ .SMS.To }}}}'
      text: '{{{{ .SMS.Message }}}}'
      level: '{{{{ .EscalationLevel }}}}'
"#
    )));
    sms.notify(&resolved(data("critical"))).await.unwrap();
    let reqs = s.reqs.lock().unwrap().clone();
    let f = form(&reqs[reqs.len() - 1].body);
    assert_eq!(f["number"], "222");
    assert_eq!(f["level"], "1");
    assert_eq!(
        f["text"],
        "[RESOLVED] HighLatency (api critical) Ack: http://vigil:9090/api/v1/notify/ack/t0k"
    );
}

#[tokio::test]
async fn sms_one_failing_recipient_still_pages_the_others() {
    let (addr, s) = sink().await;
    s.status.store(503, Ordering::SeqCst);
    let sms = only(build(&format!(
        "name: r\nsms_configs:\n  - url: http://{addr}/send\n    to: ['1', '2']\n"
    )));
    let e = sms.notify(&data("critical")).await.unwrap_err();
    assert!(e.retryable);
    assert!(e.message.contains("2 of 2 recipients failed"), "{e:?}");
    assert_eq!(s.reqs.lock().unwrap().len(), 2);
}

// ---------------------------------------------------------------- SMTP

/// Makes sure Python's aiosmtpd can be imported, installing it with pip
/// into a directory of the target dir if needed; returns the PYTHONPATH.
fn aiosmtpd_path() -> String {
    static PATH: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let r = PATH.get_or_init(|| {
        let dir = std::env::var("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir())
            .join("vigil-test-python");
        let dir_s = dir.display().to_string();
        let import_ok = || {
            Command::new("python3")
                .args(["-c", "import aiosmtpd"])
                .env("PYTHONPATH", &dir_s)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if Command::new("python3").arg("--version").output().is_err() {
            return Err("python3 is not installed; the SMTP tests need python3 with pip".into());
        }
        if import_ok() {
            return Ok(dir_s);
        }
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                &dir_s,
                "aiosmtpd",
            ])
            .output()
            .map_err(|e| format!("running python3 -m pip: {e}"))?;
        if !out.status.success() || !import_ok() {
            return Err(format!(
                "could not install aiosmtpd with `python3 -m pip install --target {dir_s} aiosmtpd` \
                 (the SMTP tests need python3 with pip and access to PyPI): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(dir_s)
    });
    match r {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A running aiosmtpd; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    fn start(user: &str, password: &str) -> SmtpServer {
        Self::spawn(&[user, password])
    }

    /// A server that offers STARTTLS with the PEM `cert` and `key` and
    /// requires it before anything else.
    fn start_tls(user: &str, password: &str, cert: &Path, key: &Path) -> SmtpServer {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        Self::spawn(&[user, password, &cert, &key])
    }

    /// Runs smtp_sink.py with `args` after the port.
    fn spawn(args: &[&str]) -> SmtpServer {
        let path = aiosmtpd_path();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .args([script, &port.to_string()])
            .args(args)
            .env("PYTHONPATH", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting python3 smtp_sink.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("aiosmtpd did not start");
        assert_eq!(ready, "READY");
        SmtpServer {
            child,
            port,
            lines: rx,
        }
    }

    fn next_message(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("no message reached the SMTP server");
        serde_json::from_str(&line).unwrap()
    }
}

#[tokio::test]
async fn email_over_real_smtp_with_auth_headers_and_both_bodies() {
    let smtp = SmtpServer::start("vigil", "smtp-s3cret");
    let e = only(build(&format!(
        r#"
name: team-x
email_configs:
  - to: 'ops@example.com, Lead <lead@example.com>'
    from: 'vigil <vigil@example.com>'
    smarthost: 127.0.0.1:{}
    hello: vigil.test
    auth_username: vigil
    auth_password: smtp-s3cret
    require_tls: false
    headers:
      X-Escalation-Level: 'L{{{{ .EscalationLevel }}}}'
    send_resolved: true
"#,
        smtp.port
    )));
    assert_eq!(e.kind(), "email");
    assert!(e.send_resolved());
    e.notify(&data("critical")).await.unwrap();
    let m = smtp.next_message();
    assert_eq!(m["mail_from"], "vigil@example.com");
    assert_eq!(
        m["rcpt_tos"],
        json!(["ops@example.com", "lead@example.com"])
    );
    assert_eq!(m["auth_login"], "vigil");
    let h = &m["headers"];
    assert_eq!(h["Subject"], "[FIRING:1] HighLatency (api critical)");
    assert_eq!(h["From"], "vigil <vigil@example.com>");
    assert_eq!(h["To"], "ops@example.com, Lead <lead@example.com>");
    assert_eq!(h["X-Escalation-Level"], "L1");
    assert!(
        h["Message-ID"].as_str().is_some_and(|s| s.starts_with('<')),
        "{h}"
    );
    assert!(h["Date"].is_string(), "{h}");
    assert_eq!(m["content_type"], "multipart/alternative");
    // SMTP carries lines ending in CRLF.
    let text = m["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        text.starts_with("[FIRING:1] HighLatency (api critical)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "Alerts Firing:\nLabels:\n - alertname = HighLatency\n - instance = a:9090\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "Alerts Resolved:\nLabels:\n - alertname = HighLatency\n - instance = b:9090\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("Acknowledge: http://vigil:9090/api/v1/notify/ack/t0k"),
        "{text}"
    );
    let html = m["html"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        html.contains("<title>[FIRING:1] HighLatency (api critical)</title>"),
        "{html}"
    );
    assert!(html.contains("[1] Firing"), "{html}");
    assert!(html.contains("[1] Resolved"), "{html}");
    assert!(html.contains("instance = a:9090<br />"), "{html}");
    assert!(
        html.contains("href=\"http://vigil:9090/api/v1/notify/ack/t0k\""),
        "{html}"
    );
}

#[tokio::test]
async fn email_custom_bodies_and_failures() {
    let smtp = SmtpServer::start("vigil", "right");
    let e = only(build(&format!(
        r#"
name: r
email_configs:
  - to: ops@example.com
    from: vigil@example.com
    smarthost: 127.0.0.1:{}
    require_tls: false
    text: '{{{{ len .Alerts }}}} alerts for {{{{ .GroupLabels.alertname }}}}'
    html: ''
    headers:
      subject: 'custom {{{{ .Status }}}}'
"#,
        smtp.port
    )));
    e.notify(&resolved(data("warning"))).await.unwrap();
    let m = smtp.next_message();
    assert_eq!(m["headers"]["Subject"], "custom resolved");
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(
        m["text"].as_str().unwrap().trim_end(),
        "2 alerts for HighLatency"
    );
    assert!(m["html"].is_null());
    assert_eq!(m["auth_login"], Value::Null);

    // A wrong password: the server answers 535, a permanent failure.
    let bad = only(build(&format!(
        "name: r\nemail_configs:\n  - to: a@example.com\n    from: v@example.com\n    smarthost: 127.0.0.1:{}\n    require_tls: false\n    auth_username: vigil\n    auth_password: wrong\n",
        smtp.port
    )));
    let err = bad.notify(&data("critical")).await.unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(
        !err.message.contains("wrong"),
        "the password leaked: {err:?}"
    );

    // require_tls against a server without STARTTLS fails.
    let tls = only(build(&format!(
        "name: r\nemail_configs:\n  - to: a@example.com\n    from: v@example.com\n    smarthost: 127.0.0.1:{}\n",
        smtp.port
    )));
    assert!(tls.notify(&data("critical")).await.is_err());
}

/// A successful STARTTLS send: the server offers STARTTLS and refuses
/// anything else first; vigil upgrades, verifies the server's self-signed
/// certificate against `tls_config.ca_file` (for `server_name`, since the
/// smarthost is an IP address), authenticates inside TLS and delivers.
#[tokio::test]
async fn email_over_starttls_trusting_the_servers_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("smtp.crt"), dir.path().join("smtp.key"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    let smtp = SmtpServer::start_tls("vigil", "tls-s3cret", &cert, &key);
    let email = |tls: &str| {
        only(build(&format!(
            "name: r\nemail_configs:\n  - to: ops@example.com\n    from: vigil@example.com\n    \
             smarthost: 127.0.0.1:{}\n    auth_username: vigil\n    auth_password: tls-s3cret\n{tls}",
            smtp.port
        )))
    };
    // require_tls defaults to true: STARTTLS.
    let trusted = email(&format!(
        "    tls_config:\n      ca_file: {}\n      server_name: localhost\n",
        cert.display()
    ));
    trusted.notify(&data("critical")).await.unwrap();
    let m = smtp.next_message();
    assert!(
        m["tls"].as_str().is_some_and(|v| v.starts_with("TLSv1.")),
        "{m}"
    );
    assert_eq!(m["auth_login"], "vigil");
    assert_eq!(m["rcpt_tos"], json!(["ops@example.com"]));
    assert_eq!(
        m["headers"]["Subject"],
        "[FIRING:1] HighLatency (api critical)"
    );
    assert!(m["text"]
        .as_str()
        .unwrap()
        .contains("Acknowledge: http://vigil:9090/api/v1/notify/ack/t0k"));

    // insecure_skip_verify delivers without the CA too.
    let skip = email("    tls_config: {insecure_skip_verify: true}\n");
    skip.notify(&data("warning")).await.unwrap();
    assert!(smtp.next_message()["tls"].is_string());

    // Without the CA the certificate is not trusted; without STARTTLS the
    // server refuses the mail. Neither reaches it.
    let untrusted = email("    tls_config: {server_name: localhost}\n");
    let err = untrusted.notify(&data("critical")).await.unwrap_err();
    assert!(err.message.contains("127.0.0.1"), "{err:?}");
    let plain = email("    require_tls: false\n");
    assert!(plain.notify(&data("critical")).await.is_err());
    assert!(smtp.lines.try_recv().is_err(), "nothing else delivered");
}
