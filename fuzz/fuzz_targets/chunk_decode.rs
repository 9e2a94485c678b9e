//! Decodes arbitrary bytes as a chunk: must never panic (the decoder is
//! bounds checked and wraps all arithmetic), the cursor must agree with
//! `decode_all`, and whatever decodes must survive a round trip through
//! every encoding bit for bit.
//!
//! Run with `cargo fuzz run chunk_decode` from this directory (nightly).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_tsdb::chunkenc::{decode_all, ChunkEncoder, ChunkIter, Encoding};

fuzz_target!(|data: &[u8]| {
    let decoded = decode_all(data);

    // The cursor sees the same samples and the same error.
    let mut it = ChunkIter::new(data);
    let mut n = 0;
    while it.next() {
        let (t, v) = it.at();
        if let Ok(all) = &decoded {
            assert_eq!((t, v.to_bits()), (all[n].0, all[n].1.to_bits()));
        }
        n += 1;
    }
    assert!(!it.next(), "a finished cursor stays finished");
    match &decoded {
        Ok(all) => {
            assert_eq!(all.len(), n);
            assert_eq!(it.err(), None);
        }
        Err(e) => assert_eq!(it.err(), Some(*e)),
    }

    // Seeking never panics and lands on a qualifying sample.
    let mut it = ChunkIter::new(data);
    for target in [i64::MIN, -1, 0, 1 << 40, i64::MAX] {
        if it.seek(target) {
            assert!(it.at().0 >= target);
        }
    }

    // Re-encoding what decoded is lossless in every encoding.
    let Ok(samples) = decoded else { return };
    for enc in Encoding::ALL {
        let mut e = ChunkEncoder::new(enc);
        for &(t, v) in &samples {
            e.append(t, v).expect("a decoded chunk fits a chunk");
        }
        assert_eq!(usize::from(e.num_samples()), samples.len());
        let again = decode_all(&e.bytes()).expect("an encoded chunk decodes");
        assert_eq!(again.len(), samples.len());
        for (a, b) in again.iter().zip(&samples) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
        }
    }
});
