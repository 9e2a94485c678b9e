//! The Prometheus HTTP API v1 handlers, with JSON shaped exactly as
//! Prometheus returns it.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value as Json};
use vigil_model::{Labels, Queryable};
use vigil_promql::{QueryError, QueryResult, QueryValue};

use crate::AppState;

/// Decoded form or query-string parameters (repeated keys kept).
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(s: &str) -> Params {
        let mut out = Vec::new();
        for pair in s.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((percent_decode(k), percent_decode(v)));
        }
        Params(out)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn merge(mut self, other: Params) -> Params {
        self.0.extend(other.0);
        self
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An API error: Prometheus's `errorType` and HTTP status.
#[derive(Debug)]
pub(crate) struct ApiError {
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn bad_data(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "bad_data",
            message: message.into(),
        }
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "internal",
            message: message.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        ApiError {
            kind: e.error_type(),
            message: e.to_string(),
        }
    }
}

/// Maps an error to its HTTP status in one place, as Prometheus's
/// `returnAPIError`.
fn status_of(kind: &str) -> StatusCode {
    match kind {
        "bad_data" => StatusCode::BAD_REQUEST,
        "execution" => StatusCode::UNPROCESSABLE_ENTITY,
        "canceled" => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        "timeout" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.message});
        (
            status_of(self.kind),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

fn success(data: Json, warnings: Vec<String>, infos: Vec<String>) -> Response {
    let mut m = Map::new();
    m.insert("status".into(), Json::from("success"));
    m.insert("data".into(), data);
    if !warnings.is_empty() {
        m.insert("warnings".into(), Json::from(warnings));
    }
    if !infos.is_empty() {
        m.insert("infos".into(), Json::from(infos));
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Json::Object(m).to_string(),
    )
        .into_response()
}

/// Formats a sample value as Prometheus does: shortest round-trip decimal,
/// `NaN`, `+Inf`, `-Inf`.
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Prometheus uses Go's FormatFloat(v, 'f', -1, 64): shortest
        // round-trip digits, never an exponent; Rust's Display agrees.
        format!("{v}")
    }
}

fn ts_json(t: i64) -> Json {
    let secs = vigil_model::time::to_seconds_f64(t);
    serde_json::Number::from_f64(secs).map_or(Json::Null, Json::Number)
}

fn labels_json(l: &Labels) -> Json {
    let mut m = Map::new();
    for lb in l.iter() {
        m.insert(lb.name.to_string(), Json::from(lb.value));
    }
    Json::Object(m)
}

fn result_json(r: &QueryResult) -> Json {
    match &r.value {
        QueryValue::Scalar { t, v } => {
            json!({"resultType": "scalar", "result": [ts_json(*t), format_value(*v)]})
        }
        QueryValue::String { t, s } => json!({"resultType": "string", "result": [ts_json(*t), s]}),
        QueryValue::Vector(v) => {
            let result: Vec<Json> = v
                .iter()
                .map(|s| json!({"metric": labels_json(&s.labels), "value": [ts_json(s.t), format_value(s.v)]}))
                .collect();
            json!({"resultType": "vector", "result": result})
        }
        QueryValue::Matrix(m) => {
            let result: Vec<Json> = m
                .iter()
                .map(|s| {
                    let values: Vec<Json> = s
                        .points
                        .iter()
                        .map(|p| json!([ts_json(p.t), format_value(p.v)]))
                        .collect();
                    json!({"metric": labels_json(&s.labels), "values": values})
                })
                .collect();
            json!({"resultType": "matrix", "result": result})
        }
    }
}

/// Parses a timestamp: Unix seconds (with fraction) or RFC 3339.
pub(crate) fn parse_time(s: &str) -> Result<i64, ApiError> {
    if let Ok(f) = s.parse::<f64>() {
        return vigil_model::time::from_seconds_f64(f)
            .ok_or_else(|| ApiError::bad_data(format!("cannot parse {s:?} to a valid timestamp")));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| ApiError::bad_data(format!("cannot parse {s:?} to a valid timestamp")))
}

