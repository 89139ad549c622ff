//! Heartbeat: a member is alive, and learns whether a rebalance is under
//! way (REBALANCE_IN_PROGRESS tells it to rejoin). Needs READ on the group.

use super::{code, opt_string, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub async fn handle(ctx: &Context, access: Access<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    if !access.group(Operation::Read, request.group_id.0.as_str()) {
        return HeartbeatResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let heartbeat = ringtail_engine::group::HeartbeatRequest {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: opt_string(request.group_instance_id),
    };
    let group = heartbeat.group_id.clone();
    match ctx.broker.heartbeat(heartbeat).await {
        Ok(()) => HeartbeatResponse::default(),
        Err(e) => {
            tracing::trace!(group, error = %e, "heartbeat refused");
            HeartbeatResponse::default().with_error_code(code(&e))
        }
    }
}
