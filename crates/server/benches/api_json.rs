//! Encoding query answers as Prometheus's JSON: an instant vector of 2,000
//! series (peerbench's `up`) and a range matrix of 1,000 series × 31 points
//! (a 30-minute range at 60 s steps).
//!
//! `cargo bench -p vigil-server --bench api_json`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_model::Labels;
use vigil_promql::{Point, QueryResult, QueryValue, Sample, Series};

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "node_network_receive_bytes_total".to_string()),
        ("dc", format!("dc-{}", i % 4)),
        ("device", "eth0".to_string()),
        ("host", format!("host-{i:05}")),
        ("instance", format!("host-{i:05}:9100")),
        ("job", "node".to_string()),
    ])
}

fn result(value: QueryValue) -> QueryResult {
    QueryResult {
        value,
        annotations: Default::default(),
        stats: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let t0 = 1_795_787_280_000i64;
    let vector = result(QueryValue::Vector(
        (0..2000)
            .map(|i| Sample {
                labels: labels(i),
                t: t0,
                v: (i % 2) as f64,
            })
            .collect(),
    ));
    let matrix = result(QueryValue::Matrix(
        (0..1000)
            .map(|i| Series {
                labels: labels(i),
                points: (0..31)
                    .map(|j| Point {
                        t: t0 + j * 60_000,
                        v: 12_345.678 + (i * 31 + j as usize) as f64 * 0.37,
                    })
                    .collect(),
            })
            .collect(),
    ));
    let mut g = c.benchmark_group("query_json");
    g.throughput(Throughput::Elements(2000));
    g.bench_function("vector_2000", |b| {
        b.iter(|| black_box(vigil_server::query_result_json(black_box(&vector))))
    });
    g.throughput(Throughput::Elements(31_000));
    g.bench_function("matrix_1000x31", |b| {
        b.iter(|| black_box(vigil_server::query_result_json(black_box(&matrix))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
