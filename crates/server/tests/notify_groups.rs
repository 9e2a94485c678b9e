//! vigil's notifier in a server. `GET /api/v2/alerts/groups` as the web UI
//! reads it: each group's `key` (for the history), and with `pending=true`
//! the rule engine's pending alerts placed in the groups the notifier's
//! routing tree would put them in. `notify: {file: ...}` and its reloads.
//! The ack link of a real notification, opened and submitted; `templates:`
//! files used by a receiver's text.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_server::{start, Server, ServerOptions};

fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, _, body) = request(addr, "GET", path, &[], "");
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, v)
}

/// A server on 127.0.0.1 with the configuration file `cfg` (and the web
/// configuration `web`), its data in `dir`, on a runtime of its own.
fn serve(dir: &Path, cfg: &Path, web: Option<PathBuf>) -> (tokio::runtime::Runtime, Server) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap();
    let server = rt
        .block_on(start(ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.join("data"),
            config: vigil_server::config::Config::load(cfg).unwrap(),
            config_file: Some(cfg.to_path_buf()),
            web_config_file: web,
            ..ServerOptions::default()
        }))
        .unwrap();
    (rt, server)
}

/// One request with extra headers and a body: (status, head, body).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("a response head");
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    (
        head[9..12].parse().unwrap(),
        head.to_string(),
        body.to_string(),
    )
}

/// An HTTP server on 127.0.0.1 (an SMS gateway, say) that answers 200 and
/// keeps the body of every request.
fn sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
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
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
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

/// Waits (up to 30 s) for the sink's first request body.
fn first_body(got: &Mutex<Vec<String>>) -> String {
    let t = Instant::now();
    loop {
        if let Some(b) = got.lock().unwrap().first() {
            return b.clone();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "nothing sent");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const RULES: &str = "groups:
- name: g
  interval: 1s
  rules:
  - alert: Now
    expr: vector(1)
    labels: {severity: critical, service: api}
  - alert: Later
    expr: vector(1)
    for: 1h
    labels: {severity: warning, service: api}
  - alert: Later
    expr: vector(2)
    for: 1h
    labels: {severity: warning, service: db}
";

const CONFIG: &str = "global:
  external_labels: {site: here}
rule_files: [rules.yml]
notify:
  route:
    receiver: all
    group_by: [alertname]
    group_wait: 1h
    routes:
      - matchers: ['severity=\"warning\"']
        receiver: warn
        group_by: [alertname, service]
  receivers:
    - name: all
    - name: warn
";

#[test]
fn groups_have_keys_and_pending_alerts_are_grouped_as_routed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let (rt, server) = serve(dir.path(), &cfg, None);
    let a = server.addr();

    // The firing alert reaches the notifier; the pending ones do not.
    let t = Instant::now();
    let groups = loop {
        let (code, v) = get(a, "/api/v2/alerts/groups");
        assert_eq!(code, 200, "{v}");
        if v.as_array().is_some_and(|g| !g.is_empty()) {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no group: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = &groups[0];
    assert_eq!(g["labels"], serde_json::json!({"alertname": "Now"}));
    assert_eq!(g["key"], "{}:{alertname=\"Now\"}");
    assert!(g.get("pending").is_none(), "{g}");
    let key = g["key"].as_str().unwrap();
    let (code, hist) = get(
        a,
        &format!(
            "/api/v1/notify/history?group={}",
            key.replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('=', "%3D")
        ),
    );
    assert_eq!(code, 200);
    assert!(hist.is_array(), "{hist}");

    // With pending=true: the two pending alerts go to the warning route,
    // one group per service; the firing group has none.
    let (code, v) = get(a, "/api/v2/alerts/groups?pending=true");
    assert_eq!(code, 200, "{v}");
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 3, "{v}");
    assert!(all[0].get("pending").is_none());
    for (g, service, value) in [(&all[1], "api", "1"), (&all[2], "db", "2")] {
        assert_eq!(
            g["labels"],
            serde_json::json!({"alertname": "Later", "service": service}),
            "{g}"
        );
        assert_eq!(g["receiver"]["name"], "warn");
        assert_eq!(g["alerts"], serde_json::json!([]));
        assert_eq!(g["acked"], false);
        let key = g["key"].as_str().unwrap();
        assert!(
            key.ends_with(&format!(":{{alertname=\"Later\", service=\"{service}\"}}")),
            "{key}"
        );
        assert_eq!(g["id"].as_str().unwrap().len(), 16);
        let p = g["pending"].as_array().unwrap();
        assert_eq!(p.len(), 1, "{g}");
        assert_eq!(p[0]["state"], "pending");
        assert_eq!(p[0]["value"], value);
        // As sent: with the external labels.
        assert_eq!(p[0]["labels"]["site"], "here");
        assert_eq!(p[0]["labels"]["severity"], "warning");
        assert_eq!(p[0]["fingerprint"].as_str().unwrap().len(), 16);
    }
    // Filters apply to pending alerts too; a bad flag is refused.
    let (_, v) = get(
        a,
        "/api/v2/alerts/groups?pending=true&filter=service%3D%22db%22",
    );
    let keys: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "{v}");
    assert!(keys[0].contains("service=\"db\""), "{v}");
    let (code, _) = get(a, "/api/v2/alerts/groups?pending=maybe");
    assert_eq!(code, 400);

    // Alertmanager's status, as amtool reads it: the inline section's text
    // (vigil's re-serialization of it, Alertmanager's schema), no cluster,
    // the version, and the receivers.
    let (code, st) = get(a, "/api/v2/status");
    assert_eq!(code, 200, "{st}");
    let original: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(st["config"]["original"].as_str().unwrap()).unwrap();
    assert_eq!(original["route"]["receiver"], "all");
    assert_eq!(original["route"]["routes"][0]["receiver"], "warn");
    assert_eq!(original["receivers"][1]["name"], "warn");
    assert_eq!(
        st["cluster"],
        serde_json::json!({"status": "disabled", "peers": []})
    );
    assert_eq!(st["versionInfo"]["version"], env!("CARGO_PKG_VERSION"));
    for k in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(st["versionInfo"][k].is_string(), "{k}: {st}");
    }
    let uptime = st["uptime"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(uptime).is_ok(),
        "{uptime}"
    );
    let (code, r) = get(a, "/api/v2/receivers");
    assert_eq!(code, 200, "{r}");
    assert_eq!(r, serde_json::json!([{"name": "all"}, {"name": "warn"}]));

    let _ = rt.block_on(server.shutdown());
}

