//! vigil's own metrics on `/metrics`: HTTP requests by handler and code,
//! query durations, remote-write counters, the storage's self-metrics and
//! the process metrics Prometheus's client libraries export, read from
//! `/proc` (Linux; elsewhere those lines are left out).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use vigil_promql::{QueryError, QueryResult};

use crate::AppState;

/// Prometheus's buckets for `prometheus_http_request_duration_seconds`.
const HTTP_BUCKETS: &[f64] = &[0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0];
/// Buckets for query durations: 1ms to 2 minutes.
const QUERY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A cumulative histogram.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts per bucket; one more for `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines; `labels` is the
    /// label text without braces (may be empty).
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cum = 0u64;
        for (i, b) in self.bounds.iter().enumerate() {
            cum += self.counts[i];
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cum}",
                crate::api::format_value(*b)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

/// The server's own instruments.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// (handler, code) -> request duration histogram (its count is the
    /// request counter).
    http: Mutex<BTreeMap<(String, u16), Histogram>>,
    query: Mutex<Histogram>,
    query_failures: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics {
            http: Mutex::new(BTreeMap::new()),
            query: Mutex::new(Histogram::new(QUERY_BUCKETS)),
            query_failures: Mutex::new(BTreeMap::new()),
        }
    }

    fn observe_http(&self, handler: &str, code: u16, seconds: f64) {
        let mut m = self.http.lock();
        m.entry((handler.to_string(), code))
            .or_insert_with(|| Histogram::new(HTTP_BUCKETS))
            .observe(seconds);
    }

    /// Records one query: its duration when it ran, its error type when
    /// it failed.
    pub(crate) fn observe_query(&self, r: &Result<QueryResult, QueryError>) {
        match r {
            Ok(r) => self.query.lock().observe(r.stats.total_seconds),
            Err(e) => {
                // Waiting past the timeout for a free slot
                // (--query.max-concurrency) is told apart from a slow query.
                let reason = match e {
                    QueryError::Timeout("query queue") => "concurrency_limit",
                    e => e.error_type(),
                };
                *self.query_failures.lock().entry(reason).or_default() += 1
            }
        }
    }
}

/// Middleware that counts and times every request by its route pattern
/// and status code. Unrouted requests are not counted, so the handler
/// label cannot grow without bound.
pub(crate) async fn track(
    State(m): State<Arc<Metrics>>,
    path: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    if let Some(path) = path {
        m.observe_http(
            path.as_str(),
            resp.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    resp
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value for the text format.
pub(crate) fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn write_server_metrics(st: &AppState, out: &mut String) {
    let stats = &st.stats;
    family(
        out,
        "vigil_remote_write_samples_received_total",
        "counter",
        "Samples received over remote write.",
    );
    let _ = writeln!(
        out,
        "vigil_remote_write_samples_received_total {}",
        stats.samples_received.load(Ordering::Relaxed)
    );
    family(
        out,
        "vigil_remote_write_samples_rejected_total",
        "counter",
        "Samples (and native histogram samples) rejected over remote write.",
    );
    let _ = writeln!(
        out,
        "vigil_remote_write_samples_rejected_total {}",
        stats.samples_rejected.load(Ordering::Relaxed)
    );
    family(
        out,
        "vigil_remote_write_requests_too_large_total",
        "counter",
        "Remote-write requests refused (413) for a body over --web.remote-write-max-bytes.",
    );
    let _ = writeln!(
        out,
        "vigil_remote_write_requests_too_large_total {}",
        stats.write_too_large.load(Ordering::Relaxed)
    );
    family(out, "vigil_queries_total", "counter", "Queries evaluated.");
    let _ = writeln!(
        out,
        "vigil_queries_total {}",
        stats.queries.load(Ordering::Relaxed)
    );
    family(
        out,
        "vigil_query_failures_total",
        "counter",
        "Queries that failed, by Prometheus error type.",
    );
    for (kind, n) in st.metrics.query_failures.lock().iter() {
        let _ = writeln!(out, "vigil_query_failures_total{{reason=\"{kind}\"}} {n}");
    }
    family(
        out,
        "vigil_query_duration_seconds",
        "histogram",
        "Wall time of successful queries, queueing included.",
    );
    st.metrics
        .query
        .lock()
        .write(out, "vigil_query_duration_seconds", "");
    let http = st.metrics.http.lock().clone();
    family(
        out,
        "vigil_http_requests_total",
        "counter",
        "HTTP requests by handler and status code.",
    );
    for ((handler, code), h) in &http {
        let _ = writeln!(
            out,
            "vigil_http_requests_total{{code=\"{code}\",handler=\"{}\"}} {}",
            escape_label_value(handler),
            h.count
        );
    }
    family(
        out,
        "vigil_http_request_duration_seconds",
        "histogram",
        "HTTP request latencies by handler and status code.",
    );
    for ((handler, code), h) in &http {
        let labels = format!(
            "code=\"{code}\",handler=\"{}\"",
            escape_label_value(handler)
        );
        h.write(out, "vigil_http_request_duration_seconds", &labels);
    }
}

/// Process metrics from `/proc/self`, as Prometheus's client libraries
/// export them.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ProcessStats {
    pub(crate) cpu_seconds: Option<f64>,
    pub(crate) resident_bytes: Option<u64>,
    pub(crate) virtual_bytes: Option<u64>,
    pub(crate) open_fds: Option<u64>,
    pub(crate) max_fds: Option<u64>,
    pub(crate) start_time_seconds: Option<f64>,
}

/// Clock ticks per second of `/proc` times (`USER_HZ`). Linux fixes it at
/// 100 on every architecture vigil builds for; reading it with `sysconf`
/// would need `unsafe`.
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    /// Reads the current process's figures; fields that cannot be read
    /// (not Linux, no `/proc`) stay `None`.
    pub(crate) fn read() -> ProcessStats {
        let mut p = ProcessStats::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and
            // may hold spaces: field 3 (state) is index 0.
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
                if let (Some(u), Some(s)) = (num(11), num(12)) {
                    p.cpu_seconds = Some((u + s) / USER_HZ);
                }
                if let (Some(start), Some(boot)) = (num(19), boot_time()) {
                    p.start_time_seconds = Some(boot + start / USER_HZ);
                }
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let kb = |key: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|v| v * 1024)
            };
            p.resident_bytes = kb("VmRSS:");
            p.virtual_bytes = kb("VmSize:");
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            p.open_fds = Some(dir.count() as u64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            p.max_fds = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok());
        }
        p
    }

    fn write(&self, out: &mut String) {
        let mut one = |name: &str, kind: &str, help: &str, v: Option<f64>| {
            if let Some(v) = v {
                family(out, name, kind, help);
                let _ = writeln!(out, "{name} {v}");
            }
        };
        one(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds,
        );
        one(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            self.max_fds.map(|v| v as f64),
        );
        one(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            self.open_fds.map(|v| v as f64),
        );
        one(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            self.resident_bytes.map(|v| v as f64),
        );
        one(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds,
        );
        one(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            self.virtual_bytes.map(|v| v as f64),
        );
    }
}

/// The boot time in Unix seconds (`btime` in `/proc/stat`).
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// `/metrics` and `/api/metrics`.
pub(crate) async fn metrics(State(st): State<AppState>) -> Response {
    let body = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        st.db.write_metrics(&mut out);
        write_server_metrics(&st, &mut out);
        st.lifecycle.write_metrics(&mut out);
        st.guard.write_metrics(&mut out);
        ProcessStats::read().write(&mut out);
        out
    })
    .await;
    match body {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let mut out = String::new();
        h.write(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{a=\"b\"} 5.55\n"), "{out}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_stats_from_proc() {
        let p = ProcessStats::read();
        assert!(p.resident_bytes.unwrap() > 0);
        assert!(p.virtual_bytes.unwrap() >= p.resident_bytes.unwrap());
        assert!(p.open_fds.unwrap() >= 3);
        let start = p.start_time_seconds.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 365.0);
        assert!(p.cpu_seconds.unwrap() >= 0.0);
    }
}
