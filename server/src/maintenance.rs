//! The broker's periodic upkeep, which the engine leaves to its owner:
//! retention, interval flushes, offset checkpoints, reopening logs
//! poisoned by a failed write (a full disk, say) so that they take writes
//! again once the cause is gone, a warning when the data directory's
//! disk runs low, and the log cache's budget under memory pressure
//! (`memory_pressure`); and, on a faster timer of its own, the consumer-group
//! coordinator's deadlines (`tick_groups`).
//!
//! Engine calls are awaited to completion, never raced against the timer or
//! the shutdown signal: dropping one half-way could poison a log.

use crate::disk_space::LowSpace;
use crate::memory_pressure::MemoryWatch;
use crate::metered_disk::ServerBroker;
use ringtail_engine::log::cleaner::{Pacer, Unpaced};
use ringtail_engine::log::FlushPolicy;
use ringtail_engine::watch;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;

/// Upkeep period: retention, checkpoints, poisoned-log recovery.
pub const MAINTENANCE_INTERVAL_MS: u64 = 1000;

/// Period of the group coordinator's timers: session expiry, rebalance
/// deadlines and the initial rebalance delay fire at most this late.
pub const GROUP_TICK_INTERVAL_MS: u64 = 100;

/// Fires the coordinator's deadlines every `GROUP_TICK_INTERVAL_MS` until
/// `shutdown` turns true. A task of its own, so that a long retention pass
/// never delays a session expiry.
pub async fn tick_groups(broker: Arc<ServerBroker>, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = ticker(GROUP_TICK_INTERVAL_MS);
    loop {
        tokio::select! {
        biased;
            _ = ticks.tick() => broker.tick_groups().await,
            _ = crate::shutdown::signalled(&mut shutdown) => return,
        }
    }
}

/// Cleans compacted logs every `backoff_ms` until `shutdown` turns true. A
/// task of its own: a pass over a large log takes a while, and retention
/// and interval flushes must not wait for it.
pub async fn clean_logs(
    broker: Arc<ServerBroker>,
    backoff_ms: u64,
    io_bytes_per_sec: Option<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let pacer: Box<dyn Pacer> = match io_bytes_per_sec {
        Some(rate) => Box::new(crate::cleaner_pace::RateLimit::new(rate)),
        None => Box::new(Unpaced),
    };
    let mut ticks = ticker(backoff_ms);
    loop {
        tokio::select! {
        biased;
            _ = ticks.tick() => {
                broker.clean_logs(pacer.as_ref()).await;
            }
            _ = crate::shutdown::signalled(&mut shutdown) => return,
        }
    }
}

/// The data directory whose disk the upkeep watches, and under how many
/// free bytes it warns (0: never).
pub struct DiskWatch {
    pub data_dir: PathBuf,
    pub warn_below_bytes: u64,
    /// Looked at every upkeep, so that produce resumes and the reserve
    /// returns once space is freed even while no one produces.
    pub guard: Arc<crate::disk_space::DiskGuard>,
}

/// Runs until `shutdown` turns true.
pub async fn run(
    broker: Arc<ServerBroker>,
    flush: FlushPolicy,
    disk: DiskWatch,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut upkeep = ticker(MAINTENANCE_INTERVAL_MS);
    let mut low_space = LowSpace::default();
    let memory = MemoryWatch::host();
    // `flush=interval:MS` shorter than the upkeep period gets a ticker of
    // its own, so that data is not left unsynced for longer than asked.
    let flush_ms = match flush {
        FlushPolicy::Interval { ms } if ms < MAINTENANCE_INTERVAL_MS => Some(ms),
        _ => None,
    };
    let mut flushes = ticker(flush_ms.unwrap_or(MAINTENANCE_INTERVAL_MS));
    loop {
        tokio::select! {
        biased;
            _ = upkeep.tick() => {
                broker.maintain().await;
                let reopened = broker.recover_poisoned().await;
                if reopened > 0 {
                    tracing::info!(partitions = reopened, "reopened poisoned logs; they take writes again");
                }
                low_space.observe(&disk.data_dir, disk.guard.refresh(), disk.warn_below_bytes);
                if let Some(memory) = &memory {
                    memory.observe(&broker);
                }
            }
            _ = flushes.tick(), if flush_ms.is_some() => flush_due(&broker).await,
            _ = crate::shutdown::signalled(&mut shutdown) => return,
        }
    }
}

fn ticker(period_ms: u64) -> tokio::time::Interval {
    let period = Duration::from_millis(period_ms.max(1));
    // The first tick one period from now: nothing is due at start.
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

async fn flush_due(broker: &ServerBroker) {
    for partition in broker.hosted_partitions() {
        if let Err(e) = partition.log.flush_if_due().await {
            tracing::error!(partition = %partition.tp, error = %e, "interval flush failed");
        }
        partition.refresh_high_watermark();
    }
}
