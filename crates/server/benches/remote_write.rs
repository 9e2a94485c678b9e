//! The remote-write 1.0 receiver's work per request after snappy: decoding
//! the protobuf in place and appending to the head. One request is one
//! scrape round of 2,000 node_exporter-like series (peerbench's shape), of
//! 10,000 series in all: the first rounds create the series, later ones
//! find them by their labels.
//!
//! `cargo bench -p vigil-server --bench remote_write`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use vigil_server::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use vigil_tsdb::{Db, Options};

const SERIES: usize = 10_000;
const PER_REQUEST: usize = 2_000;

fn body(first: usize, t: i64) -> Vec<u8> {
    let timeseries = (first..first + PER_REQUEST)
        .map(|i| {
            let pairs = [
                ("__name__", format!("node_metric_{}", i % 50)),
                ("cpu", (i % 4).to_string()),
                ("dc", format!("dc-{}", i % 4)),
                ("host", format!("host-{:05}", i / 50)),
                ("instance", format!("host-{:05}:9100", i / 50)),
                ("job", "node".to_string()),
            ];
            TimeSeries {
                labels: pairs
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.to_string(),
                        value: v.clone(),
                    })
                    .collect(),
                samples: vec![Sample {
                    value: (i as f64) * 1.25 + t as f64 / 1000.0,
                    timestamp: t + (i % 15) as i64,
                }],
            }
        })
        .collect();
    WriteRequest { timeseries }.encode_to_vec()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let t0 = 1_795_780_800_000i64;
    // The series exist; each iteration appends one more round.
    let bodies: Vec<Vec<u8>> = (0..SERIES / PER_REQUEST)
        .map(|k| body(k * PER_REQUEST, t0))
        .collect();
    for b in &bodies {
        vigil_server::remote_write::append_v1_body(&db, b).unwrap();
    }
    let mut round = 1i64;
    let mut g = c.benchmark_group("remote_write_v1");
    g.throughput(Throughput::Elements(PER_REQUEST as u64));
    g.bench_function("decode_and_append_2000", |b| {
        b.iter_batched(
            || {
                round += 1;
                body(
                    (round as usize % (SERIES / PER_REQUEST)) * PER_REQUEST,
                    t0 + round * 15_000,
                )
            },
            |raw| black_box(vigil_server::remote_write::append_v1_body(&db, &raw).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
