//! Compaction: choosing blocks to merge ([`plan`], pure over metadata) and
//! merging them into one block ([`compact`]).
//!
//! The planner is Prometheus's `LeveledCompactor.plan`
//! (`tsdb/compact.go`): overlapping blocks are merged first; otherwise,
//! leaving out the newest block, the first group of blocks that fills a
//! whole range of the next size (or lies wholly before the newest block) is
//! merged; failing that, a large enough block with more than 5% of its
//! series under tombstones is rewritten alone.
//!
//! The merge reads the parents' series in label order and writes each
//! series' chunks to the new block:
//!
//! - a chunk that overlaps no other chunk of the series and no deleted
//!   interval is copied byte for byte (after its CRC is checked);
//! - a chunk with deleted samples is decoded, filtered and re-encoded with
//!   its own encoding;
//! - chunks of the same series that overlap in time (from overlapping
//!   blocks) are decoded, merged by timestamp and re-encoded in chunks of
//!   at most [`MERGED_CHUNK_SAMPLES`] samples. Where two blocks hold a
//!   sample with the same timestamp, the one from the block that comes
//!   first in the `blocks` argument wins.

use std::path::Path;

use vigil_model::Labels;

use super::error::BlockError;
use super::index::ChunkInfo;
use super::meta::{BlockMeta, CompactionMeta};
use super::reader::{Block, SeriesChunks};
use super::tombstones::Intervals;
use super::ulid::Ulid;
use super::writer::{BlockWriter, BlockWriterOptions, ChunkMeta};
use crate::chunkenc::{ChunkEncoder, ChunkIter, Encoding};
use crate::mmap::MmapSlice;

/// One hour in milliseconds.
const HOUR: i64 = 3_600_000;

/// Longest block range used by default: 31 days, as in Prometheus.
pub const MAX_BLOCK_DURATION: i64 = 31 * 24 * HOUR;

/// Samples per chunk when overlapping chunks are merged (the head's cut
/// size).
pub const MERGED_CHUNK_SAMPLES: usize = 120;

/// `steps` block ranges, starting at `min` and growing by `factor`:
/// `exponential_ranges(2h, 10, 3)` is 2h, 6h, 18h, 54h, ...
/// (Prometheus's `ExponentialBlockRanges`). Saturates instead of
/// overflowing.
pub fn exponential_ranges(min: i64, steps: usize, factor: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(steps);
    let mut r = min;
    for _ in 0..steps {
        out.push(r);
        r = r.saturating_mul(factor);
    }
    out
}

/// Drops the ranges longer than a tenth of `retention` (ms; 0 or less
/// means no time limit) or than [`MAX_BLOCK_DURATION`], as Prometheus
/// does. The first range is always kept: it is the head's block range.
pub fn cap_ranges(ranges: &[i64], retention: i64) -> Vec<i64> {
    let max = if retention > 0 {
        (retention / 10).min(MAX_BLOCK_DURATION)
    } else {
        MAX_BLOCK_DURATION
    };
    ranges
        .iter()
        .enumerate()
        .take_while(|&(i, &r)| i == 0 || r <= max)
        .map(|(_, &r)| r)
        .collect()
}

/// Chooses the blocks to compact next, or `None` if nothing should be.
/// `ranges` are the block ranges in increasing order (the first is the
/// head's). Pure: it looks only at the metas.
pub fn plan(metas: &[BlockMeta], ranges: &[i64]) -> Option<Vec<Ulid>> {
    let mut ms: Vec<&BlockMeta> = metas.iter().collect();
    ms.sort_by_key(|m| (m.min_time, m.ulid));

    let overlapping = select_overlapping(&ms);
    if !overlapping.is_empty() {
        return Some(overlapping);
    }
    // Leave out the newest block (the one just cut from the head), so
    // that a full block range passes before it is compacted.
    ms.pop()?;

    let group = select_dirs(&ms, ranges);
    if !group.is_empty() {
        return Some(group);
    }

    // Rewrite a big enough block with many tombstones on its own.
    let mid = ranges.get(ranges.len() / 2).copied().unwrap_or(0);
    for m in ms.iter().rev() {
        let s = &m.stats;
        if m.max_time.saturating_sub(m.min_time) < mid {
            // Wholly deleted blocks are rewritten whatever their size.
            if s.num_tombstones > 0 && s.num_tombstones >= s.num_series {
                return Some(vec![m.ulid]);
            }
            break;
        }
        if s.num_tombstones as f64 / (s.num_series as f64 + 1.0) > 0.05 {
            return Some(vec![m.ulid]);
        }
    }
    None
}

/// The first run of blocks (sorted by `min_time`) whose ranges overlap.
fn select_overlapping(ms: &[&BlockMeta]) -> Vec<Ulid> {
    let mut out = Vec::new();
    let Some(first) = ms.first() else {
        return out;
    };
    let mut max = first.max_time;
    for w in ms.windows(2) {
        let (prev, m) = (w[0], w[1]);
        if m.min_time < max {
            if out.is_empty() {
                out.push(prev.ulid);
            }
            out.push(m.ulid);
        } else if !out.is_empty() {
            break;
        }
        max = max.max(m.max_time);
    }
    out
}

