//! Retention by series (Prometheus issue #15350): after maintenance
//! (compaction and retention), the series a short rule governs have no
//! sample older than the rule allows, on disk and in reads, and every other
//! series keeps all of its samples.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use vigil_model::{
    Appender, Labels, MatchOp, Matcher, Queryable, SampleIterator, Value, ValueType,
};
use vigil_tsdb::head::HeadOptions;
use vigil_tsdb::retention::{RetentionRule, RetentionRules};
use vigil_tsdb::wal::SyncPolicy;
use vigil_tsdb::{Db, Options};

/// 1 s block ranges (compacted to 3 s, 9 s, ...), no global retention.
fn opts() -> Options {
    Options {
        head: HeadOptions {
            chunk_range: 1_000,
            samples_per_chunk: 8,
            wal_sync: SyncPolicy::interval(std::time::Duration::from_secs(60)),
            ..HeadOptions::default()
        },
        retention_time: None,
        retention_size: None,
        ..Options::default()
    }
}

type Data = BTreeMap<Labels, Vec<(i64, f64)>>;

fn read(db: &Db) -> Data {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set = q.select(true, None, &[]).unwrap();
    let mut out = Data::new();
    for s in &set.series {
        let mut it = s.iter();
        let mut v = Vec::new();
        while it.next() == ValueType::Float {
            v.push(it.at());
        }
        assert!(it.err().is_none());
        out.insert(s.labels().clone(), v);
    }
    out
}

fn name(n: &str, i: usize) -> Labels {
    Labels::from_pairs([("__name__", n.to_string()), ("i", i.to_string())])
}

/// `debug_requests` and `http_requests`, 3 series each, one sample every
/// 50 ms over [0, 30 s).
fn fill(db: &Db) -> Data {
    let mut data = Data::new();
    let mut app = db.appender();
    for t in (0..30_000).step_by(50) {
        for i in 0..3 {
            for n in ["debug_requests", "http_requests"] {
                let l = name(n, i);
                let v = (t as f64) / 10.0 + i as f64;
                app.append(None, &l, t, Value::Float(v)).unwrap();
                data.entry(l).or_default().push((t, v));
            }
        }
    }
    app.commit().unwrap();
    data
}

fn debug_rule(retention: i64) -> RetentionRules {
    RetentionRules::new(vec![RetentionRule::new(
        vec![vec![
            Matcher::new(MatchOp::Regex, "__name__", "debug_.*").unwrap()
        ]],
        retention,
    )
    .unwrap()])
}

/// Samples of `debug_*` series that blocks hold on disk, read without any
/// retention rule.
fn debug_on_disk(dir: &std::path::Path) -> Vec<i64> {
    let db = Db::open(dir, opts()).unwrap();
    let mut ts: Vec<i64> = read(&db)
        .into_iter()
        .filter(|(l, _)| l.metric_name().unwrap().starts_with("debug_"))
        .flat_map(|(_, v)| v.into_iter().map(|(t, _)| t))
        .collect();
    ts.sort_unstable();
    ts
}

#[test]
fn short_retention_series_are_gone_after_compaction_and_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    let data;
    let cutoff;
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        data = fill(&db);
        db.set_retention_rules(debug_rule(5_000));
        db.maintain().unwrap();
        let blocks = db.blocks();
        assert!(blocks.len() > 1, "{blocks:?}");
        assert!(
            blocks.iter().any(|b| b.compaction.level > 1),
            "compaction ran: {blocks:?}"
        );
        let newest = db.newest_time().unwrap();
        assert_eq!(newest, 29_950);
        cutoff = newest - 5_000;

        // Reads: debug series start at the cutoff, the others are whole.
        let got = read(&db);
        assert_eq!(got.len(), 6);
        for (l, want) in &data {
            let have = &got[l];
            if l.metric_name().unwrap().starts_with("debug_") {
                let kept: Vec<_> = want.iter().copied().filter(|s| s.0 >= cutoff).collect();
                assert_eq!(have, &kept, "{l}");
            } else {
                assert_eq!(have, want, "{l}");
            }
        }
        // Blocks wholly behind the cutoff hold no debug series any more.
        let debug = [Matcher::new(MatchOp::Regex, "__name__", "debug_.*").unwrap()];
        for b in db.open_blocks() {
            if b.meta().max_time <= cutoff {
                assert!(b.select(i64::MIN, i64::MAX, &debug).unwrap().is_empty());
                assert!(!b.select(i64::MIN, i64::MAX, &[]).unwrap().is_empty());
            }
        }
        assert!(db.stats().compactions.load(Ordering::Relaxed) > 0);
        db.close().unwrap();
    }
    // On disk (read with no rule): every block compacted after the rule was
    // set dropped the expired samples, so none is left.
    let on_disk = debug_on_disk(dir.path());
    assert_eq!(on_disk.first(), Some(&cutoff));
    assert_eq!(on_disk.len(), 3 * 101);
    // The other series are all on disk.
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = read(&db);
    for (l, want) in &data {
        if !l.metric_name().unwrap().starts_with("debug_") {
            assert_eq!(&got[l], want, "{l}");
        }
    }
}

