//! Chunk codec benchmarks: encode and decode one 120-sample chunk of each
//! kind of realistic series, per encoding. Throughput is in samples, so
//! criterion reports time per sample. `encode` appends a sample at a time
//! as the head does (`ChunkEncoder::new`, one encoder for the head and for
//! blocks). `seek_last_5m` seeks a fresh cursor to
//! a chunk's last 20 samples (an instant query's selector); its throughput
//! is in chunks.
//!
//! Run with `cargo bench -p vigil-tsdb --bench chunk`. Before measuring it
//! prints the compression (bytes per sample) of each encoding on the same
//! data.
//!
//! For instruction counts, which are stable on a busy machine where times
//! are not, `VIGIL_CHUNK_LOOP=OP/ENCODING/KIND:ITERS` (for example
//! `decode/Adaptive/constant:100000`; OP is `encode`, `decode` or `seek`,
//! `KIND` a prefix of the kind's name)
//! skips criterion and runs exactly that loop `ITERS` times, so that an
//! instruction count of the bench binary (`perf stat -e instructions:u`,
//! or callgrind where the machine has no hardware counters) at two
//! iteration counts, differenced and divided by the extra `ITERS * 1920`,
//! is the count per sample (docs/performance.md, "Chunk encode and
//! decode").

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vigil_tsdb::chunkenc::{ChunkEncoder, ChunkIter, Encoding};

#[path = "../src/chunkenc/testdata.rs"]
mod testdata;

use testdata::Kind;

/// Distinct series per kind, so branch predictors cannot learn one chunk.
const SERIES: u64 = 16;

/// Encodes one chunk as the head does, appending a sample at a time.
#[inline(always)]
fn encode(enc: Encoding, samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = ChunkEncoder::new(enc);
    for &(t, v) in samples {
        e.append(t, v).expect("chunk has room");
    }
    e.into_bytes()
}

fn data(kind: Kind, jitter: bool) -> Vec<Vec<(i64, f64)>> {
    (0..SERIES)
        .map(|seed| testdata::series(kind, seed, jitter))
        .collect()
}

fn print_compression() {
    eprintln!("bytes/sample, {SERIES} chunks of 120 samples per kind:");
    for jitter in [true, false] {
        eprintln!(
            "  timestamps {}",
            if jitter {
                "with ±2 ms jitter"
            } else {
                "exact"
            }
        );
        let mut totals = [(0usize, 0usize); Encoding::ALL.len()];
        for kind in Kind::ALL {
            let series = data(kind, jitter);
            let mut line = format!("    {:<28}", kind.name());
            let samples: usize = series.iter().map(Vec::len).sum();
            for (i, enc) in Encoding::ALL.into_iter().enumerate() {
                let bytes: usize = series.iter().map(|s| encode(enc, s).len()).sum();
                totals[i].0 += bytes;
                totals[i].1 += samples;
                line += &format!(" {enc:?} {:6.3}", bytes as f64 / samples as f64);
            }
            eprintln!("{line}");
        }
        let mut line = format!("    {:<28}", "all kinds, equal weight");
        for (i, enc) in Encoding::ALL.into_iter().enumerate() {
            line += &format!(" {enc:?} {:6.3}", totals[i].0 as f64 / totals[i].1 as f64);
        }
        eprintln!("{line}");
    }
}

/// Decodes every chunk with the cursor; returns sums so nothing is elided.
fn decode_chunks(chunks: &[Vec<u8>]) -> (i64, f64) {
    let mut sum_t = 0i64;
    let mut sum_v = 0.0f64;
    for chunk in chunks {
        let mut it = ChunkIter::new(black_box(&chunk[..]));
        while it.next() {
            let (t, v) = it.at();
            sum_t = sum_t.wrapping_add(t);
            sum_v += v;
        }
    }
    (sum_t, sum_v)
}

