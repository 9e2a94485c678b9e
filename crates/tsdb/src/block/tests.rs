//! Tests of the block module: round trips, matcher semantics against a
//! naive scan, tombstones, compaction against a model, damage handling,
//! crash leftovers, and the size measurement.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vigil_model::{labels, Labels, MatchOp, Matcher, Queryable, SampleIterator, Series, ValueType};

use super::*;
use crate::chunkenc::{ChunkEncoder, Encoding};
use crate::mmap::DirLock;

/// SplitMix64: small, deterministic test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0, deviation 1 (Irwin-Hall).
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// A series' samples as (timestamp, value bits): floats compare by bits.
type Samples = Vec<(i64, u64)>;

const STALE: u64 = vigil_model::STALE_NAN_BITS;

fn setup() -> (tempfile::TempDir, DirLock) {
    let tmp = tempfile::tempdir().unwrap();
    let lock = DirLock::acquire(tmp.path()).unwrap();
    (tmp, lock)
}

/// Cuts samples into chunks of `per_chunk` samples.
fn chunks_of(samples: &[(i64, u64)], per_chunk: usize, enc: Encoding) -> Vec<ChunkMeta> {
    samples
        .chunks(per_chunk.max(1))
        .map(|part| {
            let mut e = ChunkEncoder::new(enc);
            for &(t, v) in part {
                e.append(t, f64::from_bits(v)).unwrap();
            }
            ChunkMeta {
                mint: part[0].0,
                maxt: part[part.len() - 1].0,
                data: e.into_bytes(),
            }
        })
        .collect()
}

/// Writes a block of `data` (any order) and returns its directory.
fn write(
    parent: &Path,
    mint: i64,
    maxt: i64,
    data: &BTreeMap<Labels, Samples>,
    per_chunk: usize,
    opts: &BlockWriterOptions,
) -> PathBuf {
    let mut w = BlockWriter::with_options(parent, mint, maxt, opts).unwrap();
    for (i, (l, s)) in data.iter().enumerate() {
        let enc = match i % 3 {
            0 => Encoding::Xor,
            1 => Encoding::Adaptive,
            _ => Encoding::Packed,
        };
        w.add_series(l, &chunks_of(s, per_chunk, enc)).unwrap();
    }
    let meta = w.finish().unwrap();
    parent.join(meta.ulid.to_string())
}

/// Everything `select` returns, through the `Series` trait.
fn read(block: &Block, mint: i64, maxt: i64, ms: &[Matcher]) -> BTreeMap<Labels, Samples> {
    let mut out = BTreeMap::new();
    let mut prev: Option<Labels> = None;
    for s in block.select(mint, maxt, ms).unwrap() {
        assert!(prev.as_ref().is_none_or(|p| p < s.labels()), "not sorted");
        prev = Some(s.labels().clone());
        let mut it = s.iter();
        let mut v = Vec::new();
        while it.next() == ValueType::Float {
            let (t, x) = it.at();
            v.push((t, x.to_bits()));
        }
        assert!(it.err().is_none());
        out.insert(s.labels().clone(), v);
    }
    out
}

/// The model's answer: samples in range, without deleted ones, dropping
/// series left empty... except that a block returns series whose chunks
/// overlap the range even if no sample does; callers compare non-empty.
fn non_empty(m: BTreeMap<Labels, Samples>) -> BTreeMap<Labels, Samples> {
    m.into_iter().filter(|(_, s)| !s.is_empty()).collect()
}

fn value(rng: &mut Rng) -> u64 {
    match rng.range(0, 9) {
        0 => STALE,
        1 => f64::NAN.to_bits() | 0x1234,
        2 => f64::INFINITY.to_bits(),
        3 => (-0.0f64).to_bits(),
        4 => rng.next_u64(),
        5 => (rng.range(0, 10_000) as f64 / 100.0).to_bits(),
        _ => (rng.range(0, 1_000_000) as f64).to_bits(),
    }
}

/// Random samples in `[lo, hi)`.
fn samples(rng: &mut Rng, lo: i64, hi: i64, max_n: i64) -> Samples {
    let n = rng.range(1, max_n);
    let mut ts: Vec<i64> = (0..n).map(|_| rng.range(lo, hi - 1)).collect();
    ts.sort_unstable();
    ts.dedup();
    ts.into_iter().map(|t| (t, value(rng))).collect()
}

#[test]
fn round_trip_many_series_and_chunks() {
    let (tmp, lock) = setup();
    let mut rng = Rng::new(1);
    let mut data = BTreeMap::new();
    for i in 0..600 {
        let l = labels!(
            "__name__" => format!("metric_{}", i % 7),
            "instance" => format!("host-{:03}", i / 7),
            "job" => (if i % 2 == 0 { "node" } else { "api" }).to_string(),
        );
        data.insert(l, samples(&mut rng, 0, 100_000, 400));
    }
    let opts = BlockWriterOptions::default().with_max_segment_size(16 << 10);
    let dir = write(tmp.path(), 0, 100_000, &data, 37, &opts);
    let block = Block::open(&lock, &dir).unwrap();

    let meta = block.meta();
    assert_eq!(meta.stats.num_series, 600);
    let total: usize = data.values().map(Vec::len).sum();
    assert_eq!(meta.stats.num_samples, total as u64);
    assert_eq!(meta.compaction.level, 1);
    assert_eq!(meta.compaction.sources, vec![meta.ulid]);
    assert!(fs::read_dir(dir.join(CHUNKS_DIR)).unwrap().count() > 5);

    assert_eq!(read(&block, i64::MIN, i64::MAX, &[]), data);
    // A sub-range.
    let want: BTreeMap<Labels, Samples> = data
        .iter()
        .map(|(l, s)| {
            let s: Samples = s
                .iter()
                .copied()
                .filter(|&(t, _)| (30_000..=60_000).contains(&t))
                .collect();
            (l.clone(), s)
        })
        .collect();
    assert_eq!(
        non_empty(read(&block, 30_000, 60_000, &[])),
        non_empty(want)
    );

    assert_eq!(
        block.label_names(&[]).unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(block.label_values("job", &[]).unwrap(), vec!["api", "node"]);
    assert_eq!(
        block.label_values("nope", &[]).unwrap(),
        Vec::<String>::new()
    );
    let m = [Matcher::equal("__name__", "metric_3")];
    assert_eq!(block.label_values("job", &m).unwrap(), vec!["api", "node"]);
    let m = [Matcher::equal("instance", "host-000")];
    assert_eq!(block.label_values("__name__", &m).unwrap().len(), 7);

    // chunk_series sees everything, in order, without decoding.
    let all: Vec<SeriesChunks> = block
        .chunk_series(&[])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(all.len(), 600);
    let chunks: usize = all.iter().map(|s| s.chunks.len()).sum();
    assert_eq!(chunks as u64, meta.stats.num_chunks);
    let again = block.chunks_for(all[5].series_ref).unwrap();
    assert_eq!(again.labels, all[5].labels);
    assert_eq!(again.chunks, all[5].chunks);

    // Queryable.
    let q = Queryable::querier(&block, 0, 100_000).unwrap();
    let set = q
        .select(true, None, &[Matcher::equal("job", "node")])
        .unwrap();
    assert_eq!(set.series.len(), 300);
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["api", "node"]);
    assert!(block.select(100_000, 200_000, &[]).unwrap().is_empty());
}

