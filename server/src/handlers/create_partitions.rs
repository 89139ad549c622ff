//! CreatePartitions: grow topics to a new partition count, validate_only
//! honoured. The engine checks the count (never fewer, never the same,
//! at most its per-topic maximum) and places the new partitions as it
//! places a new topic's; manual assignments are refused, since placement
//! belongs to the controller here. Needs ALTER on each topic.

use super::{code, str_bytes, topic_name, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;
use std::collections::BTreeSet;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // A name given twice is answered once, with INVALID_REQUEST, as Kafka
    // does: growing it twice from one view would be a guess.
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<String> =
        request.topics.iter().map(|t| t.name.0.to_string()).filter(|n| !seen.insert(n.clone())).collect();
    let mut results: Vec<CreatePartitionsTopicResult> = twice
        .iter()
        .map(|name| result(name, Err((ResponseError::InvalidRequest.code(), "Duplicate topic name.".into()))))
        .collect();
    for topic in request.topics.iter().filter(|t| !twice.contains(t.name.0.as_str())) {
        let name = topic.name.0.as_str();
        let outcome = match access.topic(Operation::Alter, name) {
            true => grow(ctx, topic, request.validate_only).await,
            false => Err((
                ResponseError::TopicAuthorizationFailed.code(),
                format!("Not authorized to add partitions to topic {name}"),
            )),
        };
        results.push(result(topic.name.0.as_str(), outcome));
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn grow(
    ctx: &Context,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
        let message = "manual replica assignment is not supported by Ringtail: send no assignments and \
                       the controller places the new partitions"
            .to_string();
        return Err((ResponseError::InvalidRequest.code(), message));
    }
    let name = topic.name.0.as_str();
    ctx.broker.create_partitions(name, topic.count, validate_only).await.map(drop).map_err(|e| {
        tracing::debug!(topic = name, error = %e, "create partitions refused");
        (code(&e), e.message)
    })
}

fn result(name: &str, outcome: Result<(), (i16, String)>) -> CreatePartitionsTopicResult {
    let result = CreatePartitionsTopicResult::default().with_name(topic_name(name));
    match outcome {
        Ok(()) => result,
        Err((error_code, message)) => {
            result.with_error_code(error_code).with_error_message(Some(str_bytes(message)))
        }
    }
}
