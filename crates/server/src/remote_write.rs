//! The remote-write 1.0 receiver: snappy-compressed protobuf
//! `prometheus.WriteRequest`, decoded with hand-written prost message
//! structs (protoc is not needed), appended on the blocking pool.
//!
//! Status codes as the spec says: 204 on success; 400 for a malformed
//! request or one with rejected samples (every valid sample is still
//! stored); 415 for an unknown content type; 413 for a body over the limit;
//! 5xx only for retryable storage faults.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use vigil_model::{AppendError, Appender, Labels, Value};

use crate::AppState;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Timestamp in ms.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

pub(crate) async fn write(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf");
    let media = ctype.split(';').next().unwrap_or("").trim();
    if media != "application/x-protobuf" {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {ctype:?}"),
        );
    }
    if ctype.contains("io.prometheus.write.v2.Request") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "remote write 2.0 is not supported yet; send protocol 1.0",
        );
    }
    if body.len() > st.max_write_bytes {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} bytes", st.max_write_bytes),
        );
    }
    let raw = match snap::raw::Decoder::new().decompress_vec(&body) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("snappy decode: {e}")),
    };
    let req: WriteRequest = match prost::Message::decode(raw.as_slice()) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("protobuf decode: {e}")),
    };
    let db = st.db.clone();
    let stats = st.stats.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut app = db.appender();
        let mut received = 0u64;
        let mut first_error: Option<String> = None;
        let mut rejected = 0u64;
        for ts in &req.timeseries {
            let labels = match Labels::try_from_pairs(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            ) {
                Ok(l) => l,
                Err(e) => {
                    rejected += ts.samples.len() as u64;
                    first_error.get_or_insert_with(|| format!("invalid labels: {e}"));
                    continue;
                }
            };
            if labels.metric_name().is_none() {
                rejected += ts.samples.len() as u64;
                first_error.get_or_insert_with(|| format!("series {labels} has no metric name"));
                continue;
            }
            let mut sref = None;
            for s in &ts.samples {
                received += 1;
                match app.append(sref, &labels, s.timestamp, Value::Float(s.value)) {
                    Ok(r) => sref = Some(r),
                    Err(e) => {
                        rejected += 1;
                        if first_error.is_none() {
                            first_error =
                                Some(format!("{e} for series {labels} at {}", s.timestamp));
                        }
                        if let AppendError::Storage(se) = e {
                            return Err(se.to_string());
                        }
                    }
                }
            }
        }
        app.commit().map_err(|e| e.to_string())?;
        stats
            .samples_received
            .fetch_add(received, Ordering::Relaxed);
        stats
            .samples_rejected
            .fetch_add(rejected, Ordering::Relaxed);
        Ok(first_error)
    })
    .await;
    match outcome {
        Ok(Ok(None)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(Some(err))) => text(StatusCode::BAD_REQUEST, err),
        Ok(Err(storage)) => text(StatusCode::INTERNAL_SERVER_ERROR, storage),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
