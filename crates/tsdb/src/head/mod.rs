//! The head: the in-memory part of the database for recent samples.
//!
//! - Series live in striped maps, one by reference and one by label hash
//!   (hash collisions are handled by comparing labels). Each series has a
//!   stable [`SeriesRef`](vigil_model::SeriesRef) handed out in increasing order.
//! - Each series keeps one open chunk in memory. Completed chunks are written
//!   to the head chunk file ([`crate::chunks_head`]) and read back through a
//!   memory map, so RAM holds only open chunks, chunk metadata and the index.
//! - Every committed batch is first written to the WAL; replay at start-up
//!   rebuilds the head from the head chunk files and the WAL.
//! - An optional out-of-order window accepts older samples into a small
//!   per-series sorted buffer that reads merge in.
//!
//! The code is split by phase, as Prometheus splits `head.go`:
//! `append.rs` (appenders and commit), `read.rs` (querier), `replay.rs`
//! (start-up), `index.rs` (postings), `series.rs` (one series).

mod append;
mod index;
mod persist;
mod read;
mod replay;
mod series;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use vigil_model::{Labels, LimitError};

pub use append::HeadAppender;
pub use persist::Persisted;
pub use read::HeadQuerier;

use crate::chunkenc::Encoding;
use crate::chunks_head::ChunkDiskMapper;
use crate::error::TsdbError;
use crate::wal::{SyncPolicy, Wal, WalOptions};
pub use index::Cardinality;
use index::PostingsIndex;
use series::{CutPolicy, SeriesEntry};

/// Number of stripes of the series maps: a power of two.
const STRIPES: usize = 1 << 10;

/// Settings of the head.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Chunks never cross a multiple of this range (ms): the block range.
    pub chunk_range: i64,
    /// Samples per head chunk before it is cut.
    pub samples_per_chunk: u16,
    /// Samples per chunk in blocks written from the head: head chunks of a
    /// block range are joined up to this size (fewer chunk headers and index
    /// entries per sample on disk).
    pub block_chunk_samples: u16,
    /// Encoding of new chunks.
    pub encoding: Encoding,
    /// How far back (ms) behind a series' newest sample an older sample is
    /// still accepted. 0 rejects every out-of-order sample.
    pub out_of_order_window: i64,
    /// WAL fsync policy.
    pub wal_sync: SyncPolicy,
    /// WAL segment size in bytes.
    pub wal_segment_size: u64,
    /// Head chunk file size in bytes.
    pub chunk_file_size: u64,
    /// Limits on what a series may look like; 0 means unlimited.
    pub limits: Limits,
}

/// Limits on series, checked when a series is created. 0 means unlimited.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Labels per series.
    pub max_labels: usize,
    /// Bytes in a label name.
    pub max_label_name_len: usize,
    /// Bytes in a label value.
    pub max_label_value_len: usize,
    /// Series in the head.
    pub max_series: usize,
    /// Series in the head with one metric name.
    pub max_series_per_metric: usize,
}

/// The names of the limits, in the order [`HeadStats::limit_hits`] counts
/// them.
pub const LIMIT_NAMES: [&str; 5] = [
    "series_total",
    "series_per_metric",
    "labels_per_series",
    "label_name_length",
    "label_value_length",
];

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range: 2 * 3600 * 1000,
            samples_per_chunk: 120,
            block_chunk_samples: 480,
            encoding: Encoding::default(),
            out_of_order_window: 0,
            wal_sync: SyncPolicy::interval(std::time::Duration::from_millis(1000)),
            wal_segment_size: 128 << 20,
            chunk_file_size: 128 << 20,
            limits: Limits::default(),
        }
    }
}

