//! One file per Kafka API: each turns a decoded request into engine calls
//! and a response. Handlers never close a connection or touch the socket;
//! they return a `Reply` and the connection acts on it.
//!
//! Engine futures started here are never cancelled: the connection runs
//! each request in its own task, which finishes even if the client goes
//! away, because an append dropped mid-write poisons its log.

pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod fetch;
pub mod fetch_session;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod listener_address;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

use crate::limits::Limits;
use crate::metered_disk::ServerBroker;
use crate::metrics::Metrics;
use crate::protocol::request::Request;
use crate::security::authorize::Access;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use ringtail_engine::broker::metadata::TopicState;
use ringtail_engine::broker::BrokerError;
use ringtail_engine::watch;
use std::any::Any;
use std::sync::Arc;

/// What every handler may use.
pub struct Context {
    pub broker: Arc<ServerBroker>,
    /// Refuses produce on a disk nearly full (see `disk_space`).
    pub disk_guard: Arc<crate::disk_space::DiskGuard>,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: fetch_session::FetchSessions,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// Turns true when the server is shutting down: long polls end early.
    pub shutdown: watch::Receiver<bool>,
    /// Sees every request and reply at the handler (the simulator's checks).
    pub observer: Option<Arc<dyn RequestObserver>>,
    /// Decides who may do what (`security::authorize`); `None` allows all.
    pub authorizer: Option<ringtail_engine::security::acl::Authorizer>,
    /// Users' produce and fetch rates against their quotas.
    pub quotas: crate::quotas::QuotaMeters,
}

/// Sees each request as its handler starts and its reply as the handler
/// ends, in the order the broker handles them, whether or not the reply
/// then reaches the client. The simulator judges the group coordinator's
/// answers this way; `ringtail serve` has none.
pub trait RequestObserver: Send + Sync {
    /// Called before the handler runs; what it returns comes back with the reply.
    fn arrived(&self, request: &RequestKind) -> Box<dyn Any + Send>;
    fn answered(&self, arrival: Box<dyn Any + Send>, reply: &Reply);
}

/// A handler's outcome.
// Moved once per request, never stored in bulk: boxing the large variant
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Reply {
    Respond(ResponseKind),
    /// acks=0 produce: the client reads no response.
    Nothing,
    /// Close the connection after the responses before this one: Kafka's
    /// answer to an acks=0 produce that failed, which the client could not
    /// otherwise learn about.
    Close(String),
}

/// Runs the handler of `request`, shown to the observer if there is one.
pub async fn handle(ctx: &Context, request: Request) -> Reply {
    let arrived_on = request.arrived_on.clone();
    let reply = match &ctx.observer {
        None => dispatch(ctx, request).await,
        Some(observer) => {
            let arrival = observer.arrived(&request.body);
            let reply = dispatch(ctx, request).await;
            observer.answered(arrival, &reply);
            reply
        }
    };
    match (reply, arrived_on) {
        // Only a few replies name brokers: the others (Produce and Fetch
        // among them) skip building the address map.
        (Reply::Respond(mut body), Some(route)) if listener_address::names_brokers(&body) => {
            listener_address::rewrite(&mut body, &listener_address::addresses(&ctx.broker, &route));
            Reply::Respond(body)
        }
        (reply, _) => reply,
    }
}