#[test]
fn seek_skips_chunks_and_respects_range() {
    let (tmp, lock) = setup();
    let s: Samples = (0..1000).map(|i| (i * 10, (i as f64).to_bits())).collect();
    let data = BTreeMap::from([(labels!("a" => "b"), s.clone())]);
    let dir = write(tmp.path(), 0, 10_000, &data, 100, &Default::default());
    let block = Block::open(&lock, &dir).unwrap();
    let sel = block.select(2_005, 7_000, &[]).unwrap();
    assert_eq!(sel.len(), 1);
    // Only the chunks overlapping the range are kept.
    assert_eq!(sel[0].chunks().len(), 6);
    let mut it = sel[0].samples();
    assert_eq!(it.seek(0), ValueType::Float);
    assert_eq!(it.at().0, 2_010);
    assert_eq!(it.seek(5_555), ValueType::Float);
    assert_eq!(it.at().0, 5_560);
    assert_eq!(it.seek(10), ValueType::Float);
    assert_eq!(it.at().0, 5_560);
    assert_eq!(it.next(), ValueType::Float);
    assert_eq!(it.at().0, 5_570);
    assert_eq!(it.seek(7_000), ValueType::Float);
    assert_eq!(it.at().0, 7_000);
    assert_eq!(it.next(), ValueType::None);
    assert_eq!(it.next(), ValueType::None);
    assert_eq!(it.seek(0), ValueType::None);
    assert_eq!(it.current_type(), ValueType::None);
}

/// Pins the matcher cases that matter most for Prometheus semantics.
#[test]
fn matcher_semantics() {
    let (tmp, lock) = setup();
    let sets = [
        labels!("__name__" => "up", "job" => "a"),
        labels!("__name__" => "up", "job" => "b", "env" => "prod"),
        labels!("__name__" => "up", "env" => "dev"),
        labels!("__name__" => "down", "job" => "a"),
    ];
    let data: BTreeMap<Labels, Samples> = sets.iter().map(|l| (l.clone(), vec![(1, 0)])).collect();
    let dir = write(tmp.path(), 0, 10, &data, 10, &Default::default());
    let block = Block::open(&lock, &dir).unwrap();
    let sel = |ms: &[Matcher]| -> Vec<Labels> {
        block
            .select(0, 10, ms)
            .unwrap()
            .iter()
            .map(|s| s.labels().clone())
            .collect()
    };
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    // A missing label matches "".
    assert_eq!(sel(&[m(MatchOp::Equal, "env", "")]).len(), 2);
    assert_eq!(sel(&[m(MatchOp::NotEqual, "env", "prod")]).len(), 3);
    assert_eq!(sel(&[m(MatchOp::Regex, "env", "prod|")]).len(), 3);
    assert_eq!(sel(&[m(MatchOp::NotRegex, "job", "a|b")]).len(), 1);
    assert_eq!(sel(&[m(MatchOp::Regex, "job", ".+")]).len(), 3);
    assert_eq!(sel(&[m(MatchOp::NotEqual, "job", "")]).len(), 3);
    assert_eq!(sel(&[m(MatchOp::Regex, "nope", ".*")]).len(), 4);
    assert_eq!(sel(&[m(MatchOp::Regex, "nope", ".+")]).len(), 0);
    assert_eq!(
        sel(&[
            m(MatchOp::Equal, "__name__", "up"),
            m(MatchOp::NotRegex, "job", "b.*")
        ])
        .len(),
        2
    );
}

