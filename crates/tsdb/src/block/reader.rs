//! Reading a block: [`Block`] opens the files, selects series with label
//! matchers and hands out [`BlockSeries`] whose sample cursors decode chunks
//! lazily, skip whole chunks by their metadata and hide deleted samples.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use vigil_model::{
    Labels, Matcher, Querier, Queryable, SampleIterator, SelectHints, Series, SeriesSet,
    StorageError, ValueType,
};

use super::chunks::{ChunkReader, ChunkRef, CHUNKS_DIR};
use super::error::BlockError;
use super::index::{ChunkInfo, IndexReader};
use super::meta::BlockMeta;
use super::tombstones::{Intervals, Tombstones};
use super::ulid::Ulid;
use super::{BlockSeriesRef, INDEX_FILE, META_FILE, TOMBSTONES_FILE};
use crate::chunkenc::ChunkIter;
use crate::mmap::{DirLock, MmapSlice};

/// An open, immutable block.
///
/// The index and the chunk segments are mapped read-only; the tombstones
/// are held in memory and replaced by [`delete`](Block::delete). A `Block`
/// is `Send + Sync`: queries run concurrently, deletions are serialised.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: RwLock<BlockMeta>,
    index: IndexReader,
    chunks: Arc<ChunkReader>,
    tombstones: RwLock<Arc<Tombstones>>,
    delete_lock: Mutex<()>,
}

/// Sizes of a block's files in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockSize {
    /// The index.
    pub index: u64,
    /// All chunk segments.
    pub chunks: u64,
    /// The tombstones file.
    pub tombstones: u64,
    /// `meta.json`.
    pub meta: u64,
}

impl BlockSize {
    /// All files together.
    pub fn total(&self) -> u64 {
        self.index + self.chunks + self.tombstones + self.meta
    }
}

/// One series of a block with its chunk metadata and deleted intervals,
/// for compaction and tools: nothing is decoded.
#[derive(Debug, Clone)]
pub struct SeriesChunks {
    /// The series' reference in the block.
    pub series_ref: BlockSeriesRef,
    /// Its labels.
    pub labels: Labels,
    /// Its chunks, in time order.
    pub chunks: Vec<ChunkInfo>,
    /// Its deleted intervals.
    pub deleted: Intervals,
}

impl Block {
    /// Opens the block in `dir`, which must lie inside the directory locked
    /// by `lock` (the data directory; the files are mapped under it).
    ///
    /// Reads and checks `meta.json` and the tombstones, maps the index and
    /// verifies its checksums, and maps and checks the chunk segments.
    pub fn open(lock: &DirLock, dir: impl AsRef<Path>) -> Result<Block, BlockError> {
        Self::open_with(lock, dir.as_ref(), true)
    }

