//! Produce: appends each partition's record batches through the engine,
//! which validates them (CRC, sizes, each record, timestamps, idempotent
//! sequences), assigns offsets and, under flush=always, completes only once
//! they are fsynced. Batches are stored as sent (compressed ones too), but
//! for the max timestamp the leader may stamp in their headers. Each topic
//! needs WRITE; a partition of one without it gets
//! TOPIC_AUTHORIZATION_FAILED and nothing of it is written. A user over
//! its produce quota is answered after `throttle_time_ms` (`quotas`).

use super::{code, str_bytes, Context, Reply};
use crate::quotas::QuotaKind;
use crate::security::authorize::Access;
use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::{Acks, BrokerError, ErrorCode, ProduceOutcome};
use ringtail_engine::group::OFFSETS_TOPIC;
use ringtail_engine::join::join_in_order;
use ringtail_engine::security::acl::Operation;
use std::time::Duration;

pub async fn handle(ctx: &Context, access: Access<'_>, request: ProduceRequest, version: i16) -> Reply {
    let acks = Acks::from_kafka(request.acks);
    let transactional = request.transactional_id.is_some();
    // Every partition of the request is appended concurrently; the futures
    // are created (and first polled) in request order.
    let mut futures = Vec::new();
    let mut shape = Vec::with_capacity(request.topic_data.len());
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref())
        .map(|r| r.len())
        .sum();
    for topic in request.topic_data {
        let name = topic.name.0.as_str().to_string();
        let allowed = access.topic(Operation::Write, &name);
        shape.push((topic.name, topic.partition_data.len()));
        for p in topic.partition_data {
            let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
            futures.push(produce_partition(
                ctx,
                name.clone(),
                p.index,
                allowed.then_some(p.records),
                acks,
                transactional,
                timeout,
            ));
        }
    }
    let mut results = join_in_order(futures).await.into_iter();
    let throttle = ctx.quotas.throttle(&ctx.broker, access.principal(), QuotaKind::Produce, bytes as u64);
    hold_back(ctx, throttle).await;
    let responses: Vec<TopicProduceResponse> = shape
        .into_iter()
        .map(|(name, count)| {
            let partitions = results.by_ref().take(count).map(|r| to_response(r, version)).collect();
            TopicProduceResponse::default().with_name(name).with_partition_responses(partitions)
        })
        .collect();
    if acks == Some(Acks::None) {
        // The client reads nothing back; Kafka closes the connection on a
        // failure so that the producer notices (and refreshes metadata).
        let failed = responses.iter().flat_map(|t| &t.partition_responses).find(|p| p.error_code != 0);
        return match failed {
            Some(p) => Reply::Close(format!("acks=0 produce failed with error {}", p.error_code)),
            None => Reply::Nothing,
        };
    }
    let response =
        ProduceResponse::default().with_responses(responses).with_throttle_time_ms(throttle_ms(throttle));
    Reply::Respond(ResponseKind::Produce(response))
}

/// Waits out a quota's throttle (ended early by shutdown).
pub async fn hold_back(ctx: &Context, throttle: Duration) {
    if throttle.is_zero() {
        return;
    }
    ctx.metrics.quota_throttled_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut shutdown = ctx.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(throttle) => {}
        _ = crate::shutdown::signalled(&mut shutdown) => {}
    }
}

/// A throttle as responses carry it.
pub fn throttle_ms(throttle: Duration) -> i32 {
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}

/// One partition's outcome: (index, where it landed, or the error).
type Outcome = (i32, Result<ProduceOutcome, (i16, String)>);

async fn produce_partition(
    ctx: &Context,
    topic: String,
    index: i32,
    // `None`: the caller may not write to the topic.
    records: Option<Option<Bytes>>,
    acks: Option<Acks>,
    transactional: bool,
    timeout: Duration,
) -> Outcome {
    let Some(records) = records else {
        let message = format!("Not authorized to write to topic {topic}");
        return (index, Err((ResponseError::TopicAuthorizationFailed.code(), message)));
    };
    let Some(acks) = acks else {
        return (index, Err((ResponseError::InvalidRequiredAcks.code(), "acks must be 0, 1 or -1".into())));
    };
    if topic == OFFSETS_TOPIC {
        // Kafka refuses client writes to its internal topics.
        let message = format!("{OFFSETS_TOPIC} is internal: only the group coordinator writes to it");
        return (index, Err((ResponseError::InvalidTopicException.code(), message)));
    }
    if transactional {
        let message = "transactions are not supported".to_string();
        return (index, Err((ResponseError::InvalidRequest.code(), message)));
    }
    let bytes = records.as_ref().map_or(0, |r| r.len() as u64);
    if let Err(message) = ctx.disk_guard.admit(bytes) {
        return (index, Err((ResponseError::KafkaStorageError.code(), message)));
    }
    let result = async {
        let partition = ctx.broker.leader_partition(&topic, index)?;
        // No record batches at all is refused by the engine (INVALID_RECORD).
        let outcome = partition.produce(records.unwrap_or_default(), acks).await?;
        if acks == Acks::All {
            // Only the wait is bounded by the request's timeout: the append
            // above is never cancelled (see the module's note).
            let replicated =
                tokio::time::timeout(timeout, partition.wait_replicated(outcome.last_offset)).await;
            replicated.map_err(|_| {
                BrokerError::new(
                    ErrorCode::RequestTimedOut,
                    format!("written, but not replicated to the ISR within {timeout:?}"),
                )
            })??;
        }
        Ok(outcome)
    }
    .await;
    match result {
        Ok(outcome) => (index, Ok(outcome)),
        Err(e) => {
            log_failure(&topic, index, &e);
            (index, Err((code(&e), e.message)))
        }
    }
}

fn log_failure(topic: &str, index: i32, e: &BrokerError) {
    match e.code {
        ErrorCode::KafkaStorageError => {
            tracing::error!(topic, partition = index, error = %e, "produce failed")
        }
        _ => tracing::debug!(topic, partition = index, error = %e, "produce refused"),
    }
}

fn to_response((index, result): Outcome, version: i16) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match result {
        Ok(outcome) => {
            let response = response
                .with_base_offset(outcome.base_offset as i64)
                .with_log_append_time_ms(outcome.log_append_time);
            if version >= 5 {
                response.with_log_start_offset(outcome.log_start_offset as i64)
            } else {
                response
            }
        }
        Err((error_code, message)) => {
            let response = response.with_error_code(error_code).with_base_offset(-1);
            if version >= 8 {
                response.with_error_message(Some(str_bytes(message)))
            } else {
                response
            }
        }
    }
}
