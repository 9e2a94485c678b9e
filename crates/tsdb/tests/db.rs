//! The database end to end: head persistence into blocks, compaction,
//! retention, deletion, snapshots, restarts and damaged files, checked
//! against a naive model of what was written.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use proptest::prelude::*;
use vigil_model::{
    Appender, Labels, MatchOp, Matcher, Queryable, SampleIterator, Value, ValueType,
};
use vigil_tsdb::head::HeadOptions;
use vigil_tsdb::wal::SyncPolicy;
use vigil_tsdb::{Db, Options};

/// Small ranges so tests cut blocks quickly: 1 s blocks.
fn opts(ooo_window: i64) -> Options {
    Options {
        head: HeadOptions {
            chunk_range: 1_000,
            samples_per_chunk: 8,
            out_of_order_window: ooo_window,
            wal_sync: SyncPolicy::always(),
            wal_segment_size: 32 << 10,
            chunk_file_size: 64 << 10,
            ..HeadOptions::default()
        },
        retention_time: None,
        retention_size: None,
        ..Options::default()
    }
}

type Data = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn read(db: &Db, mint: i64, maxt: i64) -> Data {
    let q = db.querier(mint, maxt).unwrap();
    let set = q.select(true, None, &[]).unwrap();
    let mut out = Data::new();
    let mut prev: Option<Labels> = None;
    for s in &set.series {
        if let Some(p) = &prev {
            assert!(p < s.labels(), "series sorted and unique");
        }
        prev = Some(s.labels().clone());
        let mut it = s.iter();
        let mut m = BTreeMap::new();
        let mut last = i64::MIN;
        while it.next() == ValueType::Float {
            let (t, v) = it.at();
            assert!(t > last, "samples strictly increasing");
            last = t;
            assert!(t >= mint && t <= maxt);
            m.insert(t, v.to_bits());
        }
        assert!(it.err().is_none());
        out.insert(s.labels().clone(), m);
    }
    out
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("s", i.to_string())])
}

fn append_all(db: &Db, data: &Data) {
    let mut app = db.appender();
    for (l, samples) in data {
        for (&t, &v) in samples {
            app.append(None, l, t, Value::Float(f64::from_bits(v)))
                .unwrap();
        }
    }
    app.commit().unwrap();
}

fn gen(series_n: usize, from: i64, to: i64, step: i64) -> Data {
    let mut d = Data::new();
    for i in 0..series_n {
        let m: BTreeMap<i64, u64> = (from..to)
            .step_by(step as usize)
            .map(|t| (t, ((t as f64) * 0.5 + i as f64).to_bits()))
            .collect();
        d.insert(series(i), m);
    }
    d
}

#[test]
fn head_is_persisted_compacted_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = gen(5, 0, 10_000, 50);
    {
        let db = Db::open(dir.path(), opts(0)).unwrap();
        append_all(&db, &data);
        db.maintain().unwrap();
        let blocks = db.blocks();
        assert!(!blocks.is_empty(), "blocks were cut");
        // Compaction merged the 1 s blocks into larger ones (3 s, 9 s).
        assert!(blocks.iter().any(|b| b.max_time - b.min_time >= 3_000));
        assert!(db.head().min_valid_time() >= 8_000);
        assert_eq!(read(&db, i64::MIN, i64::MAX), data);
        // A sample before the head's lower bound is out of bounds.
        let mut app = db.appender();
        assert!(app.append(None, &series(0), 10, Value::Float(1.0)).is_err());
    }
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), data);
    // A range query reads across blocks and head.
    let part = read(&db, 2_500, 9_100);
    assert_eq!(
        part[&series(0)].len(),
        data[&series(0)].range(2_500..=9_100).count()
    );
}

#[test]
fn retention_by_time_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0);
    o.retention_time = Some(4_000);
    o.compaction_levels = 0; // keep 1 s blocks so retention is precise
    let db = Db::open(dir.path(), o).unwrap();
    append_all(&db, &gen(3, 0, 12_000, 100));
    db.maintain().unwrap();
    let blocks = db.blocks();
    let newest = blocks.iter().map(|b| b.max_time).max().unwrap();
    assert!(blocks.iter().all(|b| b.max_time > newest - 4_000));
    assert!(db.stats().retention_time_deletions.load(Ordering::Relaxed) > 0);
    let got = read(&db, i64::MIN, i64::MAX);
    assert!(*got[&series(0)].keys().next().unwrap() >= newest - 4_000 - 1_000);
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0);
    o.compaction_levels = 0;
    o.retention_size = Some(1); // everything but the head must go
    let db = Db::open(dir.path(), o).unwrap();
    append_all(&db, &gen(3, 0, 12_000, 100));
    db.maintain().unwrap();
    assert!(db.blocks().is_empty());
    assert!(db.stats().retention_size_deletions.load(Ordering::Relaxed) > 0);
}