    pub(crate) fn open_with(
        lock: &DirLock,
        dir: &Path,
        verify_index: bool,
    ) -> Result<Block, BlockError> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(lock, &dir.join(INDEX_FILE), verify_index)?;
        let chunks = ChunkReader::open(lock, &dir.join(CHUNKS_DIR))?;
        let tombstones = Tombstones::read(dir)?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta: RwLock::new(meta),
            index,
            chunks: Arc::new(chunks),
            tombstones: RwLock::new(Arc::new(tombstones)),
            delete_lock: Mutex::new(()),
        })
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's id.
    pub fn ulid(&self) -> Ulid {
        self.meta.read().ulid
    }

    /// The block's meta (its `numTombstones` follows deletions).
    pub fn meta(&self) -> BlockMeta {
        self.meta.read().clone()
    }

    /// Sizes of the block's files.
    pub fn size(&self) -> BlockSize {
        let len = |name: &str| std::fs::metadata(self.dir.join(name)).map_or(0, |m| m.len());
        BlockSize {
            index: self.index.size(),
            chunks: self.chunks.size(),
            tombstones: len(TOMBSTONES_FILE),
            meta: len(META_FILE),
        }
    }

    /// The current tombstones.
    pub fn tombstones(&self) -> Arc<Tombstones> {
        Arc::clone(&self.tombstones.read())
    }

    /// The series matching every matcher that have samples in
    /// `[mint, maxt]` (inclusive), sorted by labels.
    ///
    /// Chunks outside the range or wholly deleted are left out, and series
    /// left without chunks are skipped. The samples are not decoded here.
    pub fn select(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<BlockSeries>, BlockError> {
        if mint > maxt || !self.meta.read().overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let refs = self.index.postings_for_matchers(matchers)?;
        let tombstones = self.tombstones();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let r = BlockSeriesRef(r);
            let mut e = self.index.series(r, true)?;
            let deleted = tombstones.get(r);
            e.chunks
                .retain(|c| c.overlaps(mint, maxt) && !deleted.covers(c.mint, c.maxt));
            if e.chunks.is_empty() {
                continue;
            }
            out.push(BlockSeries {
                series_ref: r,
                labels: self.index.labels(&e)?,
                chunks: e.chunks,
                deleted: deleted.clone(),
                reader: Arc::clone(&self.chunks),
                mint,
                maxt,
            });
        }
        Ok(out)
    }

    /// Sorted label names of the series matching `matchers` (all series if
    /// empty). Tombstones are not taken into account.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, BlockError> {
        if matchers.is_empty() {
            return self.index.label_names();
        }
        let refs = self.index.postings_for_matchers(matchers)?;
        self.index.collect_labels(&refs, None)
    }

    /// Sorted values of label `name` over the series matching `matchers`
    /// (all series if empty). Tombstones are not taken into account.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, BlockError> {
        if matchers.is_empty() {
            return self.index.label_values(name);
        }
        let Some(sym) = self.index.name_symbol(name) else {
            return Ok(Vec::new());
        };
        let refs = self.index.postings_for_matchers(matchers)?;
        self.index.collect_labels(&refs, Some(sym))
    }

    /// The series matching `matchers` (all if empty) with their chunk
    /// metadata and deleted intervals, in label order, decoded one at a
    /// time. Compaction reads blocks through this and [`chunk`](Self::chunk).
    pub fn chunk_series(&self, matchers: &[Matcher]) -> Result<ChunkSeriesIter<'_>, BlockError> {
        let refs = self.index.postings_for_matchers(matchers)?;
        Ok(ChunkSeriesIter {
            block: self,
            refs: refs.into_iter(),
            tombstones: self.tombstones(),
        })
    }

    /// The chunk metadata, labels and deleted intervals of one series.
    pub fn chunks_for(&self, series: BlockSeriesRef) -> Result<SeriesChunks, BlockError> {
        self.chunks_with(series, &self.tombstones())
    }

    fn chunks_with(
        &self,
        series: BlockSeriesRef,
        tombstones: &Tombstones,
    ) -> Result<SeriesChunks, BlockError> {
        let e = self.index.series(series, true)?;
        Ok(SeriesChunks {
            series_ref: series,
            labels: self.index.labels(&e)?,
            chunks: e.chunks,
            deleted: tombstones.get(series).clone(),
        })
    }

    /// The bytes of a chunk (encoding byte first), checked against their
    /// CRC, as an owned slice of the map: copy them unchanged or decode
    /// them with [`ChunkIter`].
    pub fn chunk(&self, r: ChunkRef) -> Result<MmapSlice, BlockError> {
        self.chunks.chunk(r)
    }

    /// Deletes the samples in `[mint, maxt]` of the series matching
    /// `matchers` by recording tombstones. The new tombstones file replaces
    /// the old one atomically, then `meta.json` is updated with the new
    /// count. Returns the number of series that got a tombstone.
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<u64, BlockError> {
        let _serial = self.delete_lock.lock();
        let (lo, hi) = {
            let m = self.meta.read();
            (mint.max(m.min_time), maxt.min(m.max_time - 1))
        };
        if lo > hi {
            return Ok(0);
        }
        let refs = self.index.postings_for_matchers(matchers)?;
        let old = self.tombstones();
        let mut new = (*old).clone();
        let mut n = 0;
        for r in refs {
            let r = BlockSeriesRef(r);
            let e = self.index.series(r, true)?;
            if e.chunks.iter().any(|c| c.overlaps(lo, hi)) {
                new.add(r, lo, hi);
                n += 1;
            }
        }
        if new == *old {
            return Ok(n);
        }
        new.replace(&self.dir)?;
        let mut meta = self.meta();
        meta.stats.num_tombstones = new.num_intervals();
        *self.tombstones.write() = Arc::new(new);
        meta.write(&self.dir)?;
        *self.meta.write() = meta;
        Ok(n)
    }

    /// A querier over `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> BlockQuerier<'_> {
        BlockQuerier {
            block: self,
            mint,
            maxt,
        }
    }
}

/// Iterates the series of a block with their chunk metadata; see
/// [`Block::chunk_series`].
#[derive(Debug)]
pub struct ChunkSeriesIter<'a> {
    block: &'a Block,
    refs: std::vec::IntoIter<u64>,
    tombstones: Arc<Tombstones>,
}

impl Iterator for ChunkSeriesIter<'_> {
    type Item = Result<SeriesChunks, BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.refs.next()?;
        Some(self.block.chunks_with(BlockSeriesRef(r), &self.tombstones))
    }
}

/// A series selected from a block. Implements [`Series`]; its cursor
/// decodes one chunk at a time.
#[derive(Debug, Clone)]
pub struct BlockSeries {
    series_ref: BlockSeriesRef,
    labels: Labels,
    chunks: Vec<ChunkInfo>,
    deleted: Intervals,
    reader: Arc<ChunkReader>,
    mint: i64,
    maxt: i64,
}

impl BlockSeries {
    /// The series' reference in its block.
    pub fn series_ref(&self) -> BlockSeriesRef {
        self.series_ref
    }

