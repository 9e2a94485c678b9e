//! One queue: a thread that tails the WAL, and shards that send.
//!
//! The reader thread follows the WAL with [`WalTail`] from the queue's saved
//! position, keeps a map from series reference to the labels it sends
//! (external labels added, `write_relabel_configs` applied, `None` when
//! dropped), and hands samples to shards by series hash, so each series'
//! samples stay in order. Shards are tokio tasks behind bounded channels
//! (`capacity` samples each): when they fall behind the reader blocks and
//! the WAL, held by the queue's [`SegmentHold`], keeps the data on disk.
//!
//! Every record read gets a sequence number and the position after it. A
//! batch acknowledges the samples it carried, per record; the position of
//! the newest record whose samples are all acknowledged (sent, or refused
//! with a 4xx) is the queue's committed position, saved to
//! `<data>/remote_write/<key>.json` every second and at stop. A restart
//! resumes there, so nothing acknowledged is lost and nothing is skipped;
//! samples sent but not yet committed are sent again (receivers keep one
//! sample per series and timestamp).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use vigil_model::{Labels, LabelsBuilder};
use vigil_tsdb::record::{self, SampleRecord, SeriesRecord};
use vigil_tsdb::wal::{last_checkpoint, segments, SegmentHold, WalPosition, WalReader, WalTail};
use vigil_tsdb::Db;

use super::config::{ProtobufMessage, RemoteWriteConfig};
use super::send::{send_batch, Outcome};

/// One sample on its way out.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) labels: Labels,
    pub(crate) t: i64,
    pub(crate) v: f64,
}

/// Samples for one shard and the records they came from.
#[derive(Debug, Default)]
struct Block {
    items: Vec<Item>,
    /// (record sequence number, samples of it in this block)
    acks: Vec<(u64, u64)>,
}

/// The queue's counters, read by `/metrics`.
#[derive(Debug)]
pub(crate) struct QueueMetrics {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dropped_relabel: AtomicU64,
    pub(crate) dropped_unknown: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) dispatched: AtomicU64,
    pub(crate) acked: AtomicU64,
    /// Newest sample timestamp read from the WAL, ms.
    pub(crate) highest_in: AtomicI64,
    /// Newest sample timestamp the receiver took, ms.
    pub(crate) highest_sent: AtomicI64,
    pub(crate) shards: AtomicUsize,
    pub(crate) desired_shards: AtomicU64,
    pub(crate) send_micros: AtomicU64,
    pub(crate) sends: AtomicU64,
    pub(crate) retry_events: AtomicU64,
    pub(crate) segment: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) last_error: Mutex<String>,
}

impl Default for QueueMetrics {
    fn default() -> Self {
        QueueMetrics {
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dropped_relabel: AtomicU64::new(0),
            dropped_unknown: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dispatched: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            highest_in: AtomicI64::new(i64::MIN),
            highest_sent: AtomicI64::new(i64::MIN),
            shards: AtomicUsize::new(0),
            desired_shards: AtomicU64::new(0),
            send_micros: AtomicU64::new(0),
            sends: AtomicU64::new(0),
            retry_events: AtomicU64::new(0),
            segment: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
        }
    }
}

impl QueueMetrics {
    pub(crate) fn record_duration(&self, d: Duration) {
        self.send_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.sends.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn note_retry(&self) {
        self.retry_events.fetch_add(1, Ordering::Relaxed);
    }

    /// Samples read and not yet acknowledged.
    pub(crate) fn pending(&self) -> u64 {
        self.dispatched
            .load(Ordering::Relaxed)
            .saturating_sub(self.acked.load(Ordering::Relaxed))
    }
}

/// Which records are fully acknowledged.
#[derive(Debug, Default)]
struct Tracker {
    front_seq: u64,
    /// Per record from `front_seq` on: samples not yet acknowledged, and
    /// the position after the record.
    pending: VecDeque<(u64, WalPosition)>,
    committed: WalPosition,
}

impl Tracker {
    fn register(&mut self, end: WalPosition, n: u64) -> u64 {
        let seq = self.front_seq + self.pending.len() as u64;
        self.pending.push_back((n, end));
        self.pop();
        seq
    }

