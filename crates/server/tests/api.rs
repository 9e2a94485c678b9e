//! The HTTP API end to end: a real server on a free port, remote write in,
//! queries out, errors as Prometheus shapes them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use prost::Message;
use vigil_server::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use vigil_server::{start, ServerOptions};

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A minimal HTTP/1.1 client: one request per connection, with extra
/// request headers; understands chunked bodies.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) and close before reading a large body;
    // the answer is still there to read.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let read = s.read_to_end(&mut out);
    assert!(!out.is_empty(), "no response: {read:?}");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut raw = out[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        let mut body = Vec::new();
        let mut rest = &raw[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        raw = body;
    }
    Resp {
        status,
        headers,
        body: raw,
    }
}

/// A request with a content type; answers status and body text.
fn http(addr: SocketAddr, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    let r = request(addr, method, path, &[("Content-Type", ctype)], body);
    (r.status, r.text())
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], b"")
}

fn post_form(addr: SocketAddr, path: &str, form: &str) -> Resp {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
}

/// A runtime and a server on a free port over a fresh data directory.
struct TestServer {
    rt: tokio::runtime::Runtime,
    server: Option<vigil_server::Server>,
    dir: tempfile::TempDir,
}

impl TestServer {
    fn start(opts: ServerOptions) -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(2)
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let server = rt
            .block_on(start(ServerOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: dir.path().to_path_buf(),
                ..opts
            }))
            .unwrap();
        TestServer {
            rt,
            server: Some(server),
            dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr()
    }

    /// Remote-writes (1.0) and checks the 204.
    fn write(&self, series: &[TestSeries<'_>]) {
        let (st, b) = http(
            self.addr(),
            "POST",
            "/api/v1/write",
            "application/x-protobuf",
            &write_body(series),
        );
        assert_eq!(st, 204, "{b}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = self.rt.block_on(s.shutdown());
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A series for a test request: label pairs and (timestamp, value) samples.
type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn write_body(series: &[TestSeries<'_>]) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| Sample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

#[test]
fn remote_write_then_query_through_the_api() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = rt
        .block_on(start(ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            ..ServerOptions::default()
        }))
        .unwrap();
    let addr = server.addr();

    let (st, _) = http(addr, "GET", "/-/healthy", "text/plain", b"");
    assert_eq!(st, 200);
    let (st, _) = http(addr, "GET", "/-/ready", "text/plain", b"");
    assert_eq!(st, 200);

    let body = write_body(&[
        (
            &[("__name__", "up"), ("job", "api")],
            &[(1_000_000, 1.0), (1_015_000, 0.0)],
        ),
        (&[("__name__", "up"), ("job", "db")], &[(1_000_000, 1.0)]),
    ]);
    let (st, b) = http(
        addr,
        "POST",
        "/api/v1/write",
        "application/x-protobuf",
        &body,
    );
    assert_eq!(st, 204, "{b}");

    let (st, b) = http(
        addr,
        "GET",
        "/api/v1/query?query=sum(up)&time=1015",
        "text/plain",
        b"",
    );
    assert_eq!(st, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
    assert_eq!(v["data"]["result"][0]["value"][0], 1015.0);

    let (st, b) = http(
        addr,
        "POST",
        "/api/v1/query_range",
        "application/x-www-form-urlencoded",
        b"query=up%7Bjob%3D%22api%22%7D&start=1000&end=1015&step=15s",
    );
    assert_eq!(st, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "api");
    assert_eq!(v["data"]["result"][0]["values"][1][1], "0");

    let (st, b) = http(addr, "GET", "/api/v1/labels", "text/plain", b"");
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["data"], serde_json::json!(["__name__", "job"]));
    let (_, b) = http(addr, "GET", "/api/v1/label/job/values", "text/plain", b"");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["data"], serde_json::json!(["api", "db"]));
    let (_, b) = http(
        addr,
        "GET",
        "/api/v1/series?match[]=up%7Bjob%3D%22db%22%7D",
        "text/plain",
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        v["data"],
        serde_json::json!([{"__name__": "up", "job": "db"}])
    );

    // Errors: a bad query, a bad content type, a corrupt body, an out-of-order sample.
    let (st, b) = http(addr, "GET", "/api/v1/query?query=sum(", "text/plain", b"");
    assert_eq!(st, 400);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["errorType"], "bad_data");
    let (st, _) = http(addr, "POST", "/api/v1/write", "application/json", b"{}");
    assert_eq!(st, 415);
    let (st, _) = http(
        addr,
        "POST",
        "/api/v1/write",
        "application/x-protobuf",
        b"not snappy",
    );
    assert_eq!(st, 400);
    let mixed = write_body(&[
        (&[("__name__", "up"), ("job", "api")], &[(900_000, 5.0)]),
        (&[("__name__", "new_metric")], &[(1_000_000, 7.0)]),
    ]);
    let (st, b) = http(
        addr,
        "POST",
        "/api/v1/write",
        "application/x-protobuf",
        &mixed,
    );
    assert_eq!(st, 400, "{b}");
    // The valid sample of the partly rejected request is stored.
    let (_, b) = http(
        addr,
        "GET",
        "/api/v1/query?query=new_metric&time=1000",
        "text/plain",
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "7");

    let (st, b) = http(addr, "GET", "/metrics", "text/plain", b"");
    assert_eq!(st, 200);
    assert!(b.contains("vigil_tsdb_head_series 3"), "{b}");
    assert!(
        b.contains("vigil_remote_write_samples_rejected_total 1"),
        "{b}"
    );

    rt.block_on(server.shutdown()).unwrap();
    // Everything acknowledged survives a restart.
    let server = rt
        .block_on(start(ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            ..ServerOptions::default()
        }))
        .unwrap();
    let (_, b) = http(
        server.addr(),
        "GET",
        "/api/v1/query?query=count(up)&time=1000",
        "text/plain",
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
    rt.block_on(server.shutdown()).unwrap();
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn query_stats_timeout_and_limit() {
    let s = TestServer::start(ServerOptions::default());
    let a = s.addr();
    s.write(&[
        (&[("__name__", "up"), ("job", "a")], &[(1_000_000, 1.0)]),
        (&[("__name__", "up"), ("job", "b")], &[(1_000_000, 0.0)]),
    ]);

    // Without `stats` there is no stats object.
    let r = get(a, "/api/v1/query?query=up&time=1000");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["data"].get("stats").is_none());

    // stats=all: Prometheus's timings and sample counts.
    let r = get(a, "/api/v1/query?query=up&time=1000&stats=all");
    let v = r.json();
    let t = &v["data"]["stats"]["timings"];
    for k in [
        "evalTotalTime",
        "resultSortTime",
        "queryPreparationTime",
        "innerEvalTime",
        "execQueueTime",
        "execTotalTime",
    ] {
        assert!(t[k].as_f64().unwrap() >= 0.0, "{k}: {v}");
    }
    assert!(t["execTotalTime"].as_f64() >= t["evalTotalTime"].as_f64());
    assert_eq!(v["data"]["stats"]["samples"]["totalQueryableSamples"], 2);
    assert!(
        v["data"]["stats"]["samples"]["peakSamples"]
            .as_u64()
            .unwrap()
            >= 2
    );
    let r = post_form(
        a,
        "/api/v1/query_range",
        "query=up&start=1000&end=1010&step=5&stats=1",
    );
    assert!(r.json()["data"]["stats"]["timings"]["execTotalTime"].is_number());

    // limit cuts the series and says so.
    let v = get(a, "/api/v1/query?query=up&time=1000&limit=1").json();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );
    let v = get(
        a,
        "/api/v1/query_range?query=up&start=1000&end=1010&step=5&limit=1",
    )
    .json();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"][0], "results truncated due to limit");
    let v = get(a, "/api/v1/query?query=up&time=1000&limit=2").json();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2);
    assert!(v.get("warnings").is_none());

    // Bad parameters, as Prometheus words them.
    let r = get(a, "/api/v1/query?query=up&limit=-1");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorType"], "bad_data");
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"limit\": limit must be non-negative"
    );
    let r = get(a, "/api/v1/query?query=up&timeout=soon");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration"
    );
    let r = get(a, "/api/v1/query_range?query=up&end=10&step=5");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"start\": cannot parse \"\" to a valid timestamp"
    );
    let r = get(a, "/api/v1/query_range?query=up&start=10&end=5&step=5");
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"end\": end timestamp must not be before start time"
    );
    let r = get(a, "/api/v1/query?query=sum(");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"query\": "));

    // A timeout that has passed when the query starts: 503, "timeout".
    let r = get(a, "/api/v1/query?query=up&time=1000&timeout=0s");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["errorType"], "timeout");
    // A generous one changes nothing.
    let r = get(a, "/api/v1/query?query=up&time=1000&timeout=30s");
    assert_eq!(r.status, 200);
}

