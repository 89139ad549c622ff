//! LeaveGroup: members leave (a rebalance follows). v0-2 name one member
//! by id; v3+ carry several, each by member id or static instance id,
//! with an outcome each. Needs READ on the group.

use super::{code, opt_string, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::group::LeavingMember;
use ringtail_engine::security::acl::Operation;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = request.group_id.0.to_string();
    if !access.group(Operation::Read, &group) {
        return LeaveGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let leaving: Vec<LeavingMember> = if version <= 2 {
        vec![LeavingMember { member_id: request.member_id.to_string(), instance_id: None, reason: None }]
    } else {
        request
            .members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: opt_string(m.group_instance_id),
                reason: opt_string(m.reason),
            })
            .collect()
    };
    let outcome = ctx.broker.leave_group(&group, leaving.clone()).await;
    let outcomes = match outcome {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::debug!(group, error = %e, "leave group refused");
            return LeaveGroupResponse::default().with_error_code(code(&e));
        }
    };
    let member_code = |i: usize| match outcomes.get(i) {
        Some(Ok(())) => 0,
        Some(Err(e)) => code(e),
        // The engine answers one outcome per member; a missing one is a bug
        // reported as such, never a panic.
        None => ResponseError::UnknownServerError.code(),
    };
    if version <= 2 {
        return LeaveGroupResponse::default().with_error_code(member_code(0));
    }
    let members = leaving
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            MemberResponse::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.instance_id.map(str_bytes))
                .with_error_code(member_code(i))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
