//! Scenario tests of the WAL: round trips, crashes, repair, checkpoints.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

/// Small segments, and no fsync per batch: `close` syncs.
fn opts(segment_size: u64) -> WalOptions {
    WalOptions::default()
        .with_segment_size(segment_size)
        .with_sync(SyncPolicy::interval(Duration::from_secs(3600)))
}

/// Deterministic records of varying length, some empty.
fn record(i: usize) -> Vec<u8> {
    let len = (i * 37) % 200;
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

type Read = (u64, u64, Vec<u8>);

/// Replays `dir` into owned records plus the error that stopped it.
fn read_all(dir: &Path) -> (Vec<Read>, Option<WalError>) {
    let mut reader = WalReader::open(dir).unwrap();
    let mut out = Vec::new();
    while let Some(next) = reader.next_record() {
        match next {
            Ok(r) => out.push((r.segment, r.offset, r.data.to_vec())),
            Err(e) => {
                assert!(
                    reader.next_record().is_none(),
                    "reader continues after an error"
                );
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

fn data(records: &[Read]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.2.clone()).collect()
}

/// Writes `n` records in batches of `batch` and closes the WAL.
fn write_wal(dir: &Path, segment_size: u64, n: usize, batch: usize) -> Vec<Vec<u8>> {
    let wal = Wal::open(dir, opts(segment_size)).unwrap();
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();
    for chunk in records.chunks(batch) {
        wal.log(chunk).unwrap();
    }
    wal.close().unwrap();
    records
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn assert_corruption(err: Option<&WalError>, segment: u64, offset: u64) -> CorruptionReason {
    match err {
        Some(&WalError::Corruption {
            segment: s,
            offset: o,
            reason,
        }) => {
            assert_eq!((s, o), (segment, offset), "corruption position ({reason})");
            reason
        }
        other => panic!("expected corruption at {segment}:{offset}, got {other:?}"),
    }
}

#[test]
fn round_trip_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalOptions::default().with_segment_size(1024)).unwrap();
    assert_eq!(wal.sync_policy(), SyncPolicy::always());
    let records: Vec<Vec<u8>> = (0..1000).map(record).collect();
    for chunk in records.chunks(25) {
        wal.log(chunk).unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.records, 1000);
    assert_eq!(stats.batches, 40);
    assert_eq!(
        stats.bytes,
        records.iter().map(|r| 8 + r.len() as u64).sum::<u64>()
    );
    assert!(
        stats.fsyncs >= stats.batches,
        "always policy fsyncs every batch: {stats:?}"
    );
    drop(wal);

    let segs = segments(dir.path()).unwrap();
    assert!(segs.len() > 50, "{} segments", segs.len());
    assert_eq!(segs, (0..segs.len() as u64).collect::<Vec<_>>());
    for &s in &segs {
        assert!(file_len(&segment_path(dir.path(), s)) <= 1024);
    }
    let (got, err) = read_all(dir.path());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(data(&got), records);
    // Frames are contiguous and never straddle a segment boundary.
    let mut expected_offset = (0, 0);
    for (segment, offset, bytes) in &got {
        if *segment != expected_offset.0 {
            assert_eq!(*segment, expected_offset.0 + 1);
            expected_offset = (*segment, 0);
        }
        assert_eq!(*offset, expected_offset.1);
        expected_offset.1 += 8 + bytes.len() as u64;
        assert!(expected_offset.1 <= 1024);
    }
}

#[test]
fn empty_batch_and_empty_records() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(1024)).unwrap();
    wal.log::<&[u8]>(&[]).unwrap();
    assert_eq!(wal.stats().batches, 0);
    wal.log(&[b"".as_slice(), b"", b"x"]).unwrap();
    wal.close().unwrap();
    let (got, err) = read_all(dir.path());
    assert!(err.is_none());
    assert_eq!(data(&got), vec![vec![], vec![], b"x".to_vec()]);
    assert_eq!(file_len(&segment_path(dir.path(), 0)), 8 + 8 + 9);
}

#[test]
fn oversized_record_goes_alone_into_a_fresh_segment() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(100)).unwrap();
    let big = vec![7u8; 100_000]; // Larger than the segment and the page buffer.
    wal.log(&[b"a".as_slice(), &big, b"b"]).unwrap();
    wal.log(&[&big]).unwrap();
    wal.close().unwrap();
    let (got, err) = read_all(dir.path());
    assert!(err.is_none());
    let placed: Vec<(u64, u64, usize)> = got.iter().map(|r| (r.0, r.1, r.2.len())).collect();
    assert_eq!(
        placed,
        vec![(0, 0, 1), (1, 0, 100_000), (2, 0, 1), (3, 0, 100_000)]
    );
}

