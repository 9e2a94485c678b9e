//! Crash consistency: a child process appends and commits in a loop and is
//! killed with SIGKILL at a random moment; the store is then reopened and
//! checked. Repeated for both fsync policies.
//!
//! What must hold after every kill:
//! - the store opens (a torn WAL or head chunk tail is repaired, not fatal);
//! - with fsync on every commit, every batch the child reported committed is
//!   present;
//! - with interval fsync, at most the batches of the last interval may be
//!   missing (a SIGKILL keeps the page cache, so in practice none are);
//! - nothing is corrupt: every series holds exactly the samples of a prefix
//!   of the batches, with the exact values, in order.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_model::{Appender, Labels, Matcher, Queryable, SampleIterator, Value, ValueType};
use vigil_tsdb::head::HeadOptions;
use vigil_tsdb::wal::SyncPolicy;
use vigil_tsdb::{Db, Options};

const SERIES: usize = 50;
const ENV_DIR: &str = "VIGIL_CRASH_CHILD_DIR";
const ENV_POLICY: &str = "VIGIL_CRASH_CHILD_POLICY";

fn options(policy: &str) -> Options {
    let wal_sync = if policy == "always" {
        SyncPolicy::always()
    } else {
        SyncPolicy::interval(Duration::from_millis(50))
    };
    Options {
        head: HeadOptions {
            wal_sync,
            wal_segment_size: 256 << 10,
            chunk_file_size: 1 << 20,
            samples_per_chunk: 30,
            ..HeadOptions::default()
        },
        ..Options::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "crash_test".to_string()), ("s", i.to_string())])
}

/// The value of batch `b` for series `i`: deterministic, so the parent can
/// check every sample exactly.
fn value(b: i64, i: usize) -> f64 {
    (b as f64) * 1.5 + i as f64
}

/// The child: appends batch after batch until killed, printing the number
/// of each batch once its commit has returned. Does nothing unless started
/// by the parent test.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(policy)) = (std::env::var(ENV_DIR), std::env::var(ENV_POLICY)) else {
        return;
    };
    let db = Db::open(&dir, options(&policy)).expect("child opens the store");
    // Continue after what earlier runs left.
    let start = last_batch(&db).map_or(0, |b| b + 1);
    let labels: Vec<Labels> = (0..SERIES).map(series).collect();
    let mut out = std::io::stdout().lock();
    for b in start.. {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            app.append(None, l, b * 1000, Value::Float(value(b, i)))
                .unwrap();
        }
        app.commit().unwrap();
        use std::io::Write;
        writeln!(out, "committed {b}").unwrap();
        out.flush().unwrap();
    }
}

/// The newest batch fully or partly present.
fn last_batch(db: &Db) -> Option<i64> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set = q
        .select(true, None, &[Matcher::equal("__name__", "crash_test")])
        .unwrap();
    let mut last = None;
    for s in &set.series {
        let mut it = s.iter();
        while it.next() == ValueType::Float {
            last = last.max(Some(it.at().0 / 1000));
        }
    }
    last
}

/// Checks that the store holds exactly the batches `0..=n` for some `n`,
/// for every series, and returns `n` (or -1 if empty).
fn check_consistent(db: &Db) -> i64 {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set = q
        .select(true, None, &[Matcher::equal("__name__", "crash_test")])
        .unwrap();
    let mut counts = Vec::new();
    for s in &set.series {
        let i: usize = s.labels().get("s").unwrap().parse().unwrap();
        let mut it = s.iter();
        let mut b = 0i64;
        while it.next() == ValueType::Float {
            let (t, v) = it.at();
            assert_eq!(
                t,
                b * 1000,
                "series {i}: samples must be contiguous batches"
            );
            assert_eq!(
                v.to_bits(),
                value(b, i).to_bits(),
                "series {i}: exact value of batch {b}"
            );
            b += 1;
        }
        assert!(it.err().is_none());
        counts.push(b);
    }
    if counts.is_empty() {
        return -1;
    }
    let max = *counts.iter().max().unwrap();
    let min = *counts.iter().min().unwrap();
    // A batch is one WAL record: it is there for all series or for none. A
    // series may only lack batches if it was never created.
    assert_eq!(
        counts.len(),
        SERIES,
        "every series exists once a batch is committed"
    );
    assert_eq!(min, max, "a commit is atomic across series");
    max - 1
}

/// The two policies run one after the other: a child forked by one test
/// would otherwise share, until it execs, the other test's open lock file.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(policy: &str, iterations: u32) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(iterations);
    for iter in 0..iterations {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(ENV_DIR, dir.path())
            .env(ENV_POLICY, policy)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let run_for = Duration::from_millis(20 + (seed >> 33) % 400);
        // Read the committed counter on a thread until the kill, noting when
        // each commit was reported.
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("committed ") {
                    if let Ok(b) = n.trim().parse::<i64>() {
                        seen.push((b, Instant::now()));
                    }
                }
            }
            seen
        });
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed_at = Instant::now();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let seen = reader.join().unwrap();

        let db = Db::open(dir.path(), options(policy))
            .unwrap_or_else(|e| panic!("iteration {iter}: reopen failed: {e}"));
        let present = check_consistent(&db);
        eprintln!("crash iteration {iter} ({policy}): reported committed {:?}, present {present}, WAL repairs {}", seen.last().map(|s| s.0), db.head().stats().wal_corruptions.load(std::sync::atomic::Ordering::Relaxed));
        // The batch that must be present: with fsync on every commit, the
        // last one reported; with interval fsync, the last one reported at
        // least one interval (plus slack for scheduling) before the kill.
        let must = if policy == "always" {
            seen.last().map(|s| s.0)
        } else {
            let grace = Duration::from_millis(50 + 100);
            seen.iter()
                .rev()
                .find(|(_, at)| killed_at.duration_since(*at) >= grace)
                .map(|s| s.0)
        };
        if let Some(committed) = must {
            assert!(
                present >= committed,
                "iteration {iter} ({policy}): batch {committed} must be present, only up to {present} is"
            );
        }
        db.close().unwrap();
    }
}

#[test]
fn sigkill_with_fsync_on_every_commit() {
    run("always", 12);
}

#[test]
fn sigkill_with_interval_fsync() {
    run("interval", 10);
}
