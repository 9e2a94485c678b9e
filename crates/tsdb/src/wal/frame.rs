//! Record framing: `[u32 len LE][u32 crc LE][payload]`.
//!
//! The CRC32 (IEEE, via crc32fast) covers the four length bytes *and* the
//! payload. Covering the length means a damaged length field is caught by the
//! checksum rather than silently shifting frame boundaries, and it makes an
//! all-zero header impossible for a real frame: `crc32([0, 0, 0, 0])` is
//! `0x2144_DF1C`, so an empty record is stored as `00000000 1CDF4421`.

use super::CorruptionReason;

/// Bytes in a frame header: length then checksum, both little-endian `u32`.
pub(crate) const HEADER_LEN: usize = 8;

/// The longest record payload a frame can carry.
pub const MAX_RECORD_LEN: usize = u32::MAX as usize;

/// CRC32 over the little-endian length followed by the payload.
pub(crate) fn checksum(len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Encodes the header for `payload`, or `None` if it is longer than
/// [`MAX_RECORD_LEN`].
pub(crate) fn encode_header(payload: &[u8]) -> Option<[u8; HEADER_LEN]> {
    let len = u32::try_from(payload.len()).ok()?;
    let crc = checksum(len, payload);
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..].copy_from_slice(&crc.to_le_bytes());
    Some(header)
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Payload length in bytes.
    pub(crate) len: u32,
    /// Stored checksum.
    pub(crate) crc: u32,
}

impl Header {
    /// Decodes a header, rejecting the all-zero pattern of a zero-filled tail.
    pub(crate) fn decode(bytes: [u8; HEADER_LEN]) -> Result<Self, CorruptionReason> {
        if bytes == [0u8; HEADER_LEN] {
            return Err(CorruptionReason::ZeroHeader);
        }
        let [l0, l1, l2, l3, c0, c1, c2, c3] = bytes;
        Ok(Self {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        })
    }

    /// Checks `payload` (which must be `self.len` bytes) against the checksum.
    pub(crate) fn verify(&self, payload: &[u8]) -> Result<(), CorruptionReason> {
        if checksum(self.len, payload) == self.crc {
            Ok(())
        } else {
            Err(CorruptionReason::ChecksumMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_record_header_is_not_zero() {
        let header = encode_header(&[]).unwrap();
        assert_eq!(header, [0, 0, 0, 0, 0x1C, 0xDF, 0x44, 0x21]);
        let decoded = Header::decode(header).unwrap();
        assert_eq!(decoded.len, 0);
        decoded.verify(&[]).unwrap();
    }

    #[test]
    fn zero_header_is_rejected() {
        assert_eq!(
            Header::decode([0; HEADER_LEN]),
            Err(CorruptionReason::ZeroHeader)
        );
    }

    #[test]
    fn header_round_trip_and_bit_flips() {
        let payload = b"hello wal";
        let header = encode_header(payload).unwrap();
        let decoded = Header::decode(header).unwrap();
        assert_eq!(decoded.len as usize, payload.len());
        decoded.verify(payload).unwrap();
        for bit in 0..payload.len() * 8 {
            let mut damaged = *payload;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                decoded.verify(&damaged),
                Err(CorruptionReason::ChecksumMismatch)
            );
        }
        // A flipped length bit is caught by the checksum too.
        let mut header = header;
        header[0] ^= 1;
        let damaged = Header::decode(header).unwrap();
        assert_eq!(
            damaged.verify(&payload[..8]),
            Err(CorruptionReason::ChecksumMismatch)
        );
    }
}
