//! Sending alerts to Alertmanagers (`alerting.alertmanagers`) with the v2
//! API: a bounded queue, batches of 64, every Alertmanager gets every
//! batch, retries with backoff on network errors, 5xx and 429, and
//! `prometheus_notifications_*`-style metrics.
//!
//! Alerts also go to vigil's own notifier when the `notify:` section
//! configures it; with neither, they are logged.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde_json::{json, Map, Value as Json};
use vigil_rules::{AlertSink, OutgoingAlert};

use crate::config::AlertmanagerConfig;

/// The most alerts waiting to be sent; older ones are dropped beyond it
/// (Prometheus's `--alertmanager.notification-queue-capacity`).
pub(crate) const QUEUE_CAPACITY: usize = 10_000;
/// Alerts per request, as Prometheus batches them.
const MAX_BATCH: usize = 64;
/// Attempts per batch and Alertmanager.
const ATTEMPTS: u32 = 3;

#[derive(Debug, Default)]
struct AmStats {
    sent: AtomicU64,
    errors: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

/// The sender: a queue and a task that drains it.
#[derive(Debug)]
pub(crate) struct Notifier {
    queue: Mutex<VecDeque<OutgoingAlert>>,
    wake: tokio::sync::Notify,
    config: RwLock<Vec<AlertmanagerConfig>>,
    stats: RwLock<Vec<(String, Arc<AmStats>)>>,
    dropped: AtomicU64,
    client: reqwest::Client,
    /// vigil's own notifier (the `notify:` section), when configured: rule
    /// alerts go to it in-process as well.
    local: RwLock<Option<Arc<vigil_notify::Notifier>>>,
}

impl Notifier {
    pub(crate) fn new() -> Result<Arc<Notifier>, String> {
        let client = vigil_scrape::client_builder()
            .and_then(|b| Ok(b.build()?))
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Notifier {
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            config: RwLock::new(Vec::new()),
            stats: RwLock::new(Vec::new()),
            dropped: AtomicU64::new(0),
            client,
            local: RwLock::new(None),
        }))
    }

    /// Sets (or clears) vigil's own notifier as a destination.
    pub(crate) fn set_local(&self, local: Option<Arc<vigil_notify::Notifier>>) {
        *self.local.write() = local;
    }

    /// Sets the Alertmanagers alerts go to.
    pub(crate) fn apply(&self, ams: &[AlertmanagerConfig]) {
        let mut stats = self.stats.write();
        let old = std::mem::take(&mut *stats);
        for am in ams {
            for t in &am.targets {
                let url = am.url(t);
                let s = old
                    .iter()
                    .find(|(u, _)| *u == url)
                    .map_or_else(Arc::default, |(_, s)| s.clone());
                stats.push((url, s));
            }
        }
        *self.config.write() = ams.to_vec();
    }

    /// Runs the sending loop until the notifier is dropped by everyone
    /// else (the task holds a weak reference).
    pub(crate) fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(n) = weak.upgrade() else { return };
                let batch: Vec<OutgoingAlert> = {
                    let mut q = n.queue.lock();
                    let k = q.len().min(MAX_BATCH);
                    q.drain(..k).collect()
                };
                if batch.is_empty() {
                    // Re-check after a while even without a wake-up, so the
                    // weak reference is noticed when the server stops.
                    let _ = tokio::time::timeout(Duration::from_secs(1), n.wake.notified()).await;
                    continue;
                }
                n.send_batch(&batch).await;
            }
        })
    }

    async fn send_batch(&self, batch: &[OutgoingAlert]) {
        let body = alerts_json(batch).to_string();
        let targets: Vec<(String, Duration, Arc<AmStats>)> = {
            let cfg = self.config.read();
            let stats = self.stats.read();
            cfg.iter()
                .flat_map(|am| {
                    am.targets
                        .iter()
                        .map(move |t| (am.url(t), Duration::from_millis(am.timeout.max(1) as u64)))
                })
                .map(|(url, timeout)| {
                    let s = stats
                        .iter()
                        .find(|(u, _)| *u == url)
                        .map_or_else(Arc::default, |(_, s)| s.clone());
                    (url, timeout, s)
                })
                .collect()
        };
        for (url, timeout, stats) in targets {
            let started = Instant::now();
            let mut ok = false;
            for attempt in 0..ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                let r = self
                    .client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .timeout(timeout)
                    .body(body.clone())
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        ok = true;
                        break;
                    }
                    Ok(resp) => {
                        let code = resp.status();
                        tracing::warn!(alertmanager = %url, status = %code, "Alertmanager refused alerts");
                        if !(code.is_server_error() || code.as_u16() == 429) {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(alertmanager = %url, error = %e, attempt, "sending alerts failed");
                    }
                }
            }
            stats
                .latency_sum_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            stats.latency_count.fetch_add(1, Ordering::Relaxed);
            if ok {
                stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
            } else {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The notification metrics in the text format.
    pub(crate) fn write_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP vigil_notifications_queue_length The number of alerts waiting to be sent.\n\
             # TYPE vigil_notifications_queue_length gauge\n\
             vigil_notifications_queue_length {}\n\
             # HELP vigil_notifications_queue_capacity The capacity of the alert queue.\n\
             # TYPE vigil_notifications_queue_capacity gauge\n\
             vigil_notifications_queue_capacity {QUEUE_CAPACITY}\n\
             # HELP vigil_notifications_dropped_total Alerts dropped because the queue was full.\n\
             # TYPE vigil_notifications_dropped_total counter\n\
             vigil_notifications_dropped_total {}",
            self.queue.lock().len(),
            self.dropped.load(Ordering::Relaxed)
        );
        let stats = self.stats.read();
        let _ = writeln!(
            out,
            "# HELP vigil_notifications_alertmanagers_discovered The number of Alertmanagers alerts are sent to.\n\
             # TYPE vigil_notifications_alertmanagers_discovered gauge\n\
             vigil_notifications_alertmanagers_discovered {}",
            stats.len()
        );
        type Family = (
            &'static str,
            &'static str,
            &'static str,
            fn(&AmStats) -> String,
        );
        let families: [Family; 4] = [
            (
                "vigil_notifications_sent_total",
                "counter",
                "Alerts sent.",
                |s| s.sent.load(Ordering::Relaxed).to_string(),
            ),
            (
                "vigil_notifications_errors_total",
                "counter",
                "Batches that could not be sent after retries.",
                |s| s.errors.load(Ordering::Relaxed).to_string(),
            ),
            (
                "vigil_notifications_latency_seconds_sum",
                "counter",
                "Time spent sending batches, with retries.",
                |s| (s.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6).to_string(),
            ),
            (
                "vigil_notifications_latency_seconds_count",
                "counter",
                "Batches sent or attempted.",
                |s| s.latency_count.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, ty, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for (url, s) in stats.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{alertmanager=\"{}\"}} {}",
                    url.replace('\\', "\\\\").replace('"', "\\\""),
                    get(s)
                );
            }
        }
    }
}