/// `notify: {file: alertmanager.yml}` in a server: the file is found
/// relative to the configuration file and its text is what
/// `/api/v2/status` shows. A reload with the file missing or invalid fails
/// with the reason and keeps the notifier's configuration; a reload with a
/// good file applies it.
#[test]
fn notify_file_loads_and_a_bad_reload_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("am")).unwrap();
    let am = dir.path().join("am/alertmanager.yml");
    let first = "route: {receiver: team}\nreceivers: [{name: team}]\n";
    std::fs::write(&am, first).unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(&cfg, "notify: {file: am/alertmanager.yml}\n").unwrap();
    let (rt, server) = serve(dir.path(), &cfg, None);
    let a = server.addr();
    let in_force = |text: &str, receivers: serde_json::Value| {
        let (code, st) = get(a, "/api/v2/status");
        assert_eq!(code, 200, "{st}");
        assert_eq!(st["config"]["original"], text);
        let (code, r) = get(a, "/api/v2/receivers");
        assert_eq!(code, 200, "{r}");
        assert_eq!(r, receivers);
    };
    in_force(first, serde_json::json!([{"name": "team"}]));

    // The file is gone: the reload fails naming it; nothing changes.
    std::fs::rename(&am, dir.path().join("am/moved.yml")).unwrap();
    let e = rt.block_on(server.reload()).unwrap_err().to_string();
    assert!(e.contains(&format!("notify.file {}", am.display())), "{e}");
    in_force(first, serde_json::json!([{"name": "team"}]));
    // The file is invalid: the reload names its line and key.
    std::fs::write(&am, format!("{first}recievers: []\n")).unwrap();
    let e = rt.block_on(server.reload()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{}:3: ", am.display())) && e.contains("recievers"),
        "{e}"
    );
    in_force(first, serde_json::json!([{"name": "team"}]));
    // A template file (relative to the file) that does not parse: the
    // receivers cannot be built, so the reload fails too.
    std::fs::write(dir.path().join("am/bad.tmpl"), "{{ define \"x\" }}").unwrap();
    std::fs::write(&am, format!("{first}templates: ['*.tmpl']\n")).unwrap();
    let e = rt.block_on(server.reload()).unwrap_err().to_string();
    assert!(e.contains("bad.tmpl"), "{e}");
    in_force(first, serde_json::json!([{"name": "team"}]));
    std::fs::remove_file(dir.path().join("am/bad.tmpl")).unwrap();
    // A good file is applied.
    let second = "route: {receiver: oncall}\nreceivers: [{name: team}, {name: oncall}]\n";
    std::fs::write(&am, second).unwrap();
    rt.block_on(server.reload()).unwrap();
    in_force(
        second,
        serde_json::json!([{"name": "team"}, {"name": "oncall"}]),
    );

    let _ = rt.block_on(server.shutdown());
}

