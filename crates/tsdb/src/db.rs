//! The database: the head plus persisted blocks, with the maintenance that
//! moves data between them (head persistence, compaction, retention), and
//! deletion and snapshots.
//!
//! A [`Db`] is a blocking library object: every method may do IO. From async
//! code, call it through `spawn_blocking` or a dedicated thread.
//! [`Db::maintain`] does one round of maintenance; a server calls it
//! periodically from a background thread ([`Db::spawn_maintenance`]). It
//! never holds a lock that appends need for longer than a series' snapshot.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use vigil_model::{
    AppendError, Appendable, Appender, CommitError, Labels, Matcher, Querier, Queryable,
    SampleIterator, SelectHints, Series, SeriesRef, SeriesSet, StorageError, Value, ValueType,
};

use crate::block::{self, Block, BlockMeta};
use crate::error::TsdbError;
use crate::head::{Head, HeadAppender, HeadOptions};
use crate::memory::RamDir;
use crate::mmap::DirLock;
use crate::querier::MergeQuerier;
use crate::retention::{Cutoffs, RetentionQuerier, RetentionRules};

/// Settings of a [`Db`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Settings of the head (chunking, WAL, out-of-order window, limits).
    /// Its `chunk_range` is the smallest block range.
    pub head: HeadOptions,
    /// Delete blocks whose data is all older than this (ms) behind the
    /// newest block. `None` keeps everything (Prometheus's default is 15d).
    pub retention_time: Option<i64>,
    /// Delete the oldest blocks while blocks, WAL and head chunks together
    /// take more bytes than this.
    pub retention_size: Option<u64>,
    /// How many times larger each compaction level's range is (Prometheus: 3).
    pub compaction_factor: i64,
    /// Number of compaction levels above the smallest range.
    pub compaction_levels: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            head: HeadOptions::default(),
            retention_time: Some(15 * 24 * 3600 * 1000),
            retention_size: None,
            compaction_factor: 3,
            compaction_levels: 9,
        }
    }
}

impl Options {
    /// The block ranges compaction uses: the head's range times the factor,
    /// level by level, capped at 10% of the retention time and at 31 days
    /// (as Prometheus does).
    pub fn block_ranges(&self) -> Vec<i64> {
        let ranges = block::exponential_ranges(
            self.head.chunk_range,
            self.compaction_levels + 1,
            self.compaction_factor.max(2),
        );
        let max = 31 * 24 * 3600 * 1000;
        let cap = self.retention_time.map_or(max, |r| (r / 10).min(max));
        let mut out: Vec<i64> = ranges
            .into_iter()
            .enumerate()
            .filter(|(i, r)| *i == 0 || *r <= cap)
            .map(|(_, r)| r)
            .collect();
        out.dedup();
        out
    }
}

/// Counters of the database, in the style of `prometheus_tsdb_*`.
#[derive(Debug, Default)]
pub struct DbStats {
    /// Blocks written from the head.
    pub head_persisted_blocks: AtomicU64,
    /// Head truncations.
    pub head_truncations: AtomicU64,
    /// Compactions run (`prometheus_tsdb_compactions_total`).
    pub compactions: AtomicU64,
    /// Compactions that failed.
    pub compactions_failed: AtomicU64,
    /// Blocks deleted by time retention.
    pub retention_time_deletions: AtomicU64,
    /// Blocks deleted by size retention.
    pub retention_size_deletions: AtomicU64,
    /// Blocks rewritten without the series whose retention rule expired
    /// them ([`crate::retention`]).
    pub retention_rule_rewrites: AtomicU64,
    /// Block directories that appeared in the data directory while the
    /// database was open (written by `vigil tsdb import`) and were opened.
    pub blocks_picked_up: AtomicU64,
    /// Block directories that could not be opened (damaged), left on disk.
    pub blocks_damaged: AtomicU64,
    /// Unix ms of the last successful maintenance round, 0 before.
    pub last_maintenance_ms: AtomicI64,
    /// Duration of the last compaction in ms.
    pub last_compaction_duration_ms: AtomicU64,
}

