//! FindCoordinator: which broker coordinates a group (the leader of its
//! `__consumer_offsets` partition, which the engine creates on first use).
//! v0-3 ask for one key; v4 batches them. Transaction coordinators
//! (key_type 1) are not implemented. A group needs DESCRIBE on it.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::BrokerEndpoint;
use ringtail_engine::security::acl::Operation;

/// Kafka's key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// One key's answer: the coordinator, or an error code and message.
type Found = Result<BrokerEndpoint, (i16, String)>;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if version >= 4 {
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in request.coordinator_keys {
            let found = find(ctx, access, key.as_str(), request.key_type).await;
            coordinators.push(coordinator(key.to_string(), found));
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let found = find(ctx, access, request.key.as_str(), request.key_type).await;
    let response = FindCoordinatorResponse::default();
    match found {
        Ok(endpoint) => response
            .with_node_id(BrokerId(endpoint.node_id))
            .with_host(str_bytes(endpoint.host))
            .with_port(endpoint.port),
        Err((error_code, message)) => {
            let response = response
                .with_error_code(error_code)
                .with_node_id(BrokerId(-1))
                .with_host(str_bytes(""))
                .with_port(-1);
            if version >= 1 {
                response.with_error_message(Some(str_bytes(message)))
            } else {
                response
            }
        }
    }
}

async fn find(ctx: &Context, access: Access<'_>, key: &str, key_type: i8) -> Found {
    match key_type {
        KEY_TYPE_GROUP if !access.group(Operation::Describe, key) => Err((
            ResponseError::GroupAuthorizationFailed.code(),
            format!("Not authorized to access group {key}"),
        )),
        KEY_TYPE_GROUP => ctx.broker.find_group_coordinator(key).await.map_err(|e| {
            tracing::debug!(group = key, error = %e, "find coordinator refused");
            (code(&e), e.message)
        }),
        KEY_TYPE_TRANSACTION => {
            Err((ResponseError::CoordinatorNotAvailable.code(), "transactions are not supported".to_string()))
        }
        other => Err((ResponseError::InvalidRequest.code(), format!("unknown coordinator key type {other}"))),
    }
}

fn coordinator(key: String, found: Found) -> Coordinator {
    let coordinator = Coordinator::default().with_key(str_bytes(key));
    match found {
        Ok(endpoint) => coordinator
            .with_node_id(BrokerId(endpoint.node_id))
            .with_host(str_bytes(endpoint.host))
            .with_port(endpoint.port),
        Err((error_code, message)) => coordinator
            .with_error_code(error_code)
            .with_error_message(Some(str_bytes(message)))
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1),
    }
}
