//! Periodic upkeep of the partitions a broker hosts, each step called by
//! the broker's owner on a timer of its own (the broker does no waiting
//! on timers): ISR change requests, retention and interval flushes, the
//! log cleaner, and reopening logs that failed.

use super::{partition, reopen_backoff, Broker, IsrChange, Partition};
use crate::io::Disk;
use crate::log::cleaner::{CleanerSettings, Pacer};
use std::sync::Arc;

impl<D: Disk> Broker<D> {
    /// Asks the controller for the ISR changes the partitions led here
    /// want (followers caught up or fallen behind), one request per
    /// partition, all at once. Called by the owner on a timer; a single
    /// node, whose partitions have one replica, never asks.
    pub async fn replication_tick(&self) {
        let Ok(link) = self.link() else { return };
        let now = self.clock.now_ms();
        let mut asks = Vec::new();
        for p in self.hosted_partitions() {
            let Some(proposal) = p.wanted_isr(now) else { continue };
            let Some(topic_id) = self.metadata().topics.get(&p.tp.topic).map(|t| t.topic_id.clone()) else {
                p.isr_change_failed();
                continue;
            };
            let change = IsrChange {
                topic_id,
                partition: p.tp.partition,
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch,
                isr: proposal.isr,
            };
            asks.push(async move {
                tracing::info!(partition = %p.tp, isr = ?change.isr, "asking for an ISR change");
                if let Err(e) = link.alter_partition(change).await {
                    tracing::info!(partition = %p.tp, error = %e, "ISR change not taken");
                    p.isr_change_failed();
                }
            });
        }
        crate::join::join_in_order(asks).await;
    }

    /// Cleans the compacted logs this broker hosts where cleaning is due
    /// (`log::cleaner`), each below its high watermark; a pass at a time,
    /// so the cleaner's memory is one key map. Called by the owner on a
    /// timer of its own: a pass may take a while. `pacer` paces the
    /// cleaner's reads and writes. Returns the passes that cleaned
    /// something.
    pub async fn clean_logs(&self, pacer: &dyn Pacer) -> usize {
        // Producer state is rebuilt from the newest segments at open; the
        // cleaner leaves them as they are, so idempotence survives it.
        let settings = CleanerSettings {
            keep_newest_sealed: partition::PRODUCER_STATE_SEGMENTS - 1,
            ..self.config.cleaner
        };
        let mut cleaned = 0;
        for p in self.hosted_partitions() {
            match p.log.clean(p.high_watermark(), &settings, pacer).await {
                Ok(Some(_)) => cleaned += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(partition = %p.tp, error = %e, "cleaning failed"),
            }
        }
        cleaned
    }

    /// Periodic upkeep, called by the owner on a timer: retention,
    /// interval flushes, idle logs' write buffers, and the offset checkpoints.
    pub async fn maintain(&self) {
        for p in self.hosted_partitions() {
            if let Err(e) = p.log.apply_retention_below(p.high_watermark()).await {
                tracing::warn!(partition = %p.tp, error = %e, "retention failed");
            }
            if let Err(e) = p.log.flush_if_due().await {
                tracing::error!(partition = %p.tp, error = %e, "interval flush failed");
            }
            p.log.release_idle_write_buf().await;
            p.refresh_high_watermark();
        }
        if let Err(e) = self.logs.checkpoint().await {
            tracing::error!(error = %e, "writing offset checkpoints failed");
        }
    }

    /// Reopens (recovers) every poisoned log, e.g. after a full disk got
    /// space again, and opens logs the metadata expects but that failed to
    /// open. Returns how many poisoned logs came back.
    pub async fn recover_poisoned(&self) -> usize {
        // Partitions the metadata places here whose log could not be opened
        // yet (a storage error while a topic was created) are retried too.
        if let Err(e) = self.sync_partitions_with_metadata(None).await {
            tracing::error!(error = %e, "opening partition logs failed; retrying later");
        }
        let mut recovered = 0;
        let hosted = self.hosted_partitions();
        let now_ms = self.now_ms();
        self.backoff().retain(|tp| hosted.iter().any(|p| p.tp == *tp && p.log.poisoned().is_some()));
        for p in hosted {
            if p.log.poisoned().is_none() || !self.backoff().due(&p.tp, now_ms) {
                continue;
            }
            if self.config.quorum {
                // Recovery may cut an unsynced tail that followers already
                // copied; leading on at the same epoch would then let the
                // logs differ where no truncation looks (C4). The server
                // stops a member with a failed log instead (its restart
                // registers a new incarnation, so the quorum moves its
                // leaderships first); until then writes are refused.
                tracing::debug!(partition = %p.tp, "a failed log stays offline in a cluster until the broker restarts");
                continue;
            }
            match self.logs.reopen(&p.tp).await {
                Ok(report) => {
                    self.backoff().succeeded(&p.tp);
                    tracing::info!(partition = %p.tp, %report, "reopened poisoned log");
                    if let Some(log) = self.logs.get(&p.tp) {
                        let fresh = Partition::open(p.tp.clone(), log, p.leader_epoch()).await;
                        self.partitions().insert(p.tp.clone(), Arc::new(fresh));
                        recovered += 1;
                    }
                    // Its role comes back from the metadata.
                    if let Err(e) = self.sync_partitions_with_metadata(Some(&p.tp.topic)).await {
                        tracing::error!(partition = %p.tp, error = %e, "reopened log has no role yet");
                    }
                }
                Err(e) => {
                    let wait_ms = self.backoff().failed(&p.tp, now_ms);
                    tracing::error!(partition = %p.tp, error = %e, wait_ms, "reopening poisoned log failed; trying again later");
                }
            }
        }
        recovered
    }

    fn backoff(&self) -> std::sync::MutexGuard<'_, reopen_backoff::ReopenBackoff> {
        self.reopen_backoff.lock().unwrap_or_else(|e| e.into_inner())
    }
}
