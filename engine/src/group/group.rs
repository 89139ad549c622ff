//! One consumer group's membership: members, the static instance map,
//! pending member ids, protocol selection, and the invariants that hold
//! between transitions. The transitions themselves live in `join`, `sync`
//! and `shard` (they need the shard's effects).

use super::api::{GroupDescription, GroupState, JoinedMember, MemberDescription};
use super::records::{GroupValue, MemberValue, OffsetsRecord};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// Opaque id of a parked JoinGroup/SyncGroup (or a join waiting for a
/// record to persist); the driver maps it to whoever waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId(pub u64);

/// A member that joined the group without a member id is given this long
/// to come back with it (Kafka's NewMemberJoinTimeoutMs), so that a client
/// that vanished after its first join does not hold a rebalance until the
/// rebalance timeout.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// The assignors it supports, by preference, with its subscription.
    pub protocols: Vec<(String, Bytes)>,
    /// Its assignment in the current generation (empty until synced).
    pub assignment: Bytes,
    /// The generation it joined last; -1 before its first completed join.
    pub generation: i32,
    /// Joined in the current rebalance and never completed a join.
    pub is_new: bool,
    /// When it is removed unless it heartbeats (or waits in a join/sync).
    pub session_deadline_ms: i64,
    pub join_waiter: Option<WaiterId>,
    pub sync_waiter: Option<WaiterId>,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// Restarts its session: after a heartbeat, a commit, an answered join
    /// or sync.
    pub fn touch(&mut self, now_ms: i64) {
        self.session_deadline_ms = now_ms.saturating_add(i64::from(self.session_timeout_ms));
    }

    pub fn summary(&self, protocol: Option<&str>) -> MemberDescription {
        MemberDescription {
            member_id: self.id.clone(),
            instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            metadata: protocol.map(|p| self.metadata(p)).unwrap_or_default(),
            assignment: if protocol.is_some() { self.assignment.clone() } else { Bytes::new() },
        }
    }
}

/// The initial rebalance of an empty group waits `initial_rebalance_delay`
/// for more members, extended while new ones keep coming, within the
/// rebalance timeout (Kafka's InitialDelayedJoin).
#[derive(Clone, Copy, Debug)]
pub struct InitialDelay {
    pub remaining_ms: i64,
    pub new_member_added: bool,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    pub static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED -> expiry deadline.
    pub pending_members: BTreeMap<String, i64>,
    /// Members of this generation that have not synced yet.
    pub pending_sync: BTreeSet<String>,
    /// PreparingRebalance: when the join completes with whoever joined.
    /// CompletingRebalance/Stable: when members that did not sync are
    /// removed.
    pub rebalance_deadline_ms: Option<i64>,
    pub initial_delay: Option<InitialDelay>,
    /// The leader's assignment is being persisted.
    pub assignment_in_flight: bool,
    pub state_timestamp_ms: i64,
}

