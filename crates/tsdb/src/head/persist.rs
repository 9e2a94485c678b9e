//! Persisting the head: its oldest data becomes blocks, then it is dropped
//! from memory, from the head chunk files and from the WAL.
//!
//! The steps, in the order that keeps every sample readable and durable:
//! 1. Raise the head's lower bound to the cut, so no in-order sample can
//!    arrive before it any more.
//! 2. Snapshot, series by series in label order, the chunks and the
//!    out-of-order samples before the cut, and stream them into one block
//!    writer per block range. Chunks never cross a range boundary, so whole
//!    chunks go to blocks as they are; where out-of-order samples join a
//!    range, that range's samples are merged and re-encoded.
//! 3. The caller opens the blocks and publishes them to queries.
//! 4. [`Head::truncate`] drops what was snapshotted (and only that: an
//!    out-of-order sample that arrived meanwhile stays), garbage-collects
//!    empty series, deletes old head chunk files and checkpoints the WAL.
//!
//! Between 3 and 4 a sample is in both a block and the head; queriers merge
//! sources and drop the repeat.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;

use vigil_model::Labels;

use super::series::MmappedChunk;
use super::{Head, SeriesHandle};
use crate::block::{BlockMeta, BlockWriter, ChunkMeta};
use crate::chunkenc::{ChunkEncoder, ChunkIter};
use crate::error::TsdbError;
use crate::record::{self, SampleRecord, SeriesRecord, TombstoneRecord};
use crate::wal::{last_checkpoint, CheckpointWriter, WalError, WalReader};

/// What [`Head::persist_before`] wrote, and what [`Head::truncate`] must
/// drop afterwards.
#[derive(Debug, Default)]
pub struct Persisted {
    /// The blocks written, oldest range first.
    pub blocks: Vec<BlockMeta>,
    cut: i64,
    /// Per series reference, the out-of-order timestamps that went into
    /// blocks.
    ooo_taken: HashMap<u64, Vec<i64>>,
}

impl Persisted {
    /// The head's new lower bound.
    pub fn cut(&self) -> i64 {
        self.cut
    }
}

impl Head {
    /// Where the head should be cut now, if anywhere: the end of its oldest
    /// block range, once the head spans more than 1.5 ranges (as
    /// Prometheus's `compactable`). Out-of-order samples older than the
    /// head's lower bound also make it cuttable, at that bound.
    pub fn cut_point(&self) -> Option<i64> {
        let r = self.opts.chunk_range.max(1);
        let (min, max) = self.time_range()?;
        let min_valid = self.min_valid_time();
        if max.saturating_sub(min) > r / 2 * 3 {
            let cut = min.div_euclid(r).saturating_add(1).saturating_mul(r);
            return Some(cut.max(min_valid));
        }
        (min < min_valid).then_some(min_valid)
    }

    /// Writes every sample before `cut` into blocks in `parent`, one per
    /// block range that has data. The head is not changed except that its
    /// lower bound is raised to `cut`; call [`Head::truncate`] once the
    /// blocks are published.
    pub fn persist_before(&self, parent: &Path, cut: i64) -> Result<Persisted, TsdbError> {
        self.min_valid_time.fetch_max(cut, Ordering::AcqRel);
        self.write_blocks(parent, cut)
    }

