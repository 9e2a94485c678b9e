//! Start-up: rebuild the head from the head chunk files and the WAL.
//!
//! 1. The head chunk files are scanned; their chunks are grouped by series.
//! 2. The last WAL checkpoint, then every WAL segment after it, is read in
//!    order. Series records create series (with their completed chunks from
//!    step 1). Sample records are decoded on this thread and handed, sharded
//!    by series reference, to worker threads that append them; samples that
//!    the completed chunks already hold are skipped. So decoding and
//!    appending overlap, and appends run on every core.
//! 3. A corrupt or torn WAL tail is cut off ([`Wal::repair`]), counted and
//!    logged; everything before it is kept. The same holds for the head
//!    chunk files. Neither stops the head from opening.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Instant;

use super::series::{Admit, Bounds, MmappedChunk};
use super::{Head, HeadOptions, SeriesHandle};
use crate::chunkenc::ChunkIter;
use crate::chunks_head::{ChunkDiskMapper, ChunkDiskOptions};
use crate::error::TsdbError;
use crate::record::{self, SampleRecord, SeriesRecord};
use crate::wal::{last_checkpoint, Wal, WalError, WalReader};

/// Samples sent to a worker at a time.
const BATCH: usize = 4096;

pub(super) fn open(dir: &Path, opts: HeadOptions, min_valid_time: i64) -> Result<Head, TsdbError> {
    std::fs::create_dir_all(dir).map_err(|e| TsdbError::io("create head directory", dir, e))?;
    let started = Instant::now();
    let chunk_opts = ChunkDiskOptions {
        max_file_size: opts.chunk_file_size,
        ..ChunkDiskOptions::default()
    };
    let (chunks, replayed, chunk_repair) =
        ChunkDiskMapper::open(dir.join("chunks_head"), chunk_opts)?;
    let wal_dir = dir.join("wal");
    let wal = Wal::open(&wal_dir, Head::wal_options(&opts))?;
    let head = Head::with_parts(dir, opts, wal, chunks);
    head.min_valid_time.store(min_valid_time, Ordering::Release);
    if let Some(r) = chunk_repair {
        head.stats.chunk_corruptions.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(report = ?r, "head chunk files were damaged; the damaged tail was cut off");
    }

    let mut mmapped: HashMap<u64, Vec<MmappedChunk>> = HashMap::new();
    // Chunks wholly before the lower bound are already in blocks.
    for c in replayed.into_iter().filter(|c| c.maxt >= min_valid_time) {
        mmapped.entry(c.series_ref).or_default().push(MmappedChunk {
            disk_ref: c.r,
            mint: c.mint,
            maxt: c.maxt,
        });
    }

    let mut replayer = Replayer::new(&head, mmapped);
    std::thread::scope(|scope| -> Result<(), TsdbError> {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8);
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = sync_channel::<Vec<ReplaySample>>(16);
            senders.push(tx);
            let head = &head;
            handles.push(scope.spawn(move || apply_samples(head, rx)));
        }
        replayer.senders = senders;
        replayer.run(&wal_dir)?;
        replayer.flush_all();
        replayer.senders.clear();
        for h in handles {
            match h.join() {
                Ok((mint, maxt)) if mint <= maxt => head.update_time_range(mint, maxt),
                Ok(_) => {}
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(())
    })?;
    head.chunks.flush()?;
    let ms = started.elapsed().as_millis() as u64;
    head.stats.replay_ms.store(ms, Ordering::Relaxed);
    tracing::info!(
        series = head.num_series(),
        samples = head.stats.replayed_samples.load(Ordering::Relaxed),
        ms,
        "head replayed"
    );
    Ok(head)
}

/// A sample read from the WAL, with whether it was logged out of order.
#[derive(Debug, Clone, Copy)]
struct ReplaySample {
    s: SampleRecord,
    ooo: bool,
}

struct Replayer<'h> {
    head: &'h Head,
    mmapped: HashMap<u64, Vec<MmappedChunk>>,
    /// WAL references that name a series already known under another
    /// reference (the same labels logged twice).
    aliases: HashMap<u64, u64>,
    senders: Vec<std::sync::mpsc::SyncSender<Vec<ReplaySample>>>,
    batches: Vec<Vec<ReplaySample>>,
    series_buf: Vec<SeriesRecord>,
    samples_buf: Vec<SampleRecord>,
}