#[test]
fn metadata_format_and_parse_query() {
    let s = TestServer::start(ServerOptions::default());
    let a = s.addr();

    let r = get(a, "/api/v1/metadata");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "success", "data": {}})
    );
    assert_eq!(
        get(a, "/api/v1/metadata?metric=up&limit=5").json()["data"],
        serde_json::json!({})
    );
    let r = get(a, "/api/v1/metadata?limit=many");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorType"], "bad_data");
    assert_eq!(r.json()["error"], "limit must be a number");
    let r = get(a, "/api/v1/metadata?limit_per_metric=x");
    assert_eq!(r.json()["error"], "limit_per_metric must be a number");

    let q = enc("sum(rate(http_requests_total{job=\"api\"}[5m]))by(code)");
    let r = get(a, &format!("/api/v1/format_query?query={q}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        "sum by (code) (rate(http_requests_total{job=\"api\"}[5m]))"
    );
    let r = post_form(a, "/api/v1/format_query", &format!("query={}", enc("a+b")));
    assert_eq!(r.json()["data"], "a + b");
    let r = get(a, "/api/v1/format_query?query=sum(");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"query\": "));

    let q = enc("sum by (job) (rate(up{instance!=\"x\"}[1m])) > 1");
    let v = get(a, &format!("/api/v1/parse_query?query={q}")).json();
    let d = &v["data"];
    assert_eq!(d["type"], "binaryExpr");
    assert_eq!(d["op"], ">");
    assert_eq!(d["matching"], serde_json::Value::Null);
    assert_eq!(
        d["rhs"],
        serde_json::json!({"type": "numberLiteral", "val": "1"})
    );
    let agg = &d["lhs"];
    assert_eq!(agg["type"], "aggregation");
    assert_eq!(agg["op"], "sum");
    assert_eq!(agg["grouping"], serde_json::json!(["job"]));
    assert_eq!(agg["without"], false);
    assert_eq!(agg["param"], serde_json::Value::Null);
    let call = &agg["expr"];
    assert_eq!(call["func"]["name"], "rate");
    let sel = &call["args"][0];
    assert_eq!(sel["type"], "matrixSelector");
    assert_eq!(sel["name"], "up");
    assert_eq!(sel["range"], 60_000);
    assert_eq!(
        sel["matchers"],
        serde_json::json!([
            {"name": "instance", "type": "!=", "value": "x"},
            {"name": "__name__", "type": "=", "value": "up"}
        ])
    );
    let r = post_form(a, "/api/v1/parse_query", "query=%22text%22");
    assert_eq!(
        r.json()["data"],
        serde_json::json!({"type": "stringLiteral", "val": "text"})
    );
    let r = get(a, "/api/v1/parse_query?query=up%7B");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorType"], "bad_data");
}

#[test]
fn status_endpoints() {
    let mut flags = std::collections::BTreeMap::new();
    flags.insert("storage.tsdb.path".to_string(), "data/".to_string());
    flags.insert("web.enable-admin-api".to_string(), "false".to_string());
    let yaml = "global:\n  scrape_interval: 15s\n".to_string();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("prometheus.yml");
    std::fs::write(&cfg, &yaml).unwrap();
    let s = TestServer::start(ServerOptions {
        config: vigil_server::config::Config::load(&cfg).unwrap(),
        config_file: Some(cfg.clone()),
        flags,
        ..ServerOptions::default()
    });
    let a = s.addr();

    let v = get(a, "/api/v1/status/config").json();
    assert_eq!(
        v,
        serde_json::json!({"status": "success", "data": {"yaml": yaml}})
    );
    // A reload with a good file shows its text; a bad one keeps it.
    std::fs::write(&cfg, "global: {}\n").unwrap();
    s.rt.block_on(s.server.as_ref().unwrap().reload()).unwrap();
    assert_eq!(
        get(a, "/api/v1/status/config").json()["data"]["yaml"],
        "global: {}\n"
    );
    std::fs::write(&cfg, "global: {bogus: 1}\n").unwrap();
    assert!(s.rt.block_on(s.server.as_ref().unwrap().reload()).is_err());
    assert_eq!(
        get(a, "/api/v1/status/config").json()["data"]["yaml"],
        "global: {}\n"
    );

    let v = get(a, "/api/v1/status/flags").json();
    assert_eq!(
        v["data"],
        serde_json::json!({"storage.tsdb.path": "data/", "web.enable-admin-api": "false"})
    );

    let v = get(a, "/api/v1/status/runtimeinfo").json();
    let d = &v["data"];
    // The last reload failed.
    assert_eq!(d["reloadConfigSuccess"], false);
    for k in ["startTime", "serverTime", "lastConfigTime"] {
        let t = d[k].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{k}: {t}");
    }
    assert!(!d["CWD"].as_str().unwrap().is_empty());
    assert_eq!(d["corruptionCount"], 0);
    assert!(d["goroutineCount"].as_u64().unwrap() >= 1);
    assert_eq!(d["GOMAXPROCS"], 2);
    // The default retention is Prometheus's 15 days.
    assert!(
        d["storageRetention"].as_str().unwrap().ends_with('d'),
        "{d}"
    );

    let v = get(a, "/api/v1/status/buildinfo").json();
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
    for k in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(v["data"][k].is_string(), "{k}: {v}");
    }
    assert!(v["data"]["goVersion"]
        .as_str()
        .unwrap()
        .starts_with("rustc"));

    // An empty head: no samples, Prometheus's empty bounds.
    let v = get(a, "/api/v1/status/tsdb").json();
    assert_eq!(v["data"]["headStats"]["numSeries"], 0);
    assert_eq!(v["data"]["seriesCountByMetricName"], serde_json::json!([]));

    s.write(&[
        (
            &[("__name__", "up"), ("job", "a")],
            &[(1_000_000, 1.0), (1_015_000, 1.0)],
        ),
        (&[("__name__", "up"), ("job", "b")], &[(1_000_000, 1.0)]),
        (&[("__name__", "down"), ("job", "a")], &[(1_005_000, 1.0)]),
    ]);
    let v = get(a, "/api/v1/status/tsdb").json();
    let d = &v["data"];
    assert_eq!(d["headStats"]["numSeries"], 3);
    assert_eq!(d["headStats"]["numLabelPairs"], 4);
    assert_eq!(d["headStats"]["chunkCount"], 3);
    assert_eq!(d["headStats"]["minTime"], 1_000_000);
    assert_eq!(d["headStats"]["maxTime"], 1_015_000);
    assert_eq!(
        d["seriesCountByMetricName"],
        serde_json::json!([{"name": "up", "value": 2}, {"name": "down", "value": 1}])
    );
    assert_eq!(
        d["labelValueCountByLabelName"],
        serde_json::json!([{"name": "__name__", "value": 2}, {"name": "job", "value": 2}])
    );
    assert_eq!(
        d["seriesCountByLabelValuePair"][0],
        serde_json::json!({"name": "__name__=up", "value": 2})
    );
    // __name__: "up" twice and "down" once = 8 bytes; job: 3 bytes.
    assert_eq!(
        d["memoryInBytesByLabelName"],
        serde_json::json!([{"name": "__name__", "value": 8}, {"name": "job", "value": 3}])
    );
    let v = get(a, "/api/v1/status/tsdb?limit=1").json();
    assert_eq!(
        v["data"]["seriesCountByMetricName"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = get(a, "/api/v1/status/tsdb?limit=0");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "limit must be a positive number");
}

#[test]
fn admin_api_only_when_enabled() {
    let s = TestServer::start(ServerOptions::default());
    for path in ["delete_series?match[]=up", "clean_tombstones", "snapshot"] {
        for method in ["POST", "PUT"] {
            let r = request(
                s.addr(),
                method,
                &format!("/api/v1/admin/tsdb/{path}"),
                &[],
                b"",
            );
            assert_eq!(r.status, 500, "{method} {path}");
            assert_eq!(
                r.json(),
                serde_json::json!({"status": "error", "errorType": "unavailable", "error": "admin APIs disabled"})
            );
        }
    }
    drop(s);

    let s = TestServer::start(ServerOptions {
        enable_admin_api: true,
        ..ServerOptions::default()
    });
    let a = s.addr();
    s.write(&[
        (
            &[("__name__", "up"), ("job", "a")],
            &[(1_000_000, 1.0), (1_015_000, 1.0)],
        ),
        (&[("__name__", "up"), ("job", "b")], &[(1_000_000, 1.0)]),
    ]);
    let r = post_form(a, "/api/v1/admin/tsdb/delete_series", "");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "no match[] parameter provided");
    let r = post_form(a, "/api/v1/admin/tsdb/delete_series", "match[]=up%7B");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"match[]\""));
    let r = post_form(
        a,
        "/api/v1/admin/tsdb/delete_series",
        "match[]=up&start=later",
    );
    assert_eq!(r.status, 400);

    // Delete job="b" entirely, and job="a" up to 1010s.
    let r = post_form(
        a,
        "/api/v1/admin/tsdb/delete_series",
        &format!("match[]={}", enc("up{job=\"b\"}")),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let r = request(
        a,
        "PUT",
        &format!(
            "/api/v1/admin/tsdb/delete_series?match[]={}&end=1010",
            enc("up{job=\"a\"}")
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let v = get(a, "/api/v1/query?query=count(up)&time=1000").json();
    assert_eq!(v["data"]["result"], serde_json::json!([]));
    let v = get(a, "/api/v1/query?query=up&time=1015").json();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "a");

    let r = request(a, "PUT", "/api/v1/admin/tsdb/clean_tombstones", &[], b"");
    assert_eq!(r.status, 204);

    let r = post_form(a, "/api/v1/admin/tsdb/snapshot", "skip_head=maybe");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"skip_head\": unable to parse boolean"));
    let r = post_form(a, "/api/v1/admin/tsdb/snapshot", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let name = r.json()["data"]["name"].as_str().unwrap().to_string();
    let snap = s.dir.path().join("snapshots").join(&name);
    assert!(snap.is_dir(), "{}", snap.display());
    // With the head, the snapshot holds a block.
    assert!(std::fs::read_dir(&snap).unwrap().count() >= 1);
    let r = request(
        a,
        "PUT",
        "/api/v1/admin/tsdb/snapshot?skip_head=true",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let name = r.json()["data"]["name"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("snapshots").join(name))
            .unwrap()
            .count(),
        0
    );
}