fn label_sets() -> impl Strategy<Value = Vec<Labels>> {
    prop::collection::vec(
        prop::collection::vec(("[abc]", "[xyz]{0,2}"), 1..4).prop_map(Labels::from_pairs),
        1..25,
    )
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (
        "[abcd]",
        prop_oneof![
            Just(MatchOp::Equal),
            Just(MatchOp::NotEqual),
            Just(MatchOp::Regex),
            Just(MatchOp::NotRegex)
        ],
        prop_oneof![
            "[xyz]{0,2}",
            Just("x|y".to_string()),
            Just("x|".to_string()),
            Just(".*".to_string()),
            Just(".+".to_string()),
            Just("x.*".to_string()),
            Just("y.+".to_string()),
            Just(".*z".to_string()),
        ],
    )
        .prop_map(|(n, op, v)| Matcher::new(op, n, v).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The index gives exactly the series a naive scan gives, and label
    /// names and values agree with the scan too.
    #[test]
    fn prop_matchers_match_naive_scan(
        sets in label_sets(),
        ms in prop::collection::vec(matcher(), 0..3),
    ) {
        let (tmp, lock) = setup();
        let data: BTreeMap<Labels, Samples> = sets
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| (l.clone(), vec![(5, 1f64.to_bits())]))
            .collect();
        prop_assume!(!data.is_empty());
        let dir = write(tmp.path(), 0, 10, &data, 10, &Default::default());
        let block = Block::open(&lock, &dir).unwrap();
        let want: Vec<&Labels> = data
            .keys()
            .filter(|l| vigil_model::storage::matches_all(l, &ms))
            .collect();
        let got = block.select(0, 10, &ms).unwrap();
        let got: Vec<&Labels> = got.iter().map(|s| s.labels()).collect();
        prop_assert_eq!(&got, &want);

        let mut names: Vec<String> = want.iter().flat_map(|l| l.iter().map(|x| x.name.to_string())).collect();
        names.sort();
        names.dedup();
        let mut values: Vec<String> = want.iter().filter_map(|l| l.get("a").map(str::to_string)).collect();
        values.sort();
        values.dedup();
        if ms.is_empty() {
            prop_assert_eq!(block.label_names(&[]).unwrap(), names);
            prop_assert_eq!(block.label_values("a", &[]).unwrap(), values);
        } else {
            prop_assert_eq!(block.label_names(&ms).unwrap(), names);
            prop_assert_eq!(block.label_values("a", &ms).unwrap(), values);
        }
    }

    /// Cursors with seeks, ranges and tombstones agree with a model.
    #[test]
    fn prop_cursor_matches_model(
        seed in any::<u64>(),
        range in (0i64..1_000, 0i64..1_000),
        dels in prop::collection::vec((0i64..1_000, 0i64..200), 0..3),
        ops in prop::collection::vec(prop_oneof![Just(None), (0i64..1_100).prop_map(Some)], 1..30),
    ) {
        let (tmp, lock) = setup();
        let mut rng = Rng::new(seed);
        let s = samples(&mut rng, 0, 1_000, 300);
        let l = labels!("x" => "y");
        let data = BTreeMap::from([(l.clone(), s.clone())]);
        let per_chunk = rng.range(1, 40) as usize;
        let dir = write(tmp.path(), 0, 1_000, &data, per_chunk, &Default::default());
        let block = Block::open(&lock, &dir).unwrap();
        for &(a, len) in &dels {
            block.delete(a, a + len, &[]).unwrap();
        }
        let deleted = |t: i64| dels.iter().any(|&(a, len)| a <= t && t <= a + len);
        let (mint, maxt) = (range.0.min(range.1), range.0.max(range.1));
        let model: Vec<(i64, u64)> = s
            .iter()
            .copied()
            .filter(|&(t, _)| mint <= t && t <= maxt && !deleted(t))
            .collect();
        let sel = block.select(mint, maxt, &[]).unwrap();
        let Some(series) = sel.first() else {
            prop_assert!(model.is_empty());
            return Ok(());
        };
        let mut it = series.samples();
        let mut pos: Option<usize> = None; // index into model of the current sample
        let mut ended = false;
        for op in ops {
            let got = match op {
                None => it.next(),
                Some(t) => it.seek(t),
            };
            if !ended {
                let next = match (op, pos) {
                    (None, None) => 0,
                    (None, Some(p)) => p + 1,
                    (Some(t), p) => {
                        let from = p.unwrap_or(0);
                        if p.is_some_and(|p| model[p].0 >= t) {
                            from
                        } else {
                            from + model[from..].partition_point(|&(x, _)| x < t)
                        }
                    }
                };
                if next < model.len() {
                    pos = Some(next);
                } else {
                    ended = true;
                }
            }
            if ended {
                prop_assert_eq!(got, ValueType::None);
            } else {
                prop_assert_eq!(got, ValueType::Float);
                let (t, v) = it.at();
                let p = pos.unwrap();
                prop_assert_eq!((t, v.to_bits()), model[p]);
            }
        }
        prop_assert!(it.err().is_none());
    }
}

#[test]
fn tombstones_hide_data_and_survive_reopen() {
    let (tmp, lock) = setup();
    let mut data = BTreeMap::new();
    for i in 0..10 {
        let s: Samples = (0..100).map(|t| (t * 10, (t as f64).to_bits())).collect();
        data.insert(
            labels!("__name__" => "m".to_string(), "i" => i.to_string()),
            s,
        );
    }
    let dir = write(tmp.path(), 0, 1_000, &data, 30, &Default::default());
    let block = Block::open(&lock, &dir).unwrap();
    let m = [Matcher::new(MatchOp::Regex, "i", "1|2").unwrap()];
    assert_eq!(block.delete(100, 199, &m).unwrap(), 2);
    // Whole series 3 goes.
    assert_eq!(
        block
            .delete(i64::MIN, i64::MAX, &[Matcher::equal("i", "3")])
            .unwrap(),
        1
    );
    // Outside the block: nothing.
    assert_eq!(block.delete(5_000, 6_000, &[]).unwrap(), 0);
    let check = |block: &Block| {
        let got = read(block, 0, 1_000, &[]);
        assert_eq!(got.len(), 9);
        assert!(!got.contains_key(&labels!("__name__" => "m", "i" => "3")));
        let one = &got[&labels!("__name__" => "m", "i" => "1")];
        assert_eq!(one.len(), 90);
        assert!(one.iter().all(|&(t, _)| !(100..=199).contains(&t)));
        assert_eq!(got[&labels!("__name__" => "m", "i" => "0")].len(), 100);
        assert_eq!(block.meta().stats.num_tombstones, 3);
        assert_eq!(block.tombstones().num_intervals(), 3);
    };
    check(&block);
    let before = block.meta();
    drop(block);
    let block = Block::open(&lock, &dir).unwrap();
    check(&block);
    assert_eq!(block.meta(), before);
    // Deleting the same again changes nothing on disk.
    let tomb = fs::read(dir.join(TOMBSTONES_FILE)).unwrap();
    block.delete(100, 199, &m).unwrap();
    assert_eq!(fs::read(dir.join(TOMBSTONES_FILE)).unwrap(), tomb);
    assert!(!dir.join("tombstones.tmp").exists());
}

/// A block of the compaction model: its data and its deletions.
type ModelBlock = (BTreeMap<Labels, Samples>, Vec<(Labels, i64, i64)>);