/// A vigil database in a directory.
#[derive(Debug)]
pub struct Db {
    dir: PathBuf,
    opts: Options,
    lock: DirLock,
    head: Head,
    /// Open blocks, sorted by min time.
    blocks: RwLock<Vec<Arc<Block>>>,
    /// Serialises maintenance and deletion.
    maintenance: Mutex<()>,
    stats: DbStats,
    /// Retention in force: (time, size). Starts from the options; a
    /// configuration reload may change it.
    retention: RwLock<(Option<i64>, Option<u64>)>,
    /// Retention by series in force; none until set.
    retention_rules: RwLock<Arc<RetentionRules>>,
    /// Block directories that could not be opened, not retried.
    skipped: Mutex<std::collections::HashSet<block::Ulid>>,
    /// The RAM directory of an in-memory database, removed on drop. Last,
    /// so it is dropped after the head and the lock.
    ram: Option<RamDir>,
}

impl Db {
    /// Opens (or creates) the database in `dir`: opens its blocks (a damaged
    /// block is reported, counted and left out, never deleted), and replays
    /// the head from its WAL.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db, TsdbError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| TsdbError::io("create data directory", &dir, e))?;
        let lock = DirLock::acquire(&dir)?;
        block::cleanup_tmp(&dir)?;
        let stats = DbStats::default();
        let mut blocks = Vec::new();
        let mut skipped = std::collections::HashSet::new();
        for (id, path) in block::list_blocks(&dir)? {
            match Block::open(&lock, &path) {
                Ok(b) => blocks.push(Arc::new(b)),
                Err(e) => {
                    skipped.insert(id);
                    stats.blocks_damaged.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(block = %path.display(), error = %e, "block is damaged and left out");
                }
            }
        }
        blocks.sort_by_key(|b| b.meta().min_time);
        let min_valid = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .max()
            .unwrap_or(i64::MIN);
        let head = Head::open_with_min_valid_time(&dir, opts.head.clone(), min_valid)?;
        Ok(Db {
            dir,
            retention: RwLock::new((opts.retention_time, opts.retention_size)),
            retention_rules: RwLock::new(Arc::new(RetentionRules::default())),
            skipped: Mutex::new(skipped),
            opts,
            lock,
            head,
            blocks: RwLock::new(blocks),
            maintenance: Mutex::new(()),
            stats,
            ram: None,
        })
    }

    /// Opens a new, empty database that lives in memory and disappears
    /// when it is dropped, with the default [`Options`].
    ///
    /// How: the database is the ordinary one (WAL, head chunks, blocks,
    /// the same code and guarantees as on disk) in a fresh private
    /// directory on a RAM filesystem, `/dev/shm/vigil-mem-<pid>-<n>`,
    /// which is deleted when the `Db` is dropped. Nothing is written to a
    /// disk; if `/dev/shm` is not a tmpfs (or ramfs) mount, as on systems
    /// other than Linux, this fails with [`TsdbError::NoRamFilesystem`]
    /// instead of falling back to one. A process killed before dropping
    /// its database leaves the directory behind; the next in-memory open
    /// on the machine removes it.
    ///
    /// Durability: none across processes; the data goes with the `Db` (and
    /// with the machine). Within the process everything committed is
    /// readable at once, as on disk.
    ///
    /// Memory: the pages count against the tmpfs size limit (half the RAM
    /// by default; 64 MiB in a default Docker container, raised with
    /// `--shm-size`). Recent samples are held twice, compressed in head
    /// chunks and in WAL records, until [`maintain`](Self::maintain) moves
    /// a block range (2 h by default) out of the head and checkpoints the
    /// WAL. As on disk, nothing is persisted, compacted or removed by
    /// retention unless [`maintain`](Self::maintain) runs: call it
    /// periodically, or use [`spawn_maintenance`](Self::spawn_maintenance).
    ///
    /// ```
    /// use vigil_model::{labels, Appender, Value};
    /// use vigil_tsdb::Db;
    ///
    /// let db = Db::open_in_memory()?;
    /// let mut app = db.appender();
    /// app.append(None, &labels!("__name__" => "jobs_done_total"), 1_000, Value::Float(3.0))?;
    /// app.commit()?;
    /// let dir = db.dir().to_path_buf();
    /// assert!(dir.starts_with("/dev/shm"));
    /// drop(db);
    /// assert!(!dir.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_in_memory() -> Result<Db, TsdbError> {
        Self::open_in_memory_with(Options::default())
    }

    /// [`open_in_memory`](Self::open_in_memory) with the given options.
    pub fn open_in_memory_with(opts: Options) -> Result<Db, TsdbError> {
        let ram = RamDir::create()?;
        let mut db = Db::open(ram.path(), opts)?;
        db.ram = Some(ram);
        Ok(db)
    }

    /// Whether the database lives in memory ([`open_in_memory`](Self::open_in_memory)).
    pub fn is_in_memory(&self) -> bool {
        self.ram.is_some()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The database's counters.
    pub fn stats(&self) -> &DbStats {
        &self.stats
    }

    /// The open blocks, oldest first.
    pub fn open_blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    /// The metadata of the open blocks, oldest first.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.blocks.read().iter().map(|b| b.meta()).collect()
    }

    /// Bytes on disk: blocks, WAL and head chunk files.
    pub fn size_bytes(&self) -> u64 {
        let blocks: u64 = self.blocks.read().iter().map(|b| b.size().total()).sum();
        blocks + self.head.wal().size_bytes().unwrap_or(0) + dir_size(&self.dir.join("chunks_head"))
    }

    /// A new append transaction.
    pub fn appender(&self) -> DbAppender<'_> {
        DbAppender {
            db: self,
            inner: self.head.appender(),
        }
    }

    /// The value a block holds for series `labels` at exactly `t`, if any.
    fn block_value_at(&self, labels: &Labels, t: i64) -> Result<Option<f64>, StorageError> {
        let matchers: Vec<Matcher> = labels
            .iter()
            .map(|l| Matcher::equal(l.name, l.value))
            .collect();
        for b in self.blocks.read().iter().rev() {
            if !b.meta().overlaps(t, t) {
                continue;
            }
            for s in b.select(t, t, &matchers)? {
                if s.labels() != labels {
                    continue;
                }
                let mut it = s.iter();
                if it.seek(t) == ValueType::Float && it.at().0 == t {
                    return Ok(Some(it.at().1));
                }
            }
        }
        Ok(None)
    }

    /// Makes everything committed so far durable.
    pub fn sync(&self) -> Result<(), TsdbError> {
        self.head.sync()
    }

    /// Syncs and closes the database.
    pub fn close(self) -> Result<(), TsdbError> {
        self.head.sync()
    }

    /// One round of maintenance: persist the head's oldest range into
    /// blocks while it spans more than 1.5 ranges, compact blocks, and apply
    /// retention.
    pub fn maintain(&self) -> Result<(), TsdbError> {
        let _guard = self.maintenance.lock();
        self.pick_up_blocks()?;
        while let Some(cut) = self.head.cut_point() {
            self.persist_head(cut)?;
        }
        self.compact_blocks()?;
        self.apply_retention()?;
        self.stats
            .last_maintenance_ms
            .store(vigil_model::time::now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// Writes the whole head into one block, publishes it, and truncates
    /// the head: its series, the WAL (checkpointed down to what is newer
    /// than the block) and the head chunk files go, as after Prometheus's
    /// compaction of the head. Returns the block written, `None` when the
    /// head was empty. From then on the head accepts in-order samples only
    /// after the block's end, as after any persistence of the head.
    pub fn flush(&self) -> Result<Option<BlockMeta>, TsdbError> {
        let _guard = self.maintenance.lock();
        let Some(persisted) = self.head.persist_all(&self.dir)? else {
            return Ok(None);
        };
        let meta = persisted.blocks.first().cloned();
        self.publish_and_truncate(&persisted)?;
        Ok(meta)
    }

    /// Persists everything in the head before `cut`, publishes the blocks,
    /// then truncates the head.
    fn persist_head(&self, cut: i64) -> Result<(), TsdbError> {
        let persisted = self.head.persist_before(&self.dir, cut)?;
        self.publish_and_truncate(&persisted)
    }

    /// Opens and publishes the blocks `persisted` names, then drops their
    /// data from the head.
    fn publish_and_truncate(&self, persisted: &crate::head::Persisted) -> Result<(), TsdbError> {
        let mut opened = Vec::with_capacity(persisted.blocks.len());
        for meta in &persisted.blocks {
            opened.push(Arc::new(Block::open(
                &self.lock,
                self.dir.join(meta.ulid.to_string()),
            )?));
        }
        self.stats
            .head_persisted_blocks
            .fetch_add(opened.len() as u64, Ordering::Relaxed);
        {
            let mut blocks = self.blocks.write();
            blocks.extend(opened);
            blocks.sort_by_key(|b| b.meta().min_time);
        }
        self.head.truncate(persisted)?;
        self.stats.head_truncations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Compacts blocks while the planner finds work.
    fn compact_blocks(&self) -> Result<(), TsdbError> {
        let ranges = self.opts.block_ranges();
        loop {
            let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
            let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta()).collect();
            let Some(plan) = block::plan(&metas, &ranges) else {
                return Ok(());
            };
            let parents: Vec<Arc<Block>> = blocks
                .iter()
                .filter(|b| plan.contains(&b.ulid()))
                .cloned()
                .collect();
            let refs: Vec<&Block> = parents.iter().map(|b| b.as_ref()).collect();
            let started = Instant::now();
            let rules = self.retention_rules();
            let cutoffs = self.newest_time().map(|t| rules.cutoffs(t));
            let keep_from = |l: &Labels| cutoffs.as_ref().and_then(|c| c.keep_from(l));
            let result = block::compact_trimmed(
                &self.dir,
                &refs,
                &block::BlockWriterOptions::default(),
                &keep_from,
            );
            self.stats.compactions.fetch_add(1, Ordering::Relaxed);
            let new_meta = match result {
                Ok(m) => m,
                Err(e) => {
                    self.stats
                        .compactions_failed
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(e.into());
                }
            };
            self.stats
                .last_compaction_duration_ms
                .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            let new_block = match new_meta {
                Some(m) => Some(Arc::new(Block::open(
                    &self.lock,
                    self.dir.join(m.ulid.to_string()),
                )?)),
                None => None,
            };
            {
                let mut list = self.blocks.write();
                list.retain(|b| !plan.contains(&b.ulid()));
                list.extend(new_block);
                list.sort_by_key(|b| b.meta().min_time);
            }
            for p in &parents {
                block::delete_block_dir(p.dir())?;
            }
        }
    }

    /// The retention in force: (time in ms, size in bytes).
    pub fn retention(&self) -> (Option<i64>, Option<u64>) {
        *self.retention.read()
    }

    /// Changes the retention from the next maintenance on, as a
    /// configuration reload does. Block ranges stay as opened.
    pub fn set_retention(&self, time_ms: Option<i64>, size_bytes: Option<u64>) {
        *self.retention.write() = (time_ms, size_bytes);
    }

    /// The retention rules by series in force ([`crate::retention`]).
    pub fn retention_rules(&self) -> Arc<RetentionRules> {
        self.retention_rules.read().clone()
    }

    /// Replaces the retention rules by series, as a configuration reload
    /// does. Reads apply them at once; compaction and the next maintenance
    /// round remove the expired samples from disk.
    pub fn set_retention_rules(&self, rules: RetentionRules) {
        *self.retention_rules.write() = Arc::new(rules);
    }

    /// The timestamp of the newest data: the head's newest sample or the
    /// end of the newest block, whichever is later. Retention rules count
    /// back from it.
    pub fn newest_time(&self) -> Option<i64> {
        let head = self.head.time_range().map(|(_, max)| max);
        let blocks = self
            .blocks
            .read()
            .iter()
            .map(|b| b.meta().max_time.saturating_sub(1))
            .max();
        head.max(blocks)
    }

    /// Opens the blocks that appeared in the data directory since it was
    /// opened (written there by `vigil tsdb import` while the database ran)
    /// and adds them to queries and compaction. [`maintain`](Self::maintain)
    /// does this first in every round. Returns how many were added.
    pub fn load_new_blocks(&self) -> Result<usize, TsdbError> {
        let _guard = self.maintenance.lock();
        self.pick_up_blocks()
    }

    fn pick_up_blocks(&self) -> Result<usize, TsdbError> {
        let known: std::collections::HashSet<block::Ulid> =
            self.blocks.read().iter().map(|b| b.ulid()).collect();
        let mut opened = Vec::new();
        for (id, path) in block::list_blocks(&self.dir)? {
            if known.contains(&id) || self.skipped.lock().contains(&id) {
                continue;
            }
            match Block::open(&self.lock, &path) {
                Ok(b) => {
                    tracing::info!(block = %id, "opened a block that appeared in the data directory");
                    opened.push(Arc::new(b));
                }
                Err(e) => {
                    self.skipped.lock().insert(id);
                    self.stats.blocks_damaged.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(block = %path.display(), error = %e, "block is damaged and left out");
                }
            }
        }
        let n = opened.len();
        if n > 0 {
            self.stats
                .blocks_picked_up
                .fetch_add(n as u64, Ordering::Relaxed);
            let mut list = self.blocks.write();
            list.extend(opened);
            list.sort_by_key(|b| b.meta().min_time);
        }
        Ok(n)
    }

    /// Rewrites the blocks that lie wholly behind a retention rule's cutoff
    /// and still hold series that rule governs, without those series.
    fn apply_retention_rules(&self) -> Result<(), TsdbError> {
        let rules = self.retention_rules();
        let Some(newest) = self.newest_time().filter(|_| !rules.is_empty()) else {
            return Ok(());
        };
        let cutoffs = rules.cutoffs(newest);
        let keep_from = |l: &Labels| cutoffs.keep_from(l);
        let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
        for b in blocks {
            if !has_expired_series(&b, &cutoffs)? {
                continue;
            }
            tracing::info!(block = %b.ulid(), "rewriting block without series past their retention rule");
            let new_meta = block::compact_trimmed(
                &self.dir,
                &[b.as_ref()],
                &block::BlockWriterOptions::default(),
                &keep_from,
            )?;
            self.replace_block(&b, new_meta)?;
            self.stats
                .retention_rule_rewrites
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Publishes the block `new_meta` names (if any) in place of `old`, and
    /// deletes `old`'s directory.
    fn replace_block(&self, old: &Block, new_meta: Option<BlockMeta>) -> Result<(), TsdbError> {
        let new_block = match new_meta {
            Some(m) => Some(Arc::new(Block::open(
                &self.lock,
                self.dir.join(m.ulid.to_string()),
            )?)),
            None => None,
        };
        {
            let mut list = self.blocks.write();
            list.retain(|x| x.ulid() != old.ulid());
            list.extend(new_block);
            list.sort_by_key(|x| x.meta().min_time);
        }
        block::delete_block_dir(old.dir())?;
        Ok(())
    }

    /// Deletes blocks past the retention time or beyond the retention size.
    fn apply_retention(&self) -> Result<(), TsdbError> {
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        let (retention_time, retention_size) = self.retention();
        {
            let mut list = self.blocks.write();
            if let Some(ret) = retention_time {
                let newest = list.iter().map(|b| b.meta().max_time).max();
                if let Some(newest) = newest {
                    let (old, keep): (Vec<_>, Vec<_>) = list
                        .drain(..)
                        .partition(|b| b.meta().max_time <= newest.saturating_sub(ret));
                    self.stats
                        .retention_time_deletions
                        .fetch_add(old.len() as u64, Ordering::Relaxed);
                    doomed.extend(old);
                    *list = keep;
                }
            }
            if let Some(limit) = retention_size {
                let other = self.head.wal().size_bytes().unwrap_or(0)
                    + dir_size(&self.dir.join("chunks_head"));
                let mut total: u64 = other + list.iter().map(|b| b.size().total()).sum::<u64>();
                while total > limit && !list.is_empty() {
                    let b = list.remove(0);
                    total = total.saturating_sub(b.size().total());
                    self.stats
                        .retention_size_deletions
                        .fetch_add(1, Ordering::Relaxed);
                    doomed.push(b);
                }
            }
        }
        for b in doomed {
            tracing::info!(block = %b.ulid(), "deleting block past retention");
            block::delete_block_dir(b.dir())?;
        }
        self.apply_retention_rules()
    }

    /// Deletes the samples of series matching `matchers` in `[mint, maxt]`
    /// (both inclusive). Blocks get tombstones, which the next compaction of
    /// the block applies; the head gets a WAL-logged tombstone, applied on
    /// read and when the head is persisted. Returns the number of series
    /// affected across head and blocks.
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<u64, TsdbError> {
        let _guard = self.maintenance.lock();
        let mut deleted = self.head.delete(mint, maxt, matchers)?;
        for b in self.blocks.read().iter() {
            deleted += b.delete(mint, maxt, matchers)?;
        }
        Ok(deleted)
    }

    /// Rewrites blocks that carry tombstones without the deleted samples
    /// (Prometheus's `clean_tombstones`).
    pub fn clean_tombstones(&self) -> Result<(), TsdbError> {
        let _guard = self.maintenance.lock();
        let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
        for b in blocks {
            if b.tombstones().is_empty() {
                continue;
            }
            let new_meta = block::compact(&self.dir, &[b.as_ref()])?;
            self.replace_block(&b, new_meta)?;
        }
        Ok(())
    }

    /// Writes a consistent copy of the database into `dir`: existing blocks
    /// are hard-linked, and the head (when `with_head`) is written as blocks.
    pub fn snapshot(
        &self,
        dir: impl AsRef<Path>,
        with_head: bool,
    ) -> Result<Vec<BlockMeta>, TsdbError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| TsdbError::io("create snapshot directory", dir, e))?;
        let _guard = self.maintenance.lock();
        let mut metas = Vec::new();
        for b in self.blocks.read().iter() {
            let target = dir.join(b.ulid().to_string());
            link_tree(b.dir(), &target)?;
            metas.push(b.meta());
        }
        if with_head {
            metas.extend(self.head.write_single_block(dir)?);
        }
        Ok(metas)
    }

    /// Starts a thread that runs [`Db::maintain`] every `every`, until the
    /// returned handle is dropped or stopped.
    pub fn spawn_maintenance(db: Arc<Db>, every: Duration) -> MaintenanceHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-tsdb-maintenance".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200).min(every));
                    if last.elapsed() < every {
                        continue;
                    }
                    last = Instant::now();
                    if let Err(e) = db.maintain() {
                        tracing::error!(error = %e, "TSDB maintenance failed");
                    }
                }
            })
            .ok();
        MaintenanceHandle { stop, thread }
    }
}