/// The ack link of a real notification, on a server with authentication
/// on. The SMS carries the link; opening it (a GET, as a chat app's link
/// preview does too) shows a form and acknowledges nothing; the form's
/// POST acknowledges without a login, the signed token being the
/// credential, and the ack shows in `/api/v1/notify/acks` and
/// `/api/v1/alerts`. The POST is audited; a wrong token is refused.
#[test]
fn the_ack_link_of_a_notification_acknowledges_on_post_only() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, got) = sink();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Down\n    expr: vector(1)\n    \
         labels: {severity: critical}\n    annotations: {summary: db <down>}\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg,
        format!(
            "rule_files: [rules.yml]\nnotify:\n  route:\n    receiver: pager\n    group_by: [alertname]\n    \
             group_wait: 0s\n  receivers:\n    - name: pager\n      sms_configs:\n        \
             - url: http://127.0.0.1:{gateway}/send\n          to: ['+15550001111']\n"
        ),
    )
    .unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  alice: {}\n",
            bcrypt::hash("alice-pw", 4).unwrap()
        ),
    )
    .unwrap();
    let (rt, server) = serve(dir.path(), &cfg, Some(web));
    let a = server.addr();
    // alice:alice-pw
    let alice = [("Authorization", "Basic YWxpY2U6YWxpY2UtcHc=")];
    let as_alice = |path: &str| {
        let (code, _, body) = request(a, "GET", path, &alice, "");
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };

    // The SMS gateway's JSON: the default message ends in the link.
    let sms: Value = serde_json::from_str(&first_body(&got)).unwrap();
    let message = sms["message"].as_str().unwrap();
    let url = message.split("Ack: ").nth(1).expect("an ack link");
    let path = url
        .strip_prefix(&format!("http://{a}"))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(path.starts_with("/api/v1/notify/ack/"), "{path}");

    // Opening it: a page with the group and a form, no credentials needed.
    let (code, head, page) = request(a, "GET", path, &[], "");
    assert_eq!(code, 200, "{page}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(page.contains("alertname=&quot;Down&quot;"), "{page}");
    assert!(page.contains("db &lt;down&gt;"), "{page}");
    assert_eq!(as_alice("/api/v1/notify/acks"), serde_json::json!([]));
    let (_, _, page) = request(a, "GET", &format!("{path}?by=carol"), &[], "");
    assert!(page.contains("name=\"by\" value=\"carol\""), "{page}");
    // A wrong token shows no form and acknowledges nothing.
    let bad = format!(
        "{}{}",
        &path[..path.len() - 1],
        if path.ends_with('0') { '1' } else { '0' }
    );
    for method in ["GET", "POST"] {
        let (code, _, page) = request(a, method, &bad, &[], "");
        assert_eq!(code, 404, "{method}: {page}");
        assert!(page.contains("invalid acknowledgement token"), "{page}");
    }
    // The JSON ack API still needs a login.
    let (code, _, _) = request(a, "POST", "/api/v1/notify/ack", &[], "{}");
    assert_eq!(code, 401);

    // Submitting the form acknowledges.
    let (code, _, page) = request(
        a,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "by=carol&comment=on+my+way",
    );
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Acknowledged by carol"), "{page}");
    let acks = as_alice("/api/v1/notify/acks");
    assert_eq!(acks.as_array().unwrap().len(), 1, "{acks}");
    assert_eq!(acks[0]["by"], "carol");
    assert_eq!(acks[0]["comment"], "on my way");
    assert_eq!(acks[0]["kind"], "group");
    assert_eq!(acks[0]["target"], "{}:{alertname=\"Down\"}");
    let alerts = as_alice("/api/v1/alerts");
    let down = &alerts["data"]["alerts"][0];
    assert_eq!(down["labels"]["alertname"], "Down", "{alerts}");
    assert_eq!(down["ack"]["by"], "carol", "{alerts}");
    let (_, _, page) = request(a, "GET", path, &[], "");
    assert!(page.contains("Already acknowledged"), "{page}");

    // Audited once, for the POST that acknowledged.
    let audit = std::fs::read_to_string(dir.path().join("data/audit.log")).unwrap();
    let links: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["action"] == "ack_link" && l["status"] == 200)
        .collect();
    assert_eq!(links.len(), 1, "{audit}");
    assert_eq!(
        (&links[0]["who"], &links[0]["via"]),
        (&"anonymous".into(), &"link".into())
    );

    let _ = rt.block_on(server.shutdown());
}

/// `templates:` globs, relative to the configuration file: every matching
/// file's `{{ define }}`s can be called from a receiver's text, and from
/// each other; the gateway receives the rendered text.
#[test]
fn template_files_are_used_by_receiver_texts() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, got) = sink();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Down\n    expr: vector(1)\n    \
         labels: {severity: critical, service: db}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.tmpl"),
        "{{ define \"page.what\" }}{{ .CommonLabels.alertname }} on {{ .CommonLabels.service }}{{ end }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.tmpl"),
        "{{ define \"page\" }}PAGE {{ template \"page.what\" . }} ({{ .Alerts.Firing | len }} firing){{ end }}\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg,
        format!(
            "rule_files: [rules.yml]\nnotify:\n  templates: ['*.tmpl']\n  route:\n    receiver: pager\n    \
             group_wait: 0s\n  receivers:\n    - name: pager\n      sms_configs:\n        \
             - url: http://127.0.0.1:{gateway}/send\n          to: ['+15550001111']\n          \
             message: '{{{{ template \"page\" . }}}}'\n"
        ),
    )
    .unwrap();
    // The test runs in crates/server: the glob finds the files only when
    // it is resolved against the configuration file's directory.
    let (rt, server) = serve(dir.path(), &cfg, None);
    let sms: Value = serde_json::from_str(&first_body(&got)).unwrap();
    assert_eq!(sms["message"], "PAGE Down on db (1 firing)", "{sms}");
    assert_eq!(sms["to"], "+15550001111");
    let _ = rt.block_on(server.shutdown());
}