#[test]
fn reopen_continues_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_wal(dir.path(), 512, 30, 4);
    let last = *segments(dir.path()).unwrap().last().unwrap();

    let wal = Wal::open(dir.path(), opts(512)).unwrap();
    assert_eq!(wal.current_segment(), last + 1);
    drop(wal);
    // The empty segment left behind is reused rather than piling up.
    let wal = Wal::open(dir.path(), opts(512)).unwrap();
    assert_eq!(wal.current_segment(), last + 1);
    let second: Vec<Vec<u8>> = (100..130).map(record).collect();
    wal.log(&second).unwrap();
    wal.close().unwrap();

    let (got, err) = read_all(dir.path());
    assert!(err.is_none());
    assert_eq!(data(&got), [first, second].concat());
    assert!(got.iter().any(|r| r.0 == last + 1));
}

/// A crash can stop a write anywhere inside the last frame. Whatever the
/// cut, opening succeeds, replay returns every earlier record and reports
/// the torn frame, repair removes exactly its bytes, and the log accepts
/// and replays new records.
#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let base = tempfile::tempdir().unwrap();
    let records = write_wal(base.path(), 1024, 40, 3);
    let (all, _) = read_all(base.path());
    let (seg, off, last) = all.last().unwrap().clone();
    assert!(off > 0, "last segment should hold several records");
    let seg_file = segment_path(base.path(), seg);
    let frame_end = off + 8 + last.len() as u64;
    assert_eq!(file_len(&seg_file), frame_end);
    let kept = &records[..records.len() - 1];

    for cut in off..frame_end {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let path = segment_path(dir.path(), seg);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let wal = Wal::open(dir.path(), opts(1024)).unwrap();
        let (got, err) = read_all(dir.path());
        assert_eq!(data(&got), kept, "cut at {cut}");
        if cut == off {
            assert!(err.is_none(), "a cut at a frame boundary is a clean end");
        } else {
            let reason = assert_corruption(err.as_ref(), seg, off);
            let expected = if cut - off < 8 {
                CorruptionReason::TruncatedHeader
            } else {
                CorruptionReason::TruncatedPayload
            };
            assert_eq!(reason, expected, "cut at {cut}");
            let report = wal.repair(err.as_ref().unwrap()).unwrap();
            assert_eq!((report.segment, report.offset), (seg, off));
            assert_eq!(report.bytes_dropped, cut - off);
            assert_eq!(report.new_segment, seg + 1);
            assert_eq!(wal.current_segment(), seg + 1);
            assert_eq!(wal.stats().repairs, 1);
            assert_eq!(wal.stats().repaired_bytes_dropped, cut - off);
            assert_eq!(file_len(&path), off);
        }
        wal.log(&[b"after".as_slice()]).unwrap();
        wal.close().unwrap();
        let (got, err) = read_all(dir.path());
        assert!(err.is_none(), "cut at {cut}: {err:?}");
        assert_eq!(data(&got), [kept, &[b"after".to_vec()]].concat());
    }
}

