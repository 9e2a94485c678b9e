//! Scraping through the server: a configuration file with a static job, a
//! file-discovered job and a probe against a tiny local exporter, and the
//! `/api/v1/targets`, `/api/v1/targets/metadata`, `/api/v1/metadata` and
//! `/api/v1/scrape_pools` answers about them, in Prometheus's shapes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use vigil_server::config::Config;
use vigil_server::{start, ServerOptions};

const BODY: &str = "# HELP requests_total Requests served.\n# TYPE requests_total counter\nrequests_total{code=\"200\"} 10\n# HELP temperature_celsius The temperature.\n# TYPE temperature_celsius gauge\ntemperature_celsius 21.5\n";

/// An exporter on a free port that answers every request with `BODY`.
fn exporter() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    BODY.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(BODY.as_bytes());
            });
        }
    });
    addr
}

/// GET `path`: status and JSON body.
fn get(addr: SocketAddr, path: &str) -> (u16, Json) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status: u16 = head[9..12].parse().unwrap();
    let mut body = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            plain.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 2 + n + 2..];
        }
        body = plain;
    }
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn targets_metadata_and_probes_through_the_api() {
    let exp = exporter();
    let dir = tempfile::tempdir().unwrap();
    // The discovery file is named relative to the configuration file.
    std::fs::create_dir(dir.path().join("sd")).unwrap();
    std::fs::write(
        dir.path().join("sd/targets.json"),
        format!(r#"[{{"targets": ["{exp}", "dropme:1"], "labels": {{"team": "x"}}}}]"#),
    )
    .unwrap();
    let cfg_path = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n\
             scrape_configs:\n\
             \x20 - job_name: app\n    static_configs: [{{targets: ['{exp}']}}]\n\
             \x20 - job_name: sd\n    file_sd_configs: [{{files: ['sd/*.json']}}]\n\
             \x20   relabel_configs:\n      - {{source_labels: [__address__], regex: 'dropme:.*', action: drop}}\n\
             probes:\n  - name: health\n    url: http://{exp}/health\n    interval: 200ms\n    labels: {{team: web}}\n"
        ),
    )
    .unwrap();
    let config = Config::load(&cfg_path).unwrap();
    assert_eq!(config.probes.len(), 1);
    assert_eq!(
        config.scrape_configs[1].file_sd_configs[0].files,
        vec![dir.path().join("sd/*.json").to_string_lossy().into_owned()]
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = rt
        .block_on(start(ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            config,
            config_file: Some(cfg_path.clone()),
            ..ServerOptions::default()
        }))
        .unwrap();
    let a = server.addr();

    wait_until("both targets up", || {
        let (_, v) = get(a, "/api/v1/targets?state=active");
        let t = v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        t.len() == 2 && t.iter().all(|t| t["health"] == "up")
    });
    let (st, v) = get(a, "/api/v1/targets");
    assert_eq!(st, 200);
    assert_eq!(v["status"], "success");
    let d = &v["data"];
    let active = d["activeTargets"].as_array().unwrap();
    let app = &active[0];
    assert_eq!(app["scrapePool"], "app");
    assert_eq!(app["scrapeUrl"], format!("http://{exp}/metrics"));
    assert_eq!(
        app["labels"],
        serde_json::json!({"instance": exp.to_string(), "job": "app"})
    );
    assert_eq!(app["discoveredLabels"]["__address__"], exp.to_string());
    assert_eq!(app["discoveredLabels"]["__scrape_interval__"], "200ms");
    assert_eq!(app["lastError"], "");
    assert_eq!(app["scrapeInterval"], "200ms");
    assert_eq!(app["scrapeTimeout"], "200ms");
    assert!(app["lastScrapeDuration"].as_f64().unwrap() >= 0.0);
    let last = app["lastScrape"].as_str().unwrap();
    assert!(
        last.ends_with('Z') && last.len() >= 20 && !last.starts_with("0001"),
        "{last}"
    );
    assert!(app["globalUrl"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":{}/metrics", exp.port())));
    let sd = &active[1];
    assert_eq!(sd["scrapePool"], "sd");
    assert_eq!(sd["labels"]["team"], "x");
    assert!(sd["discoveredLabels"]["__meta_filepath"]
        .as_str()
        .unwrap()
        .ends_with("sd/targets.json"));
    let dropped = d["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["scrapePool"], "sd");
    assert_eq!(dropped[0]["discoveredLabels"]["__address__"], "dropme:1");
    assert_eq!(
        d["droppedTargetCounts"],
        serde_json::json!({"app": 0, "sd": 1})
    );

    // Filters.
    let (_, v) = get(a, "/api/v1/targets?state=dropped");
    assert_eq!(v["data"]["activeTargets"], serde_json::json!([]));
    assert_eq!(v["data"]["droppedTargets"].as_array().unwrap().len(), 1);
    let (_, v) = get(a, "/api/v1/targets?scrapePool=app");
    assert_eq!(v["data"]["activeTargets"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["droppedTargets"], serde_json::json!([]));
    let (_, v) = get(a, "/api/v1/scrape_pools");
    assert_eq!(v["data"], serde_json::json!({"scrapePools": ["app", "sd"]}));

    // Metadata, once a scrape has recorded it.
    wait_until("metadata", || {
        let (_, v) = get(a, "/api/v1/metadata");
        v["data"].get("requests_total").is_some()
    });
    let (_, v) = get(a, "/api/v1/metadata");
    assert_eq!(
        v["data"]["requests_total"],
        serde_json::json!([{"type": "counter", "help": "Requests served.", "unit": ""}])
    );
    assert_eq!(v["data"]["temperature_celsius"][0]["type"], "gauge");
    let (_, v) = get(a, "/api/v1/metadata?metric=temperature_celsius");
    assert_eq!(v["data"].as_object().unwrap().len(), 1);
    let (_, v) = get(a, "/api/v1/metadata?limit=1");
    assert_eq!(v["data"].as_object().unwrap().len(), 1);
    let (st, v) = get(a, "/api/v1/metadata?limit=x");
    assert_eq!(st, 400);
    assert_eq!(v["error"], "limit must be a number");

    let sel = "%7Bjob%3D%22app%22%7D"; // {job="app"}
    let (_, v) = get(
        a,
        &format!("/api/v1/targets/metadata?match_target={sel}&metric=requests_total"),
    );
    assert_eq!(
        v["data"],
        serde_json::json!([{"target": {"instance": exp.to_string(), "job": "app"},
                            "type": "counter", "help": "Requests served.", "unit": ""}])
    );
    let (_, v) = get(a, "/api/v1/targets/metadata");
    let all = v["data"].as_array().unwrap();
    assert!(all.len() >= 4, "{v}");
    assert!(all.iter().all(|e| e.get("metric").is_some()));
    let (st, _) = get(a, "/api/v1/targets/metadata?match_target=%7B");
    assert_eq!(st, 400);

    // The probe's series, labelled by probe.
    wait_until("a probe result", || {
        let (_, v) = get(a, "/api/v1/query?query=probe_success");
        v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    let (_, v) = get(a, "/api/v1/query?query=probe_success");
    let r = &v["data"]["result"][0];
    assert_eq!(r["metric"]["probe"], "health");
    assert_eq!(r["metric"]["job"], "probe");
    assert_eq!(r["metric"]["team"], "web");
    assert_eq!(r["metric"]["instance"], format!("http://{exp}/health"));
    assert_eq!(r["value"][1], "1");
    let (_, v) = get(a, "/api/v1/query?query=probe_http_status_code");
    assert_eq!(v["data"]["result"][0]["value"][1], "200");

    rt.block_on(server.shutdown()).unwrap();
}

#[test]
fn invalid_probes_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vigil.yml");
    std::fs::write(
        &p,
        "probes:\n  - name: a\n    url: http://h:1/\n  - name: b\n    url: http://h:1/\n    timeout: 1m\n",
    )
    .unwrap();
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(
        e.contains(":4:") && e.contains("probes") && e.contains("\"b\""),
        "{e}"
    );
    std::fs::write(
        &p,
        "probes:\n  - name: a\n    url: http://h:1/\n    methd: GET\n",
    )
    .unwrap();
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("methd") && e.contains(":4:"), "{e}");
}

/// A storage limit refuses a target's new series over it; the target stays
/// up and its other series are stored, and the refusals are counted.
#[test]
fn a_storage_limit_refuses_new_series_but_the_scrape_succeeds() {
    let exp = exporter();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n\
             scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{exp}']}}]\n"
        ),
    )
    .unwrap();
    let config = Config::load(&cfg_path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut storage = vigil_tsdb::Options::default();
    // Every series has __name__, job and instance; requests_total also has
    // `code`, so a limit of 3 labels refuses it alone.
    storage.head.limits.max_labels = 3;
    let data = tempfile::tempdir().unwrap();
    let server = rt
        .block_on(start(ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            storage,
            config,
            config_file: Some(cfg_path),
            ..ServerOptions::default()
        }))
        .unwrap();
    let a = server.addr();
    wait_until("temperature scraped", || {
        let (_, v) = get(a, "/api/v1/query?query=temperature_celsius");
        v["data"]["result"].as_array().is_some_and(|r| r.len() == 1)
    });
    let (_, v) = get(a, "/api/v1/query?query=up");
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    let (_, v) = get(a, "/api/v1/query?query=requests_total");
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(0), "{v}");
    let (_, v) = get(a, "/api/v1/targets");
    assert_eq!(v["data"]["activeTargets"][0]["health"], "up", "{v}");
    let metrics = {
        let mut s = TcpStream::connect(a).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let hits: f64 = metrics
        .lines()
        .find(|l| l.starts_with("vigil_tsdb_limit_hits_total{limit=\"labels_per_series\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(hits >= 1.0, "{metrics}");
    rt.block_on(server.shutdown()).unwrap();
}
