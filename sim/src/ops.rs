//! The workload's vocabulary: what a simulated client asks a broker and
//! what it hears back, reduced to what the checker judges. `kafka.rs` turns
//! each into Kafka requests through the project's own client, so what
//! crosses the simulated network is real Kafka frames.

use bytes::Bytes;
use ringtail_client::assignor::MemberSubscription;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    CreateTopic {
        name: String,
        partitions: u32,
        configs: Vec<(String, String)>,
    },
    DeleteTopic {
        name: String,
    },
    /// `acks`: 0, 1 or -1 as in Kafka. Under 0 the broker sends no answer.
    Produce {
        topic: String,
        partition: i32,
        acks: i8,
        records: Bytes,
    },
    Fetch {
        topic: String,
        partition: i32,
        offset: i64,
        max_bytes: u32,
    },
    /// An idempotent producer's id and epoch.
    InitProducerId,
    /// `timestamp`: -2 earliest, -1 latest (the high watermark).
    ListOffsets {
        topic: String,
        partition: i32,
        timestamp: i64,
    },
    // Consumer groups (reduced to what the simulated members use: the
    // "consumer" protocol type, the range and cooperative-sticky assignors).
    FindCoordinator {
        group: String,
    },
    /// Always with `require_known_member_id` (JoinGroup v4+).
    JoinGroup {
        group: String,
        member_id: String,
        /// `group.instance.id` of a static member.
        instance_id: Option<String>,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        /// Assignor names with the subscription for each (opaque to the
        /// coordinator), most preferred first.
        protocols: Vec<(String, Bytes)>,
    },
    SyncGroup {
        group: String,
        generation: i32,
        member_id: String,
        instance_id: Option<String>,
        /// The assignor the JoinGroup answer chose.
        protocol: Option<String>,
        /// The leader's assignment per member id; empty from followers.
        assignments: Vec<(String, Bytes)>,
    },
    Heartbeat {
        group: String,
        generation: i32,
        member_id: String,
        instance_id: Option<String>,
    },
    LeaveGroup {
        group: String,
        member_id: String,
        instance_id: Option<String>,
    },
    /// Offsets as `(topic, partition, offset)`.
    OffsetCommit {
        group: String,
        generation: i32,
        member_id: String,
        instance_id: Option<String>,
        offsets: Vec<(String, i32, i64)>,
    },
    OffsetFetch {
        group: String,
        partitions: Vec<(String, i32)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Created,
    Deleted,
    Produced {
        base_offset: u64,
        log_start_offset: u64,
    },
    Fetched {
        records: Bytes,
        high_watermark: u64,
        log_start_offset: u64,
    },
    Offset {
        offset: i64,
    },
    ProducerId {
        id: i64,
        epoch: i16,
    },
    /// A Kafka error code; `log_range` is `[start, end)` of the log when the
    /// error was an offset out of range, so the checker can judge it.
    Error {
        code: i16,
        message: String,
        log_range: Option<(u64, u64)>,
    },
    Coordinator {
        node_id: i32,
    },
    /// A JoinGroup answer; `error` may be MEMBER_ID_REQUIRED with the id.
    Joined {
        error: i16,
        generation: i32,
        leader: String,
        member_id: String,
        /// The assignor the coordinator chose.
        protocol: Option<String>,
        /// Every member with its instance id and subscription, for the
        /// leader only.
        members: Vec<MemberSubscription>,
    },
    Synced {
        error: i16,
        assignment: Bytes,
    },
    /// A successful Heartbeat or LeaveGroup.
    GroupOk,
    /// An OffsetCommit's outcome per offset, in order.
    Committed {
        errors: Vec<i16>,
    },
    /// OffsetFetch: `(topic, partition, offset or -1, error)`.
    Offsets {
        offsets: Vec<(String, i32, i64, i16)>,
    },
}