/// Counters of the head, in the style of `prometheus_tsdb_head_*`.
#[derive(Debug, Default)]
pub struct HeadStats {
    /// Series created since start (`prometheus_tsdb_head_series_created_total`).
    pub series_created: AtomicU64,
    /// Series removed since start.
    pub series_removed: AtomicU64,
    /// Samples appended (`prometheus_tsdb_head_samples_appended_total`).
    pub samples_appended: AtomicU64,
    /// Out-of-order samples accepted into the window.
    pub ooo_samples_appended: AtomicU64,
    /// Samples rejected as out of order.
    pub out_of_order_rejected: AtomicU64,
    /// Samples rejected as too old or out of bounds.
    pub out_of_bounds_rejected: AtomicU64,
    /// Samples rejected as duplicates with another value.
    pub duplicate_rejected: AtomicU64,
    /// Chunks completed and written to the head chunk file.
    pub chunks_created: AtomicU64,
    /// WAL corruptions found (and repaired) at start-up.
    pub wal_corruptions: AtomicU64,
    /// Head chunk file corruptions found (and repaired) at start-up.
    pub chunk_corruptions: AtomicU64,
    /// WAL records that could not be decoded during replay.
    pub wal_bad_records: AtomicU64,
    /// Samples that replay read from the WAL.
    pub replayed_samples: AtomicU64,
    /// Milliseconds the last replay took.
    pub replay_ms: AtomicU64,
    /// Series refused by each limit, in the order of [`LIMIT_NAMES`].
    pub limit_hits: [AtomicU64; 5],
}

type SeriesHandle = Arc<SeriesEntry>;

/// A hasher for the head's `u64` keys (series references and label
/// hashes): one folded multiplication, instead of SipHash's ~20 ns on
/// every series lookup. Keys are not attacker-chosen in a way that can
/// hurt: references are sequential and label hashes are xxh3 already.
/// The fold mixes the high bits into the low ones, which matters: the
/// stripe a key lives in fixes its low 10 bits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct U64Hasher(u64);

impl std::hash::Hasher for U64Hasher {
    #[inline]
    fn write_u64(&mut self, x: u64) {
        let m = u128::from(x ^ self.0) * 0x9e37_79b9_7f4a_7c15u128;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }

    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type U64Map<V> = HashMap<u64, V, std::hash::BuildHasherDefault<U64Hasher>>;
type HashStripe = RwLock<HashIndex>;

/// Series by label hash. Nearly every hash names one series, so the common
/// case holds the handle directly; the rare collisions go to a side map.
#[derive(Debug, Default)]
struct HashIndex {
    first: U64Map<SeriesHandle>,
    collisions: U64Map<Vec<SeriesHandle>>,
}

impl HashIndex {
    fn get(&self, hash: u64, labels: &Labels) -> Option<&SeriesHandle> {
        let first = self.first.get(&hash)?;
        if first.labels == *labels {
            return Some(first);
        }
        self.collisions
            .get(&hash)?
            .iter()
            .find(|s| s.labels == *labels)
    }

    fn insert(&mut self, hash: u64, handle: SeriesHandle) {
        match self.first.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(handle);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.entry(hash).or_default().push(handle);
            }
        }
    }

    fn remove(&mut self, hash: u64, sref: u64) {
        if self.first.get(&hash).is_some_and(|s| s.sref == sref) {
            self.first.remove(&hash);
            if let Some(list) = self.collisions.get_mut(&hash) {
                if let Some(next) = list.pop() {
                    self.first.insert(hash, next);
                }
                if list.is_empty() {
                    self.collisions.remove(&hash);
                }
            }
        } else if let Some(list) = self.collisions.get_mut(&hash) {
            list.retain(|s| s.sref != sref);
            if list.is_empty() {
                self.collisions.remove(&hash);
            }
        }
    }
}

/// The head. See the [module docs](self).
#[derive(Debug)]
pub struct Head {
    dir: PathBuf,
    opts: HeadOptions,
    cut: CutPolicy,
    by_ref: Box<[RwLock<U64Map<SeriesHandle>>]>,
    by_hash: Box<[HashStripe]>,
    index: PostingsIndex,
    next_ref: AtomicU64,
    num_series: AtomicU64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// In-order samples before this time are rejected: blocks hold that
    /// range.
    min_valid_time: AtomicI64,
    wal: Wal,
    chunks: ChunkDiskMapper,
    stats: HeadStats,
    /// The out-of-order window in force (starts as
    /// `opts.out_of_order_window`; a configuration reload may change it).
    ooo_window: AtomicI64,
}

