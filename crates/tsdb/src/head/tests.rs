//! Tests of the head: appends, reads, replay, out-of-order, limits and
//! damaged files.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_model::{
    labels, AppendError, Appender, Labels, MatchOp, Matcher, Querier, SampleIterator, Value,
    ValueType,
};

use super::{Head, HeadOptions, Limits};
use crate::wal::SyncPolicy;

fn opts() -> HeadOptions {
    HeadOptions {
        wal_sync: SyncPolicy::always(),
        wal_segment_size: 64 << 10,
        chunk_file_size: 256 << 10,
        ..HeadOptions::default()
    }
}

fn read_all(head: &Head, matchers: &[Matcher]) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let q = head.querier(i64::MIN, i64::MAX);
    let set = q.select(true, None, matchers).unwrap();
    set.series
        .iter()
        .map(|s| {
            let mut it = s.iter();
            let mut v = Vec::new();
            while it.next() == ValueType::Float {
                let (t, x) = it.at();
                v.push((t, x.to_bits()));
            }
            assert!(it.err().is_none());
            (s.labels().clone(), v)
        })
        .collect()
}

#[test]
fn append_commit_read_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), opts()).unwrap();
    let a = labels!("__name__" => "m", "i" => "a");
    let b = labels!("__name__" => "m", "i" => "b");
    let mut app = head.appender();
    let mut ra = None;
    for t in 0..1000i64 {
        ra = Some(
            app.append(ra, &a, t * 15_000, Value::Float(t as f64))
                .unwrap(),
        );
        app.append(None, &b, t * 15_000, Value::Float(-(t as f64)))
            .unwrap();
    }
    app.commit().unwrap();
    let got = read_all(&head, &[Matcher::equal("__name__", "m")]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, a);
    assert_eq!(got[0].1.len(), 1000);
    assert_eq!(got[0].1[999], (999 * 15_000, 999f64.to_bits()));
    assert!(
        head.stats()
            .chunks_created
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 16
    );
    assert_eq!(head.time_range(), Some((0, 999 * 15_000)));

    // A restricted range and seek.
    let q = head.querier(30_000, 60_000);
    let set = q.select(true, None, &[Matcher::equal("i", "a")]).unwrap();
    let mut it = set.series[0].iter();
    assert_eq!(it.next(), ValueType::Float);
    assert_eq!(it.at(), (30_000, 2.0));
    assert_eq!(it.seek(59_000), ValueType::Float);
    assert_eq!(it.at(), (60_000, 4.0));
    assert_eq!(it.next(), ValueType::None);
}

#[test]
fn rollback_and_order_rules() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), opts()).unwrap();
    let a = labels!("__name__" => "m");
    {
        let mut app = head.appender();
        app.append(None, &a, 10, Value::Float(1.0)).unwrap();
        // dropped: rolled back
    }
    assert!(read_all(&head, &[]).is_empty());

    let mut app = head.appender();
    app.append(None, &a, 10, Value::Float(1.0)).unwrap();
    app.append(None, &a, 20, Value::Float(2.0)).unwrap();
    assert!(matches!(
        app.append(None, &a, 15, Value::Float(1.0)),
        Err(AppendError::OutOfOrder)
    ));
    assert!(matches!(
        app.append(None, &a, 20, Value::Float(3.0)),
        Err(AppendError::DuplicateSampleForTimestamp)
    ));
    // An exact duplicate is accepted silently.
    app.append(None, &a, 20, Value::Float(2.0)).unwrap();
    app.commit().unwrap();
    assert_eq!(
        read_all(&head, &[])[0].1,
        vec![(10, 1f64.to_bits()), (20, 2f64.to_bits())]
    );
    let mut app = head.appender();
    assert!(matches!(
        app.append(None, &a, 5, Value::Float(1.0)),
        Err(AppendError::OutOfOrder)
    ));
    assert!(matches!(
        app.append(None, &Labels::empty(), 5, Value::Float(1.0)),
        Err(AppendError::EmptyLabels)
    ));
}

