//! PromQL range queries over 10k series × 1 day at 15 s (issue #4), each
//! evaluated over the whole day at step 60 s, against the in-memory store
//! and against vigil-tsdb (blocks plus head, after maintenance).
//!
//! `cargo bench -p vigil-benches --bench promql_queries`
//! Set `VIGIL_BENCH_SERIES` to use fewer series for a quick run.

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_benches::{fill, series_labels, INTERVAL, SAMPLES_PER_SERIES, START};
use vigil_model::{Appendable, MemStorage, Queryable};
use vigil_promql::{Engine, EngineOptions, QueryValue};
use vigil_tsdb::{Db, Options};

const QUERIES: [(&str, &str); 7] = [
    ("rate", "rate(x[5m])"),
    ("sum_by_rate", "sum by (job) (rate(x[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    ),
    ("topk", "topk(5, rate(x[5m]))"),
    (
        "binary_join",
        "rate(x[5m]) / on(job) group_left sum by (job) (rate(x[5m]))",
    ),
    ("avg_over_time", "avg_over_time(x[1h])"),
    ("subquery", "max_over_time(rate(x[5m])[30m:1m])"),
];

fn run(c: &mut Criterion, name: &str, storage: &dyn Queryable) {
    let engine = Engine::new(EngineOptions {
        max_samples: 500_000_000,
        timeout: std::time::Duration::from_secs(600),
        ..EngineOptions::default()
    });
    let end = START + (SAMPLES_PER_SERIES - 1) * INTERVAL;
    let mut g = c.benchmark_group(format!("promql_range_1d_step60s/{name}"));
    g.sample_size(10);
    for (qn, q) in QUERIES {
        // Check once that the query answers something.
        let r = engine.range_query(storage, q, START, end, 60_000).unwrap();
        match &r.value {
            QueryValue::Matrix(m) => assert!(!m.is_empty(), "{q} returned nothing"),
            other => panic!("{q} returned {other:?}"),
        }
        g.bench_function(qn, |b| {
            b.iter(|| engine.range_query(storage, q, START, end, 60_000).unwrap())
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("VIGIL_BENCH_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let labels = series_labels(n);
    let mem = MemStorage::new();
    fill(n, &labels, || mem.appender()).unwrap();
    run(c, "mem", &mem);
    drop(mem);

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            retention_time: None,
            ..Options::default()
        },
    )
    .unwrap();
    fill(n, &labels, || db.appender()).unwrap();
    db.maintain().unwrap();
    run(c, "tsdb", &db);
}

criterion_group!(benches, bench);
criterion_main!(benches);
