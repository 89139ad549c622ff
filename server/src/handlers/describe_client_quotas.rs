//! DescribeClientQuotas: users' quotas (`kafka-configs.sh --describe
//! --entity-type users`, `ringtail quota list`). A filter component on
//! `user` asks for one user (match type 0), the default (1), or every
//! named user (2); no component asks for everything. Needs
//! DESCRIBE_CONFIGS on the cluster.

use super::alter_client_quotas::ENTITY_USER;
use super::{str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::quotas::UserFilter;
use ringtail_engine::security::acl::Operation;

/// Kafka's match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

fn refused(error: ResponseError, message: String) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(message)))
        .with_entries(None)
}

pub fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    if !access.cluster(Operation::DescribeConfigs) {
        return refused(
            ResponseError::ClusterAuthorizationFailed,
            "Not authorized to describe quotas".into(),
        );
    }
    let (filter, named_only) = match request.components.as_slice() {
        [] => (UserFilter::Any, false),
        [c] if c.entity_type.as_str() == ENTITY_USER => match (c.match_type, &c._match) {
            (MATCH_EXACT, Some(name)) => (UserFilter::Named(name.to_string()), false),
            (MATCH_DEFAULT, _) => (UserFilter::Default, false),
            (MATCH_SPECIFIED, _) => (UserFilter::Any, true),
            (other, _) => {
                return refused(ResponseError::InvalidRequest, format!("unsupported match type {other}"));
            }
        },
        _ => return refused(ResponseError::InvalidRequest, "quotas are kept per user only".into()),
    };
    let entries = ctx
        .broker
        .describe_client_quotas(&filter)
        .into_iter()
        .filter(|(entity, _)| !named_only || entity.user.is_some())
        .map(|(entity, values)| {
            let entity = EntityData::default()
                .with_entity_type(str_bytes(ENTITY_USER))
                .with_entity_name(entity.user.map(str_bytes));
            let values = values
                .into_iter()
                .map(|(key, value)| ValueData::default().with_key(str_bytes(key)).with_value(value as f64))
                .collect();
            EntryData::default().with_entity(vec![entity]).with_values(values)
        })
        .collect();
    DescribeClientQuotasResponse::default().with_error_message(None).with_entries(Some(entries))
}