#[test]
fn stale_markers_and_special_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let vals = [
        vigil_model::stale_nan(),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE / 2.0,
        f64::from_bits(0x7ff8_dead_beef_0001),
    ];
    let a = labels!("__name__" => "m");
    {
        let head = Head::open(dir.path(), opts()).unwrap();
        let mut app = head.appender();
        for (i, v) in vals.iter().enumerate() {
            app.append(None, &a, i as i64, Value::Float(*v)).unwrap();
        }
        app.commit().unwrap();
    }
    let head = Head::open(dir.path(), opts()).unwrap();
    let got = read_all(&head, &[]);
    let want: Vec<(i64, u64)> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_bits()))
        .collect();
    assert_eq!(got[0].1, want);
}

#[test]
fn limits_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.limits = Limits {
        max_labels: 2,
        max_label_name_len: 10,
        max_label_value_len: 5,
        max_series: 2,
        max_series_per_metric: 0,
    };
    let head = Head::open(dir.path(), o).unwrap();
    let mut app = head.appender();
    let err = |r: Result<_, AppendError>| match r {
        Err(AppendError::Limit(l)) => l,
        other => panic!("expected a limit error, got {other:?}"),
    };
    err(app.append(
        None,
        &labels!("a" => "1", "b" => "2", "c" => "3"),
        1,
        Value::Float(0.0),
    ));
    err(app.append(None, &labels!("a" => "123456"), 1, Value::Float(0.0)));
    err(app.append(None, &labels!("abcdefghijk" => "1"), 1, Value::Float(0.0)));
    app.append(None, &labels!("a" => "1"), 1, Value::Float(0.0))
        .unwrap();
    app.append(None, &labels!("a" => "2"), 1, Value::Float(0.0))
        .unwrap();
    err(app.append(None, &labels!("a" => "3"), 1, Value::Float(0.0)));
    app.commit().unwrap();
    // Each refusal is counted under its limit's name.
    let hits: Vec<u64> = head
        .stats()
        .limit_hits
        .iter()
        .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    // series_total, series_per_metric, labels_per_series, name, value
    assert_eq!(hits, [1, 0, 1, 1, 1]);
}

#[test]
fn series_per_metric_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.limits.max_series_per_metric = 2;
    let head = Head::open(dir.path(), o).unwrap();
    let mut app = head.appender();
    for i in ["1", "2"] {
        app.append(
            None,
            &labels!("__name__" => "a", "i" => i),
            1,
            Value::Float(0.0),
        )
        .unwrap();
    }
    match app.append(
        None,
        &labels!("__name__" => "a", "i" => "3"),
        1,
        Value::Float(0.0),
    ) {
        Err(AppendError::Limit(l)) => {
            assert_eq!(l.to_string(), "series limit of 2 for metric \"a\" reached");
            assert_eq!(l.limit_name(), "series_per_metric");
        }
        other => panic!("{other:?}"),
    }
    // Existing series still take samples; other metrics still get series.
    app.append(
        None,
        &labels!("__name__" => "a", "i" => "1"),
        2,
        Value::Float(1.0),
    )
    .unwrap();
    app.append(
        None,
        &labels!("__name__" => "b", "i" => "3"),
        1,
        Value::Float(0.0),
    )
    .unwrap();
    app.commit().unwrap();
    assert_eq!(head.num_series(), 3);
    assert_eq!(
        head.stats().limit_hits[1].load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn out_of_order_window_accepts_and_merges_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.out_of_order_window = 60_000;
    let a = labels!("__name__" => "m");
    {
        let head = Head::open(dir.path(), o.clone()).unwrap();
        let mut app = head.appender();
        for t in [100_000i64, 110_000, 120_000] {
            app.append(None, &a, t, Value::Float(t as f64)).unwrap();
        }
        app.commit().unwrap();
        let mut app = head.appender();
        app.append(None, &a, 105_000, Value::Float(105_000.0))
            .unwrap();
        app.append(None, &a, 61_000, Value::Float(61_000.0))
            .unwrap();
        assert!(matches!(
            app.append(None, &a, 59_000, Value::Float(0.0)),
            Err(AppendError::TooOld)
        ));
        assert!(matches!(
            app.append(None, &a, 110_000, Value::Float(0.0)),
            Err(AppendError::DuplicateSampleForTimestamp)
        ));
        app.commit().unwrap();
        let ts: Vec<i64> = read_all(&head, &[])[0].1.iter().map(|x| x.0).collect();
        assert_eq!(ts, vec![61_000, 100_000, 105_000, 110_000, 120_000]);
    }
    let head = Head::open(dir.path(), o).unwrap();
    let ts: Vec<i64> = read_all(&head, &[])[0].1.iter().map(|x| x.0).collect();
    assert_eq!(ts, vec![61_000, 100_000, 105_000, 110_000, 120_000]);
}

