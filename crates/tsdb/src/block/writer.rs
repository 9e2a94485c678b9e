//! Writing a block: chunks stream to segment files as series arrive, the
//! index is written at the end, and the directory appears atomically.
//!
//! Everything goes to `<ulid>.tmp-for-creation`; every file and directory
//! is fsynced; then the directory is renamed to `<ulid>` and the parent is
//! fsynced. A crash at any point leaves either no block or a complete one
//! (plus a temporary directory that [`cleanup_tmp`](super::cleanup_tmp)
//! removes). Dropping an unfinished writer removes its temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use vigil_model::Labels;

use super::chunks::{ChunkWriter, CHUNKS_DIR, DEFAULT_SEGMENT_SIZE};
use super::error::{BlockError, InputError};
use super::index::{ChunkInfo, IndexBuilder};
use super::meta::{BlockMeta, BlockStats, CompactionMeta, META_VERSION};
use super::tombstones::Tombstones;
use super::ulid::Ulid;
use super::{sync_dir, INDEX_FILE, TMP_FOR_CREATION};
use crate::chunkenc::Header;

/// A chunk handed to the writer: its time range and its bytes exactly as
/// [`ChunkEncoder`](crate::chunkenc::ChunkEncoder) produced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMeta<B = Vec<u8>> {
    /// Timestamp of the first sample.
    pub mint: i64,
    /// Timestamp of the last sample.
    pub maxt: i64,
    /// The chunk bytes, encoding byte first.
    pub data: B,
}

/// Settings of a [`BlockWriter`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BlockWriterOptions {
    /// Largest chunk segment file in bytes (default 512 MiB).
    pub max_segment_size: u64,
}

impl Default for BlockWriterOptions {
    fn default() -> Self {
        BlockWriterOptions {
            max_segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }
}

impl BlockWriterOptions {
    /// Sets [`max_segment_size`](Self::max_segment_size).
    pub fn with_max_segment_size(mut self, bytes: u64) -> Self {
        self.max_segment_size = bytes;
        self
    }
}

/// Writes one block. Add series in strictly increasing label order with
/// [`add_series`](Self::add_series), then call [`finish`](Self::finish).
///
/// Input errors ([`BlockError::Input`]) leave the writer unchanged; after
/// any other error the writer should be dropped, which deletes the
/// temporary directory.
#[derive(Debug)]
pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    meta: BlockMeta,
    chunks: Option<ChunkWriter>,
    index: IndexBuilder,
    last: Option<Labels>,
    infos: Vec<ChunkInfo>,
    done: bool,
}

impl BlockWriter {
    /// Starts a block covering `[mint, maxt)` in `parent`, with default
    /// options.
    pub fn new(parent: impl AsRef<Path>, mint: i64, maxt: i64) -> Result<BlockWriter, BlockError> {
        Self::with_options(parent, mint, maxt, &BlockWriterOptions::default())
    }

