//! One request: encoding a batch as remote write 1.0 or 2.0, and sending
//! it with retries.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use vigil_model::Labels;

use super::config::{ProtobufMessage, RemoteWriteConfig};
use super::queue::{Item, QueueShared};
use crate::remote_write::{v2, Label, Sample, TimeSeries, WriteRequest};

/// The HTTP client of the queues: vigil's outgoing client, as the alert
/// sender's.
pub(crate) fn build_client() -> Result<reqwest::Client, String> {
    vigil_scrape::client_builder()
        .and_then(|b| Ok(b.build()?))
        .map_err(|e| e.to_string())
}

/// Groups a batch by series, keeping each series' samples in order.
fn group(items: &[Item]) -> Vec<(&Labels, Vec<Sample>)> {
    let mut index: HashMap<&Labels, usize> = HashMap::new();
    let mut out: Vec<(&Labels, Vec<Sample>)> = Vec::new();
    for it in items {
        let i = *index.entry(&it.labels).or_insert_with(|| {
            out.push((&it.labels, Vec::new()));
            out.len() - 1
        });
        out[i].1.push(Sample {
            value: it.v,
            timestamp: it.t,
        });
    }
    out
}

/// The protobuf bytes (not compressed) of a batch.
pub(crate) fn encode(items: &[Item], proto: ProtobufMessage) -> Vec<u8> {
    use prost::Message;
    let series = group(items);
    match proto {
        ProtobufMessage::V1 => WriteRequest {
            timeseries: series
                .into_iter()
                .map(|(labels, samples)| TimeSeries {
                    labels: labels
                        .iter()
                        .map(|l| Label {
                            name: l.name.to_string(),
                            value: l.value.to_string(),
                        })
                        .collect(),
                    samples,
                })
                .collect(),
        }
        .encode_to_vec(),
        ProtobufMessage::V2 => {
            let mut symbols: Vec<String> = vec![String::new()];
            let mut refs: HashMap<String, u32> = HashMap::new();
            let mut sym = |s: &str| -> u32 {
                if let Some(&r) = refs.get(s) {
                    return r;
                }
                let r = symbols.len() as u32;
                symbols.push(s.to_string());
                refs.insert(s.to_string(), r);
                r
            };
            let timeseries = series
                .into_iter()
                .map(|(labels, samples)| {
                    let mut labels_refs = Vec::with_capacity(labels.len() * 2);
                    for l in labels.iter() {
                        labels_refs.push(sym(l.name));
                        labels_refs.push(sym(l.value));
                    }
                    v2::TimeSeries {
                        labels_refs,
                        samples,
                        histograms: Vec::new(),
                        exemplars: Vec::new(),
                        created_timestamp: 0,
                    }
                })
                .collect();
            v2::Request {
                symbols,
                timeseries,
            }
            .encode_to_vec()
        }
    }
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The receiver took it.
    Sent,
    /// The receiver refused it for good (4xx); it is dropped and counted.
    Dropped,
    /// The queue is stopping; the batch stays unacknowledged, so it is sent
    /// again after a restart.
    Cancelled,
}

enum Attempt {
    Ok,
    Retry(Option<Duration>),
    Fatal,
    Unsupported,
}

/// The request headers of `cfg` for `proto`; credentials files are read
/// at every request, as Prometheus reads them.
fn headers(cfg: &RemoteWriteConfig, proto: ProtobufMessage) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    for (k, v) in &cfg.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    let (ctype, version) = match proto {
        ProtobufMessage::V1 => ("application/x-protobuf", "0.1.0"),
        ProtobufMessage::V2 => (
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "2.0.0",
        ),
    };
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert("content-encoding", HeaderValue::from_static("snappy"));
    h.insert(
        "x-prometheus-remote-write-version",
        HeaderValue::from_static(version),
    );
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("reading {}: {e}", p.display()))
    };
    let auth = if let Some(b) = &cfg.basic_auth {
        let password = match (&b.password, &b.password_file) {
            (_, Some(f)) => read(f)?,
            (Some(p), None) => p.clone(),
            (None, None) => String::new(),
        };
        Some(format!(
            "Basic {}",
            base64(format!("{}:{password}", b.username).as_bytes())
        ))
    } else if let Some(a) = &cfg.authorization {
        let cred = match (&a.credentials, &a.credentials_file) {
            (_, Some(f)) => read(f)?,
            (Some(c), None) => c.clone(),
            (None, None) => String::new(),
        };
        Some(format!("{} {cred}", a.kind))
    } else {
        None
    };
    if let Some(a) = auth {
        let mut v = HeaderValue::from_str(&a).map_err(|_| "invalid credentials".to_string())?;
        v.set_sensitive(true);
        h.insert(AUTHORIZATION, v);
    }
    Ok(h)
}

/// Standard base64 with padding.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Retry-After` in seconds, if the answer carries one.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