#[test]
fn matchers_and_label_queries() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), opts()).unwrap();
    let mut app = head.appender();
    for (job, inst) in [("api", "1"), ("api", "2"), ("db", "1")] {
        app.append(
            None,
            &labels!("__name__" => "up", "job" => job, "instance" => inst),
            1,
            Value::Float(1.0),
        )
        .unwrap();
    }
    app.append(None, &labels!("__name__" => "other"), 1, Value::Float(1.0))
        .unwrap();
    app.commit().unwrap();
    let re = |n: &str, v: &str| Matcher::new(MatchOp::Regex, n, v).unwrap();
    assert_eq!(read_all(&head, &[re("job", "a.*")]).len(), 2);
    assert_eq!(
        read_all(
            &head,
            &[Matcher::new(MatchOp::NotEqual, "job", "api").unwrap()]
        )
        .len(),
        2
    );
    // `job=""` selects the series without a job label.
    assert_eq!(read_all(&head, &[Matcher::equal("job", "")]).len(), 1);
    let q = head.querier(0, 10);
    assert_eq!(
        q.label_names(&[]).unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["api", "db"]);
    assert_eq!(
        q.label_values("instance", &[Matcher::equal("job", "db")])
            .unwrap(),
        vec!["1"]
    );
}

#[test]
fn damaged_wal_tail_keeps_everything_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = labels!("__name__" => "m");
    {
        let head = Head::open(dir.path(), opts()).unwrap();
        for t in 0..50i64 {
            let mut app = head.appender();
            app.append(None, &a, t, Value::Float(t as f64)).unwrap();
            app.commit().unwrap();
        }
    }
    // Flip a byte near the end of the last non-empty WAL segment.
    let wal_dir = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.metadata()
                .map(|m| m.is_file() && m.len() > 0)
                .unwrap_or(false)
        })
        .map(|e| e.path())
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(last, &bytes).unwrap();
    // Also remove the head chunks so the WAL is the only source.
    std::fs::remove_dir_all(dir.path().join("chunks_head")).unwrap();

    let head = Head::open(dir.path(), opts()).unwrap();
    assert_eq!(
        head.stats()
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let got = read_all(&head, &[]);
    assert_eq!(
        got[0].1.len(),
        49,
        "all but the damaged last sample survive"
    );
    // The head keeps working after the repair, and a restart sees it all.
    let mut app = head.appender();
    app.append(None, &a, 100, Value::Float(1.0)).unwrap();
    app.commit().unwrap();
    drop(head);
    let head = Head::open(dir.path(), opts()).unwrap();
    assert_eq!(read_all(&head, &[])[0].1.len(), 50);
}

