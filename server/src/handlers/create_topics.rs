//! CreateTopics: partitions and replication factor (-1: the broker's
//! defaults), topic configs, validate_only. The engine validates names,
//! counts and configs; manual replica assignments are refused, since
//! placement belongs to the controller. Needs CREATE on the cluster or the
//! topic; the configs returned (v5+) need DESCRIBE_CONFIGS.

use super::{code, str_bytes, topic_uuid, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::TopicState;
use ringtail_engine::security::acl::{Operation, ResourceType};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `config_source` for a topic override and a default.
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    // A name given twice is refused for both, as Kafka does: which of the
    // two to honour would be a guess.
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<String> =
        request.topics.iter().map(|t| t.name.0.to_string()).filter(|n| !seen.insert(n.clone())).collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = if duplicates.contains(&name) {
            Err((ResponseError::InvalidRequest.code(), format!("topic {name} is named more than once")))
        } else if !access.create_topic(&name) {
            let message = format!("Not authorized to create topic {name}");
            Err((ResponseError::TopicAuthorizationFailed.code(), message))
        } else {
            create(ctx, topic, request.validate_only).await
        };
        let configs_visible = access.quietly(Operation::DescribeConfigs, ResourceType::Topic, &name);
        results.push(to_result(ctx, &name, result, version, configs_visible));
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create(
    ctx: &Context,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<TopicState, (i16, String)> {
    if !topic.assignments.is_empty() {
        let message = "manual replica assignment is not supported".to_string();
        return Err((ResponseError::InvalidReplicaAssignment.code(), message));
    }
    let partitions = match topic.num_partitions {
        -1 => None,
        n => Some(u32::try_from(n).map_err(|_| {
            (
                ResponseError::InvalidPartitions.code(),
                format!("number of partitions must be positive, got {n}"),
            )
        })?),
    };
    let replication_factor = match topic.replication_factor {
        -1 => None,
        n => Some(n),
    };
    // A null value asks for the default: leaving the key out does that.
    let configs: BTreeMap<String, String> = topic
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    let request = CreateTopic { name: topic.name.0.to_string(), partitions, replication_factor, configs };
    ctx.broker.create_topic(request, validate_only).await.map_err(|e| {
        tracing::debug!(error = %e, "create topic refused");
        (code(&e), e.message)
    })
}

fn to_result(
    ctx: &Context,
    name: &str,
    result: Result<TopicState, (i16, String)>,
    version: i16,
    configs_visible: bool,
) -> CreatableTopicResult {
    let response = CreatableTopicResult::default().with_name(super::topic_name(name));
    match result {
        Ok(topic) => {
            let mut response = response
                .with_num_partitions(topic.partitions.len() as i32)
                .with_replication_factor(topic.partitions.first().map_or(0, |p| p.replicas.len() as i16));
            if version >= 5 && configs_visible {
                response.configs = Some(configs(ctx, name, &topic));
            } else if version >= 5 {
                response.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
            }
            if version >= 7 {
                response.topic_id = topic_uuid(&topic);
            }
            response
        }
        Err((error_code, message)) => response
            .with_error_code(error_code)
            .with_error_message(Some(str_bytes(message)))
            .with_num_partitions(-1)
            .with_replication_factor(-1),
    }
}

/// The topic's effective configs, as v5+ returns them.
fn configs(ctx: &Context, name: &str, topic: &TopicState) -> Vec<CreatableTopicConfigs> {
    // Under validate_only the topic does not exist; report its overrides.
    let entries = match ctx.broker.describe_topic_configs(name) {
        Ok(entries) => entries.into_iter().map(|e| (e.name, e.value, e.is_default)).collect(),
        Err(_) => topic.configs.iter().map(|(k, v)| (k.clone(), v.clone(), false)).collect::<Vec<_>>(),
    };
    entries
        .into_iter()
        .map(|(key, value, is_default)| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(key))
                .with_value(Some(str_bytes(value)))
                .with_config_source(if is_default { SOURCE_DEFAULT_CONFIG } else { SOURCE_TOPIC_CONFIG })
        })
        .collect()
}
