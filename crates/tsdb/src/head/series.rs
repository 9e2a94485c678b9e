//! One series in the head: its labels, its completed chunks (on disk, read
//! through the memory map), its open chunk, and its out-of-order samples.

use vigil_model::Labels;

use crate::chunkenc::{ChunkEncoder, Encoding};
use crate::chunks_head::ChunkDiskRef;

/// A completed chunk of the head, written to the head chunk file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MmappedChunk {
    pub(crate) disk_ref: ChunkDiskRef,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
}

/// The chunk still being appended to.
#[derive(Debug, Clone)]
pub(crate) struct OpenChunk {
    pub(crate) enc: ChunkEncoder,
    pub(crate) mint: i64,
}

/// What an append of one sample to a series decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The sample extends the series in order.
    InOrder,
    /// The sample is older than the newest one but inside the out-of-order
    /// window.
    OutOfOrder,
    /// The sample repeats the newest one exactly: accepted, nothing to do.
    Duplicate,
}

/// A series in the head: its immutable identity beside its mutable state.
#[derive(Debug)]
pub(crate) struct SeriesEntry {
    pub(crate) sref: u64,
    pub(crate) labels: Labels,
    pub(crate) state: parking_lot::Mutex<MemSeries>,
}

impl SeriesEntry {
    pub(crate) fn new(sref: u64, labels: Labels) -> Self {
        SeriesEntry {
            sref,
            labels,
            state: parking_lot::Mutex::new(MemSeries::new()),
        }
    }

    /// Approximate heap bytes of the series, labels included.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.labels.heap_bytes() + self.state.lock().heap_bytes()
    }
}

/// The mutable state of a series in the head.
#[derive(Debug)]
pub(crate) struct MemSeries {
    /// Completed chunks, in time order.
    /// A boxed slice, not a `Vec`: it grows once per completed chunk, so an
    /// exact allocation costs nothing and saves the `Vec`'s spare capacity.
    pub(crate) mmapped: Box<[MmappedChunk]>,
    pub(crate) open: Option<OpenChunk>,
    /// Newest committed in-order timestamp, `i64::MIN` when none.
    pub(crate) max_t: i64,
    /// Value at `max_t`, for the duplicate check.
    pub(crate) last_v: f64,
    /// Newest timestamp appended by an uncommitted batch, `i64::MIN` when
    /// none. Later appends in the same batch are checked against it.
    pub(crate) pending_t: i64,
    /// Value at `pending_t`.
    pub(crate) pending_v: f64,
    /// Out-of-order samples, sorted by time, unique timestamps. Boxed so
    /// that the common case, no such samples, costs 8 bytes, not 24.
    #[allow(clippy::box_collection)]
    pub(crate) ooo: Option<Box<Vec<(i64, f64)>>>,
    /// Deleted intervals `[mint, maxt]` (tombstones), sorted and disjoint;
    /// reads skip them and persistence leaves them out.
    #[allow(clippy::box_collection)]
    pub(crate) deleted: Option<Box<Vec<(i64, i64)>>>,
}

impl MemSeries {
    pub(crate) fn new() -> Self {
        MemSeries {
            mmapped: Box::default(),
            open: None,
            max_t: i64::MIN,
            last_v: 0.0,
            pending_t: i64::MIN,
            pending_v: 0.0,
            ooo: None,
            deleted: None,
        }
    }

