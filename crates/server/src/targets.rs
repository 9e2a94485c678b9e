//! `/api/v1/targets`, `/api/v1/targets/metadata`, `/api/v1/scrape_pools`
//! and the data of `/api/v1/metadata`: what the scrape manager knows about
//! its targets, in the shapes of Prometheus's `web/api/v1/api.go`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value as Json};
use vigil_model::{Labels, Matcher};
use vigil_scrape::{MetricMetadata, TargetHealth, TargetMetadata, TargetStatus};

use crate::api::{labels_json, parse_go_int, success, ApiError, Params};
use crate::AppState;

/// A Unix time in ms as Go's `time.Time` JSON (RFC 3339 with nanoseconds,
/// trailing zeros dropped), in UTC; `None` is Go's zero time.
fn go_time(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            let frac = ms.rem_euclid(1000);
            if frac == 0 {
                format!("{base}Z")
            } else {
                let f = format!("{frac:03}");
                format!("{base}.{}Z", f.trim_end_matches('0'))
            }
        }
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// The machine's host name, for `globalUrl` (Prometheus's default external
/// URL is `http://<hostname>:<port>/`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Prometheus's `getGlobalURL`: a target on a loopback name gets the
/// external host name instead, its port kept.
fn global_url(scrape_url: &str, host: &str) -> String {
    let Some((scheme, rest)) = scrape_url.split_once("://") else {
        return scrape_url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (h, port) = if let Some(r) = authority.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return scrape_url.to_string(),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if !matches!(h, "127.0.0.1" | "localhost" | "::1") {
        return scrape_url.to_string();
    }
    match port {
        Some(p) => format!("{scheme}://{host}:{p}{tail}"),
        None => format!("{scheme}://{host}{tail}"),
    }
}

fn health(h: TargetHealth) -> &'static str {
    h.as_str()
}

fn active_json(t: &TargetStatus, host: &str) -> Json {
    json!({
        "discoveredLabels": labels_json(&t.discovered_labels),
        "labels": labels_json(&t.labels),
        "scrapePool": t.job,
        "scrapeUrl": t.scrape_url,
        "globalUrl": global_url(&t.scrape_url, host),
        "lastError": t.last_error.clone().unwrap_or_default(),
        "lastScrape": go_time(t.last_scrape),
        "lastScrapeDuration": t.last_scrape_duration.as_secs_f64(),
        "health": health(t.health),
        "scrapeInterval": vigil_model::format_duration(t.scrape_interval_ms),
        "scrapeTimeout": vigil_model::format_duration(t.scrape_timeout_ms),
    })
}

/// `GET /api/v1/targets[?state=active|dropped|any][&scrapePool=<job>]`.
pub(crate) async fn targets(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let state = p.value("state").to_ascii_lowercase();
    let show_active = matches!(state.as_str(), "" | "any" | "active");
    let show_dropped = matches!(state.as_str(), "" | "any" | "dropped");
    let pool = p.value("scrapePool");
    let in_pool = |job: &str| pool.is_empty() || job == pool;
    let scrape = &st.lifecycle.scrape;

    let mut active = Vec::new();
    if show_active {
        let host = hostname();
        // Sorted by scrape pool (then URL), as Prometheus sorts its keys.
        active = scrape
            .targets()
            .iter()
            .filter(|t| in_pool(&t.job))
            .map(|t| active_json(t, &host))
            .collect();
    }
    let mut dropped = Vec::new();
    let mut counts = Map::new();
    if show_dropped {
        for d in scrape.dropped_targets() {
            if !in_pool(&d.job) {
                continue;
            }
            let n = counts
                .entry(d.job.clone())
                .or_insert_with(|| Json::from(0u64));
            *n = Json::from(n.as_u64().unwrap_or(0) + 1);
            dropped.push(json!({
                "discoveredLabels": labels_json(&d.discovered_labels),
                "scrapePool": d.job,
            }));
        }
        // Pools without dropped targets count 0, as in Prometheus.
        for job in scrape.scrape_pools().await {
            if in_pool(&job) {
                counts.entry(job).or_insert_with(|| Json::from(0u64));
            }
        }
    }
    let mut data = Map::new();
    data.insert("activeTargets".into(), Json::Array(active));
    data.insert("droppedTargets".into(), Json::Array(dropped));
    if show_dropped {
        data.insert("droppedTargetCounts".into(), Json::Object(counts));
    }
    Ok(success(Json::Object(data), Vec::new(), Vec::new()))
}

