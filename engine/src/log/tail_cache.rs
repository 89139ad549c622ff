//! The most recently written bytes of the active segment, kept in memory.
//!
//! Consumers mostly read what was just written. The active segment is
//! written with direct I/O, which bypasses (and invalidates) the page cache,
//! so without this cache every tailing read would go to the device. The
//! cache holds the written chunks as they were (shared `Bytes`, no copy),
//! bounded by `TAIL_CACHE_BYTES`, oldest dropped first.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Upper bound of cached bytes per log.
pub const TAIL_CACHE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Default)]
pub struct TailCache {
    /// Segment the chunks belong to.
    base_offset: u64,
    /// `(file position, bytes)`, contiguous and ascending.
    chunks: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

impl TailCache {
    /// Remembers a chunk just written at `position` of segment `base_offset`.
    pub fn push(&mut self, base_offset: u64, position: u64, chunk: Bytes) {
        let contiguous = self.chunks.back().is_some_and(|(p, b)| p + b.len() as u64 == position);
        if base_offset != self.base_offset || !contiguous {
            self.clear();
            self.base_offset = base_offset;
        }
        self.bytes += chunk.len();
        self.chunks.push_back((position, chunk));
        while self.bytes > TAIL_CACHE_BYTES && self.chunks.len() > 1 {
            if let Some((_, old)) = self.chunks.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
    }

    /// Bytes `[position, position + len)` of segment `base_offset`, if all
    /// of them are cached.
    pub fn get(&self, base_offset: u64, position: u64, len: usize) -> Option<Bytes> {
        let (first, _) = self.chunks.front()?;
        let (last, last_bytes) = self.chunks.back()?;
        let end = position + len as u64;
        if base_offset != self.base_offset || position < *first || end > last + last_bytes.len() as u64 {
            return None;
        }
        let at = self.chunks.partition_point(|(p, b)| p + b.len() as u64 <= position);
        let (p, b) = &self.chunks[at];
        let start = (position - p) as usize;
        if end <= p + b.len() as u64 {
            return Some(b.slice(start..start + len));
        }
        let mut out = BytesMut::with_capacity(len);
        for (p, b) in self.chunks.iter().skip(at) {
            let from = position.saturating_sub(*p) as usize;
            let to = ((end - p) as usize).min(b.len());
            out.extend_from_slice(&b[from..to]);
            if p + b.len() as u64 >= end {
                break;
            }
        }
        Some(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads inside one chunk slice it, reads across chunks concatenate,
    /// anything outside the cached range misses, and a gap resets it.
    #[test]
    fn serves_only_what_it_holds() {
        let mut c = TailCache::default();
        c.push(0, 100, Bytes::from_static(b"abcdef"));
        c.push(0, 106, Bytes::from_static(b"ghij"));
        assert_eq!(c.get(0, 101, 3).as_deref(), Some(&b"bcd"[..]));
        assert_eq!(c.get(0, 104, 4).as_deref(), Some(&b"efgh"[..]));
        assert_eq!(c.get(0, 100, 10).as_deref(), Some(&b"abcdefghij"[..]));
        assert_eq!(c.get(0, 99, 2), None);
        assert_eq!(c.get(0, 108, 3), None);
        assert_eq!(c.get(5, 101, 3), None);
        c.push(0, 200, Bytes::from_static(b"zz"));
        assert_eq!(c.get(0, 101, 3), None, "a gap starts the cache over");
        assert_eq!(c.get(0, 200, 2).as_deref(), Some(&b"zz"[..]));
    }
}