    fn ack(&mut self, seq: u64, n: u64) {
        if let Some(idx) = seq.checked_sub(self.front_seq) {
            if let Some(e) = self.pending.get_mut(idx as usize) {
                e.0 = e.0.saturating_sub(n);
            }
        }
        self.pop();
    }

    fn pop(&mut self) {
        while let Some(&(0, end)) = self.pending.front() {
            self.committed = end;
            self.pending.pop_front();
            self.front_seq += 1;
        }
    }
}

/// What the reader and the shards share.
#[derive(Debug)]
pub(crate) struct QueueShared {
    pub(crate) cfg: RemoteWriteConfig,
    pub(crate) client: reqwest::Client,
    pub(crate) metrics: QueueMetrics,
    v2: AtomicBool,
    tracker: Mutex<Tracker>,
}

impl QueueShared {
    /// The message the queue sends now.
    pub(crate) fn proto(&self) -> ProtobufMessage {
        if self.v2.load(Ordering::Relaxed) {
            ProtobufMessage::V2
        } else {
            ProtobufMessage::V1
        }
    }

    /// The receiver refused 2.0: send 1.0 from now on.
    pub(crate) fn fall_back_to_v1(&self) {
        self.v2.store(false, Ordering::Relaxed);
    }

    fn ack(&self, acks: &[(u64, u64)]) {
        let mut t = self.tracker.lock();
        let mut n = 0;
        for &(seq, k) in acks {
            t.ack(seq, k);
            n += k;
        }
        drop(t);
        self.metrics.acked.fetch_add(n, Ordering::Relaxed);
    }

    fn committed(&self) -> WalPosition {
        self.tracker.lock().committed
    }
}

/// A running queue.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) shared: Arc<QueueShared>,
    stop: Arc<AtomicBool>,
    cancel: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The saved position of a queue.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedPosition {
    segment: u64,
    offset: u64,
    /// For people reading the file.
    #[serde(default)]
    queue: String,
}

fn load_position(path: &Path) -> Option<WalPosition> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str::<SavedPosition>(&text) {
        Ok(p) => Some(WalPosition {
            segment: p.segment,
            offset: p.offset,
        }),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "remote write: unreadable queue position; starting at the newest WAL segment");
            None
        }
    }
}

