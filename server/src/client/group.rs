//! Consumer group requests: FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
//! DescribeGroups, DeleteGroups.
//!
//! A group's requests go to its coordinator, which FindCoordinator names
//! and the client remembers. `Client::with_coordinator` runs an operation
//! against it and, when the broker says it is not (or not yet) the
//! coordinator, or the connection breaks, finds it again after a pause and
//! retries, for up to the request timeout. Membership operations
//! (`join_group` and friends) make one attempt each: their caller, the
//! group member driver, decides what a failure means for its membership.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Client;
use super::connection::Connection;
use super::error::{check, code, ClientError, Result};

/// FindCoordinator's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_string(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_owned())
}

/// The broker coordinating a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorInfo {
    pub node_id: i32,
    pub addr: String,
}

/// What a member says about itself when joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub group: String,
    /// Empty on the first join.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in order of preference.
    pub protocols: Vec<(String, Bytes)>,
}

/// A successful JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOutcome {
    pub generation: i32,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata; only the leader is told.
    pub members: Vec<JoinedMember>,
}

impl JoinOutcome {
    pub fn is_leader(&self) -> bool {
        self.leader == self.member_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A member's identity within one generation, for SyncGroup, Heartbeat,
/// OffsetCommit and LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub group: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol_name: Option<String>,
}

/// One group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// From ListGroups v4; `None` from older brokers.
    pub state: Option<String>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's state names: Empty, PreparingRebalance, CompletingRebalance,
    /// Stable, Dead.
    pub state: String,
    pub protocol_type: String,
    /// The protocol (assignor) the group chose, e.g. `range`.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// Committed offsets by (topic, partition); partitions with no committed
/// offset are left out.
pub type CommittedOffsets = BTreeMap<(String, i32), i64>;

impl Client {
    /// Asks any broker which broker coordinates `group` (one attempt).
    pub async fn find_coordinator(&self, group: &str) -> Result<CoordinatorInfo> {
        let connection = self.any_connection().await?;
        let response = connection
            .request(|version| {
                let request = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
                if version >= 4 {
                    request.with_coordinator_keys(vec![str_bytes(group)])
                } else {
                    request.with_key(str_bytes(group))
                }
            })
            .await?;
        let context = || format!("find the coordinator of group {group}");
        // v4 answers in a list, earlier versions at the top level.
        let (error_code, message, node_id, host, port) = match response.coordinators.first() {
            Some(c) => (c.error_code, c.error_message.clone(), c.node_id.0, c.host.clone(), c.port),
            None => (
                response.error_code,
                response.error_message.clone(),
                response.node_id.0,
                response.host,
                response.port,
            ),
        };
        check(error_code, message.as_ref().map(StrBytes::as_str), context)?;
        let host = host.as_str();
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        Ok(CoordinatorInfo { node_id, addr })
    }

    /// The connection to `group`'s coordinator, found if not known yet.
    pub(crate) async fn coordinator_connection(&self, group: &str) -> Result<Arc<Connection>> {
        let addr = match self.cached_coordinator(group).await {
            Some(addr) => addr,
            None => {
                let found = self.find_coordinator(group).await?;
                self.set_coordinator(group, Some(found.addr.clone())).await;
                found.addr
            }
        };
        let connection = self.connection_to(&addr).await;
        if connection.is_err() {
            self.set_coordinator(group, None).await;
        }
        connection
    }