/// Seeks a fresh cursor of every chunk to its last 5 minutes (the last 20
/// samples), as an instant query's selector does, and reads to the end;
/// returns sums so nothing is elided.
fn seek_chunks(chunks: &[(Vec<u8>, i64)]) -> (i64, f64) {
    let mut sum_t = 0i64;
    let mut sum_v = 0.0f64;
    for (chunk, target) in chunks {
        let mut it = ChunkIter::new(black_box(&chunk[..]));
        if it.seek(*target) {
            loop {
                let (t, v) = it.at();
                sum_t = sum_t.wrapping_add(t);
                sum_v += v;
                if !it.next() {
                    break;
                }
            }
        }
    }
    (sum_t, sum_v)
}

/// Chunks of `series` with the seek target of [`seek_chunks`].
fn seek_targets(enc: Encoding, series: &[Vec<(i64, f64)>]) -> Vec<(Vec<u8>, i64)> {
    series
        .iter()
        .map(|s| (encode(enc, s), s[s.len().saturating_sub(20)].0))
        .collect()
}

/// The `VIGIL_CHUNK_LOOP` mode (see the top of the file).
fn fixed_loop(spec: &str) {
    let usage = "VIGIL_CHUNK_LOOP=OP/ENCODING/KIND:ITERS, e.g. decode/Adaptive/constant:100000";
    let (case, iters) = spec.rsplit_once(':').expect(usage);
    let iters: u64 = iters.parse().expect(usage);
    let mut parts = case.splitn(3, '/');
    let (op, enc, kind) = (parts.next(), parts.next(), parts.next());
    let enc = Encoding::ALL
        .into_iter()
        .find(|e| Some(format!("{e:?}").as_str()) == enc)
        .expect(usage);
    let kind = Kind::ALL
        .into_iter()
        .find(|k| kind.is_some_and(|p| k.name().starts_with(p)))
        .expect(usage);
    let series = data(kind, true);
    match op {
        Some("encode") => {
            for _ in 0..iters {
                for s in &series {
                    black_box(encode(enc, black_box(s)));
                }
            }
        }
        Some("decode") => {
            let chunks: Vec<Vec<u8>> = series.iter().map(|s| encode(enc, s)).collect();
            for _ in 0..iters {
                black_box(decode_chunks(&chunks));
            }
        }
        Some("seek") => {
            let chunks = seek_targets(enc, &series);
            for _ in 0..iters {
                black_box(seek_chunks(&chunks));
            }
        }
        _ => panic!("{usage}"),
    }
}

fn bench_chunks(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("VIGIL_CHUNK_LOOP") {
        fixed_loop(&spec);
        std::process::exit(0);
    }
    print_compression();
    let per_iter = SERIES * testdata::SAMPLES_PER_CHUNK as u64;

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(per_iter));
    for kind in Kind::ALL {
        let series = data(kind, true);
        for enc in Encoding::ALL {
            g.bench_with_input(
                BenchmarkId::new(format!("{enc:?}"), kind.name()),
                &series,
                |b, series| {
                    b.iter(|| {
                        for s in series {
                            black_box(encode(enc, black_box(s)));
                        }
                    })
                },
            );
        }
    }
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(per_iter));
    for kind in Kind::ALL {
        let series = data(kind, true);
        for enc in Encoding::ALL {
            let chunks: Vec<Vec<u8>> = series.iter().map(|s| encode(enc, s)).collect();
            g.bench_with_input(
                BenchmarkId::new(format!("{enc:?}"), kind.name()),
                &chunks,
                |b, chunks| b.iter(|| black_box(decode_chunks(chunks))),
            );
        }
    }
    g.finish();

    // Seeking to a chunk's last 20 samples: time per chunk.
    let mut g = c.benchmark_group("seek_last_5m");
    g.throughput(Throughput::Elements(SERIES));
    for kind in Kind::ALL {
        let series = data(kind, true);
        for enc in Encoding::ALL {
            let chunks = seek_targets(enc, &series);
            g.bench_with_input(
                BenchmarkId::new(format!("{enc:?}"), kind.name()),
                &chunks,
                |b, chunks| b.iter(|| black_box(seek_chunks(chunks))),
            );
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_chunks
}
criterion_main!(benches);