/// A configuration reload changes retention and the out-of-order window of an
/// open database, without reopening it.
#[test]
fn retention_and_ooo_window_change_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0);
    o.compaction_levels = 0;
    let db = Db::open(dir.path(), o).unwrap();
    append_all(&db, &gen(2, 0, 12_000, 100));
    db.maintain().unwrap();
    let before = db.blocks().len();
    assert!(before > 4);
    db.set_retention(Some(4_000), None);
    assert_eq!(db.retention(), (Some(4_000), None));
    db.maintain().unwrap();
    assert!(
        db.blocks().len() < before,
        "the new retention deleted blocks"
    );

    // Out of order: rejected with no window, accepted once a window is set.
    let mut app = db.appender();
    let old = db.head().min_valid_time() + 10;
    let mut late = db.appender();
    late.append(None, &series(0), 30_000, Value::Float(1.0))
        .unwrap();
    late.commit().unwrap();
    assert!(app
        .append(None, &series(0), old, Value::Float(2.0))
        .is_err());
    drop(app);
    db.head().set_out_of_order_window(60_000);
    let mut app = db.appender();
    app.append(None, &series(0), old, Value::Float(2.0))
        .unwrap();
    app.commit().unwrap();
    assert!(read(&db, old, old).values().any(|m| m.contains_key(&old)));
}

#[test]
fn delete_hides_data_in_head_and_blocks_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = gen(3, 0, 10_000, 100);
    let matchers = [Matcher::new(MatchOp::Regex, "s", "0|1").unwrap()];
    let mut want = data.clone();
    for i in 0..2 {
        want.get_mut(&series(i))
            .unwrap()
            .retain(|t, _| !(2_000..=9_500).contains(t));
    }
    {
        let db = Db::open(dir.path(), opts(0)).unwrap();
        append_all(&db, &data);
        db.maintain().unwrap();
        assert!(db.delete(2_000, 9_500, &matchers).unwrap() >= 2);
        assert_eq!(read(&db, i64::MIN, i64::MAX), want);
        db.clean_tombstones().unwrap();
        assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    }
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    // Persisting the head applies its tombstones too.
    let mut app = db.appender();
    for t in (10_000..14_000).step_by(100) {
        app.append(None, &series(2), t, Value::Float(1.0)).unwrap();
    }
    app.commit().unwrap();
    db.maintain().unwrap();
    let got = read(&db, i64::MIN, i64::MAX);
    assert_eq!(got[&series(0)], want[&series(0)]);
}

#[test]
fn snapshot_is_a_complete_copy() {
    let dir = tempfile::tempdir().unwrap();
    let snap = tempfile::tempdir().unwrap();
    let data = gen(4, 0, 5_000, 100);
    let db = Db::open(dir.path(), opts(0)).unwrap();
    append_all(&db, &data);
    db.maintain().unwrap();
    let metas = db.snapshot(snap.path().join("s1"), true).unwrap();
    assert!(!metas.is_empty());
    drop(db);
    let copy = Db::open(snap.path().join("s1"), opts(0)).unwrap();
    assert_eq!(read(&copy, i64::MIN, i64::MAX), data);
}