    /// Writes every sample before `cut` into blocks in `parent` without
    /// changing the head (snapshots use it with `cut = i64::MAX`).
    pub fn write_blocks(&self, parent: &Path, cut: i64) -> Result<Persisted, TsdbError> {
        let r = self.opts.chunk_range.max(1);
        let series = self.sorted_series();

        let mut writers: BTreeMap<i64, BlockWriter> = BTreeMap::new();
        let mut ooo_taken: HashMap<u64, Vec<i64>> = HashMap::new();
        for entry in &series {
            let by_range = self.snapshot_before(entry, cut, r, &mut ooo_taken)?;
            for (range, chunks) in by_range {
                let w = match writers.entry(range) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(v) => {
                        let mint = range.saturating_mul(r);
                        v.insert(BlockWriter::new(parent, mint, mint.saturating_add(r))?)
                    }
                };
                w.add_series(&entry.labels, &chunks)?;
            }
        }
        let mut blocks = Vec::with_capacity(writers.len());
        for (_, w) in writers {
            blocks.push(w.finish()?);
        }
        Ok(Persisted {
            blocks,
            cut,
            ooo_taken,
        })
    }

    /// Writes the whole head as one block spanning its time range, as
    /// Prometheus's snapshot does, without changing the head. `None` when
    /// the head is empty.
    pub fn write_single_block(&self, parent: &Path) -> Result<Option<BlockMeta>, TsdbError> {
        let Some((hmin, hmax)) = self.time_range() else {
            return Ok(None);
        };
        let r = self.opts.chunk_range.max(1);
        let series = self.sorted_series();
        let mut w = BlockWriter::new(parent, hmin, hmax.saturating_add(1))?;
        let mut scratch = HashMap::new();
        for entry in &series {
            let by_range = self.snapshot_before(entry, i64::MAX, r, &mut scratch)?;
            let chunks: Vec<ChunkMeta> = by_range.into_values().flatten().collect();
            if !chunks.is_empty() {
                w.add_series(&entry.labels, &chunks)?;
            }
        }
        Ok(Some(w.finish()?))
    }

    /// Writes every sample the head holds into one block, as Prometheus's
    /// compaction of the whole head would, and raises the head's lower bound
    /// past its newest sample. Returns `None` when the head has nothing to
    /// persist. Call [`Head::truncate`] once the block is published.
    ///
    /// Appends may run meanwhile: in-order samples older than the new bound
    /// are refused from the moment it is raised (including those of batches
    /// admitted before and committed after), newer ones stay in the head,
    /// and so do out-of-order samples that arrive after their series was
    /// snapshotted.
    pub fn persist_all(&self, parent: &Path) -> Result<Option<Persisted>, TsdbError> {
        let Some((_, hmax)) = self.time_range() else {
            return Ok(None);
        };
        let cut = hmax.saturating_add(1);
        self.min_valid_time.fetch_max(cut, Ordering::AcqRel);
        let series = self.sorted_series();
        // The block starts at the oldest sample before the cut. After the
        // bound was raised no in-order sample before the cut can join a
        // series, so this covers every in-order chunk taken below;
        // out-of-order samples that arrive later and are older stay in the
        // head.
        let mint = series
            .iter()
            .filter_map(|e| e.state.lock().first_time())
            .filter(|&t| t < cut)
            .min();
        let Some(mint) = mint else {
            return Ok(None);
        };
        let r = self.opts.chunk_range.max(1);
        let mut w = BlockWriter::new(parent, mint, cut)?;
        let mut ooo_taken = HashMap::new();
        for entry in &series {
            let by_range = self.snapshot_range(entry, mint, cut, r, &mut ooo_taken)?;
            let chunks: Vec<ChunkMeta> = by_range.into_values().flatten().collect();
            if !chunks.is_empty() {
                w.add_series(&entry.labels, &chunks)?;
            }
        }
        Ok(Some(Persisted {
            blocks: vec![w.finish()?],
            cut,
            ooo_taken,
        }))
    }

    /// Every series of the head, in label order (as blocks need them).
    fn sorted_series(&self) -> Vec<SeriesHandle> {
        let mut series: Vec<SeriesHandle> = self
            .index
            .postings_for_matchers(&[])
            .into_iter()
            .filter_map(|r| self.series_by_ref(r))
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        series
    }

    /// The chunks of one series before `cut`, grouped by block range.
    fn snapshot_before(
        &self,
        entry: &SeriesHandle,
        cut: i64,
        r: i64,
        ooo_taken: &mut HashMap<u64, Vec<i64>>,
    ) -> Result<BTreeMap<i64, Vec<ChunkMeta>>, TsdbError> {
        self.snapshot_range(entry, i64::MIN, cut, r, ooo_taken)
    }

    /// The chunks of one series before `cut`, grouped by block range, and
    /// its out-of-order samples in `[ooo_min, cut)`. A chunk that straddles
    /// the cut (possible only when the cut is not a range boundary, as for
    /// [`Head::persist_all`]) gives its samples before the cut; the head
    /// keeps the whole chunk.
    fn snapshot_range(
        &self,
        entry: &SeriesHandle,
        ooo_min: i64,
        cut: i64,
        r: i64,
        ooo_taken: &mut HashMap<u64, Vec<i64>>,
    ) -> Result<BTreeMap<i64, Vec<ChunkMeta>>, TsdbError> {
        let s = entry.state.lock();
        let mut by_range: BTreeMap<i64, Vec<ChunkMeta>> = BTreeMap::new();
        for c in s.mmapped.iter().filter(|c| c.mint < cut) {
            let bytes = self.chunks.chunk(c.disk_ref)?;
            let chunks = if c.maxt < cut {
                vec![ChunkMeta {
                    mint: c.mint,
                    maxt: c.maxt,
                    data: bytes.data().to_vec(),
                }]
            } else {
                self.chunk_before(bytes.data(), cut)
            };
            by_range
                .entry(c.mint.div_euclid(r))
                .or_default()
                .extend(chunks);
        }
        if let Some(open) = &s.open {
            if open.mint < cut && open.enc.num_samples() > 0 {
                let chunks = if s.max_t < cut {
                    vec![ChunkMeta {
                        mint: open.mint,
                        maxt: s.max_t,
                        data: open.enc.bytes().to_vec(),
                    }]
                } else {
                    self.chunk_before(&open.enc.bytes(), cut)
                };
                by_range
                    .entry(open.mint.div_euclid(r))
                    .or_default()
                    .extend(chunks);
            }
        }
        let ooo: Vec<(i64, f64)> = s
            .ooo
            .as_ref()
            .map(|o| {
                o.iter()
                    .filter(|x| x.0 >= ooo_min && x.0 < cut)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let deleted: Vec<(i64, i64)> = s.deleted.as_ref().map(|d| d.to_vec()).unwrap_or_default();
        drop(s);
        if !ooo.is_empty() {
            ooo_taken
                .entry(entry.sref)
                .or_default()
                .extend(ooo.iter().map(|x| x.0));
        }
        // Ranges that out-of-order samples join or tombstones touch are
        // merged and re-encoded; the others keep their chunks as they are.
        let mut ooo_by_range: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
        for s in ooo {
            ooo_by_range.entry(s.0.div_euclid(r)).or_default().push(s);
        }
        for (&range, chunks) in &by_range {
            let (lo, hi) = (
                range.saturating_mul(r),
                range.saturating_mul(r).saturating_add(r - 1),
            );
            let touched = deleted.iter().any(|&(a, b)| a <= hi && b >= lo)
                && chunks
                    .iter()
                    .any(|c| deleted.iter().any(|&(a, b)| a <= c.maxt && b >= c.mint));
            if touched {
                ooo_by_range.entry(range).or_default();
            }
        }
        for (range, extra) in ooo_by_range {
            let existing = by_range.remove(&range).unwrap_or_default();
            let mut samples: BTreeMap<i64, f64> = extra.into_iter().collect();
            for c in &existing {
                let mut it = ChunkIter::new(c.data.as_slice());
                while it.next() {
                    let (t, v) = it.at();
                    samples.insert(t, v); // in-order data wins a tie
                }
            }
            samples.retain(|t, _| !deleted.iter().any(|&(a, b)| a <= *t && *t <= b));
            let chunks = self.encode_chunks(samples);
            if !chunks.is_empty() {
                by_range.insert(range, chunks);
            }
        }
        // Blocks keep larger chunks than the head: fewer chunk headers and
        // index entries per sample. Re-encode a range's chunks when they can
        // be joined.
        for chunks in by_range.values_mut() {
            if chunks.len() > 1 {
                let samples: usize = chunks
                    .iter()
                    .map(|c| {
                        crate::chunkenc::Header::parse(&c.data)
                            .map_or(0, |h| h.num_samples as usize)
                    })
                    .sum();
                if samples.div_ceil(self.opts.block_chunk_samples.max(1) as usize) < chunks.len() {
                    let mut all = BTreeMap::new();
                    for c in chunks.iter() {
                        let mut it = ChunkIter::new(c.data.as_slice());
                        while it.next() {
                            let (t, v) = it.at();
                            all.insert(t, v);
                        }
                    }
                    *chunks = self.encode_chunks_of(all, self.opts.block_chunk_samples);
                }
            }
        }
        Ok(by_range)
    }

    /// The samples of chunk `data` before `cut`, re-encoded.
    fn chunk_before(&self, data: &[u8], cut: i64) -> Vec<ChunkMeta> {
        let mut samples = BTreeMap::new();
        let mut it = ChunkIter::new(data);
        while it.next() {
            let (t, v) = it.at();
            if t >= cut {
                break;
            }
            samples.insert(t, v);
        }
        self.encode_chunks(samples)
    }

    fn encode_chunks(&self, samples: BTreeMap<i64, f64>) -> Vec<ChunkMeta> {
        self.encode_chunks_of(samples, self.opts.block_chunk_samples)
    }

    fn encode_chunks_of(&self, samples: BTreeMap<i64, f64>, per_chunk: u16) -> Vec<ChunkMeta> {
        let mut out = Vec::new();
        let mut enc: Option<(ChunkEncoder, i64, i64)> = None;
        for (t, v) in samples {
            if enc
                .as_ref()
                .is_some_and(|e| e.0.num_samples() >= per_chunk.max(1))
            {
                let (e, mint, maxt) = enc.take().expect("checked");
                out.push(ChunkMeta {
                    mint,
                    maxt,
                    data: e.into_bytes(),
                });
            }
            let e = enc.get_or_insert_with(|| (ChunkEncoder::new(self.cut.encoding), t, t));
            let _ = e.0.append(t, v);
            e.2 = t;
        }
        if let Some((e, mint, maxt)) = enc {
            out.push(ChunkMeta {
                mint,
                maxt,
                data: e.into_bytes(),
            });
        }
        out
    }

    /// Drops from the head what `persisted` wrote to blocks, removes series
    /// left empty, deletes head chunk files wholly before the cut, and
    /// checkpoints the WAL.
    pub fn truncate(&self, persisted: &Persisted) -> Result<(), TsdbError> {
        let cut = persisted.cut;
        let mut gone: Vec<(u64, Labels)> = Vec::new();
        let mut new_min = i64::MAX;
        for stripe in self.by_ref.iter() {
            let handles: Vec<SeriesHandle> = stripe.read().values().cloned().collect();
            for h in handles {
                let mut s = h.state.lock();
                let keep: Vec<MmappedChunk> = s
                    .mmapped
                    .iter()
                    .filter(|c| c.maxt >= cut)
                    .copied()
                    .collect();
                s.mmapped = keep.into_boxed_slice();
                if s.open.is_some() && s.max_t < cut {
                    s.open = None;
                }
                if let Some(taken) = persisted.ooo_taken.get(&h.sref) {
                    if let Some(ooo) = s.ooo.as_mut() {
                        ooo.retain(|x| taken.binary_search(&x.0).is_err());
                    }
                }
                if s.ooo.as_ref().is_some_and(|o| o.is_empty()) {
                    s.ooo = None;
                }
                if let Some(d) = s.deleted.as_mut() {
                    d.retain(|&(_, b)| b >= cut);
                }
                if s.deleted.as_ref().is_some_and(|d| d.is_empty()) {
                    s.deleted = None;
                }
                let empty = s.mmapped.is_empty()
                    && s.open.is_none()
                    && s.ooo.is_none()
                    && s.pending_t == i64::MIN;
                if empty {
                    gone.push((h.sref, h.labels.clone()));
                } else {
                    // A kept chunk that straddles the cut holds samples
                    // the blocks have too: the head starts at the cut.
                    let first = s
                        .mmapped
                        .first()
                        .map(|c| c.mint)
                        .or(s.open.as_ref().map(|o| o.mint))
                        .map(|t| t.max(cut));
                    let first_ooo = s.ooo.as_ref().and_then(|o| o.first().map(|x| x.0));
                    for t in [first, first_ooo].into_iter().flatten() {
                        new_min = new_min.min(t);
                    }
                }
            }
        }
        self.remove_series(&gone);
        // The head's oldest sample moves up.
        self.min_time.store(new_min, Ordering::Release);
        if new_min == i64::MAX {
            self.max_time.store(i64::MIN, Ordering::Release);
        }
        self.chunks.delete_files_before(cut)?;
        self.checkpoint(cut)?;
        Ok(())
    }

    fn remove_series(&self, gone: &[(u64, Labels)]) {
        if gone.is_empty() {
            return;
        }
        for (sref, labels) in gone {
            let hash = labels.stable_hash();
            self.by_hash[Self::stripe(hash)].write().remove(hash, *sref);
            self.by_ref[Self::stripe(*sref)].write().remove(sref);
        }
        self.index.remove(gone);
        self.num_series
            .fetch_sub(gone.len() as u64, Ordering::Relaxed);
        self.stats
            .series_removed
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
    }

    /// Rewrites the WAL's closed segments into a checkpoint that keeps only
    /// what the head still needs: series that still exist, and samples at or
    /// after `cut` (plus out-of-order samples the head still holds).
    fn checkpoint(&self, cut: i64) -> Result<(), TsdbError> {
        let wal_dir = self.wal.dir().to_path_buf();
        let last = self.wal.cut_segment()?.saturating_sub(1);
        let prev = last_checkpoint(&wal_dir)?;
        let first = prev.as_ref().map_or(0, |p| p.0 + 1);
        let mut w = CheckpointWriter::create(&wal_dir, last)?;
        let mut series_buf = Vec::new();
        let mut samples_buf = Vec::new();
        let mut stones_buf = Vec::new();
        let mut out = Vec::new();
        // A reader (a remote-write queue) that still holds segments this
        // checkpoint covers may meet samples of series the head dropped:
        // keep their series records until it has moved past them.
        let keep_dead_series = self.wal.held_from().is_some_and(|k| k <= last);
        let mut keep = |data: &[u8], w: &mut CheckpointWriter| -> Result<(), WalError> {
            match record::record_type(data) {
                Some(record::TYPE_SERIES) => {
                    series_buf.clear();
                    if record::decode_series(data, &mut series_buf).is_err() {
                        return Ok(());
                    }
                    let live: Vec<SeriesRecord> = series_buf
                        .drain(..)
                        .filter(|s| keep_dead_series || self.series_by_ref(s.sref).is_some())
                        .collect();
                    if !live.is_empty() {
                        record::encode_series(&mut out, &live);
                        w.append(&out)?;
                    }
                }
                Some(ty @ (record::TYPE_SAMPLES | record::TYPE_OOO_SAMPLES)) => {
                    samples_buf.clear();
                    if record::decode_samples(data, &mut samples_buf).is_err() {
                        return Ok(());
                    }
                    let live: Vec<SampleRecord> = samples_buf
                        .drain(..)
                        .filter(|s| {
                            if s.t >= cut {
                                return true;
                            }
                            // An older out-of-order sample the head still
                            // holds (it arrived after the snapshot).
                            ty == record::TYPE_OOO_SAMPLES
                                && self.series_by_ref(s.sref).is_some_and(|h| {
                                    h.state.lock().ooo.as_ref().is_some_and(|o| {
                                        o.binary_search_by_key(&s.t, |x| x.0).is_ok()
                                    })
                                })
                        })
                        .collect();
                    if !live.is_empty() {
                        record::encode_samples_typed(&mut out, &live, ty);
                        w.append(&out)?;
                    }
                }
                Some(record::TYPE_TOMBSTONES) => {
                    stones_buf.clear();
                    if record::decode_tombstones(data, &mut stones_buf).is_err() {
                        return Ok(());
                    }
                    let live: Vec<TombstoneRecord> = stones_buf
                        .drain(..)
                        .filter(|s| s.maxt >= cut && self.series_by_ref(s.sref).is_some())
                        .collect();
                    if !live.is_empty() {
                        record::encode_tombstones(&mut out, &live);
                        w.append(&out)?;
                    }
                }
                _ => {}
            }
            Ok(())
        };
        if let Some((_, path)) = &prev {
            let mut r = WalReader::open(path)?;
            while let Some(rec) = r.next_record() {
                match rec {
                    Ok(rec) => keep(rec.data, &mut w)?,
                    Err(WalError::Corruption { .. }) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if first <= last {
            let mut r = WalReader::open_range(&wal_dir, first..=last)?;
            while let Some(rec) = r.next_record() {
                match rec {
                    Ok(rec) => keep(rec.data, &mut w)?,
                    Err(WalError::Corruption { .. }) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        w.finish()?;
        self.wal.truncate_before(last + 1)?;
        crate::wal::delete_checkpoints_before(&wal_dir, last)?;
        Ok(())
    }
}
