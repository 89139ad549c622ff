//! JoinGroup: a member asks to be part of the group's next generation; the
//! answer may wait (parked in the engine) until the rebalance completes,
//! up to the member's rebalance timeout. v4+ first joins without a member
//! id are answered MEMBER_ID_REQUIRED with a fresh id (KIP-394); v5+ carry
//! static membership; v7+ name the protocol type in the answer. Needs
//! READ on the group.

use super::{opt_string, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use ringtail_engine::error::ErrorCode;
use ringtail_engine::group::{JoinRequest, JoinResponse};
use ringtail_engine::security::acl::Operation;

/// `client_id`: the request header's; `client_host`: the connection's peer.
pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: JoinGroupRequest,
    version: i16,
    client_id: Option<String>,
    client_host: String,
) -> JoinGroupResponse {
    if !access.group(Operation::Read, request.group_id.0.as_str()) {
        let member_id = request.member_id.to_string();
        return to_response(JoinResponse::error(ErrorCode::GroupAuthorizationFailed, member_id), version);
    }
    let join = to_join(request, version, client_id, client_host);
    let group = join.group_id.clone();
    let answer = ctx.broker.join_group(join).await;
    if !answer.error.is_ok() {
        tracing::debug!(group, error = %answer.error, "join group refused");
    }
    to_response(answer, version)
}

pub fn to_join(
    request: JoinGroupRequest,
    version: i16,
    client_id: Option<String>,
    client_host: String,
) -> JoinRequest {
    // v0 has one timeout for both, as Kafka reads it.
    let rebalance_timeout_ms =
        if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms };
    JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: opt_string(request.group_instance_id),
        client_id: client_id.unwrap_or_default(),
        client_host,
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        // Copied: kept for the group's life, a slice would pin the frame.
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), bytes::Bytes::copy_from_slice(&p.metadata)))
            .collect(),
        require_known_member_id: version >= 4,
        reason: opt_string(request.reason),
    }
}

pub fn to_response(answer: JoinResponse, version: i16) -> JoinGroupResponse {
    let members = answer
        .members
        .into_iter()
        .map(|m| {
            let member = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_metadata(m.metadata);
            if version >= 5 {
                member.with_group_instance_id(m.instance_id.map(str_bytes))
            } else {
                member
            }
        })
        .collect();
    let mut response = JoinGroupResponse::default()
        .with_error_code(answer.error.code())
        .with_generation_id(answer.generation)
        .with_leader(str_bytes(answer.leader))
        .with_member_id(str_bytes(answer.member_id))
        .with_members(members);
    if version >= 7 {
        response.protocol_type = answer.protocol_type.map(str_bytes);
        response.protocol_name = answer.protocol_name.map(str_bytes);
    } else {
        // Not nullable before v7: an error answers with an empty name.
        response.protocol_name = Some(str_bytes(answer.protocol_name.unwrap_or_default()));
    }
    response
}
