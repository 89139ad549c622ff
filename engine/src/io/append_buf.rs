//! An aligned buffer that one writer fills front to back while what it has
//! filled is shared, without copies, as `Bytes`.
//!
//! A log appends each group-commit round to its current `AppendBuf` and hands
//! the disk one slice covering the round: from the start of the block the
//! round begins in, zero-padded to a whole block, as direct I/O needs.
//! Consecutive rounds land side by side in memory as they do in the file, so
//! the log cache holds one growing slice per buffer instead of one small
//! slice per round, and a read spanning rounds is still one slice.
//!
//! Soundness rests on two rules, which the methods enforce:
//! - bytes below `filled` are never written again, and the slices handed
//!   out by `slice` lie below `filled`;
//! - a write slice also covers the zero padding past `filled`, which the next
//!   append overwrites; `can_append` is false while any write slice is alive
//!   (each holds a token whose count is checked), so that never happens
//!   under a reader.

use super::aligned::{round_up, DIRECT_IO_ALIGN};
use super::block_pool::BlockPool;
use bytes::Bytes;
use std::alloc::{self, Layout};
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::Arc;

pub struct AppendBuf {
    memory: Arc<Memory>,
    /// Bytes `[0, filled)` are written and immutable.
    filled: usize,
    /// One clone per live write slice.
    writes: Arc<()>,
}

/// The allocation: `cap` bytes aligned to `DIRECT_IO_ALIGN`, initialized
/// only as far as the owner's `filled` plus the padding it zeroed.
struct Memory {
    ptr: NonNull<u8>,
    cap: usize,
    /// Where the block goes back to, if it came from a pool.
    pool: Option<Arc<BlockPool>>,
}

// SAFETY: Memory is a plain heap allocation; AppendBuf's rules keep writes
// and shared reads on disjoint bytes.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            // SAFETY: taken from this pool in `AppendBuf::from_pool`; the
            // last slice of it is gone.
            unsafe { pool.give(self.ptr) };
            return;
        }
        let layout = Layout::from_size_align(self.cap, DIRECT_IO_ALIGN).expect("aligned layout");
        // SAFETY: allocated in `AppendBuf::starting_with` with this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

/// A shared view of initialized bytes of a `Memory`.
struct Slice {
    memory: Arc<Memory>,
    range: Range<usize>,
    /// Held by write slices, which cover padding the writer reuses.
    _write: Option<Arc<()>>,
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `range` lies within the allocation, its bytes are
        // initialized, and the writer does not write them while this exists.
        unsafe {
            std::slice::from_raw_parts(self.memory.ptr.as_ptr().add(self.range.start), self.range.len())
        }
    }
}

