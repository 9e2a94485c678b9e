//! The remote-read endpoint at `/api/v1/read`, so Prometheus (its
//! `remote_read` section) or Thanos can read from vigil.
//!
//! The request is a snappy-compressed protobuf `prometheus.ReadRequest`;
//! the answer is the `SAMPLES` response type: a snappy-compressed
//! `prometheus.ReadResponse` with one result per query, in order. Response
//! types are negotiated as `remote.proto` says: the first type in
//! `accepted_response_types` that the server implements wins, and `SAMPLES`
//! when the list is empty. vigil does not implement
//! `STREAMED_XOR_CHUNKS`, so a client that accepts only that gets a 400
//! (Prometheus's own client lists `SAMPLES` as a fallback).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use vigil_model::{MatchOp, Matcher, Queryable, ValueType};

use crate::remote_write::{Label, Sample, TimeSeries};
use crate::AppState;

/// `prometheus.ReadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// The queries.
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// Response types the client accepts, in order of preference
    /// ([`SAMPLES`], [`STREAMED_XOR_CHUNKS`]).
    #[prost(enumeration = "ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `prometheus.ReadRequest.ResponseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    /// One `ReadResponse` with raw samples.
    Samples = 0,
    /// Streamed `ChunkedReadResponse` frames (not implemented by vigil).
    StreamedXorChunks = 1,
}

/// The `SAMPLES` response type.
pub const SAMPLES: i32 = ResponseType::Samples as i32;
/// The `STREAMED_XOR_CHUNKS` response type.
pub const STREAMED_XOR_CHUNKS: i32 = ResponseType::StreamedXorChunks as i32;

/// `prometheus.Query`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    /// Start of the range, ms, inclusive.
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    /// End of the range, ms, inclusive.
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    /// The series selector.
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelMatcher {
    /// 0 `EQ`, 1 `NEQ`, 2 `RE`, 3 `NRE`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Label name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Value or regular expression.
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.ReadResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    /// One result per query, in the request's order.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    /// The series, samples in time order.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut msg = msg.into();
    msg.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

fn type_name(t: i32) -> String {
    match ResponseType::try_from(t) {
        Ok(ResponseType::Samples) => "SAMPLES".into(),
        Ok(ResponseType::StreamedXorChunks) => "STREAMED_XOR_CHUNKS".into(),
        Err(_) => t.to_string(),
    }
}

/// The response type to answer with: the first accepted one vigil
/// implements.
fn negotiate(accepted: &[i32]) -> Result<(), String> {
    if accepted.is_empty() || accepted.contains(&SAMPLES) {
        return Ok(());
    }
    let names: Vec<String> = accepted.iter().map(|t| type_name(*t)).collect();
    Err(format!(
        "server does not support any of the requested response types: [{}]; supported: [SAMPLES]",
        names.join(" ")
    ))
}

fn to_matchers(ms: &[LabelMatcher]) -> Result<Vec<Matcher>, String> {
    ms.iter()
        .map(|m| {
            let op = match m.r#type {
                0 => MatchOp::Equal,
                1 => MatchOp::NotEqual,
                2 => MatchOp::Regex,
                3 => MatchOp::NotRegex,
                t => return Err(format!("invalid matcher type {t}")),
            };
            Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())
        })
        .collect()
}

/// Why a read failed: the client's fault (400) or the storage's (500).
enum ReadError {
    Bad(String),
    Internal(String),
}

fn run(st: &AppState, req: &ReadRequest) -> Result<ReadResponse, ReadError> {
    let limit = st.remote_read_sample_limit;
    let mut total = 0usize;
    let mut results = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        let matchers = to_matchers(&q.matchers).map_err(ReadError::Bad)?;
        let (mint, maxt) = (q.start_timestamp_ms, q.end_timestamp_ms);
        let querier = st
            .db
            .querier(mint, maxt)
            .map_err(|e| ReadError::Internal(e.to_string()))?;
        let set = querier
            .select(true, None, &matchers)
            .map_err(|e| ReadError::Internal(e.to_string()))?;
        let mut timeseries = Vec::with_capacity(set.series.len());
        for s in &set.series {
            let mut samples = Vec::new();
            let mut it = s.iter();
            let mut ty = it.seek(mint);
            while ty == ValueType::Float {
                let (t, v) = it.at();
                if t > maxt {
                    break;
                }
                samples.push(Sample {
                    value: v,
                    timestamp: t,
                });
                ty = it.next();
            }
            if let Some(e) = it.err() {
                return Err(ReadError::Internal(e.to_string()));
            }
            total += samples.len();
            if limit > 0 && total > limit {
                return Err(ReadError::Bad(format!("exceeded sample limit ({limit})")));
            }
            if samples.is_empty() {
                continue;
            }
            let labels = s
                .labels()
                .iter()
                .map(|l| Label {
                    name: l.name.to_string(),
                    value: l.value.to_string(),
                })
                .collect();
            timeseries.push(TimeSeries { labels, samples });
        }
        results.push(QueryResult { timeseries });
    }
    Ok(ReadResponse { results })
}

/// Largest compressed request accepted, and largest it may decompress to.
pub(crate) const MAX_REQUEST_BYTES: usize = 32 << 20;

/// `POST /api/v1/read`.
pub(crate) async fn read(State(st): State<AppState>, body: Bytes) -> Response {
    if body.len() > MAX_REQUEST_BYTES {
        return text(StatusCode::BAD_REQUEST, "request body too large");
    }
    match snap::raw::decompress_len(&body) {
        Ok(n) if n > MAX_REQUEST_BYTES => {
            return text(StatusCode::BAD_REQUEST, "decompressed request too large")
        }
        Ok(_) => {}
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    }
    let raw = match snap::raw::Decoder::new().decompress_vec(&body) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let req = match ReadRequest::decode(raw.as_slice()) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = negotiate(&req.accepted_response_types) {
        return text(StatusCode::BAD_REQUEST, e);
    }
    let answered = tokio::task::spawn_blocking(move || run(&st, &req)).await;
    let resp = match answered {
        Ok(Ok(r)) => r,
        Ok(Err(ReadError::Bad(e))) => return text(StatusCode::BAD_REQUEST, e),
        Ok(Err(ReadError::Internal(e))) => return text(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match snap::raw::Encoder::new().compress_vec(&resp.encode_to_vec()) {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            body,
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_samples_when_offered() {
        assert!(negotiate(&[]).is_ok());
        assert!(negotiate(&[STREAMED_XOR_CHUNKS, SAMPLES]).is_ok());
        assert_eq!(
            negotiate(&[STREAMED_XOR_CHUNKS]).unwrap_err(),
            "server does not support any of the requested response types: [STREAMED_XOR_CHUNKS]; supported: [SAMPLES]"
        );
    }

    #[test]
    fn matchers_convert() {
        let ms = to_matchers(&[
            LabelMatcher {
                r#type: 0,
                name: "__name__".into(),
                value: "up".into(),
            },
            LabelMatcher {
                r#type: 2,
                name: "job".into(),
                value: "a|b".into(),
            },
        ])
        .unwrap();
        assert_eq!(ms[1].op(), MatchOp::Regex);
        assert!(ms[1].matches("b") && !ms[1].matches("ab"));
        assert!(to_matchers(&[LabelMatcher {
            r#type: 7,
            name: "x".into(),
            value: String::new()
        }])
        .is_err());
    }
}
