//! Shared data generation for the cross-crate benchmarks.
//!
//! The query benchmark data set (issue #4): `SERIES` counter series
//! `x{job, instance}` and classic-histogram buckets `h_bucket{instance, le}`,
//! one day at 15 s resolution, deterministic.

use vigil_model::{Appender, Labels, SeriesRef, Value};

/// Samples per series: one day at 15 s.
pub const SAMPLES_PER_SERIES: i64 = 24 * 3600 / 15;
/// Scrape interval in ms.
pub const INTERVAL: i64 = 15_000;
/// The first timestamp.
pub const START: i64 = 1_700_000_000_000 / 86_400_000 * 86_400_000;
/// Bucket bounds of `h_bucket`.
pub const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];

/// The label sets: `n` series of `x` (10 jobs) and `n / 10` series of
/// `h_bucket` (n / 100 instances × 10 buckets).
pub fn series_labels(n: usize) -> Vec<Labels> {
    let mut out = Vec::with_capacity(n + n / 10);
    for i in 0..n {
        out.push(Labels::from_pairs([
            ("__name__", "x".to_string()),
            ("job", format!("job-{}", i % 10)),
            ("instance", format!("host-{i:05}:9100")),
        ]));
    }
    for i in 0..(n / 100).max(1) {
        for le in BUCKETS {
            out.push(Labels::from_pairs([
                ("__name__", "h_bucket".to_string()),
                ("instance", format!("host-{i:05}:9100")),
                ("le", le.to_string()),
            ]));
        }
    }
    out
}

/// The value of series `i` (in `series_labels` order) at round `r`: counters
/// that grow by a per-series rate; bucket counters grow with their bound.
pub fn value(i: usize, r: i64, n: usize) -> f64 {
    if i < n {
        (r * (1 + (i as i64 % 7))) as f64 + (i % 3) as f64 * 0.25
    } else {
        let b = (i - n) % BUCKETS.len();
        (r * (b as i64 + 1) * 3) as f64
    }
}

/// Appends the whole data set round by round into an appendable storage
/// through `append_round`, which gets the round's timestamp and must append
/// every series.
pub fn fill<A: Appender>(
    n: usize,
    labels: &[Labels],
    mut appender: impl FnMut() -> A,
) -> Result<(), vigil_model::AppendError> {
    let mut refs: Vec<Option<SeriesRef>> = vec![None; labels.len()];
    for r in 0..SAMPLES_PER_SERIES {
        let t = START + r * INTERVAL;
        for (ci, chunk) in labels.chunks(5000).enumerate() {
            let mut app = appender();
            for (j, l) in chunk.iter().enumerate() {
                let i = ci * 5000 + j;
                refs[i] = Some(app.append(refs[i], l, t, Value::Float(value(i, r, n)))?);
            }
            app.commit().map_err(|e| match e {
                vigil_model::CommitError::Storage(s) => vigil_model::AppendError::Storage(s),
                _ => vigil_model::AppendError::UnsupportedValue,
            })?;
        }
    }
    Ok(())
}
