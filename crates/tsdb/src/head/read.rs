//! Reading the head: a querier that selects series through the postings
//! index and hands out lazily decoding sample iterators.
//!
//! A selection snapshots, per series, the list of chunks overlapping the
//! range: references to completed chunks (read through the memory map when
//! iterated) and a copy of the open chunk's bytes, plus the out-of-order
//! samples in range. Appends after the snapshot do not disturb it.

use std::sync::Arc;

use vigil_model::{
    Labels, Matcher, Querier, SampleIterator, SelectHints, Series, SeriesSet, StorageError,
    ValueType,
};

use super::Head;
use crate::chunkenc::ChunkIter;
use crate::chunks_head::{ChunkBytes, ChunkDiskMapper, ChunkDiskRef};

/// A read view of the head over `[mint, maxt]`.
#[derive(Debug)]
pub struct HeadQuerier<'h> {
    head: &'h Head,
    mint: i64,
    maxt: i64,
}

impl<'h> HeadQuerier<'h> {
    pub(super) fn new(head: &'h Head, mint: i64, maxt: i64) -> Self {
        HeadQuerier { head, mint, maxt }
    }

    /// The series of the selection, as concrete head series.
    pub fn select_head(&self, matchers: &[Matcher]) -> Vec<HeadSeries<'h>> {
        let refs = self.head.index.postings_for_matchers(matchers);
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let Some(entry) = self.head.series_by_ref(r) else {
                continue;
            };
            let s = entry.state.lock();
            let mut chunks = Vec::new();
            for c in &s.mmapped {
                if c.maxt >= self.mint && c.mint <= self.maxt {
                    chunks.push(ChunkSrc {
                        maxt: c.maxt,
                        data: Src::Disk(c.disk_ref),
                    });
                }
            }
            if let Some(open) = &s.open {
                if open.mint <= self.maxt && s.max_t >= self.mint {
                    chunks.push(ChunkSrc {
                        maxt: s.max_t,
                        data: Src::Mem(Arc::from(open.enc.bytes())),
                    });
                }
            }
            let ooo: Vec<(i64, f64)> = s
                .ooo
                .as_ref()
                .map(|o| {
                    o.iter()
                        .filter(|x| x.0 >= self.mint && x.0 <= self.maxt)
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let deleted: Vec<(i64, i64)> =
                s.deleted.as_ref().map(|d| d.to_vec()).unwrap_or_default();
            drop(s);
            if chunks.is_empty() && ooo.is_empty() {
                continue;
            }
            out.push(HeadSeries {
                labels: entry.labels.clone(),
                chunks,
                ooo,
                deleted,
                mint: self.mint,
                maxt: self.maxt,
                mapper: &self.head.chunks,
            });
        }
        // Label sets in the head are unique.
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

impl Querier for HeadQuerier<'_> {
    fn select(
        &self,
        _sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        let series = self
            .select_head(matchers)
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn Series>)
            .collect();
        Ok(SeriesSet {
            series,
            warnings: Vec::new(),
        })
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() {
            return Ok(self.head.index.label_names());
        }
        let mut names: Vec<String> = Vec::new();
        for s in self.select_head(matchers) {
            names.extend(s.labels.iter().map(|l| l.name.to_string()));
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() {
            return Ok(self.head.index.label_values(name));
        }
        let mut values: Vec<String> = self
            .select_head(matchers)
            .iter()
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

/// Where a chunk's bytes are.
#[derive(Debug, Clone)]
enum Src {
    Disk(ChunkDiskRef),
    Mem(Arc<[u8]>),
}

#[derive(Debug, Clone)]
struct ChunkSrc {
    maxt: i64,
    data: Src,
}

/// Chunk bytes owned by an iterator.
#[derive(Debug, Clone)]
enum ChunkData {
    Disk(ChunkBytes),
    Mem(Arc<[u8]>),
}

impl AsRef<[u8]> for ChunkData {
    fn as_ref(&self) -> &[u8] {
        match self {
            ChunkData::Disk(b) => b.as_ref(),
            ChunkData::Mem(b) => b,
        }
    }
}

/// A series selected from the head.
#[derive(Debug)]
pub struct HeadSeries<'h> {
    labels: Labels,
    chunks: Vec<ChunkSrc>,
    ooo: Vec<(i64, f64)>,
    /// Deleted intervals, sorted and disjoint.
    deleted: Vec<(i64, i64)>,
    mint: i64,
    maxt: i64,
    mapper: &'h ChunkDiskMapper,
}

impl Series for HeadSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + Send + '_> {
        Box::new(HeadSeriesIter {
            series: self,
            next_chunk: 0,
            cur: None,
            cur_maxt: i64::MIN,
            io_peek: None,
            io_done: false,
            ooo_pos: 0,
            at: (0, 0.0),
            state: ValueType::None,
            started: false,
            err: None,
        })
    }
}

