//! The remote-write sender: the `remote_write` section of the
//! configuration, forwarding everything vigil stores to another system
//! (Mimir, Thanos Receive, VictoriaMetrics, Prometheus...).
//!
//! It lives in the server crate, beside the receiver whose prost messages
//! it reuses, because it is wired to the configuration and `/metrics` like
//! the alert sender; the storage side is a small, generic API of
//! `vigil-tsdb` ([`vigil_tsdb::wal::WalTail`], `Wal::hold_segments`).
//!
//! **Durable queues.** Each `remote_write` entry is a [`queue`]: a thread
//! tails the WAL from a position saved under `<data>/remote_write/`, and
//! holds the WAL segments from that position on, so neither a receiver
//! outage nor a restart of vigil loses samples while the disk holds them.
//! The price: while a receiver is down, the WAL grows (watch
//! `vigil_remote_storage_samples_pending` and the WAL size).
//!
//! **Sending.** Samples are sharded by series hash; shards batch up to
//! `max_samples_per_send` or `batch_send_deadline`, retry 5xx, 429 and
//! network errors with exponential backoff (forever, as Prometheus does),
//! drop and count other 4xx. The shard count follows throughput.
//! Protocol 2.0 is sent when `protobuf_message` asks for it, with a fall
//! back to 1.0 when the receiver answers 415.
//!
//! **Reload.** [`RemoteWriteManager::apply`] keeps queues whose entry (and
//! the external labels) did not change; a changed entry restarts its queue
//! from the saved position; a removed entry stops and releases its WAL hold.

pub mod config;
pub(crate) mod queue;
pub(crate) mod send;

#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vigil_model::Labels;
use vigil_tsdb::Db;

pub use config::{ProtobufMessage, QueueConfig, RemoteWriteConfig};
use queue::{Queue, QueueShared};

/// The running queues.
#[derive(Debug)]
pub(crate) struct RemoteWriteManager {
    db: Arc<Db>,
    client: reqwest::Client,
    state_dir: PathBuf,
    queues: tokio::sync::Mutex<Vec<(RemoteWriteConfig, Labels, Queue)>>,
    /// What `/metrics` reads, without taking the async lock.
    shared: parking_lot::RwLock<Vec<Arc<QueueShared>>>,
}

impl RemoteWriteManager {
    /// A manager with no queues; positions go to `<data>/remote_write`.
    pub(crate) fn new(db: Arc<Db>) -> Result<RemoteWriteManager, String> {
        let state_dir = db.dir().join("remote_write");
        Ok(RemoteWriteManager {
            db,
            client: send::build_client()?,
            state_dir,
            queues: tokio::sync::Mutex::new(Vec::new()),
            shared: parking_lot::RwLock::new(Vec::new()),
        })
    }

