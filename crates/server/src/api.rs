//! The Prometheus HTTP API v1 handlers, with JSON shaped exactly as
//! Prometheus returns it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value as Json};
use vigil_model::{Labels, Queryable};
use vigil_promql::{QueryError, QueryOptions, QueryResult, QueryStats, QueryValue};

use crate::AppState;

/// Decoded form or query-string parameters (repeated keys kept).
///
/// As an extractor it reads the query string and, for POST and PUT with a
/// form-encoded (or untyped) body, the body too; body values come first, as
/// Go's `r.FormValue` prefers them.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Params, ApiError> {
        let query = Params::parse(req.uri().query().unwrap_or(""));
        let form_body = matches!(*req.method(), Method::POST | Method::PUT)
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|c| c.starts_with("application/x-www-form-urlencoded"));
        if !form_body {
            return Ok(query);
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?;
        Ok(Params::parse(&String::from_utf8_lossy(&body)).merge(query))
    }
}

impl Params {
    pub(crate) fn parse(s: &str) -> Params {
        let mut out = Vec::new();
        for pair in s.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((percent_decode(k), percent_decode(v)));
        }
        Params(out)
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// The value of `k`, or `""` when absent (Go's `FormValue`).
    pub(crate) fn value(&self, k: &str) -> &str {
        self.get(k).unwrap_or("")
    }

    pub(crate) fn all(&self, k: &str) -> Vec<&str> {
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
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn bad_data(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "bad_data",
            message: message.into(),
        }
    }

    /// Prometheus's `invalidParamError`: `invalid parameter "name": why`.
    pub(crate) fn invalid_param(name: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::bad_data(format!("invalid parameter {name:?}: {why}"))
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "internal",
            message: message.into(),
        }
    }

    /// Prometheus's `errorUnavailable` (which it answers with status 500).
    pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "unavailable",
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
        "not_found" => StatusCode::NOT_FOUND,
        "not_acceptable" => StatusCode::NOT_ACCEPTABLE,
        // Prometheus answers "internal" and "unavailable" alike with 500.
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

pub(crate) fn success(data: Json, warnings: Vec<String>, infos: Vec<String>) -> Response {
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
        // round-trip digits, never an exponent.
        let mut out = Vec::with_capacity(24);
        write_go_f(&mut out, v);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A tiny integer formatter (no `fmt` machinery on the hot path).
/// Appends finite `v` as Go's `FormatFloat(v, 'f', -1, 64)` (and Rust's
/// `Display`) writes it: the shortest digits that round-trip, laid out
/// without an exponent. The digits come from Ryū (shortest, and of the
/// shortest the nearest, as Go and Rust choose), several times faster than
/// `core::fmt`; its scientific notation is re-laid out here.
fn write_go_f(out: &mut Vec<u8>, v: f64) {
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v).as_bytes();
    // Ryū lays out values from 1e-5 to 1e16 without an exponent, as Go
    // does, except that it ends whole numbers in ".0".
    if !s.contains(&b'e') {
        out.extend_from_slice(s.strip_suffix(b".0").unwrap_or(s));
        return;
    }
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (mant, exp) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => {
            let e = std::str::from_utf8(&s[i + 1..])
                .ok()
                .and_then(|x| x.parse::<i32>().ok())
                .unwrap_or(0);
            (&s[..i], e)
        }
        None => (s, 0),
    };
    // Digits without the point, and where the point goes.
    let mut digits: [u8; 32] = [0; 32];
    let mut n = 0;
    let mut point = mant.len() as i32;
    for (i, &c) in mant.iter().enumerate() {
        if c == b'.' {
            point = i as i32;
        } else if n < digits.len() {
            digits[n] = c;
            n += 1;
        }
    }
    point += exp;
    let mut start = 0;
    while start < n && digits[start] == b'0' {
        start += 1;
        point -= 1;
    }
    while n > start && digits[n - 1] == b'0' {
        n -= 1;
    }
    if neg {
        out.push(b'-');
    }
    let d = &digits[start..n];
    if d.is_empty() {
        out.push(b'0');
        return;
    }
    let len = d.len() as i32;
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-point) as usize));
        out.extend_from_slice(d);
    } else if point >= len {
        out.extend_from_slice(d);
        out.extend(std::iter::repeat_n(b'0', (point - len) as usize));
    } else {
        out.extend_from_slice(&d[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&d[point as usize..]);
    }
}

