//! OffsetCommit, OffsetFetch and DeleteGroups.

use super::api::{CommitRequest, CommittedOffset, FetchedOffset, GroupState};
use super::records::{OffsetValue, OffsetsRecord, STRING_BYTES_MAX};
use super::shard::{Completion, Persist, Shard};
use crate::error::ErrorCode;

/// An accepted OffsetCommit: one outcome per offset, and the records of
/// the accepted ones, to be answered once `persist` completes.
#[derive(Debug)]
pub struct CommitPlan {
    pub outcomes: Vec<Result<(), ErrorCode>>,
    pub persist: Option<Persist>,
}

impl Shard {
    /// Validates a commit (the design's invariant 3) and plans its records.
    /// The offsets become visible to `fetch_offsets` in `persisted`.
    pub fn commit(&mut self, req: &CommitRequest, now_ms: i64) -> Result<CommitPlan, ErrorCode> {
        if req.group_id.is_empty() || req.group_id.len() > STRING_BYTES_MAX {
            return Err(ErrorCode::InvalidGroupId);
        }
        if !self.groups.contains_key(&req.group_id) {
            // Without a group, only a simple commit (a consumer that assigns
            // its own partitions) makes sense; a generation is stale.
            if req.generation >= 0 {
                return Err(ErrorCode::IllegalGeneration);
            }
            self.group_or_create(&req.group_id, now_ms);
        }
        let g = self.groups.get_mut(&req.group_id).ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let simple = req.generation < 0 && g.state == GroupState::Empty;
        if g.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        } else if g.is_static_fenced(req.instance_id.as_deref(), &req.member_id) {
            return Err(ErrorCode::FencedInstanceId);
        } else if simple {
        } else if crate::canary::Canary::GroupStaleCommit.on() {
            // Canary (sim/canaries): commits from any member and generation
            // are accepted. Never enable otherwise.
        } else if g.state == GroupState::CompletingRebalance {
            // The member may be about to lose these partitions.
            return Err(ErrorCode::RebalanceInProgress);
        } else if !g.members.contains_key(&req.member_id) {
            return Err(ErrorCode::UnknownMemberId);
        } else if req.generation != g.generation
            || g.members.get(&req.member_id).is_some_and(|m| m.generation != req.generation)
        {
            // Stricter than Kafka: a member that joined during this
            // rebalance was never part of the generation it names.
            return Err(ErrorCode::IllegalGeneration);
        }
        if let Some(m) = g.members.get_mut(&req.member_id) {
            // Invariant 3: a member of the current generation (eager
            // clients also commit while PreparingRebalance).
            debug_assert!(
                simple || crate::canary::Canary::GroupStaleCommit.on() || m.generation == req.generation
            );
            m.touch(now_ms);
        }
        let metadata_max = self.config.offset_metadata_max_bytes.min(STRING_BYTES_MAX);
        let mut outcomes = Vec::with_capacity(req.offsets.len());
        let mut records = Vec::new();
        let mut offsets = Vec::new();
        for o in &req.offsets {
            let metadata = o.metadata.clone().unwrap_or_default();
            if metadata.len() > metadata_max {
                outcomes.push(Err(ErrorCode::OffsetMetadataTooLarge));
                continue;
            }
            if o.topic.is_empty() || o.topic.len() > STRING_BYTES_MAX {
                outcomes.push(Err(ErrorCode::UnknownTopicOrPartition));
                continue;
            }
            outcomes.push(Ok(()));
            let value = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata: metadata.clone(),
                commit_timestamp_ms: now_ms,
            };
            let committed = CommittedOffset {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata: Some(metadata),
                commit_timestamp_ms: now_ms,
            };
            records.push(OffsetsRecord::Offset {
                group: req.group_id.clone(),
                topic: o.topic.clone(),
                partition: o.partition,
                value: Some(value),
            });
            offsets.push((o.topic.clone(), o.partition, committed));
        }
        let persist = (!records.is_empty()).then(|| Persist {
            records,
            then: Completion::Offsets { group: req.group_id.clone(), seq: self.next_seq(), offsets },
        });
        Ok(CommitPlan { outcomes, persist })
    }

    /// The committed offsets of `partitions`, or of every partition the
    /// group committed.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<FetchedOffset>, ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let stored = self.offsets.get(group_id);
        let fetched = |topic: String, partition: i32| FetchedOffset {
            committed: stored.and_then(|s| s.get(&(topic.clone(), partition))).map(|s| s.committed.clone()),
            topic,
            partition,
            error: ErrorCode::None,
        };
        Ok(match partitions {
            Some(list) => list.into_iter().map(|(t, p)| fetched(t, p)).collect(),
            None => {
                stored.map(|s| s.keys().map(|(t, p)| fetched(t.clone(), *p)).collect()).unwrap_or_default()
            }
        })
    }

    /// DeleteGroups for one group: only an Empty group; it is Dead (refusing
    /// joins and commits) until its tombstones are durable.
    pub fn delete(&mut self, group_id: &str, now_ms: i64) -> Result<Persist, ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let g = self.groups.get_mut(group_id).ok_or(ErrorCode::GroupIdNotFound)?;
        match g.state {
            GroupState::Dead => return Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty => {}
            _ => return Err(ErrorCode::NonEmptyGroup),
        }
        g.pending_members.clear();
        g.transition(GroupState::Dead, now_ms);
        let mut records: Vec<OffsetsRecord> = self
            .offsets
            .get(group_id)
            .into_iter()
            .flat_map(|s| s.keys())
            .map(|(topic, partition)| OffsetsRecord::Offset {
                group: group_id.to_string(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect();
        records.push(OffsetsRecord::Group { group: group_id.to_string(), value: None });
        Ok(Persist { records, then: Completion::Delete { group: group_id.to_string() } })
    }
}