#[test]
fn flipped_bits_in_a_middle_record() {
    let base = tempfile::tempdir().unwrap();
    let records = write_wal(base.path(), 512, 60, 5);
    let (all, _) = read_all(base.path());
    let segs = segments(base.path()).unwrap();
    assert!(segs.len() >= 5);
    let middle = segs[segs.len() / 2];
    // The second non-empty record of a middle segment: earlier records in
    // the same segment must survive the repair.
    let (k, (seg, off, bytes)) = all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.0 == middle && !r.2.is_empty())
        .nth(1)
        .map(|(k, r)| (k, r.clone()))
        .unwrap();
    assert!(off > 0);

    // Every bit of the frame, header included, is covered.
    for bit in 0..(8 + bytes.len()) * 8 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let path = segment_path(dir.path(), seg);
        let mut file = fs::read(&path).unwrap();
        file[off as usize + bit / 8] ^= 1 << (bit % 8);
        fs::write(&path, &file).unwrap();
        let (got, err) = read_all(dir.path());
        assert_eq!(data(&got), &records[..k], "bit {bit}");
        assert_corruption(err.as_ref(), seg, off);
        if bit >= 64 {
            assert!(matches!(
                err,
                Some(WalError::Corruption {
                    reason: CorruptionReason::ChecksumMismatch,
                    ..
                })
            ));
        }
        if bit != 8 * 8 + 3 {
            continue;
        }
        // Repair once, on a payload flip.
        let later: u64 = segs
            .iter()
            .filter(|&&s| s > seg)
            .map(|&s| file_len(&segment_path(dir.path(), s)))
            .sum();
        let wal = Wal::open(dir.path(), opts(512)).unwrap();
        let report = wal.repair(err.as_ref().unwrap()).unwrap();
        assert_eq!(report.bytes_dropped, file.len() as u64 - off + later);
        // The later old segments, plus the empty one opened for appending.
        assert_eq!(
            report.segments_deleted,
            segs.iter().filter(|&&s| s > seg).count() as u64 + 1
        );
        assert_eq!(segments(dir.path()).unwrap().last(), Some(&(seg + 1)));
        wal.log(&[b"after".as_slice()]).unwrap();
        wal.close().unwrap();
        let (got, err) = read_all(dir.path());
        assert!(err.is_none());
        assert_eq!(data(&got), [&records[..k], &[b"after".to_vec()]].concat());
    }
}

/// Some filesystems extend a file's length before its data reaches disk, so
/// a crash leaves zeros (or preallocated space) after the last good frame.
#[test]
fn zero_filled_tail_is_corruption_not_records() {
    let dir = tempfile::tempdir().unwrap();
    let records = write_wal(dir.path(), 4096, 20, 20);
    let path = segment_path(dir.path(), 0);
    let good = file_len(&path);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(good + 4096)
        .unwrap();

    let wal = Wal::open(dir.path(), opts(4096)).unwrap();
    let (got, err) = read_all(dir.path());
    assert_eq!(data(&got), records);
    assert_eq!(
        assert_corruption(err.as_ref(), 0, good),
        CorruptionReason::ZeroHeader
    );
    let report = wal.repair(err.as_ref().unwrap()).unwrap();
    assert_eq!(report.bytes_dropped, 4096);
    assert_eq!(file_len(&path), good);
    wal.log(&[b"after".as_slice()]).unwrap();
    wal.close().unwrap();
    let (got, err) = read_all(dir.path());
    assert!(err.is_none());
    assert_eq!(got.len(), records.len() + 1);

    // A whole segment of zeros, and a zero tail shorter than a header.
    for len in [4096, 5] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(segment_path(dir.path(), 0), vec![0u8; len]).unwrap();
        let (got, err) = read_all(dir.path());
        assert!(got.is_empty());
        let reason = assert_corruption(err.as_ref(), 0, 0);
        assert!(matches!(
            reason,
            CorruptionReason::ZeroHeader | CorruptionReason::TruncatedHeader
        ));
    }
}

#[test]
fn missing_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let records = write_wal(dir.path(), 256, 40, 2);
    let (all, _) = read_all(dir.path());
    let segs = segments(dir.path()).unwrap();
    let hole = segs[2];
    fs::remove_file(segment_path(dir.path(), hole)).unwrap();
    let kept = all.iter().filter(|r| r.0 < hole).count();

    let wal = Wal::open(dir.path(), opts(256)).unwrap();
    let (got, err) = read_all(dir.path());
    assert_eq!(data(&got), &records[..kept]);
    assert_eq!(
        assert_corruption(err.as_ref(), hole, 0),
        CorruptionReason::MissingSegment
    );
    let report = wal.repair(err.as_ref().unwrap()).unwrap();
    // Appends fill the hole, so the log is contiguous again: a later replay
    // must not stop at the same hole and have a second repair delete what
    // was appended after the first.
    assert_eq!(report.new_segment, hole);
    assert_eq!(
        segments(dir.path()).unwrap(),
        (0..=hole).collect::<Vec<_>>()
    );
    wal.log(&[b"after".as_slice()]).unwrap();
    wal.close().unwrap();
    let (got, err) = read_all(dir.path());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        data(&got),
        [&records[..kept], &[b"after".to_vec()]].concat()
    );
}