pub(crate) fn labels_json(l: &Labels) -> Json {
    let mut m = Map::new();
    for lb in l.iter() {
        m.insert(lb.name.to_string(), Json::from(lb.value));
    }
    Json::Object(m)
}

/// Writes JSON text into a buffer. Writing to a `Vec` cannot fail, and
/// neither can serialising a `str` or a number, so results are ignored.
struct JsonOut(Vec<u8>);

impl JsonOut {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    fn str(&mut self, s: &str) {
        let _ = serde_json::to_writer(&mut self.0, s);
    }

    /// A timestamp in seconds, from its milliseconds: the whole seconds,
    /// then `.` and the milliseconds without trailing zeros when there are
    /// any (the number Prometheus writes, and `to_seconds_f64`'s value).
    fn ts(&mut self, t: i64) {
        let (neg, a) = (t < 0, t.unsigned_abs());
        if neg {
            self.raw("-");
        }
        let mut b = itoa::Buffer::new();
        self.raw(b.format(a / 1000));
        let mut frac = a % 1000;
        if frac != 0 {
            let mut digits = 3;
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            self.raw(".");
            let s = b.format(frac);
            let pad = digits - s.len();
            self.0.extend(std::iter::repeat_n(b'0', pad));
            self.raw(s);
        }
    }

    /// A sample value as a string, as [`format_value`] renders it.
    fn value(&mut self, v: f64) {
        if v.is_finite() {
            self.raw("\"");
            write_go_f(&mut self.0, v);
            self.raw("\"");
        } else {
            self.raw("\"");
            self.raw(&format_value(v));
            self.raw("\"");
        }
    }

    /// `[<ts>,"<value>"]`.
    fn point(&mut self, t: i64, v: f64) {
        self.raw("[");
        self.ts(t);
        self.raw(",");
        self.value(v);
        self.raw("]");
    }

    fn labels(&mut self, l: &Labels) {
        self.raw("{");
        for (i, lb) in l.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.str(lb.name);
            self.raw(":");
            self.str(lb.value);
        }
        self.raw("}");
    }

    fn strings(&mut self, v: &[String]) {
        self.raw("[");
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.str(s);
        }
        self.raw("]");
    }
}

/// The `data` object of a query result without its closing brace: its
/// `resultType` and `result`, written straight into `out` (a result can
/// hold millions of points; building a `serde_json::Value` for it first
/// costs an allocation per label set and per point).
fn write_result(out: &mut JsonOut, r: &QueryResult) {
    out.raw("{\"resultType\":");
    out.str(r.value.type_name());
    out.raw(",\"result\":");
    match &r.value {
        QueryValue::Scalar { t, v } => out.point(*t, *v),
        QueryValue::String { t, s } => {
            out.raw("[");
            out.ts(*t);
            out.raw(",");
            out.str(s);
            out.raw("]");
        }
        QueryValue::Vector(v) => {
            out.raw("[");
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.raw(",");
                }
                out.raw("{\"metric\":");
                out.labels(&s.labels);
                out.raw(",\"value\":");
                out.point(s.t, s.v);
                out.raw("}");
            }
            out.raw("]");
        }
        QueryValue::Matrix(m) => {
            out.raw("[");
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.raw(",");
                }
                out.raw("{\"metric\":");
                out.labels(&s.labels);
                out.raw(",\"values\":[");
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.raw(",");
                    }
                    out.point(p.t, p.v);
                }
                out.raw("]}");
            }
            out.raw("]");
        }
    }
}

/// Parses a timestamp: Unix seconds (with fraction) or RFC 3339.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        return vigil_model::time::from_seconds_f64(f).ok_or_else(err);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| err())
}

