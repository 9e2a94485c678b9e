//! The block index: symbols, series, label index and postings, with a
//! table of contents and a CRC32 per section. Layout in `docs/formats.md`,
//! section "Blocks"; the ideas are Prometheus's index v2 made smaller.
//!
//! Design decisions:
//!
//! - **Symbol table.** Every label name and value is stored once, sorted;
//!   series and the label index refer to symbols by their position, as
//!   varints. Because the table is sorted, comparing symbol ids compares
//!   strings, so sorted value lists and binary searches need no string
//!   work beyond the probes.
//! - **A series reference is the byte offset of its entry** in the series
//!   section. No padding (Prometheus aligns entries to 16 bytes so a 32-bit
//!   reference reaches 64 GiB; vigil's postings are varints, so the
//!   alignment would only cost space). The list of all series is a walk of
//!   the length-prefixed entries, so it is not stored.
//! - **Delta coding everywhere.** Label name ids within a series, value ids
//!   within a label, postings and chunk metadata (Prometheus's scheme: first
//!   `mint` against a per-index base time, then gaps and lengths) are
//!   varint deltas.
//! - **Checksums per section, verified at open.** The reader checks the TOC
//!   and every section's CRC once when the block is opened (a sequential
//!   read of the index, which is small next to the chunks), then decodes
//!   the symbol offsets and the label index into memory. Decoding still
//!   checks every bound afterwards, so even bytes that pass the CRC cannot
//!   make it panic.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use vigil_model::{Labels, MatchOp, Matcher};

use super::chunks::ChunkRef;
use super::encoding::{crc32, Decbuf, Encbuf, Malformed};
use super::error::BlockError;
use super::BlockSeriesRef;
use crate::mmap::{DirLock, MappedFile};

/// First four bytes of the index, big-endian: ASCII `VBI1`.
pub const INDEX_MAGIC: u32 = 0x5642_4931;

/// Version byte of the index format.
pub const INDEX_VERSION: u8 = 1;

/// Magic (4) and version (1).
const HEADER_LEN: usize = 5;

/// The sections, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Symbols = 0,
    Series = 1,
    Postings = 2,
    LabelIndex = 3,
}

const NUM_SECTIONS: usize = 4;

/// Each section's entry in the TOC: offset u64, length u64, crc32.
const TOC_ENTRY_LEN: usize = 8 + 8 + 4;

/// The TOC: base time i64, the section entries, crc32 of the TOC.
const TOC_LEN: usize = 8 + NUM_SECTIONS * TOC_ENTRY_LEN + 4;

/// A chunk's entry in the index: its time range and where its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Timestamp of the first sample.
    pub mint: i64,
    /// Timestamp of the last sample.
    pub maxt: i64,
    /// Where the chunk is.
    pub chunk_ref: ChunkRef,
}

impl ChunkInfo {
    /// Does the chunk's range intersect `[mint, maxt]`?
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.mint <= maxt && mint <= self.maxt
    }
}

/// Collects series for an index and writes it at the end.
///
/// Series are added in label order; their label strings are interned to
/// temporary ids, so memory is a few words per label and per chunk. The
/// symbol table can only be sorted once every series is known, which is
/// why the index is written last, after all chunks.
#[derive(Debug)]
pub(crate) struct IndexBuilder {
    base_time: i64,
    sym_ids: HashMap<Box<str>, u32>,
    syms: Vec<Box<str>>,
    /// (name, value) temporary ids of all series, flattened.
    labels: Vec<(u32, u32)>,
    label_ends: Vec<usize>,
    chunks: Vec<ChunkInfo>,
    chunk_ends: Vec<usize>,
}