/// `GET /api/v1/scrape_pools`.
pub(crate) async fn scrape_pools(State(st): State<AppState>) -> Result<Response, ApiError> {
    let pools = st.lifecycle.scrape.scrape_pools().await;
    Ok(success(
        json!({ "scrapePools": pools }),
        Vec::new(),
        Vec::new(),
    ))
}

/// A `limit`-style parameter as Prometheus reads it: absent is -1 (no
/// limit), otherwise Go's `Atoi`.
fn int_param(p: &Params, name: &str) -> Result<i64, ApiError> {
    let v = p.value(name);
    if v.is_empty() {
        return Ok(-1);
    }
    parse_go_int(v).map_err(|_| ApiError::bad_data(format!("{name} must be a number")))
}

fn matches_all(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or("")))
}

fn entry_json(target: Option<&Labels>, metric: Option<&str>, m: &MetricMetadata) -> Json {
    let mut o = Map::new();
    if let Some(t) = target {
        o.insert("target".into(), labels_json(t));
    }
    if let Some(name) = metric {
        o.insert("metric".into(), Json::from(name));
    }
    o.insert("type".into(), Json::from(m.kind.as_str()));
    o.insert("help".into(), Json::from(m.help.as_str()));
    o.insert("unit".into(), Json::from(m.unit.as_str()));
    Json::Object(o)
}

/// The entries of `/api/v1/targets/metadata`, as Prometheus's
/// `targetMetadata`: `limit` stops before the next target once that many
/// entries are collected (a target's list is never cut).
fn target_metadata_json(
    targets: &[TargetMetadata],
    matchers: Option<&[Matcher]>,
    metric: &str,
    limit: i64,
) -> Vec<Json> {
    let mut res = Vec::new();
    for t in targets {
        if limit >= 0 && res.len() as i64 >= limit {
            break;
        }
        if let Some(ms) = matchers {
            if !matches_all(&t.labels, ms) {
                continue;
            }
        }
        if metric.is_empty() {
            for (name, m) in t.metrics.iter() {
                res.push(entry_json(Some(&t.labels), Some(name), m));
            }
        } else if let Ok(i) = t.metrics.binary_search_by(|(n, _)| n.as_str().cmp(metric)) {
            res.push(entry_json(Some(&t.labels), None, &t.metrics[i].1));
        }
    }
    res
}

/// `GET /api/v1/targets/metadata[?match_target=<selector>][&metric=<name>][&limit=<n>]`.
pub(crate) async fn target_metadata(
    State(st): State<AppState>,
    p: Params,
) -> Result<Response, ApiError> {
    let limit = int_param(&p, "limit")?;
    let match_target = p.value("match_target");
    let matchers = if match_target.is_empty() {
        None
    } else {
        Some(
            vigil_promql::parse_series_selector(match_target)
                .map_err(|e| ApiError::invalid_param("match_target", e))?,
        )
    };
    let res = target_metadata_json(
        &st.lifecycle.scrape.metadata(),
        matchers.as_deref(),
        p.value("metric"),
        limit,
    );
    Ok(success(Json::Array(res), Vec::new(), Vec::new()))
}

/// The data of `/api/v1/metadata`, as Prometheus's `metricMetadata`: every
/// distinct (type, help, unit) per metric family over all active targets,
/// at most `limit_per_metric` per family and `limit` families (when
/// positive and non-negative respectively).
fn metric_metadata_json(
    targets: &[TargetMetadata],
    metric: &str,
    limit: i64,
    limit_per_metric: i64,
) -> Json {
    type Set<'a> = BTreeSet<(&'a str, &'a str, &'a str)>;
    fn add<'a>(
        metrics: &mut BTreeMap<&'a str, Set<'a>>,
        name: &'a str,
        m: &'a MetricMetadata,
        limit_per_metric: i64,
    ) {
        let set = metrics.entry(name).or_default();
        if limit_per_metric > 0 && set.len() as i64 >= limit_per_metric {
            return;
        }
        set.insert((m.kind.as_str(), m.help.as_str(), m.unit.as_str()));
    }
    let mut metrics: BTreeMap<&str, Set<'_>> = BTreeMap::new();
    for t in targets {
        if metric.is_empty() {
            for (name, m) in t.metrics.iter() {
                add(&mut metrics, name, m, limit_per_metric);
            }
        } else if let Ok(i) = t.metrics.binary_search_by(|(n, _)| n.as_str().cmp(metric)) {
            let (name, m) = &t.metrics[i];
            add(&mut metrics, name, m, limit_per_metric);
        }
    }
    let mut res = Map::new();
    for (name, set) in metrics {
        if limit >= 0 && res.len() as i64 >= limit {
            break;
        }
        let list: Vec<Json> = set
            .into_iter()
            .map(|(kind, help, unit)| json!({"type": kind, "help": help, "unit": unit}))
            .collect();
        res.insert(name.to_string(), Json::Array(list));
    }
    Json::Object(res)
}

