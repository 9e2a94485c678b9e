//! Block ids: ULIDs (<https://github.com/ulid/spec>), 128 bits written as 26
//! characters of Crockford base32: 48 bits of milliseconds since the epoch,
//! then 80 bits of entropy. Ids sort by creation time as strings and as
//! numbers, so a directory listing is in creation order.
//!
//! No random-number crate is needed: the entropy is a hash keyed by
//! `std`'s `RandomState` (seeded from the OS once per process) over the
//! clock's nanoseconds, the process id and a counter. Within one process
//! ids are also monotonic: a second id in the same millisecond is the
//! previous one plus one, as in Prometheus's `ulid.Monotonic`.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Length of the text form.
pub const ULID_LEN: usize = 26;

/// A block id. Orders by creation time (then entropy).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ulid(u128);

/// The text is not a ULID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a ULID: expected 26 Crockford base32 characters with a first character of 0-7")]
pub struct UlidParseError;

impl Ulid {
    /// A new id for the current time. Ids made by one process are strictly
    /// increasing.
    pub fn new() -> Ulid {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX) & ((1 << 48) - 1);
        let entropy = entropy(now.subsec_nanos());
        let fresh = Ulid::from_parts(ms, entropy);
        static LAST: Mutex<Ulid> = Mutex::new(Ulid(0));
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        let id = if fresh <= *last {
            // Same (or an earlier, if the clock stepped back) millisecond:
            // keep the order by counting up from the last id.
            Ulid(last.0.wrapping_add(1))
        } else {
            fresh
        };
        *last = id;
        id
    }

    /// An id from a millisecond timestamp (low 48 bits used) and 80 bits of
    /// entropy (high bits ignored).
    pub const fn from_parts(ms: u64, entropy: u128) -> Ulid {
        Ulid(((ms as u128 & 0xFFFF_FFFF_FFFF) << 80) | (entropy & ((1u128 << 80) - 1)))
    }

    /// The 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Builds an id from its 128-bit value.
    pub const fn from_u128(v: u128) -> Ulid {
        Ulid(v)
    }

    /// Creation time in milliseconds since the epoch.
    pub const fn timestamp_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }

    /// The 26-character text form.
    pub fn encode(self) -> [u8; ULID_LEN] {
        let mut out = [0u8; ULID_LEN];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 5 * (ULID_LEN - 1 - i);
            *c = ALPHABET[((self.0 >> shift) & 0x1f) as usize];
        }
        out
    }
}

impl Default for Ulid {
    fn default() -> Self {
        Ulid::new()
    }
}

fn entropy(nanos: u32) -> u128 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = KEYS.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let word = |salt: u64| {
        let mut h = keys.build_hasher();
        h.write_u64(salt);
        h.write_u32(nanos);
        h.write_u32(std::process::id());
        h.write_u64(n);
        h.finish()
    };
    (u128::from(word(1)) << 64) | u128::from(word(2))
}

fn decode_char(c: u8) -> Option<u8> {
    let v = match c.to_ascii_uppercase() {
        c @ b'0'..=b'9' => c - b'0',
        // Crockford's aliases: O -> 0, I and L -> 1.
        b'O' => 0,
        b'I' | b'L' => 1,
        c => ALPHABET.iter().position(|&a| a == c)? as u8,
    };
    Some(v)
}

impl FromStr for Ulid {
    type Err = UlidParseError;

    fn from_str(s: &str) -> Result<Ulid, UlidParseError> {
        let b = s.as_bytes();
        if b.len() != ULID_LEN {
            return Err(UlidParseError);
        }
        let mut v: u128 = 0;
        for (i, &c) in b.iter().enumerate() {
            let d = decode_char(c).ok_or(UlidParseError)?;
            // 26 * 5 = 130 bits: the first character carries 3.
            if i == 0 && d > 7 {
                return Err(UlidParseError);
            }
            v = (v << 5) | u128::from(d);
        }
        Ok(Ulid(v))
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.encode();
        // The alphabet is ASCII.
        f.write_str(std::str::from_utf8(&e).unwrap_or("?"))
    }
}

impl fmt::Debug for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Ulid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ulid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ulid, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_ids_increase_and_parse_back() {
        let ids: Vec<Ulid> = (0..1000).map(|_| Ulid::new()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_string() < w[1].to_string());
        }
        for id in ids {
            assert_eq!(id.to_string().parse::<Ulid>().unwrap(), id);
        }
    }

    #[test]
    fn known_value() {
        let id = Ulid::from_parts(1_469_918_176_385, 0);
        assert_eq!(id.to_string(), "01ARYZ6S410000000000000000");
        assert_eq!(id.timestamp_ms(), 1_469_918_176_385);
        assert!("81ARYZ6S410000000000000000".parse::<Ulid>().is_err());
        assert!("01ARYZ6S41000000000000000".parse::<Ulid>().is_err());
        assert!("01ARYZ6S41000000000000000U".parse::<Ulid>().is_err());
        assert_eq!("01aryz6s41oooooooooooooooo".parse::<Ulid>().unwrap(), id);
    }

    proptest! {
        #[test]
        fn prop_text_round_trip(v in any::<u128>()) {
            let id = Ulid::from_u128(v);
            prop_assert_eq!(id.to_string().parse::<Ulid>().unwrap(), id);
        }
    }
}
