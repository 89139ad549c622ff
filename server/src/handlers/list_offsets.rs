//! ListOffsets: the offset of a partition's first record at or after a
//! time, or at its ends (-2 earliest, -1 latest, which is the high
//! watermark), or (v7, -3) of its largest timestamp; the engine's
//! `Partition::list_offset` answers each. Each topic needs DESCRIBE.

use super::{check_leader_epoch, code, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.as_str();
        let allowed = access.topic(Operation::Describe, name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            partitions.push(match allowed {
                true => list_partition(ctx, name, p, version).await,
                false => ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

async fn list_partition(
    ctx: &Context,
    topic: &str,
    p: &ListOffsetsPartition,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let response = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
    let partition = match ctx.broker.leader_partition(topic, p.partition_index) {
        Ok(partition) => partition,
        Err(e) => return response.with_error_code(code(&e)),
    };
    if let Err(error_code) = check_leader_epoch(p.current_leader_epoch, partition.leader_epoch()) {
        return response.with_error_code(error_code);
    }
    match partition.list_offset(p.timestamp).await {
        Ok((offset, timestamp)) => {
            let response = response.with_offset(offset).with_timestamp(timestamp);
            // The epoch of the answer; -1 (the field's absence before v4)
            // when no offset matched.
            if version >= 4 && offset >= 0 {
                response.with_leader_epoch(partition.leader_epoch())
            } else {
                response
            }
        }
        Err(e) => {
            tracing::debug!(topic, partition = p.partition_index, error = %e, "list offsets refused");
            response.with_error_code(code(&e))
        }
    }
}