/// Parses a duration in ms: float seconds (possibly negative, as Go's
/// `ParseFloat` reads them) or a Prometheus duration like `1m30s`.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid duration");
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() >= i64::MAX as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
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

/// A timestamp parameter, `default` when absent or empty.
pub(crate) fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        Some(v) if !v.is_empty() => parse_time(v).map_err(|e| ApiError::invalid_param(name, e)),
        _ => Ok(default),
    }
}

/// Prometheus's `parseLimitParam`: absent or 0 means no limit.
pub(crate) fn limit_param(p: &Params) -> Result<usize, ApiError> {
    let s = p.value("limit");
    if s.is_empty() {
        return Ok(0);
    }
    let n = parse_go_int(s).map_err(|e| ApiError::invalid_param("limit", e))?;
    if n < 0 {
        return Err(ApiError::invalid_param(
            "limit",
            "limit must be non-negative",
        ));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Go's `strconv.Atoi`, with its error text.
pub(crate) fn parse_go_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {s:?}: {why}")
    })
}

fn annotations(r: &QueryResult) -> (Vec<String>, Vec<String>) {
    (
        r.annotations.warnings().map(|a| a.to_string()).collect(),
        r.annotations.infos().map(|a| a.to_string()).collect(),
    )
}

/// Runs blocking storage work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
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

/// The `timeout` parameter, when given.
fn timeout_param(p: &Params) -> Result<QueryOptions, ApiError> {
    let mut opts = QueryOptions::default();
    let to = p.value("timeout");
    if !to.is_empty() {
        let ms = parse_duration(to).map_err(|e| ApiError::invalid_param("timeout", e))?;
        opts.timeout = Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    }
    Ok(opts)
}

/// Query statistics as Prometheus renders them with `stats=<anything>`:
/// the timings and the sample counts. vigil evaluates all steps at once, so
/// `totalQueryableSamples` counts the samples read from storage, and there
/// is no per-step breakdown (Prometheus gives one only with its
/// `promql-per-step-stats` feature flag).
fn stats_json(s: &QueryStats) -> Json {
    json!({
        "timings": {
            "evalTotalTime": s.prepare_seconds + s.eval_seconds + s.sort_seconds,
            "resultSortTime": s.sort_seconds,
            "queryPreparationTime": s.prepare_seconds,
            "innerEvalTime": s.eval_seconds,
            "execQueueTime": s.queue_seconds,
            "execTotalTime": s.total_seconds,
        },
        "samples": {
            "totalQueryableSamples": s.total_samples_loaded,
            "peakSamples": s.peak_samples,
        },
    })
}

/// Cuts vectors and matrices to `limit` series; says whether it cut.
fn truncate(value: &mut QueryValue, limit: usize) -> bool {
    match value {
        QueryValue::Vector(v) if v.len() > limit => {
            v.truncate(limit);
            true
        }
        QueryValue::Matrix(m) if m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    }
}