    /// Runs the queues of `configs`: unchanged ones keep running, changed
    /// ones restart at their saved position, removed ones stop.
    pub(crate) async fn apply(
        &self,
        configs: &[RemoteWriteConfig],
        external: &Labels,
    ) -> Result<(), String> {
        let mut queues = self.queues.lock().await;
        let mut old = std::mem::take(&mut *queues);
        let mut next = Vec::with_capacity(configs.len());
        let mut to_start = Vec::new();
        for c in configs {
            match old.iter().position(|(oc, ol, _)| oc == c && ol == external) {
                Some(i) => next.push(old.swap_remove(i)),
                None => to_start.push(c.clone()),
            }
        }
        // Stop replaced and removed queues first: a changed entry's new
        // queue resumes from the position the old one saves.
        for (_, _, q) in old {
            q.stop().await;
        }
        let mut error = None;
        for c in to_start {
            match Queue::start(
                c.clone(),
                external.clone(),
                self.db.clone(),
                self.client.clone(),
                &self.state_dir,
            ) {
                Ok(q) => next.push((c, external.clone(), q)),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        *self.shared.write() = next.iter().map(|(_, _, q)| q.shared.clone()).collect();
        *queues = next;
        error.map_or(Ok(()), Err)
    }

    /// Stops every queue, saving positions.
    pub(crate) async fn stop(&self) {
        let mut queues = self.queues.lock().await;
        for (_, _, q) in queues.drain(..) {
            q.stop().await;
        }
        self.shared.write().clear();
    }

    /// Writes the `vigil_remote_storage_*` metrics in the text format.
    pub(crate) fn write_metrics(&self, out: &mut String) {
        let queues = self.shared.read().clone();
        write_queue_metrics(&queues, out);
    }
}

fn write_queue_metrics(queues: &[Arc<QueueShared>], out: &mut String) {
    type Get = fn(&QueueShared) -> f64;
    let families: [(&str, &str, &str, Get); 17] = [
        (
            "samples_pending",
            "gauge",
            "Samples read from the WAL and not yet sent or dropped.",
            |q| q.metrics.pending() as f64,
        ),
        (
            "samples_total",
            "counter",
            "Samples the receiver accepted.",
            |q| q.metrics.sent.load(Ordering::Relaxed) as f64,
        ),
        (
            "samples_failed_total",
            "counter",
            "Samples dropped because the receiver refused them with a non-retryable error (4xx).",
            |q| q.metrics.failed.load(Ordering::Relaxed) as f64,
        ),
        (
            "samples_retried_total",
            "counter",
            "Samples sent again after a retryable error (5xx, 429, network).",
            |q| q.metrics.retried.load(Ordering::Relaxed) as f64,
        ),
        (
            "samples_dropped_relabel_total",
            "counter",
            "Samples not sent because write_relabel_configs dropped their series.",
            |q| q.metrics.dropped_relabel.load(Ordering::Relaxed) as f64,
        ),
        (
            "samples_unknown_series_total",
            "counter",
            "Samples not sent because their series record was no longer in the WAL.",
            |q| q.metrics.dropped_unknown.load(Ordering::Relaxed) as f64,
        ),
        (
            "bytes_total",
            "counter",
            "Compressed request bytes the receiver accepted.",
            |q| q.metrics.bytes.load(Ordering::Relaxed) as f64,
        ),
        (
            "highest_timestamp_in_seconds",
            "gauge",
            "Newest sample timestamp the queue read from the WAL.",
            |q| secs(q.metrics.highest_in.load(Ordering::Relaxed)),
        ),
        (
            "queue_highest_sent_timestamp_seconds",
            "gauge",
            "Newest sample timestamp the receiver accepted.",
            |q| secs(q.metrics.highest_sent.load(Ordering::Relaxed)),
        ),
        (
            "lag_seconds",
            "gauge",
            "highest_timestamp_in_seconds minus queue_highest_sent_timestamp_seconds.",
            |q| {
                let (i, s) = (
                    q.metrics.highest_in.load(Ordering::Relaxed),
                    q.metrics.highest_sent.load(Ordering::Relaxed),
                );
                if i == i64::MIN || s == i64::MIN {
                    0.0
                } else {
                    (i - s).max(0) as f64 / 1000.0
                }
            },
        ),
        ("shards", "gauge", "Shards sending in parallel.", |q| {
            q.metrics.shards.load(Ordering::Relaxed) as f64
        }),
        (
            "shards_desired",
            "gauge",
            "Shards the throughput calls for.",
            |q| f64::from_bits(q.metrics.desired_shards.load(Ordering::Relaxed)),
        ),
        ("shards_min", "gauge", "queue_config.min_shards.", |q| {
            q.cfg.queue_config.min_shards as f64
        }),
        ("shards_max", "gauge", "queue_config.max_shards.", |q| {
            q.cfg.queue_config.max_shards as f64
        }),
        (
            "sent_batch_duration_seconds_sum",
            "counter",
            "Time spent in requests.",
            |q| q.metrics.send_micros.load(Ordering::Relaxed) as f64 / 1e6,
        ),
        (
            "wal_segment",
            "gauge",
            "The WAL segment the queue is reading.",
            |q| q.metrics.segment.load(Ordering::Relaxed) as f64,
        ),
        (
            "wal_skipped_total",
            "counter",
            "Times the queue skipped damaged or already deleted WAL data.",
            |q| q.metrics.skipped.load(Ordering::Relaxed) as f64,
        ),
    ];
    for (name, ty, help, get) in families {
        let _ = writeln!(
            out,
            "# HELP vigil_remote_storage_{name} {help}\n# TYPE vigil_remote_storage_{name} {ty}"
        );
        for q in queues {
            let _ = writeln!(
                out,
                "vigil_remote_storage_{name}{{remote_name=\"{}\",url=\"{}\"}} {}",
                escape(q.cfg.display_name()),
                escape(&q.cfg.url),
                crate::api::format_value(get(q))
            );
        }
    }
}

fn secs(ms: i64) -> f64 {
    if ms == i64::MIN {
        0.0
    } else {
        ms as f64 / 1000.0
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