/// Stops the maintenance thread when dropped.
#[derive(Debug)]
pub struct MaintenanceHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MaintenanceHandle {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Does block `b` lie wholly behind the cutoff of a rule that governs one
/// of its series?
fn has_expired_series(b: &Block, cutoffs: &Cutoffs<'_>) -> Result<bool, TsdbError> {
    let end = b.meta().max_time;
    for (rule, cutoff) in cutoffs.iter() {
        // Samples lie before `end`: all are expired when `end <= cutoff`.
        if cutoff < end {
            continue;
        }
        for selector in rule.selectors() {
            for s in b.chunk_series(selector)? {
                let s = s?;
                if !s.chunks.is_empty() && cutoffs.keep_from(&s.labels).is_some_and(|c| c >= end) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            // Head chunk files are sparse: count the blocks really used.
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                (m.blocks() * 512).min(m.len())
            }
            Err(_) => 0,
        })
        .sum()
}

/// Hard-links every file under `from` into the same place under `to`.
fn link_tree(from: &Path, to: &Path) -> Result<(), TsdbError> {
    std::fs::create_dir_all(to).map_err(|e| TsdbError::io("create snapshot directory", to, e))?;
    let rd = std::fs::read_dir(from).map_err(|e| TsdbError::io("read block directory", from, e))?;
    for e in rd {
        let e = e.map_err(|e| TsdbError::io("read block directory", from, e))?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let ty = e
            .file_type()
            .map_err(|e| TsdbError::io("stat block file", &src, e))?;
        if ty.is_dir() {
            link_tree(&src, &dst)?;
        } else {
            std::fs::hard_link(&src, &dst)
                .map_err(|e| TsdbError::io("hard-link block file", &dst, e))?;
        }
    }
    Ok(())
}

/// A querier over one block, holding it alive.
#[derive(Debug)]
struct SharedBlockQuerier {
    block: Arc<Block>,
    mint: i64,
    maxt: i64,
}

impl Querier for SharedBlockQuerier {
    fn select(
        &self,
        _sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        let series = self.block.select(self.mint, self.maxt, matchers)?;
        Ok(SeriesSet {
            series: series
                .into_iter()
                .map(|s| Box::new(s) as Box<dyn Series>)
                .collect(),
            warnings: Vec::new(),
        })
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(self.block.label_names(matchers)?)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(self.block.label_values(name, matchers)?)
    }
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        let mut sources: Vec<Box<dyn Querier + '_>> = Vec::new();
        // The head first: on a repeated timestamp the freshest source wins.
        if self
            .head
            .time_range()
            .is_some_and(|(hmin, hmax)| hmin <= maxt && hmax >= mint)
        {
            sources.push(Box::new(self.head.querier(mint, maxt)));
        }
        for b in self.blocks.read().iter().rev() {
            if b.meta().overlaps(mint, maxt) {
                sources.push(Box::new(SharedBlockQuerier {
                    block: b.clone(),
                    mint,
                    maxt,
                }));
            }
        }
        if sources.is_empty() {
            sources.push(Box::new(self.head.querier(mint, maxt)));
        }
        let merged = Box::new(MergeQuerier::new(sources));
        // Retention rules hide expired samples at once; a query that starts
        // after every rule's cutoff needs no filter.
        let rules = self.retention_rules();
        if let Some(newest) = self.newest_time().filter(|_| !rules.is_empty()) {
            if rules.cutoffs(newest).latest().is_some_and(|c| c > mint) {
                return Ok(Box::new(RetentionQuerier::new(merged, rules, newest)));
            }
        }
        Ok(merged)
    }
}

