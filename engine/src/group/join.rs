//! JoinGroup, as Kafka 3.x's GroupCoordinator handles it: new members
//! (with MEMBER_ID_REQUIRED for v4+), known members, and static members
//! that restart under a new member id.

use super::api::{GroupConfig, GroupState, JoinRequest, JoinResponse, SyncResponse, MEMBER_BYTES_MAX};
use super::group::{Group, Member, WaiterId, NEW_MEMBER_JOIN_TIMEOUT_MS};
use super::records::STRING_BYTES_MAX;
use super::shard::{Completion, Effects, Persist, Shard};
use crate::error::ErrorCode;
use bytes::Bytes;

impl Shard {
    /// JoinGroup from `waiter`. Its answer comes in these or later effects
    /// (when the rebalance completes); exactly once.
    pub fn join(&mut self, req: JoinRequest, waiter: WaiterId, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        if let Err(code) = self.check_join(&req) {
            fx.join(waiter, JoinResponse::error(code, req.member_id));
            return fx;
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            fx.join(waiter, JoinResponse::error(ErrorCode::UnknownMemberId, req.member_id));
            return fx;
        }
        let new_id = req.member_id.is_empty().then(|| {
            let prefix = req.instance_id.clone().unwrap_or_else(|| req.client_id.clone());
            // Ids are unique by construction; the loop only guards against a
            // reused entropy seed after a restart.
            loop {
                let id = self.new_member_id(&prefix);
                let taken = self
                    .groups
                    .get(&req.group_id)
                    .is_some_and(|g| g.members.contains_key(&id) || g.pending_members.contains_key(&id));
                if !taken {
                    break id;
                }
            }
        });
        let config = self.config;
        let group_id = req.group_id.clone();
        let g = self.group_or_create(&group_id, now_ms);
        let before = g.generation;
        if g.state == GroupState::Dead {
            fx.join(waiter, JoinResponse::error(ErrorCode::CoordinatorNotAvailable, req.member_id));
        } else if !g.supports(&req.member_id, &req.protocol_type, &req.protocols) {
            fx.join(waiter, JoinResponse::error(ErrorCode::InconsistentGroupProtocol, req.member_id));
        } else {
            match new_id {
                Some(id) => join_new(g, id, req, waiter, &config, now_ms, &mut fx),
                None => join_known(g, req, waiter, &config, now_ms, &mut fx),
            }
        }
        self.checked(&group_id, Some(before));
        fx
    }

    fn check_join(&self, req: &JoinRequest) -> Result<(), ErrorCode> {
        if req.group_id.is_empty() || req.group_id.len() > STRING_BYTES_MAX {
            return Err(ErrorCode::InvalidGroupId);
        }
        let c = &self.config;
        if req.session_timeout_ms < c.min_session_timeout_ms
            || req.session_timeout_ms > c.max_session_timeout_ms
        {
            return Err(ErrorCode::InvalidSessionTimeout);
        }
        // Everything that may end up in a record must fit the record format.
        let strings = [&req.member_id, &req.client_id, &req.client_host, &req.protocol_type];
        let too_long = strings.iter().any(|s| s.len() > STRING_BYTES_MAX)
            || req.instance_id.as_ref().is_some_and(|s| s.len() > STRING_BYTES_MAX || s.is_empty())
            || req.protocols.iter().any(|(n, m)| n.len() > STRING_BYTES_MAX || m.len() > MEMBER_BYTES_MAX);
        if too_long {
            return Err(ErrorCode::InvalidRequest);
        }
        Ok(())
    }
}

/// A member's rebalance timeout: within 0..=`max_session_timeout_ms`, so a
/// parked JoinGroup (and the request bytes it holds) waits at most that
/// long, as Kafka bounds sessions with group.max.session.timeout.ms.
fn rebalance_timeout(asked_ms: i32, config: &GroupConfig) -> i32 {
    asked_ms.clamp(0, config.max_session_timeout_ms.max(0))
}

fn new_member(id: String, req: JoinRequest, waiter: WaiterId, config: &GroupConfig, now_ms: i64) -> Member {
    Member {
        id,
        instance_id: req.instance_id,
        client_id: req.client_id,
        client_host: req.client_host,
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: rebalance_timeout(req.rebalance_timeout_ms, config),
        protocol_type: req.protocol_type,
        protocols: req.protocols,
        assignment: Default::default(),
        generation: -1,
        is_new: true,
        session_deadline_ms: now_ms.saturating_add(NEW_MEMBER_JOIN_TIMEOUT_MS),
        join_waiter: Some(waiter),
        sync_waiter: None,
    }
}