    /// Runs `op` against `group`'s coordinator. When the broker is not the
    /// coordinator (any more), not ready, or unreachable, forgets it, waits
    /// (backing off) and finds it again, for up to the request timeout.
    pub async fn with_coordinator<T, F, Fut>(&self, group: &str, mut op: F) -> Result<T>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.config().request_timeout;
        let mut attempt = 1;
        loop {
            let result = match self.coordinator_connection(group).await {
                Ok(connection) => op(connection).await,
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !(error.is_coordinator_error() || error.is_connection_failure()) {
                return Err(error);
            }
            self.set_coordinator(group, None).await;
            attempt += 1;
            let pause = self.config().backoff(attempt);
            if Instant::now() + pause >= deadline {
                return Err(error);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Forgets `group`'s coordinator, so the next request finds it again.
    pub async fn forget_coordinator(&self, group: &str) {
        self.set_coordinator(group, None).await;
    }

    /// Every group on every broker of the cluster, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<ListedGroup>> {
        let metadata = self.fetch_metadata(Some(&[])).await?;
        let mut groups = BTreeMap::new();
        for broker in metadata.brokers.values() {
            let connection = self.connection_to(&broker.addr()).await?;
            let response = connection.request(|_version| ListGroupsRequest::default()).await?;
            check(response.error_code, None, || format!("list groups on broker {}", broker.node_id))?;
            for g in response.groups {
                let state = Some(g.group_state.as_str().to_owned()).filter(|s| !s.is_empty());
                let listed = ListedGroup {
                    group_id: g.group_id.0.as_str().to_owned(),
                    protocol_type: g.protocol_type.as_str().to_owned(),
                    state,
                };
                groups.insert(listed.group_id.clone(), listed);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes `group`. A group that does not exist is reported as
    /// GROUP_ID_NOT_FOUND (older brokers say state `Dead` instead; so
    /// does this).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let response = self
            .with_coordinator(group, |connection| async move {
                connection
                    .request(|_version| DescribeGroupsRequest::default().with_groups(vec![group_id(group)]))
                    .await
            })
            .await?;
        let described =
            response.groups.into_iter().find(|g| g.group_id.0.as_str() == group).ok_or_else(|| {
                ClientError::Protocol {
                    addr: "(coordinator)".to_owned(),
                    reason: format!("DescribeGroups response has no entry for group {group}"),
                }
            })?;
        check(described.error_code, described.error_message.as_ref().map(StrBytes::as_str), || {
            format!("describe group {group}")
        })?;
        if described.group_state.as_str() == "Dead" {
            return Err(ClientError::kafka(
                format!("describe group {group}"),
                code::GROUP_ID_NOT_FOUND,
                None,
            ));
        }
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: described.group_state.as_str().to_owned(),
            protocol_type: described.protocol_type.as_str().to_owned(),
            protocol: described.protocol_data.as_str().to_owned(),
            members: described
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.as_str().to_owned(),
                    group_instance_id: opt_string(&m.group_instance_id),
                    client_id: m.client_id.as_str().to_owned(),
                    client_host: m.client_host.as_str().to_owned(),
                    metadata: m.member_metadata,
                    assignment: m.member_assignment,
                })
                .collect(),
        })
    }

    /// Deletes an empty group and its committed offsets.
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let response = self
            .with_coordinator(group, |connection| async move {
                let response = connection
                    .request(|_version| {
                        DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)])
                    })
                    .await?;
                // The per-group error may itself say "not the coordinator".
                let result = response.results.iter().find(|r| r.group_id.0.as_str() == group);
                if let Some(r) = result {
                    check(r.error_code, None, || format!("delete group {group}"))?;
                }
                Ok(response)
            })
            .await?;
        if !response.results.iter().any(|r| r.group_id.0.as_str() == group) {
            return Err(ClientError::Protocol {
                addr: "(coordinator)".to_owned(),
                reason: format!("DeleteGroups response has no entry for group {group}"),
            });
        }
        Ok(())
    }

    /// The group's committed offsets: for `partitions` (topic, partitions),
    /// or for everything it committed if `None`.
    pub async fn fetch_committed(
        &self,
        group: &str,
        partitions: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<CommittedOffsets> {
        self.with_coordinator(group, |connection| async move {
            offset_fetch(&connection, group, partitions).await
        })
        .await
    }

    /// Commits `offsets` (the next offset to read, per partition) for a
    /// member of `membership`'s generation; an empty membership (member
    /// id "", generation -1) commits for a group with no active members.
    pub async fn commit_offsets(&self, membership: &Membership, offsets: &CommittedOffsets) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        self.with_coordinator(&membership.group, |connection| async move {
            offset_commit(&connection, membership, offsets).await
        })
        .await
    }
}