#[test]
fn repair_refuses_unsafe_requests() {
    let dir = tempfile::tempdir().unwrap();
    write_wal(dir.path(), 256, 20, 2);
    let corruption = WalError::Corruption {
        segment: 0,
        offset: 0,
        reason: CorruptionReason::ChecksumMismatch,
    };
    let wal = Wal::open(dir.path(), opts(256)).unwrap();
    let current = wal.current_segment();
    let refused = |r: Result<RepairReport, WalError>| match r {
        Err(WalError::RepairRefused { reason }) => reason,
        other => panic!("expected refusal, got {other:?}"),
    };
    assert_eq!(
        refused(wal.repair(&WalError::Poisoned)),
        RepairRefusal::NotCorruption
    );
    let own = WalError::Corruption {
        segment: current,
        offset: 0,
        reason: CorruptionReason::TruncatedHeader,
    };
    assert_eq!(refused(wal.repair(&own)), RepairRefusal::SegmentInUse);
    wal.log(&[b"x".as_slice()]).unwrap();
    assert_eq!(
        refused(wal.repair(&corruption)),
        RepairRefusal::WritesSinceOpen
    );
    wal.close().unwrap();
    assert_eq!(
        read_all(dir.path()).0.len(),
        21,
        "refused repairs change nothing"
    );
}

#[test]
fn truncate_before_and_cut_segment() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(256)).unwrap();
    let records: Vec<Vec<u8>> = (0..40).map(record).collect();
    wal.log(&records).unwrap();
    let current = wal.current_segment();
    assert!(current >= 5);
    let cut = wal.cut_segment().unwrap();
    assert_eq!(cut, current + 1);
    assert_eq!(wal.current_segment(), cut);

    assert_eq!(wal.truncate_before(3).unwrap(), 3);
    assert_eq!(segments(dir.path()).unwrap().first(), Some(&3));
    let (got, err) = read_all(dir.path());
    assert!(err.is_none());
    assert_eq!(got.first().map(|r| r.0), Some(3));
    assert_eq!(data(&got), records[records.len() - got.len()..]);

    // The active segment is never deleted.
    wal.truncate_before(u64::MAX).unwrap();
    assert_eq!(segments(dir.path()).unwrap(), vec![cut]);
    wal.log(&[b"x".as_slice()]).unwrap();
    wal.close().unwrap();
    assert_eq!(data(&read_all(dir.path()).0), vec![b"x".to_vec()]);
}

