//! Start-up replay of 10M samples over 100k series (the issue asks for the
//! seconds). Not a criterion benchmark: it builds the store once, closes
//! it, then times `Db::open` a few times and prints the figures.
//!
//! `cargo bench -p vigil-tsdb --bench wal_replay`

use std::time::Instant;

use vigil_model::{Appender, Labels, SeriesRef, Value};
use vigil_tsdb::{Db, Options};

const SERIES: usize = 100_000;
const SAMPLES_PER_SERIES: i64 = 100;
const BATCH: usize = 2_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 50)),
                ("instance", format!("host-{:05}:9100", i / 50)),
                ("job", "node".to_string()),
            ])
        })
        .collect();
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut refs: Vec<Option<SeriesRef>> = vec![None; SERIES];
        for r in 0..SAMPLES_PER_SERIES {
            let t = 1_700_000_000_000 + r * 15_000;
            for (ci, chunk) in labels.chunks(BATCH).enumerate() {
                let mut app = db.appender();
                for (j, l) in chunk.iter().enumerate() {
                    let i = ci * BATCH + j;
                    let v = (r * (1 + i as i64 % 13)) as f64;
                    refs[i] = Some(app.append(refs[i], l, t, Value::Float(v)).unwrap());
                }
                app.commit().unwrap();
            }
        }
        db.close().unwrap();
    }
    let wal_bytes: u64 = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "wal_replay: {} samples over {} series, WAL {:.1} MiB",
        SERIES as i64 * SAMPLES_PER_SERIES,
        SERIES,
        wal_bytes as f64 / 1048576.0
    );
    for run in 0..3 {
        let t0 = Instant::now();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let s = t0.elapsed().as_secs_f64();
        println!(
            "wal_replay run {run}: open took {s:.2} s ({} samples read from the WAL, the rest from head chunk files; {} series)",
            db.head()
                .stats()
                .replayed_samples
                .load(std::sync::atomic::Ordering::Relaxed),
            db.head().num_series()
        );
        db.close().unwrap();
    }
    // Without the head chunk files every sample comes from the WAL.
    std::fs::remove_dir_all(dir.path().join("chunks_head")).unwrap();
    let t0 = Instant::now();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    println!(
        "wal_replay from the WAL alone: open took {:.2} s ({} samples)",
        t0.elapsed().as_secs_f64(),
        db.head()
            .stats()
            .replayed_samples
            .load(std::sync::atomic::Ordering::Relaxed)
    );
}