/// Parses a duration: float seconds or a Prometheus duration like `1m30s`.
pub(crate) fn parse_duration(s: &str) -> Result<i64, ApiError> {
    let err = || ApiError::bad_data(format!("cannot parse {s:?} to a valid duration"));
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f < 0.0 {
            return Err(err());
        }
        return Ok((f * 1000.0).round() as i64);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return Err(err()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(err)?)
            .ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn annotations(r: &QueryResult) -> (Vec<String>, Vec<String>) {
    (
        r.annotations.warnings().map(|a| a.to_string()).collect(),
        r.annotations.infos().map(|a| a.to_string()).collect(),
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

pub(crate) async fn healthy() -> &'static str {
    "vigil is Healthy.\n"
}

pub(crate) async fn ready(State(st): State<AppState>) -> Response {
    if st.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "vigil is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

pub(crate) async fn metrics(State(st): State<AppState>) -> Response {
    let db = st.db.clone();
    let stats = st.stats.clone();
    let body = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        db.write_metrics(&mut out);
        let _ = writeln!(
            out,
            "# HELP vigil_remote_write_samples_received_total Samples received over remote write."
        );
        let _ = writeln!(
            out,
            "# TYPE vigil_remote_write_samples_received_total counter"
        );
        let _ = writeln!(
            out,
            "vigil_remote_write_samples_received_total {}",
            stats.samples_received.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vigil_remote_write_samples_rejected_total Samples rejected over remote write."
        );
        let _ = writeln!(
            out,
            "# TYPE vigil_remote_write_samples_rejected_total counter"
        );
        let _ = writeln!(
            out,
            "vigil_remote_write_samples_rejected_total {}",
            stats.samples_rejected.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP vigil_queries_total Queries evaluated.");
        let _ = writeln!(out, "# TYPE vigil_queries_total counter");
        let _ = writeln!(
            out,
            "vigil_queries_total {}",
            stats.queries.load(Ordering::Relaxed)
        );
        out
    })
    .await
    .unwrap_or_default();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn query(st: AppState, p: Params) -> Result<Response, ApiError> {
    let q = p
        .get("query")
        .ok_or_else(|| ApiError::bad_data("missing query parameter"))?
        .to_string();
    let t = match p.get("time") {
        Some(t) if !t.is_empty() => parse_time(t)?,
        _ => vigil_model::time::now_ms(),
    };
    crate::mark_query(&st);
    let r = blocking(move || {
        Ok(st
            .engine
            .instant_query(st.db.as_ref() as &dyn Queryable, &q, t)?)
    })
    .await?;
    let (w, i) = annotations(&r);
    Ok(success(result_json(&r), w, i))
}

async fn query_range(st: AppState, p: Params) -> Result<Response, ApiError> {
    let q = p
        .get("query")
        .ok_or_else(|| ApiError::bad_data("missing query parameter"))?
        .to_string();
    let start = parse_time(
        p.get("start")
            .ok_or_else(|| ApiError::bad_data("missing start parameter"))?,
    )?;
    let end = parse_time(
        p.get("end")
            .ok_or_else(|| ApiError::bad_data("missing end parameter"))?,
    )?;
    let step = parse_duration(
        p.get("step")
            .ok_or_else(|| ApiError::bad_data("missing step parameter"))?,
    )?;
    crate::mark_query(&st);
    let r = blocking(move || {
        Ok(st
            .engine
            .range_query(st.db.as_ref() as &dyn Queryable, &q, start, end, step)?)
    })
    .await?;
    let (w, i) = annotations(&r);
    Ok(success(result_json(&r), w, i))
}

fn range_of(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = match p.get("start") {
        Some(s) if !s.is_empty() => parse_time(s)?,
        _ => vigil_model::time::MIN_TIME,
    };
    let end = match p.get("end") {
        Some(s) if !s.is_empty() => parse_time(s)?,
        _ => vigil_model::time::MAX_TIME,
    };
    Ok((start, end))
}

/// The `match[]` selectors, each as a list of matchers.
fn selectors(p: &Params) -> Result<Vec<Vec<vigil_model::Matcher>>, ApiError> {
    let mut out = Vec::new();
    for m in p.all("match[]") {
        out.push(
            vigil_promql::parse_series_selector(m)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))?,
        );
    }
    Ok(out)
}

fn limit_of(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        Some(l) if !l.is_empty() => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_data(format!("cannot parse \"limit\" {l:?}"))),
        _ => Ok(0),
    }
}