impl Appendable for Db {
    type Appender<'a> = DbAppender<'a>;

    fn appender(&self) -> DbAppender<'_> {
        Db::appender(self)
    }
}

/// An append transaction on a [`Db`]: the head's, plus a check that an
/// out-of-order sample older than the head does not contradict a block.
#[derive(Debug)]
pub struct DbAppender<'a> {
    db: &'a Db,
    inner: HeadAppender<'a>,
}

impl Appender for DbAppender<'_> {
    fn append(
        &mut self,
        sref: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: Value,
    ) -> Result<SeriesRef, AppendError> {
        if t < self.db.head.min_valid_time() && self.db.head.out_of_order_window() > 0 {
            let owned;
            let labels = if labels.is_empty() {
                owned = sref
                    .and_then(|r| self.db.head.labels_of(r.0))
                    .unwrap_or_default();
                &owned
            } else {
                labels
            };
            if let (Some(old), Some(new)) = (self.db.block_value_at(labels, t)?, v.as_f64()) {
                return if old.to_bits() == new.to_bits() {
                    // Already stored: accept the repeat, store nothing. A
                    // reference the head does not know is harmless: the
                    // next append falls back to the labels.
                    Ok(sref.unwrap_or(SeriesRef(0)))
                } else {
                    Err(AppendError::DuplicateSampleForTimestamp)
                };
            }
        }
        self.inner.append(sref, labels, t, v)
    }

    fn commit(self) -> Result<(), CommitError> {
        self.inner.commit()
    }
}
