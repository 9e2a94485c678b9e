//! Backfill: writing samples of any age, in any order, straight into
//! blocks of a data directory (what `vigil tsdb import` and Prometheus's
//! `promtool tsdb create-blocks-from` do).
//!
//! A [`BlockImporter`] buffers samples by series in memory. When the buffer
//! holds [`ImportOptions::max_samples_in_memory`] samples, and at the end,
//! it sorts each series by time (a repeated timestamp keeps the value that
//! came last) and writes one block per aligned range of
//! [`ImportOptions::block_duration`] that has data. Ranges written by more
//! than one batch are merged by compaction, so the result is one block per
//! range, as Prometheus's backfill aligns them.
//!
//! **All or nothing.** Everything is written into a staging directory
//! `<ulid>.tmp-for-import` inside the data directory. Only
//! [`commit`](BlockImporter::commit) moves the finished blocks into place,
//! each with one `rename`; dropping the importer (after an error in the
//! input, say) deletes the staging directory. A process killed mid-import
//! leaves the staging directory, which the next [`Db::open`](crate::Db::open)
//! of the directory removes (it removes every `<ulid>.tmp*`). Should a move
//! fail, the blocks already moved are deleted again.
//!
//! **With a running database.** When no process holds the data directory's
//! lock, the importer takes it for its whole run, so the database cannot
//! start on half an import. When a database holds it, the importer still
//! writes (blocks are immutable and appear whole), and the running
//! database opens them at its next maintenance round
//! ([`Db::load_new_blocks`](crate::Db::load_new_blocks));
//! [`target_in_use`](BlockImporter::target_in_use) tells which case holds.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use vigil_model::Labels;

use crate::block::{
    self, Block, BlockError, BlockMeta, BlockWriter, BlockWriterOptions, ChunkMeta, Ulid,
};
use crate::chunkenc::{ChunkEncoder, Encoding};
use crate::mmap::{DirLock, MmapError};

/// Two hours in milliseconds, the default block range.
pub const DEFAULT_BLOCK_DURATION: i64 = 2 * 3_600_000;

/// Suffix of an importer's staging directory.
pub const TMP_FOR_IMPORT: &str = ".tmp-for-import";

/// The block range to use for a requested maximum (ms), as promtool picks
/// it: the largest of 2h, 6h, 18h, ... (ten ranges, each three times the
/// last) that is at most `max`, and 2h for anything smaller.
pub fn compatible_block_duration(max: i64) -> i64 {
    block::exponential_ranges(DEFAULT_BLOCK_DURATION, 10, 3)
        .into_iter()
        .take_while(|&r| r <= max)
        .last()
        .unwrap_or(DEFAULT_BLOCK_DURATION)
}

/// Settings of a [`BlockImporter`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The block range in ms; blocks cover `[k * d, (k + 1) * d)`.
    pub block_duration: i64,
    /// Samples buffered before a batch of blocks is written (each costs 16
    /// bytes). Ranges written by several batches are merged at the end.
    pub max_samples_in_memory: usize,
    /// Encoding of the chunks written.
    pub encoding: Encoding,
    /// Samples per chunk.
    pub samples_per_chunk: u16,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            block_duration: DEFAULT_BLOCK_DURATION,
            max_samples_in_memory: 10_000_000,
            encoding: Encoding::default(),
            samples_per_chunk: crate::head::HeadOptions::default().block_chunk_samples,
        }
    }
}

impl ImportOptions {
    /// Sets [`block_duration`](Self::block_duration).
    pub fn with_block_duration(mut self, ms: i64) -> Self {
        self.block_duration = ms;
        self
    }

    /// Sets [`max_samples_in_memory`](Self::max_samples_in_memory).
    pub fn with_max_samples_in_memory(mut self, n: usize) -> Self {
        self.max_samples_in_memory = n;
        self
    }
}