#[test]
fn open_range_reads_selected_segments() {
    let dir = tempfile::tempdir().unwrap();
    write_wal(dir.path(), 256, 60, 3);
    let (all, _) = read_all(dir.path());
    let mut reader = WalReader::open_range(dir.path(), 2..=4).unwrap();
    let mut got = Vec::new();
    while let Some(r) = reader.next_record() {
        let r = r.unwrap();
        got.push((r.segment, r.offset, r.data.to_vec()));
    }
    let expected: Vec<Read> = all.into_iter().filter(|r| (2..=4).contains(&r.0)).collect();
    assert_eq!(got, expected);

    let mut count = 0;
    WalReader::open_range(dir.path(), 3..=3)
        .unwrap()
        .for_each_record(|_| count += 1)
        .unwrap();
    assert!(count > 0);

    let mut beyond = WalReader::open_range(dir.path(), 1000..=1001).unwrap();
    assert!(matches!(
        beyond.next_record(),
        Some(Err(WalError::Corruption {
            segment: 1000,
            reason: CorruptionReason::MissingSegment,
            ..
        }))
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let mut empty = WalReader::open_range(dir.path(), 5..=4).unwrap();
    assert!(empty.next_record().is_none());
}

#[test]
fn checkpoint_write_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(256)).unwrap();
    wal.log(&[b"live".as_slice()]).unwrap();
    assert_eq!(last_checkpoint(dir.path()).unwrap(), None);

    let kept: Vec<Vec<u8>> = (0..50).map(record).collect();
    let path = write_checkpoint(dir.path(), 5, &kept).unwrap();
    assert_eq!(path, dir.path().join("checkpoint.00000005"));
    assert_eq!(
        last_checkpoint(dir.path()).unwrap(),
        Some((5, path.clone()))
    );
    let (got, err) = read_all(&path);
    assert!(err.is_none());
    assert_eq!(data(&got), kept);
    // Checkpoint directories are not segments.
    assert_eq!(segments(dir.path()).unwrap(), vec![0]);
    assert!(wal.size_bytes().unwrap() >= file_len(&segment_path(&path, 0)) + 12);

    // An abandoned attempt leaves nothing behind.
    let mut abandoned = CheckpointWriter::create(dir.path(), 6).unwrap();
    abandoned.append(b"partial").unwrap();
    assert_eq!(abandoned.records(), 1);
    assert!(dir.path().join("checkpoint.00000006.tmp").is_dir());
    drop(abandoned);
    assert!(!dir.path().join("checkpoint.00000006.tmp").exists());
    // A crashed attempt's leftovers are ignored, then replaced.
    fs::create_dir(dir.path().join("checkpoint.00000007.tmp")).unwrap();
    fs::write(dir.path().join("checkpoint.00000007.tmp/00000000"), b"junk").unwrap();
    assert_eq!(last_checkpoint(dir.path()).unwrap().map(|c| c.0), Some(5));

    let mut writer = CheckpointWriter::create(dir.path(), 7).unwrap();
    writer.append(b"one").unwrap();
    let path7 = writer.finish().unwrap();
    assert_eq!(
        last_checkpoint(dir.path()).unwrap(),
        Some((7, path7.clone()))
    );
    assert!(!path.exists(), "older checkpoints are deleted");
    assert_eq!(data(&read_all(&path7).0), vec![b"one".to_vec()]);
    // Rewriting the same index replaces it.
    write_checkpoint(dir.path(), 7, [b"two"]).unwrap();
    assert_eq!(data(&read_all(&path7).0), vec![b"two".to_vec()]);
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    wal.close().unwrap();
}

#[test]
fn concurrent_appenders_share_fsyncs() {
    const THREADS: usize = 8;
    const BATCHES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let wal =
        Arc::new(Wal::open(dir.path(), WalOptions::default().with_segment_size(4096)).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    let a = format!("{t}:{b}:a").into_bytes();
                    let z = format!("{t}:{b}:z").into_bytes();
                    wal.log(&[a, z]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.batches, (THREADS * BATCHES) as u64);
    let group_fsyncs = stats.fsyncs - (stats.segments_created - 1);
    assert!(group_fsyncs <= stats.batches, "{stats:?}");
    drop(wal);

    let (got, err) = read_all(dir.path());
    assert!(err.is_none());
    assert_eq!(got.len(), THREADS * BATCHES * 2);
    // Batches are contiguous and each thread's batches are in order.
    let mut next = [0usize; THREADS];
    for pair in got.chunks(2) {
        let a = String::from_utf8(pair[0].2.clone()).unwrap();
        let z = String::from_utf8(pair[1].2.clone()).unwrap();
        let (t, rest) = a.split_once(':').unwrap();
        let t: usize = t.parse().unwrap();
        assert_eq!(a, format!("{t}:{}:a", next[t]), "{rest}");
        assert_eq!(z, format!("{t}:{}:z", next[t]));
        next[t] += 1;
    }
}

#[test]
fn interval_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let policy = SyncPolicy::interval(Duration::from_millis(5));
    assert_eq!(policy.interval_duration(), Some(Duration::from_millis(5)));
    assert_eq!(SyncPolicy::interval(Duration::ZERO), SyncPolicy::always());
    let wal = Wal::open(dir.path(), WalOptions::default().with_sync(policy)).unwrap();
    wal.log(&[b"x".as_slice()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.stats().fsyncs == 0 {
        assert!(Instant::now() < deadline, "background fsync never ran");
        std::thread::sleep(Duration::from_millis(2));
    }
    wal.log(&[b"y".as_slice()]).unwrap();
    wal.sync().unwrap();
    wal.close().unwrap();
    assert_eq!(read_all(dir.path()).0.len(), 2);
}

#[test]
fn size_bytes_counts_segments_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(wal.size_bytes().unwrap(), 0);
    wal.log(&[[1u8; 100]]).unwrap();
    assert_eq!(wal.size_bytes().unwrap(), 108);
    write_checkpoint(dir.path(), 0, [[2u8; 10]]).unwrap();
    assert_eq!(wal.size_bytes().unwrap(), 108 + 18);
    assert_eq!(wal.dir(), dir.path());
    wal.close().unwrap();
}

#[test]
fn reader_on_missing_dir_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = WalReader::open(&dir.path().join("nope")).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::Io {
                op: "read directory",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nope"));
}

/// How a property test damages a valid WAL.
#[derive(Debug, Clone)]
enum Damage {
    Flip {
        segment: usize,
        pos: usize,
        mask: u8,
    },
    Zero {
        segment: usize,
        pos: usize,
        len: usize,
    },
    Append {
        segment: usize,
        bytes: Vec<u8>,
    },
    TruncateLast {
        pos: usize,
    },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 1..=255u8).prop_map(|(segment, pos, mask)| Damage::Flip {
            segment,
            pos,
            mask
        }),
        (any::<usize>(), any::<usize>(), 1..64usize).prop_map(|(segment, pos, len)| Damage::Zero {
            segment,
            pos,
            len
        }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(segment, bytes)| Damage::Append { segment, bytes }),
        any::<usize>().prop_map(|pos| Damage::TruncateLast { pos }),
    ]
}

