//! Giving log cache memory back before the kernel kills the broker, and
//! taking it again once the pressure is gone.
//!
//! Every upkeep (1 s) the server compares what counts against each memory
//! limit that applies (`host_memory`: the cgroup's charge against
//! `memory.high`/`memory.max`, or MemTotal - MemAvailable on the host)
//! with two thresholds. Above `SHRINK_ABOVE_PERCENT` of a limit, the cache
//! gives back what brings usage down to `GROW_BELOW_PERCENT`, out of what
//! it holds now; below `GROW_BELOW_PERCENT` of every limit, it may grow
//! back toward its configured size by the room left under that threshold,
//! so that filling it again does not cross back into shrinking. Between
//! the two, the budget stays.
//!
//! Why polling and not PSI triggers (`memory.pressure` with a threshold,
//! woken by poll): a trigger says that tasks stalled on memory, which
//! happens only once the kernel is already reclaiming hard; it needs a
//! thread blocked in poll, write access to the pressure file (often
//! read-only in containers) and, before 6.x kernels, privileges for
//! unprivileged triggers. A second's poll of a few small files is cheap,
//! sees usage approach the limit before any stall, and works on v1, v2 and
//! hosts without a limit alike. Growth of usage faster than that (a burst
//! of 512 MiB request buffers within a second) is what the request budget
//! bounds, not this.

use crate::host_memory::{MemoryFiles, MemoryReading};
use crate::metered_disk::ServerBroker;

/// Above this share of a limit in use, the cache shrinks.
pub const SHRINK_ABOVE_PERCENT: u64 = 90;
/// Below this share of every limit, the cache grows back; a shrink aims
/// here.
pub const GROW_BELOW_PERCENT: u64 = 80;

/// Growth smaller than this waits (unless it reaches the configured
/// size): usage hovering just under the grow threshold would otherwise
/// grow the budget by a few KiB, and log it, every second. One write
/// buffer block.
pub const GROW_STEP_BYTES_MIN: usize = 4 << 20;

/// The cache as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheBudget {
    /// The budget in force, and the most it may grow to.
    pub capacity_bytes: usize,
    pub configured_bytes: usize,
    /// Memory the cache holds now: its chunks and the pool's free blocks.
    pub held_bytes: usize,
}

/// The budget the cache should have under one `reading`.
pub fn budget_under(reading: &MemoryReading, cache: CacheBudget) -> usize {
    let limit = reading.limit_bytes;
    let (shrink_above, grow_below) = (limit / 100 * SHRINK_ABOVE_PERCENT, limit / 100 * GROW_BELOW_PERCENT);
    let used = reading.used_bytes;
    if used > shrink_above {
        // Out of what it holds: lowering a budget the cache does not fill
        // would free nothing now.
        let excess = usize::try_from(used - grow_below).unwrap_or(usize::MAX);
        return cache.held_bytes.min(cache.capacity_bytes).saturating_sub(excess);
    }
    if used < grow_below && cache.capacity_bytes < cache.configured_bytes {
        let room = usize::try_from(grow_below - used).unwrap_or(usize::MAX);
        let grown = cache.held_bytes.saturating_add(room).min(cache.configured_bytes);
        if grown >= cache.capacity_bytes.saturating_add(GROW_STEP_BYTES_MIN)
            || grown == cache.configured_bytes
        {
            return cache.capacity_bytes.max(grown);
        }
    }
    cache.capacity_bytes
}

/// The budget under every reading: the smallest any of them allows. With
/// no readings, the budget stays.
pub fn budget_under_all(readings: &[MemoryReading], cache: CacheBudget) -> usize {
    readings.iter().map(|r| budget_under(r, cache)).min().unwrap_or(cache.capacity_bytes)
}

/// The upkeep's watch over memory.
pub struct MemoryWatch {
    files: MemoryFiles,
}

impl MemoryWatch {
    /// This host's. `None` under the simulator, whose brokers share one
    /// process and must not depend on the machine running them.
    pub fn host() -> Option<MemoryWatch> {
        if cfg!(madsim) {
            return None;
        }
        Some(MemoryWatch { files: MemoryFiles::host() })
    }

    pub fn with_files(files: MemoryFiles) -> MemoryWatch {
        MemoryWatch { files }
    }

    /// Reads memory and sets the cache's budget accordingly; returns the
    /// budget in force.
    pub fn observe(&self, broker: &ServerBroker) -> usize {
        let readings = self.files.readings();
        let stats = broker.cache_stats();
        let cache = CacheBudget {
            capacity_bytes: stats.capacity_bytes,
            configured_bytes: stats.configured_capacity_bytes,
            held_bytes: stats.bytes + stats.pooled_bytes,
        };
        let target = budget_under_all(&readings, cache);
        if target == cache.capacity_bytes && target == cache.configured_bytes {
            return target;
        }
        // Called while shrunk even when the budget stays: blocks that came
        // back to the pool since (chunks a fetch still read) are parked.
        let set = broker.set_cache_capacity(target);
        let tightest = readings.iter().min_by_key(|r| r.headroom_bytes());
        let (limit_bytes, used_bytes) = tightest.map_or((0, 0), |r| (r.limit_bytes, r.used_bytes));
        if set < cache.capacity_bytes {
            let started = std::time::Instant::now();
            crate::memory::give_back_freed_memory();
            tracing::warn!(
                from_bytes = cache.capacity_bytes,
                to_bytes = set,
                used_bytes,
                limit_bytes,
                trim_ms = started.elapsed().as_millis() as u64,
                "memory pressure: log cache shrunk"
            );
        } else if set > cache.capacity_bytes {
            tracing::info!(
                from_bytes = cache.capacity_bytes,
                to_bytes = set,
                configured_bytes = cache.configured_bytes,
                used_bytes,
                limit_bytes,
                "memory pressure eased: log cache grows back"
            );
        }
        set
    }
}

#[cfg(test)]
mod tests;
