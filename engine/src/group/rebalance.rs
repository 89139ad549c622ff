//! A group's rebalance transitions (Kafka's GroupCoordinator): prepare,
//! complete the join, hand out the persisted assignment, remove members,
//! and the timers that drive them.

use super::api::{GroupConfig, GroupState, JoinResponse, SyncResponse};
use super::group::{Group, InitialDelay};
use super::shard::{Completion, Effects, Persist};
use crate::error::ErrorCode;
use bytes::Bytes;
use std::collections::BTreeMap;

impl Group {
    /// Starts a rebalance: parked syncs of the generation being completed
    /// are told to rejoin, and members get until the deadline to join.
    pub(super) fn prepare_rebalance(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Effects) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    fx.sync(w, SyncResponse::error(ErrorCode::RebalanceInProgress));
                }
            }
        }
        self.pending_sync.clear();
        self.assignment_in_flight = false;
        let delay_ms = i64::from(config.initial_rebalance_delay_ms.max(0));
        if self.state == GroupState::Empty && delay_ms > 0 {
            let remaining_ms = (self.rebalance_timeout_ms() - delay_ms).max(0);
            self.initial_delay = Some(InitialDelay { remaining_ms, new_member_added: false });
            self.rebalance_deadline_ms = Some(now_ms.saturating_add(delay_ms));
        } else {
            self.initial_delay = None;
            self.rebalance_deadline_ms = Some(now_ms.saturating_add(self.rebalance_timeout_ms()));
        }
        self.transition(GroupState::PreparingRebalance, now_ms);
    }

    /// Rebalances unless one is already under way.
    pub(super) fn maybe_prepare_rebalance(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Effects) {
        if matches!(self.state, GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(config, now_ms, fx);
        }
    }

    /// Completes the join once everyone is in, except during the initial
    /// delay, which always runs its course.
    pub(super) fn maybe_complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
        if self.state == GroupState::PreparingRebalance && self.initial_delay.is_none() && self.all_joined() {
            self.complete_join(now_ms, fx);
        }
    }

    /// The next generation, with the members that rejoined; members that
    /// did not are removed. Every parked join is answered here.
    pub(super) fn complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
        debug_assert_eq!(self.state, GroupState::PreparingRebalance);
        let laggards: Vec<String> =
            self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.id.clone()).collect();
        for id in laggards {
            tracing::info!(group = %self.id, member = %id, "removing member that did not rejoin in time");
            self.remove_and_answer(&id, fx);
        }
        self.initial_delay = None;
        self.rebalance_deadline_ms = None;
        self.generation = self.generation.saturating_add(1);
        if self.members.is_empty() {
            self.protocol = None;
            self.transition(GroupState::Empty, now_ms);
            let record = self.metadata_record(&BTreeMap::new());
            fx.persists.push(Persist { records: vec![record], then: Completion::Nothing });
            return;
        }
        self.protocol = self.select_protocol();
        self.transition(GroupState::CompletingRebalance, now_ms);
        let leader = self.leader.clone().unwrap_or_default();
        let joined = self.joined_members();
        for m in self.members.values_mut() {
            m.generation = self.generation;
            m.is_new = false;
            m.assignment = Bytes::new();
            m.touch(now_ms);
            let response = JoinResponse {
                error: ErrorCode::None,
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol.clone(),
                leader: leader.clone(),
                member_id: m.id.clone(),
                members: if m.id == leader { joined.clone() } else { Vec::new() },
            };
            if let Some(w) = m.join_waiter.take() {
                fx.join(w, response);
            }
        }
        self.pending_sync = self.members.keys().cloned().collect();
        self.rebalance_deadline_ms = Some(now_ms.saturating_add(self.rebalance_timeout_ms()));
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), "generation formed");
    }

    /// The leader's assignment of `generation` is durable (or failed to
    /// be): hand it to every member, or make them rejoin.
    pub(super) fn assignment_persisted(
        &mut self,
        generation: i32,
        assignments: BTreeMap<String, Bytes>,
        result: Result<(), ErrorCode>,
        config: &GroupConfig,
        now_ms: i64,
        fx: &mut Effects,
    ) {
        if self.state != GroupState::CompletingRebalance || self.generation != generation {
            // A rebalance overtook it; its waiters were answered then.
            return;
        }
        self.assignment_in_flight = false;
        if let Err(code) = result {
            tracing::warn!(group = %self.id, generation, error = %code, "persisting the assignment failed");
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    fx.sync(w, SyncResponse::error(code));
                }
            }
            self.prepare_rebalance(config, now_ms, fx);
            self.maybe_complete_join(now_ms, fx);
            return;
        }
        self.transition(GroupState::Stable, now_ms);
        let answer = self.sync_answer(&Bytes::new());
        for m in self.members.values_mut() {
            m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
            if let Some(w) = m.sync_waiter.take() {
                m.touch(now_ms);
                fx.sync(w, SyncResponse { assignment: m.assignment.clone(), ..answer.clone() });
            }
        }
        if self.pending_sync.is_empty() {
            self.rebalance_deadline_ms = None;
        }
    }

    pub(super) fn sync_answer(&self, assignment: &Bytes) -> SyncResponse {
        SyncResponse {
            error: ErrorCode::None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: assignment.clone(),
        }
    }

    /// Removes a member and answers whatever it had parked.
    pub(super) fn remove_and_answer(&mut self, member_id: &str, fx: &mut Effects) -> bool {
        let Some(mut m) = self.remove_member(member_id) else { return false };
        if let Some(w) = m.join_waiter.take() {
            fx.join(w, JoinResponse::error(ErrorCode::UnknownMemberId, member_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            fx.sync(w, SyncResponse::error(ErrorCode::UnknownMemberId));
        }
        true
    }

    /// After members left or expired: a settled group rebalances, a
    /// rebalancing one may now be complete.
    pub(super) fn after_members_removed(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Effects) {
        if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(config, now_ms, fx);
        }
        self.maybe_complete_join(now_ms, fx);
    }

    /// Expires pending member ids and sessions, and fires the rebalance
    /// deadline.
    pub(super) fn tick(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Effects) {
        let pending_before = self.pending_members.len();
        self.pending_members.retain(|_, deadline| *deadline > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                // Members waiting in a join or sync are alive by definition
                // (the rebalance deadline covers them), except a new member
                // that never completed a join.
                let parked = m.join_waiter.is_some() || m.sync_waiter.is_some();
                m.session_deadline_ms <= now_ms && (m.is_new || !parked)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_and_answer(id, fx);
        }
        if !expired.is_empty() || self.pending_members.len() != pending_before {
            self.after_members_removed(config, now_ms, fx);
        }
        if self.rebalance_deadline_ms.is_some_and(|d| d <= now_ms) {
            self.rebalance_deadline_passed(config, now_ms, fx);
        }
    }

    fn rebalance_deadline_passed(&mut self, config: &GroupConfig, now_ms: i64, fx: &mut Effects) {
        match self.state {
            GroupState::PreparingRebalance => match &mut self.initial_delay {
                Some(d) if d.new_member_added && d.remaining_ms > 0 => {
                    // More members arrived during the delay: wait a little
                    // longer for the rest of them.
                    let step = i64::from(config.initial_rebalance_delay_ms.max(0)).min(d.remaining_ms);
                    d.remaining_ms -= step;
                    d.new_member_added = false;
                    self.rebalance_deadline_ms = Some(now_ms.saturating_add(step));
                }
                _ => self.complete_join(now_ms, fx),
            },
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.rebalance_deadline_ms = None;
                let laggards: Vec<String> = self.pending_sync.iter().cloned().collect();
                if laggards.is_empty() {
                    return;
                }
                for id in &laggards {
                    tracing::info!(group = %self.id, member = %id, "removing member that did not sync in time");
                    self.remove_and_answer(id, fx);
                }
                self.after_members_removed(config, now_ms, fx);
            }
            GroupState::Empty | GroupState::Dead => self.rebalance_deadline_ms = None,
        }
    }
}