#[test]
fn damaged_block_is_left_out_and_the_rest_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0);
    o.compaction_levels = 0;
    let data = gen(3, 0, 6_000, 100);
    {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        append_all(&db, &data);
        db.maintain().unwrap();
        assert!(db.blocks().len() >= 3);
    }
    // Damage the index of the oldest block and truncate the chunks of the
    // second.
    let mut blocks: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    blocks.sort();
    let index = blocks[0].join("index");
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&index, bytes).unwrap();
    let seg = blocks[1].join("chunks").join("000001");
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let db = Db::open(dir.path(), o).unwrap();
    // Reading must not panic; damaged data is reported as errors or left out.
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set = q
        .select(true, None, &[])
        .unwrap_or_else(|_| vigil_model::SeriesSet {
            series: Vec::new(),
            warnings: Vec::new(),
        });
    for s in &set.series {
        let mut it = s.iter();
        while it.next() == ValueType::Float {}
        let _ = it.err();
    }
    // The head's data (newest range) is intact.
    let newest = read(&db, 5_000, 5_999);
    assert_eq!(newest[&series(0)].len(), 10);
}

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Op {
    /// A batch of (series, time, value), committed or not.
    Batch(Vec<(u8, i64, u64)>, bool),
    /// Persist, compact, apply retention.
    Maintain,
    /// Close and reopen.
    Reopen,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let sample = (
        0u8..3,
        0i64..200,
        prop_oneof![any::<u64>(), Just(0x7ff0000000000002u64)],
    );
    prop::collection::vec(
        prop_oneof![
            6 => (prop::collection::vec(sample, 1..40), prop::bool::weighted(0.9)).prop_map(|(s, c)| Op::Batch(s, c)),
            2 => Just(Op::Maintain),
            1 => Just(Op::Reopen),
        ],
        1..25,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Random appends, in and out of order, committed or rolled back, with
    /// head persistence, compaction and restarts in between, read back
    /// exactly as the accepted appends say. Time advances with each batch
    /// so that the head keeps crossing block ranges.
    #[test]
    fn prop_db_reads_back_what_it_accepted(ops in ops(), ooo in prop_oneof![Just(0i64), Just(3_000i64)]) {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(ooo);
        let mut db = Db::open(dir.path(), o.clone()).unwrap();
        let labels: Vec<Labels> = (0..3).map(series).collect();
        let mut model = Data::new();
        let mut base = 0i64;
        for op in ops {
            match op {
                Op::Reopen => {
                    drop(db);
                    db = Db::open(dir.path(), o.clone()).unwrap();
                }
                Op::Maintain => db.maintain().unwrap(),
                Op::Batch(samples, commit) => {
                    base += 400;
                    let mut app = db.appender();
                    let mut accepted = Vec::new();
                    for (s, dt, v) in samples {
                        let t = base + dt * 10 - 1_000;
                        if app.append(None, &labels[s as usize], t, Value::Float(f64::from_bits(v))).is_ok() {
                            accepted.push((s, t, v));
                        }
                    }
                    if commit {
                        app.commit().unwrap();
                        for (s, t, v) in accepted {
                            let m = model.entry(labels[s as usize].clone()).or_default();
                            // An accepted repeat carries the same value.
                            if let Some(old) = m.insert(t, v) {
                                prop_assert_eq!(old, v);
                            }
                        }
                    }
                }
            }
        }
        prop_assert_eq!(read(&db, i64::MIN, i64::MAX), model.clone());
        drop(db);
        let db = Db::open(dir.path(), o).unwrap();
        prop_assert_eq!(read(&db, i64::MIN, i64::MAX), model);
    }
}

/// Maintenance (head persistence, compaction, WAL checkpoint) runs while
/// another thread keeps appending: every committed sample is readable
/// afterwards, and appends are not held up for the whole maintenance.
#[test]
fn appends_continue_during_maintenance() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0);
    o.head.wal_sync = SyncPolicy::interval(Duration::from_millis(100));
    let db = Arc::new(Db::open(dir.path(), o).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let labels: Vec<Labels> = (0..20).map(series).collect();
            let mut t = 0i64;
            let mut longest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) || t < 20_000 {
                let started = Instant::now();
                let mut app = db.appender();
                for (i, l) in labels.iter().enumerate() {
                    app.append(None, l, t, Value::Float((t + i as i64) as f64))
                        .unwrap();
                }
                app.commit().unwrap();
                longest = longest.max(started.elapsed());
                t += 10;
            }
            (t, longest)
        })
    };
    let mut rounds = 0;
    while !writer.is_finished() {
        db.maintain().unwrap();
        rounds += 1;
        if rounds == 50 {
            stop.store(true, Ordering::Relaxed);
        }
    }
    let (end, longest) = writer.join().unwrap();
    db.maintain().unwrap();
    assert!(!db.blocks().is_empty());
    let got = read(&db, i64::MIN, i64::MAX);
    for i in 0..20usize {
        let m = &got[&series(i)];
        assert_eq!(m.len() as i64, end / 10, "series {i} lost samples");
        for (t, v) in m {
            assert_eq!(f64::from_bits(*v), (*t + i as i64) as f64);
        }
    }
    // A commit never waited for a whole maintenance round to finish; allow
    // generous slack for a loaded CI machine.
    assert!(
        longest < Duration::from_secs(2),
        "longest commit took {longest:?}"
    );
}