fn save_position(path: &Path, pos: WalPosition, queue: &str) -> std::io::Result<()> {
    use std::io::Write;
    let body = serde_json::to_vec(&SavedPosition {
        segment: pos.segment,
        offset: pos.offset,
        queue: queue.to_string(),
    })
    .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

impl Queue {
    /// Starts a queue for `cfg`, resuming at its saved position (or at the
    /// start of the WAL's newest segment for a new queue).
    pub(crate) fn start(
        cfg: RemoteWriteConfig,
        external: Labels,
        db: Arc<Db>,
        client: reqwest::Client,
        state_dir: &Path,
    ) -> Result<Queue, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
        let pos_file = state_dir.join(format!("{}.json", cfg.position_key()));
        let wal = db.head().wal();
        let current = wal.current_segment();
        let saved = load_position(&pos_file);
        let start = match saved {
            Some(p) if p.segment <= current => p,
            Some(p) => {
                tracing::warn!(queue = cfg.display_name(), saved = ?p, current,
                    "remote write: saved position is past the WAL; starting at the newest segment");
                WalPosition {
                    segment: current,
                    offset: 0,
                }
            }
            None => WalPosition {
                segment: current,
                offset: 0,
            },
        };
        // Hold first, then look at what exists.
        let hold = wal.hold_segments(start.segment);
        // A new (or reset) queue's starting point must be durable at once:
        // otherwise a restart before its first acknowledgement would start
        // it again at the then newest segment, skipping what came before.
        if saved != Some(start) {
            save_position(&pos_file, start, cfg.display_name())
                .map_err(|e| format!("saving {}: {e}", pos_file.display()))?;
        }
        let shared = Arc::new(QueueShared {
            v2: AtomicBool::new(cfg.protobuf_message == ProtobufMessage::V2),
            cfg,
            client,
            metrics: QueueMetrics::default(),
            tracker: Mutex::new(Tracker {
                committed: start,
                ..Tracker::default()
            }),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (cancel, cancel_rx) = watch::channel(false);
        let rt = tokio::runtime::Handle::current();
        let mut reader = Reader {
            shared: shared.clone(),
            wal_dir: wal.dir().to_path_buf(),
            rt,
            external,
            series: HashMap::new(),
            shards: Vec::new(),
            cancel_rx,
            stop: stop.clone(),
            pos_file,
            hold,
            last_saved: start,
            gc_checkpoint: None,
        };
        let thread = std::thread::Builder::new()
            .name("vigil-remote-write".into())
            .spawn(move || reader.run(start))
            .map_err(|e| format!("starting the remote-write reader: {e}"))?;
        Ok(Queue {
            shared,
            stop,
            cancel,
            thread: Some(thread),
        })
    }

    /// Stops the queue: sends in flight are abandoned (their samples stay
    /// after the saved position) and the position is saved.
    pub(crate) async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cancel.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cancel.send_replace(true);
    }
}

struct Shard {
    tx: mpsc::Sender<Block>,
    task: tokio::task::JoinHandle<()>,
    acc: Block,
}

struct Reader {
    shared: Arc<QueueShared>,
    wal_dir: PathBuf,
    rt: tokio::runtime::Handle,
    external: Labels,
    /// Series reference -> (segment of its series record, labels to send
    /// or `None` when relabeling dropped it).
    series: HashMap<u64, (u64, Option<Labels>)>,
    shards: Vec<Shard>,
    cancel_rx: watch::Receiver<bool>,
    stop: Arc<AtomicBool>,
    pos_file: PathBuf,
    hold: SegmentHold,
    last_saved: WalPosition,
    gc_checkpoint: Option<u64>,
}

/// How often the reader looks for new records once it has caught up.
const POLL: Duration = Duration::from_millis(25);
/// How often shards are re-counted.
const RESHARD_EVERY: Duration = Duration::from_secs(10);

impl Reader {
    fn run(&mut self, start: WalPosition) {
        self.load_series(start);
        let mut tail = WalTail::new(&self.wal_dir, start);
        let min = self.shared.cfg.queue_config.min_shards;
        self.spawn_shards(min);
        let mut last_save = Instant::now();
        let mut reshard = Resharder::new(&self.shared.metrics);
        let mut series_buf = Vec::new();
        let mut samples_buf = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let mut idle = false;
            for _ in 0..512 {
                match tail.next_record() {
                    Ok(Some(rec)) => {
                        let (seg, next) = (rec.at.segment, rec.next);
                        self.record(rec.data, seg, next, &mut series_buf, &mut samples_buf);
                    }
                    Ok(None) => {
                        idle = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(queue = self.shared.cfg.display_name(), error = %e, "remote write: reading the WAL failed; retrying");
                        idle = true;
                        break;
                    }
                }
            }
            let m = &self.shared.metrics;
            m.segment.store(tail.position().segment, Ordering::Relaxed);
            m.skipped.store(tail.skipped(), Ordering::Relaxed);
            if idle {
                self.flush_all();
            }
            if last_save.elapsed() >= Duration::from_secs(1) {
                last_save = Instant::now();
                self.save();
                self.collect_series(tail.position().segment);
            }
            if let Some(n) = reshard.decide(&self.shared, self.shards.len()) {
                self.reshard(n);
            }
            if idle {
                std::thread::sleep(POLL);
            }
        }
        for s in std::mem::take(&mut self.shards) {
            drop(s.tx);
            let _ = self.rt.block_on(s.task);
        }
        self.save();
    }

    fn save(&mut self) {
        let pos = self.shared.committed();
        self.hold.set(pos.segment);
        if pos == self.last_saved {
            return;
        }
        match save_position(&self.pos_file, pos, self.shared.cfg.display_name()) {
            Ok(()) => self.last_saved = pos,
            Err(e) => {
                tracing::warn!(queue = self.shared.cfg.display_name(), file = %self.pos_file.display(), error = %e, "remote write: cannot save the queue position")
            }
        }
    }

    /// The labels a series is sent with, or `None` when dropped.
    fn outgoing(&self, labels: &Labels) -> Option<Labels> {
        let mut b = LabelsBuilder::from_labels(labels);
        for l in self.external.iter() {
            if labels.get(l.name).is_none() {
                b.set(l.name, l.value);
            }
        }
        if !vigil_scrape::relabel::process(&mut b, &self.shared.cfg.write_relabel_configs) {
            return None;
        }
        let out = b.build();
        (!out.is_empty()).then_some(out)
    }

    fn add_series(&mut self, s: &SeriesRecord, segment: u64) {
        let out = self.outgoing(&s.labels);
        self.series.insert(s.sref, (segment, out));
    }

    /// Learns the series the samples from `start` on may refer to: those
    /// of the last checkpoint, then the series records of the segments
    /// after it up to `start`.
    fn load_series(&mut self, start: WalPosition) {
        let mut buf = Vec::new();
        let ckpt = match last_checkpoint(&self.wal_dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "remote write: cannot list WAL checkpoints");
                None
            }
        };
        if let Some((index, path)) = &ckpt {
            if let Ok(mut r) = WalReader::open(path) {
                while let Some(Ok(rec)) = r.next_record() {
                    if record::record_type(rec.data) == Some(record::TYPE_SERIES) {
                        buf.clear();
                        if record::decode_series(rec.data, &mut buf).is_ok() {
                            for s in &buf {
                                self.add_series(s, *index);
                            }
                        }
                    }
                }
            }
            self.gc_checkpoint = Some(*index);
        }
        let first = match &ckpt {
            Some((index, _)) => index + 1,
            None => segments(&self.wal_dir)
                .ok()
                .and_then(|s| s.first().copied())
                .unwrap_or(start.segment),
        }
        .min(start.segment);
        let mut tail = WalTail::new(
            &self.wal_dir,
            WalPosition {
                segment: first,
                offset: 0,
            },
        );
        while let Ok(Some(rec)) = tail.next_record() {
            if rec.at >= start {
                break;
            }
            if record::record_type(rec.data) == Some(record::TYPE_SERIES) {
                buf.clear();
                if record::decode_series(rec.data, &mut buf).is_ok() {
                    let seg = rec.at.segment;
                    for s in &buf {
                        self.add_series(s, seg);
                    }
                }
            }
        }
    }

    /// Forgets series the head dropped: after a new checkpoint that the
    /// reader has passed, a series whose record is in a checkpointed
    /// segment and not in the checkpoint is gone for good.
    fn collect_series(&mut self, reading: u64) {
        let Ok(Some((index, path))) = last_checkpoint(&self.wal_dir) else {
            return;
        };
        if self.gc_checkpoint == Some(index) || index >= reading {
            return;
        }
        let mut live = HashSet::new();
        let mut buf = Vec::new();
        let Ok(mut r) = WalReader::open(&path) else {
            return;
        };
        while let Some(rec) = r.next_record() {
            let Ok(rec) = rec else {
                // A damaged checkpoint: forget nothing.
                return;
            };
            if record::record_type(rec.data) == Some(record::TYPE_SERIES) {
                buf.clear();
                if record::decode_series(rec.data, &mut buf).is_ok() {
                    live.extend(buf.iter().map(|s| s.sref));
                }
            }
        }
        self.series
            .retain(|sref, (seg, _)| *seg > index || live.contains(sref));
        self.gc_checkpoint = Some(index);
    }

    fn record(
        &mut self,
        data: &[u8],
        segment: u64,
        next: WalPosition,
        series_buf: &mut Vec<SeriesRecord>,
        samples_buf: &mut Vec<SampleRecord>,
    ) {
        match record::record_type(data) {
            Some(record::TYPE_SERIES) => {
                series_buf.clear();
                if let Err(e) = record::decode_series(data, series_buf) {
                    tracing::warn!(error = %e, "remote write: skipping a series record that does not decode");
                }
                for s in series_buf.iter() {
                    self.add_series(s, segment);
                }
                self.shared.tracker.lock().register(next, 0);
            }
            Some(record::TYPE_SAMPLES | record::TYPE_OOO_SAMPLES) => {
                samples_buf.clear();
                if let Err(e) = record::decode_samples(data, samples_buf) {
                    tracing::warn!(error = %e, "remote write: skipping a samples record that does not decode");
                }
                self.samples(samples_buf, next);
            }
            _ => {
                self.shared.tracker.lock().register(next, 0);
            }
        }
    }

    fn samples(&mut self, samples: &[SampleRecord], next: WalPosition) {
        let n = self.shards.len().max(1);
        let mut routed: Vec<(usize, Item)> = Vec::with_capacity(samples.len());
        let m = &self.shared.metrics;
        let mut highest = i64::MIN;
        for s in samples {
            match self.series.get(&s.sref) {
                Some((_, Some(labels))) => {
                    highest = highest.max(s.t);
                    let shard = (labels.stable_hash() % n as u64) as usize;
                    routed.push((
                        shard,
                        Item {
                            labels: labels.clone(),
                            t: s.t,
                            v: s.v,
                        },
                    ));
                }
                Some((_, None)) => {
                    m.dropped_relabel.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    m.dropped_unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        m.highest_in.fetch_max(highest, Ordering::Relaxed);
        let total = routed.len() as u64;
        m.dispatched.fetch_add(total, Ordering::Relaxed);
        let seq = self.shared.tracker.lock().register(next, total);
        if total == 0 {
            return;
        }
        let mut counts = vec![0u64; n];
        for (shard, item) in routed {
            counts[shard] += 1;
            self.shards[shard].acc.items.push(item);
        }
        let max = self.shared.cfg.queue_config.max_samples_per_send;
        for (shard, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            self.shards[shard].acc.acks.push((seq, c));
            if self.shards[shard].acc.items.len() >= max {
                self.flush(shard);
            }
        }
    }

    fn flush(&mut self, shard: usize) {
        let Some(s) = self.shards.get_mut(shard) else {
            return;
        };
        if s.acc.items.is_empty() {
            return;
        }
        let block = std::mem::take(&mut s.acc);
        let tx = s.tx.clone();
        // Blocks while the shard is full: the push-back that keeps memory
        // bounded. A stopping queue's shards drop their receivers, which
        // ends the wait.
        let _ = self.rt.block_on(tx.send(block));
    }

    fn flush_all(&mut self) {
        for i in 0..self.shards.len() {
            self.flush(i);
        }
    }

    fn spawn_shards(&mut self, n: usize) {
        let qc = &self.shared.cfg.queue_config;
        let per_shard = qc.capacity.div_ceil(qc.max_samples_per_send).max(1);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(per_shard);
            let task = self
                .rt
                .spawn(run_shard(self.shared.clone(), rx, self.cancel_rx.clone()));
            self.shards.push(Shard {
                tx,
                task,
                acc: Block::default(),
            });
        }
        self.shared.metrics.shards.store(n, Ordering::Relaxed);
    }

    /// Drains the shards (they send everything they hold) and starts `n`
    /// new ones; a series moves shards only after its old shard is empty,
    /// so its samples stay in order.
    fn reshard(&mut self, n: usize) {
        tracing::info!(
            queue = self.shared.cfg.display_name(),
            from = self.shards.len(),
            to = n,
            "remote write: resharding"
        );
        self.flush_all();
        for s in std::mem::take(&mut self.shards) {
            drop(s.tx);
            let _ = self.rt.block_on(s.task);
        }
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        self.spawn_shards(n);
    }
}

async fn run_shard(
    q: Arc<QueueShared>,
    mut rx: mpsc::Receiver<Block>,
    mut cancel: watch::Receiver<bool>,
) {
    let max = q.cfg.queue_config.max_samples_per_send;
    let deadline = q.cfg.queue_config.batch_send_deadline.to_std();
    loop {
        let mut batch = tokio::select! {
            b = rx.recv() => match b {
                Some(b) => b,
                None => return,
            },
            _ = cancel.wait_for(|c| *c) => return,
        };
        let until = tokio::time::Instant::now() + deadline;
        let mut closed = false;
        while batch.items.len() < max {
            tokio::select! {
                b = rx.recv() => match b {
                    Some(b) => {
                        batch.items.extend(b.items);
                        batch.acks.extend(b.acks);
                    }
                    None => {
                        closed = true;
                        break;
                    }
                },
                _ = tokio::time::sleep_until(until) => break,
                _ = cancel.wait_for(|c| *c) => return,
            }
        }
        match send_batch(&q, &batch.items, &mut cancel).await {
            Outcome::Sent | Outcome::Dropped => q.ack(&batch.acks),
            Outcome::Cancelled => return,
        }
        if closed {
            return;
        }
    }
}

/// Prometheus's shard calculation, simplified: the send time one sample
/// costs, times the rate samples arrive plus a twentieth of the backlog per
/// second, is the number of senders needed. Changes of less than 30% are
/// ignored, and nothing changes while sends are being retried (more shards
/// do not help a receiver that is down).
struct Resharder {
    last: Instant,
    dispatched: u64,
    sent: u64,
    micros: u64,
    retries: u64,
    rate_in: Option<f64>,
}

impl Resharder {
    fn new(m: &QueueMetrics) -> Self {
        Resharder {
            last: Instant::now(),
            dispatched: m.dispatched.load(Ordering::Relaxed),
            sent: m.acked.load(Ordering::Relaxed),
            micros: m.send_micros.load(Ordering::Relaxed),
            retries: m.retry_events.load(Ordering::Relaxed),
            rate_in: None,
        }
    }

    fn decide(&mut self, q: &QueueShared, current: usize) -> Option<usize> {
        let elapsed = self.last.elapsed();
        if elapsed < RESHARD_EVERY {
            return None;
        }
        let m = &q.metrics;
        let now = Resharder::new(m);
        let secs = elapsed.as_secs_f64();
        let d_in = now.dispatched.saturating_sub(self.dispatched) as f64;
        let d_out = now.sent.saturating_sub(self.sent) as f64;
        let d_micros = now.micros.saturating_sub(self.micros) as f64;
        let retried = now.retries > self.retries;
        let rate = d_in / secs;
        let rate_in = match self.rate_in {
            Some(r) => 0.8 * r + 0.2 * rate,
            None => rate,
        };
        *self = Resharder {
            rate_in: Some(rate_in),
            ..now
        };
        let qc = &q.cfg.queue_config;
        let desired = if d_out > 0.0 {
            let per_sample = d_micros / 1e6 / d_out;
            desired_shards(per_sample, rate_in, m.pending() as f64)
        } else {
            current as f64
        };
        m.desired_shards.store(desired.to_bits(), Ordering::Relaxed);
        if retried {
            return None;
        }
        choose_shards(desired, current, qc.min_shards, qc.max_shards)
    }
}

/// Senders needed for `rate_in` samples/s when one sample costs
/// `per_sample` seconds of send time, catching up a twentieth of the
/// backlog per second.
pub(crate) fn desired_shards(per_sample: f64, rate_in: f64, backlog: f64) -> f64 {
    per_sample * (rate_in + 0.05 * backlog)
}

/// The new shard count, or `None` to keep `current`.
pub(crate) fn choose_shards(desired: f64, current: usize, min: usize, max: usize) -> Option<usize> {
    let cur = current as f64;
    if desired > cur * 0.7 && desired < cur * 1.3 {
        return None;
    }
    let n = (desired.ceil().max(0.0) as usize).clamp(min, max);
    (n != current).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_commits_in_order() {
        let pos = |o| WalPosition {
            segment: 0,
            offset: o,
        };
        let mut t = Tracker::default();
        let a = t.register(pos(10), 2);
        let b = t.register(pos(20), 0);
        let c = t.register(pos(30), 1);
        assert_eq!(t.committed, pos(0));
        t.ack(c, 1);
        assert_eq!(t.committed, pos(0), "a later record does not commit alone");
        t.ack(a, 1);
        assert_eq!(t.committed, pos(0));
        t.ack(a, 1);
        assert_eq!(t.committed, pos(30));
        let _ = b;
        let d = t.register(pos(40), 0);
        assert_eq!(t.committed, pos(40));
        t.ack(d, 5); // stale or repeated acks are harmless
        assert_eq!(t.committed, pos(40));
    }

    #[test]
    fn shard_choice() {
        // Within 30%: keep.
        assert_eq!(choose_shards(1.2, 1, 1, 10), None);
        assert_eq!(choose_shards(4.5, 4, 1, 10), None);
        // Up, clamped to max.
        assert_eq!(choose_shards(3.2, 1, 1, 10), Some(4));
        assert_eq!(choose_shards(30.0, 4, 1, 10), Some(10));
        // Down, clamped to min.
        assert_eq!(choose_shards(0.1, 8, 2, 10), Some(2));
        assert_eq!(choose_shards(0.0, 1, 1, 10), None);
        // 10ms per sample at 1000/s needs 10 senders.
        assert!((desired_shards(0.01, 1000.0, 0.0) - 10.0).abs() < 1e-9);
        assert!((desired_shards(0.01, 0.0, 2000.0) - 1.0).abs() < 1e-9);
    }
}
