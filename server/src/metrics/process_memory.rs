//! The process's memory as `/metrics` shows it: its resident set, the
//! tightest memory limit that applies and what counts against it (see
//! `host_memory`), and the log cache's budget, configured and in force
//! (it shrinks under memory pressure: `memory_pressure`).

use super::header;
use crate::host_memory::MemoryFiles;
use crate::metered_disk::ServerBroker;
use std::fmt::Write;

pub(super) fn render(out: &mut String, broker: &ServerBroker) {
    let stats = broker.cache_stats();
    let mut rows: Vec<(&str, &str, u64)> = vec![
        (
            "ringtail_log_cache_configured_bytes",
            "Memory budget of the log cache as configured; the budget in force shrinks below it under memory pressure.",
            stats.configured_capacity_bytes as u64,
        ),
        (
            "ringtail_log_cache_pooled_bytes",
            "Free write-buffer blocks kept for reuse within the log cache's budget.",
            stats.pooled_bytes as u64,
        ),
        (
            "ringtail_log_cache_parked_bytes",
            "Write-buffer blocks held back while the log cache is shrunk, their pages given back to the kernel.",
            stats.parked_bytes as u64,
        ),
    ];
    // The simulator's brokers share one process: nothing of the host's.
    if !cfg!(madsim) {
        let files = MemoryFiles::host();
        if let Some(resident) = files.resident_bytes() {
            rows.push(("ringtail_process_resident_bytes", "Resident set size of the process.", resident));
        }
        if let Some(tightest) = files.tightest() {
            rows.push((
                "ringtail_memory_limit_bytes",
                "The tightest memory limit on the process: its cgroup's (memory.high/max) or the host's.",
                tightest.limit_bytes,
            ));
            rows.push((
                "ringtail_memory_used_bytes",
                "Memory counted against ringtail_memory_limit_bytes, inactive file pages excluded.",
                tightest.used_bytes,
            ));
        }
    }
    for (name, help, value) in rows {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
}
