//! InitProducerId: a producer id for an idempotent producer. Transactions
//! are not implemented, so a transactional id is refused.

use super::{code, Context};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

pub async fn handle(ctx: &Context, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        // Refused rather than answered with a plain producer id: a
        // transactional producer would believe its writes atomic.
        return response.with_error_code(ResponseError::InvalidRequest.code());
    }
    match ctx.broker.init_producer_id().await {
        Ok((id, epoch)) => response.with_producer_id(ProducerId(id)).with_producer_epoch(epoch),
        Err(e) => {
            tracing::warn!(error = %e, "allocating a producer id failed");
            response.with_error_code(code(&e))
        }
    }
}
