//! Backfill throughput (`vigil tsdb import`): samples of 1000 series, four
//! hours at 15 s, added out of order to a `BlockImporter` and committed as
//! aligned 2h blocks (sorting, encoding, writing and fsyncing the blocks,
//! and moving them into place). 960,000 samples per iteration; the
//! throughput is samples per second of the whole import, parsing aside
//! (the end-to-end figure of `vigil tsdb import openmetrics` with the
//! parser is in docs/performance.md).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::Labels;
use vigil_tsdb::import::{BlockImporter, ImportOptions};

const SERIES: usize = 1_000;
const STEPS: usize = 960; // 4 h at 15 s

fn series_labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("node_metric_{}", i % 50)),
        ("instance", format!("host-{:05}:9100", i / 50)),
        ("job", "node".to_string()),
    ])
}

fn bench_import(c: &mut Criterion) {
    let labels: Vec<Labels> = (0..SERIES).map(series_labels).collect();
    let t0: i64 = 1_700_000_000_000;
    let mut g = c.benchmark_group("import");
    g.throughput(Throughput::Elements((SERIES * STEPS) as u64));
    g.sample_size(10);
    g.bench_function("1000_series_4h_out_of_order", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let mut imp = BlockImporter::new(dir.path(), ImportOptions::default()).unwrap();
            let ids: Vec<_> = labels
                .iter()
                .map(|l| imp.series(l.clone()).unwrap())
                .collect();
            // Steps in a scrambled order (7919 is prime): out of order over
            // the whole range, as an unsorted dump would be.
            for k in 0..STEPS {
                let i = (k * 7919) % STEPS;
                let t = t0 + 15_000 * i as i64;
                for (s, id) in ids.iter().enumerate() {
                    let v = (i * (1 + s % 7)) as f64;
                    imp.add(*id, t, v).unwrap();
                }
            }
            let summary = imp.commit().unwrap();
            assert_eq!(summary.samples, (SERIES * STEPS) as u64);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_import);
criterion_main!(benches);