impl IndexBuilder {
    pub(crate) fn new(base_time: i64) -> IndexBuilder {
        IndexBuilder {
            base_time,
            sym_ids: HashMap::new(),
            syms: Vec::new(),
            labels: Vec::new(),
            label_ends: Vec::new(),
            chunks: Vec::new(),
            chunk_ends: Vec::new(),
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.sym_ids.get(s) {
            return id;
        }
        let id = self.syms.len() as u32;
        self.syms.push(s.into());
        self.sym_ids.insert(s.into(), id);
        id
    }

    /// Adds a series; the caller has checked the order of series and chunks.
    pub(crate) fn add_series(&mut self, labels: &Labels, chunks: &[ChunkInfo]) {
        for l in labels.iter() {
            let n = self.intern(l.name);
            let v = self.intern(l.value);
            self.labels.push((n, v));
        }
        self.label_ends.push(self.labels.len());
        self.chunks.extend_from_slice(chunks);
        self.chunk_ends.push(self.chunks.len());
    }

    /// Writes the index to `path` (created, must not exist) and fsyncs it.
    /// Returns its size.
    pub(crate) fn write(self, path: &Path) -> Result<u64, BlockError> {
        let f = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(BlockError::io("create index", path))?;
        let mut w = SectionWriter {
            w: BufWriter::with_capacity(1 << 20, f),
            path,
            pos: 0,
            crc: crc32fast::Hasher::new(),
        };
        let mut e = Encbuf::default();
        e.put_u32_be(INDEX_MAGIC);
        e.put_u8(INDEX_VERSION);
        w.write(&e.buf)?;
        let mut toc = [(0u64, 0u64, 0u32); NUM_SECTIONS];

        // Symbols, sorted; temporary id -> final id.
        let mut order: Vec<u32> = (0..self.syms.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.syms[a as usize].cmp(&self.syms[b as usize]));
        let mut final_id = vec![0u32; self.syms.len()];
        for (f, &t) in order.iter().enumerate() {
            final_id[t as usize] = f as u32;
        }
        let start = w.begin();
        e.buf.clear();
        e.put_uvarint(order.len() as u64);
        w.write(&e.buf)?;
        for &t in &order {
            e.buf.clear();
            e.put_uvarint_bytes(self.syms[t as usize].as_bytes());
            w.write(&e.buf)?;
        }
        toc[Section::Symbols as usize] = w.end(start);
        drop(self.sym_ids);

        // Series, and the postings they imply.
        let start = w.begin();
        let mut postings: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        let mut offsets: Vec<u64> = Vec::with_capacity(self.label_ends.len());
        let mut body = Encbuf::default();
        let (mut l0, mut c0) = (0, 0);
        for (i, (&l1, &c1)) in self.label_ends.iter().zip(&self.chunk_ends).enumerate() {
            offsets.push(w.pos - start);
            let labels = self.labels.get(l0..l1).unwrap_or_default();
            let chunks = self.chunks.get(c0..c1).unwrap_or_default();
            (l0, c0) = (l1, c1);
            body.buf.clear();
            body.put_uvarint(labels.len() as u64);
            let mut prev_name = 0;
            for &(n, v) in labels {
                let (n, v) = (final_id[n as usize], final_id[v as usize]);
                body.put_uvarint(u64::from(n - prev_name));
                body.put_uvarint(u64::from(v));
                prev_name = n;
                postings.entry((n, v)).or_default().push(i as u32);
            }
            encode_chunks(&mut body, self.base_time, chunks);
            e.buf.clear();
            e.put_uvarint_bytes(&body.buf);
            w.write(&e.buf)?;
        }
        toc[Section::Series as usize] = w.end(start);

        // Postings, grouped by name then value; remember each list's size.
        let mut keys: Vec<(u32, u32)> = postings.keys().copied().collect();
        keys.sort_unstable();
        let start = w.begin();
        let mut list_lens = Vec::with_capacity(keys.len());
        for k in &keys {
            let list = postings.get(k).map(Vec::as_slice).unwrap_or_default();
            e.buf.clear();
            let mut prev = 0;
            for (j, &s) in list.iter().enumerate() {
                let off = offsets[s as usize];
                e.put_uvarint(if j == 0 { off } else { off - prev });
                prev = off;
            }
            list_lens.push(e.buf.len() as u64);
            w.write(&e.buf)?;
        }
        toc[Section::Postings as usize] = w.end(start);

        // Label index: per name, its values and their postings list sizes.
        let start = w.begin();
        let mut names: Vec<(u32, Range<usize>)> = Vec::new();
        for (i, &(n, _)) in keys.iter().enumerate() {
            match names.last_mut() {
                Some((last, r)) if *last == n => r.end = i + 1,
                _ => names.push((n, i..i + 1)),
            }
        }
        e.buf.clear();
        e.put_uvarint(names.len() as u64);
        w.write(&e.buf)?;
        for (n, r) in names {
            e.buf.clear();
            e.put_uvarint(u64::from(n));
            e.put_uvarint(r.len() as u64);
            let mut prev = 0;
            for i in r {
                let v = keys[i].1;
                e.put_uvarint(u64::from(v - prev));
                e.put_uvarint(list_lens[i]);
                prev = v;
            }
            w.write(&e.buf)?;
        }
        toc[Section::LabelIndex as usize] = w.end(start);

        // Table of contents.
        e.buf.clear();
        e.put_u64_be(self.base_time as u64);
        for (off, len, crc) in toc {
            e.put_u64_be(off);
            e.put_u64_be(len);
            e.put_u32_be(crc);
        }
        let crc = crc32(&e.buf);
        e.put_u32_be(crc);
        w.write(&e.buf)?;
        let size = w.pos;
        let f =
            w.w.into_inner()
                .map_err(|e| BlockError::io("flush index", path)(e.into_error()))?;
        f.sync_all().map_err(BlockError::io("fsync index", path))?;
        Ok(size)
    }
}

/// Chunk metadata of one series: count, then for the first chunk `mint`
/// after the base time, its length and its reference; for later chunks
/// the gap since the previous `maxt`, the length and the reference delta.
fn encode_chunks(e: &mut Encbuf, base_time: i64, chunks: &[ChunkInfo]) {
    e.put_uvarint(chunks.len() as u64);
    let mut prev: Option<&ChunkInfo> = None;
    for c in chunks {
        match prev {
            None => {
                // The writer checks `mint >= base_time`.
                e.put_uvarint((c.mint as u64).wrapping_sub(base_time as u64));
                e.put_uvarint((c.maxt as u64).wrapping_sub(c.mint as u64));
                e.put_uvarint(c.chunk_ref.as_u64());
            }
            Some(p) => {
                e.put_uvarint((c.mint as u64).wrapping_sub(p.maxt as u64));
                e.put_uvarint((c.maxt as u64).wrapping_sub(c.mint as u64));
                e.put_uvarint(c.chunk_ref.as_u64().wrapping_sub(p.chunk_ref.as_u64()));
            }
        }
        prev = Some(c);
    }
}

/// A buffered file writer that tracks the position and a running CRC.
struct SectionWriter<'a> {
    w: BufWriter<File>,
    path: &'a Path,
    pos: u64,
    crc: crc32fast::Hasher,
}