fn join_new(
    g: &mut Group,
    id: String,
    req: JoinRequest,
    waiter: WaiterId,
    config: &GroupConfig,
    now_ms: i64,
    fx: &mut Effects,
) {
    if let Some(old) = req.instance_id.as_ref().and_then(|i| g.static_members.get(i)).cloned() {
        return static_rejoin(g, old, id, req, waiter, config, now_ms, fx);
    }
    if g.members.len() + g.pending_members.len() >= config.max_group_size {
        return fx.join(waiter, JoinResponse::error(ErrorCode::GroupMaxSizeReached, req.member_id));
    }
    if req.instance_id.is_none() && req.require_known_member_id {
        // The member must come back with this id; until then it holds up
        // the rebalance for at most its session timeout.
        let deadline = now_ms.saturating_add(i64::from(req.session_timeout_ms));
        g.pending_members.insert(id.clone(), deadline);
        return fx.join(waiter, JoinResponse::error(ErrorCode::MemberIdRequired, id));
    }
    add_member_and_rebalance(g, id, req, waiter, config, now_ms, fx);
}

fn join_known(
    g: &mut Group,
    req: JoinRequest,
    waiter: WaiterId,
    config: &GroupConfig,
    now_ms: i64,
    fx: &mut Effects,
) {
    let id = req.member_id.clone();
    let instance = req.instance_id.as_deref();
    if g.pending_members.contains_key(&id) {
        if instance.is_some_and(|i| g.static_members.contains_key(i)) {
            return fx.join(waiter, JoinResponse::error(ErrorCode::FencedInstanceId, id));
        }
        return add_member_and_rebalance(g, id, req, waiter, config, now_ms, fx);
    }
    if g.is_static_fenced(instance, &id) {
        return fx.join(waiter, JoinResponse::error(ErrorCode::FencedInstanceId, id));
    }
    let unknown_instance = instance.is_some_and(|i| !g.static_members.contains_key(i));
    let Some(member) = g.members.get_mut(&id).filter(|_| !unknown_instance) else {
        return fx.join(waiter, JoinResponse::error(ErrorCode::UnknownMemberId, id));
    };
    let unchanged = member.same_protocols(&req.protocols);
    let is_leader = g.leader.as_deref() == Some(id.as_str());
    match g.state {
        GroupState::PreparingRebalance => update_and_rebalance(g, req, waiter, config, now_ms, fx),
        GroupState::CompletingRebalance if unchanged => answer_current(g, &id, waiter, now_ms, fx),
        GroupState::Stable if unchanged && !is_leader => answer_current(g, &id, waiter, now_ms, fx),
        GroupState::CompletingRebalance | GroupState::Stable => {
            update_and_rebalance(g, req, waiter, config, now_ms, fx)
        }
        GroupState::Empty | GroupState::Dead => {
            fx.join(waiter, JoinResponse::error(ErrorCode::UnknownMemberId, id))
        }
    }
}

/// A member rejoining without changes gets the current generation back.
fn answer_current(g: &mut Group, id: &str, waiter: WaiterId, now_ms: i64, fx: &mut Effects) {
    let leader = g.leader.clone().unwrap_or_default();
    let members = if leader == id { g.joined_members() } else { Vec::new() };
    if let Some(m) = g.members.get_mut(id) {
        m.touch(now_ms);
    }
    fx.join(
        waiter,
        JoinResponse {
            error: ErrorCode::None,
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            leader,
            member_id: id.to_string(),
            members,
        },
    );
}

fn update_and_rebalance(
    g: &mut Group,
    req: JoinRequest,
    waiter: WaiterId,
    config: &GroupConfig,
    now_ms: i64,
    fx: &mut Effects,
) {
    let Some(m) = g.members.get_mut(&req.member_id) else { return };
    m.protocols = req.protocols;
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = rebalance_timeout(req.rebalance_timeout_ms, config);
    if let Some(old) = m.join_waiter.replace(waiter) {
        // A retried join replaces the one parked before it.
        fx.join(old, JoinResponse::error(ErrorCode::RebalanceInProgress, m.id.clone()));
    }
    if g.state != GroupState::PreparingRebalance {
        g.prepare_rebalance(config, now_ms, fx);
    }
    g.maybe_complete_join(now_ms, fx);
}

