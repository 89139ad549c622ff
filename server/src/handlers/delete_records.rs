//! DeleteRecords: moves partitions' log starts forward (-1: to the high
//! watermark). Each partition is answered once its low watermark, over the
//! leader and every follower that may be in the ISR, has reached the
//! offset (see the engine's `broker::delete_records`), or with
//! REQUEST_TIMED_OUT after the request's timeout; the leader's own records
//! are gone either way. Needs DELETE on each topic.

use super::{code, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::delete_records_request::DeleteRecordsPartition;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::join::join_in_order;
use ringtail_engine::security::acl::Operation;
use std::time::Duration;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let mut futures = Vec::new();
    let mut shape = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        shape.push((topic.name.clone(), topic.partitions.len()));
        let allowed = access.topic(Operation::Delete, topic.name.0.as_str());
        for p in &topic.partitions {
            futures.push(delete(ctx, topic.name.0.as_str(), p, timeout, allowed));
        }
    }
    let mut results = join_in_order(futures).await.into_iter();
    let topics = shape
        .into_iter()
        .map(|(name, count)| {
            DeleteRecordsTopicResult::default()
                .with_name(name)
                .with_partitions(results.by_ref().take(count).collect())
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

async fn delete(
    ctx: &Context,
    topic: &str,
    p: &DeleteRecordsPartition,
    timeout: Duration,
    allowed: bool,
) -> DeleteRecordsPartitionResult {
    let result = DeleteRecordsPartitionResult::default()
        .with_partition_index(p.partition_index)
        .with_low_watermark(-1);
    if !allowed {
        return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
    }
    let (partition, offset) = match ctx.broker.delete_records(topic, p.partition_index, p.offset).await {
        Ok(moved) => moved,
        Err(e) => {
            tracing::debug!(topic, partition = p.partition_index, offset = p.offset, error = %e, "delete records refused");
            return result.with_error_code(code(&e));
        }
    };
    match tokio::time::timeout(timeout, partition.wait_low_watermark(offset)).await {
        Ok(Ok(low)) => result.with_low_watermark(low as i64),
        Ok(Err(e)) => result.with_error_code(code(&e)),
        Err(_) => {
            tracing::info!(
                topic,
                partition = p.partition_index,
                offset,
                "records deleted on the leader, but not yet on every in-sync follower"
            );
            result.with_error_code(ResponseError::RequestTimedOut.code())
        }
    }
}
