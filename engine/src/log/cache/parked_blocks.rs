//! Pool blocks the cache holds back while its budget is shrunk, their pages
//! handed back to the kernel.
//!
//! A shrink (`LogCache::set_capacity`) evicts chunks, and their blocks come
//! back to the pool's free list, which keeps up to the whole configured
//! budget for reuse. Freeing them to malloc would not lower the resident
//! size either: the server tells glibc to keep freed memory (see the
//! server's `memory.rs`). So the cache takes the surplus free blocks out of
//! the pool and `madvise(MADV_DONTNEED)`s them: the kernel reclaims their
//! pages at once, and a block touched again later starts as zero pages. The
//! blocks stay allocated (address space only) and go back to the pool
//! when the budget grows again, before the pool allocates fresh ones.
//!
//! Invariants: every parked block came from `take` of the cache's pool and
//! is used by no one; each is given back to that pool (on growth, or when
//! the cache is dropped), never freed here.

use crate::io::block_pool::BlockPool;
use std::ptr::NonNull;

#[derive(Default)]
pub(super) struct ParkedBlocks {
    blocks: Vec<Block>,
}

struct Block(NonNull<u8>);

// SAFETY: a parked block is owned by the cache alone.
unsafe impl Send for Block {}

impl ParkedBlocks {
    pub(super) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Moves blocks between the pool's free list and here so that the pool
    /// keeps at most `free_blocks_max` free (parking the surplus) and, below
    /// that, gets parked blocks back first. Returns the blocks parked
    /// (positive) or given back (negative) by this call.
    pub(super) fn rebalance(&mut self, pool: &BlockPool, free_blocks_max: usize) -> isize {
        let free = pool.free_blocks();
        if free > free_blocks_max {
            let surplus = free - free_blocks_max;
            for _ in 0..surplus {
                // Another thread may have emptied the free list meanwhile:
                // then `take` allocates a fresh block, whose untouched pages
                // cost nothing parked here either.
                let block = pool.take();
                release_pages(block, pool.block_bytes());
                self.blocks.push(Block(block));
            }
            return surplus as isize;
        }
        let back = (free_blocks_max - free).min(self.blocks.len());
        for _ in 0..back {
            let Some(Block(block)) = self.blocks.pop() else { break };
            // SAFETY: taken from this pool by `rebalance`, used by no one.
            unsafe { pool.give(block) };
        }
        -(back as isize)
    }

    /// Gives every parked block back to `pool`.
    pub(super) fn return_all(&mut self, pool: &BlockPool) {
        for Block(block) in self.blocks.drain(..) {
            // SAFETY: taken from this pool by `rebalance`, used by no one.
            unsafe { pool.give(block) };
        }
    }
}

/// Lets the kernel reclaim the whole pages of `len` bytes at `ptr`; their
/// contents read as zeros afterwards. Best effort: on failure the block
/// merely stays resident.
fn release_pages(ptr: NonNull<u8>, len: usize) {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let start = (ptr.as_ptr() as usize).next_multiple_of(page);
        let end = (ptr.as_ptr() as usize + len) / page * page;
        if end <= start {
            return;
        }
        // SAFETY: `[start, end)` lies inside the block, which the caller
        // owns and no one reads; MADV_DONTNEED on private anonymous memory
        // only replaces its pages with zero pages.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "madvise(MADV_DONTNEED) refused");
        }
    }
    #[cfg(not(unix))]
    let _ = (ptr, len);
}