impl SectionWriter<'_> {
    fn write(&mut self, b: &[u8]) -> Result<(), BlockError> {
        self.w
            .write_all(b)
            .map_err(BlockError::io("write index", self.path))?;
        self.crc.update(b);
        self.pos += b.len() as u64;
        Ok(())
    }

    fn begin(&mut self) -> u64 {
        self.crc = crc32fast::Hasher::new();
        self.pos
    }

    fn end(&mut self, start: u64) -> (u64, u64, u32) {
        let crc = std::mem::take(&mut self.crc).finalize();
        (start, self.pos - start, crc)
    }
}

/// One label name of the label index, decoded at open.
#[derive(Debug)]
struct NameEntry {
    /// Symbol of the name.
    name: u32,
    /// Symbols of its values, ascending (so sorted as strings).
    values: Vec<u32>,
    /// `values.len() + 1` boundaries of the values' postings lists in the
    /// postings section.
    bounds: Vec<u64>,
}

/// A decoded series entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesEntry {
    /// (name, value) symbols, names ascending.
    pub(crate) labels: Vec<(u32, u32)>,
    /// Chunk metadata, in time order.
    pub(crate) chunks: Vec<ChunkInfo>,
}

/// Reads a block index through a memory map.
#[derive(Debug)]
pub(crate) struct IndexReader {
    path: PathBuf,
    file: MappedFile,
    base_time: i64,
    sections: [Range<usize>; NUM_SECTIONS],
    /// (start, len) of every symbol's bytes in the symbols section.
    syms: Vec<(u32, u32)>,
    names: Vec<NameEntry>,
}

