//! Recently written log bytes, kept in memory across all logs of a broker.
//!
//! Segments are written with direct I/O, which bypasses (and invalidates)
//! the page cache. Kafka's consumers mostly read what was written a moment
//! to a few minutes ago, and Kafka serves those reads from the page cache;
//! this cache plays that part. It keeps each written chunk as it was handed
//! to the disk (shared `Bytes`, no copy), under one byte budget for the
//! whole broker, and evicts the oldest written chunk first, whichever log it
//! belongs to: a ring over the broker's recent writes.
//!
//! The budget can shrink and grow back at run time (`set_capacity`): the
//! owner gives memory back under pressure instead of the process being
//! killed. The engine does not look at the host's memory itself; the
//! server decides and passes the number in.
//!
//! Invariants:
//! - `bytes` is the sum of the memory the chunks in `chunks` pin (each at
//!   least its length: a chunk is a slice of a whole write buffer, which
//!   stays allocated while any slice of it lives);
//! - `capacity <= configured_capacity`, the budget the cache was made with;
//! - after an insert or a `set_capacity`, `bytes <= capacity`;
//! - after a `set_capacity`, the pool's free blocks and the cached bytes
//!   together stay within `capacity` (the surplus is parked, its pages
//!   given back to the kernel: see `parked_blocks`);
//! - a chunk is exactly the bytes of its log at `(segment, position)` when it
//!   was written: a log that truncates or deletes a segment removes the
//!   chunks past the cut first, so a hit never serves bytes the log no
//!   longer holds;
//! - every batch in a chunk passed `Log::validate` (CRC included) before it
//!   was written, so readers need not check its CRC again.

mod parked_blocks;
#[cfg(test)]
mod shrink_tests;

use super::chunk::WRITE_BUF_BYTES_MAX;
use super::open_files::{OpenFiles, OPEN_SEGMENT_FILES_MAX};
use crate::io::block_pool::BlockPool;
use bytes::{Bytes, BytesMut};
use parked_blocks::ParkedBlocks;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// `(log, segment base offset, position in the segment)`.
type Key = (u64, u64, u64);

/// A read served from one chunk carries at least this much (or all that was
/// asked); below it, the read gathers the following chunks into one copy,
/// so that data written in small rounds is not served in small fetches.
pub const SLICE_BYTES_MIN: usize = 64 * 1024;

/// The broker-wide cache; logs use it through their `CacheHandle`.
pub struct LogCache {
    /// The budget given at start-up; `set_capacity` never goes above it.
    configured_capacity: usize,
    slice_bytes_min: usize,
    /// The blocks busy logs write into: what the cache holds, recycled.
    pool: Arc<BlockPool>,
    inner: Mutex<Inner>,
    /// Free pool blocks held back while the budget is shrunk. Locked on its
    /// own (never inside `inner`'s lock): parking makes system calls.
    parked: Mutex<ParkedBlocks>,
    /// The other thing every log of the broker shares: the bound on sealed
    /// segment files held open.
    open_files: Arc<OpenFiles>,
}

/// A cached chunk and the bytes of memory it keeps allocated.
struct Entry {
    bytes: Bytes,
    pinned: usize,
}

#[derive(Default)]
struct Inner {
    /// The budget in force: `configured_capacity` unless shrunk.
    capacity: usize,
    chunks: BTreeMap<Key, Entry>,
    /// Keys in insertion order, for eviction. May name chunks already gone
    /// (removed by a truncation), which eviction skips.
    order: VecDeque<Key>,
    bytes: usize,
    next_log: u64,
    hits: u64,
    misses: u64,
    /// Counts `remove_from` and `remove_segment` calls (of every log): a
    /// read from the disk that started before one may hold bytes its log
    /// no longer has, and is not cached (`insert_read`).
    removals: u64,
}

/// What `/metrics` reports of the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// The budget in force, and the one configured (the most it grows to).
    pub capacity_bytes: usize,
    pub configured_capacity_bytes: usize,
    pub bytes: usize,
    /// Free blocks the pool keeps for reuse, and blocks parked while the
    /// budget is shrunk (their pages given back to the kernel).
    pub pooled_bytes: usize,
    pub parked_bytes: usize,
    pub chunks: usize,
    pub hits: u64,
    pub misses: u64,
    /// Sealed segment files held open (`OpenFiles`), and opened on demand
    /// since start.
    pub open_segment_files: usize,
    pub segment_file_opens: u64,
}

