//! The broker's consumer-group coordinator: drives `group`'s state machine
//! with the broker's clock and persists through the `__consumer_offsets`
//! partitions this broker leads.
//!
//! Every operation runs the state machine under the coordinator mutex and,
//! under that same lock, queues the records it asks for on the offsets
//! partition's log (`Log::enqueue`, the first half of `Partition::produce`),
//! so that log order is state-machine order; the waits happen after the
//! lock is released. Completions go back to the state machine in order,
//! and if the caller goes away mid-wait, `InFlight`'s drop fails the rest,
//! so that no parked JoinGroup/SyncGroup is left waiting.

use super::group_persist::InFlight;
use super::topics::CreateTopic;
use super::{Broker, BrokerEndpoint, Partition};
use crate::error::{BrokerError, ErrorCode};
use crate::group::{
    offsets_partition_for, records::replay_batch, CommitRequest, Coordinator, FetchedOffset,
    GroupDescription, GroupListing, GroupState, HeartbeatRequest, JoinRequest, JoinResponse, LeavingMember,
    Persist, Shard, SyncRequest, SyncResponse, OFFSETS_TOPIC,
};
use crate::io::Disk;
use crate::log::batch::BatchScanner;
use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};

/// A group's committed offset of one partition (`committed_offsets`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Bytes read per step while replaying an offsets partition.
const REPLAY_READ_BYTES: usize = 1 << 20;
fn err(code: ErrorCode, what: &str) -> BrokerError {
    BrokerError::new(code, what.to_string())
}

impl<D: Disk> Broker<D> {
    pub(super) fn coordinator(&self) -> MutexGuard<'_, Coordinator> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The offsets partition of a group and its leader replica, if this
    /// broker coordinates the group (without loading it).
    fn offsets_partition(&self, group_id: &str) -> Result<(i32, Arc<Partition<D>>), BrokerError> {
        if group_id.is_empty() {
            return Err(err(ErrorCode::InvalidGroupId, "empty group id"));
        }
        let count = self.metadata().topics.get(OFFSETS_TOPIC).map(|t| t.partitions.len());
        let Some(count) = count.filter(|c| *c > 0) else {
            return Err(err(ErrorCode::NotCoordinator, "no offsets topic yet: find the coordinator"));
        };
        let p = offsets_partition_for(group_id, count as u32);
        let partition = self.leader_partition(OFFSETS_TOPIC, p).map_err(|e| match e.code {
            // Offline here: finding the coordinator again would name this
            // broker again.
            ErrorCode::KafkaStorageError => BrokerError::new(ErrorCode::CoordinatorNotAvailable, e.message),
            _ => BrokerError::new(ErrorCode::NotCoordinator, e.message),
        })?;
        Ok((p, partition))
    }

    /// As `offsets_partition`, loading the partition's groups on first use.
    async fn coordinated(&self, group_id: &str) -> Result<(i32, Arc<Partition<D>>), BrokerError> {
        let (p, partition) = self.offsets_partition(group_id)?;
        if !self.coordinator().is_loaded(p) {
            self.load_offsets_partition(p).await?;
        }
        Ok((p, partition))
    }

    /// Loads (replays) every offsets partition this broker leads.
    pub(super) async fn load_led_offsets_partitions(&self) {
        let Some(count) = self.metadata().topics.get(OFFSETS_TOPIC).map(|t| t.partitions.len()) else {
            return;
        };
        // Groups move with the leadership of their offsets partition: a
        // partition no longer led here is forgotten (its new leader
        // replays it), and one newly led is replayed once its high
        // watermark shows everything committed (a new leader's may lag).
        for p in 0..count as i32 {
            let led = self.leader_partition(OFFSETS_TOPIC, p).is_ok_and(|partition| partition.serves_reads());
            if !led {
                // Only a cluster moves leadership. A single node's partition
                // is briefly not a leader only while a poisoned log is
                // reopened (`recover_poisoned`); unloading then would
                // replay the log and forget generations answered but not
                // yet persisted, so a later join could answer an older one.
                let moved = self.config.quorum
                    && self.partition(OFFSETS_TOPIC, p).is_some_and(|partition| !partition.is_leader());
                if moved {
                    self.coordinator().unload(p);
                }
                continue;
            }
            if !self.coordinator().is_loaded(p) {
                if let Err(e) = self.load_offsets_partition(p).await {
                    tracing::error!(partition = p, error = %e, "loading consumer groups failed");
                }
            }
        }
    }

