//! Metadata: the brokers, the controller, and each topic's partitions with
//! their leaders, epochs, replicas and ISR. Topics a client names that do
//! not exist are created here when the request and the broker allow it, as
//! Kafka's `auto.create.topics.enable` does. Under an authorizer, a topic
//! the caller may not describe is left out of a list of every topic, and
//! named is answered TOPIC_AUTHORIZATION_FAILED; creating one needs CREATE.

use super::{code, str_bytes, topic_by_id, topic_name, topic_uuid, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::metadata::TopicState;
use ringtail_engine::error::ErrorCode;
use ringtail_engine::group::OFFSETS_TOPIC;
use ringtail_engine::security::acl::{Operation, ResourceType};

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // Before v4 every Metadata request may create topics.
    let may_create = version < 4 || request.allow_auto_topic_creation;
    let topics = match request.topics {
        // v0 has no null: an empty list there means every topic.
        Some(list) if !(version == 0 && list.is_empty()) => {
            let mut out = Vec::with_capacity(list.len());
            for wanted in &list {
                out.push(requested_topic(ctx, access, wanted, may_create, version).await);
            }
            out
        }
        _ => {
            let topics = ctx.broker.topics();
            let visible = topics
                .iter()
                .filter(|(name, _)| access.quietly(Operation::Describe, ResourceType::Topic, name));
            visible.map(|(name, t)| describe(ctx, name, t, version)).collect()
        }
    };
    let brokers = ctx
        .broker
        .brokers()
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host))
                .with_port(b.port)
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(BrokerId(ctx.broker.controller_id()))
        .with_topics(topics);
    if version >= 2 {
        response.cluster_id = Some(str_bytes(ctx.broker.cluster_id()));
    }
    response
}

async fn requested_topic(
    ctx: &Context,
    access: Access<'_>,
    wanted: &MetadataRequestTopic,
    may_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let Some(name) = wanted.name.as_ref().map(|n| n.as_str().to_string()) else {
        // v10+: a topic asked for by id alone.
        return match topic_by_id(ctx, wanted.topic_id) {
            Some((name, _)) if !access.topic(Operation::Describe, &name) => {
                error_topic(None, ResponseError::TopicAuthorizationFailed.code(), version)
                    .with_topic_id(wanted.topic_id)
            }
            Some((name, topic)) => describe(ctx, &name, &topic, version),
            None => error_topic(None, ResponseError::UnknownTopicId.code(), version)
                .with_topic_id(wanted.topic_id),
        };
    };
    if !access.topic(Operation::Describe, &name) {
        return error_topic(Some(name), ResponseError::TopicAuthorizationFailed.code(), version);
    }
    // `__consumer_offsets` is created by FindCoordinator with its own
    // partition count, never as an ordinary topic on first mention.
    let create = may_create && name != OFFSETS_TOPIC && ctx.broker.topic(&name).is_none();
    if create && !access.create_topic(&name) {
        return error_topic(Some(name), ResponseError::TopicAuthorizationFailed.code(), version);
    }
    let exists =
        if create { ctx.broker.ensure_topic(&name).await } else { Ok(ctx.broker.topic(&name).is_some()) };
    match exists {
        Ok(true) => match ctx.broker.topic(&name) {
            Some(topic) => describe(ctx, &name, &topic, version),
            // Deleted between the check and the read.
            None => error_topic(Some(name), ResponseError::UnknownTopicOrPartition.code(), version),
        },
        Ok(false) => error_topic(Some(name), ResponseError::UnknownTopicOrPartition.code(), version),
        Err(e) => {
            tracing::debug!(topic = name, error = %e, "metadata: topic not available");
            error_topic(Some(name), code(&e), version)
        }
    }
}

fn error_topic(name: Option<String>, error_code: i16, version: i16) -> MetadataResponseTopic {
    // The name is nullable only from v12; before, an unnamed topic is "".
    let name = name.or_else(|| (version < 12).then(String::new));
    MetadataResponseTopic::default().with_error_code(error_code).with_name(name.map(topic_name))
}

fn describe(ctx: &Context, name: &str, topic: &TopicState, version: i16) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect());
            if ctx.broker.offline_reason(name, index as i32).is_some() {
                // As Kafka shows a replica whose log directory failed: listed
                // offline, and a partition it led has no leader, so clients
                // wait (and retry metadata) instead of sending it requests.
                let me = ctx.broker.node_id();
                partition.offline_replicas = vec![BrokerId(me)];
                if p.leader == me {
                    partition.leader_id = BrokerId(-1);
                    partition.error_code = ErrorCode::LeaderNotAvailable.code();
                }
            }
            if version >= 7 {
                // The live epoch of a hosted partition; the assignment's
                // otherwise (they agree on a single node).
                let live = ctx.broker.partition(name, index as i32).map(|hosted| hosted.leader_epoch());
                partition.leader_epoch = live.unwrap_or(p.leader_epoch);
            }
            partition
        })
        .collect();
    let mut response = MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_is_internal(name == OFFSETS_TOPIC)
        .with_partitions(partitions);
    if version >= 10 {
        response.topic_id = topic_uuid(topic);
    }
    response
}
