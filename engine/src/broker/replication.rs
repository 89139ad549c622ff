//! A hosted partition's part in replication: as leader, the `LeaderState`
//! its followers' fetches feed (high watermark, ISR changes, acks=all); as
//! follower, the high watermark its leader reports. The broker sets the
//! role from the metadata (`apply_assignment`); the owner's replica
//! fetcher feeds a follower's log (`Log::append_replicated`).

use super::metadata::PartitionAssignment;
use super::partition::{FetchOutcome, Partition};
use super::Broker;
use crate::error::{BrokerError, ErrorCode};
use crate::io::Disk;
use crate::replica::leader::{FetchRefused, IsrProposal, LeaderState, PartitionView};
use crate::replica::ReplicationConfig;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

#[derive(Debug)]
pub enum Role {
    Leader {
        state: Box<LeaderState>,
        min_insync: usize,
    },
    /// `leader` is -1 when the partition has none (every ISR member fenced).
    Follower {
        leader: i32,
    },
}

impl<D: Disk> Partition<D> {
    pub(super) fn role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_leader(&self) -> bool {
        matches!(*self.role(), Role::Leader { .. })
    }

    /// The leader this follower replicates from (`None` if it leads, or
    /// the partition has no leader), with the leader epoch.
    pub fn follows(&self) -> Option<(i32, i32)> {
        match *self.role() {
            Role::Follower { leader } if leader >= 0 => Some((leader, self.leader_epoch())),
            _ => None,
        }
    }

    /// The leader epoch this replica leads at, if it leads.
    pub fn leading_epoch(&self) -> Option<i32> {
        match &*self.role() {
            Role::Leader { state, .. } => Some(state.leader_epoch()),
            Role::Follower { .. } => None,
        }
    }

    /// The ISR as this leader holds it (committed), if it leads.
    pub fn isr(&self) -> Option<Vec<i32>> {
        match &*self.role() {
            Role::Leader { state, .. } => Some(state.isr().to_vec()),
            Role::Follower { .. } => None,
        }
    }

    /// Takes the role the metadata gives this broker (`me`). A leader of a
    /// new epoch first records the epoch's start in the log's checkpoint,
    /// then starts a new `LeaderState` from its current high watermark;
    /// the same epoch with a newer ISR updates the state in place. Unless
    /// `may_lead` (cluster.rs's C4), a leadership is not taken: the
    /// partition has no leader here until the quorum names a new one.
    pub async fn apply_assignment(
        &self,
        a: &PartitionAssignment,
        me: i32,
        may_lead: bool,
        min_insync: usize,
        now_ms: i64,
        config: ReplicationConfig,
    ) -> std::io::Result<()> {
        let _transition = self.transition.lock().await;
        let view = PartitionView {
            replicas: a.replicas.clone(),
            isr: a.isr.clone(),
            leader_epoch: a.leader_epoch,
            partition_epoch: a.partition_epoch,
        };
        // An older image than one applied already, or than the epochs this
        // log learned from its leaders (after a restart, the image kept on
        // disk may predate what the log copied since).
        let newest_copied = self.log.leader_epochs().latest().map_or(-1, |(e, _)| e);
        if a.leader_epoch < self.leader_epoch().max(newest_copied) {
            return Ok(());
        }
        self.leader_epoch.fetch_max(a.leader_epoch, Ordering::SeqCst);
        if a.leader != me || !may_lead {
            let leader = if a.leader == me { -1 } else { a.leader };
            *self.role() = Role::Follower { leader };
            self.wake_waiters();
            return Ok(());
        }
        if let Role::Leader { state, min_insync: m } = &mut *self.role() {
            if state.leader_epoch() == a.leader_epoch {
                state.on_partition_change(view, now_ms);
                *m = min_insync;
                let hw = state.high_watermark();
                self.publish_high_watermark(hw);
                self.wake_waiters();
                return Ok(());
            }
        }
        let log_end = self.log.log_end_offset();
        self.log.assign_epoch(a.leader_epoch, log_end).await?;
        let state =
            LeaderState::new(me, view, log_end, self.local_end(), self.high_watermark(), now_ms, config);
        let hw = state.high_watermark();
        *self.role() = Role::Leader { state: Box::new(state), min_insync };
        self.publish_high_watermark(hw);
        self.wake_waiters();
        Ok(())
    }

    /// Wakes acks=all and DeleteRecords waiters to look at the role again.
    fn wake_waiters(&self) {
        self.high_watermark.send_modify(|_| {});
        self.log_starts.send_modify(|_| {});
    }

