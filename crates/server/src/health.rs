//! `/api/health-check`: a JSON report of every subsystem, 200 when none is
//! failing and 503 when one is.
//!
//! Each check is `{"status": "ok" | "failing" | "not configured", ...}`
//! with its figures, and `"error"` when failing:
//! - `storage`: ready (WAL replay done), head series and time range, WAL
//!   size and segment, the last maintenance (head persistence, compaction,
//!   retention) and compaction figures, and free space of the data
//!   directory. Failing when not ready, when the WAL or the file system
//!   cannot be read, or when the file system has no space left.
//! - `query_engine`: evaluates `vector(1)` with a one-second timeout, so a
//!   jammed query queue shows. Failing when that does not answer 1.
//! - `scrape`: targets by health, and the down targets with their last
//!   error. A target being down is the target's problem and reported, not a
//!   failure of vigil; a scrape loop that has not scraped for three of its
//!   intervals is stalled, and that is failing. "not configured" without
//!   scrape jobs.
//! - `rules`, `notifiers`: "not configured" until vigil runs them; that is
//!   not a failure.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value as Json};
use vigil_model::Queryable;
use vigil_promql::{QueryOptions, QueryValue};

use crate::AppState;

fn ok(mut details: Map<String, Json>) -> Json {
    details.insert("status".into(), Json::from("ok"));
    Json::Object(details)
}

fn failing(mut details: Map<String, Json>, error: String) -> Json {
    details.insert("status".into(), Json::from("failing"));
    details.insert("error".into(), Json::from(error));
    Json::Object(details)
}

fn storage_check(st: &AppState) -> Json {
    let db = &st.db;
    let head = db.head();
    let stats = db.stats();
    let mut d = Map::new();
    let mut errors: Vec<String> = Vec::new();
    let ready = st.ready.load(Ordering::Relaxed);
    d.insert("ready".into(), Json::from(ready));
    if !ready {
        errors.push("WAL replay in progress".into());
    }
    d.insert("head_series".into(), Json::from(head.num_series()));
    let (min_t, max_t) = head
        .time_range()
        .map_or((Json::Null, Json::Null), |(a, b)| (a.into(), b.into()));
    d.insert("head_min_time".into(), min_t);
    d.insert("head_max_time".into(), max_t);
    d.insert("blocks".into(), Json::from(db.blocks().len()));
    match head.wal().size_bytes() {
        Ok(n) => {
            d.insert("wal_size_bytes".into(), Json::from(n));
        }
        Err(e) => errors.push(format!("reading the WAL size: {e}")),
    }
    d.insert(
        "wal_segment".into(),
        Json::from(head.wal().current_segment()),
    );
    d.insert(
        "wal_corruptions_total".into(),
        Json::from(head.stats().wal_corruptions.load(Ordering::Relaxed)),
    );
    let last = stats.last_maintenance_ms.load(Ordering::Relaxed);
    d.insert(
        "last_maintenance".into(),
        if last > 0 {
            let t = std::time::UNIX_EPOCH + Duration::from_millis(last as u64);
            Json::from(crate::status::go_time(t))
        } else {
            Json::Null
        },
    );
    d.insert(
        "last_compaction_duration_seconds".into(),
        Json::from(stats.last_compaction_duration_ms.load(Ordering::Relaxed) as f64 / 1000.0),
    );
    d.insert(
        "compactions_total".into(),
        Json::from(stats.compactions.load(Ordering::Relaxed)),
    );
    d.insert(
        "compactions_failed_total".into(),
        Json::from(stats.compactions_failed.load(Ordering::Relaxed)),
    );
    d.insert(
        "data_dir".into(),
        Json::from(db.dir().display().to_string()),
    );
    match rustix::fs::statvfs(db.dir()) {
        Ok(v) => {
            let free = v.f_bavail.saturating_mul(v.f_frsize);
            d.insert("disk_free_bytes".into(), Json::from(free));
            d.insert(
                "disk_total_bytes".into(),
                Json::from(v.f_blocks.saturating_mul(v.f_frsize)),
            );
            if free == 0 {
                errors.push("no space left on the data directory's file system".into());
            }
        }
        Err(e) => errors.push(format!("statvfs {}: {e}", db.dir().display())),
    }
    if errors.is_empty() {
        ok(d)
    } else {
        failing(d, errors.join("; "))
    }
}

