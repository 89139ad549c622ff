//! OffsetDelete (KIP-496): deletes a group's committed offsets for some
//! partitions, as `kafka-consumer-groups.sh --delete-offsets` does. A
//! group with members keeps the offsets of topics it subscribes to
//! (GROUP_SUBSCRIBED_TO_TOPIC per partition); an unknown group is
//! GROUP_ID_NOT_FOUND for the whole request. Partitions without a
//! committed offset succeed, as in Kafka.

use super::{code, Context};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

pub async fn handle(ctx: &Context, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    let outcomes = match ctx.broker.delete_offsets(&group_id, &partitions).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::debug!(group = group_id, error = %e, "offset delete refused");
            return OffsetDeleteResponse::default().with_error_code(code(&e));
        }
    };
    let mut outcomes = outcomes.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error_code = match outcomes.next() {
                        Some(Ok(())) => 0,
                        Some(Err(e)) => code(&e),
                        None => kafka_protocol::ResponseError::UnknownServerError.code(),
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code)
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
