//! `/api/v1/admin/tsdb/*`: series deletion, tombstone cleaning, snapshots
//! and (vigil's own) flushing the head into a block, served only with
//! `--web.enable-admin-api`. Otherwise each answers as Prometheus does:
//! `errorType` `unavailable`, "admin APIs disabled", status 500.

use std::hash::{BuildHasher, Hasher};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{blocking, success, time_param, ApiError, Params};
use crate::AppState;

fn check_enabled(st: &AppState) -> Result<(), ApiError> {
    if st.enable_admin_api {
        Ok(())
    } else {
        Err(ApiError::unavailable("admin APIs disabled"))
    }
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=...&start=&end=`.
pub(crate) async fn delete_series(
    State(st): State<AppState>,
    p: Params,
) -> Result<Response, ApiError> {
    check_enabled(&st)?;
    let raw = p.all("match[]");
    if raw.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = time_param(&p, "start", vigil_model::time::MIN_TIME)?;
    let end = time_param(&p, "end", vigil_model::time::MAX_TIME)?;
    let mut sets = Vec::with_capacity(raw.len());
    for s in raw {
        sets.push(
            vigil_promql::parse_series_selector(s)
                .map_err(|e| ApiError::invalid_param("match[]", e))?,
        );
    }
    blocking(move || {
        for ms in &sets {
            st.db
                .delete(start, end, ms)
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`.
pub(crate) async fn clean_tombstones(State(st): State<AppState>) -> Result<Response, ApiError> {
    check_enabled(&st)?;
    blocking(move || {
        st.db
            .clean_tombstones()
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST|PUT /api/v1/admin/tsdb/flush` (vigil's own): writes the whole head
/// into one block and truncates the WAL and the head chunk files, as
/// Prometheus's compaction of the head would. Answers the block written,
/// `{"block": null}` when the head was empty.
pub(crate) async fn flush(State(st): State<AppState>) -> Result<Response, ApiError> {
    check_enabled(&st)?;
    let meta = blocking(move || {
        st.db
            .flush()
            .map_err(|e| ApiError::internal(format!("flush head: {e}")))
    })
    .await?;
    let block = meta.map(|m| {
        json!({
            "ulid": m.ulid.to_string(),
            "minTime": m.min_time,
            "maxTime": m.max_time,
            "numSeries": m.stats.num_series,
            "numSamples": m.stats.num_samples,
        })
    });
    Ok(success(json!({ "block": block }), Vec::new(), Vec::new()))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// A snapshot directory name as Prometheus makes them: the UTC time and 16
/// random hex digits (`20240102T030405Z-0123456789abcdef`).
fn snapshot_name() -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    // A randomly seeded hasher gives the random part without a new
    // dependency; Go's rand.Int63 is likewise non-negative.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{now}-{:016x}", h.finish() & (u64::MAX >> 1))
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot?skip_head=<bool>`: writes a
/// snapshot to `<data dir>/snapshots/<name>` and answers `{"name": ...}`.
pub(crate) async fn snapshot(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    check_enabled(&st)?;
    let skip_head = match p.value("skip_head") {
        "" => false,
        s => parse_go_bool(s).map_err(|e| {
            ApiError::invalid_param("skip_head", format!("unable to parse boolean: {e}"))
        })?,
    };
    let name = snapshot_name();
    let dir = st.db.dir().join("snapshots").join(&name);
    blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("create snapshot directory: {e}")))?;
        st.db
            .snapshot(&dir, !skip_head)
            .map_err(|e| ApiError::internal(format!("create snapshot: {e}")))?;
        Ok(())
    })
    .await?;
    Ok(success(json!({ "name": name }), Vec::new(), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_and_bools() {
        let n = snapshot_name();
        assert_eq!(n.len(), 16 + 1 + 16, "{n}");
        assert_eq!(&n[8..9], "T");
        assert_ne!(snapshot_name(), n);
        assert_eq!(parse_go_bool("True"), Ok(true));
        assert_eq!(parse_go_bool("0"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
    }
}
