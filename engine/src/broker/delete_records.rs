//! DeleteRecords: an operator moves a partition's log start forward, and
//! the records below it are gone for good, as Kafka's
//! `kafka-delete-records` does.
//!
//! The leader moves its own log start (persisted before it answers) and
//! tells its followers through every fetch answer's log start; each
//! follower moves its own (no further than its high watermark) and reports
//! it with its next fetch. The request is answered once the low watermark,
//! the smallest log start over the leader and its possible ISR members,
//! has reached the offset (`LeaderState::low_watermark`): only then can no
//! failover bring the records back. Until then the caller waits, bounded
//! by its request's timeout, as Kafka's delayed DeleteRecords does.

use super::partition::Partition;
use super::replication::Role;
use super::Broker;
use crate::error::{BrokerError, ErrorCode};
use crate::group::is_internal_topic;
use crate::io::Disk;
use std::sync::Arc;

/// DeleteRecords' "up to the high watermark".
pub const DELETE_TO_HIGH_WATERMARK: i64 = -1;

impl<D: Disk> Broker<D> {
    /// Moves the log start of `topic`'s `partition`, led here, to `offset`
    /// (or to the high watermark for -1), and persists it. Returns the
    /// partition and the offset to wait for with `wait_low_watermark`.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(Arc<Partition<D>>, u64), BrokerError> {
        if is_internal_topic(topic) {
            let msg = format!("{topic} is internal: only the group coordinator removes its records");
            return Err(BrokerError::new(ErrorCode::InvalidTopicException, msg));
        }
        let p = self.leader_partition(topic, partition)?;
        let _transition = p.transition.lock().await;
        p.check_serves_reads()?;
        let hw = p.high_watermark();
        let target = match offset {
            DELETE_TO_HIGH_WATERMARK => hw,
            o if o >= 0 && o as u64 <= hw => o as u64,
            o => {
                let msg = format!("offset {o} is not in [0, {hw}] (the high watermark), nor -1");
                return Err(BrokerError::new(ErrorCode::OffsetOutOfRange, msg));
            }
        };
        if target > p.log.log_start_offset() {
            self.logs.delete_records_before(&p.tp, target).await?;
            tracing::info!(partition = %p.tp, log_start = target, "records deleted");
        }
        p.log_starts.send_modify(|_| {});
        Ok((p.clone(), target))
    }

    /// As a follower: the leader's log starts at `leader_start`; this log
    /// follows it, no further than its own high watermark (what it holds
    /// above that may still be cut by a truncation).
    pub async fn follow_log_start(
        &self,
        partition: &Partition<D>,
        leader: i32,
        epoch: i32,
        leader_start: u64,
    ) -> Result<(), BrokerError> {
        if leader_start <= partition.log.log_start_offset() {
            return Ok(());
        }
        let _transition = partition.transition.lock().await;
        partition.check_follows(leader, epoch)?;
        let target = leader_start.min(partition.high_watermark());
        if target > partition.log.log_start_offset() {
            self.logs.delete_records_before(&partition.tp, target).await?;
            tracing::debug!(partition = %partition.tp, log_start = target, "log start follows the leader's");
        }
        Ok(())
    }
}

impl<D: Disk> Partition<D> {
    /// As leader: follower `replica`'s fetch reported its log start.
    pub fn note_follower_log_start(&self, replica: i32, log_start: u64) {
        if let Role::Leader { state, .. } = &mut *self.role() {
            state.on_follower_log_start(replica, log_start);
        }
        self.log_starts.send_modify(|_| {});
    }

    /// As leader: the smallest log start over this replica and every
    /// follower that may be in the ISR.
    pub fn low_watermark(&self) -> Result<u64, BrokerError> {
        match &*self.role() {
            Role::Leader { state, .. } => Ok(state.low_watermark(self.log.log_start_offset())),
            Role::Follower { leader } => Err(super::replication::not_leader(*leader)),
        }
    }

    /// Returns the low watermark once it has reached `offset`, or why it
    /// will not here (leadership moved). Cancellable: it only waits.
    pub async fn wait_low_watermark(&self, offset: u64) -> Result<u64, BrokerError> {
        let mut changes = self.log_starts.subscribe();
        loop {
            let low = self.low_watermark()?;
            if low >= offset {
                return Ok(low);
            }
            if changes.changed().await.is_err() {
                return Err(BrokerError::new(ErrorCode::NotLeaderOrFollower, "the partition was closed"));
            }
        }
    }
}
