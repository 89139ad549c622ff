//! The coordinator's typed requests and answers: what the server decodes
//! from the Kafka wire and what the simulator sends directly. Kafka's
//! meanings throughout (error codes, -1 for "none", generation numbers);
//! the wire's versions are the server's business.

use crate::error::ErrorCode;
use bytes::Bytes;

/// JoinGroup: a member asks to be part of the group's next generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty on a member's first join.
    pub member_id: String,
    /// `group.instance.id`: a static member keeps its place across restarts.
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// "consumer" for Kafka consumers; members of one group must agree.
    pub protocol_type: String,
    /// The assignors the member supports, in its order of preference, each
    /// with its subscription metadata (opaque to the coordinator).
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join without a member id is answered with
    /// MEMBER_ID_REQUIRED and a fresh id, so that a member that never comes
    /// back does not hold up a rebalance.
    pub require_known_member_id: bool,
    /// Why the member (re)joins (v8+), for logs.
    pub reason: Option<String>,
}

/// One member as the leader sees it in its JoinGroup answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// The member's subscription for the chosen protocol.
    pub metadata: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResponse {
    pub error: ErrorCode,
    /// -1 with an error.
    pub generation: i32,
    pub protocol_type: Option<String>,
    /// The assignor every member supports that the most members prefer.
    pub protocol_name: Option<String>,
    /// The leader's member id; the leader computes the assignment.
    pub leader: String,
    /// The id the member is known by from now on (also with
    /// MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// Every member and its metadata: for the leader only, empty otherwise.
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    pub fn error(error: ErrorCode, member_id: impl Into<String>) -> JoinResponse {
        JoinResponse {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// SyncGroup: every member asks for its assignment; the leader brings them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment per member id; empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The member's assignment (opaque to the coordinator); empty on error.
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: ErrorCode) -> SyncResponse {
        SyncResponse { error, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// One member leaving (LeaveGroup v3+ carries several; older versions one,
/// by member id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeavingMember {
    /// May be empty (v3+) when `instance_id` names a static member.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub reason: Option<String>,
}

/// OffsetCommit. `generation == -1` with an empty member id is a "simple"
/// commit from a consumer that manages its own partitions: accepted only
/// while the group has no members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub offsets: Vec<CommitOffset>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// -1 when the client does not know it.
    pub leader_epoch: i32,
    /// Client-chosen string stored with the offset (at most
    /// `GroupConfig::offset_metadata_max_bytes`).
    pub metadata: Option<String>,
}

/// A committed offset as OffsetFetch returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// The coordinator's clock when the commit was written.
    pub commit_timestamp_ms: i64,
}

/// The answer for one partition of an OffsetFetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    /// `None`: nothing committed (the wire says offset -1).
    pub committed: Option<CommittedOffset>,
    pub error: ErrorCode,
}

/// Kafka's group states, as DescribeGroups and ListGroups name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// No members; committed offsets may remain.
    Empty,
    /// Waiting for members to (re)join before a new generation.
    PreparingRebalance,
    /// A new generation: waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted, or its coordinator moved away.
    Dead,
}

impl GroupState {
    /// The name Kafka uses on the wire.
    pub fn kafka_name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    pub fn from_kafka_name(name: &str) -> Option<GroupState> {
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
        ]
        .into_iter()
        .find(|s| s.kafka_name().eq_ignore_ascii_case(name))
    }
}

/// A member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's subscription for the group's protocol.
    pub metadata: Bytes,
    /// Its assignment in the current generation (empty until synced).
    pub assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub generation: i32,
    pub members: Vec<MemberDescription>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// The coordinator's settings (Kafka's names in brackets).
/// Largest member metadata (a JoinGroup protocol's subscription) and
/// member assignment (SyncGroup) the coordinator keeps: a consumer's are a
/// few KiB. Larger joins and assignments are refused with INVALID_REQUEST.
pub const MEMBER_BYTES_MAX: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// Partitions of `__consumer_offsets` when it is created
    /// [offsets.topic.num.partitions]. Fixed afterwards: it decides which
    /// partition, hence which coordinator, owns each group.
    pub offsets_topic_partitions: u32,
    /// [group.min.session.timeout.ms]
    pub min_session_timeout_ms: i32,
    /// [group.max.session.timeout.ms]
    pub max_session_timeout_ms: i32,
    /// How long the first rebalance of an empty group waits for more
    /// members, so that a group starting together gets one generation
    /// [group.initial.rebalance.delay.ms].
    pub initial_rebalance_delay_ms: i32,
    /// [group.max.size]
    pub max_group_size: usize,
    /// [offset.metadata.max.bytes]
    pub offset_metadata_max_bytes: usize,
    /// An offsets partition is compacted (see `group::compaction`) once it
    /// holds at least this many records, most of them superseded.
    pub compaction_min_records: u64,
    /// How long an Empty group's offsets are kept after it became empty
    /// (or, for a group that never had members, after its last commit);
    /// then the group and its offsets are deleted
    /// [offsets.retention.minutes].
    pub offsets_retention_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            offsets_topic_partitions: 50,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_group_size: i32::MAX as usize,
            offset_metadata_max_bytes: 4096,
            compaction_min_records: 10_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// The offsets topic's name, as in Kafka.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Topics clients may not create, delete or produce to (Metadata reports
/// them with is_internal = true).
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC
}

/// The `__consumer_offsets` partition that holds `group_id`, as Kafka
/// places it (Java's `String.hashCode`, made non-negative, modulo the
/// partition count), so that tools that compute it agree.
pub fn offsets_partition_for(group_id: &str, partitions: u32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    ((hash & 0x7fff_ffff) as u32 % partitions.max(1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_placement_matches_kafka() {
        // Java: "my-group".hashCode() == -1906497762; masked, 240985886.
        assert_eq!(offsets_partition_for("my-group", 50), 240985886 % 50);
        // Negative hashes are masked, not negated (Kafka's Utils.abs).
        let negative = "polygenelubricants"; // hashCode == i32::MIN
        assert_eq!(offsets_partition_for(negative, 50), 0);
        assert_eq!(offsets_partition_for("", 50), 0);
    }
}
