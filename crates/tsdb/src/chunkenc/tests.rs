//! Round-trip, robustness and compression tests for every encoding.

use super::testdata::{self, Kind};
use super::*;
use proptest::prelude::*;

/// Encodes `samples`, then checks that every way of reading them back gives
/// the same bits: `decode_all`, a cursor, and seeks. Returns the chunk.
fn check_round_trip(enc: Encoding, samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = ChunkEncoder::new(enc);
    for &(t, v) in samples {
        e.append(t, v).expect("room for the sample");
    }
    assert_eq!(usize::from(e.num_samples()), samples.len());
    assert_eq!(e.encoding(), enc);
    assert_eq!(e.len_bytes(), e.bytes().len());
    assert_eq!(
        e.last_sample().map(|(t, v)| (t, v.to_bits())),
        samples.last().map(|&(t, v)| (t, v.to_bits()))
    );
    let bytes = e.bytes().to_vec();
    assert_eq!(e.into_bytes(), bytes);
    assert_eq!(
        Header::parse(&bytes),
        Ok(Header {
            encoding: enc,
            num_samples: samples.len() as u16
        })
    );

    let decoded = decode_all(&bytes).expect("valid chunk");
    assert_same(&decoded, samples);

    // The cursor, and that it stays exhausted.
    let mut it = ChunkIter::new(&bytes[..]);
    for &(t, v) in samples {
        assert!(it.next());
        let (gt, gv) = it.at();
        assert_eq!((gt, gv.to_bits()), (t, v.to_bits()));
    }
    assert!(!it.next());
    assert!(!it.next());
    assert_eq!(it.err(), None);

    // Seek to every timestamp of a strictly increasing series.
    if samples.windows(2).all(|w| w[0].0 < w[1].0) {
        let mut it = ChunkIter::new(bytes.clone());
        for &(t, v) in samples.iter().step_by(7) {
            assert!(it.seek(t));
            assert_eq!(it.at().0, t);
            assert_eq!(it.at().1.to_bits(), v.to_bits());
            // Seeking backwards stays put.
            assert!(it.seek(i64::MIN));
            assert_eq!(it.at().0, t);
        }
        if let Some(&(last, _)) = samples.last() {
            if last < i64::MAX {
                assert!(!it.seek(last + 1));
            }
        }
        // From a fresh cursor (where a seek skips samples without decoding
        // them), and from one that stands on an earlier sample: the seek
        // lands on the first sample at or after the target, and the cursor
        // goes on from there with every later sample.
        for (i, &(t, _)) in samples.iter().enumerate() {
            for target in [t.saturating_sub(1), t, t.saturating_add(1)] {
                let want: Vec<(i64, u64)> = samples
                    .iter()
                    .filter(|s| s.0 >= target)
                    .map(|s| (s.0, s.1.to_bits()))
                    .collect();
                let mut fresh = ChunkIter::new(&bytes[..]);
                let mut warm = ChunkIter::new(&bytes[..]);
                for _ in 0..=(i / 3) {
                    assert!(warm.next());
                }
                for it in [&mut fresh, &mut warm] {
                    if it.at_t_checked().is_some_and(|at| at >= target) {
                        continue; // already past: a seek stays put
                    }
                    let mut got = Vec::new();
                    if it.seek(target) {
                        got.push((it.at().0, it.at().1.to_bits()));
                        while it.next() {
                            got.push((it.at().0, it.at().1.to_bits()));
                        }
                    }
                    assert_eq!(got, want, "seek to {target}");
                    assert_eq!(it.err(), None);
                }
            }
        }
    }
    bytes
}

fn assert_same(got: &[(i64, f64)], want: &[(i64, f64)]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.0, g.1.to_bits()),
            (w.0, w.1.to_bits()),
            "sample {i}: got ({}, {:?}) want ({}, {:?})",
            g.0,
            g.1,
            w.0,
            w.1
        );
    }
}

fn round_trip_all(samples: &[(i64, f64)]) {
    for enc in Encoding::ALL {
        check_round_trip(enc, samples);
    }
}

/// Values that have broken float codecs before.
fn special_values() -> Vec<f64> {
    vec![
        f64::from_bits(STALE_NAN),
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0001),
        f64::from_bits(0xfff0_0000_dead_beef),
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        9_007_199_254_740_992.0,
        9_007_199_254_740_993.0,
        -9_007_199_254_740_992.0,
        1e15,
        0.1,
        0.30000000000000004,
        1.0 / 3.0,
        123_456.78,
        -42.5,
    ]
}

