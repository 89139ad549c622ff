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
//!
//! - `coordinator`: FindCoordinator, the remembered coordinator and
//!   `Client::with_coordinator`.
//! - `membership`: JoinGroup, SyncGroup, Heartbeat and LeaveGroup, one
//!   attempt each, for the group member driver.
//! - `committed`: OffsetCommit and OffsetFetch, the group's committed offsets.
//! - `admin`: ListGroups, DescribeGroups and DeleteGroups.

mod admin;
mod committed;
mod coordinator;
mod membership;

use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;

pub use admin::{GroupDescription, ListedGroup, MemberDescription};
pub use committed::CommittedOffsets;
pub use coordinator::CoordinatorInfo;
pub use membership::{
    heartbeat, join_group, leave_group, sync_group, JoinOutcome, JoinRequest, JoinedMember, Membership,
};

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_string(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_owned())
}
