//! Engine bugs the targets detect, by id, so that a fuzzing session can
//! look past one that is reported but not fixed yet:
//! `RINGTAIL_FUZZ_TOLERATE=id1,id2 cargo fuzz run ...`. By default nothing
//! is tolerated: the replay test and plain fuzzing report every bug.
//!
//! - `truncate-max-timestamp`: `Log::truncate_to` at an offset whose batch
//!   starts exactly at an offset-index entry forgets the max timestamp of
//!   the batches before it (down to `i64::MIN` when no earlier entry), so
//!   `offset_for_timestamp` skips them and time retention treats the
//!   segment as expired.
//! - `recovery-overlap`: a segment whose base offset lies inside the
//!   segment before it is cut to zero bytes but kept, so the log's segments
//!   overlap and the log end offset drops to that segment's base (a debug
//!   assertion in `check_invariants` fires; in release later appends reuse
//!   offsets the earlier segment still holds). `segment_bytes` skips inputs
//!   that could overlap when tolerated.
//! - `index-trusted`: an offset-index entry of a segment below the recovery
//!   point whose position is not a batch start (one flipped bit in the
//!   `.index` file) passes `SegmentIndex::decode`; reads that start from it
//!   fail with `Corrupt` ("unsupported magic", ...) although the data is
//!   intact. The read path falls back to a scan from the segment start only
//!   when the batch found there has the wrong base offset, not when the
//!   bytes there are no batch.
//! - `read-spins-short-segment`: `Log::read` loops forever (100% CPU, no
//!   await point that yields) when a segment file holds fewer bytes than the
//!   segment's `size_bytes`: `read_at` returns a short buffer, no batch is
//!   consumed, and `read_segment` retries the same position. Reached after a
//!   failed fsync (the dirty pages are dropped: the file shrinks back to its
//!   durable length) on the poisoned log; `watch::WatchDisk` turns the spin
//!   into a panic. When tolerated, reads of poisoned logs are skipped.
//!   Found at engine 16b7f7d (regressions/log_recovery/read-spins-on-short-
//!   segment); since the tail cache (5ccb404) serves those reads from memory
//!   the input passes, but `read_segment` still makes no progress on a short
//!   read of data the cache does not hold.
//! - `cut-below-recovery-point`: recovery keeps corruption it finds below
//!   the recovery point only in segments wholly below it (with a successor
//!   whose base is at most the recovery point). The last (active) segment,
//!   and a segment that straddles the recovery point, are scanned and cut at
//!   the first invalid batch, even when the recovery point says the data
//!   there and after it was fsynced (acknowledged under flush=always): a bit
//!   flip in it deletes the acknowledged tail and every later segment.
//!   Reached e.g. when a flip hits a batch at offset 7 of segment 4..20 with
//!   recovery point 11 (cut at 7, segment 20 deleted), or when a truncation
//!   makes a segment with kept corruption the active one again and a clean
//!   restart (recovery point 10) cuts at the damaged batch 0.

use std::sync::OnceLock;

pub fn tolerated(id: &str) -> bool {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("RINGTAIL_FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|t| t == id)
}