/// The expected result of compacting `blocks` (in order): per series the
/// union of the non-deleted samples, the first block winning ties.
fn model_union(blocks: &[ModelBlock]) -> BTreeMap<Labels, Samples> {
    let mut out: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
    for (data, dels) in blocks {
        for (l, s) in data {
            let e = out.entry(l.clone()).or_default();
            for &(t, v) in s {
                let deleted = dels.iter().any(|(dl, a, b)| dl == l && *a <= t && t <= *b);
                if !deleted {
                    e.entry(t).or_insert(v);
                }
            }
        }
    }
    out.into_iter()
        .map(|(l, m)| (l, m.into_iter().collect::<Samples>()))
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

fn pool() -> Vec<Labels> {
    (0..8)
        .map(|i| labels!("__name__" => format!("m{}", i % 3), "k" => format!("v{i}")))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Compacting three blocks (adjacent or overlapping, with tombstones)
    /// gives exactly the union of their visible samples, bit for bit.
    #[test]
    fn prop_compaction_equals_union(seed in any::<u64>(), overlap in any::<bool>(), deletes in any::<bool>()) {
        let (tmp, lock) = setup();
        let mut rng = Rng::new(seed);
        let pool = pool();
        let range = 1_000;
        let mut blocks = Vec::new();
        let mut dirs = Vec::new();
        for k in 0..3 {
            let lo = k * range - if overlap && k > 0 { rng.range(0, range) } else { 0 };
            let hi = (k + 1) * range;
            let mut data = BTreeMap::new();
            for l in &pool {
                if rng.range(0, 3) > 0 {
                    data.insert(l.clone(), samples(&mut rng, lo, hi, 200));
                }
            }
            if data.is_empty() {
                data.insert(pool[0].clone(), samples(&mut rng, lo, hi, 10));
            }
            let per_chunk = rng.range(1, 60) as usize;
            let dir = write(tmp.path(), lo, hi, &data, per_chunk, &Default::default());
            let block = Block::open(&lock, &dir).unwrap();
            let mut dels = Vec::new();
            if deletes {
                for _ in 0..rng.range(0, 3) {
                    let l = &pool[rng.range(0, pool.len() as i64 - 1) as usize];
                    let a = rng.range(lo, hi);
                    let b = a + rng.range(0, 400);
                    let m: Vec<Matcher> = l.iter().map(|x| Matcher::equal(x.name, x.value)).collect();
                    block.delete(a, b, &m).unwrap();
                    // Deletion clips to the block's range.
                    dels.push((l.clone(), a.max(lo), b.min(hi - 1)));
                }
            }
            blocks.push((data, dels));
            dirs.push(block);
        }
        let want = model_union(&blocks);
        let refs: Vec<&Block> = dirs.iter().collect();
        let opts = BlockWriterOptions::default().with_max_segment_size(4096);
        let meta = compact_with_options(tmp.path(), &refs, &opts).unwrap();
        let Some(meta) = meta else {
            prop_assert!(want.is_empty());
            return Ok(());
        };
        prop_assert_eq!(meta.compaction.level, 2);
        let mut sources: Vec<Ulid> = dirs.iter().map(|b| b.ulid()).collect();
        sources.sort();
        prop_assert_eq!(&meta.compaction.sources, &sources);
        prop_assert_eq!(meta.min_time, dirs.iter().map(|b| b.meta().min_time).min().unwrap());
        prop_assert_eq!(meta.max_time, 3 * range);
        let merged = Block::open(&lock, tmp.path().join(meta.ulid.to_string())).unwrap();
        let got = non_empty(read(&merged, i64::MIN, i64::MAX, &[]));
        prop_assert_eq!(&got, &want);
        let n: usize = want.values().map(Vec::len).sum();
        prop_assert_eq!(merged.meta().stats.num_samples, n as u64);
        prop_assert_eq!(merged.meta().stats.num_series, want.len() as u64);
        prop_assert!(merged.tombstones().is_empty());
    }
}

#[test]
fn compaction_copies_untouched_chunks_byte_for_byte() {
    let (tmp, lock) = setup();
    let mut rng = Rng::new(7);
    let mut blocks = Vec::new();
    for k in 0..3i64 {
        let data: BTreeMap<Labels, Samples> = pool()
            .into_iter()
            .map(|l| (l, samples(&mut rng, k * 1_000, (k + 1) * 1_000, 300)))
            .collect();
        let dir = write(
            tmp.path(),
            k * 1_000,
            (k + 1) * 1_000,
            &data,
            50,
            &Default::default(),
        );
        blocks.push(Block::open(&lock, &dir).unwrap());
    }
    let chunk_bytes = |b: &Block| -> Vec<Vec<u8>> {
        b.chunk_series(&[])
            .unwrap()
            .flat_map(|s| s.unwrap().chunks)
            .map(|c| b.chunk(c.chunk_ref).unwrap().to_vec())
            .collect()
    };
    let mut want: Vec<Vec<u8>> = blocks.iter().flat_map(chunk_bytes).collect();
    let refs: Vec<&Block> = blocks.iter().collect();
    let meta = compact(tmp.path(), &refs).unwrap().unwrap();
    let merged = Block::open(&lock, tmp.path().join(meta.ulid.to_string())).unwrap();
    let mut got = chunk_bytes(&merged);
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let stats: u64 = blocks.iter().map(|b| b.meta().stats.num_chunks).sum();
    assert_eq!(merged.meta().stats.num_chunks, stats);
}

#[test]
fn fully_deleted_blocks_compact_to_nothing() {
    let (tmp, lock) = setup();
    let data = BTreeMap::from([
        (labels!("a" => "1"), vec![(5, 0)]),
        (labels!("a" => "2"), vec![(6, 0)]),
    ]);
    let dir = write(tmp.path(), 0, 10, &data, 10, &Default::default());
    let block = Block::open(&lock, &dir).unwrap();
    block.delete(0, 10, &[]).unwrap();
    assert!(read(&block, 0, 10, &[]).is_empty());
    assert_eq!(compact(tmp.path(), &[&block]).unwrap(), None);
    // Only the parent is left; no temporary directory.
    assert_eq!(list_blocks(tmp.path()).unwrap().len(), 1);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 2); // block + LOCK
    delete_block_dir(&dir).unwrap();
    assert!(list_blocks(tmp.path()).unwrap().is_empty());
    // The open block still reads (the files are unlinked, not unmapped).
    assert_eq!(block.label_values("a", &[]).unwrap(), vec!["1", "2"]);
}

fn meta_at(min: i64, max: i64) -> BlockMeta {
    let id = Ulid::new();
    BlockMeta {
        ulid: id,
        min_time: min,
        max_time: max,
        stats: BlockStats {
            num_series: 10,
            ..Default::default()
        },
        compaction: CompactionMeta {
            level: 1,
            sources: vec![id],
        },
        version: META_VERSION,
    }
}

#[test]
fn ranges() {
    const H: i64 = 3_600_000;
    let r = exponential_ranges(2 * H, 10, 3);
    assert_eq!(&r[..4], &[2 * H, 6 * H, 18 * H, 54 * H]);
    // 15 days of retention: at most 36h blocks.
    assert_eq!(cap_ranges(&r, 15 * 24 * H), vec![2 * H, 6 * H, 18 * H]);
    // Long retention: capped at 31 days.
    let capped = cap_ranges(&r, 10 * 365 * 24 * H);
    assert_eq!(*capped.last().unwrap(), 486 * H);
    assert_eq!(cap_ranges(&r, 1), vec![2 * H]);
    assert_eq!(exponential_ranges(i64::MAX / 2, 3, 3)[2], i64::MAX);
}

