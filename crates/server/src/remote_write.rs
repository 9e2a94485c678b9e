//! The remote-write receiver at `/api/v1/write`, protocols 1.0 and 2.0:
//! snappy-compressed protobuf, decoded with hand-written prost message
//! structs (protoc is not needed), appended on the blocking pool.
//!
//! The message is chosen by `Content-Type`, as Prometheus's receiver does:
//! `application/x-protobuf` (or with `proto=prometheus.WriteRequest`) is
//! 1.0's `prometheus.WriteRequest`;
//! `application/x-protobuf;proto=io.prometheus.write.v2.Request` is 2.0's
//! `io.prometheus.write.v2.Request`, whose labels are references into a
//! symbol table.
//!
//! Status codes as the specs say: 204 on success; 400 for a malformed
//! request or one with rejected samples, with the reasons, while every
//! valid sample of it is still stored; 415 for an unknown content type,
//! message or encoding; 413 for a body over the limit; 5xx only for
//! retryable storage faults, after which nothing of the request is kept.
//! A 2.0 answer always carries the `X-Prometheus-Remote-Write-*-Written`
//! headers with what was stored. vigil stores float samples only: native
//! histograms are rejected (400, counted), and exemplars are dropped
//! without error, as Prometheus does when its exemplar storage is off.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vigil_model::{AppendError, Appender, Labels, SeriesRef, Value};

use crate::AppState;

/// `prometheus.WriteRequest` (remote write 1.0).
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

/// `prometheus.Sample` (also `io.prometheus.write.v2.Sample`, which has
/// the same fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Timestamp in ms.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Remote write 2.0 messages (`io.prometheus.write.v2`).
pub mod v2 {
    pub use super::Sample;

    /// `io.prometheus.write.v2.Request`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// The symbol table: every string of the request, referenced by
        /// index. Starts with `""`.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// The series.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Label name and value references into `symbols`, in pairs.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Float samples in time order.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histogram samples (vigil does not store them yet).
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
        /// Exemplars (vigil does not store them yet).
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        /// Created timestamp in ms, 0 when unset.
        #[prost(int64, tag = "6")]
        pub created_timestamp: i64,
    }

    /// `io.prometheus.write.v2.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        /// Label references into `symbols`, in pairs.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Value.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Timestamp in ms.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// The fields of `io.prometheus.write.v2.Histogram` vigil reads; the
    /// others are skipped when decoding.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        /// Count of observations (integer histograms).
        #[prost(uint64, tag = "1")]
        pub count_int: u64,
        /// Sum of observations.
        #[prost(double, tag = "3")]
        pub sum: f64,
        /// Timestamp in ms.
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }
}

/// The response headers of remote write 2.0.
pub const SAMPLES_WRITTEN: &str = "x-prometheus-remote-write-samples-written";
/// Native histogram samples stored.
pub const HISTOGRAMS_WRITTEN: &str = "x-prometheus-remote-write-histograms-written";
/// Exemplars stored.
pub const EXEMPLARS_WRITTEN: &str = "x-prometheus-remote-write-exemplars-written";

const PROTO_V1: &str = "prometheus.WriteRequest";
const PROTO_V2: &str = "io.prometheus.write.v2.Request";
const APP_PROTOBUF: &str = "application/x-protobuf";
/// Samples further ahead of the clock than this are rejected, as
/// Prometheus's receiver does.
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    V1,
    V2,
}

/// Chooses the message from `Content-Type` and checks `Content-Encoding`;
/// an unknown type, message or encoding is a 415 with the reason.
fn negotiate(headers: &HeaderMap) -> Result<Proto, String> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .filter(|c| !c.is_empty())
        // Senders of 1.0 that set no type are taken as 1.0, as Prometheus
        // takes them.
        .unwrap_or_else(|| APP_PROTOBUF.to_string());
    let mut parts = ctype.split(';');
    if parts.next().map(str::trim) != Some(APP_PROTOBUF) {
        return Err(format!(
            "expected {APP_PROTOBUF} as the first (media) part, got {ctype} content-type"
        ));
    }
    let mut proto = Proto::V1;
    for p in parts {
        let Some((k, v)) = p.trim().split_once('=') else {
            return Err(format!(
                "as per https://www.rfc-editor.org/rfc/rfc9110#parameter expected parameters to be key-values, got {p} in {ctype} content-type"
            ));
        };
        if k.trim() == "proto" {
            proto = match v.trim() {
                PROTO_V1 => Proto::V1,
                PROTO_V2 => Proto::V2,
                other => {
                    return Err(format!(
                        "got {ctype} content type; unknown remote write protobuf message {other}, supported: {PROTO_V1}, {PROTO_V2}"
                    ))
                }
            };
        }
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = String::from_utf8_lossy(enc.as_bytes())
            .trim()
            .to_lowercase();
        if !enc.is_empty() && enc != "snappy" {
            return Err(format!(
                "{enc} encoding (compression) is not accepted by this server; only snappy is acceptable"
            ));
        }
    }
    Ok(proto)
}

