//! DescribeConfigs: a topic's configs with their effective values. The
//! broker resource answers with an empty list: broker settings are not
//! runtime configs here. Needs DESCRIBE_CONFIGS on the topic, or on the
//! cluster for the broker.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

/// Kafka's resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's `config_source` values.
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_DEFAULT_CONFIG: i8 = 5;
/// Kafka's `config_type` values (v3+).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

pub fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request.resources.iter().map(|r| describe(ctx, access, r, version)).collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(
    ctx: &Context,
    access: Access<'_>,
    resource: &DescribeConfigsResource,
    version: i16,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let name = resource.resource_name.as_str();
    let denied = |error: ResponseError| result.clone().with_error_code(error.code());
    match resource.resource_type {
        RESOURCE_TOPIC if !access.topic(Operation::DescribeConfigs, name) => {
            denied(ResponseError::TopicAuthorizationFailed)
        }
        RESOURCE_BROKER if !access.cluster(Operation::DescribeConfigs) => {
            denied(ResponseError::ClusterAuthorizationFailed)
        }
        RESOURCE_TOPIC => match ctx.broker.describe_topic_configs(name) {
            Ok(entries) => {
                let wanted = |key: &str| {
                    resource
                        .configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
                };
                let configs = entries
                    .into_iter()
                    .filter(|e| wanted(&e.name))
                    .map(|e| {
                        let source = if e.is_default { SOURCE_DEFAULT_CONFIG } else { SOURCE_TOPIC_CONFIG };
                        DescribeConfigsResourceResult::default()
                            .with_config_type(if version >= 3 { config_type(&e.name) } else { 0 })
                            .with_name(str_bytes(e.name))
                            .with_value(Some(str_bytes(e.value)))
                            .with_config_source(source)
                    })
                    .collect();
                result.with_configs(configs)
            }
            Err(e) => result.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message))),
        },
        // This node's id, or "" for "the broker answering".
        RESOURCE_BROKER if name.is_empty() || name == ctx.broker.node_id().to_string() => result,
        RESOURCE_BROKER => result
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(format!("this is broker {}", ctx.broker.node_id())))),
        other => result
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(format!("resource type {other} is not supported")))),
    }
}

/// The type Kafka declares for each topic config.
fn config_type(name: &str) -> i8 {
    match name {
        "retention.ms"
        | "retention.bytes"
        | "segment.ms"
        | "min.compaction.lag.ms"
        | "max.compaction.lag.ms"
        | "delete.retention.ms" => TYPE_LONG,
        "min.cleanable.dirty.ratio" => TYPE_DOUBLE,
        "cleanup.policy" => TYPE_LIST,
        "message.timestamp.type" => TYPE_STRING,
        _ => TYPE_INT,
    }
}