/// Why an import failed. The staging directory is removed; nothing was
/// added to the data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing or merging a block failed.
    #[error("block: {0}")]
    Block(#[from] BlockError),
    /// Locking the data or staging directory failed.
    #[error("{0}")]
    Lock(#[from] MmapError),
    /// The block duration is not positive.
    #[error("block duration must be positive, got {0} ms")]
    BadBlockDuration(i64),
    /// A sample's timestamp lies so far out that its block's range does
    /// not fit in 64 bits.
    #[error("timestamp {0} ms is out of the range blocks can hold")]
    TimestampOutOfRange(i64),
    /// A series without labels.
    #[error("a series needs at least one label")]
    EmptyLabels,
    /// More than 2^32 series in one import.
    #[error("too many series for one import")]
    TooManySeries,
    /// A series handle from another importer.
    #[error("unknown series handle")]
    UnknownSeries,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.to_path_buf();
    move |source| ImportError::Io { op, path, source }
}

/// A series of an import, from [`BlockImporter::series`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImportSeries(u32);

/// What a committed import wrote.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// The blocks now in the data directory, oldest first.
    pub blocks: Vec<BlockMeta>,
    /// Samples added (before repeated timestamps were folded).
    pub samples: u64,
    /// Distinct series.
    pub series: u64,
    /// Samples whose timestamp repeated an earlier one of their series with
    /// another value; the later value was kept. Counted within each batch.
    pub replaced: u64,
    /// The earliest and latest timestamps, when any sample was added.
    pub time_range: Option<(i64, i64)>,
}

/// Writes samples of any age and order into aligned blocks, all or nothing.
/// See the [module docs](self).
#[derive(Debug)]
pub struct BlockImporter {
    target: PathBuf,
    staging: PathBuf,
    staging_lock: Option<DirLock>,
    /// The data directory's lock, when no running database held it.
    target_lock: Option<DirLock>,
    /// Whether the import created the data directory (a failed import then
    /// removes it again).
    created_target: bool,
    opts: ImportOptions,
    writer_opts: BlockWriterOptions,
    labels: Vec<Labels>,
    index: HashMap<Labels, u32>,
    buffers: Vec<Vec<(i64, f64)>>,
    buffered: usize,
    /// Blocks written so far, by batch.
    batches: Vec<Vec<(i64, BlockMeta)>>,
    summary: ImportSummary,
    committed: bool,
}

