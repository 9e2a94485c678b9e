//! `/api/v1/status/*`: configuration, flags, runtime and build
//! information, and the TSDB's head statistics and cardinality.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value as Json};
use vigil_tsdb::head::Cardinality;

use crate::api::{blocking, success, ApiError, Params};
use crate::AppState;

/// The outcome of the last configuration (re)load.
#[derive(Debug, Clone)]
pub(crate) struct ReloadStatus {
    /// Whether the last attempt succeeded.
    pub(crate) success: bool,
    /// When a configuration was last applied.
    pub(crate) last_success: SystemTime,
}

impl ReloadStatus {
    /// The state at start-up: the initial configuration was applied now.
    pub(crate) fn new() -> ReloadStatus {
        ReloadStatus {
            success: true,
            last_success: SystemTime::now(),
        }
    }

    pub(crate) fn record(&mut self, success: bool) {
        self.success = success;
        if success {
            self.last_success = SystemTime::now();
        }
    }
}

/// A time as Go's `time.Time` marshals to JSON: RFC 3339 with up to nine
/// fractional digits, trailing zeros dropped, in UTC.
pub(crate) fn go_time(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    let s = dt.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}Z")
}

/// `/api/v1/status/config`.
pub(crate) async fn config(State(st): State<AppState>) -> Response {
    let yaml = st.config_yaml.read().clone();
    success(json!({ "yaml": yaml }), Vec::new(), Vec::new())
}

/// `/api/v1/status/flags`.
pub(crate) async fn flags(State(st): State<AppState>) -> Response {
    success(json!(*st.flags), Vec::new(), Vec::new())
}

/// Bytes as Go's `units.Base2Bytes` prints them (`512MiB`, `1GiB512MiB`).
fn base2_bytes(mut n: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("EiB", 1 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    if n == 0 {
        return "0B".into();
    }
    let mut s = String::new();
    for (unit, size) in UNITS {
        if n >= size {
            s.push_str(&format!("{}{unit}", n / size));
            n %= size;
        }
    }
    if n > 0 {
        s.push_str(&format!("{n}B"));
    }
    s
}

/// Prometheus's `storageRetention`: `15d`, `512MiB` or `15d or 512MiB`.
fn retention_text(time_ms: Option<i64>, size: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(t) = time_ms.filter(|t| *t > 0) {
        parts.push(vigil_model::time::format_duration(t));
    }
    if let Some(b) = size.filter(|b| *b > 0) {
        parts.push(base2_bytes(b));
    }
    parts.join(" or ")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// `/api/v1/status/runtimeinfo`, with Prometheus's field names. The
/// Go-only knobs (`GOGC`, `GODEBUG`, `GOMEMLIMIT`) are left out;
/// `goroutineCount` is the number of live tokio tasks and `GOMAXPROCS` the
/// number of tokio worker threads, their counterparts here.
pub(crate) async fn runtime_info(State(st): State<AppState>) -> Response {
    let rt = tokio::runtime::Handle::current().metrics();
    let reload = st.config_reload.read().clone();
    let last_config = reload
        .last_success
        .duration_since(UNIX_EPOCH)
        .map(|d| UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()))
        .unwrap_or(UNIX_EPOCH);
    let (retention_time, retention_size) = st.db.retention();
    let start = crate::selfmetrics::ProcessStats::read()
        .start_time_seconds
        .map(|s| UNIX_EPOCH + std::time::Duration::from_secs_f64(s))
        .unwrap_or(st.started);
    let data = json!({
        "startTime": go_time(start),
        "CWD": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "hostname": hostname(),
        "serverTime": go_time(SystemTime::now()),
        "reloadConfigSuccess": reload.success,
        "lastConfigTime": go_time(last_config),
        "corruptionCount": st.db.head().stats().wal_corruptions.load(std::sync::atomic::Ordering::Relaxed),
        "goroutineCount": rt.num_alive_tasks(),
        "GOMAXPROCS": rt.num_workers(),
        "storageRetention": retention_text(retention_time, retention_size),
    });
    success(data, Vec::new(), Vec::new())
}

/// `/api/v1/status/buildinfo`. `goVersion` carries the Rust compiler's
/// version, its counterpart here.
pub(crate) async fn build_info() -> Response {
    let data = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": env!("VIGIL_BUILD_REVISION"),
        "branch": env!("VIGIL_BUILD_BRANCH"),
        "buildUser": env!("VIGIL_BUILD_USER"),
        "buildDate": env!("VIGIL_BUILD_DATE"),
        "goVersion": env!("VIGIL_BUILD_RUSTC"),
    });
    success(data, Vec::new(), Vec::new())
}

