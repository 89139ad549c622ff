//! Record values the workload writes: each one names its writer and carries
//! filler derived from that name, so any record read back can be traced to
//! the produce that wrote it, and any damage to it is visible.
//!
//! Layout: `r<producer>.<seq>;` then filler bytes. `seq` counts records per
//! producer, so `(producer, seq)` is unique across the run.

use crate::rng::Rng;
use bytes::Bytes;
use std::fmt;

/// Which record a value is: unique across a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    pub producer: u32,
    pub seq: u64,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}.{}", self.producer, self.seq)
    }
}

/// The value of record `key`, `len` bytes long (at least its name).
pub fn make_value(key: RecordKey, len: usize) -> Bytes {
    let mut v = format!("{key};").into_bytes();
    let target = len.max(v.len());
    let mut rng = Rng::new((u64::from(key.producer) << 40) ^ key.seq);
    while v.len() < target {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(target);
    Bytes::from(v)
}

/// The record a value names, if it is one of ours.
pub fn parse_key(value: &[u8]) -> Option<RecordKey> {
    let end = value.iter().take(32).position(|&b| b == b';')?;
    let text = std::str::from_utf8(value.get(1..end)?).ok()?;
    if value.first() != Some(&b'r') {
        return None;
    }
    let (producer, seq) = text.split_once('.')?;
    Some(RecordKey { producer: producer.parse().ok()?, seq: seq.parse().ok()? })
}

/// A record value's fingerprint: its CRC-32C and its length. The checker
/// compares every record it sees with the one sent, so this must be fast.
pub fn fingerprint(value: &[u8]) -> u64 {
    (u64::from(crc32c::crc32c(value)) << 32) | (value.len() as u64 & 0xffff_ffff)
}

/// FNV-1a 64: a stable hash (unlike std's, fixed across releases) for
/// fingerprints and the final state hash.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_extend(0xcbf2_9ce4_8422_2325, bytes)
}

pub fn fnv1a_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value names its record, has the asked length, and differs per key.
    #[test]
    fn values_round_trip() {
        for len in [0, 1, 5, 9, 100, 3000] {
            let key = RecordKey { producer: 3, seq: 17 };
            let v = make_value(key, len);
            assert_eq!(parse_key(&v), Some(key));
            assert!(v.len() >= "r3.17;".len());
            if len >= 6 {
                assert_eq!(v.len(), len);
            }
            assert_eq!(v, make_value(key, len));
        }
        let a = make_value(RecordKey { producer: 1, seq: 2 }, 64);
        let b = make_value(RecordKey { producer: 1, seq: 3 }, 64);
        assert_ne!(fnv1a(&a), fnv1a(&b));
        assert_eq!(parse_key(b"garbage"), None);
        assert_eq!(parse_key(b"rx.1;"), None);
    }
}
