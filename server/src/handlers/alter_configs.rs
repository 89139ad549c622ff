//! AlterConfigs (the legacy API): a resource's overrides become exactly
//! those given. Also what it shares with IncrementalAlterConfigs
//! (`incremental_alter_configs`): Kafka's checks of a request's shape
//! (its ConfigAdminManager's preprocessing: each resource once, each key
//! once per resource, no null value but for a DELETE), the resource types,
//! and the topic change, which the engine validates as CreateTopics does.
//!
//! Only topics have configs that change at run time. A broker resource
//! (this broker's id, or "" for every broker) may be named with no entries;
//! any entry is refused with INVALID_REQUEST, which is what Kafka answers
//! for a broker config that is not dynamic: Ringtail's broker settings are
//! flags and the config file, read at start.
//!
//! A topic needs ALTER_CONFIGS on it, the broker ALTER_CONFIGS on the
//! cluster (TOPIC_ / CLUSTER_AUTHORIZATION_FAILED otherwise).

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::topic_configs::{ConfigChange, ConfigOp};
use ringtail_engine::security::acl::Operation;
use std::collections::BTreeSet;

/// Kafka's resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// IncrementalAlterConfigs' operations; AlterConfigs' entries are SETs.
pub(super) const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One config entry of either request.
pub(super) struct Entry {
    pub name: String,
    pub operation: i8,
    pub value: Option<String>,
}

/// One resource of either request.
pub(super) struct Resource {
    pub resource_type: i8,
    pub name: String,
    pub entries: Vec<Entry>,
}

/// A resource's outcome: done, or a Kafka error code and why.
pub(super) type Outcome = Result<(), (i16, String)>;

pub async fn handle(ctx: &Context, access: Access<'_>, request: AlterConfigsRequest) -> AlterConfigsResponse {
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
                    operation: OP_SET,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect();
    let outcomes = alter(ctx, access, &resources, Kind::Replace, request.validate_only).await;
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
    AlterConfigsResponse::default().with_responses(responses)
}

/// Which API the resources came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// AlterConfigs: the entries replace every override.
    Replace,
    /// IncrementalAlterConfigs: each entry is an operation on one key.
    Incremental,
}

/// An outcome as a response carries it: the code, and a message on error.
pub(super) fn split(outcome: Outcome) -> (i16, Option<String>) {
    match outcome {
        Ok(()) => (0, None),
        Err((error_code, message)) => (error_code, Some(message)),
    }
}

/// Alters each resource in order; one outcome per resource.
pub(super) async fn alter(
    ctx: &Context,
    access: Access<'_>,
    resources: &[Resource],
    kind: Kind,
    validate_only: bool,
) -> Vec<Outcome> {
    // Every copy of a resource named twice is refused, as Kafka does:
    // which one to honour would be a guess.
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<(i8, &str)> = resources
        .iter()
        .map(|r| (r.resource_type, r.name.as_str()))
        .filter(|key| !seen.insert(*key))
        .collect();
    let mut outcomes = Vec::with_capacity(resources.len());
    for resource in resources {
        let outcome = if twice.contains(&(resource.resource_type, resource.name.as_str())) {
            Err(invalid_request("Each resource must appear at most once."))
        } else if let Err(denied) = authorized(access, resource) {
            Err(denied)
        } else {
            alter_one(ctx, resource, kind, validate_only).await
        };
        if let Err((error_code, message)) = &outcome {
            tracing::debug!(resource = resource.name, error_code, message, "config change refused");
        }
        outcomes.push(outcome);
    }
    outcomes
}

async fn alter_one(ctx: &Context, resource: &Resource, kind: Kind, validate_only: bool) -> Outcome {
    check_shape(resource, kind)?;
    match resource.resource_type {
        RESOURCE_TOPIC => {
            let change = topic_change(resource, kind)?;
            let altered = ctx.broker.alter_topic_configs(&resource.name, &change, validate_only).await;
            altered.map(drop).map_err(|e| (code(&e), e.message))
        }
        RESOURCE_BROKER => broker_change(ctx, resource),
        other => Err(invalid_request(&format!(
            "resource type {other} is not supported: Ringtail changes the configs of topics (type {RESOURCE_TOPIC})"
        ))),
    }
}

/// Whether the caller may change the resource's configs.
fn authorized(access: Access<'_>, resource: &Resource) -> Outcome {
    match resource.resource_type {
        RESOURCE_TOPIC if !access.topic(Operation::AlterConfigs, &resource.name) => Err((
            ResponseError::TopicAuthorizationFailed.code(),
            format!("Not authorized to alter the configs of topic {}", resource.name),
        )),
        RESOURCE_BROKER if !access.cluster(Operation::AlterConfigs) => Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            "Not authorized to alter broker configs".to_string(),
        )),
        _ => Ok(()),
    }
}

/// Kafka's checks before a change is looked at: each key once, and a
/// value for every operation but DELETE.
fn check_shape(resource: &Resource, kind: Kind) -> Outcome {
    let mut keys = BTreeSet::new();
    if !resource.entries.iter().all(|e| keys.insert(e.name.as_str())) {
        return Err(invalid_request("Error due to duplicate config keys"));
    }
    let nulls: Vec<&str> = resource
        .entries
        .iter()
        .filter(|e| e.value.is_none() && (kind == Kind::Replace || e.operation != OP_DELETE))
        .map(|e| e.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(invalid_request(&format!("Null value not supported for : {}", nulls.join(", "))));
    }
    Ok(())
}

fn topic_change(resource: &Resource, kind: Kind) -> Result<ConfigChange, (i16, String)> {
    let value = |e: &Entry| e.value.clone().unwrap_or_default();
    if kind == Kind::Replace {
        return Ok(ConfigChange::Replace(
            resource.entries.iter().map(|e| (e.name.clone(), value(e))).collect(),
        ));
    }
    let ops = resource
        .entries
        .iter()
        .map(|e| {
            let key = e.name.clone();
            Ok(match e.operation {
                OP_SET => ConfigOp::Set { key, value: value(e) },
                OP_DELETE => ConfigOp::Delete { key },
                OP_APPEND => ConfigOp::Append { key, value: value(e) },
                OP_SUBTRACT => ConfigOp::Subtract { key, value: value(e) },
                other => {
                    return Err(invalid_request(&format!("Unknown operation type {other} for {}", e.name)))
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ConfigChange::Incremental(ops))
}

/// A broker resource: named as Kafka names it, and with nothing to change.
fn broker_change(ctx: &Context, resource: &Resource) -> Outcome {
    let me = ctx.broker.node_id();
    if !resource.name.is_empty() {
        let id: i32 = resource.name.parse().map_err(|_| {
            invalid_request(&format!("Node id must be an integer, but it is: {}", resource.name))
        })?;
        if id != me {
            let msg = format!("Unexpected broker id, expected {me}, but received {}", resource.name);
            return Err(invalid_request(&msg));
        }
    }
    if resource.entries.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = resource.entries.iter().map(|e| e.name.as_str()).collect();
    Err(invalid_request(&format!(
        "broker configs cannot change while the broker runs ({}): set them as `ringtail serve` flags or \
         in its config file, and restart it",
        keys.join(", ")
    )))
}

fn invalid_request(message: &str) -> (i16, String) {
    (ResponseError::InvalidRequest.code(), message.to_string())
}