/// Prometheus's `selectDirs`: for each range above the first, the first
/// aligned group of two or more blocks that spans the whole range or ends
/// before the newest block starts.
fn select_dirs(ms: &[&BlockMeta], ranges: &[i64]) -> Vec<Ulid> {
    let Some(last) = ms.last() else {
        return Vec::new();
    };
    let high = last.min_time;
    for &r in ranges.iter().skip(1).filter(|&&r| r > 0) {
        for group in split_by_range(ms, r) {
            let (Some(first), Some(end)) = (group.first(), group.last()) else {
                continue;
            };
            let (mint, maxt) = (first.min_time, end.max_time);
            if (i128::from(maxt) - i128::from(mint) == i128::from(r) || maxt <= high)
                && group.len() > 1
            {
                return group.iter().map(|m| m.ulid).collect();
            }
        }
    }
    Vec::new()
}

/// Groups blocks by the aligned range of size `r` (> 0) they fall into;
/// blocks that fall into none (misaligned or larger) are left out. The
/// arithmetic is in `i128` so that no meta can overflow it.
fn split_by_range<'a>(ms: &[&'a BlockMeta], r: i64) -> Vec<Vec<&'a BlockMeta>> {
    let mut out = Vec::new();
    let r = i128::from(r);
    let mut i = 0;
    while let Some(m) = ms.get(i) {
        let end = i128::from(m.min_time).div_euclid(r) * r + r;
        if i128::from(m.max_time) > end {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while let Some(m) = ms.get(i) {
            if i128::from(m.max_time) > end {
                break;
            }
            group.push(*m);
            i += 1;
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}

/// Merges `blocks` into one new block in `parent`, with default writer
/// options. See [`compact_with_options`].
pub fn compact(
    parent: impl AsRef<Path>,
    blocks: &[&Block],
) -> Result<Option<BlockMeta>, BlockError> {
    compact_with_options(parent, blocks, &BlockWriterOptions::default())
}

/// Merges `blocks` (adjacent or overlapping) into one new block in
/// `parent` covering all their ranges, at level max + 1 and with the union
/// of their sources. Tombstones are applied. Returns the new block's meta,
/// or `None` when no sample survives (then no block is written). Either
/// way the caller then deletes the parents.
pub fn compact_with_options(
    parent: impl AsRef<Path>,
    blocks: &[&Block],
    opts: &BlockWriterOptions,
) -> Result<Option<BlockMeta>, BlockError> {
    compact_trimmed(parent, blocks, opts, &|_| None)
}

/// [`compact_with_options`] that also drops, from each series, the samples
/// before `keep_from(labels)` when it returns a time (per-series retention,
/// [`crate::retention`]). Such samples are treated exactly as deleted ones:
/// whole chunks before the time are left out, a chunk that straddles it is
/// re-encoded.
pub fn compact_trimmed(
    parent: impl AsRef<Path>,
    blocks: &[&Block],
    opts: &BlockWriterOptions,
    keep_from: &dyn Fn(&Labels) -> Option<i64>,
) -> Result<Option<BlockMeta>, BlockError> {
    let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta()).collect();
    let (Some(mint), Some(maxt)) = (
        metas.iter().map(|m| m.min_time).min(),
        metas.iter().map(|m| m.max_time).max(),
    ) else {
        return Ok(None);
    };
    let level = metas.iter().map(|m| m.compaction.level).max().unwrap_or(0) + 1;
    let mut sources: Vec<Ulid> = metas
        .iter()
        .flat_map(|m| m.compaction.sources.iter().copied())
        .collect();
    sources.sort_unstable();
    sources.dedup();

    let mut w = BlockWriter::with_options(parent, mint, maxt, opts)?;
    w.set_compaction(CompactionMeta { level, sources });

    let mut iters = blocks
        .iter()
        .map(|b| b.chunk_series(&[]))
        .collect::<Result<Vec<_>, _>>()?;
    let mut heads = iters
        .iter_mut()
        .map(|it| it.next().transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    while let Some(labels) = heads.iter().flatten().map(|s| &s.labels).min().cloned() {
        let mut parts: Vec<(usize, &Block, SeriesChunks)> = Vec::new();
        let all = heads.iter_mut().zip(iters.iter_mut()).zip(blocks);
        for (i, ((h, it), &block)) in all.enumerate() {
            if let Some(s) = h.take_if(|s| s.labels == labels) {
                parts.push((i, block, s));
                *h = it.next().transpose()?;
            }
        }
        if let Some(from) = keep_from(&labels).filter(|&t| t > mint) {
            for (_, _, s) in &mut parts {
                s.deleted.add(i64::MIN, from - 1);
            }
        }
        merge_series(&parts, &mut out)?;
        if !out.is_empty() {
            w.add_series(&labels, &out)?;
        }
    }
    if w.stats().num_series == 0 {
        w.abort();
        return Ok(None);
    }
    w.finish().map(Some)
}

/// Bytes of an output chunk: copied from a map or re-encoded.
#[derive(Debug)]
enum ChunkData {
    Mapped(MmapSlice),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for ChunkData {
    fn as_ref(&self) -> &[u8] {
        match self {
            ChunkData::Mapped(m) => m,
            ChunkData::Owned(v) => v,
        }
    }
}

/// A chunk of one parent block.
struct Src<'a> {
    /// Position of the parent in the compaction's input.
    order: usize,
    block: &'a Block,
    info: ChunkInfo,
    deleted: &'a Intervals,
}

/// Builds the output chunks of one series from its parts in the parents.
fn merge_series(
    parts: &[(usize, &Block, SeriesChunks)],
    out: &mut Vec<ChunkMeta<ChunkData>>,
) -> Result<(), BlockError> {
    out.clear();
    let mut srcs: Vec<Src<'_>> = parts
        .iter()
        .flat_map(|(order, block, s)| {
            s.chunks.iter().map(move |&info| Src {
                order: *order,
                block,
                info,
                deleted: &s.deleted,
            })
        })
        .filter(|s| !s.deleted.covers(s.info.mint, s.info.maxt))
        .collect();
    srcs.sort_by_key(|s| (s.info.mint, s.order));
    let mut i = 0;
    while i < srcs.len() {
        // A run of chunks that overlap in time.
        let mut j = i + 1;
        let mut run_max = srcs[i].info.maxt;
        while let Some(s) = srcs.get(j) {
            if s.info.mint > run_max {
                break;
            }
            run_max = run_max.max(s.info.maxt);
            j += 1;
        }
        let run = &srcs[i..j];
        i = j;
        if let [one] = run {
            let bytes = one.block.chunk(one.info.chunk_ref)?;
            if !one.deleted.overlaps(one.info.mint, one.info.maxt) {
                out.push(ChunkMeta {
                    mint: one.info.mint,
                    maxt: one.info.maxt,
                    data: ChunkData::Mapped(bytes),
                });
                continue;
            }
            let enc = encoding_of(&bytes);
            let samples = decode(one, bytes)?;
            encode(enc, &samples, usize::MAX, out);
            continue;
        }
        let mut samples: Vec<(i64, usize, f64)> = Vec::new();
        let mut enc = None;
        for s in run {
            let bytes = s.block.chunk(s.info.chunk_ref)?;
            enc.get_or_insert(encoding_of(&bytes));
            samples.extend(decode(s, bytes)?.into_iter().map(|(t, v)| (t, s.order, v)));
        }
        // By time, then parent order; keep the first of equal timestamps.
        samples.sort_by_key(|&(t, b, _)| (t, b));
        samples.dedup_by_key(|&mut (t, _, _)| t);
        let samples: Vec<(i64, f64)> = samples.into_iter().map(|(t, _, v)| (t, v)).collect();
        encode(enc.unwrap_or_default(), &samples, MERGED_CHUNK_SAMPLES, out);
    }
    Ok(())
}

fn encoding_of(bytes: &[u8]) -> Encoding {
    bytes
        .first()
        .and_then(|&b| Encoding::try_from(b).ok())
        .unwrap_or_default()
}

/// The samples of a chunk that are not deleted.
fn decode(s: &Src<'_>, bytes: MmapSlice) -> Result<Vec<(i64, f64)>, BlockError> {
    let mut it = ChunkIter::new(bytes);
    let mut out = Vec::with_capacity(usize::from(it.num_samples()));
    while it.next() {
        let (t, v) = it.at();
        if !s.deleted.contains(t) {
            out.push((t, v));
        }
    }
    match it.err() {
        None => Ok(out),
        Some(source) => Err(BlockError::Chunk {
            file: s
                .block
                .dir()
                .join(super::chunks::CHUNKS_DIR)
                .join(super::chunks::segment_name(s.info.chunk_ref.segment())),
            offset: u64::from(s.info.chunk_ref.offset()),
            source,
        }),
    }
}

/// Encodes samples into chunks of at most `per_chunk` samples.
fn encode(
    enc: Encoding,
    samples: &[(i64, f64)],
    per_chunk: usize,
    out: &mut Vec<ChunkMeta<ChunkData>>,
) {
    let per_chunk = per_chunk.clamp(1, usize::from(crate::chunkenc::MAX_SAMPLES));
    for part in samples.chunks(per_chunk) {
        let (Some(&(mint, _)), Some(&(maxt, _))) = (part.first(), part.last()) else {
            continue;
        };
        let mut e = ChunkEncoder::new(enc);
        for &(t, v) in part {
            // At most MAX_SAMPLES per part, so the chunk never fills.
            let _ = e.append(t, v);
        }
        out.push(ChunkMeta {
            mint,
            maxt,
            data: ChunkData::Owned(e.into_bytes()),
        });
    }
}