/// Planner cases after Prometheus's `TestLeveledCompactor_plan`.
#[test]
fn plan_cases() {
    let ranges = [20, 60, 180, 540, 1620];
    let ids = |ms: &[BlockMeta], idx: &[usize]| -> Option<Vec<Ulid>> {
        Some(idx.iter().map(|&i| ms[i].ulid).collect())
    };
    assert_eq!(plan(&[], &ranges), None);
    let one = [meta_at(0, 20)];
    assert_eq!(plan(&one, &ranges), None);
    // The newest block is left out: two are not enough for 60.
    let ms = [meta_at(0, 20), meta_at(20, 40)];
    assert_eq!(plan(&ms, &ranges), None);
    let ms = [meta_at(0, 20), meta_at(20, 40), meta_at(40, 60)];
    assert_eq!(plan(&ms, &ranges), None);
    let ms = [
        meta_at(0, 20),
        meta_at(20, 40),
        meta_at(40, 60),
        meta_at(60, 80),
    ];
    assert_eq!(plan(&ms, &ranges), ids(&ms, &[0, 1, 2]));
    // Input order does not matter.
    let mut rev = ms.clone();
    rev.reverse();
    assert_eq!(plan(&rev, &ranges), ids(&ms, &[0, 1, 2]));
    // A gap: the group before the newest block is taken once it ends
    // before the newest block's start.
    let ms = [meta_at(0, 20), meta_at(40, 60), meta_at(120, 140)];
    assert_eq!(plan(&ms, &ranges), ids(&ms, &[0, 1]));
    // Bigger ranges next.
    let ms = [
        meta_at(0, 60),
        meta_at(60, 120),
        meta_at(120, 180),
        meta_at(180, 200),
    ];
    assert_eq!(plan(&ms, &ranges), ids(&ms, &[0, 1, 2]));
    // Overlapping blocks come first, including the newest.
    let ms = [meta_at(0, 20), meta_at(20, 40), meta_at(30, 50)];
    assert_eq!(plan(&ms, &ranges), ids(&ms, &[1, 2]));
    let ms = [
        meta_at(0, 20),
        meta_at(10, 40),
        meta_at(40, 60),
        meta_at(30, 35),
    ];
    assert_eq!(plan(&ms, &ranges), ids(&ms, &[0, 1, 3]));
    // Tombstones: a big block with >5% of its series deleted alone.
    let mut big = meta_at(0, 540);
    big.stats.num_tombstones = 2;
    let ms = [big, meta_at(540, 560)];
    assert_eq!(plan(&ms, &ranges), ids(&ms, &[0]));
    // A small block only when wholly deleted.
    let mut small = meta_at(0, 20);
    small.stats.num_tombstones = 2;
    let ms = [small.clone(), meta_at(20, 40)];
    assert_eq!(plan(&ms, &ranges), None);
    small.stats.num_tombstones = 10;
    let ms = [small, meta_at(20, 40)];
    assert_eq!(plan(&ms, &ranges), ids(&ms, &[0]));
}

fn arbitrary_meta() -> impl Strategy<Value = BlockMeta> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<u64>(),
        any::<u64>(),
        1u32..5,
    )
        .prop_map(|(a, b, series, tombstones, level)| {
            let mut m = meta_at(a.min(b), a.max(b));
            m.stats.num_series = series;
            m.stats.num_tombstones = tombstones;
            m.compaction.level = level;
            m
        })
}

proptest! {
    /// The planner never panics and only returns blocks it was given.
    #[test]
    fn prop_plan_is_total(
        metas in prop::collection::vec(arbitrary_meta(), 0..8),
        ranges in prop::collection::vec(any::<i64>(), 0..5),
        small in prop::collection::vec((0i64..20, 1i64..4), 0..8),
    ) {
        let ranges_small = exponential_ranges(2, 5, 3);
        let smalls: Vec<BlockMeta> = small.iter().map(|&(a, l)| meta_at(a, a + l)).collect();
        for (ms, rs) in [(&metas, &ranges), (&smalls, &ranges_small)] {
            if let Some(p) = plan(ms, rs) {
                prop_assert!(!p.is_empty());
                for id in &p {
                    prop_assert!(ms.iter().any(|m| m.ulid == *id));
                }
            }
        }
    }
}

#[test]
fn bogus_references_are_errors() {
    let (tmp, lock) = setup();
    let dir = small_block(tmp.path());
    let block = Block::open(&lock, &dir).unwrap();
    for r in [u64::MAX, 1 << 40, 3] {
        let e = block.chunks_for(BlockSeriesRef::from_u64(r)).unwrap_err();
        assert!(e.is_corruption(), "{e}");
    }
    for r in [u64::MAX, 0, 1 << 32, (1 << 32) | 0xffff_ffff] {
        let e = block.chunk(ChunkRef::from_u64(r)).unwrap_err();
        assert!(e.is_corruption(), "{e}");
    }
}

#[test]
fn empty_block() {
    let (tmp, lock) = setup();
    let meta = write_block(tmp.path(), 0, 10, Vec::<(Labels, Vec<ChunkMeta>)>::new()).unwrap();
    assert_eq!(meta.stats, BlockStats::default());
    let block = Block::open(&lock, tmp.path().join(meta.ulid.to_string())).unwrap();
    assert!(block.select(0, 10, &[]).unwrap().is_empty());
    assert!(block.label_names(&[]).unwrap().is_empty());
    assert_eq!(block.delete(0, 10, &[]).unwrap(), 0);
    assert_eq!(compact(tmp.path(), &[&block]).unwrap(), None);
}