    /// The oldest sample time the series holds, in order or out of order.
    pub(crate) fn first_time(&self) -> Option<i64> {
        let in_order = self
            .mmapped
            .first()
            .map(|c| c.mint)
            .or(self.open.as_ref().map(|o| o.mint));
        let ooo = self.ooo.as_ref().and_then(|o| o.first().map(|x| x.0));
        match (in_order, ooo) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Adds a deleted interval, merging overlapping ones.
    pub(crate) fn add_deleted(&mut self, mint: i64, maxt: i64) {
        let d = self.deleted.get_or_insert_with(Default::default);
        d.push((mint, maxt));
        d.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(d.len());
        for &(a, b) in d.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        **d = merged;
    }

    /// Whether the series has samples in `[mint, maxt]` at all (ignoring
    /// deletions).
    pub(crate) fn overlaps(&self, max_t: i64, mint: i64, maxt: i64) -> bool {
        let first = self
            .mmapped
            .first()
            .map(|c| c.mint)
            .or(self.open.as_ref().map(|o| o.mint));
        let in_order = first.is_some_and(|f| f <= maxt && max_t >= mint);
        let ooo = self
            .ooo
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x.0 >= mint && x.0 <= maxt));
        in_order || ooo
    }

    /// Decides whether a sample at `t` with value `v` may join the series,
    /// against committed data and the uncommitted batch, as Prometheus's
    /// `memSeries.appendable` does. `bounds` says where the head accepts
    /// in-order and out-of-order samples.
    pub(crate) fn admit(&self, t: i64, v: f64, bounds: &Bounds) -> Result<Admit, AdmitError> {
        let (last_t, last_v) = if self.pending_t > self.max_t {
            (self.pending_t, self.pending_v)
        } else {
            (self.max_t, self.last_v)
        };
        if last_t == i64::MIN || t > last_t {
            if t >= bounds.in_order_min {
                return Ok(Admit::InOrder);
            }
        } else if t == last_t {
            return if v.to_bits() == last_v.to_bits() {
                Ok(Admit::Duplicate)
            } else {
                Err(AdmitError::Duplicate)
            };
        }
        // Older than the newest sample, or than the head accepts in order.
        if !bounds.ooo_enabled {
            return Err(if t > last_t || last_t == i64::MIN {
                AdmitError::OutOfBounds
            } else {
                AdmitError::OutOfOrder
            });
        }
        if t < bounds.ooo_min {
            return Err(AdmitError::TooOld);
        }
        if let Some(ooo) = &self.ooo {
            if let Ok(i) = ooo.binary_search_by_key(&t, |s| s.0) {
                return if ooo[i].1.to_bits() == v.to_bits() {
                    Ok(Admit::Duplicate)
                } else {
                    Err(AdmitError::Duplicate)
                };
            }
        }
        Ok(Admit::OutOfOrder)
    }

    /// Inserts an out-of-order sample; a sample at an existing timestamp is
    /// replaced only if it is the same (the admit check rejected others).
    pub(crate) fn insert_ooo(&mut self, t: i64, v: f64) {
        let ooo = self.ooo.get_or_insert_with(Default::default);
        match ooo.binary_search_by_key(&t, |s| s.0) {
            Ok(_) => {}
            Err(i) => ooo.insert(i, (t, v)),
        }
    }

    /// Appends an in-order sample to the open chunk. When the chunk must be
    /// cut first, returns the completed chunk's bytes and time range; the
    /// caller writes it to disk and records it with [`Self::push_mmapped`].
    pub(crate) fn append_in_order(
        &mut self,
        t: i64,
        v: f64,
        cut: &CutPolicy,
    ) -> Option<(Vec<u8>, i64, i64)> {
        let mut completed = None;
        let mut hint = 0;
        if let Some(open) = &self.open {
            let n = open.enc.num_samples();
            if n >= cut.max_samples || t >= cut.range_end(open.mint) {
                let old = self.open.take().expect("checked above");
                let maxt = old.enc.last_sample().map_or(old.mint, |s| s.0);
                let bytes = old.enc.into_bytes();
                // The next chunk of a series is usually about as long.
                hint = bytes.len() + bytes.len() / 16;
                completed = Some((bytes, old.mint, maxt));
            }
        }
        let open = self.open.get_or_insert_with(|| OpenChunk {
            enc: ChunkEncoder::with_capacity(cut.encoding, hint),
            mint: t,
        });
        // A chunk holds at most u16::MAX samples and the cut policy cuts far
        // earlier, so this append cannot fail.
        let _ = open.enc.append(t, v);
        self.max_t = t;
        self.last_v = v;
        completed
    }

    pub(crate) fn push_mmapped(&mut self, c: MmappedChunk) {
        let mut v = std::mem::take(&mut self.mmapped).into_vec();
        v.reserve_exact(1);
        v.push(c);
        self.mmapped = v.into_boxed_slice();
    }

    /// Approximate heap bytes held by the state (chunk lists, the open
    /// chunk and out-of-order samples), for the memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.mmapped)
            + self.open.as_ref().map_or(0, |o| o.enc.len_bytes())
            + self.ooo.as_ref().map_or(0, |o| o.capacity() * 16)
            + self.deleted.as_ref().map_or(0, |d| d.capacity() * 16)
    }
}

/// Why a sample was refused by a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdmitError {
    OutOfOrder,
    OutOfBounds,
    TooOld,
    Duplicate,
}

/// Where the head accepts samples right now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// In-order samples older than this are out of bounds: the head's lower
    /// bound, or half a chunk range behind its newest sample, whichever is
    /// later (Prometheus's `appendableMinValidTime`).
    pub(crate) in_order_min: i64,
    /// Whether the out-of-order window is on.
    pub(crate) ooo_enabled: bool,
    /// Out-of-order samples older than this are too old: the window behind
    /// the head's newest sample.
    pub(crate) ooo_min: i64,
}

impl Bounds {
    /// No bounds at all (replay of samples that were accepted before).
    pub(crate) const ANY: Bounds = Bounds {
        in_order_min: i64::MIN,
        ooo_enabled: true,
        ooo_min: i64::MIN,
    };
}

/// When the open chunk is cut.
#[derive(Debug, Clone)]
pub(crate) struct CutPolicy {
    /// Cut after this many samples.
    pub(crate) max_samples: u16,
    /// Chunks never span a multiple of this range (the block range), so that
    /// blocks take whole chunks.
    pub(crate) chunk_range: i64,
    /// The encoding of new chunks.
    pub(crate) encoding: Encoding,
}

impl CutPolicy {
    /// The first range boundary after `mint`.
    pub(crate) fn range_end(&self, mint: i64) -> i64 {
        let r = self.chunk_range.max(1);
        mint.div_euclid(r).saturating_add(1).saturating_mul(r)
    }
}