async fn labels(st: AppState, p: Params) -> Result<Response, ApiError> {
    let (start, end) = range_of(&p)?;
    let sels = selectors(&p)?;
    let limit = limit_of(&p)?;
    let mut names = blocking(move || {
        let q = st
            .db
            .querier(start, end)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut names: Vec<String> = Vec::new();
        if sels.is_empty() {
            names = q
                .label_names(&[])
                .map_err(|e| ApiError::internal(e.to_string()))?;
        } else {
            for s in &sels {
                names.extend(
                    q.label_names(s)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                );
            }
            names.sort();
            names.dedup();
        }
        Ok(names)
    })
    .await?;
    let mut warnings = Vec::new();
    if limit > 0 && names.len() > limit {
        names.truncate(limit);
        warnings.push("results truncated due to limit".to_string());
    }
    Ok(success(Json::from(names), warnings, Vec::new()))
}

pub(crate) async fn label_values(
    State(st): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref().unwrap_or(""));
    let (start, end) = range_of(&p)?;
    let sels = selectors(&p)?;
    let limit = limit_of(&p)?;
    let mut values = blocking(move || {
        let q = st
            .db
            .querier(start, end)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut values: Vec<String> = Vec::new();
        if sels.is_empty() {
            values = q
                .label_values(&name, &[])
                .map_err(|e| ApiError::internal(e.to_string()))?;
        } else {
            for s in &sels {
                values.extend(
                    q.label_values(&name, s)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                );
            }
            values.sort();
            values.dedup();
        }
        Ok(values)
    })
    .await?;
    let mut warnings = Vec::new();
    if limit > 0 && values.len() > limit {
        values.truncate(limit);
        warnings.push("results truncated due to limit".to_string());
    }
    Ok(success(Json::from(values), warnings, Vec::new()))
}

async fn series(st: AppState, p: Params) -> Result<Response, ApiError> {
    let (start, end) = range_of(&p)?;
    let sels = selectors(&p)?;
    if sels.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let limit = limit_of(&p)?;
    let mut all = blocking(move || {
        let q = st
            .db
            .querier(start, end)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut all: Vec<Labels> = Vec::new();
        for s in &sels {
            let set = q
                .select(true, None, s)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            all.extend(set.series.iter().map(|x| x.labels().clone()));
        }
        all.sort();
        all.dedup();
        Ok(all)
    })
    .await?;
    let mut warnings = Vec::new();
    if limit > 0 && all.len() > limit {
        all.truncate(limit);
        warnings.push("results truncated due to limit".to_string());
    }
    Ok(success(
        Json::from(all.iter().map(labels_json).collect::<Vec<_>>()),
        warnings,
        Vec::new(),
    ))
}

fn body_params(q: Option<String>, body: &Bytes) -> Params {
    Params::parse(q.as_deref().unwrap_or("")).merge(Params::parse(&String::from_utf8_lossy(body)))
}

pub(crate) async fn query_get(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    query(st, Params::parse(q.as_deref().unwrap_or(""))).await
}

pub(crate) async fn query_post(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    query(st, body_params(q, &body)).await
}

pub(crate) async fn query_range_get(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    query_range(st, Params::parse(q.as_deref().unwrap_or(""))).await
}

pub(crate) async fn query_range_post(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    query_range(st, body_params(q, &body)).await
}

pub(crate) async fn labels_get(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    labels(st, Params::parse(q.as_deref().unwrap_or(""))).await
}

pub(crate) async fn labels_post(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    labels(st, body_params(q, &body)).await
}

pub(crate) async fn series_get(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    series(st, Params::parse(q.as_deref().unwrap_or(""))).await
}

pub(crate) async fn series_post(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    series(st, body_params(q, &body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_repeated_keys_and_escapes() {
        let p = Params::parse("match%5B%5D=up&match[]=%7Bjob%3D%22a%22%7D&query=sum(x)+by+(y)");
        assert_eq!(p.all("match[]"), vec!["up", "{job=\"a\"}"]);
        assert_eq!(p.get("query"), Some("sum(x) by (y)"));
        assert_eq!(Params::parse("a=%zz").get("a"), Some("%zz"));
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn values_format_as_prometheus() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1.5e-7), "0.00000015");
    }
}
