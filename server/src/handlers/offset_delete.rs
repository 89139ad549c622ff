//! OffsetDelete (KIP-496): deletes a group's committed offsets for some
//! partitions, as `kafka-consumer-groups.sh --delete-offsets` does. A
//! group with members keeps the offsets of topics it subscribes to
//! (GROUP_SUBSCRIBED_TO_TOPIC per partition); an unknown group is
//! GROUP_ID_NOT_FOUND for the whole request. Partitions without a
//! committed offset succeed, as in Kafka. Needs DELETE on the group
//! (GROUP_AUTHORIZATION_FAILED for the request) and READ on each topic
//! (TOPIC_AUTHORIZATION_FAILED for its partitions, which keep their offsets).

use super::{code, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub async fn handle(ctx: &Context, access: Access<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    if !access.group(Operation::Delete, &group_id) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let readable: Vec<bool> =
        request.topics.iter().map(|t| access.topic(Operation::Read, t.name.0.as_str())).collect();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .zip(&readable)
        .filter(|(_, readable)| **readable)
        .flat_map(|(t, _)| t.partitions.iter().map(|p| (t.name.0.to_string(), p.partition_index)))
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
        .zip(readable)
        .map(|(t, readable)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    // Only readable topics' partitions were sent, in order.
                    let error_code = match readable.then(|| outcomes.next()) {
                        None => ResponseError::TopicAuthorizationFailed.code(),
                        Some(Some(Ok(()))) => 0,
                        Some(Some(Err(e))) => code(&e),
                        Some(None) => ResponseError::UnknownServerError.code(),
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