fn apply(dir: &Path, damage: &Damage) {
    let segs = segments(dir).unwrap();
    let pick = |i: usize| segment_path(dir, segs[i % segs.len()]);
    match damage {
        Damage::Flip { segment, pos, mask } => {
            let path = pick(*segment);
            let mut bytes = fs::read(&path).unwrap();
            if !bytes.is_empty() {
                let at = pos % bytes.len();
                bytes[at] ^= mask;
                fs::write(&path, bytes).unwrap();
            }
        }
        Damage::Zero { segment, pos, len } => {
            let path = pick(*segment);
            let mut bytes = fs::read(&path).unwrap();
            if !bytes.is_empty() {
                let at = pos % bytes.len();
                let end = (at + len).min(bytes.len());
                bytes[at..end].fill(0);
                fs::write(&path, bytes).unwrap();
            }
        }
        Damage::Append { segment, bytes } => {
            let path = pick(*segment);
            let mut old = fs::read(&path).unwrap();
            old.extend_from_slice(bytes);
            fs::write(&path, old).unwrap();
        }
        Damage::TruncateLast { pos } => {
            let path = pick(segs.len() - 1);
            let len = file_len(&path);
            let cut = *pos as u64 % (len + 1);
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(cut)
                .unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Damage never causes a panic; what replay returns is an exact prefix
    /// of what was written; repair always succeeds and leaves a log that
    /// replays that prefix plus new appends without error.
    #[test]
    fn random_damage_yields_a_prefix_and_repairs(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..30),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), opts(200)).unwrap();
        wal.log(&records).unwrap();
        wal.close().unwrap();
        for d in &damages {
            apply(dir.path(), d);
        }
        let (got, err) = read_all(dir.path());
        let got = data(&got);
        prop_assert!(got.len() <= records.len());
        prop_assert_eq!(&got[..], &records[..got.len()]);

        let wal = Wal::open(dir.path(), opts(200)).unwrap();
        match &err {
            None => {}
            Some(e @ WalError::Corruption { .. }) => { wal.repair(e).unwrap(); }
            Some(e) => prop_assert!(false, "unexpected error {}", e),
        }
        wal.log(&[b"tail".as_slice()]).unwrap();
        wal.close().unwrap();
        let (again, err) = read_all(dir.path());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(data(&again), [got, vec![b"tail".to_vec()]].concat());
    }

    /// Arbitrary bytes as segment files: never a panic, and every record
    /// returned passed its checksum.
    #[test]
    fn arbitrary_segment_bytes_never_panic(
        files in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2048), 1..3),
        zero_prefix in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (i, bytes) in files.iter().enumerate() {
            let mut bytes = bytes.clone();
            if zero_prefix && bytes.len() >= 4 {
                // Small lengths make well-formed-looking headers likely.
                bytes[1..4].fill(0);
            }
            fs::write(segment_path(dir.path(), i as u64), bytes).unwrap();
        }
        let (got, err) = read_all(dir.path());
        for (_, _, bytes) in &got {
            prop_assert!(bytes.len() <= 2048);
        }
        if let Some(e) = err {
            prop_assert!(matches!(e, WalError::Corruption { .. }), "{}", e);
        }
    }
}
