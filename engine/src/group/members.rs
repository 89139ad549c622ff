//! SyncGroup, Heartbeat and LeaveGroup (Kafka 3.x semantics).

use super::api::{GroupState, HeartbeatRequest, LeavingMember, SyncRequest, SyncResponse, MEMBER_BYTES_MAX};
use super::group::{Group, WaiterId};
use super::records::STRING_BYTES_MAX;
use super::shard::{Completion, Effects, Persist, Shard};
use crate::error::ErrorCode;
use bytes::Bytes;
use std::collections::BTreeMap;

impl Shard {
    /// SyncGroup from `waiter`. Followers park until the leader's
    /// assignment is durable; its answer comes in these or later effects.
    pub fn sync(&mut self, req: SyncRequest, waiter: WaiterId, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        let group_id = req.group_id.clone();
        let Some(g) = self.groups.get_mut(&group_id) else {
            let code =
                if req.group_id.is_empty() { ErrorCode::InvalidGroupId } else { ErrorCode::UnknownMemberId };
            fx.sync(waiter, SyncResponse::error(code));
            return fx;
        };
        let before = g.generation;
        if let Err(code) = check_sync(g, &req) {
            fx.sync(waiter, SyncResponse::error(code));
            return fx;
        }
        match g.state {
            GroupState::Empty => fx.sync(waiter, SyncResponse::error(ErrorCode::UnknownMemberId)),
            GroupState::Dead => fx.sync(waiter, SyncResponse::error(ErrorCode::CoordinatorNotAvailable)),
            GroupState::PreparingRebalance => {
                fx.sync(waiter, SyncResponse::error(ErrorCode::RebalanceInProgress))
            }
            GroupState::Stable => {
                g.pending_sync.remove(&req.member_id);
                if g.pending_sync.is_empty() {
                    g.rebalance_deadline_ms = None;
                }
                let answer = g.members.get(&req.member_id).map(|m| g.sync_answer(&m.assignment));
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.touch(now_ms);
                }
                fx.sync(waiter, answer.unwrap_or_else(|| SyncResponse::error(ErrorCode::UnknownMemberId)));
            }
            GroupState::CompletingRebalance => park_sync(g, req, waiter, &mut fx),
        }
        self.checked(&group_id, Some(before));
        fx
    }

    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now_ms: i64) -> Result<(), ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let g = self.groups.get_mut(&req.group_id).ok_or(ErrorCode::UnknownMemberId)?;
        if g.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if g.is_static_fenced(req.instance_id.as_deref(), &req.member_id) {
            return Err(ErrorCode::FencedInstanceId);
        }
        let generation = g.generation;
        let state = g.state;
        let m = g.members.get_mut(&req.member_id).ok_or(ErrorCode::UnknownMemberId)?;
        match state {
            GroupState::Empty | GroupState::Dead => Err(ErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => {
                m.touch(now_ms);
                Err(ErrorCode::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable if req.generation != generation => {
                Err(ErrorCode::IllegalGeneration)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.touch(now_ms);
                Ok(())
            }
        }
    }

    /// LeaveGroup: a group-level error, or one outcome per member.
    pub fn leave(
        &mut self,
        group_id: &str,
        leaving: &[LeavingMember],
        now_ms: i64,
    ) -> (Result<Vec<Result<(), ErrorCode>>, ErrorCode>, Effects) {
        let mut fx = Effects::default();
        if group_id.is_empty() {
            return (Err(ErrorCode::InvalidGroupId), fx);
        }
        let config = self.config;
        let Some(g) = self.groups.get_mut(group_id) else {
            return (Ok(vec![Err(ErrorCode::UnknownMemberId); leaving.len()]), fx);
        };
        if g.state == GroupState::Dead {
            return (Err(ErrorCode::CoordinatorNotAvailable), fx);
        }
        let before = g.generation;
        let mut removed_any = false;
        let outcomes = leaving
            .iter()
            .map(|l| {
                let id = resolve_leaving(g, l)?;
                if g.pending_members.remove(&id).is_some() {
                    removed_any = true;
                    return Ok(());
                }
                tracing::info!(group = %g.id, member = %id, reason = ?l.reason, "member leaves");
                if g.remove_and_answer(&id, &mut fx) {
                    removed_any = true;
                    Ok(())
                } else {
                    Err(ErrorCode::UnknownMemberId)
                }
            })
            .collect();
        if removed_any {
            g.after_members_removed(&config, now_ms, &mut fx);
        }
        self.checked(group_id, Some(before));
        (Ok(outcomes), fx)
    }
}

fn check_sync(g: &Group, req: &SyncRequest) -> Result<(), ErrorCode> {
    if g.is_static_fenced(req.instance_id.as_deref(), &req.member_id) {
        return Err(ErrorCode::FencedInstanceId);
    }
    if !g.members.contains_key(&req.member_id) {
        return Err(ErrorCode::UnknownMemberId);
    }
    if req.generation != g.generation {
        return Err(ErrorCode::IllegalGeneration);
    }
    if req.assignments.iter().any(|(_, a)| a.len() > MEMBER_BYTES_MAX) {
        return Err(ErrorCode::InvalidRequest);
    }
    let type_differs = req.protocol_type.as_ref().is_some_and(|t| g.protocol_type.as_ref() != Some(t));
    let name_differs = req.protocol_name.as_ref().is_some_and(|n| g.protocol.as_ref() != Some(n));
    if type_differs || name_differs {
        return Err(ErrorCode::InconsistentGroupProtocol);
    }
    Ok(())
}

/// CompletingRebalance: park until the assignment is durable; the leader's
/// sync persists it.
fn park_sync(g: &mut Group, req: SyncRequest, waiter: WaiterId, fx: &mut Effects) {
    g.pending_sync.remove(&req.member_id);
    let Some(m) = g.members.get_mut(&req.member_id) else { return };
    if let Some(old) = m.sync_waiter.replace(waiter) {
        // A retried sync replaces the one parked before it.
        fx.sync(old, SyncResponse::error(ErrorCode::RebalanceInProgress));
    }
    let is_leader = g.leader.as_deref() == Some(req.member_id.as_str());
    if !is_leader || g.assignment_in_flight {
        return;
    }
    // Only assignments for members of this generation count; later
    // duplicates win, as a map would have it in Kafka.
    let assignments: BTreeMap<String, Bytes> =
        req.assignments.into_iter().filter(|(id, _)| g.members.contains_key(id)).collect();
    g.assignment_in_flight = true;
    let record = g.metadata_record(&assignments);
    let then = Completion::Assignment { group: g.id.clone(), generation: g.generation, assignments };
    fx.persists.push(Persist { records: vec![record], then });
}

/// The member id a LeaveGroup entry names: by instance id for static
/// members (the member id may then be empty).
fn resolve_leaving(g: &Group, l: &LeavingMember) -> Result<String, ErrorCode> {
    if l.member_id.len() > STRING_BYTES_MAX {
        return Err(ErrorCode::UnknownMemberId);
    }
    let Some(instance) = &l.instance_id else { return Ok(l.member_id.clone()) };
    match g.static_members.get(instance) {
        None => Err(ErrorCode::UnknownMemberId),
        Some(known) if !l.member_id.is_empty() && *known != l.member_id => Err(ErrorCode::FencedInstanceId),
        Some(known) => Ok(known.clone()),
    }
}