async fn dispatch(ctx: &Context, request: Request) -> Reply {
    let version = request.version();
    let respond = Reply::Respond;
    let Request { header, body, peer, caller, .. } = request;
    let access = Access::new(ctx, &caller);
    // What a request's fields hold are slices of its frame, which keep the
    // frame's share of the request budget (`net::budget`). JoinGroup alone
    // reads the header, so it is let go before any handler waits.
    let client_id = match &body {
        RequestKind::JoinGroup(_) => header.client_id.as_ref().map(|id| id.to_string()),
        _ => None,
    };
    drop(header);
    match body {
        RequestKind::ApiVersions(r) => respond(ResponseKind::ApiVersions(api_versions::handle(&r, version))),
        RequestKind::Metadata(r) => {
            respond(ResponseKind::Metadata(metadata::handle(ctx, access, r, version).await))
        }
        RequestKind::Produce(r) => produce::handle(ctx, access, r, version).await,
        RequestKind::Fetch(r) => respond(ResponseKind::Fetch(fetch::handle(ctx, access, r, version).await)),
        RequestKind::ListOffsets(r) => {
            respond(ResponseKind::ListOffsets(list_offsets::handle(ctx, access, r, version).await))
        }
        RequestKind::CreateTopics(r) => {
            respond(ResponseKind::CreateTopics(create_topics::handle(ctx, access, r, version).await))
        }
        RequestKind::DeleteTopics(r) => {
            respond(ResponseKind::DeleteTopics(delete_topics::handle(ctx, access, r, version).await))
        }
        RequestKind::DeleteRecords(r) => {
            respond(ResponseKind::DeleteRecords(delete_records::handle(ctx, access, r).await))
        }
        RequestKind::DescribeConfigs(r) => {
            respond(ResponseKind::DescribeConfigs(describe_configs::handle(ctx, access, r, version)))
        }
        RequestKind::AlterConfigs(r) => {
            respond(ResponseKind::AlterConfigs(alter_configs::handle(ctx, access, r).await))
        }
        RequestKind::IncrementalAlterConfigs(r) => respond(ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(ctx, access, r).await,
        )),
        RequestKind::CreatePartitions(r) => {
            respond(ResponseKind::CreatePartitions(create_partitions::handle(ctx, access, r).await))
        }
        RequestKind::ElectLeaders(r) => {
            respond(ResponseKind::ElectLeaders(elect_leaders::handle(ctx, access, r, version).await))
        }
        RequestKind::InitProducerId(r) => {
            respond(ResponseKind::InitProducerId(init_producer_id::handle(ctx, access, r).await))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            respond(ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(ctx, access, r)))
        }
        RequestKind::FindCoordinator(r) => {
            respond(ResponseKind::FindCoordinator(find_coordinator::handle(ctx, access, r, version).await))
        }
        RequestKind::JoinGroup(r) => {
            let host = client_host(peer);
            respond(ResponseKind::JoinGroup(
                join_group::handle(ctx, access, r, version, client_id, host).await,
            ))
        }
        RequestKind::SyncGroup(r) => {
            respond(ResponseKind::SyncGroup(sync_group::handle(ctx, access, r, version).await))
        }
        RequestKind::Heartbeat(r) => {
            respond(ResponseKind::Heartbeat(heartbeat::handle(ctx, access, r).await))
        }
        RequestKind::LeaveGroup(r) => {
            respond(ResponseKind::LeaveGroup(leave_group::handle(ctx, access, r, version).await))
        }
        RequestKind::OffsetCommit(r) => {
            respond(ResponseKind::OffsetCommit(offset_commit::handle(ctx, access, r, version).await))
        }
        RequestKind::OffsetFetch(r) => {
            respond(ResponseKind::OffsetFetch(offset_fetch::handle(ctx, access, r, version).await))
        }
        RequestKind::DescribeGroups(r) => {
            respond(ResponseKind::DescribeGroups(describe_groups::handle(ctx, access, r, version)))
        }
        RequestKind::ListGroups(r) => {
            respond(ResponseKind::ListGroups(list_groups::handle(ctx, access, r, version)))
        }
        RequestKind::DeleteGroups(r) => {
            respond(ResponseKind::DeleteGroups(delete_groups::handle(ctx, access, r).await))
        }
        RequestKind::DescribeCluster(r) => {
            respond(ResponseKind::DescribeCluster(describe_cluster::handle(ctx, r)))
        }
        RequestKind::DescribeLogDirs(r) => {
            respond(ResponseKind::DescribeLogDirs(describe_log_dirs::handle(ctx, access, r)))
        }
        RequestKind::DescribeProducers(r) => {
            respond(ResponseKind::DescribeProducers(describe_producers::handle(ctx, access, r)))
        }
        RequestKind::OffsetDelete(r) => {
            respond(ResponseKind::OffsetDelete(offset_delete::handle(ctx, access, r).await))
        }
        RequestKind::DescribeUserScramCredentials(r) => respond(ResponseKind::DescribeUserScramCredentials(
            describe_user_scram_credentials::handle(ctx, access, r),
        )),
        RequestKind::AlterUserScramCredentials(r) => respond(ResponseKind::AlterUserScramCredentials(
            alter_user_scram_credentials::handle(ctx, access, r).await,
        )),
        RequestKind::DescribeClientQuotas(r) => {
            respond(ResponseKind::DescribeClientQuotas(describe_client_quotas::handle(ctx, access, r)))
        }
        RequestKind::AlterClientQuotas(r) => {
            respond(ResponseKind::AlterClientQuotas(alter_client_quotas::handle(ctx, access, r).await))
        }
        RequestKind::CreateAcls(r) => {
            respond(ResponseKind::CreateAcls(create_acls::handle(ctx, access, r).await))
        }
        RequestKind::DescribeAcls(r) => {
            respond(ResponseKind::DescribeAcls(describe_acls::handle(ctx, access, r)))
        }
        RequestKind::DeleteAcls(r) => {
            respond(ResponseKind::DeleteAcls(delete_acls::handle(ctx, access, r).await))
        }
        // The connection's SASL session answers these (`security::sasl`)
        // and never dispatches them; one that gets here is out of turn.
        RequestKind::SaslHandshake(_) => respond(ResponseKind::SaslHandshake(
            kafka_protocol::messages::SaslHandshakeResponse::default()
                .with_error_code(kafka_protocol::ResponseError::IllegalSaslState.code()),
        )),
        RequestKind::SaslAuthenticate(_) => respond(ResponseKind::SaslAuthenticate(
            kafka_protocol::messages::SaslAuthenticateResponse::default()
                .with_error_code(kafka_protocol::ResponseError::IllegalSaslState.code())
                .with_error_message(Some(str_bytes("SASL is not served here"))),
        )),
        // `protocol::request::parse` admits only the APIs above.
        other => Reply::Close(format!("no handler for {other:?}")),
    }
}

