//! ListOffsets: the offset of a partition at a time, or at its ends
//! (-2 earliest, -1 latest, which is the high watermark), or (v7, -3) of
//! its largest timestamp.
//!
//! Time lookups answer at batch granularity, as the engine does: the offset
//! is that of the first batch holding a record at or after the time.

use super::{check_leader_epoch, code, Context};
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use ringtail_engine::broker::{BrokerError, Partition};
use ringtail_engine::io::Disk;

/// v7's "offset of the record with the largest timestamp".
const MAX_TIMESTAMP: i64 = -3;

pub async fn handle(ctx: &Context, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            partitions.push(list_partition(ctx, name, p, version).await);
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
    let found = if p.timestamp == MAX_TIMESTAMP {
        max_timestamp(&partition).await
    } else {
        partition.list_offset(p.timestamp).await
    };
    match found {
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

/// The first batch holding the partition's largest timestamp, as
/// `(offset, timestamp)`; `(-1, -1)` when it has no records. The engine
/// only answers "first batch with a timestamp at or after T" (with that
/// batch's largest timestamp), so the largest T with an answer is searched
/// for: each answer is a lower bound, halving the rest, at most 64 lookups.
async fn max_timestamp<D: Disk>(partition: &Partition<D>) -> Result<(i64, i64), BrokerError> {
    let (mut found, mut low) = match partition.list_offset(0).await? {
        (-1, _) => return Ok((-1, -1)),
        (offset, timestamp) => ((offset, timestamp), timestamp),
    };
    // Invariant: a batch has a timestamp >= low; none has one > high.
    let mut high = i64::MAX;
    while low < high {
        let middle = low + (high - low) / 2 + 1;
        match partition.list_offset(middle).await? {
            (-1, _) => high = middle - 1,
            (_, timestamp) => low = timestamp.max(middle),
        }
    }
    if low != found.1 {
        found = partition.list_offset(low).await?;
    }
    Ok(found)
}