impl LogCache {
    /// A cache holding at most `capacity` bytes (0 turns it off).
    pub fn new(capacity: usize) -> Arc<LogCache> {
        LogCache::with_slice_bytes_min(capacity, SLICE_BYTES_MIN)
    }

    /// With another threshold than `SLICE_BYTES_MIN` (tests and the
    /// simulator use small ones, so that small batches take both paths).
    pub fn with_slice_bytes_min(capacity: usize, slice_bytes_min: usize) -> Arc<LogCache> {
        let pool = BlockPool::new(WRITE_BUF_BYTES_MAX, capacity / WRITE_BUF_BYTES_MAX);
        let open_files = OpenFiles::new(OPEN_SEGMENT_FILES_MAX);
        Arc::new(LogCache {
            configured_capacity: capacity,
            slice_bytes_min,
            pool,
            inner: Mutex::new(Inner { capacity, ..Inner::default() }),
            parked: Mutex::default(),
            open_files,
        })
    }

    pub fn open_files(&self) -> &Arc<OpenFiles> {
        &self.open_files
    }

    /// Faults in the memory of the whole budget now rather than on first
    /// use (see `BlockPool`); returns the bytes touched.
    pub fn pretouch(&self) -> usize {
        self.pool.pretouch()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn parked(&self) -> MutexGuard<'_, ParkedBlocks> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the budget to `bytes`, at most the configured one, and returns
    /// the budget now in force. Shrinking evicts the oldest chunks down to
    /// it and parks the pool's free blocks beyond what it leaves room for;
    /// growing lets the cache fill again, reusing parked blocks first.
    /// Called again with the same number, it parks blocks that came back to
    /// the pool since (a chunk evicted while a fetch still read it).
    pub fn set_capacity(&self, bytes: usize) -> usize {
        let capacity = bytes.min(self.configured_capacity);
        let (evicted, held) = {
            let mut inner = self.inner();
            inner.capacity = capacity;
            let evicted = inner.evict_to(capacity);
            (evicted, inner.bytes)
        };
        // Dropped outside the lock: a chunk's block goes back to the pool
        // when its last slice is dropped, and the rebalance below counts it.
        drop(evicted);
        let free_blocks_max = (capacity - held.min(capacity)) / self.pool.block_bytes();
        self.parked().rebalance(&self.pool, free_blocks_max);
        capacity
    }

    /// A handle for one log; its chunks go when the handle is dropped.
    pub fn register(self: &Arc<Self>) -> CacheHandle {
        let mut inner = self.inner();
        inner.next_log += 1;
        CacheHandle { cache: self.clone(), log: inner.next_log }
    }

    pub fn stats(&self) -> CacheStats {
        let (open_segment_files, segment_file_opens) = self.open_files.stats();
        let block_bytes = self.pool.block_bytes();
        let pooled_bytes = self.pool.free_blocks() * block_bytes;
        let parked_bytes = self.parked().len() * block_bytes;
        let inner = self.inner();
        CacheStats {
            open_segment_files,
            segment_file_opens,
            capacity_bytes: inner.capacity,
            configured_capacity_bytes: self.configured_capacity,
            bytes: inner.bytes,
            pooled_bytes,
            parked_bytes,
            chunks: inner.chunks.len(),
            hits: inner.hits,
            misses: inner.misses,
        }
    }
}

impl Drop for LogCache {
    fn drop(&mut self) {
        // Parked blocks belong to the pool, which frees its free list when
        // the last log lets go of it.
        let parked = self.parked.get_mut().unwrap_or_else(|e| e.into_inner());
        parked.return_all(&self.pool);
    }
}

impl Inner {
    fn check_invariants(&self) {
        debug_assert_eq!(self.bytes, self.chunks.values().map(|e| e.pinned).sum::<usize>());
    }

    /// Holds `entry` at `key` (replacing what was there: a grown chunk
    /// keeps its place in the eviction order), evicting the oldest chunks
    /// while over budget; returns them, for the caller to drop once the lock
    /// is let go. `None`: not held (empty, or bigger than the whole budget).
    fn insert(&mut self, key: Key, entry: Entry) -> Option<Vec<Entry>> {
        if entry.bytes.is_empty() || entry.pinned > self.capacity {
            return None;
        }
        self.bytes += entry.pinned;
        match self.chunks.insert(key, entry) {
            Some(old) => self.bytes -= old.pinned,
            None => self.order.push_back(key),
        }
        Some(self.evict_to(self.capacity))
    }