/// One operation of the model-based test.
#[derive(Debug, Clone)]
enum Op {
    /// Append (series, time, value) samples in one batch, then commit or not.
    Batch(Vec<(u8, i64, f64)>, bool),
    /// Close and reopen the head.
    Reopen,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let sample = (0u8..4, 0i64..4000, any::<f64>());
    let op = prop_oneof![
        8 => (prop::collection::vec(sample, 1..60), prop::bool::weighted(0.85)).prop_map(|(s, c)| Op::Batch(s, c)),
        1 => Just(Op::Reopen),
    ];
    prop::collection::vec(op, 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Random appends, in and out of order, committed or rolled back, with
    /// restarts between them, read back exactly as a naive model says.
    #[test]
    fn prop_head_matches_model(ops in ops(), window in prop_oneof![Just(0i64), Just(500i64)]) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts();
        o.samples_per_chunk = 7;
        o.out_of_order_window = window;
        let mut head = Head::open(dir.path(), o.clone()).unwrap();
        let series: Vec<Labels> = (0..4).map(|i| Labels::from_pairs([("__name__", "m".to_string()), ("s", i.to_string())])).collect();
        // The model: per series, committed samples by time, plus the newest
        // in-order timestamp that decides what is out of order.
        let mut model: Vec<BTreeMap<i64, u64>> = vec![BTreeMap::new(); 4];
        // The head's newest committed timestamp: the out-of-order window is
        // measured back from it.
        let mut head_max = i64::MIN;
        for op in ops {
            match op {
                Op::Reopen => {
                    drop(head);
                    head = Head::open(dir.path(), o.clone()).unwrap();
                }
                Op::Batch(samples, commit) => {
                    let mut app = head.appender();
                    let mut batch: Vec<BTreeMap<i64, u64>> = model.clone();
                    for (s, t, v) in samples {
                        let m = &mut batch[s as usize];
                        let last = m.keys().next_back().copied();
                        let ok = match last {
                            None => true,
                            Some(l) if t > l => true,
                            Some(l) if t == l => m[&t] == v.to_bits(),
                            Some(_) => window > 0 && t >= head_max.saturating_sub(window) && m.get(&t).is_none_or(|x| *x == v.to_bits()),
                        };
                        let r = app.append(None, &series[s as usize], t, Value::Float(v));
                        prop_assert_eq!(r.is_ok(), ok, "t={} last={:?}", t, last);
                        if ok {
                            m.insert(t, v.to_bits());
                        }
                    }
                    if commit {
                        app.commit().unwrap();
                        model = batch;
                        head_max = model.iter().filter_map(|m| m.keys().next_back().copied()).max().unwrap_or(i64::MIN);
                    }
                }
            }
        }
        let got = read_all(&head, &[]);
        let want: Vec<(Labels, Vec<(i64, u64)>)> = series
            .iter()
            .zip(&model)
            .filter(|(_, m)| !m.is_empty())
            .map(|(l, m)| (l.clone(), m.iter().map(|(t, v)| (*t, *v)).collect()))
            .collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn series_struct_sizes_stay_small() {
    // Per-series memory is a target (<= 1 KiB in total); these structs are
    // part of it. Growing them should be a deliberate choice: the last
    // growth (272 -> 376 bytes) holds the samples of a chunk's current
    // block until it is complete, so that the encoder writes each block once
    // at its final widths (the head_memory bench went from 823 to 920
    // bytes/series). Then 376 -> 344: the chunk writer's buffer is a boxed
    // slice with a 32-bit position, and the encoder lost two fields; with
    // the `Arc`'s counts that is 360 bytes, a malloc size class below 376.
    let entry = std::mem::size_of::<super::series::SeriesEntry>();
    let state = std::mem::size_of::<super::series::MemSeries>();
    println!(
        "SeriesEntry {entry} B, MemSeries {state} B, ChunkEncoder {} B, OpenChunk {} B",
        std::mem::size_of::<crate::chunkenc::ChunkEncoder>(),
        std::mem::size_of::<super::series::OpenChunk>()
    );
    assert!(entry <= 344, "SeriesEntry is {entry} bytes");
}

#[test]
fn hash_collisions_keep_series_apart() {
    use super::series::SeriesEntry;
    use std::sync::Arc;
    let mut idx = super::HashIndex::default();
    let a = Arc::new(SeriesEntry::new(1, labels!("a" => "1")));
    let b = Arc::new(SeriesEntry::new(2, labels!("b" => "2")));
    let c = Arc::new(SeriesEntry::new(3, labels!("c" => "3")));
    // Pretend all three share one hash.
    idx.insert(7, a.clone());
    idx.insert(7, b.clone());
    idx.insert(7, c.clone());
    assert_eq!(idx.get(7, &labels!("b" => "2")).map(|s| s.sref), Some(2));
    assert_eq!(idx.get(7, &labels!("c" => "3")).map(|s| s.sref), Some(3));
    assert!(idx.get(7, &labels!("d" => "4")).is_none());
    idx.remove(7, 1);
    assert_eq!(idx.get(7, &labels!("b" => "2")).map(|s| s.sref), Some(2));
    assert_eq!(idx.get(7, &labels!("c" => "3")).map(|s| s.sref), Some(3));
    assert!(idx.get(7, &labels!("a" => "1")).is_none());
    idx.remove(7, 3);
    idx.remove(7, 2);
    assert!(idx.get(7, &labels!("b" => "2")).is_none());
    assert!(idx.first.is_empty() && idx.collisions.is_empty());
}