async fn attempt(q: &QueueShared, body: Vec<u8>, proto: ProtobufMessage) -> Attempt {
    let cfg = &q.cfg;
    let headers = match headers(cfg, proto) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(queue = cfg.display_name(), error = %e, "remote write: cannot build the request; retrying");
            return Attempt::Retry(None);
        }
    };
    let started = Instant::now();
    let result = q
        .client
        .post(&cfg.url)
        .headers(headers)
        .timeout(cfg.remote_timeout.to_std())
        .body(body)
        .send()
        .await;
    q.metrics.record_duration(started.elapsed());
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(queue = cfg.display_name(), error = %e, "remote write: request failed; retrying");
            *q.metrics.last_error.lock() = e.to_string();
            return Attempt::Retry(None);
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Attempt::Ok;
    }
    let after = retry_after(&resp);
    let text: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect();
    *q.metrics.last_error.lock() = format!("server returned HTTP status {status}: {}", text.trim());
    if status == reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE && proto == ProtobufMessage::V2 {
        return Attempt::Unsupported;
    }
    if status.is_server_error()
        || (status == reqwest::StatusCode::TOO_MANY_REQUESTS && cfg.queue_config.retry_on_http_429)
    {
        tracing::debug!(queue = cfg.display_name(), %status, "remote write: retryable answer");
        return Attempt::Retry(after);
    }
    tracing::warn!(queue = cfg.display_name(), %status, body = %text.trim(),
        "remote write: the receiver refused a request; its samples are dropped");
    Attempt::Fatal
}

/// Sends `items` until the receiver takes them, refuses them for good, or
/// the queue stops. Retries (5xx, 429, network errors) back off
/// exponentially from `min_backoff` to `max_backoff`, or wait as long as a
/// `Retry-After` header asks (capped at `max_backoff`).
pub(crate) async fn send_batch(
    q: &QueueShared,
    items: &[Item],
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Outcome {
    let n = items.len() as u64;
    let qc = &q.cfg.queue_config;
    let mut backoff = qc.min_backoff.to_std();
    let max_backoff = qc.max_backoff.to_std();
    loop {
        let proto = q.proto();
        let raw = encode(items, proto);
        let body = match snap::raw::Encoder::new().compress_vec(&raw) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(queue = q.cfg.display_name(), error = %e, "remote write: snappy failed; dropping the batch");
                q.metrics.failed.fetch_add(n, Ordering::Relaxed);
                return Outcome::Dropped;
            }
        };
        let len = body.len() as u64;
        let result = tokio::select! {
            r = attempt(q, body, proto) => r,
            _ = cancel.wait_for(|c| *c) => return Outcome::Cancelled,
        };
        match result {
            Attempt::Ok => {
                let m = &q.metrics;
                m.sent.fetch_add(n, Ordering::Relaxed);
                m.bytes.fetch_add(len, Ordering::Relaxed);
                if let Some(t) = items.iter().map(|i| i.t).max() {
                    m.highest_sent.fetch_max(t, Ordering::Relaxed);
                }
                return Outcome::Sent;
            }
            Attempt::Fatal => {
                q.metrics.failed.fetch_add(n, Ordering::Relaxed);
                return Outcome::Dropped;
            }
            Attempt::Unsupported => {
                tracing::warn!(
                    queue = q.cfg.display_name(),
                    "remote write: the receiver does not accept 2.0 (415); falling back to 1.0"
                );
                q.fall_back_to_v1();
                continue;
            }
            Attempt::Retry(after) => {
                q.metrics.retried.fetch_add(n, Ordering::Relaxed);
                q.metrics.note_retry();
                let wait = after.map_or(backoff, |a| a.min(max_backoff));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.wait_for(|c| *c) => return Outcome::Cancelled,
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn encodings_decode_with_the_receivers_messages() {
        use prost::Message;
        let a = vigil_model::labels!("__name__" => "up", "job" => "a");
        let b = vigil_model::labels!("__name__" => "up", "job" => "b");
        let items = vec![
            Item {
                labels: a.clone(),
                t: 1,
                v: 1.0,
            },
            Item {
                labels: b.clone(),
                t: 1,
                v: 2.0,
            },
            Item {
                labels: a.clone(),
                t: 2,
                v: 3.0,
            },
        ];
        let v1 = WriteRequest::decode(encode(&items, ProtobufMessage::V1).as_slice()).unwrap();
        assert_eq!(v1.timeseries.len(), 2);
        assert_eq!(v1.timeseries[0].samples.len(), 2);
        assert_eq!(v1.timeseries[0].samples[1].value, 3.0);
        assert_eq!(v1.timeseries[1].labels[1].value, "b");
        let v2m = v2::Request::decode(encode(&items, ProtobufMessage::V2).as_slice()).unwrap();
        assert_eq!(v2m.symbols[0], "");
        assert_eq!(v2m.timeseries.len(), 2);
        let refs = &v2m.timeseries[1].labels_refs;
        let pairs: Vec<(&str, &str)> = refs
            .chunks(2)
            .map(|p| (&*v2m.symbols[p[0] as usize], &*v2m.symbols[p[1] as usize]))
            .collect();
        assert_eq!(pairs, vec![("__name__", "up"), ("job", "b")]);
    }
}
