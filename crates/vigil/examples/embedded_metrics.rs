//! An application that keeps its own metrics in an embedded vigil and asks
//! PromQL about them: a request counter and a latency histogram are
//! recorded every 15 seconds (of a simulated clock) into an in-memory
//! database, then `rate()` and `histogram_quantile()` answer how busy and
//! how slow the application has been.
//!
//! Run it with `cargo run -p vigil --no-default-features --example
//! embedded_metrics`. It exits non-zero if an answer is wrong; `cargo test`
//! runs the same logic as a test.

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;

use vigil::model::{labels, Appender, Labels, SeriesRef, Value};
use vigil::promql::{Engine, EngineOptions, QueryValue};
use vigil::tsdb::Db;

/// The application's own instruments: plain numbers it updates as it works.
struct Metrics {
    /// Requests served, by route.
    requests: BTreeMap<&'static str, u64>,
    /// Latency histogram of `/api`: cumulative counts per upper bound.
    latency_buckets: Vec<(f64, u64)>,
    latency_sum: f64,
    latency_count: u64,
}

const BOUNDS: [f64; 4] = [0.01, 0.1, 0.25, 1.0];

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            requests: BTreeMap::new(),
            latency_buckets: BOUNDS
                .iter()
                .chain(&[f64::INFINITY])
                .map(|&b| (b, 0))
                .collect(),
            latency_sum: 0.0,
            latency_count: 0,
        }
    }

    fn request(&mut self, route: &'static str, seconds: f64) {
        *self.requests.entry(route).or_default() += 1;
        if route == "/api" {
            for (bound, count) in &mut self.latency_buckets {
                if seconds <= *bound {
                    *count += 1;
                }
            }
            self.latency_sum += seconds;
            self.latency_count += 1;
        }
    }
}

/// Writes the instruments into the database as one transaction. Series
/// references are cached by labels, so after the first round an append
/// skips the label lookup.
struct Recorder {
    refs: BTreeMap<Labels, SeriesRef>,
}

impl Recorder {
    fn record(&mut self, db: &Db, m: &Metrics, t: i64) -> Result<(), Box<dyn Error>> {
        let mut series: Vec<(Labels, f64)> = Vec::new();
        for (route, n) in &m.requests {
            series.push((
                labels!("__name__" => "app_requests_total", "route" => *route),
                *n as f64,
            ));
        }
        for (bound, n) in &m.latency_buckets {
            let le = if bound.is_infinite() {
                "+Inf".to_string()
            } else {
                bound.to_string()
            };
            series.push((
                labels!("__name__" => "app_request_duration_seconds_bucket", "route" => "/api", "le" => le.as_str()),
                *n as f64,
            ));
        }
        series.push((
            labels!("__name__" => "app_request_duration_seconds_sum", "route" => "/api"),
            m.latency_sum,
        ));
        series.push((
            labels!("__name__" => "app_request_duration_seconds_count", "route" => "/api"),
            m.latency_count as f64,
        ));
        let mut app = db.appender();
        for (labels, v) in series {
            let cached = self.refs.get(&labels).copied();
            let r = app.append(cached, &labels, t, Value::Float(v))?;
            self.refs.insert(labels, r);
        }
        // Nothing is visible to queries before the commit; dropping the
        // appender instead would roll the batch back.
        app.commit()?;
        Ok(())
    }
}

/// The first instant of the simulation (ms since the epoch).
const START: i64 = 1_700_000_000_000;

/// Runs the application for ten simulated minutes and checks what PromQL
/// says about it.
fn run() -> Result<(), Box<dyn Error>> {
    let db = Db::open_in_memory()?;
    let mut metrics = Metrics::new();
    let mut recorder = Recorder {
        refs: BTreeMap::new(),
    };
    // Every 15 s: 30 requests on /api (27 fast at 50 ms, 3 slow at 500 ms)
    // and 15 on /health.
    let mut t = START;
    for _ in 0..40 {
        for i in 0..30 {
            metrics.request("/api", if i % 10 == 9 { 0.5 } else { 0.05 });
        }
        for _ in 0..15 {
            metrics.request("/health", 0.002);
        }
        t += 15_000;
        recorder.record(&db, &metrics, t)?;
    }

    let engine = Engine::new(EngineOptions::default());
    let query = |q: &str| -> Result<Vec<(Labels, f64)>, Box<dyn Error>> {
        let result = engine.instant_query(&db, q, t)?;
        // Warnings and infos come with the answer, as the HTTP API's do.
        for a in result.annotations.all() {
            eprintln!("{q}: {a}");
        }
        match result.value {
            QueryValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
            QueryValue::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
            other => Err(format!("{q}: unexpected result {other:?}").into()),
        }
    };
    let mut failures = Vec::new();
    let mut check = |what: &str, got: f64, want: f64| {
        let ok = (got - want).abs() < 1e-9;
        println!(
            "{what:<60} = {got:.6} ({})",
            if ok { "ok" } else { "WRONG" }
        );
        if !ok {
            failures.push(format!("{what}: got {got}, want {want}"));
        }
    };

    // How busy: requests per second over the last five minutes, by route.
    let rates = query("sort_desc(sum by (route) (rate(app_requests_total[5m])))")?;
    if rates.len() != 2 {
        return Err(format!("expected two routes, got {rates:?}").into());
    }
    check("rate of /api (per second)", rates[0].1, 2.0);
    check("rate of /health (per second)", rates[1].1, 1.0);
    // How slow: latency quantiles of /api from the histogram. 90% of
    // requests take 50 ms (bucket 0.01..0.1) and 10% take 500 ms (bucket
    // 0.25..1), so the median interpolates to 0.01 + 0.09 * (1.0 / 1.8)
    // and the 95th percentile to 0.25 + 0.75 * (0.1 / 0.2).
    let quantile = |q: f64| -> Result<f64, Box<dyn Error>> {
        let v = query(&format!(
            "histogram_quantile({q}, sum by (le) (rate(app_request_duration_seconds_bucket{{route=\"/api\"}}[5m])))"
        ))?;
        v.first()
            .map(|s| s.1)
            .ok_or_else(|| format!("no quantile {q}").into())
    };
    check("p50 latency of /api (seconds)", quantile(0.5)?, 0.06);
    check("p95 latency of /api (seconds)", quantile(0.95)?, 0.625);
    // The mean from _sum and _count: (27 * 0.05 + 3 * 0.5) / 30.
    let mean = query(
        "rate(app_request_duration_seconds_sum[5m]) / rate(app_request_duration_seconds_count[5m])",
    )?;
    check(
        "mean latency of /api (seconds)",
        mean.first().map_or(f64::NAN, |s| s.1),
        0.095,
    );

    db.close()?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embedded_metrics: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_are_right() {
        super::run().unwrap();
    }
}