impl BlockImporter {
    /// Starts an import into the data directory `target` (created if
    /// missing).
    pub fn new(
        target: impl AsRef<Path>,
        opts: ImportOptions,
    ) -> Result<BlockImporter, ImportError> {
        if opts.block_duration <= 0 {
            return Err(ImportError::BadBlockDuration(opts.block_duration));
        }
        let target = target.as_ref().to_path_buf();
        let created_target = !target.exists();
        std::fs::create_dir_all(&target).map_err(io("create data directory", &target))?;
        let target_lock = match DirLock::acquire(&target) {
            Ok(l) => Some(l),
            Err(MmapError::Locked { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let staging = target.join(format!("{}{TMP_FOR_IMPORT}", Ulid::new()));
        std::fs::create_dir(&staging).map_err(io("create staging directory", &staging))?;
        let mut imp = BlockImporter {
            target,
            staging,
            staging_lock: None,
            target_lock,
            created_target,
            opts,
            writer_opts: BlockWriterOptions::default(),
            labels: Vec::new(),
            index: HashMap::new(),
            buffers: Vec::new(),
            buffered: 0,
            batches: Vec::new(),
            summary: ImportSummary::default(),
            committed: false,
        };
        // From here on, dropping `imp` removes the staging directory.
        imp.staging_lock = Some(DirLock::acquire(&imp.staging)?);
        Ok(imp)
    }

    /// Whether another process (a running vigil) holds the data
    /// directory's lock. Its database opens the imported blocks at its
    /// next maintenance round.
    pub fn target_in_use(&self) -> bool {
        self.target_lock.is_none()
    }

    /// The options in force.
    pub fn options(&self) -> &ImportOptions {
        &self.opts
    }

    /// The handle of the series `labels`, registering it on first use.
    pub fn series(&mut self, labels: Labels) -> Result<ImportSeries, ImportError> {
        if let Some(&id) = self.index.get(&labels) {
            return Ok(ImportSeries(id));
        }
        if labels.is_empty() {
            return Err(ImportError::EmptyLabels);
        }
        let id = u32::try_from(self.labels.len()).map_err(|_| ImportError::TooManySeries)?;
        self.index.insert(labels.clone(), id);
        self.labels.push(labels);
        self.buffers.push(Vec::new());
        self.summary.series += 1;
        Ok(ImportSeries(id))
    }

    /// The labels of a series.
    pub fn labels(&self, s: ImportSeries) -> Option<&Labels> {
        self.labels.get(s.0 as usize)
    }

    /// Adds a sample. May write a batch of blocks to the staging directory
    /// when the buffer is full.
    pub fn add(&mut self, s: ImportSeries, t: i64, v: f64) -> Result<(), ImportError> {
        self.check_time(t)?;
        let Some(buf) = self.buffers.get_mut(s.0 as usize) else {
            return Err(ImportError::UnknownSeries);
        };
        buf.push((t, v));
        self.buffered += 1;
        self.summary.samples += 1;
        self.summary.time_range = Some(match self.summary.time_range {
            None => (t, t),
            Some((lo, hi)) => (lo.min(t), hi.max(t)),
        });
        if self.buffered >= self.opts.max_samples_in_memory.max(1) {
            self.flush()?;
        }
        Ok(())
    }

    /// Fails for a timestamp whose block range does not fit in an `i64`.
    pub fn check_time(&self, t: i64) -> Result<(), ImportError> {
        let d = i128::from(self.opts.block_duration);
        let end = (i128::from(t).div_euclid(d) + 1) * d;
        if end > i128::from(i64::MAX) {
            return Err(ImportError::TimestampOutOfRange(t));
        }
        Ok(())
    }

    /// Samples added so far.
    pub fn samples(&self) -> u64 {
        self.summary.samples
    }

    /// Writes the buffered samples as blocks into the staging directory.
    fn flush(&mut self) -> Result<(), ImportError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let d = self.opts.block_duration;
        let mut order: Vec<u32> = (0..self.buffers.len() as u32)
            .filter(|&i| !self.buffers[i as usize].is_empty())
            .collect();
        order.sort_by(|&a, &b| self.labels[a as usize].cmp(&self.labels[b as usize]));
        // Per range, the series (in label order) and their slice of samples.
        let mut ranges: BTreeMap<i64, Vec<(u32, usize, usize)>> = BTreeMap::new();
        for &id in &order {
            let buf = &mut self.buffers[id as usize];
            self.summary.replaced += sort_and_fold(buf);
            let mut start = 0;
            while start < buf.len() {
                let k = buf[start].0.div_euclid(d);
                let end = start + buf[start..].partition_point(|s| s.0.div_euclid(d) == k);
                ranges.entry(k).or_default().push((id, start, end));
                start = end;
            }
        }
        let mut written = Vec::with_capacity(ranges.len());
        let mut chunks = Vec::new();
        for (k, list) in ranges {
            let mint = k * d;
            let mut w =
                BlockWriter::with_options(&self.staging, mint, mint + d, &self.writer_opts)?;
            for (id, a, b) in list {
                encode(
                    &self.buffers[id as usize][a..b],
                    self.opts.encoding,
                    self.opts.samples_per_chunk,
                    &mut chunks,
                );
                w.add_series(&self.labels[id as usize], &chunks)?;
            }
            written.push((k, w.finish()?));
        }
        self.batches.push(written);
        for id in order {
            self.buffers[id as usize] = Vec::new();
        }
        self.buffered = 0;
        Ok(())
    }

    /// Writes what is buffered, merges ranges written by several batches,
    /// and moves the blocks into the data directory. Returns what was
    /// written.
    pub fn commit(mut self) -> Result<ImportSummary, ImportError> {
        self.flush()?;
        let mut by_range: BTreeMap<i64, Vec<BlockMeta>> = BTreeMap::new();
        // Newest batch first: on a repeated timestamp, compaction keeps the
        // first block's sample, which is the one that came later.
        for batch in std::mem::take(&mut self.batches).into_iter().rev() {
            for (k, meta) in batch {
                by_range.entry(k).or_default().push(meta);
            }
        }
        let mut finals = Vec::with_capacity(by_range.len());
        for (_, metas) in by_range {
            finals.push(self.merge(metas)?);
        }
        let mut moved: Vec<PathBuf> = Vec::with_capacity(finals.len());
        for meta in &finals {
            let name = meta.ulid.to_string();
            let (from, to) = (self.staging.join(&name), self.target.join(&name));
            if let Err(e) = std::fs::rename(&from, &to) {
                for p in &moved {
                    let _ = block::delete_block_dir(p);
                }
                return Err(io("move block into", &to)(e));
            }
            moved.push(to);
        }
        block::sync_dir(&self.target)?;
        self.committed = true;
        self.remove_staging();
        self.summary.blocks = finals;
        Ok(std::mem::take(&mut self.summary))
    }

    /// One block out of the blocks one range got from several batches.
    fn merge(&self, metas: Vec<BlockMeta>) -> Result<BlockMeta, ImportError> {
        if let [one] = metas.as_slice() {
            return Ok(one.clone());
        }
        let Some(lock) = self.staging_lock.as_ref() else {
            return Err(ImportError::Lock(MmapError::Locked {
                path: self.staging.clone(),
            }));
        };
        let blocks = metas
            .iter()
            .map(|m| Block::open(lock, self.staging.join(m.ulid.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&Block> = blocks.iter().collect();
        let merged = block::compact_with_options(&self.staging, &refs, &self.writer_opts)?;
        for b in &blocks {
            block::delete_block_dir(b.dir())?;
        }
        // Each parent holds at least one sample, so the merge does too.
        merged.ok_or(ImportError::Block(BlockError::io(
            "merge blocks",
            &self.staging,
        )(
            std::io::ErrorKind::InvalidData.into()
        )))
    }

    fn remove_staging(&mut self) {
        // Unmap and unlock before removing.
        self.staging_lock = None;
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

impl Drop for BlockImporter {
    fn drop(&mut self) {
        if !self.committed {
            self.remove_staging();
            if self.created_target && self.target_lock.take().is_some() {
                let _ = std::fs::remove_file(self.target.join(DirLock::FILE_NAME));
                let _ = std::fs::remove_dir(&self.target);
            }
        }
    }
}

/// Sorts samples by time (stable: input order among equal timestamps) and
/// folds repeated timestamps into the last value. Returns how many folded
/// samples had a different value.
fn sort_and_fold(buf: &mut Vec<(i64, f64)>) -> u64 {
    if !buf.is_sorted_by_key(|s| s.0) {
        buf.sort_by_key(|s| s.0);
    }
    let mut replaced = 0;
    let mut w = 0;
    for i in 0..buf.len() {
        let s = buf[i];
        if w > 0 && buf[w - 1].0 == s.0 {
            if buf[w - 1].1.to_bits() != s.1.to_bits() {
                replaced += 1;
            }
            buf[w - 1] = s;
        } else {
            buf[w] = s;
            w += 1;
        }
    }
    buf.truncate(w);
    replaced
}

/// Encodes time-sorted samples into chunks of at most `per_chunk`.
fn encode(samples: &[(i64, f64)], enc: Encoding, per_chunk: u16, out: &mut Vec<ChunkMeta>) {
    out.clear();
    for part in samples.chunks(usize::from(per_chunk.max(1))) {
        let (Some(&(mint, _)), Some(&(maxt, _))) = (part.first(), part.last()) else {
            continue;
        };
        let mut e = ChunkEncoder::new(enc);
        for &(t, v) in part {
            // At most u16::MAX samples per part: the chunk never fills.
            let _ = e.append(t, v);
        }
        out.push(ChunkMeta {
            mint,
            maxt,
            data: e.into_bytes(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, Options};
    use vigil_model::{labels, Queryable, SampleIterator, ValueType};

    const H: i64 = 3_600_000;

    fn read_all(dir: &Path) -> BTreeMap<Labels, Vec<(i64, f64)>> {
        let db = Db::open(
            dir,
            Options {
                retention_time: None,
                ..Options::default()
            },
        )
        .unwrap();
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let set = q.select(true, None, &[]).unwrap();
        let mut out = BTreeMap::new();
        for s in &set.series {
            let mut it = s.iter();
            let mut v = Vec::new();
            while it.next() == ValueType::Float {
                v.push(it.at());
            }
            out.insert(s.labels().clone(), v);
        }
        out
    }

    #[test]
    fn block_durations_follow_promtool() {
        assert_eq!(compatible_block_duration(0), 2 * H);
        assert_eq!(compatible_block_duration(2 * H), 2 * H);
        assert_eq!(compatible_block_duration(5 * H), 2 * H);
        assert_eq!(compatible_block_duration(6 * H), 6 * H);
        assert_eq!(compatible_block_duration(24 * H), 18 * H);
        assert_eq!(compatible_block_duration(i64::MAX), 2 * H * 3_i64.pow(9));
    }

    #[test]
    fn unordered_samples_become_aligned_blocks_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ImportOptions::default().with_max_samples_in_memory(7);
        let mut imp = BlockImporter::new(dir.path(), opts).unwrap();
        assert!(!imp.target_in_use());
        let a = imp.series(labels!("__name__" => "a")).unwrap();
        let b = imp.series(labels!("__name__" => "b")).unwrap();
        // Newest first, spread over three 2h ranges, one repeat.
        let mut want_a = Vec::new();
        for i in (0..30).rev() {
            let t = i * 20 * 60_000; // every 20 minutes, 10 hours
            imp.add(a, t, i as f64).unwrap();
            want_a.push((t, i as f64));
        }
        imp.add(b, 5, 1.0).unwrap();
        imp.add(b, 5, 2.0).unwrap(); // same batch: the later value wins
        want_a.reverse();
        let summary = imp.commit().unwrap();
        assert_eq!(summary.samples, 32);
        assert_eq!(summary.series, 2);
        assert_eq!(summary.replaced, 1);
        let ranges: Vec<(i64, i64)> = summary
            .blocks
            .iter()
            .map(|m| (m.min_time, m.max_time))
            .collect();
        assert_eq!(
            ranges,
            vec![
                (0, 2 * H),
                (2 * H, 4 * H),
                (4 * H, 6 * H),
                (6 * H, 8 * H),
                (8 * H, 10 * H)
            ]
        );
        // Nothing is left in staging.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        let got = read_all(dir.path());
        assert_eq!(got[&labels!("__name__" => "a")], want_a);
        assert_eq!(got[&labels!("__name__" => "b")], vec![(5, 2.0)]);
    }

    #[test]
    fn a_later_batch_wins_a_repeated_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ImportOptions::default().with_max_samples_in_memory(2);
        let mut imp = BlockImporter::new(dir.path(), opts).unwrap();
        let a = imp.series(labels!("__name__" => "a")).unwrap();
        imp.add(a, 10, 1.0).unwrap();
        imp.add(a, 20, 1.0).unwrap(); // batch 1 written
        imp.add(a, 10, 9.0).unwrap();
        imp.commit().unwrap();
        assert_eq!(
            read_all(dir.path())[&labels!("__name__" => "a")],
            vec![(10, 9.0), (20, 1.0)]
        );
    }

    #[test]
    fn dropping_leaves_nothing_and_bad_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut imp = BlockImporter::new(
                dir.path(),
                ImportOptions::default().with_max_samples_in_memory(1),
            )
            .unwrap();
            let a = imp.series(labels!("__name__" => "a")).unwrap();
            imp.add(a, 1, 1.0).unwrap(); // written to staging
            assert!(matches!(
                imp.add(a, i64::MAX, 1.0),
                Err(ImportError::TimestampOutOfRange(_))
            ));
            assert!(matches!(
                imp.series(Labels::empty()),
                Err(ImportError::EmptyLabels)
            ));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["LOCK"]);
        // A data directory the import created goes too.
        let fresh = dir.path().join("fresh");
        drop(BlockImporter::new(&fresh, ImportOptions::default()).unwrap());
        assert!(!fresh.exists());
        assert!(matches!(
            BlockImporter::new(dir.path(), ImportOptions::default().with_block_duration(0)),
            Err(ImportError::BadBlockDuration(0))
        ));
    }

    #[test]
    fn importing_next_to_an_open_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut imp = BlockImporter::new(dir.path(), ImportOptions::default()).unwrap();
        assert!(imp.target_in_use());
        let a = imp.series(labels!("__name__" => "a")).unwrap();
        imp.add(a, 1_000, 1.0).unwrap();
        imp.commit().unwrap();
        db.maintain().unwrap();
        let q = db.querier(0, 10_000).unwrap();
        assert_eq!(q.select(true, None, &[]).unwrap().series.len(), 1);
    }
}