/// What appending a request did.
#[derive(Debug, Default)]
struct Outcome {
    samples: u64,
    histograms: u64,
    exemplars: u64,
    rejected: u64,
    /// Reasons for rejected data, one per line in the 400 answer.
    errors: Vec<String>,
}

impl Outcome {
    /// Notes a rejection; the answer lists the first few reasons.
    fn reject(&mut self, n: u64, why: impl FnOnce() -> String) {
        self.rejected += n;
        if self.errors.len() < 16 {
            self.errors.push(why());
        } else if self.errors.len() == 16 {
            self.errors.push("(further errors left out)".into());
        }
    }
}

/// Appends one series' float samples; a storage fault ends the request.
fn append_samples(
    app: &mut impl Appender,
    labels: &Labels,
    samples: &[Sample],
    max_t: i64,
    out: &mut Outcome,
) -> Result<(), String> {
    let mut sref: Option<SeriesRef> = None;
    for s in samples {
        if s.timestamp > max_t {
            out.reject(1, || {
                format!("out of bounds: timestamp is too far in the future for series {labels}")
            });
            continue;
        }
        match app.append(sref, labels, s.timestamp, Value::Float(s.value)) {
            Ok(r) => {
                sref = Some(r);
                out.samples += 1;
            }
            Err(AppendError::Storage(e)) => return Err(e.to_string()),
            Err(e) => out.reject(1, || format!("{e} for series {labels}")),
        }
    }
    Ok(())
}

/// Checks a decoded label set as Prometheus's receiver does.
fn valid_labels(labels: Result<Labels, String>) -> Result<Labels, String> {
    let labels = labels?;
    if labels.metric_name().is_none_or(str::is_empty) {
        return Err(format!("invalid metric name or labels, got {labels}"));
    }
    Ok(labels)
}

/// A `prometheus.WriteRequest` decoded in place: label names and values
/// borrow the decompressed body, and all series share three vectors, so
/// decoding allocates nothing per series or label (prost's structs
/// allocate two strings per label and two vectors per series).
#[derive(Debug, Default)]
struct WriteRequestRef<'a> {
    /// Per series: its end in `labels` and in `samples`.
    series: Vec<(usize, usize)>,
    labels: Vec<(&'a str, &'a str)>,
    samples: Vec<Sample>,
}

/// A protobuf wire-format cursor over a message's bytes.
struct Wire<'a> {
    buf: &'a [u8],
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some((&b, rest)) = self.buf.split_first() else {
                return Err("truncated varint".into());
            };
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err("length past the end of the message".into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field's number and wire type, `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, (k & 7) as u8)))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| "length too large".to_string())?)
    }

    fn string(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| "invalid string value: data is not UTF-8 encoded".to_string())
    }

    /// Skips a field of wire type `wt` (groups are not accepted).
    fn skip(&mut self, wt: u8) -> Result<(), String> {
        match wt {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            _ => Err(format!("invalid wire type {wt}")),
        }
    }
}

fn expect_wt(field: &str, wt: u8, want: u8) -> Result<(), String> {
    if wt == want {
        Ok(())
    } else {
        Err(format!(
            "invalid wire type {wt} for {field}, expected {want}"
        ))
    }
}

