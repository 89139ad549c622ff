//! Consumer groups: the coordinator's state machine and committed offsets.
//!
//! - `api`: typed requests and answers (Kafka's meanings).
//! - `records`: `__consumer_offsets` keys and values in Kafka's format.
//! - `group`: one group's membership and its invariants.
//! - `rebalance`: a group's rebalance transitions and timers.
//! - `shard`: all groups of one offsets partition: effects, completions,
//!   replay, timers.
//! - `join`: JoinGroup. `members`: SyncGroup, Heartbeat, LeaveGroup.
//! - `offsets`: OffsetCommit, OffsetFetch, DeleteGroups, OffsetDelete.
//! - `subscription`: the topics in a consumer's member metadata.
//! - `compaction`: the latest record per key, snapshotted to bound the log.
//! - `coordinator`: the shards this broker leads and their parked waiters.
//!
//! Sans-IO: the state machine takes the time and requests it is given and
//! answers with replies and records to persist; `broker::groups` drives it
//! with the broker's clock and the `__consumer_offsets` partitions.

pub mod api;
pub mod compaction;
pub mod coordinator;
#[allow(clippy::module_inception)]
pub mod group;
pub mod join;
pub mod members;
pub mod offsets;
pub mod rebalance;
pub mod records;
pub mod shard;
pub mod subscription;

pub use api::*;
pub use coordinator::Coordinator;
pub use group::{Group, Member, WaiterId};
pub use offsets::{CommitPlan, OffsetDeletePlan};
pub use records::{CodecError, OffsetsRecord};
pub use shard::{Completion, Effects, Persist, Reply, Shard};