/// Iterates one head series: its chunks in order, merged with its
/// out-of-order samples, restricted to the querier's range.
struct HeadSeriesIter<'a> {
    series: &'a HeadSeries<'a>,
    next_chunk: usize,
    cur: Option<ChunkIter<ChunkData>>,
    cur_maxt: i64,
    /// The next in-order sample not yet handed out.
    io_peek: Option<(i64, f64)>,
    io_done: bool,
    ooo_pos: usize,
    at: (i64, f64),
    state: ValueType,
    started: bool,
    err: Option<StorageError>,
}

impl HeadSeriesIter<'_> {
    fn fail(&mut self, e: StorageError) {
        self.err = Some(e);
        self.io_done = true;
        self.cur = None;
    }

    /// Opens the next chunk whose range reaches `min_t`.
    fn open_next_chunk(&mut self, min_t: i64) -> bool {
        while let Some(c) = self.series.chunks.get(self.next_chunk) {
            self.next_chunk += 1;
            if c.maxt < min_t {
                continue;
            }
            let data = match &c.data {
                Src::Mem(b) => ChunkData::Mem(b.clone()),
                Src::Disk(r) => match self.series.mapper.chunk(*r) {
                    Ok(b) => ChunkData::Disk(b),
                    Err(e) => {
                        self.fail(e.into());
                        return false;
                    }
                },
            };
            self.cur = Some(ChunkIter::new(data));
            self.cur_maxt = c.maxt;
            return true;
        }
        false
    }

    /// Fills `io_peek` with the next in-order sample at or after `min_t`.
    fn fill_io(&mut self, min_t: i64) {
        if self.io_done {
            return;
        }
        if let Some((t, _)) = self.io_peek {
            if t >= min_t {
                return;
            }
            self.io_peek = None;
        }
        let min_t = min_t.max(self.series.mint);
        loop {
            if self.cur.is_none() || self.cur_maxt < min_t {
                self.cur = None;
                if !self.open_next_chunk(min_t) {
                    self.io_done = true;
                    return;
                }
            }
            let Some(cur) = self.cur.as_mut() else {
                self.io_done = true;
                return;
            };
            if cur.seek(min_t) {
                let (t, v) = cur.at();
                if t > self.series.maxt {
                    self.io_done = true;
                    self.cur = None;
                    return;
                }
                self.io_peek = Some((t, v));
                return;
            }
            if let Some(e) = cur.err() {
                self.fail(StorageError::Corruption {
                    path: "chunks_head".into(),
                    offset: 0,
                    what: chunk_error_what(&e),
                });
                return;
            }
            self.cur = None;
        }
    }

    /// Consumes the next sample at or after `min_t` that no tombstone
    /// deletes.
    fn advance(&mut self, mut min_t: i64) -> ValueType {
        loop {
            let st = self.advance_raw(min_t);
            if st == ValueType::None {
                return st;
            }
            let t = self.at.0;
            match self.series.deleted.iter().find(|&&(a, b)| a <= t && t <= b) {
                Some(&(_, b)) => min_t = b.saturating_add(1),
                None => return st,
            }
            if min_t == i64::MAX {
                self.state = ValueType::None;
                return ValueType::None;
            }
        }
    }

    /// Consumes the smaller of the next in-order and out-of-order samples at
    /// or after `min_t`.
    fn advance_raw(&mut self, min_t: i64) -> ValueType {
        self.started = true;
        let ooo = &self.series.ooo;
        self.ooo_pos += ooo[self.ooo_pos..].partition_point(|s| s.0 < min_t);
        self.fill_io(min_t);
        let o = ooo.get(self.ooo_pos).copied();
        let next = match (self.io_peek, o) {
            (None, None) => None,
            (Some(a), None) => {
                self.io_peek = None;
                Some(a)
            }
            (None, Some(b)) => {
                self.ooo_pos += 1;
                Some(b)
            }
            (Some(a), Some(b)) => {
                if a.0 <= b.0 {
                    self.io_peek = None;
                    if a.0 == b.0 {
                        self.ooo_pos += 1;
                    }
                    Some(a)
                } else {
                    self.ooo_pos += 1;
                    Some(b)
                }
            }
        };
        match next {
            Some(s) => {
                self.at = s;
                self.state = ValueType::Float;
            }
            None => self.state = ValueType::None,
        }
        self.state
    }
}

fn chunk_error_what(e: &crate::chunkenc::ChunkError) -> &'static str {
    use crate::chunkenc::ChunkError;
    match e {
        ChunkError::Truncated { .. } => "chunk truncated",
        ChunkError::UnknownEncoding(_) => "unknown chunk encoding",
        _ => "chunk does not decode",
    }
}

impl SampleIterator for HeadSeriesIter<'_> {
    fn next(&mut self) -> ValueType {
        if self.started && self.state == ValueType::None {
            return ValueType::None;
        }
        let min_t = if self.state == ValueType::Float {
            self.at.0.saturating_add(1)
        } else {
            i64::MIN
        };
        self.advance(min_t)
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.started && self.state == ValueType::None {
            return ValueType::None;
        }
        if self.state == ValueType::Float && self.at.0 >= t {
            return ValueType::Float;
        }
        let min_t = if self.state == ValueType::Float {
            t.max(self.at.0.saturating_add(1))
        } else {
            t
        };
        self.advance(min_t)
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