    pub(super) fn check_min_insync(&self) -> Result<(), BrokerError> {
        match &*self.role() {
            Role::Leader { state, min_insync } if !state.enough_in_sync(*min_insync) => {
                Err(BrokerError::new(
                    ErrorCode::NotEnoughReplicas,
                    format!("ISR {:?} is smaller than min.insync.replicas {min_insync}", state.isr()),
                ))
            }
            Role::Leader { .. } => Ok(()),
            Role::Follower { leader } => Err(not_leader(*leader)),
        }
    }

    /// Does this replica lead and serve reads (R5)?
    pub fn serves_reads(&self) -> bool {
        self.check_serves_reads().is_ok()
    }

    /// R5: a new leader serves consumers only once its high watermark has
    /// reached its epoch's start.
    pub(super) fn check_serves_reads(&self) -> Result<(), BrokerError> {
        match &*self.role() {
            Role::Leader { state, .. } if state.serves_reads() => Ok(()),
            Role::Leader { .. } => Err(BrokerError::new(
                ErrorCode::LeaderNotAvailable,
                "a new leader whose followers have not yet shown what is replicated",
            )),
            Role::Follower { leader } => Err(not_leader(*leader)),
        }
    }

    /// Returns once the records up to `last_offset` are replicated to the
    /// ISR (acks=all), or with why not: leadership moved
    /// (NOT_LEADER_OR_FOLLOWER: the producer retries at the new leader), or
    /// the ISR shrank below `min.insync.replicas` meanwhile
    /// (NOT_ENOUGH_REPLICAS_AFTER_APPEND). Cancellable: it only waits.
    pub async fn wait_replicated(&self, last_offset: u64) -> Result<(), BrokerError> {
        let mut changes = self.high_watermark.subscribe();
        loop {
            match &*self.role() {
                Role::Leader { state, min_insync } if state.replicated(last_offset) => {
                    return if state.enough_in_sync(*min_insync) {
                        Ok(())
                    } else {
                        Err(BrokerError::new(
                            ErrorCode::NotEnoughReplicasAfterAppend,
                            format!("written, but the ISR {:?} is below min.insync.replicas", state.isr()),
                        ))
                    };
                }
                Role::Leader { .. } => {}
                Role::Follower { leader } => return Err(not_leader(*leader)),
            }
            if changes.changed().await.is_err() {
                return Err(BrokerError::new(ErrorCode::NotLeaderOrFollower, "the partition was closed"));
            }
        }
    }

    /// A follower's fetch from `offset` (its log end) at `now_ms`, as this
    /// partition's leader: recorded (it may move the high watermark), then
    /// answered with what the log holds from there, up to its end, not
    /// just the high watermark.
    pub async fn replica_fetch(
        &self,
        replica: i32,
        offset: i64,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<FetchOutcome, BrokerError> {
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        let out_of_range = || {
            BrokerError::new(ErrorCode::OffsetOutOfRange, format!("offset {offset} outside [{start}, {end}]"))
        };
        let offset = u64::try_from(offset).map_err(|_| out_of_range())?;
        if offset < start {
            return Err(out_of_range());
        }
        let hw = match &mut *self.role() {
            Role::Leader { state, .. } => {
                state.on_follower_fetch(replica, offset, end, now_ms).map_err(|e| match e {
                    FetchRefused::PastLogEnd { .. } => out_of_range(),
                    FetchRefused::NotAReplica(_) => {
                        BrokerError::new(ErrorCode::NotLeaderOrFollower, e.to_string())
                    }
                })?;
                state.high_watermark()
            }
            Role::Follower { leader } => return Err(not_leader(*leader)),
        };
        self.publish_high_watermark(hw);
        let read = if offset >= end || max_bytes == 0 {
            None
        } else {
            Some(self.log.read(offset, max_bytes, None).await?)
        };
        Ok(FetchOutcome::new(read, hw, start))
    }

    /// Changes whenever the log end moves here: a leader's long polls for
    /// followers wait on it.
    pub fn log_end_watch(&self) -> crate::watch::Receiver<u64> {
        self.log_end.subscribe()
    }

    /// As a follower: the leader's high watermark, which bounds this
    /// replica's (no further than its own log end).
    pub fn follow_high_watermark(&self, leader_hw: u64) {
        if matches!(*self.role(), Role::Follower { .. }) {
            self.publish_high_watermark(leader_hw.min(self.log.log_end_offset()));
        }
        self.refresh_high_watermark();
    }

    /// The ISR change this leader wants to ask of the controller now.
    pub fn wanted_isr(&self, now_ms: i64) -> Option<IsrProposal> {
        match &mut *self.role() {
            Role::Leader { state, .. } => state.wanted_isr(now_ms),
            Role::Follower { .. } => None,
        }
    }

    /// The controller did not take the change `wanted_isr` gave.
    pub fn isr_change_failed(&self) {
        if let Role::Leader { state, .. } = &mut *self.role() {
            state.isr_change_failed();
        }
    }
}

impl<D: Disk> Partition<D> {
    /// Errors unless this replica still follows `leader` at `epoch`: what
    /// a follower fetched from an old leader must not reach the log.
    pub(super) fn check_follows(&self, leader: i32, epoch: i32) -> Result<(), BrokerError> {
        match self.follows() {
            Some(now) if now == (leader, epoch) => Ok(()),
            _ => Err(BrokerError::new(
                ErrorCode::NotLeaderOrFollower,
                format!("no longer following broker {leader} at epoch {epoch}"),
            )),
        }
    }

