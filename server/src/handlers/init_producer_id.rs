//! InitProducerId: a producer id for an idempotent producer. Transactions
//! are not implemented, so a transactional id is refused. Needs
//! IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).

use super::{code, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::{Operation, ResourceType, CLUSTER_NAME};

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        // Refused rather than answered with a plain producer id: a
        // transactional producer would believe its writes atomic.
        return response.with_error_code(ResponseError::InvalidRequest.code());
    }
    let allowed = access.quietly(Operation::IdempotentWrite, ResourceType::Cluster, CLUSTER_NAME)
        || access.any(Operation::Write, ResourceType::Topic);
    if !allowed {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    match ctx.broker.init_producer_id().await {
        Ok((id, epoch)) => response.with_producer_id(ProducerId(id)).with_producer_epoch(epoch),
        Err(e) => {
            tracing::warn!(error = %e, "allocating a producer id failed");
            response.with_error_code(code(&e))
        }
    }
}
