//! The process's memory policy, set once at start-up by the binaries.
//!
//! A broker allocates and frees buffers of up to several MiB all the time:
//! request bodies, the aligned chunks an append writes, the reads a fetch
//! serves. glibc's malloc serves every allocation above its mmap threshold
//! (128 KiB, adapting up to 32 MiB) with a fresh `mmap` and hands it back
//! with `munmap` when freed, and trims the heap's top whenever 128 KiB are
//! free there. Each new buffer then starts as untouched pages: a page fault
//! per 4 KiB, and on a virtual machine whose host reclaims the guest's free
//! memory, a host-side fault as well. Measured on the development VM, a
//! warm consume after a produce ran at 385 MB/s with the defaults and at
//! 800 MB/s with this policy. Memory freed stays in the process for the
//! next buffer instead; the cost is that the resident size stays near its
//! peak, as a JVM broker's heap does.

use crate::host_memory::MemoryFiles;

/// The log cache's share of the memory the process may use when not
/// configured: the page cache a JVM broker relies on typically gets most of
/// what the heap leaves; a quarter leaves room for request buffers and
/// other processes.
const LOG_CACHE_SHARE: u64 = 4;

/// Used when the memory limit cannot be read.
const LOG_CACHE_FALLBACK_BYTES: usize = 1 << 30;

/// A quarter of the memory this process may use, for `--log-cache-bytes`:
/// the host's `MemTotal`, or its cgroup's limit when smaller (a container).
pub fn default_log_cache_bytes() -> usize {
    log_cache_bytes_for(&MemoryFiles::host())
}

/// `default_log_cache_bytes` from the memory files at `files`.
pub fn log_cache_bytes_for(files: &MemoryFiles) -> usize {
    match files.limit_bytes() {
        Some(bytes) => usize::try_from(bytes / LOG_CACHE_SHARE).unwrap_or(usize::MAX),
        None => LOG_CACHE_FALLBACK_BYTES,
    }
}

/// Largest allocation still served from malloc's heap (larger ones are
/// rare: a frame is at most `Limits::frame_size_bytes_max`).
const MMAP_THRESHOLD_BYTES: i32 = 256 * 1024 * 1024;

/// Free bytes at the heap's top before malloc gives them back to the
/// kernel: never, in practice, below the peak a broker reaches.
const TRIM_THRESHOLD_BYTES: i32 = i32::MAX;

/// Keeps freed memory in the process for reuse (glibc only; elsewhere the
/// allocator's own policy stands). `give_back_freed_memory` undoes it for
/// the moment, when the log cache shrinks under memory pressure.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning parameters; it is called
    // before any thread is started.
    unsafe {
        let ok = libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1;
        if !ok {
            tracing::debug!("mallopt refused the memory policy; keeping malloc's defaults");
        }
    }
}

/// Returns the memory malloc holds free to the kernel (glibc's
/// `malloc_trim`, which also releases whole free pages inside the heap):
/// after the log cache shrinks, the buffers it let go of would otherwise
/// stay resident under `keep_freed_memory`'s policy. Walks the heap: call
/// it off the async threads.
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes malloc's
    // own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