impl<'a> WriteRequestRef<'a> {
    /// Decodes a whole request, as prost would (the last of a repeated
    /// scalar field wins, missing fields are zero or empty, unknown fields
    /// are skipped), or fails without having decoded anything usable.
    fn decode(buf: &'a [u8]) -> Result<Self, String> {
        let mut req = WriteRequestRef::default();
        let mut w = Wire { buf };
        while let Some((field, wt)) = w.key()? {
            if field != 1 {
                w.skip(wt)?;
                continue;
            }
            expect_wt("WriteRequest.timeseries", wt, 2)?;
            let mut ts = Wire { buf: w.bytes()? };
            while let Some((field, wt)) = ts.key()? {
                match field {
                    1 => {
                        expect_wt("TimeSeries.labels", wt, 2)?;
                        let mut l = Wire { buf: ts.bytes()? };
                        let (mut name, mut value) = ("", "");
                        while let Some((field, wt)) = l.key()? {
                            match field {
                                1 => {
                                    expect_wt("Label.name", wt, 2)?;
                                    name = l.string()?;
                                }
                                2 => {
                                    expect_wt("Label.value", wt, 2)?;
                                    value = l.string()?;
                                }
                                _ => l.skip(wt)?,
                            }
                        }
                        req.labels.push((name, value));
                    }
                    2 => {
                        expect_wt("TimeSeries.samples", wt, 2)?;
                        let mut sm = Wire { buf: ts.bytes()? };
                        let mut sample = Sample::default();
                        while let Some((field, wt)) = sm.key()? {
                            match field {
                                1 => {
                                    expect_wt("Sample.value", wt, 1)?;
                                    let b = sm.take(8)?;
                                    let mut a = [0u8; 8];
                                    a.copy_from_slice(b);
                                    sample.value = f64::from_le_bytes(a);
                                }
                                2 => {
                                    expect_wt("Sample.timestamp", wt, 0)?;
                                    sample.timestamp = sm.varint()? as i64;
                                }
                                _ => sm.skip(wt)?,
                            }
                        }
                        req.samples.push(sample);
                    }
                    _ => ts.skip(wt)?,
                }
            }
            req.series.push((req.labels.len(), req.samples.len()));
        }
        Ok(req)
    }
}

/// Appends a request decoded in place.
fn write_v1_ref(
    app: &mut impl Appender,
    req: &WriteRequestRef<'_>,
    max_t: i64,
) -> Result<Outcome, String> {
    let mut out = Outcome::default();
    let (mut l0, mut s0) = (0, 0);
    for &(l1, s1) in &req.series {
        let samples = &req.samples[s0..s1];
        let labels = Labels::try_from_pairs(req.labels[l0..l1].iter().copied())
            .map_err(|e| format!("invalid labels: {e}"));
        (l0, s0) = (l1, s1);
        match valid_labels(labels) {
            Ok(l) => append_samples(app, &l, samples, max_t, &mut out)?,
            Err(e) => out.reject(samples.len() as u64, || e),
        }
    }
    Ok(out)
}

/// Decodes a remote-write 1.0 body (decompressed) in place and appends it
/// to `db` in one transaction, as the receiver does; returns the samples
/// stored. For the benchmarks.
#[doc(hidden)]
pub fn append_v1_body(db: &vigil_tsdb::Db, raw: &[u8]) -> Result<u64, String> {
    let req = WriteRequestRef::decode(raw)?;
    let mut app = db.appender();
    let out = write_v1_ref(&mut app, &req, i64::MAX)?;
    app.commit().map_err(|e| e.to_string())?;
    Ok(out.samples)
}

/// The labels of a 2.0 series from its references into the symbol table.
fn v2_labels(refs: &[u32], symbols: &[String]) -> Result<Labels, String> {
    if !refs.len().is_multiple_of(2) {
        return Err(format!(
            "invalid labels_refs: odd length {} (must be name/value pairs)",
            refs.len()
        ));
    }
    let sym = |r: u32| {
        symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
            format!(
                "invalid labels_refs: reference {r} outside the symbol table of {} entries",
                symbols.len()
            )
        })
    };
    let mut pairs = Vec::with_capacity(refs.len() / 2);
    for p in refs.chunks_exact(2) {
        pairs.push((sym(p[0])?, sym(p[1])?));
    }
    Labels::try_from_pairs(pairs).map_err(|e| format!("invalid labels: {e}"))
}

fn write_v2(app: &mut impl Appender, req: &v2::Request, max_t: i64) -> Result<Outcome, String> {
    let mut out = Outcome::default();
    for ts in &req.timeseries {
        let n = (ts.samples.len() + ts.histograms.len()) as u64;
        let labels = match valid_labels(v2_labels(&ts.labels_refs, &req.symbols)) {
            Ok(l) => l,
            Err(e) => {
                out.reject(n, || e);
                continue;
            }
        };
        append_samples(app, &labels, &ts.samples, max_t, &mut out)?;
        if !ts.histograms.is_empty() {
            out.reject(ts.histograms.len() as u64, || {
                format!("native histogram samples are not supported yet for series {labels}")
            });
        }
    }
    Ok(out)
}