impl<'h> Replayer<'h> {
    fn new(head: &'h Head, mmapped: HashMap<u64, Vec<MmappedChunk>>) -> Self {
        Replayer {
            head,
            mmapped,
            aliases: HashMap::new(),
            senders: Vec::new(),
            batches: Vec::new(),
            series_buf: Vec::new(),
            samples_buf: Vec::new(),
        }
    }

    fn run(&mut self, wal_dir: &Path) -> Result<(), TsdbError> {
        self.batches = vec![Vec::with_capacity(BATCH); self.senders.len()];
        let mut first_segment = None;
        if let Some((index, path)) = last_checkpoint(wal_dir)? {
            let mut reader = WalReader::open(&path)?;
            while let Some(rec) = reader.next_record() {
                match rec {
                    Ok(r) => self.record(r.data),
                    Err(e @ WalError::Corruption { .. }) => {
                        self.head
                            .stats
                            .wal_corruptions
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "WAL checkpoint is damaged; its tail is skipped");
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            first_segment = Some(index + 1);
        }
        let current = self.head.wal.current_segment();
        // Without a checkpoint, replay starts at the oldest segment present
        // (older ones may have been truncated away after a checkpoint that
        // was itself removed by a newer one).
        let first = match first_segment {
            Some(f) => f,
            None => crate::wal::segments(wal_dir)?
                .first()
                .copied()
                .unwrap_or(current),
        };
        if first < current {
            let mut reader = WalReader::open_range(wal_dir, first..=current - 1)?;
            let mut corruption = None;
            while let Some(rec) = reader.next_record() {
                match rec {
                    Ok(r) => self.record(r.data),
                    Err(e @ WalError::Corruption { .. }) => {
                        corruption = Some(e);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(e) = corruption {
                self.head
                    .stats
                    .wal_corruptions
                    .fetch_add(1, Ordering::Relaxed);
                match self.head.wal.repair(&e) {
                    Ok(report) => tracing::warn!(
                        error = %e, ?report,
                        "WAL was damaged; the damaged tail was cut off and everything before it kept"
                    ),
                    Err(re) => {
                        tracing::error!(error = %e, repair_error = %re, "WAL was damaged and could not be repaired")
                    }
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, data: &[u8]) {
        let res = match record::record_type(data) {
            Some(record::TYPE_SERIES) => {
                self.series_buf.clear();
                let mut buf = std::mem::take(&mut self.series_buf);
                let r = record::decode_series(data, &mut buf);
                for s in &buf {
                    self.series(s);
                }
                self.series_buf = buf;
                r
            }
            Some(ty @ (record::TYPE_SAMPLES | record::TYPE_OOO_SAMPLES)) => {
                self.samples_buf.clear();
                let mut buf = std::mem::take(&mut self.samples_buf);
                let r = record::decode_samples(data, &mut buf);
                let ooo = ty == record::TYPE_OOO_SAMPLES;
                for s in &buf {
                    self.sample(ReplaySample { s: *s, ooo });
                }
                self.samples_buf = buf;
                r
            }
            Some(record::TYPE_TOMBSTONES) => {
                let mut stones = Vec::new();
                let r = record::decode_tombstones(data, &mut stones);
                for st in stones {
                    let sref = self.aliases.get(&st.sref).copied().unwrap_or(st.sref);
                    if let Some(h) = self.head.series_by_ref(sref) {
                        h.state.lock().add_deleted(st.mint, st.maxt);
                    }
                }
                r
            }
            _ => Err(record::RecordError::UnknownType(
                data.first().copied().unwrap_or(0),
            )),
        };
        if let Err(e) = res {
            self.head
                .stats
                .wal_bad_records
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "skipping a WAL record that does not decode");
        }
    }

    fn series(&mut self, s: &SeriesRecord) {
        let handle = self.head.create_with_ref(s.sref, &s.labels);
        if handle.sref != s.sref {
            self.aliases.insert(s.sref, handle.sref);
            return;
        }
        if let Some(chunks) = self.mmapped.remove(&s.sref) {
            attach_mmapped(self.head, &handle, chunks);
        }
    }

    fn sample(&mut self, mut s: ReplaySample) {
        if let Some(&real) = self.aliases.get(&s.s.sref) {
            s.s.sref = real;
        }
        let n = self.batches.len().max(1);
        let w = (s.s.sref as usize) % n;
        let batch = &mut self.batches[w];
        batch.push(s);
        if batch.len() >= BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
            // A worker only goes away if it panicked; the scope re-raises it.
            let _ = self.senders[w].send(full);
        }
    }

    fn flush_all(&mut self) {
        for (w, batch) in self.batches.iter_mut().enumerate() {
            if !batch.is_empty() {
                let _ = self.senders[w].send(std::mem::take(batch));
            }
        }
    }
}

/// Gives a replayed series its completed chunks, and sets its newest
/// timestamp and value from the last one, so WAL samples the chunks already
/// hold are skipped.
fn attach_mmapped(head: &Head, handle: &SeriesHandle, chunks: Vec<MmappedChunk>) {
    let mut last = None;
    if let Some(c) = chunks.last() {
        if let Ok(bytes) = head.chunks.chunk(c.disk_ref) {
            let mut it = ChunkIter::new(bytes);
            while it.next() {
                last = Some(it.at());
            }
        }
    }
    let mut s = handle.state.lock();
    if let Some((t, v)) = last {
        s.max_t = t;
        s.last_v = v;
    } else if let Some(c) = chunks.last() {
        s.max_t = c.maxt;
    }
    if let (Some(first), Some(lastc)) = (chunks.first(), chunks.last()) {
        // A chunk straddling the lower bound (left by a flush) holds
        // samples a block has too: the head starts at the bound.
        head.update_time_range(first.mint.max(head.min_valid_time()), lastc.maxt);
    }
    s.mmapped = chunks.into_boxed_slice();
}

/// A replay worker: appends the samples of its share of series. Returns the
/// time range it appended.
fn apply_samples(head: &Head, rx: Receiver<Vec<ReplaySample>>) -> (i64, i64) {
    let mut cache: HashMap<u64, SeriesHandle> = HashMap::new();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    let mut count = 0u64;
    let min_valid = head.min_valid_time();
    while let Ok(batch) = rx.recv() {
        for ReplaySample { s, ooo } in batch {
            let handle = match cache.get(&s.sref) {
                Some(h) => h,
                None => match head.series_by_ref(s.sref) {
                    Some(h) => cache.entry(s.sref).or_insert(h),
                    None => continue, // a sample of an unknown series
                },
            };
            let sref = handle.sref;
            let mut st = handle.state.lock();
            if !ooo && s.t < min_valid {
                continue; // already in a block
            }
            let in_order = s.t > st.max_t || st.max_t == i64::MIN;
            if ooo && !in_order {
                // Out-of-order samples live only in memory: put them back.
                match st.admit(s.t, s.v, &Bounds::ANY) {
                    Ok(Admit::OutOfOrder) => st.insert_ooo(s.t, s.v),
                    _ => continue,
                }
            } else if in_order {
                if let Some((bytes, cmint, cmaxt)) = st.append_in_order(s.t, s.v, &head.cut) {
                    match head
                        .chunks
                        .write_chunk(sref, cmint, cmaxt, bytes[0], &bytes)
                    {
                        Ok(disk_ref) => st.push_mmapped(MmappedChunk {
                            disk_ref,
                            mint: cmint,
                            maxt: cmaxt,
                        }),
                        Err(e) => {
                            tracing::error!(error = %e, "could not write a head chunk during replay")
                        }
                    }
                }
            } else {
                // Already held by a completed chunk, or a repeat.
                continue;
            }
            count += 1;
            mint = mint.min(s.t);
            maxt = maxt.max(s.t);
        }
    }
    head.stats
        .replayed_samples
        .fetch_add(count, Ordering::Relaxed);
    (mint, maxt)
}