/// Did the response report an error anywhere (for the error counter)?
pub fn response_failed(response: &ResponseKind) -> bool {
    match response {
        ResponseKind::ApiVersions(r) => r.error_code != 0,
        ResponseKind::Metadata(r) => {
            r.topics.iter().any(|t| t.error_code != 0 || t.partitions.iter().any(|p| p.error_code != 0))
        }
        ResponseKind::Produce(r) => {
            r.responses.iter().flat_map(|t| &t.partition_responses).any(|p| p.error_code != 0)
        }
        ResponseKind::Fetch(r) => {
            r.error_code != 0 || r.responses.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0)
        }
        ResponseKind::ListOffsets(r) => {
            r.topics.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0)
        }
        ResponseKind::CreateTopics(r) => r.topics.iter().any(|t| t.error_code != 0),
        ResponseKind::DeleteTopics(r) => r.responses.iter().any(|t| t.error_code != 0),
        ResponseKind::DeleteRecords(r) => {
            r.topics.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0)
        }
        ResponseKind::DescribeConfigs(r) => r.results.iter().any(|t| t.error_code != 0),
        ResponseKind::AlterConfigs(r) => r.responses.iter().any(|t| t.error_code != 0),
        ResponseKind::IncrementalAlterConfigs(r) => r.responses.iter().any(|t| t.error_code != 0),
        ResponseKind::CreatePartitions(r) => r.results.iter().any(|t| t.error_code != 0),
        ResponseKind::ElectLeaders(r) => {
            r.error_code != 0
                || r.replica_election_results
                    .iter()
                    .flat_map(|t| &t.partition_result)
                    .any(|p| p.error_code != 0)
        }
        ResponseKind::InitProducerId(r) => r.error_code != 0,
        ResponseKind::OffsetForLeaderEpoch(r) => {
            r.topics.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0)
        }
        ResponseKind::FindCoordinator(r) => {
            r.error_code != 0 || r.coordinators.iter().any(|c| c.error_code != 0)
        }
        ResponseKind::JoinGroup(r) => r.error_code != 0,
        ResponseKind::SyncGroup(r) => r.error_code != 0,
        ResponseKind::Heartbeat(r) => r.error_code != 0,
        ResponseKind::LeaveGroup(r) => r.error_code != 0 || r.members.iter().any(|m| m.error_code != 0),
        ResponseKind::OffsetCommit(r) => {
            r.topics.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0)
        }
        ResponseKind::OffsetFetch(r) => {
            r.error_code != 0
                || r.topics.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0)
                || r.groups.iter().any(|g| {
                    g.error_code != 0
                        || g.topics.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0)
                })
        }
        ResponseKind::DescribeGroups(r) => r.groups.iter().any(|g| g.error_code != 0),
        ResponseKind::ListGroups(r) => r.error_code != 0,
        ResponseKind::DeleteGroups(r) => r.results.iter().any(|g| g.error_code != 0),
        ResponseKind::DescribeCluster(r) => r.error_code != 0,
        ResponseKind::DescribeLogDirs(r) => r.error_code != 0 || r.results.iter().any(|d| d.error_code != 0),
        ResponseKind::DescribeProducers(r) => {
            r.topics.iter().any(|t| t.partitions.iter().any(|p| p.error_code != 0))
        }
        ResponseKind::OffsetDelete(r) => {
            r.error_code != 0 || r.topics.iter().any(|t| t.partitions.iter().any(|p| p.error_code != 0))
        }
        ResponseKind::DescribeUserScramCredentials(r) => {
            r.error_code != 0 || r.results.iter().any(|u| u.error_code != 0)
        }
        ResponseKind::AlterUserScramCredentials(r) => r.results.iter().any(|u| u.error_code != 0),
        ResponseKind::CreateAcls(r) => r.results.iter().any(|a| a.error_code != 0),
        ResponseKind::SaslHandshake(r) => r.error_code != 0,
        ResponseKind::SaslAuthenticate(r) => r.error_code != 0,
        ResponseKind::DescribeClientQuotas(r) => r.error_code != 0,
        ResponseKind::AlterClientQuotas(r) => r.entries.iter().any(|e| e.error_code != 0),
        ResponseKind::DescribeAcls(r) => r.error_code != 0,
        ResponseKind::DeleteAcls(r) => r.filter_results.iter().any(|f| f.error_code != 0),
        _ => false,
    }
}

