//! A global allocator that refuses any single allocation above a bound, so
//! that an allocation sized by an unchecked length from the input (a batch
//! length, a record count) aborts the run instead of passing unnoticed.
//! libFuzzer's `-malloc_limit_mb` needs sanitizer malloc hooks, which a
//! `-s none` build lacks; this works in every build, including the replay
//! test.

use std::alloc::{GlobalAlloc, Layout, System};

/// No legitimate allocation in these targets comes near this: inputs are a
/// few KiB, the engine reads at most 1 MiB chunks plus one batch of at most
/// `BATCH_SIZE_BYTES_MAX` (64 MiB), bounded by the bytes actually present.
pub const ALLOC_BYTES_MAX: usize = 96 << 20;

pub struct LimitAlloc;

// SAFETY: forwards to `System` unchanged, or returns null (allocation
// failure), which the GlobalAlloc contract allows.
unsafe impl GlobalAlloc for LimitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_BYTES_MAX {
            return std::ptr::null_mut();
        }
        // SAFETY: our caller keeps `alloc`'s contract (a non-zero size),
        // which is all System asks.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_BYTES_MAX {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`: the caller's contract is System's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: every block this allocator hands out is System's, so
        // `ptr`, from this allocator with `layout` (the caller's promise),
        // came from System with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_BYTES_MAX {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` is System's with `layout`, as in `dealloc`; the
        // caller keeps `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
