//! [`Encoding::Xor`](super::Encoding::Xor): Prometheus' classic XOR chunk.
//!
//! After vigil's encoding byte the bytes are exactly a Prometheus `XORChunk`
//! (`tsdb/chunkenc/xor.go`): a big-endian `u16` sample count, the first
//! timestamp as a zigzag varint, the first value as 64 raw bits, the second
//! timestamp's delta as a uvarint, then per sample a delta-of-delta in the
//! buckets `0` / `10`+14 / `110`+17 / `1110`+20 / `1111`+64 bits and the
//! value XORed with the previous one (`0` same, `10` reuse the previous
//! leading/trailing-zero window, `11` + 5 bits leading zeros + 6 bits
//! significant bits + the bits).
//!
//! It is kept for compatibility and as the baseline that
//! [`Encoding::Adaptive`](super::Encoding::Adaptive) is measured against.

use super::bits::Truncated;
use super::bits::{BitReader, BitWriter};
use super::{unzigzag, zigzag, Fault};

/// Appender state.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    t: i64,
    v: u64,
    t_delta: u64,
    /// Leading zeros of the current XOR window; `0xff` until the first one.
    leading: u8,
    trailing: u8,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder {
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Appends a sample; `count` is the number of samples already written.
    #[inline(always)]
    pub(crate) fn append(&mut self, w: &mut BitWriter, count: u16, t: i64, v: f64) {
        let vbits = v.to_bits();
        let mut t_delta = 0;
        match count {
            0 => {
                write_uvarint(w, zigzag(t));
                w.write_long(vbits, 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                write_uvarint(w, t_delta);
                self.write_value(w, vbits);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    w.write_bit(false);
                } else if bit_range(dod, 14) {
                    w.write((0b10 << 14) | (dod as u64 & 0x3FFF), 16);
                } else if bit_range(dod, 17) {
                    w.write((0b110 << 17) | (dod as u64 & 0x1_FFFF), 20);
                } else if bit_range(dod, 20) {
                    w.write((0b1110 << 20) | (dod as u64 & 0xF_FFFF), 24);
                } else {
                    w.write(0b1111, 4);
                    w.write_long(dod as u64, 64);
                }
                self.write_value(w, vbits);
            }
        }
        self.t = t;
        self.v = vbits;
        self.t_delta = t_delta;
    }

    #[inline(always)]
    fn write_value(&mut self, w: &mut BitWriter, vbits: u64) {
        let x = vbits ^ self.v;
        if x == 0 {
            w.write_bit(false);
            return;
        }
        // Clamp so the count fits the 5-bit field.
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            w.write(0b10, 2);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.write_long(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            // 64 significant bits are written as 0, see xor.go.
            w.write(
                (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63),
                13,
            );
            w.write_long(x >> trailing, sig);
        }
    }
}

/// Whether `x` fits the `nbits` bucket as Prometheus defines it: the range
/// is `-(2^(n-1) - 1) ..= 2^(n-1)` (see `docs/bstream.md` upstream).
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

fn write_uvarint(w: &mut BitWriter, mut x: u64) {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while x >= 0x80 {
        buf[n] = (x as u8) | 0x80;
        x >>= 7;
        n += 1;
    }
    buf[n] = x as u8;
    w.write_bytes(&buf[..=n]);
}

/// Reads a Go `binary.Uvarint`, rejecting encodings that overflow 64 bits.
#[inline(always)]
fn read_uvarint(r: &mut BitReader<'_>) -> Result<u64, Fault> {
    let mut x = 0u64;
    for i in 0..10u32 {
        let b = r.read(8)?;
        if b < 0x80 {
            if i == 9 && b > 1 {
                return Err(Fault::Varint);
            }
            return Ok(x | (b << (7 * i)));
        }
        x |= (b & 0x7f) << (7 * i);
    }
    Err(Fault::Varint)
}

/// Iterator state.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u32,
    trailing: u32,
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Decoder {
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
        }
    }

    /// Decodes samples `index..` into `out` until it is full or a fault;
    /// returns how many were decoded.
    #[inline]
    pub(crate) fn decode(
        &mut self,
        r: &mut BitReader<'_>,
        mut index: u16,
        out: &mut [(i64, u64)],
    ) -> (usize, Option<Fault>) {
        // Work on copies so the state lives in registers.
        let mut d = self.clone();
        let mut rr = r.clone();
        let mut done = 0;
        let mut fault = None;
        for slot in out.iter_mut() {
            let res = if index >= 2 {
                d.sample(&mut rr)
            } else {
                d.first_samples(&mut rr, index)
            };
            if let Err(f) = res {
                fault = Some(f);
                break;
            }
            if rr.overrun() {
                fault = Some(Fault::Truncated(Truncated));
                break;
            }
            *slot = (d.t, d.v);
            done += 1;
            index = index.wrapping_add(1);
        }
        *self = d;
        *r = rr;
        (done, fault)
    }

    #[inline(never)]
    fn first_samples(&mut self, r: &mut BitReader<'_>, index: u16) -> Result<(), Fault> {
        if index == 0 {
            self.t = unzigzag(read_uvarint(r)?);
            self.v = r.read_long(64)?;
            Ok(())
        } else {
            self.t_delta = read_uvarint(r)?;
            self.t = self.t.wrapping_add(self.t_delta as i64);
            self.read_value(r)
        }
    }

    #[inline(always)]
    fn sample(&mut self, r: &mut BitReader<'_>) -> Result<(), Fault> {
        r.refill();
        if r.avail() == 0 {
            return Err(Fault::Truncated(Truncated));
        }
        // Number of leading ones of the bucket prefix, at most 4; the zero
        // bits past `avail` stop the count, so ones <= avail.
        let ones = (!r.peek_word()).leading_zeros().min(4).min(r.avail());
        let dod = match ones {
            0 => {
                r.consume(1);
                0
            }
            4 => {
                r.consume(4);
                r.read_long(64)? as i64
            }
            _ => {
                if ones + 1 > r.avail() {
                    return Err(Fault::Truncated(Truncated));
                }
                r.consume(ones + 1);
                // Buckets of 14, 17 and 20 bits.
                let sz = 11 + 3 * ones;
                let mut bits = r.read(sz)? as i64;
                if bits > 1 << (sz - 1) {
                    bits -= 1 << sz;
                }
                bits
            }
        };
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value(r)
    }

    #[inline(always)]
    fn read_value(&mut self, r: &mut BitReader<'_>) -> Result<(), Fault> {
        r.refill();
        if !r.read_bit()? {
            return Ok(());
        }
        if r.read_bit()? {
            let head = r.read(11)? as u32;
            let leading = head >> 6;
            let sig = match head & 63 {
                0 => 64,
                s => s,
            };
            if leading + sig > 64 {
                return Err(Fault::Window);
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
        }
        // Before any window (garbage only) leading and trailing are 0 and
        // this reads 64 bits.
        let sig = 64 - self.leading - self.trailing;
        let bits = r.read_long(sig)?;
        self.v ^= bits << self.trailing;
        Ok(())
    }
}