/// `POST /api/v1/admin/tsdb/flush` writes the head into a block and empties
/// the WAL and head chunk files; the data stays queryable and survives a
/// restart. Only with the admin API enabled.
#[test]
fn admin_flush_writes_the_head_into_a_block() {
    let s = TestServer::start(ServerOptions::default());
    let r = request(s.addr(), "POST", "/api/v1/admin/tsdb/flush", &[], b"");
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"], "admin APIs disabled");
    drop(s);

    let opts = || ServerOptions {
        enable_admin_api: true,
        ..ServerOptions::default()
    };
    let mut s = TestServer::start(opts());
    let a = s.addr();
    let r = request(a, "POST", "/api/v1/admin/tsdb/flush", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], serde_json::json!({ "block": null }));

    let t0 = now_ms() - 600_000;
    let samples: Vec<(i64, f64)> = (0..40).map(|i| (t0 + i * 15_000, i as f64)).collect();
    s.write(&[
        (&[("__name__", "up"), ("job", "a")], &samples),
        (&[("__name__", "up"), ("job", "b")], &samples[..20]),
    ]);
    let query = format!(
        "/api/v1/query?query={}&time={}",
        enc("sum(count_over_time(up[1h]))"),
        (t0 + 600_000) / 1000
    );
    let before = get(a, &query).json();
    assert_eq!(before["data"]["result"][0]["value"][1], "60");

    let r = request(a, "PUT", "/api/v1/admin/tsdb/flush", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let block = &r.json()["data"]["block"];
    assert_eq!(block["numSeries"], 2);
    assert_eq!(block["numSamples"], 60);
    assert_eq!(block["minTime"], t0);
    assert_eq!(block["maxTime"], t0 + 39 * 15_000 + 1);
    let ulid = block["ulid"].as_str().unwrap().to_string();
    let data = s.dir.path().to_path_buf();
    assert!(data.join(&ulid).join("meta.json").is_file());
    let chunk_files: Vec<String> = std::fs::read_dir(data.join("chunks_head"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "LOCK")
        .collect();
    assert!(
        chunk_files.is_empty(),
        "head chunk files left: {chunk_files:?}"
    );
    assert_eq!(get(a, &query).json(), before);

    // Restart on the same directory: the block is there, the head is not
    // needed.
    let server = s.server.take().unwrap();
    s.rt.block_on(server.shutdown()).unwrap();
    let server =
        s.rt.block_on(start(ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.clone(),
            ..opts()
        }))
        .unwrap();
    let a = server.addr();
    s.server = Some(server);
    assert_eq!(get(a, &query).json(), before);
}