impl Group {
    /// The topics its members subscribe to, when it is a consumer group
    /// whose members' metadata can be read (`None` otherwise: OffsetDelete
    /// then treats every topic as subscribed, as Kafka does).
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(super::subscription::subscribed_topics(&m.metadata(protocol))?);
        }
        Some(topics)
    }

    pub fn new(id: String, now_ms: i64) -> Group {
        Group {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            rebalance_deadline_ms: None,
            initial_delay: None,
            assignment_in_flight: false,
            state_timestamp_ms: now_ms,
        }
    }

    pub fn transition(&mut self, to: GroupState, now_ms: i64) {
        tracing::debug!(group = %self.id, from = ?self.state, ?to, generation = self.generation, "group state");
        self.state = to;
        self.state_timestamp_ms = now_ms;
    }

    pub fn is_static_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id.and_then(|i| self.static_members.get(i)).is_some_and(|known| known != member_id)
    }

    pub fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), member.id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member, returning it (with any waiter still parked on it,
    /// which the caller must answer). A removed leader is replaced by the
    /// first remaining member.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).is_some_and(|m| m == member_id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Moves member `from` to id `to` in place: it stays leader, pending
    /// sync and its instance's member if it was. Returns it under `to`.
    pub fn rename_member(&mut self, from: &str, to: String) -> Option<&mut Member> {
        let was_leader = self.leader.as_deref() == Some(from);
        let was_pending_sync = self.pending_sync.contains(from);
        let mut member = self.remove_member(from)?;
        member.id = to.clone();
        self.add_member(member);
        if was_leader {
            self.leader = Some(to.clone());
        }
        if was_pending_sync {
            self.pending_sync.insert(to.clone());
        }
        self.members.get_mut(&to)
    }

    /// Whether a member with these protocols can be part of the group:
    /// the group's protocol type (once it has members, as Kafka), and some
    /// protocol every other member supports.
    pub fn supports(&self, joining: &str, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if !self.members.is_empty() && self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let others: Vec<&Member> = self.members.values().filter(|m| m.id != joining).collect();
        protocols.iter().any(|(name, _)| others.iter().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    /// The protocol every member supports that most members prefer; ties go
    /// to the smallest name, so that the choice is deterministic.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == *n)))
            .collect();
        let mut votes: BTreeMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| votes.contains_key(n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes.into_iter().find(|(_, v)| *v == best).map(|(n, _)| n.clone())
    }

    /// Members in PreparingRebalance: all members and no pending ids have
    /// joined.
    pub fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// Kafka's group rebalance timeout: the largest of its members'.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members.values().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// The members as the leader sees them in its JoinGroup answer.
    pub fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(&protocol),
            })
            .collect()
    }

    /// The GroupMetadata record of the group as it is now (with the given
    /// assignments, which are persisted before they are handed out).
    pub fn metadata_record(&self, assignments: &BTreeMap<String, Bytes>) -> OffsetsRecord {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|m| MemberValue {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata(&protocol),
                assignment: assignments.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect();
        OffsetsRecord::Group {
            group: self.id.clone(),
            value: Some(GroupValue {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation: self.generation,
                protocol: self.protocol.clone(),
                leader: self.leader.clone(),
                current_state_timestamp_ms: self.state_timestamp_ms,
                members,
            }),
        }
    }

    pub fn current_assignments(&self) -> BTreeMap<String, Bytes> {
        self.members.values().map(|m| (m.id.clone(), m.assignment.clone())).collect()
    }

    pub fn describe(&self) -> GroupDescription {
        // As Kafka: member metadata and assignments only once Stable.
        let protocol = (self.state == GroupState::Stable).then(|| self.protocol.clone().unwrap_or_default());
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: protocol.clone().unwrap_or_default(),
            generation: self.generation,
            members: self.members.values().map(|m| m.summary(protocol.as_deref())).collect(),
        }
    }

    /// Every parked waiter of the group.
    pub fn waiters(&self) -> impl Iterator<Item = WaiterId> + '_ {
        self.members.values().flat_map(|m| m.join_waiter.into_iter().chain(m.sync_waiter))
    }

    /// The design's invariants 2 and 5 (as far as one group can tell), and
    /// the state's own consistency. Cheap enough for every transition in
    /// debug builds.
    pub fn check_invariants(&self) {
        let settled = matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable);
        if settled {
            assert!(!self.members.is_empty(), "{}: {:?} without members", self.id, self.state);
            for m in self.members.values() {
                assert_eq!(m.generation, self.generation, "{}: member {} not in generation", self.id, m.id);
                assert!(m.join_waiter.is_none(), "{}: parked join in {:?}", self.id, self.state);
            }
            assert!(self.protocol.is_some(), "{}: no protocol in {:?}", self.id, self.state);
        }
        if self.state == GroupState::Stable {
            assert!(
                self.members.values().all(|m| m.sync_waiter.is_none()),
                "{}: parked sync in Stable",
                self.id
            );
            assert!(!self.assignment_in_flight, "{}: assignment in flight while Stable", self.id);
        }
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            assert!(self.members.is_empty(), "{}: members while {:?}", self.id, self.state);
        }
        if self.state == GroupState::PreparingRebalance {
            assert!(self.members.values().all(|m| m.sync_waiter.is_none()), "{}: parked sync", self.id);
        }
        match &self.leader {
            Some(l) => assert!(self.members.contains_key(l), "{}: leader {l} is not a member", self.id),
            None => assert!(self.members.is_empty(), "{}: members without a leader", self.id),
        }
        for (instance, member_id) in &self.static_members {
            let m = self.members.get(member_id);
            assert!(
                m.is_some_and(|m| m.instance_id.as_deref() == Some(instance)),
                "{}: instance {instance} maps to {member_id}, which does not carry it",
                self.id
            );
        }
        for m in self.members.values() {
            if let Some(instance) = &m.instance_id {
                assert_eq!(self.static_members.get(instance), Some(&m.id), "{}: instance map", self.id);
            }
        }
        assert!(self.pending_sync.iter().all(|m| self.members.contains_key(m)), "{}: pending sync", self.id);
    }
}
