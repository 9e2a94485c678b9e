//! The writer: segment rolling, group commit and repair.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::error::io_err;
use super::frame::{HEADER_LEN, MAX_RECORD_LEN};
use super::segment::{dir_size, segment_path, segments, sync_dir, SegmentWriter};
use super::{RepairRefusal, WalError};

/// Default maximum segment size: 128 MiB, as in Prometheus.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 * 1024 * 1024;

/// When appended records are fsynced.
///
/// A newtype over a private enum (like ripgrep's `MmapChoice`), so policies
/// can be added without breaking callers and each constructor can normalise
/// its input. The default is [`SyncPolicy::always`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncPolicy(SyncKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum SyncKind {
    #[default]
    Always,
    Interval(Duration),
}

impl SyncPolicy {
    /// [`Wal::log`] returns only once its records are fsynced. Concurrent
    /// callers share fsyncs (group commit): whoever arrives while an fsync
    /// is in flight waits, and the next fsync covers all of them.
    pub const fn always() -> Self {
        Self(SyncKind::Always)
    }

    /// A background thread fsyncs written records at most every `every`;
    /// [`Wal::log`] returns once the records are handed to the OS. A crash of
    /// the machine (not of the process) can lose up to `every` of records.
    /// [`Wal::sync`] forces an fsync. A zero interval means [`always`](Self::always).
    pub fn interval(every: Duration) -> Self {
        if every.is_zero() {
            Self::always()
        } else {
            Self(SyncKind::Interval(every))
        }
    }

    /// The background fsync interval, or `None` for [`always`](Self::always).
    pub fn interval_duration(&self) -> Option<Duration> {
        match self.0 {
            SyncKind::Always => None,
            SyncKind::Interval(every) => Some(every),
        }
    }
}

/// Options for [`Wal::open`]. Build from [`WalOptions::default`] with the
/// `with_*` methods (the struct is `#[non_exhaustive]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalOptions {
    /// Maximum size of a segment file in bytes. A segment is cut when the
    /// next frame would not fit; a frame larger than this is written alone
    /// into its own segment. Default [`DEFAULT_SEGMENT_SIZE`].
    pub segment_size: u64,
    /// When records are fsynced. Default [`SyncPolicy::always`].
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size: DEFAULT_SEGMENT_SIZE,
            sync: SyncPolicy::default(),
        }
    }
}

impl WalOptions {
    /// Sets [`segment_size`](Self::segment_size).
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`sync`](Self::sync).
    pub fn with_sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }
}

/// Counters of a [`Wal`] since it was opened, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// Records appended.
    pub records: u64,
    /// Batches ([`Wal::log`] calls) appended.
    pub batches: u64,
    /// Bytes appended, frame headers included.
    pub bytes: u64,
    /// fsyncs of segment files (group commits, background syncs and cuts).
    pub fsyncs: u64,
    /// Segment files created, including the one opened by [`Wal::open`].
    pub segments_created: u64,
    /// Successful [`Wal::repair`] calls.
    pub repairs: u64,
    /// Bytes discarded by repairs.
    pub repaired_bytes_dropped: u64,
}

/// What [`Wal::repair`] cut away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// The damaged segment, now truncated to `offset` bytes (or absent, if
    /// it was missing).
    pub segment: u64,
    /// Where the damage started; everything before it was kept.
    pub offset: u64,
    /// Bytes removed: the damaged segment's tail plus all later segments.
    pub bytes_dropped: u64,
    /// Segments after the damaged one that were deleted.
    pub segments_deleted: u64,
    /// The segment appends continue in.
    pub new_segment: u64,
}

#[derive(Debug, Default)]
struct Counters {
    records: AtomicU64,
    batches: AtomicU64,
    bytes: AtomicU64,
    fsyncs: AtomicU64,
    segments_created: AtomicU64,
    repairs: AtomicU64,
    repaired_bytes_dropped: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// State guarded by the append lock.
#[derive(Debug)]
struct Inner {
    writer: SegmentWriter,
    /// Number of batches written; batch `n` is durable once `synced_seq >= n`.
    seq: u64,
    /// First segment created by this writer. Segments from here on hold only
    /// bytes this process wrote.
    first_own_segment: u64,
    /// Whether any record was logged since open or the last repair.
    logged: bool,
}

/// Group-commit state.
#[derive(Debug, Default)]
struct SyncState {
    /// Every batch up to this sequence number is durable.
    synced_seq: u64,
    /// An fsync is running outside the locks.
    in_flight: bool,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    policy: SyncPolicy,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    poisoned: AtomicBool,
    stop: Mutex<bool>,
    stop_cv: Condvar,
    counters: Counters,
}

impl Shared {
    fn check_poisoned(&self) -> Result<(), WalError> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(WalError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
        // Wake waiters so they observe the poison instead of waiting forever.
        let _state = self.sync.lock();
        self.synced.notify_all();
    }