/// A group member's host as Kafka reports it (`InetAddress.toString()`:
/// "/127.0.0.1"); empty when the request did not come over a socket.
pub fn client_host(peer: Option<std::net::SocketAddr>) -> String {
    peer.map(|p| format!("/{}", p.ip())).unwrap_or_default()
}

/// An optional wire string as an owned one.
pub fn opt_string(s: Option<StrBytes>) -> Option<String> {
    s.map(|s| s.to_string())
}

/// The Kafka error code of an engine error.
pub fn code(e: &BrokerError) -> i16 {
    e.code.code()
}

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}

/// A topic's id as the wire carries it.
pub fn topic_uuid(topic: &TopicState) -> uuid::Uuid {
    uuid::Uuid::from_bytes(topic.topic_id_bytes())
}

/// The topic whose id is `id`, if any.
pub fn topic_by_id(ctx: &Context, id: uuid::Uuid) -> Option<(String, TopicState)> {
    if id.is_nil() {
        return None;
    }
    let name = ctx.broker.topic_name_by_id(id.into_bytes())?;
    let topic = ctx.broker.topic(&name)?;
    Some((name, topic))
}

/// Kafka's check of a request's `current_leader_epoch` against ours (-1
/// means the client does not know it): an older epoch means the client's
/// metadata is stale, a newer one that ours is.
pub fn check_leader_epoch(requested: i32, current: i32) -> Result<(), i16> {
    use kafka_protocol::ResponseError;
    if requested < 0 || requested == current {
        Ok(())
    } else if requested < current {
        Err(ResponseError::FencedLeaderEpoch.code())
    } else {
        Err(ResponseError::UnknownLeaderEpoch.code())
    }
}