fn value_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::sample::select(special_values()),
        2 => any::<u64>().prop_map(f64::from_bits),
        2 => (any::<i32>(), 0u32..=15).prop_map(|(n, s)| f64::from(n) / 10f64.powi(s as i32)),
        2 => (-(1i64 << 53)..=(1i64 << 53)).prop_map(|n| n as f64),
        1 => any::<f64>(),
    ]
}

fn delta_strategy() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => (-2i64..=2).prop_map(|j| 15_000 + j),
        2 => Just(15_000i64),
        2 => 1i64..100,
        1 => 1i64..(1 << 20),
        1 => 1i64..(1 << 40),
        1 => 1i64..i64::MAX,
    ]
}

/// A value sequence with runs: mostly continuing a decimal walk or
/// repeating, with specials injected.
fn values_strategy(len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((0u8..8, value_strategy(), -1000i64..1000, 0u32..4), len).prop_map(
        |steps| {
            let mut out = Vec::with_capacity(steps.len());
            let mut n: i64 = 12_345;
            let mut prev = 0.0;
            for (op, special, step, scale) in steps {
                let v = match op {
                    0..=2 => {
                        n = n.wrapping_add(step);
                        n as f64 / 10f64.powi(scale as i32)
                    }
                    3 => prev,
                    _ => special,
                };
                out.push(v);
                prev = v;
            }
            out
        },
    )
}

