//! Bytes per sample and memory per series on peerbench's generated data,
//! loaded straight into the storage engine (until the server accepts remote
//! write, this is how the issue asks the figure to be taken).
//!
//! Generate the data first:
//!
//! ```sh
//! (cd ../shared/tools/peerbench && cargo build --release)
//! /tmp/peerbench-target/release/peerbench gen --out /tmp/peerbench-gen/medium --hosts 1000 --span 40m
//! cargo bench -p vigil-tsdb --bench peerbench_ingest            # reads /tmp/peerbench-gen/medium
//! PEERBENCH_DATA=/path/to/dir cargo bench -p vigil-tsdb --bench peerbench_ingest
//! ```
//!
//! It replays every request (one remote-write request = one append batch, in
//! window order, on one thread), then writes the whole head as blocks the
//! way Prometheus's `snapshot?skip_head=false` does, and reports:
//! ingest samples/s, resident memory per active series, and bytes per
//! sample of the blocks (chunks only, and all files). Then it reopens the
//! store to time WAL replay.

use std::path::{Path, PathBuf};
use std::time::Instant;

use vigil_model::{Appender, Labels, LabelsBuilder, Value};
use vigil_tsdb::{Db, Options};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// A minimal protobuf reader for `prometheus.WriteRequest`.
struct Pb<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Pb<'a> {
    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.b[self.pos];
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = self.varint() as usize;
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
    fn skip(&mut self, wire: u64) {
        match wire {
            0 => {
                self.varint();
            }
            1 => self.pos += 8,
            2 => {
                self.bytes();
            }
            5 => self.pos += 4,
            _ => panic!("unsupported wire type {wire}"),
        }
    }
}

/// One decoded remote-write request: each series with its samples.
type Request = Vec<(Labels, Vec<(i64, f64)>)>;

/// Decodes a WriteRequest into (labels, samples) pairs.
fn decode_write_request(body: &[u8], out: &mut Request) {
    let mut p = Pb { b: body, pos: 0 };
    let mut builder = LabelsBuilder::new();
    while !p.done() {
        let key = p.varint();
        if key >> 3 != 1 || key & 7 != 2 {
            p.skip(key & 7);
            continue;
        }
        let ts = p.bytes();
        let mut q = Pb { b: ts, pos: 0 };
        builder.retain(|_, _| false);
        let mut samples = Vec::new();
        while !q.done() {
            let key = q.varint();
            match (key >> 3, key & 7) {
                (1, 2) => {
                    let lb = q.bytes();
                    let mut r = Pb { b: lb, pos: 0 };
                    let (mut name, mut value) = ("", "");
                    while !r.done() {
                        let k = r.varint();
                        match (k >> 3, k & 7) {
                            (1, 2) => name = std::str::from_utf8(r.bytes()).unwrap(),
                            (2, 2) => value = std::str::from_utf8(r.bytes()).unwrap(),
                            (_, w) => r.skip(w),
                        }
                    }
                    builder.set(name, value);
                }
                (2, 2) => {
                    let sb = q.bytes();
                    let mut r = Pb { b: sb, pos: 0 };
                    let (mut v, mut t) = (0f64, 0i64);
                    while !r.done() {
                        let k = r.varint();
                        match (k >> 3, k & 7) {
                            (1, 1) => {
                                let mut a = [0u8; 8];
                                a.copy_from_slice(&r.b[r.pos..r.pos + 8]);
                                r.pos += 8;
                                v = f64::from_le_bytes(a);
                            }
                            (2, 0) => t = r.varint() as i64,
                            (_, w) => r.skip(w),
                        }
                    }
                    samples.push((t, v));
                }
                (_, w) => q.skip(w),
            }
        }
        out.push((builder.build(), samples));
    }
}