#[test]
fn writer_rejects_bad_input() {
    let (tmp, _lock) = setup();
    let chunk = |a: i64, b: i64| chunks_of(&[(a, 0), (b, 0)], 2, Encoding::Adaptive).remove(0);
    let mut w = BlockWriter::new(tmp.path(), 0, 100).unwrap();
    let l1 = labels!("a" => "1");
    let l2 = labels!("a" => "2");
    w.add_series(&l2, &[chunk(1, 2)]).unwrap();
    let err = |r: Result<(), BlockError>| match r {
        Err(BlockError::Input(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        err(w.add_series(&l1, &[chunk(3, 4)])),
        InputError::SeriesOutOfOrder { .. }
    ));
    assert!(matches!(
        err(w.add_series(&l2, &[chunk(3, 4)])),
        InputError::SeriesOutOfOrder { .. }
    ));
    let l3 = labels!("a" => "3");
    assert!(matches!(
        err(w.add_series(&l3, &[chunk(5, 6), chunk(6, 7)])),
        InputError::ChunkOutOfOrder { .. }
    ));
    assert!(matches!(
        err(w.add_series(&l3, &[chunk(50, 100)])),
        InputError::ChunkOutsideBlock { .. }
    ));
    let bad = ChunkMeta {
        mint: 1,
        maxt: 2,
        data: vec![9, 0, 1],
    };
    assert!(matches!(
        err(w.add_series(&l3, &[bad])),
        InputError::BadChunk { .. }
    ));
    let empty = ChunkMeta {
        mint: 1,
        maxt: 2,
        data: ChunkEncoder::new(Encoding::Xor).into_bytes(),
    };
    assert!(matches!(
        err(w.add_series(&l3, &[empty])),
        InputError::BadChunk { .. }
    ));
    assert!(matches!(
        err(w.add_series(&Labels::empty(), &[chunk(1, 2)])),
        InputError::EmptyLabels
    ));
    // The writer is still usable after input errors.
    w.add_series(&l3, &[chunk(5, 6)]).unwrap();
    assert_eq!(w.stats().num_series, 2);
    assert!(matches!(
        BlockWriter::new(tmp.path(), 5, 5),
        Err(BlockError::Input(InputError::EmptyRange { .. }))
    ));
}

#[test]
fn leftovers_are_cleaned_up() {
    let (tmp, _lock) = setup();
    let p = tmp.path();
    // A writer that is dropped unfinished removes its directory.
    let w = BlockWriter::new(p, 0, 10).unwrap();
    let tmp_dir = p.join(format!("{}{TMP_FOR_CREATION}", w.ulid()));
    assert!(tmp_dir.is_dir());
    drop(w);
    assert!(!tmp_dir.exists());
    // A crash (simulated by forgetting the writer) leaves it behind.
    let mut w = BlockWriter::new(p, 0, 10).unwrap();
    w.add_series(
        &labels!("a" => "b"),
        &chunks_of(&[(1, 0)], 1, Encoding::Xor),
    )
    .unwrap();
    let crashed = p.join(format!("{}{TMP_FOR_CREATION}", w.ulid()));
    std::mem::forget(w);
    assert!(crashed.is_dir());
    let deleting = p.join(format!("{}{TMP_FOR_DELETION}", Ulid::new()));
    fs::create_dir(&deleting).unwrap();
    let stray_file = p.join(format!("{}.tmp", Ulid::new()));
    fs::write(&stray_file, b"x").unwrap();
    // Things that are not block leftovers stay.
    let keep = [
        p.join("wal"),
        p.join("checkpoint.00000001.tmp"),
        p.join("ünïcødé.tmp"),
    ];
    for k in &keep {
        fs::create_dir(k).unwrap();
    }
    let data = BTreeMap::from([(labels!("a" => "b"), vec![(1, 0)])]);
    let block = write(p, 0, 10, &data, 1, &Default::default());

    let mut removed = cleanup_tmp(p).unwrap();
    removed.sort();
    let mut want = vec![crashed, deleting, stray_file];
    want.sort();
    assert_eq!(removed, want);
    for k in keep.iter().chain([&block]) {
        assert!(k.exists(), "{k:?}");
    }
    assert_eq!(list_blocks(p).unwrap().len(), 1);
    assert!(cleanup_tmp(p).unwrap().is_empty());
}

/// A small block for the damage tests: a copy of one written once.
fn small_block(parent: &Path) -> PathBuf {
    static TEMPLATE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_keep, src) = TEMPLATE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(3);
        let data: BTreeMap<Labels, Samples> = pool()
            .into_iter()
            .map(|l| (l, samples(&mut rng, 0, 1_000, 200)))
            .collect();
        let dir = write(tmp.path(), 0, 1_000, &data, 40, &Default::default());
        (tmp, dir)
    });
    let dst = parent.join(src.file_name().unwrap());
    copy_dir(src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), to).unwrap();
        }
    }
}

/// Reads everything; returns the first error, checking that no panic
/// happens on the way.
fn read_everything(block: &Block) -> Result<usize, vigil_model::StorageError> {
    let mut n = 0;
    let ms = [Matcher::new(MatchOp::Regex, "k", "v.*").unwrap()];
    for ms in [&[][..], &ms[..], &[Matcher::equal("__name__", "m1")][..]] {
        for s in block.select(i64::MIN, i64::MAX, ms)? {
            let mut it = s.iter();
            while it.next() == ValueType::Float {
                n += 1;
            }
            if let Some(e) = it.err() {
                return Err(e);
            }
            let mut it = s.iter();
            it.seek(500);
        }
        block.label_names(ms)?;
        block.label_values("k", ms)?;
    }
    Ok(n)
}

#[test]
fn small_block_reads() {
    let (tmp, lock) = setup();
    let dir = small_block(tmp.path());
    let block = Block::open(&lock, &dir).unwrap();
    read_everything(&block).unwrap();
}

#[test]
fn truncated_chunk_segment_is_a_clear_error() {
    let (tmp, lock) = setup();
    let dir = small_block(tmp.path());
    let seg = dir.join(CHUNKS_DIR).join("000001");
    let len = fs::metadata(&seg).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let block = Block::open(&lock, &dir).unwrap();
    let err = read_everything(&block).unwrap_err();
    match err {
        vigil_model::StorageError::Corruption { path, what, .. } => {
            assert_eq!(path, seg);
            assert!(what.contains("chunk"), "{what}");
        }
        other => panic!("{other}"),
    }
    // Compaction refuses the damaged block.
    let e = compact(tmp.path(), &[&block]).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(list_blocks(tmp.path()).unwrap().len() == 1);
    // The failed compaction removed its temporary directory.
    assert!(cleanup_tmp(tmp.path()).unwrap().is_empty());
    // Shorter than the segment header: refused at open.
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(3).unwrap();
    drop(f);
    drop(block);
    let e = Block::open(&lock, &dir).unwrap_err();
    assert!(
        matches!(&e, BlockError::Corruption { file, offset: 0, .. } if *file == seg),
        "{e}"
    );
}

