//! The HTTP API end to end: a real server on a free port, remote write in,
//! queries out, errors as Prometheus shapes them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use prost::Message;
use vigil_server::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use vigil_server::{start, ServerOptions};

/// A minimal HTTP/1.1 client: one request per connection.
fn http(addr: SocketAddr, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status: u16 = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    // Bodies may be chunked; strip chunk sizes crudely by keeping JSON.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if b >= a => body[a..=b].to_string(),
        _ => body,
    };
    (status, body)
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