impl AlertSink for Notifier {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let local = self.local.read().clone();
        if let Some(n) = &local {
            let converted = alerts
                .iter()
                .map(|a| vigil_notify::Alert {
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: a.starts_at,
                    ends_at: a.ends_at,
                    generator_url: a.generator_url.clone(),
                    updated_at: 0,
                })
                .collect();
            if let Err(e) = n.receive(converted) {
                tracing::warn!(error = %e, "vigil's notifier refused alerts");
            }
        }
        if self.config.read().is_empty() {
            if local.is_none() {
                let now = vigil_model::time::now_ms();
                for a in &alerts {
                    tracing::info!(
                        alert = %a.labels,
                        state = if a.is_resolved(now) { "resolved" } else { "firing" },
                        "alert (no Alertmanager and no notify: section configured)"
                    );
                }
            }
            return;
        }
        let mut q = self.queue.lock();
        q.extend(alerts);
        if q.len() > QUEUE_CAPACITY {
            let over = q.len() - QUEUE_CAPACITY;
            q.drain(..over);
            self.dropped.fetch_add(over as u64, Ordering::Relaxed);
            tracing::warn!(
                dropped = over,
                "alert queue full; dropped the oldest alerts"
            );
        }
        drop(q);
        self.wake.notify_one();
    }
}

/// Alertmanager's v2 `postableAlerts` body.
pub(crate) fn alerts_json(alerts: &[OutgoingAlert]) -> Json {
    Json::Array(
        alerts
            .iter()
            .map(|a| {
                let labels: Map<String, Json> = a
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), Json::from(l.value)))
                    .collect();
                let annotations: Map<String, Json> = a
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
                    .collect();
                json!({
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": rfc3339(a.starts_at),
                    "endsAt": rfc3339(a.ends_at),
                    "generatorURL": a.generator_url,
                })
            })
            .collect(),
    )
}

/// RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