    /// Evicts the oldest chunks until at most `capacity` bytes are held;
    /// returns them, for the caller to drop.
    fn evict_to(&mut self, capacity: usize) -> Vec<Entry> {
        let mut evicted = Vec::new();
        while self.bytes > capacity {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(entry) = self.chunks.remove(&oldest) {
                self.bytes -= entry.pinned;
                evicted.push(entry);
            }
        }
        debug_assert!(self.bytes <= capacity);
        self.check_invariants();
        evicted
    }

    /// Removes the chunks whose keys lie in `range`.
    fn remove_range(&mut self, range: std::ops::RangeInclusive<Key>) {
        let doomed: Vec<Key> = self.chunks.range(range).map(|(k, _)| *k).collect();
        for key in doomed {
            if let Some(entry) = self.chunks.remove(&key) {
                self.bytes -= entry.pinned;
            }
        }
        // Keys of removed chunks stay in `order` until eviction passes them;
        // bound how many can pile up.
        if self.order.len() > 2 * self.chunks.len() + 1024 {
            let chunks = &self.chunks;
            self.order.retain(|k| chunks.contains_key(k));
        }
        self.check_invariants();
    }
}

/// One log's part of the cache.
pub struct CacheHandle {
    cache: Arc<LogCache>,
    log: u64,
}

impl CacheHandle {
    /// The blocks the log's write buffers come from.
    pub(super) fn pool(&self) -> &Arc<BlockPool> {
        &self.cache.pool
    }

    /// Remembers `chunk`, just written at `position` of segment `segment`
    /// (replacing what was there: a write buffer's chunk grows with each
    /// round), evicting the oldest chunks of any log while over budget.
    /// `pinned` is the memory the chunk keeps allocated, its whole write
    /// buffer: the budget bounds memory, not just the bytes served, so that
    /// the cache's blocks and the pool's free ones add up to the budget.
    pub fn insert(&self, segment: u64, position: u64, chunk: Bytes, pinned: usize) {
        let pinned = pinned.max(chunk.len());
        let evicted =
            self.cache.inner().insert((self.log, segment, position), Entry { bytes: chunk, pinned });
        drop(evicted);
    }

    /// Where `removals` stands; a read ahead takes it just before it looks
    /// at the segment it is about to read (not under the log's state lock,
    /// which the cache's lock stays outside of).
    pub(super) fn removals(&self) -> u64 {
        self.cache.inner().removals
    }

    /// Where the cached bytes of `segment` around `position` (just past
    /// bytes a read was served from the cache) run on to without a gap, if
    /// that is less than `len` bytes past it: the walk stops there, as a
    /// reader with that much cached ahead of it needs nothing read ahead yet.
    pub(super) fn cached_run_end(&self, segment: u64, position: u64, len: usize) -> Option<u64> {
        let last_served = position.checked_sub(1)?;
        let inner = self.cache.inner();
        let (&(_, _, at), first) =
            inner.chunks.range((self.log, segment, 0)..=(self.log, segment, last_served)).next_back()?;
        let mut end = at + first.bytes.len() as u64;
        if end <= last_served {
            return None;
        }
        let limit = position.saturating_add(len as u64);
        for (&(_, _, at), entry) in
            inner.chunks.range((self.log, segment, end)..=(self.log, segment, u64::MAX))
        {
            if at != end || end >= limit {
                break;
            }
            end = at + entry.bytes.len() as u64;
        }
        (end < limit).then_some(end)
    }

    /// Caches `chunk`, whole batches just read (and checked) from the
    /// disk at `position` of `segment`, unless a removal happened since
    /// `removals` was taken (the bytes may be gone from the log: a
    /// truncation's cut, a swap) or the bytes at `position` are cached
    /// already. Whether it was cached.
    pub(super) fn insert_read(&self, segment: u64, position: u64, chunk: Bytes, removals: u64) -> bool {
        let mut inner = self.cache.inner();
        if inner.removals != removals || self.find(&inner, segment, position, 1).is_some() {
            return false;
        }
        let pinned = chunk.len();
        let evicted = inner.insert((self.log, segment, position), Entry { bytes: chunk, pinned });
        drop(inner);
        evicted.is_some()
    }

