//! Fixed-size aligned blocks, recycled: the memory busy logs append into and
//! the log cache then holds.
//!
//! Memory a process touches for the first time costs a page fault per page
//! and, on a virtual machine, often a fault in the host as well: measured on
//! the development VM, appending into fresh memory halved produce throughput
//! while the cache filled. A block the cache evicts comes back here and is
//! reused warm; `pretouch` faults the whole budget in up front, as a JVM
//! broker's `-XX:+AlwaysPreTouch` does for its heap.

use super::aligned::DIRECT_IO_ALIGN;
use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

pub struct BlockPool {
    block_bytes: usize,
    /// Free blocks kept for reuse at most; more are given back to malloc.
    max_free: usize,
    free: Mutex<Vec<Block>>,
}

struct Block(NonNull<u8>);

// SAFETY: a free block is owned by the pool alone.
unsafe impl Send for Block {}

impl BlockPool {
    pub fn new(block_bytes: usize, max_free: usize) -> Arc<BlockPool> {
        let block_bytes = block_bytes.max(DIRECT_IO_ALIGN).next_multiple_of(DIRECT_IO_ALIGN);
        Arc::new(BlockPool { block_bytes, max_free, free: Mutex::new(Vec::new()) })
    }

    pub fn block_bytes(&self) -> usize {
        self.block_bytes
    }

    fn layout(&self) -> Layout {
        Layout::from_size_align(self.block_bytes, DIRECT_IO_ALIGN).expect("aligned layout")
    }

    fn free(&self) -> MutexGuard<'_, Vec<Block>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block of `block_bytes`, aligned to `DIRECT_IO_ALIGN`; its contents
    /// are unspecified (possibly uninitialized).
    pub fn take(&self) -> NonNull<u8> {
        if let Some(Block(ptr)) = self.free().pop() {
            return ptr;
        }
        self.allocate()
    }

    fn allocate(&self) -> NonNull<u8> {
        let layout = self.layout();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc(layout) };
        NonNull::new(ptr).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    /// Returns a block from `take`.
    ///
    /// # Safety
    /// `ptr` came from `take` of this pool and nothing uses it any more.
    pub unsafe fn give(&self, ptr: NonNull<u8>) {
        let mut free = self.free();
        if free.len() < self.max_free {
            free.push(Block(ptr));
            return;
        }
        drop(free);
        // SAFETY: allocated by `take` with this layout (caller's promise).
        unsafe { alloc::dealloc(ptr.as_ptr(), self.layout()) }
    }

    /// Allocates every block the pool may keep and touches each page, so
    /// that appends never wait on a first-touch fault. Returns the bytes
    /// touched.
    pub fn pretouch(&self) -> usize {
        let mut touched = 0;
        while self.free().len() < self.max_free {
            // Fresh, not `take`: a free block popped and given back would
            // leave the count where it was.
            let ptr = self.allocate();
            for page in (0..self.block_bytes).step_by(4096) {
                // SAFETY: `page` lies inside the block just taken.
                unsafe { ptr.as_ptr().add(page).write_volatile(0) };
            }
            touched += self.block_bytes;
            // SAFETY: just taken, used by no one.
            unsafe { self.give(ptr) };
        }
        touched
    }

    pub fn free_blocks(&self) -> usize {
        self.free().len()
    }
}

impl Drop for BlockPool {
    fn drop(&mut self) {
        let layout = self.layout();
        for Block(ptr) in self.free().drain(..) {
            // SAFETY: allocated by `take` with this layout; the pool owns it.
            unsafe { alloc::dealloc(ptr.as_ptr(), layout) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks are aligned and come back for reuse, up to `max_free`;
    /// pretouch fills the pool to exactly that.
    #[test]
    fn recycles_up_to_its_bound() {
        let pool = BlockPool::new(10_000, 2);
        assert_eq!(pool.block_bytes(), 12_288);
        let (a, b, c) = (pool.take(), pool.take(), pool.take());
        assert_eq!(a.as_ptr() as usize % DIRECT_IO_ALIGN, 0);
        // SAFETY: taken above, unused.
        unsafe {
            pool.give(a);
            pool.give(b);
            pool.give(c);
        }
        assert_eq!(pool.free_blocks(), 2, "the third went back to malloc");
        let again = pool.take();
        assert_eq!(again, b, "the last block given is the first taken");
        assert_eq!(pool.pretouch(), 12_288);
        assert_eq!(pool.free_blocks(), 2);
        // SAFETY: taken above, unused.
        unsafe { pool.give(again) };
    }
}
