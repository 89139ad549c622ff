//! OffsetCommit: a group's consumed positions, answered once durable in
//! `__consumer_offsets`. Partitions of topics this broker does not know
//! are refused here (UNKNOWN_TOPIC_OR_PARTITION), as Kafka's API layer
//! does; the rest go to the coordinator, which checks membership and
//! generation (ILLEGAL_GENERATION for a stale one). Needs READ on the
//! group (else every partition is GROUP_AUTHORIZATION_FAILED) and on each
//! topic (TOPIC_AUTHORIZATION_FAILED).

use super::{code, opt_string, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::ResponseError;
use ringtail_engine::group::{CommitOffset, CommitRequest};
use ringtail_engine::security::acl::Operation;

/// A partition of the request: its index, and the error it was refused
/// with here, if any (`None`: sent to the coordinator).
type Slot = (i32, Option<i16>);

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group_allowed = access.group(Operation::Read, request.group_id.0.as_str());
    let known = |topic: &str, partition: i32| {
        let count = ctx.broker.partition_count(topic);
        count.is_some_and(|count| usize::try_from(partition).is_ok_and(|p| p < count))
    };
    // Per partition of the request, in order; those sent to the
    // coordinator are answered from its outcomes, in order.
    let mut shape: Vec<(TopicName, Vec<Slot>)> = Vec::new();
    let mut offsets = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let refused = if !group_allowed {
            Some(ResponseError::GroupAuthorizationFailed.code())
        } else if !access.topic(Operation::Read, &name) {
            Some(ResponseError::TopicAuthorizationFailed.code())
        } else {
            None
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            if refused.is_some() {
                partitions.push((p.partition_index, refused));
                continue;
            }
            if !known(&name, p.partition_index) {
                partitions.push((p.partition_index, Some(ResponseError::UnknownTopicOrPartition.code())));
                continue;
            }
            partitions.push((p.partition_index, None));
            offsets.push(CommitOffset {
                topic: name.clone(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: opt_string(p.committed_metadata),
            });
        }
        shape.push((topic.name, partitions));
    }
    let group = request.group_id.0.to_string();
    let outcomes: Result<Vec<i16>, i16> = if offsets.is_empty() {
        Ok(Vec::new())
    } else {
        let commit = CommitRequest {
            group_id: group.clone(),
            generation: request.generation_id_or_member_epoch,
            member_id: request.member_id.to_string(),
            instance_id: opt_string(request.group_instance_id),
            offsets,
        };
        match ctx.broker.commit_offsets(commit).await {
            Ok(outcomes) => Ok(outcomes.iter().map(|r| r.as_ref().map_or_else(code, |()| 0)).collect()),
            Err(e) => {
                tracing::debug!(group, error = %e, "offset commit refused");
                Err(code(&e))
            }
        }
    };
    let mut next = 0;
    let mut from_coordinator = || {
        let answer = match &outcomes {
            Err(group_error) => *group_error,
            // One outcome per offset sent; a missing one is reported as a
            // server error, never a panic.
            Ok(codes) => codes.get(next).copied().unwrap_or(ResponseError::UnknownServerError.code()),
        };
        next += 1;
        answer
    };
    let topics = shape
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, refused)| {
                    let error_code = refused.unwrap_or_else(&mut from_coordinator);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(error_code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
