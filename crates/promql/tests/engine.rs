//! The engine's limits, errors, statistics and result shapes, through its
//! public API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_model::{labels, MemStorage, Querier, Queryable, Sample, StorageError};
use vigil_promql::{Engine, EngineOptions, QueryError, QueryValue};

fn storage() -> MemStorage {
    let s = MemStorage::new();
    for i in 0..10 {
        let l = labels!("__name__" => "m", "i" => i.to_string().as_str(), "job" => if i % 2 == 0 { "a" } else { "b" });
        s.add_series(l, (0..100).map(|k| Sample::new(k * 15_000, (k * i) as f64)))
            .unwrap();
    }
    s
}

#[test]
fn instant_and_range_results_have_prometheus_shapes() {
    let s = storage();
    let e = Engine::new(EngineOptions::default());
    let r = e.instant_query(&s, "sum by (job) (m)", 600_000).unwrap();
    let QueryValue::Vector(v) = r.value else {
        panic!("vector")
    };
    assert_eq!(v.len(), 2);
    assert!(r.stats.total_samples_loaded > 0);
    let r = e.range_query(&s, "sum(m)", 0, 600_000, 60_000).unwrap();
    let QueryValue::Matrix(m) = r.value else {
        panic!("matrix")
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 11);
    let r = e.instant_query(&s, "1 + 2", 0).unwrap();
    assert_eq!(r.value, QueryValue::Scalar { t: 0, v: 3.0 });
    let r = e.instant_query(&s, r#""hello""#, 5).unwrap();
    assert_eq!(
        r.value,
        QueryValue::String {
            t: 5,
            s: "hello".into()
        }
    );
    let r = e.instant_query(&s, "m[1m]", 600_000).unwrap();
    assert_eq!(r.value.type_name(), "matrix");
}

#[test]
fn errors_carry_prometheus_error_types() {
    let s = storage();
    let e = Engine::new(EngineOptions::default());
    let err = e.instant_query(&s, "sum(", 0).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    // Many-to-many matching on the same labels after `on(job)`.
    let err = e.instant_query(&s, "m + on(job) m", 600_000).unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("many-to-many"), "{err}");
    let err = e.range_query(&s, "m", 10, 0, 1).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e.range_query(&s, "m[5m]", 0, 10, 1).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
}

#[test]
fn warnings_come_with_results() {
    let s = storage();
    let e = Engine::new(EngineOptions::default());
    let r = e.instant_query(&s, "quantile(2, m)", 600_000).unwrap();
    let w: Vec<String> = r.annotations.warnings().map(|a| a.to_string()).collect();
    assert_eq!(
        w,
        vec!["PromQL warning: quantile value should be between 0 and 1, got 2"]
    );
}

#[test]
fn too_many_samples_is_an_execution_error() {
    let s = storage();
    let e = Engine::new(EngineOptions {
        max_samples: 50,
        ..EngineOptions::default()
    });
    let err = e
        .range_query(&s, "rate(m[10m])", 0, 1_500_000, 15_000)
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples(_)), "{err}");
    assert_eq!(err.error_type(), "execution");
    // Within the limit the same engine answers.
    assert!(e.instant_query(&s, "m{i=\"1\"}", 600_000).is_ok());
}

#[test]
fn a_query_past_its_timeout_fails_with_timeout() {
    let s = storage();
    let e = Engine::new(EngineOptions {
        timeout: Duration::from_nanos(1),
        ..EngineOptions::default()
    });
    let err = e
        .range_query(&s, "sum(rate(m[5m]))", 0, 1_500_000, 15_000)
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)), "{err}");
    assert_eq!(err.error_type(), "timeout");
}

/// Storage that takes a while to answer, to hold a query's place in line.
struct Slow(MemStorage, Duration);

impl Queryable for Slow {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        std::thread::sleep(self.1);
        self.0.querier(mint, maxt)
    }
}

#[test]
fn concurrent_queries_queue_and_time_out_while_queued() {
    let slow = Arc::new(Slow(storage(), Duration::from_millis(400)));
    let e = Arc::new(Engine::new(EngineOptions {
        max_concurrent: 1,
        timeout: Duration::from_millis(150),
        ..EngineOptions::default()
    }));
    let (e2, s2) = (e.clone(), slow.clone());
    let first = std::thread::spawn(move || e2.instant_query(s2.as_ref(), "m", 600_000));
    std::thread::sleep(Duration::from_millis(50));
    // The second waits for the only slot and gives up at its deadline.
    let started = Instant::now();
    let err = e.instant_query(slow.as_ref(), "m", 600_000).unwrap_err();
    assert!(matches!(err, QueryError::Timeout("query queue")), "{err}");
    assert!(started.elapsed() < Duration::from_millis(390));
    let _ = first.join().unwrap();
    // Once the slot is free, queries run again (given time).
    let patient = Engine::new(EngineOptions {
        max_concurrent: 1,
        ..EngineOptions::default()
    });
    let fast = storage();
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| patient.instant_query(&fast, "count(m)", 600_000)))
            .collect();
        for h in hs {
            assert!(h.join().unwrap().is_ok());
        }
    });
}
