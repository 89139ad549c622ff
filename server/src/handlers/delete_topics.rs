//! DeleteTopics: by name (v1-5) or by name or topic id (v6). Needs DELETE
//! on each topic.

use super::{code, str_bytes, topic_by_id, topic_name, topic_uuid, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::group::OFFSETS_TOPIC;
use ringtail_engine::security::acl::Operation;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id; earlier versions by name only.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id)).collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        responses.push(delete(ctx, access, name, id, version).await);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn delete(
    ctx: &Context,
    access: Access<'_>,
    name: Option<String>,
    id: uuid::Uuid,
    version: i16,
) -> DeletableTopicResult {
    let resolved = match name {
        Some(name) => {
            let id = ctx.broker.topic(&name).map(|t| topic_uuid(&t)).unwrap_or(id);
            Ok((name, id))
        }
        None => topic_by_id(ctx, id).map(|(name, _)| (name, id)).ok_or(ResponseError::UnknownTopicId.code()),
    };
    let (name, id) = match resolved {
        Ok(found) => found,
        Err(error_code) => {
            // Unnamed in the request and unknown here: only v6 gets here,
            // where the name is nullable.
            return DeletableTopicResult::default()
                .with_name(None)
                .with_topic_id(id)
                .with_error_code(error_code);
        }
    };
    let mut result = DeletableTopicResult::default().with_name(Some(topic_name(name.clone())));
    if version >= 6 {
        result.topic_id = id;
    }
    if !access.topic(Operation::Delete, &name) {
        let result = result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
        return if version >= 5 {
            result.with_error_message(Some(str_bytes(format!("Not authorized to delete topic {name}"))))
        } else {
            result
        };
    }
    if name == OFFSETS_TOPIC {
        // Deleting it would lose every group's committed offsets.
        let result = result.with_error_code(ResponseError::InvalidTopicException.code());
        return if version >= 5 {
            result.with_error_message(Some(str_bytes(format!(
                "{OFFSETS_TOPIC} is internal and cannot be deleted"
            ))))
        } else {
            result
        };
    }
    match ctx.broker.delete_topic(&name).await {
        Ok(()) => result,
        Err(e) => {
            tracing::debug!(topic = name, error = %e, "delete topic refused");
            let result = result.with_error_code(code(&e));
            if version >= 5 {
                result.with_error_message(Some(str_bytes(e.message)))
            } else {
                result
            }
        }
    }
}