impl IndexReader {
    /// Maps and checks the index at `path`. With `verify`, every section's
    /// CRC is checked (tests turn it off to fuzz the decoders).
    pub(crate) fn open(
        lock: &DirLock,
        path: &Path,
        verify: bool,
    ) -> Result<IndexReader, BlockError> {
        let file = MappedFile::open(lock, path)?;
        let b = file.bytes();
        let corrupt = |offset: usize, what| BlockError::corruption(path, offset as u64, what);
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(corrupt(0, "index shorter than its header and TOC"));
        }
        let mut d = Decbuf::new(b);
        let magic = d
            .u32_be("magic")
            .map_err(|_| corrupt(0, "index truncated"))?;
        if magic != INDEX_MAGIC {
            return Err(corrupt(0, "bad index magic number"));
        }
        let version = d.u8("version").map_err(|_| corrupt(4, "index truncated"))?;
        if version != INDEX_VERSION {
            return Err(BlockError::UnsupportedVersion {
                file: path.to_path_buf(),
                version: u32::from(version),
                supported: u32::from(INDEX_VERSION),
            });
        }
        let toc_start = b.len() - TOC_LEN;
        let toc = b.get(toc_start..).unwrap_or_default();
        let (toc_body, toc_crc) = toc.split_at(TOC_LEN - 4);
        let mut d = Decbuf::new(toc_crc);
        if d.u32_be("toc crc").ok() != Some(crc32(toc_body)) {
            return Err(corrupt(toc_start, "index TOC checksum mismatch"));
        }
        let mut d = Decbuf::new(toc_body);
        let toc_err = |_| corrupt(toc_start, "index TOC truncated");
        let base_time = d.u64_be("base time").map_err(toc_err)? as i64;
        let mut sections: [Range<usize>; NUM_SECTIONS] = Default::default();
        let mut crcs = [0u32; NUM_SECTIONS];
        // Sections follow each other without gaps, from the header to the
        // TOC, so every byte of the file is covered by a checksum.
        let mut next_start = HEADER_LEN;
        for (s, crc) in sections.iter_mut().zip(crcs.iter_mut()) {
            let at = toc_start + d.pos();
            let off = d.u64_be("section offset").map_err(toc_err)?;
            let len = d.u64_be("section length").map_err(toc_err)?;
            *crc = d.u32_be("section crc").map_err(toc_err)?;
            let start = usize::try_from(off).ok();
            let end = start
                .zip(usize::try_from(len).ok())
                .and_then(|(o, l)| o.checked_add(l));
            match (start, end) {
                (Some(start), Some(end)) if start == next_start && end <= toc_start => {
                    *s = start..end;
                    next_start = end;
                }
                _ => return Err(corrupt(at, "index section out of bounds")),
            }
        }
        if next_start != toc_start {
            return Err(corrupt(toc_start, "index sections do not reach the TOC"));
        }
        let ord = [
            Section::Symbols,
            Section::Series,
            Section::Postings,
            Section::LabelIndex,
        ];
        if verify {
            for s in ord {
                let r = sections[s as usize].clone();
                let bytes = b.get(r.clone()).unwrap_or_default();
                if crc32(bytes) != crcs[s as usize] {
                    return Err(corrupt(r.start, section_checksum_error(s)));
                }
            }
        }
        let mut ix = IndexReader {
            path: path.to_path_buf(),
            file: file.clone(),
            base_time,
            sections,
            syms: Vec::new(),
            names: Vec::new(),
        };
        ix.syms = ix.decode_symbols()?;
        ix.names = ix.decode_label_index()?;
        Ok(ix)
    }

    /// Size of the index file in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.file.len() as u64
    }

    fn section(&self, s: Section) -> &[u8] {
        self.file
            .bytes()
            .get(self.sections[s as usize].clone())
            .unwrap_or_default()
    }

    fn corrupt(&self, s: Section, m: Malformed) -> BlockError {
        let at = self.sections[s as usize].start.saturating_add(m.offset);
        BlockError::corruption(&self.path, at as u64, m.what)
    }

    fn decode_symbols(&self) -> Result<Vec<(u32, u32)>, BlockError> {
        let b = self.section(Section::Symbols);
        let err = |m| self.corrupt(Section::Symbols, m);
        let fail = |offset, what| err(Malformed { offset, what });
        if u32::try_from(b.len()).is_err() {
            return Err(fail(0, "symbol table larger than 4 GiB"));
        }
        let mut d = Decbuf::new(b);
        let n = d.uvarint_len(d.remaining(), "symbol count").map_err(err)?;
        let mut syms = Vec::with_capacity(n);
        let mut prev: Option<&[u8]> = None;
        for _ in 0..n {
            let at = d.pos();
            let s = d.uvarint_bytes("symbol").map_err(err)?;
            if std::str::from_utf8(s).is_err() {
                return Err(fail(at, "symbol is not UTF-8"));
            }
            if prev.is_some_and(|p| p >= s) {
                return Err(fail(at, "symbols not sorted"));
            }
            prev = Some(s);
            // In bounds of a section smaller than 4 GiB.
            syms.push(((d.pos() - s.len()) as u32, s.len() as u32));
        }
        if !d.is_empty() {
            return Err(fail(d.pos(), "trailing bytes in symbol table"));
        }
        Ok(syms)
    }

    fn decode_label_index(&self) -> Result<Vec<NameEntry>, BlockError> {
        let b = self.section(Section::LabelIndex);
        let postings_len = self.section(Section::Postings).len() as u64;
        let err = |m| self.corrupt(Section::LabelIndex, m);
        let fail = |offset, what| err(Malformed { offset, what });
        let nsyms = self.syms.len() as u64;
        let mut d = Decbuf::new(b);
        let n = d
            .uvarint_len(d.remaining(), "label name count")
            .map_err(err)?;
        let mut names: Vec<NameEntry> = Vec::with_capacity(n);
        let mut pos: u64 = 0;
        for _ in 0..n {
            let at = d.pos();
            let name = d.uvarint("label name").map_err(err)?;
            if name >= nsyms {
                return Err(fail(at, "label name symbol out of range"));
            }
            let name = name as u32;
            if names.last().is_some_and(|l| l.name >= name) {
                return Err(fail(at, "label names not sorted"));
            }
            let k = d.uvarint_len(d.remaining(), "value count").map_err(err)?;
            let mut values = Vec::with_capacity(k);
            let mut bounds = Vec::with_capacity(k + 1);
            bounds.push(pos);
            let mut prev: u64 = 0;
            for j in 0..k {
                let at = d.pos();
                let delta = d.uvarint("label value").map_err(err)?;
                let v = prev.checked_add(delta).filter(|&v| v < nsyms);
                let Some(v) = v.filter(|_| j == 0 || delta > 0) else {
                    return Err(fail(at, "label value symbol out of range or not sorted"));
                };
                prev = v;
                let len = d.uvarint("postings length").map_err(err)?;
                let Some(end) = pos.checked_add(len).filter(|&e| e <= postings_len) else {
                    return Err(fail(at, "postings list out of bounds"));
                };
                pos = end;
                values.push(v as u32);
                bounds.push(pos);
            }
            names.push(NameEntry {
                name,
                values,
                bounds,
            });
        }
        if !d.is_empty() {
            return Err(fail(d.pos(), "trailing bytes in label index"));
        }
        Ok(names)
    }

    /// The string of symbol `id`.
    pub(crate) fn symbol(&self, id: u32) -> Result<&str, BlockError> {
        let b = self.section(Section::Symbols);
        let bytes = self
            .syms
            .get(id as usize)
            .and_then(|&(s, l)| b.get(s as usize..s as usize + l as usize));
        match bytes.map(std::str::from_utf8) {
            Some(Ok(s)) => Ok(s),
            _ => Err(BlockError::corruption(
                &self.path,
                self.sections[Section::Symbols as usize].start as u64,
                "symbol reference out of range",
            )),
        }
    }

    fn symbol_bytes(&self, id: u32) -> &[u8] {
        let b = self.section(Section::Symbols);
        self.syms
            .get(id as usize)
            .and_then(|&(s, l)| b.get(s as usize..s as usize + l as usize))
            .unwrap_or_default()
    }

    fn find_name(&self, name: &str) -> Option<&NameEntry> {
        let i = self
            .names
            .binary_search_by(|e| self.symbol_bytes(e.name).cmp(name.as_bytes()))
            .ok()?;
        self.names.get(i)
    }

    fn find_value(&self, e: &NameEntry, value: &str) -> Option<usize> {
        e.values
            .binary_search_by(|&v| self.symbol_bytes(v).cmp(value.as_bytes()))
            .ok()
    }

    /// Label names, sorted.
    pub(crate) fn label_names(&self) -> Result<Vec<String>, BlockError> {
        self.names
            .iter()
            .map(|e| self.symbol(e.name).map(str::to_string))
            .collect()
    }

    /// Values of label `name`, sorted.
    pub(crate) fn label_values(&self, name: &str) -> Result<Vec<String>, BlockError> {
        let Some(e) = self.find_name(name) else {
            return Ok(Vec::new());
        };
        e.values
            .iter()
            .map(|&v| self.symbol(v).map(str::to_string))
            .collect()
    }

    /// The symbol of label name `name`, if any series has it.
    pub(crate) fn name_symbol(&self, name: &str) -> Option<u32> {
        self.find_name(name).map(|e| e.name)
    }

    /// Decodes the postings list of value `i` of `e`.
    fn postings(&self, e: &NameEntry, i: usize, out: &mut Vec<u64>) -> Result<(), BlockError> {
        let b = self.section(Section::Postings);
        let series_len = self.section(Section::Series).len() as u64;
        let (Some(&s), Some(&t)) = (e.bounds.get(i), e.bounds.get(i + 1)) else {
            return Ok(());
        };
        let err = |m: Malformed| {
            self.corrupt(
                Section::Postings,
                Malformed {
                    offset: m.offset.saturating_add(s as usize),
                    what: m.what,
                },
            )
        };
        let Some(list) = b.get(s as usize..t as usize) else {
            return Err(err(Malformed {
                offset: 0,
                what: "postings list out of bounds",
            }));
        };
        let mut d = Decbuf::new(list);
        let mut prev: Option<u64> = None;
        while !d.is_empty() {
            let at = d.pos();
            let v = d.uvarint("posting").map_err(err)?;
            let r = match prev {
                None => Some(v),
                Some(p) if v > 0 => p.checked_add(v),
                Some(_) => None,
            };
            let Some(r) = r.filter(|&r| r < series_len) else {
                return Err(err(Malformed {
                    offset: at,
                    what: "posting out of range or not increasing",
                }));
            };
            out.push(r);
            prev = Some(r);
        }
        Ok(())
    }

    /// Every series reference, in order.
    pub(crate) fn all_postings(&self) -> Result<Vec<u64>, BlockError> {
        let b = self.section(Section::Series);
        let mut d = Decbuf::new(b);
        let mut out = Vec::new();
        while !d.is_empty() {
            out.push(d.pos() as u64);
            d.uvarint_bytes("series entry")
                .map_err(|m| self.corrupt(Section::Series, m))?;
        }
        Ok(out)
    }

    /// Indices of the values of `e` that start with `prefix`.
    fn prefix_range(&self, e: &NameEntry, prefix: &str) -> Range<usize> {
        let p = prefix.as_bytes();
        let lo = e.values.partition_point(|&v| self.symbol_bytes(v) < p);
        let hi = lo
            + e.values
                .get(lo..)
                .unwrap_or_default()
                .partition_point(|&v| self.symbol_bytes(v).starts_with(p));
        lo..hi
    }

    /// With `accepting`, the indices of the values of `m`'s label that `m`
    /// accepts; otherwise of those it rejects. `None` when no series has
    /// the label.
    fn matching_values(
        &self,
        m: &Matcher,
        accepting: bool,
    ) -> Result<Option<(&NameEntry, Vec<usize>)>, BlockError> {
        let Some(e) = self.find_name(m.name()) else {
            return Ok(None);
        };
        // Direct lookups where the matcher names its values.
        let lookup = if accepting {
            m.set_matches()
        } else if m.op() == MatchOp::NotEqual {
            Some(vec![m.value()])
        } else {
            None
        };
        if let Some(set) = lookup {
            let mut idx: Vec<usize> = set.iter().filter_map(|v| self.find_value(e, v)).collect();
            idx.sort_unstable();
            idx.dedup();
            return Ok(Some((e, idx)));
        }
        // `lit.*` accepts exactly the values starting with `lit`, and
        // `!~"lit.*"` rejects exactly those: a range of the sorted values.
        if let Some(prefix) = m.prefix() {
            if (m.op() == MatchOp::Regex) == accepting {
                return Ok(Some((e, self.prefix_range(e, prefix).collect())));
            }
        }
        let mut idx = Vec::new();
        for (i, &v) in e.values.iter().enumerate() {
            if m.matches(self.symbol(v)?) == accepting {
                idx.push(i);
            }
        }
        Ok(Some((e, idx)))
    }

    /// The union of the postings of values `idx` of `e`.
    fn union_of(&self, e: &NameEntry, idx: &[usize]) -> Result<Vec<u64>, BlockError> {
        let mut out = Vec::new();
        for &i in idx {
            self.postings(e, i, &mut out)?;
        }
        if idx.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    /// A rough cost of evaluating positive matcher `m`, to order matchers:
    /// the postings bytes a lookup reads, or more than any lookup for a
    /// matcher that must test every value of its label.
    fn cost(&self, m: &Matcher) -> u64 {
        let Some(e) = self.find_name(m.name()) else {
            return 0;
        };
        let list_bytes = |i: usize| match (e.bounds.get(i), e.bounds.get(i + 1)) {
            (Some(&a), Some(&b)) => b.saturating_sub(a),
            _ => 0,
        };
        match m.set_matches() {
            Some(set) => set
                .iter()
                .filter_map(|v| self.find_value(e, v))
                .map(list_bytes)
                .sum(),
            None => {
                (self.section(Section::Postings).len() as u64).saturating_add(e.values.len() as u64)
            }
        }
    }

    /// The references of the series satisfying every matcher, sorted, with
    /// Prometheus's semantics (a missing label matches as `""`).
    ///
    /// Matchers that reject `""` go first, the one reading the fewest
    /// postings first (one that names its values before one that must scan
    /// them); each later one narrows the candidates by intersecting each of
    /// its values' postings with them, so a broad matcher after a selective
    /// one costs about the candidates, not a sorted union of its postings.
    /// Matchers that accept `""` then subtract the postings of the values
    /// they reject, one list at a time, starting from all series if no
    /// matcher of the first kind exists.
    pub(crate) fn postings_for_matchers(&self, ms: &[Matcher]) -> Result<Vec<u64>, BlockError> {
        let (mut positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
            ms.iter().partition(|m| !m.matches_empty());
        positive.sort_by_cached_key(|m| self.cost(m));
        let mut result: Option<Vec<u64>> = None;
        let mut list = Vec::new();
        for m in positive {
            let Some((e, idx)) = self.matching_values(m, true)? else {
                return Ok(Vec::new());
            };
            let r = match result {
                None => self.union_of(e, &idx)?,
                Some(r) if idx.len() == 1 => {
                    list.clear();
                    self.postings(e, idx[0], &mut list)?;
                    intersect(&r, &list)
                }
                Some(r) => {
                    let mut keep = vec![false; r.len()];
                    for &i in &idx {
                        list.clear();
                        self.postings(e, i, &mut list)?;
                        mark_common(&r, &list, &mut keep);
                    }
                    r.iter()
                        .zip(keep)
                        .filter(|(_, k)| *k)
                        .map(|(&x, _)| x)
                        .collect()
                }
            };
            if r.is_empty() {
                return Ok(r);
            }
            result = Some(r);
        }
        let mut result = match result {
            Some(r) => r,
            None => self.all_postings()?,
        };
        for m in negative {
            let Some((e, idx)) = self.matching_values(m, false)? else {
                continue;
            };
            for &i in &idx {
                if result.is_empty() {
                    return Ok(result);
                }
                list.clear();
                self.postings(e, i, &mut list)?;
                result = subtract(&result, &list);
            }
        }
        Ok(result)
    }

    /// Decodes the series entry at `r`; chunks only if `with_chunks`.
    pub(crate) fn series(
        &self,
        r: BlockSeriesRef,
        with_chunks: bool,
    ) -> Result<SeriesEntry, BlockError> {
        let b = self.section(Section::Series);
        let start = usize::try_from(r.0).unwrap_or(usize::MAX);
        let err = |m: Malformed| {
            self.corrupt(
                Section::Series,
                Malformed {
                    offset: m.offset.saturating_add(start),
                    what: m.what,
                },
            )
        };
        let fail = |offset, what| err(Malformed { offset, what });
        let Some(rest) = b.get(start..) else {
            return Err(fail(0, "series reference out of range"));
        };
        let mut outer = Decbuf::new(rest);
        let body = outer.uvarint_bytes("series entry").map_err(err)?;
        let body_start = outer.pos();
        let err = |m: Malformed| {
            err(Malformed {
                offset: m.offset.saturating_add(body_start),
                what: m.what,
            })
        };
        let fail = |offset, what| err(Malformed { offset, what });
        let mut d = Decbuf::new(body);
        let nsyms = self.syms.len() as u64;
        let n = d.uvarint_len(d.remaining(), "label count").map_err(err)?;
        let mut entry = SeriesEntry {
            labels: Vec::with_capacity(n),
            chunks: Vec::new(),
        };
        let mut name: u64 = 0;
        for j in 0..n {
            let at = d.pos();
            let delta = d.uvarint("label name").map_err(err)?;
            let value = d.uvarint("label value").map_err(err)?;
            let next = name
                .checked_add(delta)
                .filter(|&x| x < nsyms && value < nsyms);
            let Some(next) = next.filter(|_| j == 0 || delta > 0) else {
                return Err(fail(at, "label symbol out of range or names not sorted"));
            };
            name = next;
            entry.labels.push((name as u32, value as u32));
        }
        if !with_chunks {
            return Ok(entry);
        }
        let k = d.uvarint_len(d.remaining(), "chunk count").map_err(err)?;
        entry.chunks.reserve(k);
        let mut prev: Option<ChunkInfo> = None;
        for _ in 0..k {
            let at = d.pos();
            let bad = || fail(at, "chunk metadata out of range or not increasing");
            let c = match prev {
                None => {
                    let dm = d.uvarint("chunk mint").map_err(err)?;
                    let len = d.uvarint("chunk length").map_err(err)?;
                    let r = d.uvarint("chunk ref").map_err(err)?;
                    let mint = add_len(self.base_time, dm).ok_or_else(bad)?;
                    let maxt = add_len(mint, len).ok_or_else(bad)?;
                    ChunkInfo {
                        mint,
                        maxt,
                        chunk_ref: ChunkRef::from_u64(r),
                    }
                }
                Some(p) => {
                    let gap = d.uvarint("chunk gap").map_err(err)?;
                    let len = d.uvarint("chunk length").map_err(err)?;
                    let dr = d.uvarint("chunk ref").map_err(err)?;
                    let mint = add_len(p.maxt, gap).filter(|_| gap > 0).ok_or_else(bad)?;
                    let maxt = add_len(mint, len).ok_or_else(bad)?;
                    let r = p.chunk_ref.as_u64().checked_add(dr).filter(|_| dr > 0);
                    ChunkInfo {
                        mint,
                        maxt,
                        chunk_ref: ChunkRef::from_u64(r.ok_or_else(bad)?),
                    }
                }
            };
            entry.chunks.push(c);
            prev = Some(c);
        }
        if !d.is_empty() {
            return Err(fail(d.pos(), "trailing bytes in series entry"));
        }
        Ok(entry)
    }

    /// The labels of a decoded series.
    pub(crate) fn labels(&self, e: &SeriesEntry) -> Result<Labels, BlockError> {
        let mut pairs = Vec::with_capacity(e.labels.len());
        for &(n, v) in &e.labels {
            pairs.push((self.symbol(n)?, self.symbol(v)?));
        }
        // Names come sorted and unique (checked when the entry was
        // decoded), so the checked constructor only encodes: no per-label
        // allocations as with a builder.
        Labels::try_from_pairs(pairs).map_err(|_| {
            BlockError::corruption(
                &self.path,
                self.sections[Section::Series as usize].start as u64,
                "series labels repeat a name or are too long",
            )
        })
    }

    /// Names (`value_of == None`) or values of one name (`Some(name
    /// symbol)`) over the series `refs`, sorted.
    pub(crate) fn collect_labels(
        &self,
        refs: &[u64],
        value_of: Option<u32>,
    ) -> Result<Vec<String>, BlockError> {
        let mut set = BTreeSet::new();
        for &r in refs {
            let e = self.series(BlockSeriesRef(r), false)?;
            for (n, v) in e.labels {
                match value_of {
                    None => {
                        set.insert(n);
                    }
                    Some(name) if name == n => {
                        set.insert(v);
                    }
                    Some(_) => {}
                }
            }
        }
        // Symbol order is string order.
        set.into_iter()
            .map(|s| self.symbol(s).map(str::to_string))
            .collect()
    }
}

/// `t + len` where `len` is an unsigned distance, if it fits.
fn add_len(t: i64, len: u64) -> Option<i64> {
    i64::try_from(i128::from(t) + i128::from(len)).ok()
}

fn section_checksum_error(s: Section) -> &'static str {
    match s {
        Section::Symbols => "symbol table checksum mismatch",
        Section::Series => "series section checksum mismatch",
        Section::LabelIndex => "label index checksum mismatch",
        Section::Postings => "postings section checksum mismatch",
    }
}