fn engine_check(st: &AppState) -> Json {
    let mut d = Map::new();
    let opts = st.engine.options();
    d.insert("max_concurrent".into(), Json::from(opts.max_concurrent));
    d.insert(
        "timeout_seconds".into(),
        Json::from(opts.timeout.as_secs_f64()),
    );
    let expr = match vigil_promql::parse("vector(1)") {
        Ok(e) => e,
        Err(e) => return failing(d, e.to_string()),
    };
    let probe = QueryOptions {
        timeout: Some(Duration::from_secs(1)),
    };
    let r = st.engine.instant_query_with(
        st.db.as_ref() as &dyn Queryable,
        &expr,
        vigil_model::time::now_ms(),
        &probe,
    );
    match r {
        Ok(r) => {
            d.insert("probe_seconds".into(), Json::from(r.stats.total_seconds));
            match r.value {
                QueryValue::Vector(v) if v.len() == 1 && v[0].v == 1.0 => ok(d),
                other => failing(
                    d,
                    format!("probe query vector(1) returned {}", other.type_name()),
                ),
            }
        }
        Err(e) => failing(d, format!("probe query vector(1): {e}")),
    }
}

fn scrape_check(st: &AppState) -> Json {
    use vigil_scrape::TargetHealth;
    let targets = st.lifecycle.scrape.targets();
    if targets.is_empty() {
        return not_configured();
    }
    let now = vigil_model::time::now_ms();
    let (mut up, mut down, mut unknown) = (0, 0, 0);
    let mut down_list = Vec::new();
    let mut stalled = Vec::new();
    for t in &targets {
        match t.health {
            TargetHealth::Up => up += 1,
            TargetHealth::Down => {
                down += 1;
                if down_list.len() < 10 {
                    down_list.push(json!({
                        "job": t.job,
                        "url": t.scrape_url,
                        "error": t.last_error.clone().unwrap_or_default(),
                    }));
                }
            }
            _ => unknown += 1,
        }
        if let Some(last) = t.last_scrape {
            let late = now - last;
            if late > 3 * t.scrape_interval_ms + t.scrape_timeout_ms {
                stalled.push(format!(
                    "{} ({}ms since the last scrape)",
                    t.scrape_url, late
                ));
            }
        }
    }
    let mut d = Map::new();
    d.insert("targets".into(), Json::from(targets.len()));
    d.insert("up".into(), Json::from(up));
    d.insert("down".into(), Json::from(down));
    d.insert("unknown".into(), Json::from(unknown));
    d.insert("down_targets".into(), Json::from(down_list));
    if stalled.is_empty() {
        ok(d)
    } else {
        failing(d, format!("stalled scrape loops: {}", stalled.join(", ")))
    }
}

fn not_configured() -> Json {
    json!({"status": "not configured"})
}

/// `GET /api/health-check`.
pub(crate) async fn health_check(State(st): State<AppState>) -> Response {
    let report = tokio::task::spawn_blocking(move || {
        let checks = json!({
            "storage": storage_check(&st),
            "query_engine": engine_check(&st),
            "scrape": scrape_check(&st),
            "rules": not_configured(),
            "notifiers": not_configured(),
        });
        let any_failing = checks
            .as_object()
            .is_some_and(|m| m.values().any(|c| c["status"] == "failing"));
        (any_failing, checks)
    })
    .await;
    let (status, body) = match report {
        Ok((false, checks)) => (StatusCode::OK, json!({"status": "ok", "checks": checks})),
        Ok((true, checks)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "failing", "checks": checks}),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "failing", "error": e.to_string()}),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
