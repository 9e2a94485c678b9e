//! Resident memory per active series in the head (issue target: <= 1 KiB).
//!
//! Not a timing benchmark: it appends `ROUNDS` scrapes of realistic
//! node_exporter-like data to 100k series and reports the growth of the
//! process's resident set per series, read from /proc/self/statm, before and
//! after. Run with `cargo bench -p vigil-tsdb --bench head_memory`.

use vigil_model::{Appender, Labels, SeriesRef, Value};
use vigil_tsdb::head::{Head, HeadOptions};

const SERIES: usize = 100_000;
const ROUNDS: i64 = 240; // one hour at 15 s
const BATCH: usize = 2_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 50)),
                ("instance", format!("host-{:05}:9100", i / 50)),
                ("job", "node".to_string()),
                ("mode", format!("m{}", i % 8)),
            ])
        })
        .collect();
    let before = rss_bytes();
    let head = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; SERIES];
    let mut t: i64 = 1_700_000_000_000;
    let mut state: u64 = 42;
    for _ in 0..ROUNDS {
        for (ci, chunk) in labels.chunks(BATCH).enumerate() {
            let mut app = head.appender();
            for (j, l) in chunk.iter().enumerate() {
                let i = ci * BATCH + j;
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = if i.is_multiple_of(3) {
                    ((t - 1_700_000_000_000) / 1000) as f64 * 0.37 + i as f64 // counter
                } else {
                    ((state >> 40) % 10_000) as f64 / 100.0 // gauge, 2 decimals
                };
                refs[i] = Some(app.append(refs[i], l, t, Value::Float(v)).unwrap());
            }
            app.commit().unwrap();
        }
        t += 15_000 + (state % 5) as i64 - 2;
    }
    head.sync().unwrap();
    let after = rss_bytes();
    let per_series = (after.saturating_sub(before)) as f64 / SERIES as f64;
    println!(
        "head_memory: {SERIES} series x {ROUNDS} samples: RSS growth {:.1} MiB, {:.0} bytes/series; series heap (labels, chunk refs, open chunks) {:.0} bytes/series",
        (after - before) as f64 / (1 << 20) as f64,
        per_series,
        head.series_heap_bytes() as f64 / SERIES as f64,
    );
}