fn written_headers(resp: &mut Response, out: &Outcome) {
    for (name, n) in [
        (SAMPLES_WRITTEN, out.samples),
        (HISTOGRAMS_WRITTEN, out.histograms),
        (EXEMPLARS_WRITTEN, out.exemplars),
    ] {
        resp.headers_mut()
            .insert(HeaderName::from_static(name), HeaderValue::from(n));
    }
}

enum Decoded {
    /// Remote write 1.0: the decompressed body, decoded in place on the
    /// blocking pool.
    V1(Vec<u8>),
    V2(v2::Request),
}

pub(crate) async fn write(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            st.stats.write_too_large.fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "body larger than {} bytes (--web.remote-write-max-bytes)",
                    st.max_write_bytes
                ),
            );
        }
        Err(e) => return text(e.status(), e.body_text()),
    };
    let proto = match negotiate(&headers) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, e),
    };
    let v2_error = |status: StatusCode, msg: String| {
        let mut r = text(status, msg);
        if proto == Proto::V2 {
            written_headers(&mut r, &Outcome::default());
        }
        r
    };
    if body.len() > st.max_write_bytes {
        st.stats.write_too_large.fetch_add(1, Ordering::Relaxed);
        return v2_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} bytes", st.max_write_bytes),
        );
    }
    // The decoder allocates what the body claims; cap it so a tiny body
    // cannot ask for gigabytes.
    let max_raw = st.max_write_bytes.saturating_mul(16);
    match snap::raw::decompress_len(&body) {
        Ok(n) if n > max_raw => {
            st.stats.write_too_large.fetch_add(1, Ordering::Relaxed);
            return v2_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("decompressed body of {n} bytes is larger than {max_raw} bytes"),
            );
        }
        Ok(_) => {}
        Err(e) => return v2_error(StatusCode::BAD_REQUEST, format!("snappy decode: {e}")),
    }
    let raw = match snap::raw::Decoder::new().decompress_vec(&body) {
        Ok(r) => r,
        Err(e) => return v2_error(StatusCode::BAD_REQUEST, format!("snappy decode: {e}")),
    };
    let decoded = match proto {
        Proto::V1 => Decoded::V1(raw),
        Proto::V2 => match prost::Message::decode(raw.as_slice()) {
            Ok(r) => Decoded::V2(r),
            Err(e) => return v2_error(StatusCode::BAD_REQUEST, format!("protobuf decode: {e}")),
        },
    };
    let db = st.db.clone();
    let stats = st.stats.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let max_t = vigil_model::time::now_ms().saturating_add(MAX_AHEAD_MS);
        let fault = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e);
        let mut app = db.appender();
        let out = match &decoded {
            Decoded::V1(raw) => {
                // A malformed body is refused before anything is appended.
                let req = WriteRequestRef::decode(raw)
                    .map_err(|e| (StatusCode::BAD_REQUEST, format!("protobuf decode: {e}")))?;
                write_v1_ref(&mut app, &req, max_t)
            }
            Decoded::V2(r) => write_v2(&mut app, r, max_t),
        }
        .map_err(fault)?;
        // Rejected samples are not part of the batch; the rest is kept.
        app.commit().map_err(|e| fault(e.to_string()))?;
        stats
            .samples_received
            .fetch_add(out.samples + out.rejected, Ordering::Relaxed);
        stats
            .samples_rejected
            .fetch_add(out.rejected, Ordering::Relaxed);
        Ok::<_, (StatusCode, String)>(out)
    })
    .await;
    match outcome {
        Ok(Ok(out)) => {
            let mut r = if out.errors.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                text(StatusCode::BAD_REQUEST, out.errors.join("\n"))
            };
            if proto == Proto::V2 {
                written_headers(&mut r, &out);
            }
            r
        }
        // A malformed body (400), or a storage fault (500): the batch was
        // rolled back, the sender retries.
        Ok(Err((status, e))) => v2_error(status, e),
        Err(e) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Owned = Vec<(Vec<(String, String)>, Vec<(u64, i64)>)>;

    fn bits(s: &[Sample]) -> Vec<(u64, i64)> {
        s.iter().map(|s| (s.value.to_bits(), s.timestamp)).collect()
    }

    /// The series of a request decoded in place, as owned values (sample
    /// values as bits, so that NaNs compare).
    fn owned(r: &WriteRequestRef<'_>) -> Owned {
        let (mut l0, mut s0) = (0, 0);
        r.series
            .iter()
            .map(|&(l1, s1)| {
                let labels = r.labels[l0..l1]
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                let samples = bits(&r.samples[s0..s1]);
                (l0, s0) = (l1, s1);
                (labels, samples)
            })
            .collect()
    }

    fn prost_owned(r: &WriteRequest) -> Owned {
        r.timeseries
            .iter()
            .map(|ts| {
                let labels = ts
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                (labels, bits(&ts.samples))
            })
            .collect()
    }

    /// Decoding in place gives what prost gives, for whole requests and for
    /// every truncation of them (both fail or both give the same series),
    /// unknown fields and odd values included.
    #[test]
    fn in_place_decoding_is_prost_decoding() {
        let req = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![
                        Label {
                            name: "__name__".into(),
                            value: "up".into(),
                        },
                        Label {
                            name: "é\"x".into(),
                            value: String::new(),
                        },
                    ],
                    samples: vec![
                        Sample {
                            value: f64::from_bits(0x7ff0_0000_0000_0002),
                            timestamp: -5,
                        },
                        Sample {
                            value: 1.5,
                            timestamp: 1_795_787_280_000,
                        },
                    ],
                },
                TimeSeries::default(),
                TimeSeries {
                    labels: vec![Label::default()],
                    samples: vec![Sample::default()],
                },
            ],
        };
        let mut body = prost::Message::encode_to_vec(&req);
        // Unknown fields the decoder must skip: WriteRequest.metadata (3,
        // bytes), a varint, a fixed64 and a fixed32.
        body.extend_from_slice(&[0x1a, 0x02, 0x08, 0x01, 0x20, 0x96, 0x01]);
        body.extend_from_slice(&[0x29, 1, 2, 3, 4, 5, 6, 7, 8, 0x35, 1, 2, 3, 4]);
        let want: WriteRequest = prost::Message::decode(body.as_slice()).unwrap();
        let got = WriteRequestRef::decode(&body).unwrap();
        assert_eq!(owned(&got), prost_owned(&want));
        assert_eq!(got.series.len(), 3);
        for n in 0..body.len() {
            let cut = &body[..n];
            let p: Result<WriteRequest, _> = prost::Message::decode(cut);
            match (p, WriteRequestRef::decode(cut)) {
                (Ok(p), Ok(g)) => assert_eq!(owned(&g), prost_owned(&p), "prefix {n}"),
                (Err(_), Err(_)) => {}
                (p, g) => panic!(
                    "prefix {n}: prost {:?}, in place {:?}",
                    p.is_ok(),
                    g.is_ok()
                ),
            }
        }
        // Not UTF-8, and a group wire type: errors for both.
        for bad in [
            vec![0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff],
            vec![0x0b, 0x0c],
        ] {
            assert!(<WriteRequest as prost::Message>::decode(bad.as_slice()).is_err());
            assert!(WriteRequestRef::decode(&bad).is_err());
        }
    }

    fn hdrs(ctype: Option<&str>, enc: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = ctype {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(c).unwrap());
        }
        if let Some(e) = enc {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_str(e).unwrap());
        }
        h
    }

    #[test]
    fn content_type_chooses_the_message() {
        assert_eq!(negotiate(&hdrs(None, None)), Ok(Proto::V1));
        assert_eq!(
            negotiate(&hdrs(Some("application/x-protobuf"), Some("snappy"))),
            Ok(Proto::V1)
        );
        assert_eq!(
            negotiate(&hdrs(
                Some("application/x-protobuf;proto=prometheus.WriteRequest"),
                None
            )),
            Ok(Proto::V1)
        );
        assert_eq!(
            negotiate(&hdrs(
                Some("application/x-protobuf; proto=io.prometheus.write.v2.Request"),
                Some("snappy")
            )),
            Ok(Proto::V2)
        );
        assert!(negotiate(&hdrs(Some("application/json"), None)).is_err());
        assert!(
            negotiate(&hdrs(Some("application/x-protobuf;proto=x.Y"), None))
                .unwrap_err()
                .contains("unknown remote write protobuf message x.Y")
        );
        assert!(
            negotiate(&hdrs(Some("application/x-protobuf"), Some("zstd")))
                .unwrap_err()
                .contains("only snappy")
        );
    }

    #[test]
    fn v2_labels_resolve_and_reject_bad_refs() {
        let sym: Vec<String> = ["", "__name__", "up", "job", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let l = v2_labels(&[1, 2, 3, 4], &sym).unwrap();
        assert_eq!(l.get("job"), Some("a"));
        assert_eq!(l.metric_name(), Some("up"));
        assert!(v2_labels(&[1, 2, 3], &sym).unwrap_err().contains("odd"));
        assert!(v2_labels(&[1, 9], &sym).unwrap_err().contains("outside"));
    }
}
