//! IncrementalAlterConfigs: SET and DELETE of single keys, APPEND and
//! SUBTRACT on list configs (`cleanup.policy`); an APPEND or SUBTRACT on
//! any other key is INVALID_CONFIG, as in Kafka. Shares its checks and the
//! topic change with AlterConfigs (`alter_configs`).

use super::alter_configs::{alter, split, Entry, Kind, Resource};
use super::{str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources: Vec<Resource> = request
        .resources
        .iter()
        .map(|r| Resource {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            entries: r
                .configs
                .iter()
                .map(|c| Entry {
                    name: c.name.to_string(),
                    operation: c.config_operation,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect();
    let outcomes = alter(ctx, access, &resources, Kind::Incremental, request.validate_only).await;
    let responses = request
        .resources
        .into_iter()
        .zip(outcomes)
        .map(|(r, outcome)| {
            let (error_code, message) = split(outcome);
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(error_code)
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
