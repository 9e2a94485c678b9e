//! Retention by series through the binary: `storage.tsdb.retention_rules`
//! in the configuration file hides a governed series' expired samples from
//! queries, a reload applies new rules, and a bad file is refused with the
//! old rules kept.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// A request on a fresh connection: (status code, body).
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out.get(9..12)?.parse().ok()?;
    Some((
        code,
        out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string(),
    ))
}

/// Kills the server when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, config: &Path) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = vigil()
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--config.file")
        .arg(config)
        .arg("--storage.tsdb.path")
        .arg(data)
        .arg("--storage.tsdb.retention.time=0")
        .arg("--web.enable-lifecycle")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        if let Some((200, _)) = http(port, "GET", "/-/ready") {
            return (server, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("vigil never became ready");
}

/// `count_over_time(<metric>[1d])` at `at` (seconds).
fn count(port: u16, metric: &str, at: i64) -> f64 {
    let (code, body) = http(
        port,
        "GET",
        &format!("/api/v1/query?query=count_over_time({metric}%5B1d%5D)&time={at}"),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{body}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

fn config(rules: &str) -> String {
    format!("global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    retention_rules:\n{rules}")
}

#[test]
fn retention_rules_hide_expired_samples_and_follow_reloads() {
    let dir = tempfile::tempdir().unwrap();
    // debug_x and keep_x, one sample a minute over 10 hours.
    let t0: i64 = 1_699_999_200;
    let mut text = String::new();
    for k in 0..600 {
        let ts = t0 + 60 * k;
        text.push_str(&format!("debug_x 1 {ts}\nkeep_x 1 {ts}\n"));
    }
    text.push_str("# EOF\n");
    let src = dir.path().join("src.om");
    std::fs::write(&src, text).unwrap();
    let data = dir.path().join("data");
    let out = vigil()
        .args(["tsdb", "import", "openmetrics", "-q"])
        .arg(&src)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cfg = dir.path().join("prometheus.yml");
    let two_hours = "    - matchers: ['{__name__=~\"debug_.*\"}']\n      retention: 2h\n";
    std::fs::write(&cfg, config(two_hours)).unwrap();
    let (_server, port) = serve(&data, &cfg);
    let end = t0 + 60 * 599;
    // Retention counts back from the newest data: here the end of the
    // newest block, t0 + 10h (the head is empty). debug_x keeps its last
    // 2 hours, [t0 + 8h, t0 + 10h): 120 samples.
    assert_eq!(count(port, "keep_x", end), 600.0);
    assert_eq!(count(port, "debug_x", end), 120.0);

    // A bad file is refused and the rules in force stay.
    std::fs::write(
        &cfg,
        config("    - matchers: ['{__name__=~\"debug_.*\"']\n      retention: 1h\n"),
    )
    .unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_ne!(code, 200, "{body}");
    assert!(body.contains("retention_rules[0]"), "{body}");
    assert_eq!(count(port, "debug_x", end), 120.0);

    // A good one applies.
    std::fs::write(
        &cfg,
        config("    - matchers: ['debug_x']\n      retention: 1h\n"),
    )
    .unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(count(port, "debug_x", end), 60.0);
    assert_eq!(count(port, "keep_x", end), 600.0);
}
