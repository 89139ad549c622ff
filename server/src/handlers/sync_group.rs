//! SyncGroup: every member of a new generation asks for its assignment;
//! the leader brings everyone's. Followers' answers wait (in the engine)
//! for the leader's, which is persisted before anyone is answered. Needs
//! READ on the group.

use super::{opt_string, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use ringtail_engine::error::ErrorCode;
use ringtail_engine::group::{SyncRequest, SyncResponse};
use ringtail_engine::security::acl::Operation;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    if !access.group(Operation::Read, request.group_id.0.as_str()) {
        return to_response(SyncResponse::error(ErrorCode::GroupAuthorizationFailed), version);
    }
    let sync = to_sync(request);
    let group = sync.group_id.clone();
    let answer = ctx.broker.sync_group(sync).await;
    if !answer.error.is_ok() {
        tracing::debug!(group, error = %answer.error, "sync group refused");
    }
    to_response(answer, version)
}

pub fn to_sync(request: SyncGroupRequest) -> SyncRequest {
    SyncRequest {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: opt_string(request.group_instance_id),
        protocol_type: opt_string(request.protocol_type),
        protocol_name: opt_string(request.protocol_name),
        assignments: request
            .assignments
            .into_iter()
            // Copied: kept for the generation's life, a slice would pin the frame.
            .map(|a| (a.member_id.to_string(), bytes::Bytes::copy_from_slice(&a.assignment)))
            .collect(),
    }
}

pub fn to_response(answer: SyncResponse, version: i16) -> SyncGroupResponse {
    let mut response =
        SyncGroupResponse::default().with_error_code(answer.error.code()).with_assignment(answer.assignment);
    if version >= 5 {
        response.protocol_type = answer.protocol_type.map(str_bytes);
        response.protocol_name = answer.protocol_name.map(str_bytes);
    }
    response
}