/// JoinGroup, one attempt. MEMBER_ID_REQUIRED comes back as an error
/// carrying nothing else; `join_group_member_id_required` gives the id.
pub async fn join_group(connection: &Connection, join: &JoinRequest) -> Result<JoinOutcome> {
    let response = connection
        .request(|version| {
            let protocols = join
                .protocols
                .iter()
                .map(|(name, metadata)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(str_bytes(name))
                        .with_metadata(metadata.clone())
                })
                .collect();
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&join.group))
                .with_session_timeout_ms(join.session_timeout_ms)
                .with_rebalance_timeout_ms(join.rebalance_timeout_ms)
                .with_member_id(str_bytes(&join.member_id))
                .with_protocol_type(str_bytes(&join.protocol_type))
                .with_protocols(protocols);
            if version >= 5 {
                request.with_group_instance_id(join.group_instance_id.as_deref().map(str_bytes))
            } else {
                request
            }
        })
        .await?;
    let member_id = response.member_id.as_str().to_owned();
    if response.error_code == code::MEMBER_ID_REQUIRED {
        return Err(ClientError::MemberIdRequired { group: join.group.clone(), member_id });
    }
    check(response.error_code, None, || format!("join group {}", join.group))?;
    Ok(JoinOutcome {
        generation: response.generation_id,
        protocol_name: opt_string(&response.protocol_name),
        leader: response.leader.as_str().to_owned(),
        member_id,
        members: response
            .members
            .into_iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.as_str().to_owned(),
                group_instance_id: opt_string(&m.group_instance_id),
                metadata: m.metadata,
            })
            .collect(),
    })
}

/// SyncGroup, one attempt: the leader sends every member's assignment,
/// the others none. Returns this member's assignment bytes.
pub async fn sync_group(
    connection: &Connection,
    membership: &Membership,
    assignments: &[(String, Bytes)],
) -> Result<Bytes> {
    let response = connection
        .request(|version| {
            let assignments = assignments
                .iter()
                .map(|(member, bytes)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(str_bytes(member))
                        .with_assignment(bytes.clone())
                })
                .collect();
            let mut request = SyncGroupRequest::default()
                .with_group_id(group_id(&membership.group))
                .with_generation_id(membership.generation)
                .with_member_id(str_bytes(&membership.member_id))
                .with_assignments(assignments);
            if version >= 3 {
                request =
                    request.with_group_instance_id(membership.group_instance_id.as_deref().map(str_bytes));
            }
            if version >= 5 {
                request = request
                    .with_protocol_type(Some(str_bytes(&membership.protocol_type)))
                    .with_protocol_name(membership.protocol_name.as_deref().map(str_bytes));
            }
            request
        })
        .await?;
    check(response.error_code, None, || format!("sync group {}", membership.group))?;
    Ok(response.assignment)
}

/// Heartbeat, one attempt.
pub async fn heartbeat(connection: &Connection, membership: &Membership) -> Result<()> {
    let response = connection
        .request(|version| {
            let request = HeartbeatRequest::default()
                .with_group_id(group_id(&membership.group))
                .with_generation_id(membership.generation)
                .with_member_id(str_bytes(&membership.member_id));
            if version >= 3 {
                request.with_group_instance_id(membership.group_instance_id.as_deref().map(str_bytes))
            } else {
                request
            }
        })
        .await?;
    check(response.error_code, None, || format!("heartbeat to group {}", membership.group))
}