#[test]
fn damaged_chunk_bytes_fail_their_crc() {
    let (tmp, lock) = setup();
    let dir = small_block(tmp.path());
    let seg = dir.join(CHUNKS_DIR).join("000001");
    let mut b = fs::read(&seg).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x40;
    fs::write(&seg, &b).unwrap();
    let block = Block::open(&lock, &dir).unwrap();
    match read_everything(&block).unwrap_err() {
        vigil_model::StorageError::Corruption { what, .. } => {
            assert_eq!(what, "chunk checksum mismatch")
        }
        other => panic!("{other}"),
    }
}

#[test]
fn flipped_index_bits_are_caught_at_open() {
    let (tmp, lock) = setup();
    let dir = small_block(tmp.path());
    let path = dir.join(INDEX_FILE);
    let good = fs::read(&path).unwrap();
    for i in (0..good.len()).step_by(7) {
        let mut b = good.clone();
        b[i] ^= 1 << (i % 8);
        fs::write(&path, &b).unwrap();
        let e = Block::open(&lock, &dir).unwrap_err();
        assert!(e.is_corruption(), "byte {i}: {e}");
        match &e {
            BlockError::Corruption { file, .. } => assert_eq!(file, &path),
            BlockError::UnsupportedVersion { file, .. } => assert_eq!(file, &path),
            other => panic!("{other}"),
        }
    }
    fs::write(&path, &good[..good.len() - 1]).unwrap();
    assert!(Block::open(&lock, &dir).unwrap_err().is_corruption());
    fs::write(&path, b"").unwrap();
    assert!(Block::open(&lock, &dir).unwrap_err().is_corruption());
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        Block::open(&lock, &dir),
        Err(BlockError::Mmap(_) | BlockError::Io { .. })
    ));
}

#[test]
fn damaged_meta_is_a_clear_error() {
    let (tmp, lock) = setup();
    let dir = small_block(tmp.path());
    let path = dir.join(META_FILE);
    let good = fs::read_to_string(&path).unwrap();
    fs::write(&path, &good[..good.len() / 2]).unwrap();
    let e = Block::open(&lock, &dir).unwrap_err();
    assert!(
        matches!(&e, BlockError::MetaJson { path: p, .. } if *p == path),
        "{e}"
    );
    let storage: vigil_model::StorageError = e.into();
    assert!(matches!(
        storage,
        vigil_model::StorageError::Corruption { .. }
    ));
    fs::write(&path, good.replace("\"minTime\": 0", "\"minTime\": 5000")).unwrap();
    assert!(matches!(
        Block::open(&lock, &dir),
        Err(BlockError::InvalidMeta { .. })
    ));
    fs::write(&path, b"\x00\xff").unwrap();
    assert!(matches!(
        Block::open(&lock, &dir),
        Err(BlockError::MetaJson { .. })
    ));
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        Block::open(&lock, &dir),
        Err(BlockError::Io { .. })
    ));
}

#[test]
fn damaged_tombstones_are_a_clear_error() {
    let (tmp, lock) = setup();
    let dir = small_block(tmp.path());
    let path = dir.join(TOMBSTONES_FILE);
    let mut b = fs::read(&path).unwrap();
    b[5] ^= 1;
    fs::write(&path, &b).unwrap();
    let e = Block::open(&lock, &dir).unwrap_err();
    assert!(
        matches!(&e, BlockError::Corruption { file, .. } if *file == path),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random damage to the index never panics: with checksums the damage
    /// is refused at open; without them (to reach the decoders) every read
    /// either works or returns an error.
    #[test]
    fn prop_index_damage_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (tmp, lock) = setup();
        let dir = small_block(tmp.path());
        let path = dir.join(INDEX_FILE);
        let mut b = fs::read(&path).unwrap();
        let good = b.clone();
        for (i, x) in &edits {
            let i = i.index(b.len());
            b[i] = *x;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len()));
        }
        fs::write(&path, &b).unwrap();
        match Block::open(&lock, &dir) {
            Ok(block) => {
                prop_assert_eq!(&b, &good);
                read_everything(&block).unwrap();
            }
            Err(e) => prop_assert!(e.is_corruption(), "{}", e),
        }
        if let Ok(block) = Block::open_with(&lock, &dir, false) {
            let _ = read_everything(&block);
            if let Ok(it) = block.chunk_series(&[]) {
                for s in it.flatten() {
                    for c in s.chunks {
                        let _ = block.chunk(c.chunk_ref);
                    }
                }
            }
            let _ = compact(tmp.path(), &[&block]);
            let _ = block.delete(0, 100, &[Matcher::equal("k", "v1")]);
        }
    }
}

/// Realistic node_exporter-like data: 10k series × 480 samples (2 h at a
/// 15 s interval with ±2 ms jitter), chunks of 120 samples. Prints the
/// block's size split into index and chunks.
///
/// `cargo test -p vigil-tsdb --release block::tests::bytes_per_sample -- --ignored --nocapture`
#[test]
#[ignore]
fn bytes_per_sample() {
    for enc in Encoding::ALL {
        let (tmp, lock) = setup();
        let (series, samples) = realistic(tmp.path(), enc, 10_000, 480);
        let block = Block::open(&lock, &series).unwrap();
        let size = block.size();
        let n = samples as f64;
        let meta = block.meta();
        println!(
            "{enc:?}: {} series, {} samples, {} chunks",
            meta.stats.num_series, meta.stats.num_samples, meta.stats.num_chunks
        );
        println!(
            "  index {} B ({:.3} B/sample, {:.1} B/series), chunks {} B ({:.3} B/sample), \
             tombstones {} B, meta {} B, total {:.3} B/sample",
            size.index,
            size.index as f64 / n,
            size.index as f64 / meta.stats.num_series as f64,
            size.chunks,
            size.chunks as f64 / n,
            size.tombstones,
            size.meta,
            size.total() as f64 / n,
        );
        let t = std::time::Instant::now();
        let all = read(&block, i64::MIN, i64::MAX, &[]);
        let read_time = t.elapsed();
        assert_eq!(all.values().map(Vec::len).sum::<usize>(), samples);
        let t = std::time::Instant::now();
        let sel = block
            .select(
                i64::MIN,
                i64::MAX,
                &[
                    Matcher::equal("__name__", "node_cpu_seconds_total"),
                    Matcher::equal("mode", "idle"),
                ],
            )
            .unwrap();
        println!(
            "  decode all: {:.1} ns/sample; select cpu idle: {} series in {:?}",
            read_time.as_nanos() as f64 / n,
            sel.len(),
            t.elapsed()
        );
    }
}

