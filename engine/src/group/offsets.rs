//! OffsetCommit, OffsetFetch, DeleteGroups and OffsetDelete.

use super::api::{CommitRequest, CommittedOffset, FetchedOffset, GroupState};
use super::records::{OffsetValue, OffsetsRecord, STRING_BYTES_MAX};
use super::shard::{Completion, Persist, Shard};
use crate::error::ErrorCode;

/// An accepted OffsetDelete: one outcome per partition, and the
/// tombstones of the offsets that go, answered once `persist` completes.
#[derive(Debug)]
pub struct OffsetDeletePlan {
    pub outcomes: Vec<Result<(), ErrorCode>>,
    pub persist: Option<Persist>,
}

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
        let persist = (!records.is_empty()).then(|| {
            self.commits_in_flight += 1;
            Persist {
                records,
                then: Completion::Offsets { group: req.group_id.clone(), seq: self.next_seq(), offsets },
            }
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

    /// OffsetDelete (Kafka's KIP-496): the committed offsets of
    /// `partitions` go, unless the group is live and subscribed to their
    /// topic (GROUP_SUBSCRIBED_TO_TOPIC). A live group that is not a
    /// consumer group cannot say what it reads: NON_EMPTY_GROUP. The
    /// offsets stay visible until their tombstones are durable.
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<OffsetDeletePlan, ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let g = self.groups.get(group_id).ok_or(ErrorCode::GroupIdNotFound)?;
        let subscribed = match g.state {
            GroupState::Dead => return Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty => None,
            _ if g.protocol_type.as_deref() != Some("consumer") => return Err(ErrorCode::NonEmptyGroup),
            // Unreadable metadata: every topic counts as subscribed.
            _ => Some(g.subscribed_topics()),
        };
        let stored = self.offsets.get(group_id);
        let mut outcomes = Vec::with_capacity(partitions.len());
        let mut gone = Vec::new();
        for (topic, partition) in partitions {
            let in_use = subscribed.as_ref().is_some_and(|s| s.as_ref().is_none_or(|s| s.contains(topic)));
            if in_use {
                outcomes.push(Err(ErrorCode::GroupSubscribedToTopic));
                continue;
            }
            outcomes.push(Ok(()));
            let key = (topic.clone(), *partition);
            if stored.is_some_and(|s| s.contains_key(&key)) && !gone.contains(&key) {
                gone.push(key);
            }
        }
        let records: Vec<OffsetsRecord> = gone
            .iter()
            .map(|(topic, partition)| OffsetsRecord::Offset {
                group: group_id.to_string(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect();
        let persist = (!records.is_empty()).then(|| Persist {
            records,
            then: Completion::DeleteOffsets {
                group: group_id.to_string(),
                seq: self.next_seq(),
                partitions: gone,
            },
        });
        Ok(OffsetDeletePlan { outcomes, persist })
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::{CommitOffset, GroupConfig};
    use super::*;

    fn commit(shard: &mut Shard, offset: i64) -> Persist {
        let req = CommitRequest {
            group_id: "g".into(),
            generation: -1,
            member_id: String::new(),
            instance_id: None,
            offsets: vec![CommitOffset {
                topic: "t".into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: None,
            }],
        };
        shard.commit(&req, 0).unwrap().persist.unwrap()
    }

    fn committed(shard: &Shard) -> Option<i64> {
        let fetched = shard.fetch_offsets("g", Some(vec![("t".into(), 0)])).unwrap();
        fetched[0].committed.as_ref().map(|c| c.offset)
    }

    /// The in-memory offsets are what replaying the log gives, whatever
    /// order the completions of a commit and an OffsetDelete come back in.
    #[test]
    fn a_commit_planned_before_an_offset_delete_stays_deleted() {
        let mut shard = Shard::new(GroupConfig::default(), 1);
        let first = commit(&mut shard, 5);
        shard.persisted(first.then, Ok(()), 0);
        assert_eq!(committed(&shard), Some(5));

        // Log order: commit 6, then the tombstone; the tombstone's
        // completion comes back first.
        let older = commit(&mut shard, 6);
        let delete = shard.delete_offsets("g", &[("t".into(), 0)]).unwrap();
        assert_eq!(delete.outcomes, [Ok(())]);
        let delete = delete.persist.expect("an offset to tombstone");
        shard.persisted(delete.then, Ok(()), 0);
        assert_eq!(committed(&shard), None);
        shard.persisted(older.then, Ok(()), 0);
        assert_eq!(committed(&shard), None, "replay would apply the tombstone after commit 6");

        // A commit planned after the delete is kept, and the fence is gone.
        let newer = commit(&mut shard, 7);
        shard.persisted(newer.then, Ok(()), 0);
        assert_eq!(committed(&shard), Some(7));
        assert!(shard.deleted_offsets.is_empty(), "fences last only while commits are in flight");

        // A failed tombstone deletes nothing; nothing to delete writes nothing.
        let delete = shard.delete_offsets("g", &[("t".into(), 0)]).unwrap().persist.unwrap();
        shard.persisted(delete.then, Err(ErrorCode::NotCoordinator), 0);
        assert_eq!(committed(&shard), Some(7));
        let nothing = shard.delete_offsets("g", &[("t".into(), 9)]).unwrap();
        assert_eq!((nothing.outcomes, nothing.persist.is_none()), (vec![Ok(())], true));
        assert_eq!(shard.delete_offsets("h", &[]).unwrap_err(), ErrorCode::GroupIdNotFound);
    }
}