#[test]
fn blocks_compacted_before_a_rule_are_rewritten_once_wholly_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.compaction_levels = 1; // 1 s and 3 s blocks
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let data = fill(&db);
    db.maintain().unwrap();
    let before = db.blocks();
    assert!(before.iter().all(|b| b.max_time - b.min_time <= 3_000));
    // The rule arrives later (a configuration reload): no compaction is
    // due, so only the retention pass can remove the expired samples.
    db.set_retention_rules(debug_rule(5_000));
    db.maintain().unwrap();
    let cutoff = 29_950 - 5_000;
    let behind = before.iter().filter(|b| b.max_time <= cutoff).count();
    assert!(behind >= 7, "{before:?}");
    assert_eq!(
        db.stats().retention_rule_rewrites.load(Ordering::Relaxed),
        behind as u64
    );
    let debug = [Matcher::new(MatchOp::Regex, "__name__", "debug_.*").unwrap()];
    for b in db.open_blocks() {
        let has_debug = !b.select(i64::MIN, i64::MAX, &debug).unwrap().is_empty();
        assert_eq!(has_debug, b.meta().max_time > cutoff, "{:?}", b.meta());
    }
    // Nothing more to do in the next round.
    db.maintain().unwrap();
    assert_eq!(
        db.stats().retention_rule_rewrites.load(Ordering::Relaxed),
        behind as u64
    );
    drop(db);
    // On disk: the debug series start in the block that straddles the
    // cutoff (reads hide the rest of it); the others are whole.
    let on_disk = debug_on_disk(dir.path());
    let straddling = before
        .iter()
        .find(|b| b.min_time <= cutoff && cutoff < b.max_time)
        .unwrap();
    assert_eq!(on_disk.first(), Some(&straddling.min_time));
    let db = Db::open(dir.path(), o).unwrap();
    let got = read(&db);
    for (l, want) in &data {
        if !l.metric_name().unwrap().starts_with("debug_") {
            assert_eq!(&got[l], want, "{l}");
        }
    }
}

#[test]
fn reads_hide_expired_samples_before_any_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let data = fill(&db);
    db.set_retention_rules(debug_rule(1_000));
    let got = read(&db);
    let l = name("debug_requests", 0);
    assert_eq!(got[&l].first().unwrap().0, 28_950);
    assert_eq!(
        got[&name("http_requests", 0)],
        data[&name("http_requests", 0)]
    );
    // A query that ends before the cutoff finds no debug series at all.
    let q = db.querier(0, 10_000).unwrap();
    let set = q
        .select(
            true,
            None,
            &[Matcher::new(MatchOp::Regex, "__name__", ".*requests").unwrap()],
        )
        .unwrap();
    let names: Vec<String> = set
        .series
        .iter()
        .map(|s| s.labels().metric_name().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["http_requests"; 3]);
    // Removing the rules shows everything again (nothing was deleted yet).
    db.set_retention_rules(RetentionRules::default());
    assert_eq!(read(&db), data);
}

#[test]
fn a_block_written_while_open_is_picked_up() {
    use vigil_tsdb::block::{write_block, ChunkMeta};
    use vigil_tsdb::chunkenc::{ChunkEncoder, Encoding};

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut enc = ChunkEncoder::new(Encoding::Adaptive);
    for i in 0..10 {
        enc.append(i * 100, i as f64).unwrap();
    }
    let chunk = ChunkMeta {
        mint: 0,
        maxt: 900,
        data: enc.into_bytes(),
    };
    let l = name("imported", 0);
    write_block(dir.path(), 0, 1_000, vec![(l.clone(), vec![chunk])]).unwrap();
    assert!(read(&db).is_empty());
    assert_eq!(db.load_new_blocks().unwrap(), 1);
    assert_eq!(read(&db)[&l].len(), 10);
    assert_eq!(db.load_new_blocks().unwrap(), 0);
    assert_eq!(db.stats().blocks_picked_up.load(Ordering::Relaxed), 1);
}