    /// Starts a block covering `[mint, maxt)` in `parent`.
    pub fn with_options(
        parent: impl AsRef<Path>,
        mint: i64,
        maxt: i64,
        opts: &BlockWriterOptions,
    ) -> Result<BlockWriter, BlockError> {
        if mint >= maxt {
            return Err(InputError::EmptyRange { mint, maxt }.into());
        }
        let parent = parent.as_ref().to_path_buf();
        let ulid = Ulid::new();
        let tmp = parent.join(format!("{ulid}{TMP_FOR_CREATION}"));
        fs::create_dir(&tmp).map_err(BlockError::io("create block directory", &tmp))?;
        let chunks = match ChunkWriter::new(tmp.join(CHUNKS_DIR), opts.max_segment_size) {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        Ok(BlockWriter {
            parent,
            tmp,
            meta: BlockMeta {
                ulid,
                min_time: mint,
                max_time: maxt,
                stats: BlockStats::default(),
                compaction: CompactionMeta {
                    level: 1,
                    sources: vec![ulid],
                },
                version: META_VERSION,
            },
            chunks: Some(chunks),
            index: IndexBuilder::new(mint),
            last: None,
            infos: Vec::new(),
            done: false,
        })
    }

    /// Sets the lineage recorded in `meta.json` (for compaction).
    pub(crate) fn set_compaction(&mut self, c: CompactionMeta) {
        self.meta.compaction = c;
    }

    /// The id of the block being written.
    pub fn ulid(&self) -> Ulid {
        self.meta.ulid
    }

    /// What has been added so far.
    pub fn stats(&self) -> BlockStats {
        self.meta.stats
    }

    /// Adds a series with its chunks, which must be in time order, not
    /// overlapping, non-empty, and inside the block's range. A series
    /// without chunks is skipped (but still must be in order).
    pub fn add_series<B: AsRef<[u8]>>(
        &mut self,
        labels: &Labels,
        chunks: &[ChunkMeta<B>],
    ) -> Result<(), BlockError> {
        if labels.is_empty() {
            return Err(InputError::EmptyLabels.into());
        }
        if let Some(prev) = &self.last {
            if prev >= labels {
                return Err(InputError::SeriesOutOfOrder {
                    prev: prev.clone(),
                    next: labels.clone(),
                }
                .into());
            }
        }
        // Check everything before writing anything.
        let mut samples = 0u64;
        let mut prev_maxt: Option<i64> = None;
        for (index, c) in chunks.iter().enumerate() {
            match Header::parse(c.data.as_ref()) {
                Ok(h) if h.num_samples > 0 => samples += u64::from(h.num_samples),
                _ => {
                    return Err(InputError::BadChunk {
                        labels: labels.clone(),
                        index,
                    }
                    .into())
                }
            }
            if c.mint > c.maxt || prev_maxt.is_some_and(|p| c.mint <= p) {
                return Err(InputError::ChunkOutOfOrder {
                    labels: labels.clone(),
                    index,
                }
                .into());
            }
            if c.mint < self.meta.min_time || c.maxt >= self.meta.max_time {
                return Err(InputError::ChunkOutsideBlock {
                    labels: labels.clone(),
                    mint: c.mint,
                    maxt: c.maxt,
                }
                .into());
            }
            prev_maxt = Some(c.maxt);
        }
        self.last = Some(labels.clone());
        if chunks.is_empty() {
            return Ok(());
        }
        let Some(w) = self.chunks.as_mut() else {
            // Only `finish` takes the chunk writer, and it consumes `self`.
            return Ok(());
        };
        self.infos.clear();
        for c in chunks {
            let chunk_ref = w.write(c.data.as_ref())?;
            self.infos.push(ChunkInfo {
                mint: c.mint,
                maxt: c.maxt,
                chunk_ref,
            });
        }
        self.index.add_series(labels, &self.infos);
        let s = &mut self.meta.stats;
        s.num_series += 1;
        s.num_chunks += chunks.len() as u64;
        s.num_samples += samples;
        Ok(())
    }

    /// Writes the index, tombstones and meta, syncs everything and moves
    /// the block into place. Returns its meta.
    pub fn finish(mut self) -> Result<BlockMeta, BlockError> {
        if let Some(w) = self.chunks.take() {
            w.finish()?;
        }
        let index = std::mem::replace(&mut self.index, IndexBuilder::new(0));
        index.write(&self.tmp.join(INDEX_FILE))?;
        Tombstones::default().write_new(&self.tmp)?;
        self.meta.write(&self.tmp)?;
        sync_dir(&self.tmp)?;
        let dest = self.parent.join(self.meta.ulid.to_string());
        fs::rename(&self.tmp, &dest).map_err(BlockError::io("rename block into", &dest))?;
        self.done = true;
        sync_dir(&self.parent)?;
        Ok(self.meta.clone())
    }

    /// Gives up: deletes the temporary directory.
    pub fn abort(self) {
        // Drop does it.
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: a leftover is removed by `cleanup_tmp` at the
            // next start.
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Writes a block covering `[mint, maxt)` in `parent` from series in
/// strictly increasing label order, each with its chunks in time order.
/// Returns the new block's meta.
///
/// ```
/// use vigil_model::labels;
/// use vigil_tsdb::block::{write_block, Block, ChunkMeta};
/// use vigil_tsdb::chunkenc::{ChunkEncoder, Encoding};
/// use vigil_tsdb::mmap::DirLock;
///
/// # fn main() -> Result<(), vigil_tsdb::block::BlockError> {
/// # let tmp = tempfile::tempdir().unwrap();
/// let mut enc = ChunkEncoder::new(Encoding::Packed);
/// for i in 0..100 {
///     enc.append(i * 15_000, i as f64).unwrap();
/// }
/// let chunk = ChunkMeta { mint: 0, maxt: 99 * 15_000, data: enc.into_bytes() };
/// let series = vec![(labels!("__name__" => "up", "job" => "node"), vec![chunk])];
/// let meta = write_block(tmp.path(), 0, 7_200_000, series)?;
/// assert_eq!(meta.stats.num_samples, 100);
///
/// let lock = DirLock::acquire(tmp.path())?;
/// let block = Block::open(&lock, tmp.path().join(meta.ulid.to_string()))?;
/// assert_eq!(block.label_values("job", &[])?, vec!["node"]);
/// # Ok(())
/// # }
/// ```
pub fn write_block<B, I>(
    parent: impl AsRef<Path>,
    mint: i64,
    maxt: i64,
    series: I,
) -> Result<BlockMeta, BlockError>
where
    B: AsRef<[u8]>,
    I: IntoIterator<Item = (Labels, Vec<ChunkMeta<B>>)>,
{
    let mut w = BlockWriter::new(parent, mint, maxt)?;
    for (labels, chunks) in series {
        w.add_series(&labels, &chunks)?;
    }
    w.finish()
}