/// `GET /api/v1/metadata[?metric=<name>][&limit=<n>][&limit_per_metric=<n>]`.
pub(crate) async fn metadata(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let limit = int_param(&p, "limit")?;
    let limit_per_metric = int_param(&p, "limit_per_metric")?;
    let data = metric_metadata_json(
        &st.lifecycle.scrape.metadata(),
        p.value("metric"),
        limit,
        limit_per_metric,
    );
    Ok(success(data, Vec::new(), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vigil_model::labels;
    use vigil_scrape::parse::MetricType;

    fn md(kind: MetricType, help: &str) -> MetricMetadata {
        MetricMetadata {
            kind,
            help: help.into(),
            unit: String::new(),
        }
    }

    fn sample() -> Vec<TargetMetadata> {
        vec![
            TargetMetadata {
                job: "a".into(),
                labels: labels!("instance" => "h1:1", "job" => "a"),
                metrics: Arc::new(vec![
                    ("go_goroutines".into(), md(MetricType::Gauge, "Goroutines.")),
                    ("up_total".into(), md(MetricType::Counter, "Ups.")),
                ]),
            },
            TargetMetadata {
                job: "b".into(),
                labels: labels!("instance" => "h2:1", "job" => "b"),
                metrics: Arc::new(vec![
                    ("go_goroutines".into(), md(MetricType::Gauge, "Other help.")),
                    ("z".into(), md(MetricType::Unknown, "")),
                ]),
            },
        ]
    }

    #[test]
    fn metadata_merges_targets_with_limits() {
        let t = sample();
        let all = metric_metadata_json(&t, "", -1, -1);
        assert_eq!(all["go_goroutines"].as_array().unwrap().len(), 2);
        assert_eq!(
            all["up_total"],
            json!([{"type": "counter", "help": "Ups.", "unit": ""}])
        );
        assert_eq!(all["z"][0]["type"], "unknown");
        let one = metric_metadata_json(&t, "", -1, 1);
        assert_eq!(one["go_goroutines"].as_array().unwrap().len(), 1);
        let lim = metric_metadata_json(&t, "", 2, -1);
        assert_eq!(lim.as_object().unwrap().len(), 2);
        assert_eq!(metric_metadata_json(&t, "", 0, -1), json!({}));
        let m = metric_metadata_json(&t, "up_total", -1, -1);
        assert_eq!(m.as_object().unwrap().len(), 1);
        assert_eq!(metric_metadata_json(&t, "nope", -1, -1), json!({}));
    }

    #[test]
    fn target_metadata_filters_and_limits_by_target() {
        let t = sample();
        let all = target_metadata_json(&t, None, "", -1);
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0],
            json!({"target": {"instance": "h1:1", "job": "a"}, "metric": "go_goroutines",
                   "type": "gauge", "help": "Goroutines.", "unit": ""})
        );
        let ms = vigil_promql::parse_series_selector("{job=\"b\"}").unwrap();
        let b = target_metadata_json(&t, Some(&ms), "", -1);
        assert_eq!(b.len(), 2);
        // With metric=, entries have no "metric" key.
        let g = target_metadata_json(&t, None, "go_goroutines", -1);
        assert_eq!(g.len(), 2);
        assert!(g[0].get("metric").is_none());
        // limit stops before the next target, never inside one.
        assert_eq!(target_metadata_json(&t, None, "", 1).len(), 2);
        assert_eq!(target_metadata_json(&t, None, "", 0).len(), 0);
    }

    #[test]
    fn times_and_global_urls_as_prometheus() {
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(Some(1_700_000_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(go_time(Some(1_700_000_000_120)), "2023-11-14T22:13:20.12Z");
        assert_eq!(
            global_url("http://127.0.0.1:9100/metrics?x=1", "box"),
            "http://box:9100/metrics?x=1"
        );
        assert_eq!(global_url("https://localhost/m", "box"), "https://box/m");
        assert_eq!(global_url("http://[::1]:80/m", "box"), "http://box:80/m");
        assert_eq!(
            global_url("http://node1:9100/metrics", "box"),
            "http://node1:9100/metrics"
        );
    }
}