    /// Bytes of segment `segment` from `position` on, if cached: a slice of
    /// the chunk holding `position`, up to `len` bytes or the chunk's end
    /// (chunks hold whole batches, so the slice ends at a batch boundary)
    /// when that is at least `SLICE_BYTES_MIN` (by default); otherwise all `len` bytes,
    /// copied together from contiguous chunks. `None` if the bytes at
    /// `position` are not cached, or (when gathering) not all `len` are.
    pub fn get(&self, segment: u64, position: u64, len: usize) -> Option<Bytes> {
        let mut inner = self.cache.inner();
        let found = self.find(&inner, segment, position, len);
        if found.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        found
    }

    fn find(&self, inner: &Inner, segment: u64, position: u64, len: usize) -> Option<Bytes> {
        let end = position + len as u64;
        // The chunk holding `position`: the last one starting at or before it.
        let (&(_, _, first_at), Entry { bytes: first, .. }) =
            inner.chunks.range((self.log, segment, 0)..=(self.log, segment, position)).next_back()?;
        if first_at + first.len() as u64 <= position {
            return None;
        }
        let from = (position - first_at) as usize;
        let in_first = len.min(first.len() - from);
        if in_first >= len.min(self.cache.slice_bytes_min) {
            return Some(first.slice(from..from + in_first));
        }
        let mut out = BytesMut::with_capacity(len);
        out.extend_from_slice(&first[from..]);
        let mut next_at = first_at + first.len() as u64;
        let after_first = (self.log, segment, first_at + 1)..=(self.log, segment, u64::MAX);
        for (&(_, _, at), Entry { bytes: chunk, .. }) in inner.chunks.range(after_first) {
            if at != next_at {
                return None;
            }
            let take = ((end - at) as usize).min(chunk.len());
            out.extend_from_slice(&chunk[..take]);
            next_at = at + chunk.len() as u64;
            if next_at >= end {
                return Some(out.freeze());
            }
        }
        None
    }

    /// Forgets what the log holds from `position` of segment `segment` on,
    /// later segments included: a truncation's cut. A chunk straddling the
    /// cut goes whole.
    pub fn remove_from(&self, segment: u64, position: u64) {
        let mut inner = self.cache.inner();
        let straddling = inner
            .chunks
            .range((self.log, segment, 0)..(self.log, segment, position))
            .next_back()
            .filter(|((_, _, at), entry)| at + entry.bytes.len() as u64 > position)
            .map(|(k, _)| *k);
        let from = straddling.unwrap_or((self.log, segment, position));
        inner.remove_range(from..=(self.log, u64::MAX, u64::MAX));
        inner.removals += 1;
    }