/// LeaveGroup, one attempt.
pub async fn leave_group(
    connection: &Connection,
    group: &str,
    member_id: &str,
    instance: Option<&str>,
) -> Result<()> {
    let response = connection
        .request(|version| {
            let request = LeaveGroupRequest::default().with_group_id(group_id(group));
            if version >= 3 {
                let mut member = MemberIdentity::default()
                    .with_member_id(str_bytes(member_id))
                    .with_group_instance_id(instance.map(str_bytes));
                if version >= 5 {
                    member = member.with_reason(Some(StrBytes::from_static_str("the consumer is closing")));
                }
                request.with_members(vec![member])
            } else {
                request.with_member_id(str_bytes(member_id))
            }
        })
        .await?;
    let context = || format!("leave group {group}");
    check(response.error_code, None, context)?;
    for member in &response.members {
        check(member.error_code, None, context)?;
    }
    Ok(())
}

async fn offset_commit(
    connection: &Connection,
    membership: &Membership,
    offsets: &CommittedOffsets,
) -> Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        by_topic.entry(topic.as_str()).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str(""))),
        );
    }
    let response = connection
        .request(|version| {
            let topics = by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partitions(partitions)
                })
                .collect();
            let mut request = OffsetCommitRequest::default()
                .with_group_id(group_id(&membership.group))
                .with_generation_id_or_member_epoch(membership.generation)
                .with_member_id(str_bytes(&membership.member_id))
                .with_topics(topics);
            if version <= 4 {
                request = request.with_retention_time_ms(-1);
            }
            if version >= 7 {
                request =
                    request.with_group_instance_id(membership.group_instance_id.as_deref().map(str_bytes));
            }
            request
        })
        .await?;
    // Report the first partition error; they are all the same in practice
    // (a stale generation, a moved coordinator).
    for topic in &response.topics {
        for p in &topic.partitions {
            check(p.error_code, None, || {
                format!(
                    "commit offsets of group {} for {}-{}",
                    membership.group,
                    topic.name.0.as_str(),
                    p.partition_index
                )
            })?;
        }
    }
    Ok(())
}

async fn offset_fetch(
    connection: &Connection,
    group: &str,
    partitions: Option<&BTreeMap<String, Vec<i32>>>,
) -> Result<CommittedOffsets> {
    let context = || format!("fetch committed offsets of group {group}");
    let version = connection.version_for::<OffsetFetchRequest>()?;
    let request = if version >= 8 {
        let topics = partitions.map(|p| {
            p.iter()
                .map(|(topic, indexes)| {
                    kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partition_indexes(indexes.clone())
                })
                .collect()
        });
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(topics)])
    } else {
        let topics: Option<Vec<OffsetFetchRequestTopic>> = partitions.map(|p| {
            p.iter()
                .map(|(topic, indexes)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partition_indexes(indexes.clone())
                })
                .collect()
        });
        // "All topics" (null) exists from v2; v1 can only name them.
        let topics = if version < 2 { Some(topics.unwrap_or_default()) } else { topics };
        OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(topics)
    };
    let response = connection.send(&request, version).await?;
    let mut committed = CommittedOffsets::new();
    let mut record = |topic: &str, partition: i32, offset: i64, error_code: i16| -> Result<()> {
        check(error_code, None, || format!("{} ({topic}-{partition})", context()))?;
        if offset >= 0 {
            committed.insert((topic.to_owned(), partition), offset);
        }
        Ok(())
    };
    if version >= 8 {
        let answer = response.groups.iter().find(|g| g.group_id.0.as_str() == group).ok_or_else(|| {
            ClientError::Protocol {
                addr: connection.addr().to_owned(),
                reason: format!("OffsetFetch response has no entry for group {group}"),
            }
        })?;
        check(answer.error_code, None, context)?;
        for topic in &answer.topics {
            for p in &topic.partitions {
                record(topic.name.0.as_str(), p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    } else {
        check(response.error_code, None, context)?;
        for topic in &response.topics {
            for p in &topic.partitions {
                record(topic.name.0.as_str(), p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    }
    Ok(committed)
}
