//! Byte encoding helpers shared by the block files: an append-only encode
//! buffer and a bounds-checked decode cursor.
//!
//! The decoder never indexes: every read goes through `get`, and a short or
//! malformed read yields [`Malformed`] with the offset where it happened, so
//! no file content can make a reader panic (Prometheus's
//! `tsdb/encoding/encoding.go`, with errors instead of a sticky `Err()`).

/// Bytes of a CRC32.
pub(crate) const CRC_LEN: usize = 4;

/// A decode failure at a byte offset relative to the start of the decoded
/// region; callers add the region's file offset and name the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// Offset of the failed read.
    pub(crate) offset: usize,
    /// What was being read.
    pub(crate) what: &'static str,
}

/// Appends integers in the block encodings to a `Vec<u8>`.
#[derive(Debug, Default)]
pub(crate) struct Encbuf {
    pub(crate) buf: Vec<u8>,
}

impl Encbuf {
    pub(crate) fn put_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn put_u32_be(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn put_u64_be(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Unsigned LEB128 varint.
    pub(crate) fn put_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Signed varint, zigzag coded (as Go's `binary.PutVarint`).
    pub(crate) fn put_varint(&mut self, v: i64) {
        self.put_uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn put_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A length-prefixed byte string.
    pub(crate) fn put_uvarint_bytes(&mut self, b: &[u8]) {
        self.put_uvarint(b.len() as u64);
        self.put_bytes(b);
    }
}

/// Number of bytes `put_uvarint(v)` writes.
pub(crate) fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A bounds-checked read cursor over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Decbuf<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decbuf<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decbuf { buf, pos: 0 }
    }

    /// Current offset from the start of the buffer.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, Malformed> {
        Err(Malformed {
            offset: self.pos,
            what,
        })
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail(what),
        }
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = match self.pos.checked_add(n) {
            Some(e) => e,
            None => return self.fail(what),
        };
        match self.buf.get(self.pos..end) {
            Some(b) => {
                self.pos = end;
                Ok(b)
            }
            None => self.fail(what),
        }
    }

    pub(crate) fn u32_be(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let b = self.bytes(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    pub(crate) fn u64_be(&mut self, what: &'static str) -> Result<u64, Malformed> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// An unsigned LEB128 varint of at most 10 bytes that fits in a `u64`.
    #[inline]
    pub(crate) fn uvarint(&mut self, what: &'static str) -> Result<u64, Malformed> {
        let start = self.pos;
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                self.pos = start;
                return self.fail(what);
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                self.pos = start;
                return self.fail(what);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                self.pos = start;
                return self.fail(what);
            }
        }
    }

    /// A zigzag varint.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i64, Malformed> {
        let z = self.uvarint(what)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A uvarint that must fit in a `usize` and be at most `max`.
    pub(crate) fn uvarint_len(
        &mut self,
        max: usize,
        what: &'static str,
    ) -> Result<usize, Malformed> {
        let start = self.pos;
        let v = self.uvarint(what)?;
        match usize::try_from(v) {
            Ok(n) if n <= max => Ok(n),
            _ => {
                self.pos = start;
                self.fail(what)
            }
        }
    }

    /// A uvarint length followed by that many bytes.
    pub(crate) fn uvarint_bytes(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let n = self.uvarint_len(self.remaining(), what)?;
        self.bytes(n, what)
    }
}

/// CRC32 (IEEE, as every vigil file uses) of `b`.
pub(crate) fn crc32(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn prop_varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut e = Encbuf::default();
            e.put_uvarint(u);
            prop_assert_eq!(e.buf.len(), uvarint_len(u));
            e.put_varint(i);
            let mut d = Decbuf::new(&e.buf);
            prop_assert_eq!(d.uvarint("u").unwrap(), u);
            prop_assert_eq!(d.varint("i").unwrap(), i);
            prop_assert!(d.is_empty());
        }

        #[test]
        fn prop_garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..24)) {
            let mut d = Decbuf::new(&b);
            let _ = d.uvarint("a");
            let _ = d.uvarint_bytes("b");
            let _ = d.u32_be("c");
            let _ = d.u64_be("d");
            let _ = d.varint("e");
            prop_assert!(d.pos() <= b.len());
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let eleven = [0xffu8; 11];
        assert!(Decbuf::new(&eleven).uvarint("x").is_err());
        // 2^64 does not fit.
        let mut big = [0xffu8; 10];
        big[9] = 0x02;
        assert!(Decbuf::new(&big).uvarint("x").is_err());
        let mut max = [0xffu8; 10];
        max[9] = 0x01;
        assert_eq!(Decbuf::new(&max).uvarint("x").unwrap(), u64::MAX);
        let mut d = Decbuf::new(&[0x80]);
        assert_eq!(d.uvarint("x").unwrap_err().offset, 0);
    }
}