    /// Marks batches up to `seq` durable (after a cut fsynced them).
    fn mark_synced(&self, seq: u64) {
        let mut state = self.sync.lock();
        state.synced_seq = state.synced_seq.max(seq);
        self.synced.notify_all();
    }

    /// Returns once every batch up to `target` is durable.
    ///
    /// Group commit: if an fsync is in flight, wait for it; then, if `target`
    /// is still not covered, the first waiter to wake becomes the leader,
    /// snapshots the newest sequence number and fsyncs the active segment
    /// outside both locks, covering every batch written so far. Earlier
    /// segments were fsynced when they were cut, so one fsync suffices.
    fn sync_to(&self, target: u64) -> Result<(), WalError> {
        let mut state = self.sync.lock();
        loop {
            self.check_poisoned()?;
            if state.synced_seq >= target {
                return Ok(());
            }
            if state.in_flight {
                self.synced.wait(&mut state);
                continue;
            }
            state.in_flight = true;
            drop(state);

            let (seq, (file, path)) = {
                let inner = self.inner.lock();
                (inner.seq, inner.writer.handle())
            };
            let result = file.sync_data();

            state = self.sync.lock();
            state.in_flight = false;
            match result {
                Ok(()) => {
                    Counters::add(&self.counters.fsyncs, 1);
                    state.synced_seq = state.synced_seq.max(seq);
                    self.synced.notify_all();
                }
                Err(source) => {
                    drop(state);
                    self.poison();
                    return Err(WalError::Io {
                        op: "fsync segment",
                        path,
                        source,
                    });
                }
            }
        }
    }
}

/// A write-ahead log: an append-only sequence of segment files in one
/// directory, holding opaque records.
///
/// `Wal` is `Send + Sync`; share it behind an `Arc` and call
/// [`log`](Self::log) from many threads. One process must own the directory
/// (the database holds a directory lock); two writers would interleave
/// segments.
///
/// Opening never reads existing segments: appends always go to a new
/// segment after the last one (or into the last one if it is empty), so a
/// torn tail left by a crash can never make opening fail. Replay with
/// [`WalReader`](super::WalReader), and on
/// [`WalError::Corruption`] call [`repair`](Self::repair) before the first
/// append.
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    closed: bool,
    /// Segments readers still need (see `tail.rs`).
    pub(super) holds: Arc<super::tail::SegmentHolds>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("policy", &self.shared.policy)
            .field("poisoned", &self.shared.poisoned.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir` for appending.
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<Self, WalError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let index = match segments(&dir)?.last() {
            None => 0,
            Some(&last) => {
                let path = segment_path(&dir, last);
                let len = fs::metadata(&path)
                    .map_err(io_err("stat segment", &path))?
                    .len();
                if len == 0 {
                    last
                } else {
                    last + 1
                }
            }
        };
        let writer = SegmentWriter::create(&dir, index, options.segment_size)?;
        let shared = Arc::new(Shared {
            dir,
            policy: options.sync,
            inner: Mutex::new(Inner {
                writer,
                seq: 0,
                first_own_segment: index,
                logged: false,
            }),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            poisoned: AtomicBool::new(false),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            counters: Counters::default(),
        });
        Counters::add(&shared.counters.segments_created, 1);
        let flusher = match options.sync.interval_duration() {
            None => None,
            Some(every) => {
                let worker = Arc::clone(&shared);
                let handle = thread::Builder::new()
                    .name("vigil-wal-sync".into())
                    .spawn(move || run_flusher(&worker, every))
                    .map_err(io_err("spawn sync thread for", &shared.dir))?;
                Some(handle)
            }
        };
        Ok(Self {
            shared,
            flusher,
            closed: false,
            holds: Arc::default(),
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The sync policy the WAL was opened with.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.shared.policy
    }

    /// Appends a batch of records, in order, with as few `write` calls as
    /// the page buffer allows, then syncs as the [`SyncPolicy`] says.
    ///
    /// Each record is atomic on disk (its checksum rejects a partial one);
    /// the batch is not: after a crash, replay may find a prefix of it. On
    /// an error the active segment is cut back to where the batch started,
    /// so later appends never follow a half-written frame.
    pub fn log<R: AsRef<[u8]>>(&self, records: &[R]) -> Result<(), WalError> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(r) = records.iter().find(|r| r.as_ref().len() > MAX_RECORD_LEN) {
            return Err(WalError::RecordTooLarge {
                len: r.as_ref().len(),
            });
        }
        let seq = {
            let mut inner = self.shared.inner.lock();
            self.shared.check_poisoned()?;
            let segment_before = inner.writer.current();
            let mark = inner.writer.mark();
            let result = records
                .iter()
                .try_for_each(|r| inner.writer.append(r.as_ref()))
                .and_then(|()| inner.writer.flush());
            let cuts = inner.writer.current() - segment_before;
            Counters::add(&self.shared.counters.segments_created, cuts);
            Counters::add(&self.shared.counters.fsyncs, cuts);
            if let Err(e) = result {
                if inner.writer.sync_failed() {
                    self.shared.poison();
                } else if let Err(rollback) = inner.writer.rollback(mark) {
                    tracing::error!(error = %rollback, dir = %self.shared.dir.display(),
                        "wal: cannot roll back a failed append; poisoning the writer");
                    self.shared.poison();
                }
                return Err(e);
            }
            inner.seq += 1;
            inner.logged = true;
            let bytes: u64 = records
                .iter()
                .map(|r| (HEADER_LEN + r.as_ref().len()) as u64)
                .sum();
            Counters::add(&self.shared.counters.records, records.len() as u64);
            Counters::add(&self.shared.counters.batches, 1);
            Counters::add(&self.shared.counters.bytes, bytes);
            inner.seq
        };
        if self.shared.policy.interval_duration().is_none() {
            self.shared.sync_to(seq)?;
        }
        Ok(())
    }

    /// fsyncs everything logged so far. Returns at once if that is already
    /// durable.
    pub fn sync(&self) -> Result<(), WalError> {
        let target = self.shared.inner.lock().seq;
        self.shared.sync_to(target)
    }

    /// Closes the active segment (fsyncing it) and starts the next one.
    /// Returns the new segment's index. Used before a checkpoint so the
    /// checkpointed range is made of closed segments.
    pub fn cut_segment(&self) -> Result<u64, WalError> {
        let mut inner = self.shared.inner.lock();
        self.shared.check_poisoned()?;
        match inner.writer.cut() {
            Ok(index) => {
                Counters::add(&self.shared.counters.segments_created, 1);
                Counters::add(&self.shared.counters.fsyncs, 1);
                self.shared.mark_synced(inner.seq);
                Ok(index)
            }
            Err(e) => {
                if inner.writer.sync_failed() {
                    self.shared.poison();
                }
                Err(e)
            }
        }
    }

    /// Index of the segment appends currently go to.
    pub fn current_segment(&self) -> u64 {
        self.shared.inner.lock().writer.current()
    }

    /// Deletes the segments with an index below `index`, oldest first (so a
    /// crash midway leaves a contiguous log). The active segment is never
    /// deleted: `index` is capped at [`current_segment`](Self::current_segment),
    /// and at the lowest segment a reader holds ([`Wal::hold_segments`]).
    /// Returns how many segments were deleted.
    pub fn truncate_before(&self, index: u64) -> Result<usize, WalError> {
        let limit = index
            .min(self.current_segment())
            .min(self.held_from().unwrap_or(u64::MAX));
        let mut removed = 0;
        for segment in segments(&self.shared.dir)?
            .into_iter()
            .take_while(|&s| s < limit)
        {
            let path = segment_path(&self.shared.dir, segment);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete segment", path)(e)),
            }
        }
        if removed > 0 {
            sync_dir(&self.shared.dir)?;
        }
        Ok(removed)
    }

    /// Total size in bytes of the WAL directory: segments and checkpoints.
    pub fn size_bytes(&self) -> Result<u64, WalError> {
        dir_size(&self.shared.dir)
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WalStats {
            records: get(&c.records),
            batches: get(&c.batches),
            bytes: get(&c.bytes),
            fsyncs: get(&c.fsyncs),
            segments_created: get(&c.segments_created),
            repairs: get(&c.repairs),
            repaired_bytes_dropped: get(&c.repaired_bytes_dropped),
        }
    }

    /// Cuts the log at a corruption found by replay: truncates the damaged
    /// segment to the corruption offset, deletes every later segment, and
    /// continues appending in a fresh segment after the damaged one (or in
    /// the missing segment itself, for [`MissingSegment`]).
    /// Everything before the damage is kept.
    ///
    /// [`MissingSegment`]: super::CorruptionReason::MissingSegment
    ///
    /// Call it between replay and the first [`log`](Self::log); it refuses
    /// ([`WalError::RepairRefused`]) if records were logged since open, if
    /// the corruption lies in a segment this writer created, or if `err` is
    /// not a corruption. Do not pass corruption found in a checkpoint
    /// directory: its segment numbers are not the WAL's.
    ///
    /// If the repair fails after it started deleting, the writer is poisoned
    /// (reopen and replay again; repair is idempotent).
    pub fn repair(&self, err: &WalError) -> Result<RepairReport, WalError> {
        let &WalError::Corruption {
            segment,
            offset,
            reason,
        } = err
        else {
            return Err(WalError::RepairRefused {
                reason: RepairRefusal::NotCorruption,
            });
        };
        let mut inner = self.shared.inner.lock();
        self.shared.check_poisoned()?;
        if segment >= inner.first_own_segment {
            return Err(WalError::RepairRefused {
                reason: RepairRefusal::SegmentInUse,
            });
        }
        if inner.logged {
            return Err(WalError::RepairRefused {
                reason: RepairRefusal::WritesSinceOpen,
            });
        }
        let result = self.cut_log_at(segment, offset);
        let (bytes_dropped, segments_deleted, existed) = match result {
            Ok(cut) => cut,
            Err(e) => {
                self.shared.poison();
                return Err(e);
            }
        };
        // A missing segment is recreated (empty) so the log stays contiguous;
        // otherwise the next replay would stop at the same hole and a second
        // repair would delete everything appended after this one.
        let new_segment = if existed { segment + 1 } else { segment };
        match SegmentWriter::create(&self.shared.dir, new_segment, inner.writer.segment_size()) {
            Ok(writer) => inner.writer = writer,
            Err(e) => {
                self.shared.poison();
                return Err(e);
            }
        }
        inner.first_own_segment = new_segment;
        let c = &self.shared.counters;
        Counters::add(&c.segments_created, 1);
        Counters::add(&c.repairs, 1);
        Counters::add(&c.repaired_bytes_dropped, bytes_dropped);
        tracing::warn!(dir = %self.shared.dir.display(), segment, offset, %reason, bytes_dropped,
            segments_deleted, "wal: repaired corruption");
        Ok(RepairReport {
            segment,
            offset,
            bytes_dropped,
            segments_deleted,
            new_segment,
        })
    }

    /// Truncates `segment` to `offset` and deletes all later segments.
    /// Returns the bytes dropped, the number of segments deleted and whether
    /// `segment` exists.
    fn cut_log_at(&self, segment: u64, offset: u64) -> Result<(u64, u64, bool), WalError> {
        let dir = &self.shared.dir;
        let mut dropped = 0;
        let mut existed = false;
        let path = segment_path(dir, segment);
        match OpenOptions::new().write(true).open(&path) {
            Ok(file) => {
                existed = true;
                let len = file
                    .metadata()
                    .map_err(io_err("stat segment", &path))?
                    .len();
                if len > offset {
                    file.set_len(offset)
                        .map_err(io_err("truncate segment", &path))?;
                    file.sync_all().map_err(io_err("fsync segment", &path))?;
                    dropped += len - offset;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("open segment", path)(e)),
        }
        // Delete newest first: a crash midway then leaves a contiguous log
        // that a second replay and repair finish cutting.
        let mut deleted = 0;
        for later in segments(dir)?
            .into_iter()
            .rev()
            .take_while(|&s| s > segment)
        {
            let path = segment_path(dir, later);
            let len = match fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat segment", path)(e)),
            };
            fs::remove_file(&path).map_err(io_err("delete segment", &path))?;
            dropped += len;
            deleted += 1;
        }
        sync_dir(dir)?;
        Ok((dropped, deleted, existed))
    }

    /// Stops the background sync thread and fsyncs what is left.
    /// Dropping the WAL does the same but can only log an error.
    pub fn close(mut self) -> Result<(), WalError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), WalError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Some(handle) = self.flusher.take() {
            *self.shared.stop.lock() = true;
            self.shared.stop_cv.notify_all();
            // A panic in the flusher thread is a bug; the final sync below
            // still runs.
            let _ = handle.join();
        }
        let target = self.shared.inner.lock().seq;
        self.shared.sync_to(target)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, dir = %self.shared.dir.display(), "wal: final sync failed");
        }
    }
}

/// Body of the [`SyncPolicy::interval`] thread.
fn run_flusher(shared: &Shared, every: Duration) {
    loop {
        {
            let mut stop = shared.stop.lock();
            if !*stop {
                shared.stop_cv.wait_for(&mut stop, every);
            }
            if *stop {
                return;
            }
        }
        let target = shared.inner.lock().seq;
        if let Err(e) = shared.sync_to(target) {
            tracing::error!(error = %e, dir = %shared.dir.display(), "wal: background fsync failed");
            return;
        }
    }
}