    /// Forgets a deleted segment.
    pub fn remove_segment(&self, segment: u64) {
        let mut inner = self.cache.inner();
        inner.remove_range((self.log, segment, 0)..=(self.log, segment, u64::MAX));
        inner.removals += 1;
    }
}

impl Drop for CacheHandle {
    fn drop(&mut self) {
        self.cache.inner().remove_range((self.log, 0, 0)..=(self.log, u64::MAX, u64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    /// Reads inside one chunk slice it, reads across contiguous chunks
    /// concatenate, and anything not wholly cached misses.
    #[test]
    fn serves_only_what_it_holds() {
        let cache = LogCache::new(1 << 20);
        let log = cache.register();
        log.insert(0, 100, b("abcdef"), 0);
        log.insert(0, 106, b("ghij"), 0);
        log.insert(0, 200, b("zz"), 0);
        log.insert(7, 0, b("seg7"), 0);
        assert_eq!(log.get(0, 101, 3).as_deref(), Some(&b"bcd"[..]));
        assert_eq!(log.get(0, 104, 4).as_deref(), Some(&b"efgh"[..]));
        assert_eq!(log.get(0, 100, 10).as_deref(), Some(&b"abcdefghij"[..]));
        assert_eq!(log.get(0, 99, 2), None);
        assert_eq!(log.get(0, 108, 3), None, "runs past the last contiguous chunk");
        assert_eq!(log.get(0, 110, 1), None, "between chunks");
        assert_eq!(log.get(0, 200, 2).as_deref(), Some(&b"zz"[..]));
        assert_eq!(log.get(7, 1, 3).as_deref(), Some(&b"eg7"[..]));
        assert_eq!(log.get(5, 0, 1), None);
        let other = cache.register();
        assert_eq!(other.get(0, 101, 3), None, "logs do not see each other's chunks");
        let stats = cache.stats();
        assert_eq!((stats.bytes, stats.chunks), (16, 4));
    }

    /// A chunk large enough serves a read alone, ending at its own end; the
    /// reader then reads on from the next chunk.
    #[test]
    fn large_chunks_serve_slices_of_themselves() {
        let cache = LogCache::new(1 << 20);
        let log = cache.register();
        let big = Bytes::from(vec![7u8; 2 * SLICE_BYTES_MIN]);
        log.insert(0, 0, big.clone(), 0);
        log.insert(0, big.len() as u64, b("after"), 0);
        let got = log.get(0, 10, 4 * SLICE_BYTES_MIN).expect("cached");
        assert_eq!(got.len(), big.len() - 10, "up to the chunk's end");
        assert_eq!(got.as_ptr(), big[10..].as_ptr(), "a slice, not a copy");
        let near_end = big.len() as u64 - 3;
        assert_eq!(log.get(0, near_end, 8).as_deref(), Some(&b"\x07\x07\x07after"[..]), "gathered");
        assert_eq!(log.get(0, near_end, 9), None, "gathering needs every byte asked for");
    }

    /// The budget is broker-wide and the oldest write goes first, whichever
    /// log wrote it; dropping a handle frees its log's bytes.
    #[test]
    fn evicts_oldest_writes_across_logs() {
        let cache = LogCache::new(10);
        let (a, b_log) = (cache.register(), cache.register());
        a.insert(0, 0, b("aaaa"), 0);
        b_log.insert(0, 0, b("bbbb"), 0);
        a.insert(0, 4, b("cccc"), 0);
        assert_eq!(a.get(0, 0, 1), None, "the oldest chunk was evicted");
        assert_eq!(b_log.get(0, 0, 4).as_deref(), Some(&b"bbbb"[..]));
        assert_eq!(a.get(0, 4, 4).as_deref(), Some(&b"cccc"[..]));
        assert_eq!(cache.stats().bytes, 8);
        a.insert(0, 8, b("too long to fit at all"), 0);
        assert_eq!(a.get(0, 8, 3), None, "a chunk over the whole budget is not kept");
        drop(a);
        assert_eq!(cache.stats().bytes, 4);
        assert_eq!(LogCache::new(0).register().get(0, 0, 0), None);
    }

    /// A chunk is charged the memory it pins (its write buffer), not only
    /// its length: two 4-byte chunks of 8-byte buffers overflow 10 bytes.
    #[test]
    fn charges_the_memory_a_chunk_pins() {
        let cache = LogCache::new(10);
        let log = cache.register();
        log.insert(0, 0, b("aaaa"), 8);
        log.insert(0, 4, b("bbbb"), 8);
        assert_eq!(log.get(0, 0, 1), None, "the first buffer was evicted");
        assert_eq!(log.get(0, 4, 4).as_deref(), Some(&b"bbbb"[..]));
        assert_eq!(cache.stats().bytes, 8);
        log.insert(0, 4, b("bbbbcc"), 8);
        assert_eq!(cache.stats().bytes, 8, "a grown chunk of the same buffer is charged once");
        log.insert(0, 10, b("c"), 11);
        assert_eq!(log.get(0, 10, 1), None, "a buffer over the whole budget is not kept");
    }

    /// A truncation drops the chunk it cuts through and everything after,
    /// in later segments too; a deleted segment drops only its own.
    #[test]
    fn truncation_and_deletion_forget_what_the_log_lost() {
        let cache = LogCache::new(1 << 20);
        let log = cache.register();
        log.insert(0, 0, b("0123"), 0);
        log.insert(0, 4, b("4567"), 0);
        log.insert(0, 8, b("89"), 0);
        log.insert(10, 0, b("next"), 0);
        log.remove_from(0, 6);
        assert_eq!(log.get(0, 0, 4).as_deref(), Some(&b"0123"[..]));
        assert_eq!(log.get(0, 4, 1), None, "the straddling chunk went whole");
        assert_eq!(log.get(0, 8, 1), None);
        assert_eq!(log.get(10, 0, 1), None);
        log.insert(0, 4, b("ab"), 0);
        assert_eq!(log.get(0, 0, 6).as_deref(), Some(&b"0123ab"[..]));
        log.remove_segment(0);
        assert_eq!(log.get(0, 0, 1), None);
        assert_eq!(cache.stats().bytes, 0);
        // Keys of removed chunks left in the eviction order are skipped.
        for i in 0..5000u64 {
            log.insert(1, i, b("x"), 0);
            log.remove_segment(1);
        }
        assert!(cache.inner().order.len() <= 1024 + 2);
    }
}
