//! All groups of one `__consumer_offsets` partition, sans-IO: requests and
//! the time come in as arguments; replies to parked waiters and records to
//! persist go out as `Effects`. A record to persist carries a `Completion`,
//! which the driver hands back to `persisted` once the append succeeded or
//! failed, so that nothing that depends on durability happens before it.
//!
//! The driver must persist records in the order it receives them (log
//! order is what replay reproduces) and must hand every completion back,
//! success or failure, or parked waiters leak (the design's invariant 5).

use super::api::{CommittedOffset, GroupConfig, GroupListing, GroupState, JoinResponse, SyncResponse};
use super::compaction::LogMirror;
use super::group::{Group, Member, WaiterId};
use super::join::Replaced;
use super::records::{GroupValue, OffsetsRecord};
use crate::error::ErrorCode;
use bytes::Bytes;
use std::collections::BTreeMap;

/// An answer to a parked (or just arrived) JoinGroup/SyncGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Join(WaiterId, JoinResponse),
    Sync(WaiterId, SyncResponse),
}

/// What to do once records are durable (or failed to be).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Nothing waits on it (an Empty group's record).
    Nothing,
    /// The leader's assignment of `generation`: hand it out.
    Assignment { group: String, generation: i32, assignments: BTreeMap<String, Bytes> },
    /// A static member rejoined a Stable group under a new member id
    /// (`response.member_id`), replacing `replaced`.
    StaticRejoin { group: String, waiter: WaiterId, response: JoinResponse, replaced: Replaced },
    /// Committed offsets, visible to OffsetFetch once durable. `seq` orders
    /// them as in the log, whatever order completions arrive in.
    Offsets { group: String, seq: u64, offsets: Vec<(String, i32, CommittedOffset)> },
    /// A deleted group's tombstones.
    Delete { group: String },
    /// Tombstones of some of a group's offsets (OffsetDelete), `seq` in
    /// the same order as `Offsets`.
    DeleteOffsets { group: String, seq: u64, partitions: Vec<(String, i32)> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist {
    pub records: Vec<OffsetsRecord>,
    pub then: Completion,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub replies: Vec<Reply>,
    pub persists: Vec<Persist>,
}

impl Effects {
    pub fn join(&mut self, waiter: WaiterId, response: JoinResponse) {
        self.replies.push(Reply::Join(waiter, response));
    }

    pub fn sync(&mut self, waiter: WaiterId, response: SyncResponse) {
        self.replies.push(Reply::Sync(waiter, response));
    }

    pub fn extend(&mut self, other: Effects) {
        self.replies.extend(other.replies);
        self.persists.extend(other.persists);
    }
}

/// A committed offset and the log order (`seq`) of the record holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOffset {
    pub committed: CommittedOffset,
    pub seq: u64,
}

pub struct Shard {
    pub(super) config: GroupConfig,
    pub(super) groups: BTreeMap<String, Group>,
    /// Group -> (topic, partition) -> offset.
    pub(super) offsets: BTreeMap<String, BTreeMap<(String, i32), StoredOffset>>,
    /// Groups' lifetimes by `seq`: completions older than a group's
    /// creation belong to a deleted predecessor and are dropped.
    pub(super) created_seq: BTreeMap<String, u64>,
    pub(super) next_seq: u64,
    /// Commits planned whose completion has not come back.
    pub(super) commits_in_flight: usize,
    /// Offsets deleted (OffsetDelete) at `seq`: a commit planned before the
    /// delete, and so before its tombstone in the log, must not come back
    /// when its completion arrives after the delete's. Kept only while
    /// commits are in flight, which bounds it.
    pub(super) deleted_offsets: BTreeMap<(String, String, i32), u64>,
    /// The latest record per key of the partition's log, for compaction.
    pub mirror: LogMirror,
    id_seed: u64,
    next_member: u64,
}

impl Shard {
    /// `id_seed` makes member ids unique across coordinator restarts.
    pub fn new(config: GroupConfig, id_seed: u64) -> Shard {
        Shard {
            config,
            groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            created_seq: BTreeMap::new(),
            next_seq: 0,
            commits_in_flight: 0,
            deleted_offsets: BTreeMap::new(),
            mirror: LogMirror::default(),
            id_seed,
            next_member: 0,
        }
    }

    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Every committed offset: group, (topic, partition), offset; in order.
    pub fn committed_offsets(&self) -> impl Iterator<Item = (&str, &(String, i32), i64)> {
        self.offsets.iter().flat_map(|(group, offsets)| {
            offsets.iter().map(move |(tp, stored)| (group.as_str(), tp, stored.committed.offset))
        })
    }

    pub fn list(&self, states: &[GroupState]) -> Vec<GroupListing> {
        self.groups
            .values()
            .filter(|g| states.is_empty() || states.contains(&g.state))
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect()
    }

    /// Every parked waiter (not those inside completions in flight).
    pub fn parked_waiters(&self) -> Vec<WaiterId> {
        self.groups.values().flat_map(|g| g.waiters()).collect()
    }