/// Renders a finished query as Prometheus does: result, optional stats,
/// warnings (a truncation warning last) and infos.
fn query_response(mut r: QueryResult, p: &Params, limit: usize) -> Response {
    let (mut w, i) = annotations(&r);
    if limit > 0 && truncate(&mut r.value, limit) {
        w.push("results truncated due to limit".into());
    }
    let body = query_json(&r, !p.value("stats").is_empty(), &w, &i);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The body of a successful query answer: the result, the stats when
/// asked for, warnings and infos.
fn query_json(r: &QueryResult, stats: bool, warnings: &[String], infos: &[String]) -> Vec<u8> {
    // Sized up front from the answer's shape (a point is ~30 bytes, a label
    // set ~100): a large matrix otherwise grows by doubling through
    // copies and fresh pages of up to twice its size.
    let estimate = match &r.value {
        QueryValue::Matrix(m) => m.iter().map(|s| 120 + 32 * s.points.len()).sum(),
        QueryValue::Vector(v) => 150 * v.len(),
        _ => 0,
    };
    let mut out = JsonOut(Vec::with_capacity(256 + estimate));
    out.raw("{\"status\":\"success\",\"data\":");
    write_result(&mut out, r);
    if stats {
        out.raw(",\"stats\":");
        let _ = serde_json::to_writer(&mut out.0, &stats_json(&r.stats));
    }
    out.raw("}");
    if !warnings.is_empty() {
        out.raw(",\"warnings\":");
        out.strings(warnings);
    }
    if !infos.is_empty() {
        out.raw(",\"infos\":");
        out.strings(infos);
    }
    out.raw("}");
    out.0
}

/// The JSON body `/api/v1/query` and `/api/v1/query_range` answer for a
/// result without annotations or stats; public for the benchmarks.
#[doc(hidden)]
pub fn query_result_json(r: &QueryResult) -> Vec<u8> {
    query_json(r, false, &[], &[])
}

fn parse_query(p: &Params) -> Result<promql_parser::parser::Expr, ApiError> {
    vigil_promql::parse(p.value("query")).map_err(|e| ApiError::invalid_param("query", e))
}

/// `/api/v1/query`, GET and POST.
pub(crate) async fn query(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let limit = limit_param(&p)?;
    let t = time_param(&p, "time", vigil_model::time::now_ms())?;
    let opts = timeout_param(&p)?;
    let expr = parse_query(&p)?;
    crate::mark_query(&st);
    let metrics = st.metrics.clone();
    let r = blocking(move || {
        let r = st
            .engine
            .instant_query_with(st.db.as_ref() as &dyn Queryable, &expr, t, &opts);
        metrics.observe_query(&r);
        Ok(r?)
    })
    .await?;
    Ok(query_response(r, &p, limit))
}

/// `/api/v1/query_range`, GET and POST.
pub(crate) async fn query_range(
    State(st): State<AppState>,
    p: Params,
) -> Result<Response, ApiError> {
    let limit = limit_param(&p)?;
    let start = parse_time(p.value("start")).map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time(p.value("end")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration(p.value("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > 11_000 {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let opts = timeout_param(&p)?;
    let expr = parse_query(&p)?;
    crate::mark_query(&st);
    let metrics = st.metrics.clone();
    let r = blocking(move || {
        let r = st.engine.range_query_with(
            st.db.as_ref() as &dyn Queryable,
            &expr,
            start,
            end,
            step,
            &opts,
        );
        metrics.observe_query(&r);
        Ok(r?)
    })
    .await?;
    Ok(query_response(r, &p, limit))
}

/// The `start` and `end` parameters, the whole time range by default.
pub(crate) fn range_of(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((
        time_param(p, "start", vigil_model::time::MIN_TIME)?,
        time_param(p, "end", vigil_model::time::MAX_TIME)?,
    ))
}

/// The `match[]` selectors, each as a list of matchers. As Prometheus's
/// `parseMatchersParam`, each must have a matcher that rejects `""`.
pub(crate) fn selectors(p: &Params) -> Result<Vec<Vec<vigil_model::Matcher>>, ApiError> {
    let mut out = Vec::new();
    for m in p.all("match[]") {
        let ms = vigil_promql::parse_series_selector(m)
            .map_err(|e| ApiError::invalid_param("match[]", e))?;
        if ms.iter().all(|m| m.matches_empty()) {
            return Err(ApiError::invalid_param(
                "match[]",
                "match[] must contain at least one non-empty matcher",
            ));
        }
        out.push(ms);
    }
    Ok(out)
}

fn storage_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Cuts a sorted list at `limit`, with Prometheus's warning when it cut.
fn limited<T>(mut v: Vec<T>, limit: usize) -> (Vec<T>, Vec<String>) {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        return (v, vec!["results truncated due to limit".to_string()]);
    }
    (v, Vec::new())
}

/// `/api/v1/labels`, GET and POST.
pub(crate) async fn labels(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let (start, end) = range_of(&p)?;
    let sels = selectors(&p)?;
    let limit = limit_param(&p)?;
    let names = blocking(move || {
        let q = st.db.querier(start, end).map_err(storage_err)?;
        if sels.is_empty() {
            return q.label_names(&[]).map_err(storage_err);
        }
        let mut names: Vec<String> = Vec::new();
        for s in &sels {
            names.extend(q.label_names(s).map_err(storage_err)?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    })
    .await?;
    let (names, warnings) = limited(names, limit);
    Ok(success(Json::from(names), warnings, Vec::new()))
}

/// `/api/v1/label/{name}/values`.
pub(crate) async fn label_values(
    State(st): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let (start, end) = range_of(&p)?;
    let sels = selectors(&p)?;
    let limit = limit_param(&p)?;
    let values = blocking(move || {
        let q = st.db.querier(start, end).map_err(storage_err)?;
        if sels.is_empty() {
            return q.label_values(&name, &[]).map_err(storage_err);
        }
        let mut values: Vec<String> = Vec::new();
        for s in &sels {
            values.extend(q.label_values(&name, s).map_err(storage_err)?);
        }
        values.sort();
        values.dedup();
        Ok(values)
    })
    .await?;
    let (values, warnings) = limited(values, limit);
    Ok(success(Json::from(values), warnings, Vec::new()))
}

/// `/api/v1/series`, GET and POST.
pub(crate) async fn series(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let (start, end) = range_of(&p)?;
    let sels = selectors(&p)?;
    if sels.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let limit = limit_param(&p)?;
    let all = blocking(move || {
        let q = st.db.querier(start, end).map_err(storage_err)?;
        let mut all: Vec<Labels> = Vec::new();
        for s in &sels {
            let set = q.select(true, None, s).map_err(storage_err)?;
            all.extend(set.series.iter().map(|x| x.labels().clone()));
        }
        all.sort();
        all.dedup();
        Ok(all)
    })
    .await?;
    let (all, warnings) = limited(all, limit);
    Ok(success(
        Json::from(all.iter().map(labels_json).collect::<Vec<_>>()),
        warnings,
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_float_and_timestamp_text_is_go_s() {
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        let mut vals: Vec<f64> = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.5,
            1e20,
            1e21,
            1e22,
            1.5e-7,
            1e-7,
            123456789.0,
            12_345.678,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e15,
            1e16,
            1e17,
            0.001,
            100.0,
        ];
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                vals.push(v);
            }
            vals.push((x % 10_000_000) as f64 / 1000.0);
            vals.push((x % 1000) as f64 * 10f64.powi((x >> 40) as i32 % 30 - 15));
        }
        let mut ties = 0;
        for v in vals {
            let mut out = Vec::new();
            write_go_f(&mut out, v);
            let got = String::from_utf8(out).unwrap();
            let display = format!("{v}");
            if got != display {
                // Rust's Display rounds an exact tie between two shortest
                // candidates up; Go's strconv (Ryū) to even, as here. Both
                // round-trip and have as many digits.
                assert_eq!(got.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v:e}");
                assert_eq!(got.len(), display.len(), "{got} {display}");
                let last = got.bytes().last().unwrap();
                assert!((last - b'0').is_multiple_of(2), "{got} {display}");
                ties += 1;
            }
        }
        assert!(ties < 50, "{ties} ties");
        // The tie that Go writes as ...392.2 (half to even).
        let mut out = Vec::new();
        write_go_f(&mut out, 1_144_061_379_383_392.2);
        assert_eq!(out, b"1144061379383392.2");
        for (t, want) in [
            (0i64, "0"),
            (1_000, "1"),
            (1_500, "1.5"),
            (1_050, "1.05"),
            (1_001, "1.001"),
            (1_795_711_140_123, "1795711140.123"),
            (-1_500, "-1.5"),
            (-500, "-0.5"),
            (999, "0.999"),
            (10, "0.01"),
        ] {
            let mut o = JsonOut(Vec::new());
            o.ts(t);
            let got = String::from_utf8(o.0).unwrap();
            assert_eq!(got, want);
            // The same number serde_json writes for the float seconds.
            let f: f64 = got.parse().unwrap();
            assert_eq!(f, vigil_model::time::to_seconds_f64(t), "{t}");
        }
    }

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
        // Negative seconds parse, as in Go; callers reject them in context.
        assert_eq!(parse_duration("-1").unwrap(), -1000);
    }

    #[test]
    fn limits_as_prometheus() {
        let p = |s: &str| Params::parse(s);
        assert_eq!(limit_param(&p("")).unwrap(), 0);
        assert_eq!(limit_param(&p("limit=5")).unwrap(), 5);
        assert_eq!(
            limit_param(&p("limit=x")).unwrap_err().message,
            "invalid parameter \"limit\": strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            limit_param(&p("limit=-1")).unwrap_err().message,
            "invalid parameter \"limit\": limit must be non-negative"
        );
    }

    /// The streamed result is the JSON the `serde_json::Value` rendering
    /// gives, for every result type, odd values and escapes included.
    #[test]
    fn streamed_results_are_the_value_rendering() {
        use vigil_promql::{Point, Sample, Series};
        let reference = |r: &QueryResult| -> Json {
            let ts = |t: i64| {
                serde_json::Number::from_f64(vigil_model::time::to_seconds_f64(t))
                    .map_or(Json::Null, Json::Number)
            };
            match &r.value {
                QueryValue::Scalar { t, v } => {
                    json!({"resultType": "scalar", "result": [ts(*t), format_value(*v)]})
                }
                QueryValue::String { t, s } => {
                    json!({"resultType": "string", "result": [ts(*t), s]})
                }
                QueryValue::Vector(v) => json!({"resultType": "vector", "result": v
                    .iter()
                    .map(|s| json!({"metric": labels_json(&s.labels), "value": [ts(s.t), format_value(s.v)]}))
                    .collect::<Vec<_>>()}),
                QueryValue::Matrix(m) => json!({"resultType": "matrix", "result": m
                    .iter()
                    .map(|s| json!({"metric": labels_json(&s.labels), "values": s
                        .points
                        .iter()
                        .map(|p| json!([ts(p.t), format_value(p.v)]))
                        .collect::<Vec<_>>()}))
                    .collect::<Vec<_>>()}),
            }
        };
        let odd = vigil_model::labels!("__name__" => "a\"b", "x" => "\\n\u{1}é");
        let values = vec![
            QueryValue::Scalar {
                t: 1_500,
                v: f64::NAN,
            },
            QueryValue::String {
                t: -2_001,
                s: "q\"\n".into(),
            },
            QueryValue::Vector(vec![
                Sample {
                    labels: odd.clone(),
                    t: 1_795_775_760_000,
                    v: f64::INFINITY,
                },
                Sample {
                    labels: Labels::empty(),
                    t: 1,
                    v: -0.0,
                },
            ]),
            QueryValue::Vector(Vec::new()),
            QueryValue::Matrix(vec![Series {
                labels: odd,
                points: vec![
                    Point { t: 0, v: 1e21 },
                    Point {
                        t: 15_001,
                        v: f64::NEG_INFINITY,
                    },
                    Point {
                        t: 30_000,
                        v: 1.5e-7,
                    },
                ],
            }]),
        ];
        for value in values {
            let r = QueryResult {
                value,
                annotations: Default::default(),
                stats: Default::default(),
            };
            let mut out = JsonOut(Vec::new());
            write_result(&mut out, &r);
            out.raw("}");
            let got: Json = serde_json::from_slice(&out.0).unwrap();
            // Whole seconds are written as integers, as Prometheus writes
            // them; compare numbers by value.
            fn floats(j: Json) -> Json {
                match j {
                    Json::Number(n) => n
                        .as_f64()
                        .and_then(serde_json::Number::from_f64)
                        .map_or(Json::Null, Json::Number),
                    Json::Array(a) => Json::Array(a.into_iter().map(floats).collect()),
                    Json::Object(o) => {
                        Json::Object(o.into_iter().map(|(k, v)| (k, floats(v))).collect())
                    }
                    other => other,
                }
            }
            assert_eq!(floats(got), floats(reference(&r)));
        }
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