/// A 2.0 series for a test request: label references, (timestamp, value)
/// samples and native histogram timestamps.
type V2Series<'a> = (&'a [u32], &'a [(i64, f64)], &'a [i64]);

/// A remote write 2.0 request over `symbols`.
fn v2_body(symbols: &[&str], series: &[V2Series<'_>]) -> Vec<u8> {
    use vigil_server::remote_write::v2;
    let req = v2::Request {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        timeseries: series
            .iter()
            .map(|(refs, samples, hists)| v2::TimeSeries {
                labels_refs: refs.to_vec(),
                samples: samples
                    .iter()
                    .map(|(t, v)| Sample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
                histograms: hists
                    .iter()
                    .map(|t| v2::Histogram {
                        count_int: 3,
                        sum: 1.5,
                        timestamp: *t,
                    })
                    .collect(),
                exemplars: vec![v2::Exemplar {
                    labels_refs: vec![],
                    value: 1.0,
                    timestamp: 0,
                }],
                created_timestamp: 0,
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

fn written(r: &Resp) -> (String, String, String) {
    let h = |n: &str| r.header(n).unwrap_or("missing").to_string();
    (
        h("x-prometheus-remote-write-samples-written"),
        h("x-prometheus-remote-write-histograms-written"),
        h("x-prometheus-remote-write-exemplars-written"),
    )
}

#[test]
fn remote_write_2_0() {
    let s = TestServer::start(ServerOptions::default());
    let a = s.addr();
    let headers = [
        ("Content-Type", V2),
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Write-Version", "2.0.0"),
    ];
    let symbols = ["", "__name__", "up", "job", "api", "db", "instance", "h:1"];
    let body = v2_body(
        &symbols,
        &[
            (&[1, 2, 3, 4], &[(1_000_000, 1.0), (1_015_000, 0.0)], &[]),
            (&[1, 2, 6, 7, 3, 5], &[(1_000_000, 1.0)], &[]),
        ],
    );
    let r = request(a, "POST", "/api/v1/write", &headers, &body);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(written(&r), ("3".into(), "0".into(), "0".into()));
    let v = get(a, "/api/v1/query?query=up&time=1000").json();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert!(result
        .iter()
        .any(|s| s["metric"]
            == serde_json::json!({"__name__": "up", "job": "db", "instance": "h:1"})));

    // Partly bad: an out-of-order sample, a native histogram, a series
    // without a name and a bad symbol reference. Valid samples are kept,
    // the answer is 400 with every reason and counts what was written.
    let body = v2_body(
        &symbols,
        &[
            (
                &[1, 2, 3, 4],
                &[(900_000, 5.0), (1_030_000, 2.0)],
                &[1_030_000],
            ),
            (&[3, 4], &[(1_030_000, 1.0)], &[]),
            (&[1, 99], &[(1_030_000, 1.0)], &[]),
            (&[1, 2, 3, 5], &[(1_030_000, 7.0)], &[]),
        ],
    );
    let r = request(a, "POST", "/api/v1/write", &headers, &body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(written(&r), ("2".into(), "0".into(), "0".into()));
    let why = r.text();
    assert!(why.contains("out of order sample"), "{why}");
    assert!(why.contains("native histogram"), "{why}");
    assert!(why.contains("invalid metric name or labels"), "{why}");
    assert!(why.contains("outside the symbol table"), "{why}");
    let q = enc("up{instance=\"\"}");
    let v = get(a, &format!("/api/v1/query?query={q}&time=1030")).json();
    let values: Vec<&str> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"][1].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["2", "7"]);

    // Unknown message, media type or encoding: 415, nothing stored.
    let r = request(
        a,
        "POST",
        "/api/v1/write",
        &[(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        )],
        &body,
    );
    assert_eq!(r.status, 415);
    assert!(r.text().contains("unknown remote write protobuf message"));
    let r = request(
        a,
        "POST",
        "/api/v1/write",
        &[("Content-Type", V2), ("Content-Encoding", "gzip")],
        &body,
    );
    assert_eq!(r.status, 415);
    let r = request(
        a,
        "POST",
        "/api/v1/write",
        &[("Content-Type", "text/plain")],
        &body,
    );
    assert_eq!(r.status, 415);
    // A corrupt body: 400, with the headers saying nothing was written.
    let r = request(a, "POST", "/api/v1/write", &headers, b"garbage");
    assert_eq!(r.status, 400);
    assert_eq!(written(&r), ("0".into(), "0".into(), "0".into()));
    // A 1.0 request is answered without the 2.0 headers.
    let r = request(
        a,
        "POST",
        "/api/v1/write",
        &[(
            "Content-Type",
            "application/x-protobuf;proto=prometheus.WriteRequest",
        )],
        &write_body(&[(&[("__name__", "v1")], &[(1_000_000, 1.0)])]),
    );
    assert_eq!(r.status, 204);
    assert!(r
        .header("x-prometheus-remote-write-samples-written")
        .is_none());
    // Samples from the far future are out of bounds.
    let r = request(
        a,
        "POST",
        "/api/v1/write",
        &headers,
        &v2_body(&symbols, &[(&[1, 2], &[(now_ms() + 3_600_000, 1.0)], &[])]),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("too far in the future"), "{}", r.text());

    let m = get(a, "/metrics").text();
    // Rejected: out of order, histogram, nameless, bad reference, future.
    assert!(
        m.contains("vigil_remote_write_samples_rejected_total 5\n"),
        "{m}"
    );
    // Written: 3 + 2 in 2.0 and 1 in 1.0, plus the 5 rejected.
    assert!(
        m.contains("vigil_remote_write_samples_received_total 11\n"),
        "{m}"
    );
}

fn read_body(queries: Vec<vigil_server::remote_read::Query>, accepted: Vec<i32>) -> Vec<u8> {
    let req = vigil_server::remote_read::ReadRequest {
        queries,
        accepted_response_types: accepted,
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn matcher(t: i32, name: &str, value: &str) -> vigil_server::remote_read::LabelMatcher {
    vigil_server::remote_read::LabelMatcher {
        r#type: t,
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn remote_read_samples() {
    use vigil_server::remote_read::{Query, ReadResponse, SAMPLES, STREAMED_XOR_CHUNKS};
    let s = TestServer::start(ServerOptions::default());
    let a = s.addr();
    s.write(&[
        (
            &[("__name__", "up"), ("job", "api")],
            &[(1_000_000, 1.0), (1_015_000, 0.5), (1_030_000, 2.0)],
        ),
        (&[("__name__", "up"), ("job", "db")], &[(1_000_000, 1.0)]),
        (&[("__name__", "other")], &[(1_000_000, 3.0)]),
    ]);
    let queries = vec![
        Query {
            start_timestamp_ms: 1_010_000,
            end_timestamp_ms: 1_030_000,
            matchers: vec![matcher(0, "__name__", "up")],
        },
        Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 2_000_000,
            matchers: vec![matcher(0, "__name__", "up"), matcher(2, "job", "d.")],
        },
    ];
    let r = request(
        a,
        "POST",
        "/api/v1/read",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        &read_body(queries.clone(), vec![STREAMED_XOR_CHUNKS, SAMPLES]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
    let resp = ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(resp.results.len(), 2);
    // Only samples in range; series without any are left out.
    let first = &resp.results[0].timeseries;
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect::<Vec<_>>(),
        vec![("__name__", "up"), ("job", "api")]
    );
    assert_eq!(
        first[0]
            .samples
            .iter()
            .map(|s| (s.timestamp, s.value))
            .collect::<Vec<_>>(),
        vec![(1_015_000, 0.5), (1_030_000, 2.0)]
    );
    let second = &resp.results[1].timeseries;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].labels[1].value, "db");

    // No accepted types means SAMPLES.
    let r = request(
        a,
        "POST",
        "/api/v1/read",
        &[],
        &read_body(queries.clone(), vec![]),
    );
    assert_eq!(r.status, 200);
    // Only streamed chunks accepted: vigil does not implement them.
    let r = request(
        a,
        "POST",
        "/api/v1/read",
        &[],
        &read_body(queries, vec![STREAMED_XOR_CHUNKS]),
    );
    assert_eq!(r.status, 400);
    assert!(r
        .text()
        .contains("server does not support any of the requested response types"));
    // Corrupt bodies and bad matchers are 400s.
    let r = request(a, "POST", "/api/v1/read", &[], b"junk");
    assert_eq!(r.status, 400);
    let bad = vec![Query {
        start_timestamp_ms: 0,
        end_timestamp_ms: 1,
        matchers: vec![matcher(2, "job", "(")],
    }];
    let r = request(a, "POST", "/api/v1/read", &[], &read_body(bad, vec![]));
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn remote_read_sample_limit() {
    use vigil_server::remote_read::Query;
    let s = TestServer::start(ServerOptions {
        remote_read_sample_limit: 2,
        ..ServerOptions::default()
    });
    s.write(&[(
        &[("__name__", "up")],
        &[(1_000_000, 1.0), (1_015_000, 1.0), (1_030_000, 1.0)],
    )]);
    let q = vec![Query {
        start_timestamp_ms: 0,
        end_timestamp_ms: 2_000_000,
        matchers: vec![matcher(0, "__name__", "up")],
    }];
    let r = request(s.addr(), "POST", "/api/v1/read", &[], &read_body(q, vec![]));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "exceeded sample limit (2)\n");
}

#[test]
fn federation_in_the_text_format() {
    let s = TestServer::start(ServerOptions::default());
    let a = s.addr();
    let now = now_ms();
    s.write(&[
        (
            &[("__name__", "up"), ("job", "b"), ("instance", "x")],
            &[(now - 30_000, 1.0), (now - 15_000, 0.0)],
        ),
        (&[("__name__", "up"), ("job", "a")], &[(now - 20_000, 1.0)]),
        (
            &[("__name__", "go_info"), ("version", "go\"1\"")],
            &[(now - 10_000, 1e6)],
        ),
        // Stale now: left out.
        (
            &[("__name__", "up"), ("job", "gone")],
            &[
                (now - 20_000, 1.0),
                (now - 10_000, f64::from_bits(0x7ff0_0000_0000_0002)),
            ],
        ),
        // Older than the lookback: left out.
        (
            &[("__name__", "up"), ("job", "old")],
            &[(now - 3_600_000, 1.0)],
        ),
        (&[("__name__", "other")], &[(now - 1_000, 2.5)]),
    ]);
    let r = get(
        a,
        &format!(
            "/federate?match[]={}&match[]=go_info&match[]={}",
            enc("up"),
            enc("{job=\"a\"}")
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // Within a name, series come in label order, as Prometheus's merged
    // series set gives them ("instance" sorts before "job").
    let want = format!(
        "# TYPE go_info untyped\n\
         go_info{{version=\"go\\\"1\\\"\"}} 1e+06 {}\n\
         # TYPE up untyped\n\
         up{{instance=\"x\",job=\"b\"}} 0 {}\n\
         up{{job=\"a\"}} 1 {}\n",
        now - 10_000,
        now - 15_000,
        now - 20_000
    );
    assert_eq!(r.text(), want);
    // No selectors: nothing.
    let r = get(a, "/federate");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "");
    let r = get(a, &format!("/federate?match[]={}", enc("up{")));
    assert_eq!(r.status, 400);
}

/// Federation adds `global.external_labels` a series does not carry itself.
#[test]
fn federation_adds_external_labels() {
    let config = vigil_server::config::Config::parse(
        "global:\n  external_labels:\n    site: eu\n    job: fallback\n",
        std::path::Path::new("t.yml"),
    )
    .unwrap();
    let s = TestServer::start(ServerOptions {
        config,
        ..ServerOptions::default()
    });
    let now = now_ms();
    s.write(&[
        (&[("__name__", "up"), ("job", "a")], &[(now - 5_000, 1.0)]),
        (&[("__name__", "other")], &[(now - 5_000, 2.0)]),
    ]);
    let r = get(
        s.addr(),
        &format!("/federate?match[]={}&match[]=other", enc("up")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let want = format!(
        "# TYPE other untyped\n\
         other{{job=\"fallback\",site=\"eu\"}} 2 {t}\n\
         # TYPE up untyped\n\
         up{{job=\"a\",site=\"eu\"}} 1 {t}\n",
        t = now - 5_000
    );
    assert_eq!(r.text(), want);
}

#[test]
fn health_check_reports_subsystems() {
    let s = TestServer::start(ServerOptions::default());
    let r = get(s.addr(), "/api/health-check");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "ok");
    let c = &v["checks"];
    assert_eq!(c["storage"]["status"], "ok");
    assert_eq!(c["storage"]["ready"], true);
    assert_eq!(c["storage"]["head_series"], 0);
    assert!(c["storage"]["disk_free_bytes"].as_u64().unwrap() > 0);
    assert!(c["storage"]["wal_size_bytes"].is_u64());
    assert!(c["storage"].get("last_maintenance").is_some());
    assert_eq!(c["query_engine"]["status"], "ok");
    for k in ["scrape", "rules", "notifiers"] {
        assert_eq!(c[k]["status"], "not configured", "{k}");
    }
    drop(s);

    // An engine that cannot answer within its timeout fails the check.
    let s = TestServer::start(ServerOptions {
        engine: vigil_promql::EngineOptions {
            timeout: std::time::Duration::ZERO,
            ..vigil_promql::EngineOptions::default()
        },
        ..ServerOptions::default()
    });
    let r = get(s.addr(), "/api/health-check");
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "failing");
    assert_eq!(v["checks"]["query_engine"]["status"], "failing");
    assert!(v["checks"]["query_engine"]["error"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    assert_eq!(v["checks"]["storage"]["status"], "ok");
}

#[test]
fn self_metrics() {
    let s = TestServer::start(ServerOptions::default());
    let a = s.addr();
    s.write(&[(&[("__name__", "up")], &[(1_000_000, 1.0)])]);
    assert_eq!(get(a, "/api/v1/query?query=up&time=1000").status, 200);
    assert_eq!(get(a, "/api/v1/query?query=up&time=1000").status, 200);
    assert_eq!(get(a, "/api/v1/query?query=sum(").status, 400);
    assert_eq!(get(a, "/api/v1/label/job/values").status, 200);
    assert_eq!(get(a, "/no/such/path").status, 404);
    let r = get(a, "/metrics");
    assert_eq!(r.status, 200);
    let m = r.text();
    for want in [
        "# TYPE vigil_http_requests_total counter\n",
        "vigil_http_requests_total{code=\"200\",handler=\"/api/v1/query\"} 2\n",
        "vigil_http_requests_total{code=\"400\",handler=\"/api/v1/query\"} 1\n",
        "vigil_http_requests_total{code=\"204\",handler=\"/api/v1/write\"} 1\n",
        "vigil_http_requests_total{code=\"200\",handler=\"/api/v1/label/{name}/values\"} 1\n",
        "# TYPE vigil_http_request_duration_seconds histogram\n",
        "vigil_http_request_duration_seconds_bucket{code=\"200\",handler=\"/api/v1/query\",le=\"+Inf\"} 2\n",
        "vigil_http_request_duration_seconds_count{code=\"200\",handler=\"/api/v1/query\"} 2\n",
        "# TYPE vigil_query_duration_seconds histogram\n",
        "vigil_query_duration_seconds_count 2\n",
        "vigil_remote_write_samples_received_total 1\n",
        "vigil_tsdb_head_series 1\n",
        "# TYPE process_cpu_seconds_total counter\n",
        "# TYPE process_resident_memory_bytes gauge\n",
        "# TYPE process_virtual_memory_bytes gauge\n",
        "# TYPE process_open_fds gauge\n",
        "# TYPE process_start_time_seconds gauge\n",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    assert!(!m.contains("/no/such/path"));
    // The same at /api/metrics, now counting the first scrape.
    let m = get(a, "/api/metrics").text();
    assert!(
        m.contains("vigil_http_requests_total{code=\"200\",handler=\"/metrics\"} 1\n"),
        "{m}"
    );
    let rss: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rss > 1e6);
}

/// Regression: axum caps request bodies at 2 MiB by default, so a remote
/// write body between that and the configured limit was refused with 413
/// before the receiver saw it.
#[test]
fn remote_write_bodies_up_to_the_configured_limit() {
    let s = TestServer::start(ServerOptions::default());
    // Over 2 MiB of a valid request: series with random label values,
    // which snappy cannot shrink much.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let names: Vec<String> = (0..60_000)
        .map(|_| format!("{:016x}{:016x}{:016x}", next(), next(), next()))
        .collect();
    let labels: Vec<[(&str, &str); 2]> = names
        .iter()
        .map(|n| [("__name__", "many"), ("v", n.as_str())])
        .collect();
    let series: Vec<TestSeries<'_>> = labels
        .iter()
        .map(|l| (&l[..], &[(1_000_000, 1.0)][..]))
        .collect();
    let body = write_body(&series);
    assert!(body.len() > 2 << 20, "{}", body.len());
    let r = request(
        s.addr(),
        "POST",
        "/api/v1/write",
        &[("Content-Type", "application/x-protobuf")],
        &body,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let v = get(s.addr(), "/api/v1/query?query=count(many)&time=1000").json();
    assert_eq!(v["data"]["result"][0]["value"][1], "60000");
    drop(s);

    let s = TestServer::start(ServerOptions {
        max_write_bytes: 1000,
        ..ServerOptions::default()
    });
    let r = request(
        s.addr(),
        "POST",
        "/api/v1/write",
        &[("Content-Type", "application/x-protobuf")],
        &body,
    );
    assert_eq!(r.status, 413);
    assert!(
        r.text().contains("--web.remote-write-max-bytes"),
        "{}",
        r.text()
    );
    let m = get(s.addr(), "/metrics").text();
    assert!(
        m.contains("vigil_remote_write_requests_too_large_total 1\n"),
        "{m}"
    );
}

/// The storage limits: a clear error where data come in, the series that
/// fit still stored, and a counter per limit.
#[test]
fn storage_limits_refuse_new_series_with_a_reason_and_a_metric() {
    let mut storage = vigil_tsdb::Options::default();
    storage.head.limits = vigil_tsdb::Limits {
        max_series: 10,
        max_series_per_metric: 2,
        max_labels: 4,
        max_label_name_len: 20,
        max_label_value_len: 30,
    };
    let s = TestServer::start(ServerOptions {
        storage,
        ..ServerOptions::default()
    });
    let t = now_ms();
    let long = "v".repeat(31);
    let body = write_body(&[
        (&[("__name__", "a"), ("i", "1")], &[(t, 1.0)]),
        (&[("__name__", "a"), ("i", "2")], &[(t, 1.0)]),
        (&[("__name__", "a"), ("i", "3")], &[(t, 1.0)]),
        (&[("__name__", "b"), ("i", long.as_str())], &[(t, 1.0)]),
        (
            &[
                ("__name__", "c"),
                ("a", "1"),
                ("b", "1"),
                ("c", "1"),
                ("d", "1"),
            ],
            &[(t, 1.0)],
        ),
        (
            &[("__name__", "d"), ("a_very_long_label_name", "1")],
            &[(t, 1.0)],
        ),
        (&[("__name__", "e")], &[(t, 1.0)]),
    ]);
    let (st, text) = http(
        s.addr(),
        "POST",
        "/api/v1/write",
        "application/x-protobuf",
        &body,
    );
    assert_eq!(st, 400, "{text}");
    for want in [
        "series limit of 2 for metric \"a\" reached",
        "label value 31 bytes long, more than the limit of 30",
        "series has 5 labels, more than the limit of 4",
        "label name 22 bytes long, more than the limit of 20",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let v = get(
        s.addr(),
        "/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)",
    )
    .json();
    assert_eq!(
        v["data"]["result"][0]["value"][1], "3",
        "a{{i=1}}, a{{i=2}}, e"
    );
    let m = get(s.addr(), "/metrics").text();
    for line in [
        "vigil_tsdb_limit_hits_total{limit=\"series_per_metric\"} 1",
        "vigil_tsdb_limit_hits_total{limit=\"label_value_length\"} 1",
        "vigil_tsdb_limit_hits_total{limit=\"labels_per_series\"} 1",
        "vigil_tsdb_limit_hits_total{limit=\"label_name_length\"} 1",
        "vigil_tsdb_limit_hits_total{limit=\"series_total\"} 0",
    ] {
        assert!(m.contains(line), "{line}: {m}");
    }
}
