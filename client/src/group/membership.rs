//! A member's requests to its coordinator: JoinGroup, SyncGroup, Heartbeat
//! and LeaveGroup, one attempt each, on a connection the caller chose.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest};
use kafka_protocol::protocol::StrBytes;

use super::{group_id, opt_string, str_bytes};
use crate::connection::Connection;
use crate::error::{check, code, ClientError, Result};

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

/// JoinGroup, one attempt. MEMBER_ID_REQUIRED comes back as
/// `ClientError::MemberIdRequired`, carrying the id to join again with.
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