    pub(super) fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The group, created Empty if unknown.
    pub(super) fn group_or_create(&mut self, group_id: &str, now_ms: i64) -> &mut Group {
        if !self.groups.contains_key(group_id) {
            let seq = self.next_seq();
            self.created_seq.insert(group_id.to_string(), seq);
            self.groups.insert(group_id.to_string(), Group::new(group_id.to_string(), now_ms));
        }
        self.groups.get_mut(group_id).expect("inserted above")
    }

    /// A fresh member id, `prefix-<uuid-like hex>`, as Kafka forms them.
    /// Unique within the shard's lifetime by the counter, and across
    /// restarts by the seed.
    pub(super) fn new_member_id(&mut self, prefix: &str) -> String {
        let mut cut = prefix.len().min(200);
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        self.next_member += 1;
        let a = splitmix64(self.id_seed ^ self.next_member.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let b = splitmix64(a ^ self.next_member);
        format!(
            "{}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            &prefix[..cut],
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// Runs the debug checks after a transition of `group_id`, which had
    /// `generation_before` (invariant 1: generations never go back).
    pub(super) fn checked(&self, group_id: &str, generation_before: Option<i32>) {
        if cfg!(debug_assertions) {
            if let Some(g) = self.groups.get(group_id) {
                g.check_invariants();
                if let Some(before) = generation_before {
                    assert!(g.generation >= before, "{group_id}: generation {before} -> {}", g.generation);
                }
            }
        }
    }

    /// The timers: pending member ids, sessions, rebalance deadlines, and
    /// offset expiry.
    pub fn tick(&mut self, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let before = self.groups.get(&id).map(|g| g.generation);
            if let Some(g) = self.groups.get_mut(&id) {
                g.tick(&self.config, now_ms, &mut fx);
            }
            self.checked(&id, before);
            if self.expired(&id, now_ms) {
                tracing::info!(group = %id, "deleting an empty group whose offsets expired");
                if let Ok(persist) = self.delete(&id, now_ms) {
                    fx.persists.push(persist);
                }
            }
        }
        fx
    }

    /// Kafka's offset expiry: a group Empty for `offsets_retention_ms`, with
    /// no commit in that time, goes with its offsets (the retention counts
    /// from the last commit alone for a group that never had members).
    fn expired(&self, group_id: &str, now_ms: i64) -> bool {
        let Some(g) = self.groups.get(group_id) else { return false };
        if g.state != GroupState::Empty || !g.pending_members.is_empty() {
            return false;
        }
        let last_commit = self
            .offsets
            .get(group_id)
            .and_then(|o| o.values().map(|s| s.committed.commit_timestamp_ms).max())
            .unwrap_or(i64::MIN);
        let since = match g.protocol_type {
            Some(_) => g.state_timestamp_ms.max(last_commit),
            None => last_commit,
        };
        since != i64::MIN && now_ms.saturating_sub(since) > self.config.offsets_retention_ms
    }

    /// Applies a completion handed back by the driver.
    pub fn persisted(&mut self, then: Completion, result: Result<(), ErrorCode>, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        match then {
            Completion::Nothing => {}
            Completion::Assignment { group, generation, assignments } => {
                let before = self.groups.get(&group).map(|g| g.generation);
                if let Some(g) = self.groups.get_mut(&group) {
                    g.assignment_persisted(generation, assignments, result, &self.config, now_ms, &mut fx);
                }
                self.checked(&group, before);
            }
            Completion::StaticRejoin { group, waiter, response, replaced } => match result {
                Ok(()) => fx.join(waiter, response),
                Err(code) => {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.revert_static_rejoin(&response.member_id, replaced, now_ms);
                    }
                    self.checked(&group, None);
                    // No member id: the new one is no longer anyone's (as
                    // Kafka answers UNKNOWN_MEMBER_ID).
                    fx.join(waiter, JoinResponse::error(code, String::new()));
                }
            },
            Completion::Offsets { group, seq, offsets } => {
                self.commits_in_flight = self.commits_in_flight.saturating_sub(1);
                let alive = self.created_seq.get(&group).is_some_and(|created| *created < seq);
                if result.is_ok() && alive {
                    let stored = self.offsets.entry(group.clone()).or_default();
                    for (topic, partition, committed) in offsets {
                        let fence = self.deleted_offsets.get(&(group.clone(), topic.clone(), partition));
                        let key = (topic, partition);
                        if stored.get(&key).is_none_or(|s| s.seq < seq) && fence.is_none_or(|f| *f < seq) {
                            stored.insert(key, StoredOffset { committed, seq });
                        }
                    }
                }
                if self.commits_in_flight == 0 {
                    self.deleted_offsets.clear();
                }
            }
            Completion::DeleteOffsets { group, seq, partitions } => {
                if result.is_ok() {
                    if let Some(stored) = self.offsets.get_mut(&group) {
                        for key in &partitions {
                            if stored.get(key).is_some_and(|s| s.seq < seq) {
                                stored.remove(key);
                            }
                        }
                    }
                    if self.commits_in_flight > 0 {
                        for (topic, partition) in partitions {
                            self.deleted_offsets.insert((group.clone(), topic, partition), seq);
                        }
                    }
                }
            }
            Completion::Delete { group } => {
                if result.is_ok() {
                    self.groups.remove(&group);
                    self.offsets.remove(&group);
                    self.created_seq.remove(&group);
                } else if let Some(g) = self.groups.get_mut(&group) {
                    // The tombstones may not be in the log: the group lives on.
                    g.transition(GroupState::Empty, now_ms);
                }
            }
        }
        fx
    }

    /// Answers every parked waiter NOT_COORDINATOR and forgets all state:
    /// another broker (or a later load) serves these groups from the log.
    pub fn unload(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        for g in self.groups.values_mut() {
            for m in g.members.values_mut() {
                if let Some(w) = m.join_waiter.take() {
                    replies
                        .push(Reply::Join(w, JoinResponse::error(ErrorCode::NotCoordinator, m.id.clone())));
                }
                if let Some(w) = m.sync_waiter.take() {
                    replies.push(Reply::Sync(w, SyncResponse::error(ErrorCode::NotCoordinator)));
                }
            }
        }
        self.groups.clear();
        self.offsets.clear();
        self.created_seq.clear();
        self.deleted_offsets.clear();
        self.commits_in_flight = 0;
        replies
    }

    /// Applies one record read back from the log, in log order.
    pub fn replay(&mut self, record: OffsetsRecord, now_ms: i64) {
        self.mirror.apply(&record);
        match record {
            OffsetsRecord::Offset { group, topic, partition, value: Some(v) } => {
                self.group_or_create(&group, now_ms);
                let seq = self.next_seq();
                let committed = CommittedOffset {
                    offset: v.offset,
                    leader_epoch: v.leader_epoch,
                    metadata: Some(v.metadata),
                    commit_timestamp_ms: v.commit_timestamp_ms,
                };
                self.offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), StoredOffset { committed, seq });
            }
            OffsetsRecord::Offset { group, topic, partition, value: None } => {
                if let Some(o) = self.offsets.get_mut(&group) {
                    o.remove(&(topic, partition));
                }
            }
            OffsetsRecord::Group { group, value: Some(v) } => self.replay_group(group, v, now_ms),
            OffsetsRecord::Group { group, value: None } => {
                // Our deletes write this last; offsets whose commit was in
                // flight during the delete (and got no tombstone) go too,
                // as they did in memory.
                self.groups.remove(&group);
                self.offsets.remove(&group);
                self.created_seq.remove(&group);
            }
        }
    }

    fn replay_group(&mut self, group_id: String, v: GroupValue, now_ms: i64) {
        let g = self.group_or_create(&group_id, now_ms);
        if v.generation < g.generation {
            tracing::warn!(group = %group_id, from = g.generation, to = v.generation, "replayed generation goes back");
        }
        let mut fresh = Group::new(group_id.clone(), v.current_state_timestamp_ms);
        fresh.generation = v.generation;
        fresh.protocol_type = Some(v.protocol_type);
        for mv in v.members {
            let duplicate = mv.instance_id.as_ref().is_some_and(|i| fresh.static_members.contains_key(i));
            if duplicate || fresh.members.contains_key(&mv.member_id) {
                tracing::warn!(group = %group_id, member = %mv.member_id, "replayed member is a duplicate; skipped");
                continue;
            }
            let protocol = v.protocol.clone().unwrap_or_default();
            fresh.add_member(Member {
                id: mv.member_id,
                instance_id: mv.instance_id,
                client_id: mv.client_id,
                client_host: mv.client_host,
                session_timeout_ms: mv.session_timeout_ms,
                rebalance_timeout_ms: mv.rebalance_timeout_ms,
                protocol_type: fresh.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(protocol, mv.subscription)],
                assignment: mv.assignment,
                generation: v.generation,
                is_new: false,
                session_deadline_ms: now_ms,
                join_waiter: None,
                sync_waiter: None,
            });
        }
        // The recorded leader if it is a member, else add_member's choice.
        if let Some(l) = v.leader.filter(|l| fresh.members.contains_key(l)) {
            fresh.leader = Some(l);
        }
        if fresh.members.is_empty() {
            fresh.state = GroupState::Empty;
        } else {
            fresh.state = GroupState::Stable;
            fresh.protocol = v.protocol.or_else(|| fresh.select_protocol());
        }
        *g = fresh;
    }

    /// After replay: sessions restart from now, so that a coordinator
    /// restart alone does not expire anyone.
    pub fn finish_load(&mut self, now_ms: i64) {
        for g in self.groups.values_mut() {
            for m in g.members.values_mut() {
                m.touch(now_ms);
            }
        }
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            self.checked(&id, None);
        }
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