    /// As a follower of `leader` at `epoch`: appends batches fetched from
    /// it (offsets and epochs as they are), learns their producers'
    /// sequences (for when this replica leads), then takes the leader's
    /// high watermark.
    pub async fn append_as_follower(
        &self,
        leader: i32,
        epoch: i32,
        records: bytes::Bytes,
        leader_hw: u64,
    ) -> Result<(), BrokerError> {
        let _transition = self.transition.lock().await;
        self.check_follows(leader, epoch)?;
        if !records.is_empty() {
            self.log.append_replicated(records.clone()).await?;
            let mut producers = self.producers();
            for (_, h) in crate::log::batch::BatchScanner::new(&records).map_while(Result::ok) {
                if h.producer_id >= 0 {
                    producers.record(&h, Some((h.base_offset as u64, h.last_offset())));
                }
            }
        }
        self.follow_high_watermark(leader_hw);
        Ok(())
    }
}

impl<D: Disk> Broker<D> {
    /// As a follower of `leader` at `epoch`: cuts `partition`'s log at
    /// `offset` (where it diverged from the leader's; the recovery point
    /// checkpoint follows, see `LogManager::truncate_to`), and rebuilds the
    /// producers' state from what remains.
    pub async fn truncate_follower(
        &self,
        partition: &Partition<D>,
        leader: i32,
        epoch: i32,
        offset: u64,
    ) -> Result<(), BrokerError> {
        let _transition = partition.transition.lock().await;
        partition.check_follows(leader, epoch)?;
        if crate::canary::Canary::ReplicationSkipTruncation.on() {
            return Ok(());
        }
        if offset >= partition.log.log_end_offset() {
            // No record goes; epochs this replica started at its end do.
            return Ok(partition.log.truncate_to(offset).await?);
        }
        tracing::info!(partition = %partition.tp, offset, leader, epoch, "truncating to the leader's log");
        self.logs.truncate_to(&partition.tp, offset).await?;
        after_records_removed(partition).await;
        Ok(())
    }

    /// As a follower of `leader` at `epoch`: the leader's log starts at
    /// `leader_start`, past everything `partition` holds (retention there
    /// deleted what it would fetch next), so it starts over, empty, there.
    pub async fn restart_follower_at(
        &self,
        partition: &Partition<D>,
        leader: i32,
        epoch: i32,
        leader_start: u64,
    ) -> Result<(), BrokerError> {
        let _transition = partition.transition.lock().await;
        partition.check_follows(leader, epoch)?;
        if leader_start <= partition.log.log_end_offset() {
            return Ok(()); // it caught up meanwhile, or the answer was stale
        }
        self.logs.restart_at(&partition.tp, leader_start).await?;
        after_records_removed(partition).await;
        Ok(())
    }
}

/// After a follower's log lost records (truncation, a restart past its
/// end): the producers' state is rebuilt from what is left, and the log
/// end published.
async fn after_records_removed<D: Disk>(partition: &Partition<D>) {
    let rebuilt = super::partition::rebuild_producer_state(&partition.log).await;
    *partition.producers() = rebuilt;
    partition.refresh_high_watermark();
}

pub(super) fn not_leader(leader: i32) -> BrokerError {
    BrokerError::new(ErrorCode::NotLeaderOrFollower, format!("this broker follows; {leader} leads"))
}
