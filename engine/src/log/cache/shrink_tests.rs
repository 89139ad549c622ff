//! The budget shrinking and growing back at run time (`set_capacity`),
//! with chunks that pin real pool blocks, as a busy log's do.

use super::*;
use crate::io::append_buf::AppendBuf;

const BLOCK: usize = WRITE_BUF_BYTES_MAX;

/// A chunk of `text` written into a fresh block of the cache's pool: its
/// block goes back to the pool when the last slice of it is dropped.
fn pooled_chunk(log: &CacheHandle, text: &[u8]) -> Bytes {
    let buf = AppendBuf::from_pool(log.pool(), text);
    buf.slice(0..text.len())
}

/// Shrinking evicts the oldest chunks down to the new budget and inserts
/// respect it; growing lets the cache fill again, never above the
/// configured budget.
#[test]
fn shrinking_evicts_oldest_and_growing_refills() {
    let cache = LogCache::new(4 * BLOCK);
    let log = cache.register();
    for i in 0..4u64 {
        log.insert(0, i * 10, pooled_chunk(&log, b"0123456789"), BLOCK);
    }
    assert_eq!(cache.stats().bytes, 4 * BLOCK);
    assert_eq!(cache.set_capacity(BLOCK + BLOCK / 2), BLOCK + BLOCK / 2);
    let stats = cache.stats();
    assert_eq!((stats.bytes, stats.chunks), (BLOCK, 1), "down to what fits");
    assert_eq!(stats.capacity_bytes, BLOCK + BLOCK / 2);
    assert_eq!(stats.configured_capacity_bytes, 4 * BLOCK);
    assert_eq!(log.get(0, 0, 1), None, "the oldest went first");
    assert_eq!(log.get(0, 30, 10).as_deref(), Some(&b"0123456789"[..]), "the newest stayed");
    log.insert(0, 40, pooled_chunk(&log, b"abcdefghij"), BLOCK);
    assert_eq!(cache.stats().bytes, BLOCK, "an insert keeps to the shrunk budget");
    assert_eq!(log.get(0, 30, 1), None);

    assert_eq!(cache.set_capacity(usize::MAX), 4 * BLOCK, "never above the configured budget");
    for i in 5..8u64 {
        log.insert(0, i * 10, pooled_chunk(&log, b"klmnopqrst"), BLOCK);
    }
    let stats = cache.stats();
    assert_eq!((stats.bytes, stats.chunks), (4 * BLOCK, 4), "full again");
}

/// Blocks of evicted chunks do not stay pooled while the budget is shrunk:
/// the surplus is parked (pages given back to the kernel), and comes back
/// to the pool for reuse when the budget grows, before fresh allocations.
#[test]
fn shrinking_parks_pooled_blocks_and_growing_reuses_them() {
    let cache = LogCache::new(4 * BLOCK);
    let log = cache.register();
    for i in 0..4u64 {
        log.insert(0, i * 10, pooled_chunk(&log, b"0123456789"), BLOCK);
    }
    cache.set_capacity(BLOCK);
    let stats = cache.stats();
    assert_eq!(stats.bytes, BLOCK);
    assert_eq!(stats.pooled_bytes, 0, "the cache's block and the pool's fill the budget");
    assert_eq!(stats.parked_bytes, 3 * BLOCK, "the evicted chunks' blocks were parked");
    assert!(stats.bytes + stats.pooled_bytes <= stats.capacity_bytes);

    // A chunk evicted while a reader still holds a slice of it brings its
    // block back later; the next `set_capacity` parks it too.
    let held = log.get(0, 30, 10).expect("the newest chunk is cached");
    cache.set_capacity(0);
    assert_eq!(cache.stats().bytes, 0);
    assert_eq!(cache.stats().parked_bytes, 3 * BLOCK, "still read: not back yet");
    drop(held);
    assert_eq!(cache.stats().pooled_bytes, BLOCK, "back in the pool");
    cache.set_capacity(0);
    let stats = cache.stats();
    assert_eq!((stats.pooled_bytes, stats.parked_bytes), (0, 4 * BLOCK));

    cache.set_capacity(2 * BLOCK);
    let stats = cache.stats();
    assert_eq!((stats.pooled_bytes, stats.parked_bytes), (2 * BLOCK, 2 * BLOCK), "room for two");
    cache.set_capacity(4 * BLOCK);
    let stats = cache.stats();
    assert_eq!((stats.pooled_bytes, stats.parked_bytes), (4 * BLOCK, 0));
    // Dropping a cache with parked blocks hands them to the pool, which
    // frees them (checked by Miri or a leak checker; here: no panic).
    cache.set_capacity(0);
    drop(log);
    drop(cache);
}

/// A cache made with no budget stays off whatever it is told.
#[test]
fn a_cache_without_budget_stays_off() {
    let cache = LogCache::new(0);
    assert_eq!(cache.set_capacity(1 << 30), 0);
    let log = cache.register();
    log.insert(0, 0, Bytes::from_static(b"x"), 0);
    assert_eq!(log.get(0, 0, 1), None);
}