impl AppendBuf {
    /// A buffer of at least `capacity` bytes whose first bytes are `prefix`
    /// (already written: the file's last partial block).
    pub fn starting_with(capacity: usize, prefix: &[u8]) -> AppendBuf {
        let cap = round_up(capacity.max(prefix.len()).max(1), DIRECT_IO_ALIGN);
        let layout = Layout::from_size_align(cap, DIRECT_IO_ALIGN).expect("aligned layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else { alloc::handle_alloc_error(layout) };
        AppendBuf::new(Memory { ptr, cap, pool: None }, prefix)
    }

    /// A buffer of one block of `pool`, starting with `prefix` (at most a
    /// block).
    pub fn from_pool(pool: &Arc<BlockPool>, prefix: &[u8]) -> AppendBuf {
        assert!(prefix.len() <= pool.block_bytes(), "the prefix fits a block");
        let memory = Memory { ptr: pool.take(), cap: pool.block_bytes(), pool: Some(pool.clone()) };
        AppendBuf::new(memory, prefix)
    }

    fn new(memory: Memory, prefix: &[u8]) -> AppendBuf {
        // SAFETY: `prefix.len() <= cap` (both constructors); the allocation
        // is the buffer's own and does not overlap `prefix`.
        unsafe { std::ptr::copy_nonoverlapping(prefix.as_ptr(), memory.ptr.as_ptr(), prefix.len()) };
        AppendBuf { memory: Arc::new(memory), filled: prefix.len(), writes: Arc::new(()) }
    }

    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Bytes of memory the buffer holds (and each of its slices keeps alive).
    pub fn capacity(&self) -> usize {
        self.memory.cap
    }

    /// Whether `len` more bytes, zero-padded to a multiple of `pad_to`, fit,
    /// and no write slice of an earlier append is still alive.
    pub fn can_append(&self, len: usize, pad_to: usize) -> bool {
        Arc::strong_count(&self.writes) == 1 && round_up(self.filled + len, pad_to) <= self.memory.cap
    }

    /// Copies `parts` in after the filled bytes, lets `patch` rewrite them in
    /// place, and zero-pads to a multiple of `pad_to`. Returns the write
    /// slice: from the start of the `pad_to` block the parts begin in (the
    /// buffer's start is block-aligned in the file) to the padding's end.
    ///
    /// Panics unless `can_append` said the parts fit.
    pub fn append(&mut self, parts: &[&[u8]], pad_to: usize, patch: impl FnOnce(&mut [u8])) -> Bytes {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        assert!(self.can_append(len, pad_to), "append past the buffer or under a live write");
        let (start, end) = (self.filled, self.filled + len);
        let padded = round_up(end, pad_to.max(1));
        let base = self.memory.ptr.as_ptr();
        // SAFETY: `[start, padded)` lies within the allocation (checked
        // above); no slice covers it: shared slices end at or below
        // `filled`, and no write slice is alive (checked above).
        let region = unsafe {
            let mut at = start;
            for part in parts {
                std::ptr::copy_nonoverlapping(part.as_ptr(), base.add(at), part.len());
                at += part.len();
            }
            std::ptr::write_bytes(base.add(end), 0, padded - end);
            std::slice::from_raw_parts_mut(base.add(start), len)
        };
        patch(region);
        self.filled = end;
        let from = start - start % pad_to.max(1);
        let write =
            Slice { memory: self.memory.clone(), range: from..padded, _write: Some(self.writes.clone()) };
        Bytes::from_owner(write)
    }

    /// Filled bytes, shared.
    pub fn slice(&self, range: Range<usize>) -> Bytes {
        assert!(range.start <= range.end && range.end <= self.filled, "only filled bytes are shared");
        Bytes::from_owner(Slice { memory: self.memory.clone(), range, _write: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounds land side by side after the prefix; each write slice starts at
    /// the block the round begins in and is zero-padded to a whole block;
    /// shared slices of earlier rounds stay valid while later ones are added.
    #[test]
    fn appends_side_by_side_with_block_aligned_writes() {
        let mut buf = AppendBuf::starting_with(4096, b"tail");
        let write = buf.append(&[b"ab", b"cd"], 512, |data| data[0] = b'A');
        assert_eq!(write.len(), 512);
        assert_eq!(&write[..8], b"tailAbcd");
        assert!(write[8..].iter().all(|&b| b == 0));
        assert_eq!(write.as_ptr() as usize % DIRECT_IO_ALIGN, 0);
        let first = buf.slice(4..8);
        assert!(!buf.can_append(1, 512), "the write slice is alive");
        drop(write);
        assert!(buf.can_append(1, 512));
        let write = buf.append(&[&[7u8; 600]], 512, |_| {});
        assert_eq!(write.len(), 1024, "from the block holding byte 8 to past byte 608");
        assert_eq!(&write[..8], b"tailAbcd");
        assert_eq!(&first[..], b"Abcd", "earlier slices are untouched");
        assert_eq!(buf.filled(), 608);
        assert_eq!(buf.slice(0..608).len(), 608);
        drop(write);
        assert!(buf.can_append(4096 - 608, 512));
        assert!(!buf.can_append(4096 - 608 + 1, 512), "past the capacity");
    }

    /// A pooled buffer's block goes back to the pool once the writer and
    /// every slice of it are gone, not before.
    #[test]
    fn pooled_blocks_return_when_the_last_slice_goes() {
        let pool = BlockPool::new(4096, 4);
        let mut buf = AppendBuf::from_pool(&pool, b"");
        drop(buf.append(&[b"abc"], 1, |_| {}));
        let slice = buf.slice(0..3);
        drop(buf);
        assert_eq!(pool.free_blocks(), 0, "a slice still reads the block");
        assert_eq!(&slice[..], b"abc");
        drop(slice);
        assert_eq!(pool.free_blocks(), 1);
    }

    #[test]
    #[should_panic(expected = "only filled bytes are shared")]
    fn unfilled_bytes_are_never_shared() {
        let buf = AppendBuf::starting_with(4096, b"x");
        let _ = buf.slice(0..2);
    }
}