impl Head {
    /// Opens the head in `dir` (`dir/wal` and `dir/chunks_head`), replaying
    /// what a previous run left. A torn or corrupt tail of the WAL or of the
    /// head chunk file is cut off and counted, never a reason to fail.
    pub fn open(dir: impl AsRef<Path>, opts: HeadOptions) -> Result<Head, TsdbError> {
        replay::open(dir.as_ref(), opts, i64::MIN)
    }

    /// Opens the head with a lower bound: blocks hold everything before
    /// `min_valid_time`, so replay skips in-order samples and completed
    /// chunks older than it.
    pub fn open_with_min_valid_time(
        dir: impl AsRef<Path>,
        opts: HeadOptions,
        min_valid_time: i64,
    ) -> Result<Head, TsdbError> {
        replay::open(dir.as_ref(), opts, min_valid_time)
    }

    fn with_parts(dir: &Path, opts: HeadOptions, wal: Wal, chunks: ChunkDiskMapper) -> Head {
        Head {
            dir: dir.to_path_buf(),
            cut: CutPolicy {
                max_samples: opts.samples_per_chunk.max(1),
                chunk_range: opts.chunk_range,
                encoding: opts.encoding,
            },
            ooo_window: AtomicI64::new(opts.out_of_order_window.max(0)),
            opts,
            by_ref: (0..STRIPES)
                .map(|_| RwLock::new(U64Map::default()))
                .collect(),
            by_hash: (0..STRIPES)
                .map(|_| RwLock::new(HashIndex::default()))
                .collect(),
            index: PostingsIndex::default(),
            next_ref: AtomicU64::new(1),
            num_series: AtomicU64::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            wal,
            chunks,
            stats: HeadStats::default(),
        }
    }

    /// The directory the head lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the head was opened with.
    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    /// The number of samples in the head (read from chunk headers; costs a
    /// pass over all series).
    pub fn num_samples(&self) -> u64 {
        let mut n = 0u64;
        for stripe in self.by_ref.iter() {
            for h in stripe.read().values() {
                let s = h.state.lock();
                for c in s.mmapped.iter() {
                    if let Ok(b) = self.chunks.chunk(c.disk_ref) {
                        if let Ok(hd) = crate::chunkenc::Header::parse(&b) {
                            n += u64::from(hd.num_samples);
                        }
                    }
                }
                n += s
                    .open
                    .as_ref()
                    .map_or(0, |o| u64::from(o.enc.num_samples()));
                n += s.ooo.as_ref().map_or(0, |o| o.len() as u64);
            }
        }
        n
    }

    /// The number of chunks in the head: each series' completed
    /// (memory-mapped) chunks and its open one (Prometheus's
    /// `prometheus_tsdb_head_chunks`). Costs a pass over all series.
    pub fn num_chunks(&self) -> u64 {
        let mut n = 0u64;
        for stripe in self.by_ref.iter() {
            for h in stripe.read().values() {
                let s = h.state.lock();
                n += s.mmapped.len() as u64 + u64::from(s.open.is_some());
            }
        }
        n
    }

    /// The head's counters.
    pub fn stats(&self) -> &HeadStats {
        &self.stats
    }

    /// The number of series in the head.
    pub fn num_series(&self) -> u64 {
        self.num_series.load(Ordering::Relaxed)
    }