/// Writes a block of node_exporter-like series; returns its directory and
/// the number of samples.
fn realistic(parent: &Path, enc: Encoding, n_series: usize, n_samples: usize) -> (PathBuf, usize) {
    #[derive(Clone, Copy)]
    enum Kind {
        Cpu(f64),
        Bytes,
        Gauge2dp,
        Constant(f64),
        Memory,
    }
    let mut templates: Vec<(Vec<(&str, String)>, Kind)> = Vec::new();
    let modes = [
        ("idle", 0.90),
        ("user", 0.05),
        ("system", 0.02),
        ("iowait", 0.005),
        ("irq", 0.001),
        ("softirq", 0.003),
        ("steal", 0.0),
        ("nice", 0.0),
    ];
    for cpu in 0..8 {
        for (mode, util) in modes {
            templates.push((
                vec![
                    ("__name__", "node_cpu_seconds_total".into()),
                    ("cpu", cpu.to_string()),
                    ("mode", mode.into()),
                ],
                Kind::Cpu(util),
            ));
        }
    }
    for dev in ["eth0", "eth1", "lo", "docker0"] {
        for m in [
            "receive_bytes",
            "transmit_bytes",
            "receive_packets",
            "transmit_packets",
        ] {
            templates.push((
                vec![
                    ("__name__", format!("node_network_{m}_total")),
                    ("device", dev.into()),
                ],
                Kind::Bytes,
            ));
        }
    }
    for dev in ["sda", "sdb", "nvme0n1"] {
        for m in [
            "read_bytes_total",
            "written_bytes_total",
            "reads_completed_total",
            "writes_completed_total",
        ] {
            templates.push((
                vec![
                    ("__name__", format!("node_disk_{m}")),
                    ("device", dev.into()),
                ],
                Kind::Bytes,
            ));
        }
    }
    for m in [
        "MemFree",
        "MemAvailable",
        "Cached",
        "Buffers",
        "Active",
        "Inactive",
        "Dirty",
        "Shmem",
    ] {
        templates.push((
            vec![("__name__", format!("node_memory_{m}_bytes"))],
            Kind::Memory,
        ));
    }
    for (mp, dev) in [("/", "sda1"), ("/boot", "sda2"), ("/var", "sdb1")] {
        for m in ["avail_bytes", "free_bytes", "size_bytes"] {
            templates.push((
                vec![
                    ("__name__", format!("node_filesystem_{m}")),
                    ("device", dev.into()),
                    ("fstype", "ext4".into()),
                    ("mountpoint", mp.into()),
                ],
                if m == "size_bytes" {
                    Kind::Constant(1.073741824e11)
                } else {
                    Kind::Memory
                },
            ));
        }
    }
    for m in ["load1", "load5", "load15"] {
        templates.push((vec![("__name__", format!("node_{m}"))], Kind::Gauge2dp));
    }
    for s in 0..4 {
        templates.push((
            vec![
                ("__name__", "node_hwmon_temp_celsius".into()),
                ("chip", "coretemp".into()),
                ("sensor", format!("temp{s}")),
            ],
            Kind::Gauge2dp,
        ));
    }
    templates.push((vec![("__name__", "up".into())], Kind::Constant(1.0)));
    templates.push((
        vec![("__name__", "node_boot_time_seconds".into())],
        Kind::Constant(1.699123456e9),
    ));
    let per_host = templates.len();
    let hosts = n_series.div_ceil(per_host);

    let mut rng = Rng::new(42);
    let block_start: i64 = 1_700_000_000_000 / 7_200_000 * 7_200_000;
    let mut all: Vec<(Labels, Vec<(i64, f64)>)> = Vec::with_capacity(n_series);
    'outer: for h in 0..hosts {
        let instance = format!("10.0.{}.{}:9100", h / 250, h % 250);
        let offset = rng.range(2, 14_000);
        for (labels, kind) in &templates {
            if all.len() == n_series {
                break 'outer;
            }
            let mut pairs = labels.clone();
            pairs.push(("instance", instance.clone()));
            pairs.push(("job", "node".into()));
            let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_str())));
            let ts: Vec<i64> = (0..n_samples as i64)
                .map(|i| block_start + offset + i * 15_000 + rng.range(-2, 2))
                .collect();
            let mut state = rng.range(1_000_000, 100_000_000);
            let rate = 10f64.powf(1.0 + rng.unit() * 5.0);
            let vals: Vec<f64> = (0..n_samples)
                .map(|_| match *kind {
                    Kind::Cpu(util) => {
                        let v = state as f64 / 100.0;
                        let mean = util * 1500.0;
                        state += (mean + rng.normal() * mean.sqrt()).round().max(0.0) as i64;
                        v
                    }
                    Kind::Bytes => {
                        let v = state as f64;
                        state += (rate * 15.0 * (1.0 + 0.5 * rng.normal()).max(0.0)) as i64;
                        v
                    }
                    Kind::Memory => {
                        let v = (state * 4096) as f64;
                        state += rng.range(-200, 200);
                        v
                    }
                    Kind::Gauge2dp => {
                        let v = (state % 10_000) as f64 / 100.0;
                        state += rng.range(-20, 20);
                        v
                    }
                    Kind::Constant(c) => c,
                })
                .collect();
            all.push((l, ts.into_iter().zip(vals).collect()));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut w = BlockWriter::new(parent, block_start, block_start + 7_200_000).unwrap();
    let mut total = 0;
    for (l, s) in &all {
        total += s.len();
        let chunks: Vec<ChunkMeta> = s
            .chunks(120)
            .map(|part| {
                let mut e = ChunkEncoder::new(enc);
                for &(t, v) in part {
                    e.append(t, v).unwrap();
                }
                ChunkMeta {
                    mint: part[0].0,
                    maxt: part[part.len() - 1].0,
                    data: e.into_bytes(),
                }
            })
            .collect();
        w.add_series(l, &chunks).unwrap();
    }
    let meta = w.finish().unwrap();
    (parent.join(meta.ulid.to_string()), total)
}