fn add_member_and_rebalance(
    g: &mut Group,
    id: String,
    req: JoinRequest,
    waiter: WaiterId,
    config: &GroupConfig,
    now_ms: i64,
    fx: &mut Effects,
) {
    g.pending_members.remove(&id);
    if g.state == GroupState::PreparingRebalance {
        if let Some(d) = &mut g.initial_delay {
            d.new_member_added = true;
        }
    }
    tracing::debug!(group = %g.id, member = %id, "member joins");
    g.add_member(new_member(id, req, waiter, config, now_ms));
    g.maybe_prepare_rebalance(config, now_ms, fx);
    g.maybe_complete_join(now_ms, fx);
}

/// A known static member joins again without its member id (it
/// restarted): it takes over its old entry under a new id, and the old id
/// is fenced. A Stable group whose protocol does not change keeps its
/// generation and assignments: only the new id is persisted.
#[allow(clippy::too_many_arguments)]
fn static_rejoin(
    g: &mut Group,
    old_id: String,
    new_id: String,
    req: JoinRequest,
    waiter: WaiterId,
    config: &GroupConfig,
    now_ms: i64,
    fx: &mut Effects,
) {
    let Some(m) = g.rename_member(&old_id, new_id.clone()) else {
        return add_member_and_rebalance(g, new_id, req, waiter, config, now_ms, fx);
    };
    if let Some(w) = m.join_waiter.take() {
        fx.join(w, JoinResponse::error(ErrorCode::FencedInstanceId, old_id.clone()));
    }
    if let Some(w) = m.sync_waiter.take() {
        fx.sync(w, SyncResponse::error(ErrorCode::FencedInstanceId));
    }
    let replaced = Replaced {
        member_id: old_id.clone(),
        protocols: std::mem::replace(&mut m.protocols, req.protocols),
        session_timeout_ms: m.session_timeout_ms,
        rebalance_timeout_ms: m.rebalance_timeout_ms,
    };
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = rebalance_timeout(req.rebalance_timeout_ms, config);
    m.touch(now_ms);
    tracing::info!(group = %g.id, old = %old_id, new = %new_id, "static member rejoined");
    if g.state == GroupState::Stable && g.select_protocol() == g.protocol {
        let response = JoinResponse {
            error: ErrorCode::None,
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            leader: g.leader.clone().unwrap_or_default(),
            member_id: new_id,
            members: Vec::new(),
        };
        let record = g.metadata_record(&g.current_assignments());
        let then = Completion::StaticRejoin { group: g.id.clone(), waiter, response, replaced };
        fx.persists.push(Persist { records: vec![record], then });
        return;
    }
    // A rebalance persists the member with the next generation's record;
    // nothing to undo here.
    if let Some(m) = g.members.get_mut(&new_id) {
        m.join_waiter = Some(waiter);
    }
    if g.state != GroupState::PreparingRebalance {
        g.prepare_rebalance(config, now_ms, fx);
    }
    g.maybe_complete_join(now_ms, fx);
}

/// What a static rejoin of a Stable group replaced, kept until its record
/// is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    pub member_id: String,
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
}

impl Group {
    /// The record of the static rejoin that made member `new_id` was not
    /// written. The log still holds the member under its old id, and a
    /// reload (a failover) would give that: so must the group here, as
    /// Kafka reverts it. The old id becomes valid again (the restarted
    /// client was never given the new one; it rejoins), with what it had.
    /// Requests the old id had parked were answered FENCED_INSTANCE_ID
    /// already; their clients rejoin.
    pub(super) fn revert_static_rejoin(&mut self, new_id: &str, replaced: Replaced, now_ms: i64) {
        // Gone if something overtook the rejoin (it left, expired, or
        // rejoined again): then there is nothing of it to undo here.
        let old_id = replaced.member_id.clone();
        let Some(m) = self.rename_member(new_id, replaced.member_id) else { return };
        m.protocols = replaced.protocols;
        m.session_timeout_ms = replaced.session_timeout_ms;
        m.rebalance_timeout_ms = replaced.rebalance_timeout_ms;
        // Its session restarts under the old id, as Kafka reschedules the
        // old member's heartbeat.
        m.touch(now_ms);
        tracing::warn!(group = %self.id, new = %new_id, old = %old_id, "static rejoin not persisted; reverted");
    }
}
