//! Head append throughput with 100k series (issue target: >= 3M samples/s
//! on one core). Each iteration appends one sample to each of the 100k
//! series, using cached series references as a scrape loop or the remote
//! write path would, committed in batches of 2000 (the size of a
//! remote-write request from peerbench).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::{Appender, Labels, SeriesRef, Value};
use vigil_tsdb::head::{Head, HeadOptions};

const SERIES: usize = 100_000;
const BATCH: usize = 2_000;

fn series_labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("node_metric_{}", i % 50)),
        ("instance", format!("host-{:05}:9100", i / 50)),
        ("job", "node".to_string()),
        ("mode", format!("m{}", i % 8)),
    ])
}

fn bench_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let labels: Vec<Labels> = (0..SERIES).map(series_labels).collect();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; SERIES];
    let mut t: i64 = 1_700_000_000_000;
    let round = |refs: &mut Vec<Option<SeriesRef>>, t: i64| {
        for (chunk_i, chunk) in labels.chunks(BATCH).enumerate() {
            let mut app = head.appender();
            for (j, l) in chunk.iter().enumerate() {
                let i = chunk_i * BATCH + j;
                // Counter-like values with a little variation.
                let v = (t / 15_000) as f64 * (1 + i % 7) as f64;
                refs[i] = Some(app.append(refs[i], l, t, Value::Float(v)).unwrap());
            }
            app.commit().unwrap();
        }
    };
    // Create the series first.
    round(&mut refs, t);
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);
    g.bench_function("100k_series_one_round_batch_2000", |b| {
        b.iter(|| {
            t += 15_000 + (t % 3) - 1; // scrape interval with a little jitter
            round(&mut refs, t);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