fn samples_strategy() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (0usize..200).prop_flat_map(|len| {
        (
            any::<i64>(),
            prop::collection::vec(delta_strategy(), len),
            values_strategy(len),
        )
            .prop_map(|(t0, deltas, values)| {
                let mut t = t0;
                deltas
                    .into_iter()
                    .zip(values)
                    .map(|(d, v)| {
                        // Wrap rather than fail: the codecs must be lossless
                        // for any i64 sequence.
                        t = t.wrapping_add(d);
                        (t, v)
                    })
                    .collect()
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn prop_round_trip(samples in samples_strategy()) {
        round_trip_all(&samples);
    }

    /// Strictly increasing timestamps from a small start, so seek is checked.
    #[test]
    fn prop_round_trip_increasing(
        t0 in -1_000_000_000_000i64..2_000_000_000_000,
        deltas in prop::collection::vec(delta_strategy().prop_map(|d| d.min(1 << 40)), 0..150),
        values in values_strategy(150),
    ) {
        let mut t = t0;
        let samples: Vec<_> = deltas.into_iter().zip(values).map(|(d, v)| { t += d; (t, v) }).collect();
        round_trip_all(&samples);
    }

    /// A chunk is decodable after every append, not only at the end.
    #[test]
    fn prop_open_chunk_always_decodes(samples in samples_strategy()) {
        for enc in Encoding::ALL {
            let mut e = ChunkEncoder::new(enc);
            for (i, &(t, v)) in samples.iter().enumerate().take(40) {
                e.append(t, v).unwrap();
                let got = decode_all(&e.bytes()).unwrap();
                assert_same(&got, &samples[..=i]);
            }
        }
    }

    #[test]
    fn prop_garbage_never_panics(enc in 0u8..4, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = body;
        if let Some(b) = bytes.first_mut() {
            *b = enc;
        }
        decode_garbage(&bytes);
    }

    /// Valid chunks with a flipped bit or cut short must fail cleanly.
    #[test]
    fn prop_corrupted_chunks_never_panic(
        samples in samples_strategy(),
        flip in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        for enc in Encoding::ALL {
            let mut e = ChunkEncoder::new(enc);
            for &(t, v) in &samples {
                e.append(t, v).unwrap();
            }
            let bytes = e.into_bytes();
            let mut flipped = bytes.clone();
            let bit = flip.index(flipped.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            decode_garbage(&flipped);
            let cut = cut.index(bytes.len() + 1);
            let res = decode_all(&bytes[..cut]);
            if cut < bytes.len() && !samples.is_empty() {
                // Losing bytes loses samples (a trailing partial byte can
                // hold only padding bits, so cutting it off must error too
                // unless it was all padding).
                prop_assert!(res.is_err() || cut + 1 == bytes.len());
            }
        }
    }
}

/// Decodes arbitrary bytes every way there is; only checks for panics and
/// basic cursor consistency.
fn decode_garbage(bytes: &[u8]) {
    let all = decode_all(bytes);
    let mut it = ChunkIter::new(bytes);
    let mut n = 0;
    while it.next() {
        let _ = it.at();
        n += 1;
    }
    assert!(!it.next());
    match all {
        Ok(v) => {
            assert_eq!(v.len(), n);
            assert_eq!(it.err(), None);
        }
        Err(e) => assert_eq!(it.err(), Some(e)),
    }
    let mut it = ChunkIter::new(bytes);
    let _ = it.seek(0);
    let _ = it.seek(i64::MAX);
}

#[test]
fn empty_chunk() {
    for enc in Encoding::ALL {
        let e = ChunkEncoder::new(enc);
        assert_eq!(&*e.bytes(), &[enc.as_u8(), 0, 0]);
        assert_eq!(e.last_sample(), None);
        assert_eq!(decode_all(&e.bytes()), Ok(vec![]));
        let bytes = e.bytes();
        let mut it = ChunkIter::new(&*bytes);
        assert!(!it.seek(i64::MIN));
        assert_eq!(it.err(), None);
    }
}

#[test]
fn header_errors() {
    assert_eq!(
        decode_all(&[]),
        Err(ChunkError::Truncated {
            sample: 0,
            offset: 0
        })
    );
    assert_eq!(
        decode_all(&[2, 0]),
        Err(ChunkError::Truncated {
            sample: 0,
            offset: 2
        })
    );
    assert_eq!(decode_all(&[0, 0, 0]), Err(ChunkError::UnknownEncoding(0)));
    assert_eq!(
        decode_all(&[9, 0, 1, 0]),
        Err(ChunkError::UnknownEncoding(9))
    );
    let mut it = ChunkIter::new(&[7u8][..]);
    assert!(!it.next());
    assert!(!it.seek(0));
    assert!(it.err().is_some());
}

#[test]
fn truncated_chunk_reports_sample_and_offset() {
    for enc in Encoding::ALL {
        let samples = testdata::series(Kind::CpuSeconds, 1, true);
        let bytes = check_round_trip(enc, &samples);
        let cut = &bytes[..bytes.len() / 2];
        let err = decode_all(cut).unwrap_err();
        let ChunkError::Truncated { sample, offset } = err else {
            panic!("{enc:?}: unexpected {err:?}");
        };
        assert!(sample > 0 && usize::from(sample) < samples.len(), "{err:?}");
        assert!(offset <= cut.len(), "{err:?}");
        // The samples before the error are still handed out.
        let mut it = ChunkIter::new(cut);
        let mut n = 0;
        while it.next() {
            assert_eq!(it.at().0, samples[n].0);
            n += 1;
        }
        assert_eq!(n, usize::from(sample));
        assert_eq!(it.err(), Some(err));
    }
}

/// Every special value after every other one, in both modes of the
/// adaptive encoding (after a decimal and after a non-decimal value).
#[test]
fn special_values_pairwise() {
    let specials = special_values();
    let mut samples = Vec::new();
    let mut t = -5_000_000i64;
    for &a in &specials {
        for &b in &specials {
            for v in [a, b, 1.5, b, b, a] {
                t += 15_000;
                samples.push((t, v));
            }
        }
    }
    for chunk in samples.chunks(1000) {
        round_trip_all(chunk);
    }
}

/// A stale marker in decimal mode used to be coded as an XOR and switch the
/// series to XOR mode for good; now it has its own escape and the decimal
/// prediction survives it.
#[test]
fn stale_marker_keeps_decimal_prediction() {
    let stale = f64::from_bits(STALE_NAN);
    let value = |i: i64| (1000 + 37 * i) as f64 / 100.0;
    let with: Vec<_> = (0..120i64)
        .map(|i| (i * 15_000, if i % 20 == 19 { stale } else { value(i) }))
        .collect();
    let without: Vec<_> = with
        .iter()
        .copied()
        .filter(|s| s.1.to_bits() != STALE_NAN)
        .collect();
    let with = check_round_trip(Encoding::Adaptive, &with).len();
    let without = check_round_trip(Encoding::Adaptive, &without).len();
    // Each marker costs its escape and one mispredicted delta after it.
    assert!(
        with <= without + 6 * 9,
        "{with} bytes with markers, {without} without"
    );
}

#[test]
fn extreme_timestamps() {
    let v = 1.0;
    round_trip_all(&[(i64::MIN, v), (i64::MAX, v), (i64::MIN, v), (0, v)]);
    round_trip_all(&[
        (i64::MIN, v),
        (i64::MIN + 1, v),
        (i64::MAX - 1, v),
        (i64::MAX, v),
    ]);
    round_trip_all(&[(-1, v), (0, v), (1, v), (-1, v)]);
    round_trip_all(&[(0, v), (1 << 62, v), (i64::MAX, v)]);
    // Negative timestamps (before 1970) with jitter.
    let samples: Vec<_> = (0..120i64)
        .map(|i| (-1_000_000_000_000 + i * 15_000 + (i * 7) % 5 - 2, i as f64))
        .collect();
    round_trip_all(&samples);
}

#[test]
fn classic_dod_bucket_boundaries() {
    // Prometheus' bucket ranges are asymmetric: -(2^(n-1)-1) ..= 2^(n-1).
    for dod in [
        0i64,
        1,
        -1,
        8191,
        8192,
        -8191,
        -8192,
        65536,
        -65535,
        -65536,
        524_288,
        -524_287,
        -524_288,
        524_289,
        1 << 40,
        -(1 << 40),
    ] {
        let samples = [
            (0, 1.0),
            (100_000_000, 2.0),
            (200_000_000 + dod, 3.0),
            (300_000_000, 3.0),
        ];
        round_trip_all(&samples);
    }
}

#[test]
fn decimal_edge_values() {
    // Near the 2^53 limit, scales at the edge, and values that are decimal
    // only at a larger scale than the previous one.
    let values = [
        0.0,
        1.0,
        1.5,
        1.25,
        1.125,
        0.000_000_000_000_001,
        9_007_199_254_740_991.0,
        -9_007_199_254_740_991.0,
        9_007_199_254_740_992.0,
        90_071_992_547.409_91,
        0.1,
        0.2,
        0.30000000000000004,
        -0.0,
        5e-324,
        1e300,
        42.0,
    ];
    let samples: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect();
    round_trip_all(&samples);
    let rev: Vec<_> = values
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect();
    round_trip_all(&rev);
}

#[test]
fn counter_reset_and_rate_change() {
    let mut samples = Vec::new();
    let mut c: i64 = 1_000_000_000;
    for i in 0..120i64 {
        c = match i {
            40 => 0,
            80 => c + 10_000_000_000,
            _ => c + 1500 + (i % 3),
        };
        samples.push((i * 15_000, c as f64));
    }
    let bytes = check_round_trip(Encoding::Adaptive, &samples);
    assert!(bytes.len() < 120, "{} bytes", bytes.len());
}

#[test]
fn chunk_full() {
    let mut e = ChunkEncoder::new(Encoding::Adaptive);
    for i in 0..i64::from(MAX_SAMPLES) {
        e.append(i, 0.5).unwrap();
    }
    assert_eq!(e.append(i64::MAX, 1.0), Err(ChunkFull));
    assert_eq!(e.num_samples(), MAX_SAMPLES);
    let all = decode_all(&e.bytes()).unwrap();
    assert_eq!(all.len(), usize::from(MAX_SAMPLES));
    assert_eq!(all.last(), Some(&(i64::from(MAX_SAMPLES) - 1, 0.5)));
}

/// Known bytes of a Prometheus XOR chunk, built by hand from xor.go's
/// rules, so the classic encoding stays byte compatible.
#[test]
fn classic_xor_golden_bytes() {
    let mut e = ChunkEncoder::new(Encoding::Xor);
    e.append(1000, 1.0).unwrap();
    e.append(2000, 1.0).unwrap();
    e.append(3000, 1.0).unwrap();
    // Header: encoding 1, count 3. Then varint(1000) zigzag = 2000 =
    // [0xd0, 0x0f], 1.0 = 0x3ff0000000000000, uvarint(1000) = [0xe8, 0x07],
    // value bit 0, then dod 0 bit and value bit 0: 0b000 padded.
    assert_eq!(
        &*e.bytes(),
        &[1, 0, 3, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x00]
    );
}

#[test]
fn seek_semantics() {
    let samples: Vec<_> = (0..10i64).map(|i| (i * 10, i as f64)).collect();
    for enc in Encoding::ALL {
        let bytes = check_round_trip(enc, &samples);
        let mut it = ChunkIter::new(&bytes[..]);
        assert!(it.seek(-5));
        assert_eq!(it.at_t(), 0);
        assert!(it.seek(15));
        assert_eq!(it.at_t(), 20);
        assert!(it.seek(20));
        assert_eq!(it.at_t(), 20);
        assert!(it.next());
        assert_eq!(it.at_t(), 30);
        assert!(it.seek(90));
        assert_eq!(it.at_t(), 90);
        assert!(!it.seek(91));
        assert!(!it.next());
        assert_eq!(it.err(), None);
    }
}

/// Bytes per sample of each encoding on `kind`, over `series` chunks.
fn bytes_per_sample(enc: Encoding, kind: Kind, series: u64, jitter: bool) -> f64 {
    let mut bytes = 0;
    let mut samples = 0;
    for seed in 0..series {
        let s = testdata::series(kind, seed, jitter);
        bytes += check_round_trip(enc, &s).len();
        samples += s.len();
    }
    bytes as f64 / samples as f64
}

/// The adaptive encoding must beat classic XOR on every kind of data;
/// `cargo test -p vigil-tsdb compression -- --nocapture` prints the table.
#[test]
fn compression_beats_classic_xor() {
    for jitter in [true, false] {
        println!("jitter ±2ms: {jitter}");
        for kind in Kind::ALL {
            let classic = bytes_per_sample(Encoding::Xor, kind, 40, jitter);
            let adaptive = bytes_per_sample(Encoding::Adaptive, kind, 40, jitter);
            println!(
                "  {:<28} xor {classic:6.3} B/sample  adaptive {adaptive:6.3} B/sample  ({:+.0}%)",
                kind.name(),
                (adaptive / classic - 1.0) * 100.0
            );
            assert!(
                adaptive <= classic,
                "{kind:?} jitter={jitter}: {adaptive} > {classic}"
            );
        }
    }
}

/// The adaptive encoder's bytes for the test data, pinned: speed work on
/// the codec must not change the format by accident (an FNV-1a hash of 16
/// jittered chunks per kind, and their total size). Update the hashes, and
/// `docs/formats.md`, only with a deliberate format change.
///
/// The sizes are those of the first version of the format: moving the value's
/// Rice prefix before the timestamp's low bits (for a shorter decoding
/// dependency chain) reordered bits within samples but changed no sizes.
#[test]
fn adaptive_bytes_are_pinned() {
    let want = [
        (Kind::CpuSeconds, 0xf680_920c_c561_f846u64, 2_527),
        (Kind::ByteCounter, 0xa7ea_b70d_5b66_92ee, 5_282),
        (Kind::Gauge2dp, 0xd6ae_ba34_e787_a51a, 2_835),
        (Kind::Constant, 0xdbf6_60bc_84e5_afa9, 1_283),
        (Kind::FloatGauge, 0xe9ae_4adc_181b_4ec1, 14_048),
    ];
    let got = pinned(&want, |s| check_round_trip(Encoding::Adaptive, s));
    assert_eq!(got, want, "the adaptive chunk bytes changed");
}

/// For each kind of `want`, the FNV-1a hash and the total size of the
/// chunks `encode` makes of 16 jittered series.
fn pinned(
    want: &[(Kind, u64, usize)],
    mut encode: impl FnMut(&[(i64, f64)]) -> Vec<u8>,
) -> Vec<(Kind, u64, usize)> {
    let mut got = Vec::new();
    for &(kind, _, _) in want {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut len = 0;
        for seed in 0..16 {
            let bytes = encode(&testdata::series(kind, seed, true));
            len += bytes.len();
            for b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        got.push((kind, h, len));
    }
    got
}

/// The Packed chunks: pinned like the adaptive ones above (hash and total
/// size of 16 jittered chunks per kind). These are the bytes the encoder
/// for blocks wrote before the head and blocks shared one encoder.
#[test]
fn packed_bytes_are_pinned() {
    let want = [
        (Kind::CpuSeconds, 0xc672_d181_0335_2702u64, 2_834),
        (Kind::ByteCounter, 0x014e_08a8_39da_ca47, 5_557),
        (Kind::Gauge2dp, 0x8bd9_7950_8ef5_1d41, 2_944),
        (Kind::Constant, 0xf822_f0ec_9cb0_8312, 1_239),
        (Kind::FloatGauge, 0x3d93_0450_1ada_d063, 13_685),
    ];
    let got = pinned(&want, |s| check_round_trip(Encoding::Packed, s));
    assert_eq!(got, want, "the packed chunk bytes changed");
}

/// Timestamp errors so large that the Rice parameter reaches its cap during
/// the warm-up, then errors just below the escape threshold: the fast paths
/// (which never cap the Rice mean) and the general paths must agree on
/// every sample. Values stay decimal so the decimal fast paths run.
#[test]
fn huge_errors_during_warm_up_round_trip() {
    let mut rng = testdata::Rng::new(7);
    for _ in 0..50 {
        let mut t = 0i64;
        let samples: Vec<_> = (0..120i64)
            .map(|i| {
                let scale = if i < 12 { 46 } else { rng.range(0, 45) as u32 };
                t = t.wrapping_add(rng.range(0, 1 << 20) << (scale.saturating_sub(20)));
                (t, (1000 + i * 3) as f64)
            })
            .collect();
        check_round_trip(Encoding::Adaptive, &samples);
    }
}

/// Regular samples interrupted by errors that need long (but not escaped)
/// Rice prefixes in the timestamp, the value or both, so that the decoder's
/// fast path hands samples to the general path and takes over again at
/// every bit alignment.
#[test]
fn long_prefixes_round_trip() {
    let mut rng = testdata::Rng::new(11);
    for _ in 0..100 {
        let mut t = 1_700_000_000_000i64;
        let mut n = 50_000i64;
        let samples: Vec<_> = (0..200)
            .map(|_| {
                let (jt, jv) = match rng.range(0, 9) {
                    0 => (rng.range(-200, 200), 0),
                    1 => (0, rng.range(-2000, 2000)),
                    2 => (rng.range(-200, 200), rng.range(-2000, 2000)),
                    _ => (rng.range(-2, 2), rng.range(-3, 3)),
                };
                t += 15_000 + jt;
                n += 100 + jv;
                (t, n as f64 / 100.0)
            })
            .collect();
        check_round_trip(Encoding::Adaptive, &samples);
    }
}

/// Packed chunks cut at every length, over data whose blocks change and
/// keep their parameters at random (narrow and wide fields, outliers,
/// decimal and XOR blocks, scale changes), so that the decoder's fast loop
/// meets the end of the bytes, the padded tail and the block headers at
/// every alignment, and hands over to the general path in each case.
#[test]
fn packed_every_length_round_trips() {
    let mut rng = testdata::Rng::new(23);
    for round in 0..40 {
        let mut t = 1_700_000_000_000i64;
        let mut n = 1_000i64;
        let samples: Vec<_> = (0..260)
            .map(|i| {
                let regime = (i / 16 + round) % 5;
                let (jt, jv) = match regime {
                    0 => (0, 0),
                    1 => (rng.range(-2, 2), rng.range(-3, 3)),
                    2 => (rng.range(-3000, 3000), rng.range(-200_000, 200_000)),
                    _ => (rng.range(-1, 1), rng.range(0, 40)),
                };
                t += 15_000 + jt;
                n += 100 + jv;
                let v = match (regime, rng.range(0, 40)) {
                    (4, 0) => f64::from_bits(STALE_NAN),
                    (4, 1) => n as f64 / 1000.0 + 1e-9,
                    (3, _) => n as f64 / 100.0,
                    _ => n as f64,
                };
                (t, v)
            })
            .collect();
        for len in 0..=samples.len() {
            check_round_trip(Encoding::Packed, &samples[..len]);
        }
    }
}

/// A NaN or a value with more digits in the middle of a decimal series
/// makes a Packed block XOR (16 samples of full-width XOR fields, about
/// 100 bytes); the blocks after it go back to decimals, where staying XOR
/// would cost about 600 bytes more.
#[test]
fn packed_returns_to_decimals_after_an_odd_value() {
    let clean: Vec<(i64, f64)> = (0..120i64)
        .map(|i| {
            (
                1_700_000_000_000 + i * 15_000,
                (1000 + i * 7) as f64 / 100.0,
            )
        })
        .collect();
    let mut odd = clean.clone();
    odd[30].1 = f64::NAN;
    odd[31].1 = 1.0 / 3.0;
    let clean_len = check_round_trip(Encoding::Packed, &clean).len();
    let odd_len = check_round_trip(Encoding::Packed, &odd).len();
    assert!(
        odd_len < clean_len + 150,
        "{odd_len} bytes against {clean_len}"
    );
}

/// Every path of the Packed encoder, pinned, with the chunk read (`bytes`,
/// `len_bytes`) every few samples
/// while a block is still pending, on the realistic kinds and on series
/// that switch between decimals, large integers, floats, NaNs and stale
/// markers, with timestamp gaps (some so large that blocks need fields
/// wider than the fast paths take). The hashes were taken with the block
/// encoder (`ChunkEncoder::new_compact`) of commit 730d64d, which wrote and
/// repacked every sample as it came, so holding a block's samples back
/// until it is complete is shown to produce the same bytes (the head now
/// uses that encoder too).
#[test]
fn packed_bytes_are_pinned_on_every_path() {
    fn mixed(seed: u64) -> Vec<(i64, f64)> {
        let mut rng = testdata::Rng::new(seed);
        let mut t = 1_700_000_000_000i64;
        let mut n = 5_000i64;
        let mut f = 0.5f64;
        (0..400)
            .map(|i| {
                t += match rng.range(0, 40) {
                    0 => rng.range(1, 1 << 20),
                    // Gaps whose errors need fields wider than the fast
                    // paths take.
                    3 => rng.range(1, 1 << 40),
                    4 if i % 50 == 7 => 1 << 57,
                    1 => rng.range(14_000, 16_000),
                    2 => 70_000,
                    _ => 15_000 + rng.range(-3, 3),
                };
                let phase = (i / 37 + seed as i64) % 6;
                let v = match (phase, rng.range(0, 30)) {
                    (_, 0) => f64::NAN,
                    (_, 1) => f64::from_bits(STALE_NAN),
                    (_, 2) => {
                        n = rng.range(0, 100);
                        n as f64
                    }
                    (0, _) => {
                        n += rng.range(0, 40);
                        n as f64 / 100.0
                    }
                    (1, _) => {
                        n += rng.range(0, 1 << 30);
                        n as f64
                    }
                    (2, _) => {
                        f = (f + (rng.range(-1000, 1000) as f64) * 1e-5).abs();
                        f
                    }
                    (3, _) => {
                        n += rng.range(-5, 5);
                        n as f64 / 1000.0
                    }
                    (4, 3) => {
                        n = n.wrapping_add(rng.range(1, 1 << 40) << 20);
                        n as f64
                    }
                    (4, _) => 42.0,
                    _ => {
                        n += rng.range(0, 3);
                        n as f64 * 1e6
                    }
                };
                (t, v)
            })
            .collect()
    }
    fn fnv(h: &mut u64, bytes: &[u8]) {
        for &b in bytes {
            *h = (*h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut all = Vec::new();
    for kind in Kind::ALL {
        for seed in 0..16 {
            all.push(testdata::series(kind, seed, true));
            all.push(testdata::series(kind, seed, false));
        }
    }
    all.extend((0..64).map(mixed));
    let (mut end, mut open) = (0xcbf2_9ce4_8422_2325u64, 0xcbf2_9ce4_8422_2325u64);
    for s in &all {
        let mut e = ChunkEncoder::new(Encoding::Packed);
        for (i, &(t, v)) in s.iter().enumerate() {
            e.append(t, v).expect("room for the sample");
            if i % 7 == 3 {
                let bytes = e.bytes();
                assert_eq!(e.len_bytes(), bytes.len());
                fnv(&mut open, &bytes);
            }
        }
        let bytes = e.into_bytes();
        assert_same(&decode_all(&bytes).expect("valid chunk"), s);
        fnv(&mut end, &bytes);
    }
    let want = (0x5a95_8ec7_13f9_dc3c, 0x4432_5886_b53e_ba50);
    assert_eq!((end, open), want, "the packed chunk bytes changed");
}