    /// The chunks that may hold samples in the selected range.
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }

    /// The deleted intervals the cursor skips.
    pub fn deleted(&self) -> &Intervals {
        &self.deleted
    }

    /// A cursor over the samples in the selected range.
    pub fn samples(&self) -> BlockSeriesIter<'_> {
        BlockSeriesIter {
            s: self,
            next_chunk: 0,
            cur: None,
            at: (i64::MIN, f64::NAN),
            state: ValueType::None,
            done: false,
            err: None,
        }
    }
}

impl Series for BlockSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + Send + '_> {
        Box::new(self.samples())
    }
}

/// The sample cursor of a [`BlockSeries`]: only samples in the selected
/// range and outside deleted intervals, in time order.
#[derive(Debug)]
pub struct BlockSeriesIter<'a> {
    s: &'a BlockSeries,
    /// Index of the next chunk to open.
    next_chunk: usize,
    /// The open chunk and its index.
    cur: Option<(ChunkIter<MmapSlice>, usize)>,
    at: (i64, f64),
    state: ValueType,
    done: bool,
    err: Option<StorageError>,
}

impl BlockSeriesIter<'_> {
    fn end(&mut self) -> ValueType {
        self.done = true;
        self.cur = None;
        self.state = ValueType::None;
        ValueType::None
    }

    fn fail(&mut self, e: BlockError) -> ValueType {
        self.err = Some(e.into());
        self.end()
    }

    /// Error of the open chunk's decoder, if it stopped on one.
    fn chunk_error(&self) -> Option<BlockError> {
        let (it, i) = self.cur.as_ref()?;
        let source = it.err()?;
        let r = self.s.chunks.get(*i)?.chunk_ref;
        Some(BlockError::Chunk {
            file: self.s.reader.segment_path(r.segment()),
            offset: u64::from(r.offset()),
            source,
        })
    }

    /// Opens the next chunk that ends at or after `t` and is not wholly
    /// deleted. False at the end of the range (or on error, which is set).
    fn open_next(&mut self, t: i64) -> bool {
        let s = self.s;
        let t = t.max(s.mint);
        while let Some(c) = s.chunks.get(self.next_chunk) {
            let i = self.next_chunk;
            self.next_chunk += 1;
            if c.mint > s.maxt {
                return false;
            }
            if c.maxt < t || s.deleted.covers(c.mint, c.maxt) {
                continue;
            }
            match s.reader.chunk(c.chunk_ref) {
                Ok(bytes) => {
                    self.cur = Some((ChunkIter::new(bytes), i));
                    return true;
                }
                Err(e) => {
                    self.err = Some(e.into());
                    return false;
                }
            }
        }
        false
    }

    /// Accepts the sample the open chunk stands on, or moves on as `next`.
    fn settle(&mut self) -> ValueType {
        let Some((it, _)) = self.cur.as_ref() else {
            return self.next();
        };
        let (t, v) = it.at();
        if t > self.s.maxt {
            return self.end();
        }
        if t < self.s.mint || self.s.deleted.contains(t) {
            return self.next();
        }
        self.at = (t, v);
        self.state = ValueType::Float;
        ValueType::Float
    }
}

impl SampleIterator for BlockSeriesIter<'_> {
    fn next(&mut self) -> ValueType {
        if self.done {
            return ValueType::None;
        }
        let (mint, maxt) = (self.s.mint, self.s.maxt);
        loop {
            if let Some((it, _)) = self.cur.as_mut() {
                while it.next() {
                    let (t, v) = it.at();
                    if t > maxt {
                        return self.end();
                    }
                    if t < mint || self.s.deleted.contains(t) {
                        continue;
                    }
                    self.at = (t, v);
                    self.state = ValueType::Float;
                    return ValueType::Float;
                }
                if let Some(e) = self.chunk_error() {
                    return self.fail(e);
                }
                self.cur = None;
            }
            if !self.open_next(i64::MIN) {
                return self.end();
            }
        }
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.done {
            return ValueType::None;
        }
        if self.state == ValueType::Float && self.at.0 >= t {
            return ValueType::Float;
        }
        // Skip the open chunk if it ends before `t`.
        if let Some((_, i)) = self.cur {
            if self.s.chunks.get(i).is_none_or(|c| c.maxt < t) {
                self.cur = None;
            }
        }
        loop {
            if self.cur.is_none() && !self.open_next(t) {
                return self.end();
            }
            let Some((it, _)) = self.cur.as_mut() else {
                return self.end();
            };
            if it.seek(t) {
                return self.settle();
            }
            if let Some(e) = self.chunk_error() {
                return self.fail(e);
            }
            self.cur = None;
        }
    }

    fn current_type(&self) -> ValueType {
        self.state
    }

    fn at(&self) -> (i64, f64) {
        self.at
    }

    fn err(&mut self) -> Option<StorageError> {
        self.err.take()
    }
}

/// A [`Querier`] over one block and a time range.
#[derive(Debug)]
pub struct BlockQuerier<'a> {
    block: &'a Block,
    mint: i64,
    maxt: i64,
}

impl Querier for BlockQuerier<'_> {
    fn select(
        &self,
        _sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        // Block series always come sorted.
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

impl Queryable for Block {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(Block::querier(self, mint, maxt)))
    }
}