    /// Replays offsets partition `p` from its log start to its high
    /// watermark into a fresh shard. Concurrent callers get
    /// COORDINATOR_LOAD_IN_PROGRESS.
    async fn load_offsets_partition(&self, p: i32) -> Result<(), BrokerError> {
        let Some(token) = self.coordinator().begin_load(p) else {
            return match self.coordinator().is_loaded(p) {
                true => Ok(()),
                false => {
                    Err(err(ErrorCode::CoordinatorLoadInProgress, "loading the group's offsets partition"))
                }
            };
        };
        // Releases the claim if this future is dropped or fails midway.
        struct Claim<'a, D: Disk>(&'a Broker<D>, i32, u64, bool);
        impl<D: Disk> Drop for Claim<'_, D> {
            fn drop(&mut self) {
                if !self.3 {
                    self.0.coordinator().finish_load(self.1, self.2, None);
                }
            }
        }
        let mut claim = Claim(self, p, token, false);
        let partition = self
            .leader_partition(OFFSETS_TOPIC, p)
            .map_err(|e| BrokerError::new(ErrorCode::NotCoordinator, e.message))?;
        let shard = self.replay(&partition).await?;
        self.coordinator().finish_load(p, token, Some(shard));
        claim.3 = true;
        Ok(())
    }

    async fn replay(&self, partition: &Partition<D>) -> Result<Shard, BrokerError> {
        let now_ms = self.now_ms();
        let mut shard = Shard::new(self.config.group, self.entropy.next_u64());
        // A partition just reopened (a poisoned log) starts with its high
        // watermark at its log start until something refreshes it: replaying
        // only to there would forget every group (generations going back).
        partition.refresh_high_watermark();
        let hw = partition.high_watermark();
        let mut offset = partition.log.log_start_offset();
        let mut records = 0usize;
        while offset < hw {
            let read = partition.log.read(offset, REPLAY_READ_BYTES, Some(hw)).await?;
            let mut advanced = false;
            for (at, header) in BatchScanner::new(&read.records).map_while(Result::ok) {
                offset = header.next_offset();
                advanced = true;
                records += replay_batch(&mut shard, &read.records[at..at + header.size_bytes()], now_ms);
            }
            if !advanced {
                break;
            }
        }
        shard.finish_load(now_ms);
        tracing::info!(partition = %partition.tp, records, groups = shard.groups().count(), "loaded consumer groups");
        Ok(shard)
    }

    /// Creates `__consumer_offsets` if needed (whatever auto-create says)
    /// and loads the partitions led here.
    async fn ensure_offsets_topic(&self) -> Result<(), BrokerError> {
        if !self.metadata().topics.contains_key(OFFSETS_TOPIC) {
            // Never retention: it would drop live offsets. Compaction
            // (`group_compaction`) bounds the log instead, and
            // frees whole segments, hence Kafka's 100 MiB rather than 1 GiB.
            let configs = [("retention.ms", "-1"), ("retention.bytes", "-1"), ("segment.bytes", "104857600")];
            let request = CreateTopic {
                name: OFFSETS_TOPIC.to_string(),
                partitions: Some(self.config.group.offsets_topic_partitions.max(1)),
                replication_factor: None,
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            };
            match self.create_topic_unchecked(request, false).await {
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
                Err(e) => return Err(BrokerError::new(ErrorCode::CoordinatorNotAvailable, e.message)),
            }
        }
        self.load_led_offsets_partitions().await;
        Ok(())
    }

    /// FindCoordinator for a group: the leader of the group's
    /// `__consumer_offsets` partition, creating the topic on first use.
    /// COORDINATOR_NOT_AVAILABLE while it cannot be created or loaded.
    pub async fn find_group_coordinator(&self, group_id: &str) -> Result<BrokerEndpoint, BrokerError> {
        self.ensure_offsets_topic().await?;
        let (p, leader) = {
            let m = self.metadata();
            let partitions = m.topics.get(OFFSETS_TOPIC).map_or(&[][..], |t| &t.partitions[..]);
            let p = offsets_partition_for(group_id, partitions.len() as u32);
            (p, partitions.get(p as usize).map(|a| a.leader))
        };
        let leader = leader.ok_or_else(|| err(ErrorCode::CoordinatorNotAvailable, "no offsets partition"))?;
        if leader == self.config.node_id {
            if let Some(reason) = self.offline_reason(OFFSETS_TOPIC, p) {
                // Its log is offline here: no coordinator until an operator
                // restores it (clients retry FindCoordinator meanwhile).
                return Err(err(
                    ErrorCode::CoordinatorNotAvailable,
                    &format!("offsets partition {p} is offline: {reason}"),
                ));
            }
        }
        self.brokers()
            .into_iter()
            .find(|b| b.node_id == leader)
            .ok_or_else(|| err(ErrorCode::CoordinatorNotAvailable, "the coordinator's broker is unknown"))
    }

    /// JoinGroup. Waits (up to the rebalance timeout) for the rebalance it
    /// joins to complete.
    pub async fn join_group(&self, request: JoinRequest) -> JoinResponse {
        let member_id = request.member_id.clone();
        let (p, partition) = match self.coordinated(&request.group_id).await {
            Ok(x) => x,
            Err(e) => return JoinResponse::error(e.code, member_id),
        };
        let now_ms = self.now_ms();
        let (rx, in_flight) = {
            let mut c = self.coordinator();
            match c.join(p, request, now_ms) {
                Ok((rx, persists)) => (rx, InFlight::queue(self, &mut c, p, &partition, persists, now_ms)),
                Err(code) => return JoinResponse::error(code, member_id),
            }
        };
        in_flight.drive().await;
        rx.await.unwrap_or_else(|_| JoinResponse::error(ErrorCode::CoordinatorNotAvailable, member_id))
    }

    /// SyncGroup. Followers wait for the leader's assignment; the leader's
    /// assignment is persisted before anyone is answered.
    pub async fn sync_group(&self, request: SyncRequest) -> SyncResponse {
        let (p, partition) = match self.coordinated(&request.group_id).await {
            Ok(x) => x,
            Err(e) => return SyncResponse::error(e.code),
        };
        let now_ms = self.now_ms();
        let (rx, in_flight) = {
            let mut c = self.coordinator();
            match c.sync(p, request, now_ms) {
                Ok((rx, persists)) => (rx, InFlight::queue(self, &mut c, p, &partition, persists, now_ms)),
                Err(code) => return SyncResponse::error(code),
            }
        };
        in_flight.drive().await;
        rx.await.unwrap_or_else(|_| SyncResponse::error(ErrorCode::CoordinatorNotAvailable))
    }

    pub async fn heartbeat(&self, request: HeartbeatRequest) -> Result<(), BrokerError> {
        let (p, _) = self.coordinated(&request.group_id).await?;
        let now_ms = self.now_ms();
        let mut c = self.coordinator();
        let shard = c.shard(p).map_err(|code| err(code, "offsets partition"))?;
        shard.heartbeat(&request, now_ms).map_err(|code| err(code, &request.group_id))
    }

    /// LeaveGroup: a group-level error, or one outcome per member in order.
    pub async fn leave_group(
        &self,
        group_id: &str,
        members: Vec<LeavingMember>,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let (p, partition) = self.coordinated(group_id).await?;
        let now_ms = self.now_ms();
        let (outcome, in_flight) = {
            let mut c = self.coordinator();
            let shard = c.shard(p).map_err(|code| err(code, "offsets partition"))?;
            let (outcome, fx) = shard.leave(group_id, &members, now_ms);
            let persists = c.deliver(fx);
            (outcome, InFlight::queue(self, &mut c, p, &partition, persists, now_ms))
        };
        in_flight.drive().await;
        let outcomes = outcome.map_err(|code| err(code, group_id))?;
        Ok(outcomes
            .into_iter()
            .zip(&members)
            .map(|(o, m)| o.map_err(|code| err(code, &m.member_id)))
            .collect())
    }

    /// OffsetCommit: a group-level error, or one outcome per offset in
    /// order. Answered once the commit is durable (acks=all on the group's
    /// `__consumer_offsets` partition).
    pub async fn commit_offsets(
        &self,
        request: CommitRequest,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let (p, partition) = self.coordinated(&request.group_id).await?;
        // As Kafka: offsets of partitions that do not exist are refused.
        let known: Vec<bool> = {
            let m = self.metadata();
            let exists = |t: &str, p: i32| {
                m.topics.get(t).is_some_and(|t| p >= 0 && (p as usize) < t.partitions.len())
            };
            request.offsets.iter().map(|o| exists(&o.topic, o.partition)).collect()
        };
        let mut accepted = request.clone();
        accepted.offsets =
            request.offsets.iter().zip(&known).filter(|(_, k)| **k).map(|(o, _)| o.clone()).collect();
        let now_ms = self.now_ms();
        let (planned, in_flight) = {
            let mut c = self.coordinator();
            let shard = c.shard(p).map_err(|code| err(code, "offsets partition"))?;
            let plan = shard.commit(&accepted, now_ms).map_err(|code| err(code, &request.group_id))?;
            let persists: Vec<Persist> = plan.persist.into_iter().collect();
            (plan.outcomes, InFlight::queue(self, &mut c, p, &partition, persists, now_ms))
        };
        let durable = in_flight.drive().await.first().copied().unwrap_or(Ok(()));
        // Canary (sim/canaries): a commit is acknowledged whether or not it
        // was persisted. Never enable otherwise.
        let durable: Result<(), ErrorCode> =
            if crate::canary::Canary::GroupAckUnpersisted.on() { durable.or(Ok(())) } else { durable };
        let mut planned = planned.into_iter();
        Ok(request
            .offsets
            .iter()
            .zip(known)
            .map(|(o, known)| {
                let what = format!("{}-{}", o.topic, o.partition);
                if !known {
                    return Err(err(ErrorCode::UnknownTopicOrPartition, &what));
                }
                match planned.next().unwrap_or(Err(ErrorCode::UnknownServerError)).and(durable) {
                    Ok(()) => Ok(()),
                    Err(code) => Err(err(code, &what)),
                }
            })
            .collect())
    }

    /// OffsetFetch: the given partitions, or (`None`) every partition the
    /// group has committed.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<FetchedOffset>, BrokerError> {
        let (p, _) = self.coordinated(group_id).await?;
        let mut c = self.coordinator();
        let shard = c.shard(p).map_err(|code| err(code, "offsets partition"))?;
        shard.fetch_offsets(group_id, partitions).map_err(|code| err(code, group_id))
    }

    /// DescribeGroups for one group. An unknown group is described as Dead
    /// with no members, as Kafka does.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, BrokerError> {
        let (p, _) = self.offsets_partition(group_id)?;
        let mut c = self.coordinator();
        let shard = c.shard(p).map_err(|code| err(code, "offsets partition"))?;
        Ok(shard.group(group_id).map(|g| g.describe()).unwrap_or_else(|| GroupDescription {
            group_id: group_id.to_string(),
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol_name: String::new(),
            generation: -1,
            members: Vec::new(),
        }))
    }

    /// ListGroups over the groups this broker coordinates; an empty filter
    /// lists all.
    pub fn list_groups(&self, states: &[GroupState]) -> Result<Vec<GroupListing>, BrokerError> {
        let mut c = self.coordinator();
        let mut out = Vec::new();
        for p in c.loaded_partitions() {
            if let Ok(shard) = c.shard(p) {
                out.extend(shard.list(states));
            }
        }
        Ok(out)
    }

    /// The offsets committed by the groups coordinated here, for the lag
    /// `/metrics` reports: one per group and partition, ordered by group,
    /// topic and partition. A copy, so that no lock is held while the
    /// caller looks up high watermarks.
    pub fn committed_offsets(&self) -> Vec<GroupOffset> {
        let mut c = self.coordinator();
        let mut out = Vec::new();
        for p in c.loaded_partitions() {
            let Ok(shard) = c.shard(p) else { continue };
            out.extend(shard.committed_offsets().map(|(group, (topic, partition), offset)| GroupOffset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
                offset,
            }));
        }
        out.sort();
        out
    }

    /// DeleteGroups for one group: only an Empty group can be deleted; its
    /// offsets go with it.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), BrokerError> {
        let (p, partition) = self.coordinated(group_id).await?;
        let now_ms = self.now_ms();
        let in_flight = {
            let mut c = self.coordinator();
            let shard = c.shard(p).map_err(|code| err(code, "offsets partition"))?;
            let persist = shard.delete(group_id, now_ms).map_err(|code| err(code, group_id))?;
            InFlight::queue(self, &mut c, p, &partition, vec![persist], now_ms)
        };
        let durable = in_flight.drive().await.first().copied().unwrap_or(Ok(()));
        durable.map_err(|code| err(code, group_id))
    }

    /// OffsetDelete: a group-level error, or one outcome per partition in
    /// order, answered once the tombstones are durable.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let (p, partition) = self.coordinated(group_id).await?;
        let now_ms = self.now_ms();
        let (planned, in_flight) = {
            let mut c = self.coordinator();
            let shard = c.shard(p).map_err(|code| err(code, "offsets partition"))?;
            let plan = shard.delete_offsets(group_id, partitions).map_err(|code| err(code, group_id))?;
            let persists: Vec<Persist> = plan.persist.into_iter().collect();
            (plan.outcomes, InFlight::queue(self, &mut c, p, &partition, persists, now_ms))
        };
        let durable = in_flight.drive().await.first().copied().unwrap_or(Ok(()));
        Ok(planned
            .into_iter()
            .zip(partitions)
            .map(|(outcome, (topic, index))| {
                outcome.and(durable).map_err(|code| err(code, &format!("{topic}-{index}")))
            })
            .collect())
    }

    /// The coordinator's timers: session expiry, rebalance deadlines, the
    /// initial rebalance delay. The owner calls it periodically (the server
    /// every 100 ms, the simulator on its clock); nothing expires between
    /// calls. Also loads offsets partitions led here that are not loaded.
    pub async fn tick_groups(&self) {
        self.load_led_offsets_partitions().await;
        let loaded = self.coordinator().loaded_partitions();
        for p in loaded {
            let Some(partition) = self.partition(OFFSETS_TOPIC, p) else { continue };
            let now_ms = self.now_ms();
            let in_flight = {
                let mut c = self.coordinator();
                let persists = c.tick(p, now_ms);
                InFlight::queue(self, &mut c, p, &partition, persists, now_ms)
            };
            for outcome in in_flight.drive().await {
                if let Err(code) = outcome {
                    tracing::warn!(partition = p, error = %code, "persisting a group change failed");
                }
            }
            self.compact_offsets_partition(p, &partition).await;
        }
    }

    /// Answers every waiting JoinGroup/SyncGroup with NOT_COORDINATOR and
    /// forgets group state: at shutdown, or when this broker stops leading
    /// an offsets partition. Clients find the coordinator again.
    pub fn unload_groups(&self) {
        self.coordinator().unload_all();
    }

    /// The log start and end offsets of offsets partition `p`, for tests
    /// of compaction.
    pub fn offsets_log_range(&self, p: i32) -> Option<(u64, u64)> {
        let partition = self.partition(OFFSETS_TOPIC, p)?;
        Some((partition.log.log_start_offset(), partition.log.log_end_offset()))
    }

    /// Callers waiting in JoinGroup/SyncGroup, for tests of invariant 5.
    pub fn group_waiters(&self) -> usize {
        self.coordinator().waiting()
    }
}