/// Sorted intersection.
pub(crate) fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    let mut rest = large;
    for &x in small {
        // Galloping would pay off for very skewed sizes; a binary search
        // from the last position is close enough and simple.
        let i = rest.partition_point(|&y| y < x);
        match rest.get(i) {
            Some(&y) if y == x => {
                out.push(x);
                rest = rest.get(i + 1..).unwrap_or_default();
            }
            Some(_) => rest = rest.get(i..).unwrap_or_default(),
            None => break,
        }
    }
    out
}

/// Sets `keep[i]` for every `a[i]` that is in `b` (both sorted; `keep` as
/// long as `a`), galloping through the longer list when the sizes are
/// skewed.
pub(crate) fn mark_common(a: &[u64], b: &[u64], keep: &mut [bool]) {
    if a.len() * 16 < b.len() {
        let mut rest = b;
        for (k, &x) in keep.iter_mut().zip(a) {
            let j = rest.partition_point(|&y| y < x);
            if rest.get(j) == Some(&x) {
                *k = true;
            }
            rest = rest.get(j..).unwrap_or_default();
        }
        return;
    }
    if b.len() * 16 < a.len() {
        let mut lo = 0;
        for &y in b {
            let i = lo + a.get(lo..).unwrap_or_default().partition_point(|&x| x < y);
            if a.get(i) == Some(&y) {
                if let Some(k) = keep.get_mut(i) {
                    *k = true;
                }
            }
            lo = i;
        }
        return;
    }
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if let Some(k) = keep.get_mut(i) {
                    *k = true;
                }
                i += 1;
                j += 1;
            }
        }
    }
}

