//! PromQL instant queries, selective and broad, over a node_exporter-like
//! data set (1,000 hosts × 20 metrics, with `dc`, `host`, `instance` and
//! `job` labels, one hour at 15 s) in vigil-tsdb: once from the head, once
//! from the block `Db::flush` writes. These measure the fixed per-query
//! and per-series costs (postings, series and label decoding, the instant
//! selector) that dominate small queries, as peerbench's do.
//!
//! `cargo bench -p vigil-benches --bench promql_instant`

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_model::{Appender, Labels, Queryable, SeriesRef, Value};
use vigil_promql::{Engine, EngineOptions};
use vigil_tsdb::{Db, Options};

const HOSTS: usize = 1000;
const METRICS: usize = 20;
const ROUNDS: i64 = 240;
const T0: i64 = 1_795_780_800_000;

const QUERIES: [(&str, &str); 6] = [
    ("one_series", r#"m03{host="host-00007"}"#),
    (
        "name_regex_one_host",
        r#"{__name__=~"m1.+", host="host-00003"}"#,
    ),
    ("host_regex", r#"m05{host=~"host-0001.*"}"#),
    ("negative", r#"count(m02{dc!="dc-1"})"#),
    ("sum_1000", "sum(m04)"),
    ("count_by_1000", "count by (dc) (m06)"),
];

fn labels() -> Vec<Labels> {
    let mut out = Vec::with_capacity(HOSTS * METRICS);
    for h in 0..HOSTS {
        for m in 0..METRICS {
            out.push(Labels::from_pairs([
                ("__name__", format!("m{m:02}")),
                ("dc", format!("dc-{}", h % 4)),
                ("host", format!("host-{h:05}")),
                ("instance", format!("host-{h:05}:9100")),
                ("job", "node".to_string()),
            ]));
        }
    }
    out
}

fn fill(db: &Db, labels: &[Labels]) {
    let mut refs: Vec<Option<SeriesRef>> = vec![None; labels.len()];
    for r in 0..ROUNDS {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            let v = (r * (i as i64 % 7 + 1)) as f64 * 0.25;
            refs[i] = Some(
                app.append(
                    refs[i],
                    l,
                    T0 + r * 15_000 + (i as i64 % 15),
                    Value::Float(v),
                )
                .unwrap(),
            );
        }
        app.commit().unwrap();
    }
}

fn run(c: &mut Criterion, name: &str, db: &dyn Queryable) {
    let engine = Engine::new(EngineOptions::default());
    let t = T0 + (ROUNDS - 1) * 15_000 + 30;
    let mut g = c.benchmark_group(format!("promql_instant/{name}"));
    for (qn, q) in QUERIES {
        let r = engine.instant_query(db, q, t).unwrap();
        assert!(
            !matches!(&r.value, vigil_promql::QueryValue::Vector(v) if v.is_empty()),
            "{q} returned nothing"
        );
        g.bench_function(qn, |b| b.iter(|| engine.instant_query(db, q, t).unwrap()));
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("promql_parse");
    for (qn, q) in QUERIES {
        g.bench_function(qn, |b| b.iter(|| vigil_promql::parse(q).unwrap()));
    }
    g.finish();

    let labels = labels();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            retention_time: None,
            ..Options::default()
        },
    )
    .unwrap();
    fill(&db, &labels);
    run(c, "head", &db);
    db.flush().unwrap().expect("a block");
    run(c, "block", &db);
}

criterion_group!(benches, bench);
criterion_main!(benches);