fn dir_bytes(p: &Path, filter: &dyn Fn(&Path) -> bool) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                total += dir_bytes(&path, filter);
            } else if filter(&path) {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

fn main() {
    let data = PathBuf::from(
        std::env::var("PEERBENCH_DATA").unwrap_or_else(|_| "/tmp/peerbench-gen/medium".into()),
    );
    let mut windows: Vec<PathBuf> = match std::fs::read_dir(&data) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rw"))
            .collect(),
        Err(_) => {
            println!(
                "peerbench_ingest: no data at {} (see the file's docs); skipped",
                data.display()
            );
            return;
        }
    };
    windows.sort();
    if let Some(n) = std::env::var("PEERBENCH_MAX_WINDOWS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        windows.truncate(n);
    }
    let tmp = tempfile::tempdir().unwrap();
    let db_dir = tmp.path().join("data");
    let rss_before = rss_bytes();
    let mut opts = Options::default();
    if let Some(n) = std::env::var("VIGIL_SAMPLES_PER_CHUNK")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        opts.head.samples_per_chunk = n;
    }
    println!("samples per chunk: {}", opts.head.samples_per_chunk);
    let db = Db::open(&db_dir, opts.clone()).unwrap();
    // Windows are decoded one at a time (decoding is not timed); appends are
    // timed. Maintenance (head persistence, compaction) runs every 40
    // windows (10 minutes of data), as a server's background thread would.
    let mut decoder = snap::raw::Decoder::new();
    let mut total_samples = 0u64;
    let mut rejected = 0u64;
    let mut ingest = std::time::Duration::ZERO;
    let mut maintenance = std::time::Duration::ZERO;
    for (wi, w) in windows.iter().enumerate() {
        let bytes = std::fs::read(w).unwrap();
        let mut requests: Vec<Request> = Vec::new();
        let mut pos = 0;
        while pos + 12 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let body = &bytes[pos + 12..pos + 12 + len];
            pos += 12 + len;
            let raw = decoder.decompress_vec(body).unwrap();
            let mut req = Vec::new();
            decode_write_request(&raw, &mut req);
            total_samples += req.iter().map(|s| s.1.len() as u64).sum::<u64>();
            requests.push(req);
        }
        let started = Instant::now();
        for req in &requests {
            let mut app = db.appender();
            for (labels, samples) in req {
                for &(t, v) in samples {
                    if app.append(None, labels, t, Value::Float(v)).is_err() {
                        rejected += 1;
                    }
                }
            }
            app.commit().unwrap();
        }
        ingest += started.elapsed();
        if wi % 40 == 39 {
            let t0 = Instant::now();
            db.maintain().unwrap();
            maintenance += t0.elapsed();
        }
    }
    println!(
        "maintenance (persisting the head, compaction) took {:.2} s in all; blocks now: {}",
        maintenance.as_secs_f64(),
        db.blocks().len()
    );
    let ingest_s = ingest.as_secs_f64();
    db.sync().unwrap();
    let rss_after = rss_bytes();
    let active = db.head().num_series();
    println!(
        "ingest: {} samples ({} rejected) into {} series in {:.2} s = {:.0} samples/s on one thread",
        total_samples,
        rejected,
        active,
        ingest_s,
        total_samples as f64 / ingest_s
    );
    println!(
        "memory: RSS growth {:.1} MiB = {:.0} B per series in the head (peak RSS of the process {:.1} MiB)",
        (rss_after.saturating_sub(rss_before)) as f64 / 1048576.0,
        rss_after.saturating_sub(rss_before) as f64 / active as f64,
        peak_rss_bytes() as f64 / 1048576.0
    );
    println!(
        "head: series heap {:.0} B per series (labels, chunk refs, open chunks)",
        db.head().series_heap_bytes() as f64 / active as f64
    );
    // Flush the head to blocks, as Prometheus's snapshot with the head.
    let snap_dir = tmp.path().join("snapshot");
    let t0 = Instant::now();
    let metas = db.snapshot(&snap_dir, true).unwrap();
    let samples_in_blocks: u64 = metas.iter().map(|m| m.stats.num_samples).sum();
    let chunks = dir_bytes(&snap_dir, &|p| {
        p.parent().is_some_and(|d| d.ends_with("chunks"))
    });
    let index = dir_bytes(&snap_dir, &|p| p.ends_with("index"));
    let all = dir_bytes(&snap_dir, &|_| true);
    println!(
        "blocks: {} block(s), {} samples, written in {:.2} s; chunks {} B = {:.3} B/sample; index {} B = {:.3} B/sample; all files {} B = {:.3} B/sample",
        metas.len(),
        samples_in_blocks,
        t0.elapsed().as_secs_f64(),
        chunks,
        chunks as f64 / samples_in_blocks as f64,
        index,
        index as f64 / samples_in_blocks as f64,
        all,
        all as f64 / samples_in_blocks as f64
    );
    let wal = dir_bytes(&db_dir.join("wal"), &|_| true);
    println!("wal: {:.1} MiB", wal as f64 / 1048576.0);
    drop(db);
    // Start-up replay (head chunk files and WAL), timed over three opens.
    for _ in 0..2 {
        let t0 = Instant::now();
        let db = Db::open(&db_dir, opts.clone()).unwrap();
        println!("replay: open took {:.2} s", t0.elapsed().as_secs_f64());
        drop(db);
    }
    let t0 = Instant::now();
    let db = Db::open(&db_dir, opts).unwrap();
    println!(
        "replay: {} samples over {} series in {:.2} s",
        db.head()
            .stats()
            .replayed_samples
            .load(std::sync::atomic::Ordering::Relaxed),
        db.head().num_series(),
        t0.elapsed().as_secs_f64()
    );
}