/// The `limit` largest entries, biggest first, ties by name.
fn top(mut v: Vec<(String, u64)>, limit: usize) -> Json {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    Json::Array(
        v.into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

/// Prometheus's cardinality lists from the head's postings, as its
/// `PostingsStats` computes them.
fn cardinality_json(c: Cardinality, limit: usize) -> (usize, [Json; 4]) {
    let num_label_pairs = c.series_per_pair.len();
    let mut by_metric = Vec::new();
    let mut bytes_by_name: std::collections::HashMap<String, u64> = Default::default();
    let mut by_pair = Vec::with_capacity(c.series_per_pair.len());
    for (name, value, series) in c.series_per_pair {
        let series = series as u64;
        if name == "__name__" {
            by_metric.push((value.clone(), series));
        }
        *bytes_by_name.entry(name.clone()).or_default() += value.len() as u64 * series;
        by_pair.push((format!("{name}={value}"), series));
    }
    let values_per_name = c
        .values_per_name
        .into_iter()
        .map(|(n, v)| (n, v as u64))
        .collect();
    (
        num_label_pairs,
        [
            top(by_metric, limit),
            top(values_per_name, limit),
            top(bytes_by_name.into_iter().collect(), limit),
            top(by_pair, limit),
        ],
    )
}

/// `/api/v1/status/tsdb`: head statistics and the top-`limit` (default
/// 10) cardinality lists.
pub(crate) async fn tsdb(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let limit = match p.value("limit") {
        "" => 10,
        s => match s.parse::<i64>() {
            Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(ApiError::bad_data("limit must be a positive number")),
        },
    };
    let data = blocking(move || {
        let head = st.db.head();
        // An empty head reports the bounds Prometheus's empty head has.
        let (min_t, max_t) = head.time_range().unwrap_or((i64::MAX, i64::MIN));
        let (num_label_pairs, [by_metric, by_name, bytes, by_pair]) =
            cardinality_json(head.cardinality(), limit);
        Ok(json!({
            "headStats": {
                "numSeries": head.num_series(),
                "numLabelPairs": num_label_pairs,
                "chunkCount": head.num_chunks(),
                "minTime": min_t,
                "maxTime": max_t,
            },
            "seriesCountByMetricName": by_metric,
            "labelValueCountByLabelName": by_name,
            "memoryInBytesByLabelName": bytes,
            "seriesCountByLabelValuePair": by_pair,
        }))
    })
    .await?;
    Ok(success(data, Vec::new(), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_times_and_sizes() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_435_781_451_780);
        assert_eq!(go_time(t), "2015-07-01T20:10:51.78Z");
        assert_eq!(go_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(base2_bytes(512 << 20), "512MiB");
        assert_eq!(base2_bytes((1 << 30) + (512 << 20)), "1GiB512MiB");
        assert_eq!(
            retention_text(Some(14 * 86_400_000), Some(1 << 30)),
            "2w or 1GiB"
        );
        assert_eq!(retention_text(None, None), "");
    }

    #[test]
    fn cardinality_lists_biggest_first() {
        let c = Cardinality {
            values_per_name: vec![("__name__".into(), 2), ("job".into(), 3)],
            series_per_pair: vec![
                ("__name__".into(), "up".into(), 3),
                ("__name__".into(), "x".into(), 1),
                ("job".into(), "a".into(), 2),
                ("job".into(), "bb".into(), 1),
                ("job".into(), "c".into(), 1),
            ],
        };
        let (pairs, [by_metric, by_name, bytes, by_pair]) = cardinality_json(c, 2);
        assert_eq!(pairs, 5);
        assert_eq!(
            by_metric,
            json!([{"name": "up", "value": 3}, {"name": "x", "value": 1}])
        );
        assert_eq!(
            by_name,
            json!([{"name": "job", "value": 3}, {"name": "__name__", "value": 2}])
        );
        // __name__: 2*3 + 1*1 = 7 bytes; job: 1*2 + 2*1 + 1*1 = 5.
        assert_eq!(
            bytes,
            json!([{"name": "__name__", "value": 7}, {"name": "job", "value": 5}])
        );
        assert_eq!(by_pair[0], json!({"name": "__name__=up", "value": 3}));
    }
}