/// Sorted difference `a - b`.
pub(crate) fn subtract(a: &[u64], b: &[u64]) -> Vec<u64> {
    if b.is_empty() {
        return a.to_vec();
    }
    let mut out = Vec::with_capacity(a.len());
    if a.len() * 16 < b.len() {
        let mut rest = b;
        for &x in a {
            let i = rest.partition_point(|&y| y < x);
            if rest.get(i) != Some(&x) {
                out.push(x);
            }
            rest = rest.get(i..).unwrap_or_default();
        }
        return out;
    }
    let mut j = 0;
    for &x in a {
        while b.get(j).is_some_and(|&y| y < x) {
            j += 1;
        }
        if b.get(j) != Some(&x) {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        let big: Vec<u64> = (0..1000).collect();
        assert_eq!(intersect(&[5, 500, 2000], &big), vec![5, 500]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        assert_eq!(subtract(&[1, 2], &[]), vec![1, 2]);
        assert_eq!(subtract(&[5, 500, 2000], &big), vec![2000]);
        for (a, b) in [
            (vec![1, 4, 7, 9], vec![4, 5, 9, 10]),
            (vec![3, 999], big.clone()),
            (big.clone(), vec![3, 2000]),
        ] {
            let mut keep = vec![false; a.len()];
            mark_common(&a, &b, &mut keep);
            let got: Vec<u64> = a.iter().zip(keep).filter(|x| x.1).map(|x| *x.0).collect();
            assert_eq!(got, intersect(&a, &b));
        }
    }

    #[test]
    fn add_len_bounds() {
        assert_eq!(add_len(5, 3), Some(8));
        assert_eq!(add_len(i64::MAX, 1), None);
        assert_eq!(add_len(i64::MIN, u64::MAX), Some(i64::MAX));
        assert_eq!(add_len(0, u64::MAX), None);
    }
}