/// Bytes in the files of `dir` and below (0 when it does not exist).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        }
    })
    .sum()
}

/// A flush writes the whole head, over several block ranges and with
/// out-of-order samples, into one block; the head, the WAL and the head
/// chunk files are emptied; the data stays readable and survives restart.
#[test]
fn flush_writes_the_whole_head_into_one_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = gen(6, 0, 2_600, 10);
    {
        let db = Db::open(dir.path(), opts(500)).unwrap();
        assert!(db.flush().unwrap().is_none(), "nothing to flush");
        append_all(&db, &data);
        // Out-of-order samples, one series only.
        let mut app = db.appender();
        for t in [2_305, 2_455] {
            app.append(None, &series(1), t, Value::Float(7.0)).unwrap();
            data.get_mut(&series(1)).unwrap().insert(t, 7f64.to_bits());
        }
        app.commit().unwrap();
        let wal_before = dir_bytes(&dir.path().join("wal"));
        assert!(dir_bytes(&dir.path().join("chunks_head")) > 0);

        let meta = db.flush().unwrap().expect("a block");
        assert_eq!((meta.min_time, meta.max_time), (0, 2_591));
        assert_eq!(db.blocks().len(), 1, "one block for the whole head");
        assert_eq!(meta.stats.num_series, 6);
        assert_eq!(
            meta.stats.num_samples,
            data.values().map(|m| m.len() as u64).sum::<u64>()
        );
        assert_eq!(db.head().num_series(), 0);
        assert!(db.head().time_range().is_none());
        assert_eq!(db.head().min_valid_time(), 2_591);
        assert_eq!(dir_bytes(&dir.path().join("chunks_head")), 0);
        let wal_after = dir_bytes(&dir.path().join("wal"));
        assert!(
            wal_after < wal_before / 10,
            "WAL truncated: {wal_before} -> {wal_after} bytes"
        );
        assert_eq!(read(&db, i64::MIN, i64::MAX), data);
        assert!(db.flush().unwrap().is_none(), "the head is empty now");

        // Samples after the block go to the head; older in-order ones are
        // out of bounds, as after any persistence of the head.
        let mut app = db.appender();
        assert!(app
            .append(None, &series(0), 2_590, Value::Float(1.0))
            .is_err());
        app.append(None, &series(0), 2_600, Value::Float(3.0))
            .unwrap();
        app.commit().unwrap();
        data.get_mut(&series(0))
            .unwrap()
            .insert(2_600, 3f64.to_bits());
        assert_eq!(read(&db, i64::MIN, i64::MAX), data);
    }
    let db = Db::open(dir.path(), opts(500)).unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(db.head().num_series(), 1);
    assert_eq!(read(&db, i64::MIN, i64::MAX), data);
    // Maintenance finds nothing to redo.
    db.maintain().unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(read(&db, i64::MIN, i64::MAX), data);
}

/// Flushes while another thread keeps appending: every committed sample is
/// readable afterwards, from the blocks or the head, and after a restart.
#[test]
fn flush_while_appending_loses_nothing() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0);
    o.head.chunk_range = 1 << 40; // the flush cut never meets a range boundary
    o.head.samples_per_chunk = 16;
    let db = Arc::new(Db::open(dir.path(), o.clone()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let labels: Vec<Labels> = (0..20).map(series).collect();
            let mut t = 0i64;
            while !stop.load(Ordering::Relaxed) || t < 5_000 {
                let mut app = db.appender();
                for (i, l) in labels.iter().enumerate() {
                    app.append(None, l, t, Value::Float((t + i as i64) as f64))
                        .unwrap();
                }
                app.commit().unwrap();
                t += 1;
            }
            t
        })
    };
    let mut flushes = 0;
    while !writer.is_finished() {
        if db.flush().unwrap().is_some() {
            flushes += 1;
        }
        if flushes == 20 {
            stop.store(true, Ordering::Relaxed);
        }
    }
    let end = writer.join().unwrap();
    assert!(db.blocks().len() >= 2);
    let check = |db: &Db| {
        let got = read(db, i64::MIN, i64::MAX);
        for i in 0..20usize {
            let m = &got[&series(i)];
            assert_eq!(m.len() as i64, end, "series {i} lost samples");
            for (t, v) in m {
                assert_eq!(f64::from_bits(*v), (*t + i as i64) as f64);
            }
        }
    };
    check(&db);
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    check(&db);
}