    /// Oldest and newest sample timestamp in the head, if it has samples.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (a, b) = (
            self.min_time.load(Ordering::Acquire),
            self.max_time.load(Ordering::Acquire),
        );
        (a <= b).then_some((a, b))
    }

    /// A new append transaction.
    pub fn appender(&self) -> HeadAppender<'_> {
        HeadAppender::new(self)
    }

    /// A querier over `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> HeadQuerier<'_> {
        HeadQuerier::new(self, mint, maxt)
    }

    /// The WAL.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Forces the WAL to disk and flushes the head chunk writer.
    pub fn sync(&self) -> Result<(), TsdbError> {
        self.chunks.flush()?;
        self.wal.sync()?;
        Ok(())
    }

    /// Label names with their number of values, and label pairs with their
    /// number of series.
    pub fn cardinality(&self) -> Cardinality {
        self.index.cardinality()
    }

    /// Approximate bytes of heap the series hold (labels, chunk metadata,
    /// open chunks), excluding the index and the maps.
    pub fn series_heap_bytes(&self) -> usize {
        self.by_ref
            .iter()
            .map(|s| s.read().values().map(|h| h.heap_bytes()).sum::<usize>())
            .sum()
    }

    fn stripe(key: u64) -> usize {
        (key as usize) & (STRIPES - 1)
    }

    pub(crate) fn series_by_ref(&self, sref: u64) -> Option<SeriesHandle> {
        self.by_ref[Self::stripe(sref)].read().get(&sref).cloned()
    }

    pub(crate) fn series_by_labels(&self, labels: &Labels, hash: u64) -> Option<SeriesHandle> {
        self.by_hash[Self::stripe(hash)]
            .read()
            .get(hash, labels)
            .cloned()
    }

    fn check_limits(&self, labels: &Labels) -> Result<(), LimitError> {
        let l = &self.opts.limits;
        if l.max_series > 0 && self.num_series() as usize >= l.max_series {
            return Err(LimitError::SeriesCount {
                limit: l.max_series,
            });
        }
        if l.max_series_per_metric > 0 {
            let name = labels.get("__name__").unwrap_or("");
            if self.index.count("__name__", name) >= l.max_series_per_metric {
                return Err(LimitError::SeriesPerMetric {
                    metric: name.to_string(),
                    limit: l.max_series_per_metric,
                });
            }
        }
        if l.max_labels > 0 {
            let count = labels.len();
            if count > l.max_labels {
                return Err(LimitError::LabelCount {
                    count,
                    limit: l.max_labels,
                });
            }
        }
        for lb in labels.iter() {
            if l.max_label_name_len > 0 && lb.name.len() > l.max_label_name_len {
                return Err(LimitError::LabelNameLength {
                    len: lb.name.len(),
                    limit: l.max_label_name_len,
                });
            }
            if l.max_label_value_len > 0 && lb.value.len() > l.max_label_value_len {
                return Err(LimitError::LabelValueLength {
                    len: lb.value.len(),
                    limit: l.max_label_value_len,
                });
            }
        }
        Ok(())
    }

    /// The series for `labels`, created if it does not exist. Returns the
    /// handle and whether it was created.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
    ) -> Result<(SeriesHandle, bool), LimitError> {
        let hash = labels.stable_hash();
        if let Some(s) = self.series_by_labels(labels, hash) {
            return Ok((s, false));
        }
        if let Err(e) = self.check_limits(labels) {
            let name = e.limit_name();
            if let Some(i) = LIMIT_NAMES.iter().position(|n| *n == name) {
                self.stats.limit_hits[i].fetch_add(1, Ordering::Relaxed);
            }
            return Err(e);
        }
        let mut stripe = self.by_hash[Self::stripe(hash)].write();
        if let Some(s) = stripe.get(hash, labels) {
            return Ok((s.clone(), false));
        }
        let sref = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(SeriesEntry::new(sref, labels.clone()));
        stripe.insert(hash, handle.clone());
        drop(stripe);
        self.insert_by_ref(sref, labels, handle.clone());
        Ok((handle, true))
    }

    /// Creates a series with a given reference (WAL replay). If the labels
    /// already exist under another reference, returns the existing series.
    pub(crate) fn create_with_ref(&self, sref: u64, labels: &Labels) -> SeriesHandle {
        let hash = labels.stable_hash();
        let mut stripe = self.by_hash[Self::stripe(hash)].write();
        if let Some(s) = stripe.get(hash, labels) {
            return s.clone();
        }
        let handle = Arc::new(SeriesEntry::new(sref, labels.clone()));
        stripe.insert(hash, handle.clone());
        drop(stripe);
        self.next_ref.fetch_max(sref + 1, Ordering::Relaxed);
        self.insert_by_ref(sref, labels, handle.clone());
        handle
    }

    fn insert_by_ref(&self, sref: u64, labels: &Labels, handle: SeriesHandle) {
        self.by_ref[Self::stripe(sref)].write().insert(sref, handle);
        self.index.add(sref, labels);
        self.num_series.fetch_add(1, Ordering::Relaxed);
        self.stats.series_created.fetch_add(1, Ordering::Relaxed);
    }

    /// The in-order sample of series state `s` at exactly `t`, if any.
    /// Decodes at most one chunk; used only on the out-of-order path.
    pub(crate) fn in_order_value_at(&self, s: &series::MemSeries, t: i64) -> Option<f64> {
        let find = |mut it: crate::chunkenc::ChunkIter<&[u8]>| -> Option<f64> {
            if it.seek(t) && it.at().0 == t {
                Some(it.at().1)
            } else {
                None
            }
        };
        if let Some(open) = &s.open {
            if t >= open.mint {
                return find(crate::chunkenc::ChunkIter::new(&*open.enc.bytes()));
            }
        }
        let c = s.mmapped.iter().find(|c| c.mint <= t && t <= c.maxt)?;
        let bytes = self.chunks.chunk(c.disk_ref).ok()?;
        find(crate::chunkenc::ChunkIter::new(bytes.as_ref()))
    }

    /// Deletes the samples in `[mint, maxt]` of the series matching
    /// `matchers`: a tombstone is logged to the WAL and applied on read;
    /// persistence leaves the samples out. Returns the number of series
    /// affected.
    pub fn delete(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[vigil_model::Matcher],
    ) -> Result<u64, TsdbError> {
        let mut stones = Vec::new();
        for r in self.index.postings_for_matchers(matchers) {
            let Some(h) = self.series_by_ref(r) else {
                continue;
            };
            let s = h.state.lock();
            if s.overlaps(s.max_t, mint, maxt) {
                stones.push(crate::record::TombstoneRecord {
                    sref: h.sref,
                    mint,
                    maxt,
                });
            }
        }
        if stones.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::new();
        crate::record::encode_tombstones(&mut buf, &stones);
        self.wal.log(&[buf])?;
        for st in &stones {
            if let Some(h) = self.series_by_ref(st.sref) {
                h.state.lock().add_deleted(st.mint, st.maxt);
            }
        }
        Ok(stones.len() as u64)
    }

    /// The labels of the series with reference `sref`.
    pub fn labels_of(&self, sref: u64) -> Option<Labels> {
        self.series_by_ref(sref).map(|h| h.labels.clone())
    }

    /// Where the head accepts samples right now.
    pub(crate) fn bounds(&self) -> series::Bounds {
        let max = self.max_time.load(Ordering::Acquire);
        let min_valid = self.min_valid_time.load(Ordering::Acquire);
        let half = self.opts.chunk_range / 2;
        let window = self.out_of_order_window();
        series::Bounds {
            in_order_min: min_valid.max(max.saturating_sub(half)),
            ooo_enabled: window > 0,
            ooo_min: max.saturating_sub(window),
        }
    }

    /// The out-of-order window in force, in milliseconds (0: disabled).
    pub fn out_of_order_window(&self) -> i64 {
        self.ooo_window.load(Ordering::Relaxed)
    }

    /// Changes the out-of-order window for samples appended from now on, as
    /// a configuration reload does. Samples already accepted stay.
    pub fn set_out_of_order_window(&self, window_ms: i64) {
        self.ooo_window.store(window_ms.max(0), Ordering::Relaxed);
    }

    /// The head's lower bound: data before it lives in blocks.
    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Acquire)
    }

    fn update_time_range(&self, mint: i64, maxt: i64) {
        self.min_time.fetch_min(mint, Ordering::AcqRel);
        self.max_time.fetch_max(maxt, Ordering::AcqRel);
    }

    fn wal_options(opts: &HeadOptions) -> WalOptions {
        WalOptions::default()
            .with_segment_size(opts.wal_segment_size)
            .with_sync(opts.wal_sync)
    }
}
