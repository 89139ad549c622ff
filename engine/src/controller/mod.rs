//! The metadata quorum (KRaft's role): a few controller voters agree,
//! through Raft (TiKV's raft-rs), on a log of metadata records; applying
//! that log in order gives every node the same `MetadataImage`: brokers
//! (registered, fenced or not), topics with ids and configs, and per
//! partition its replicas, leader, leader epoch, ISR and partition epoch.
//!
//! - `records`: the records and their encoding;
//! - `image`: the state they build (`apply` reads nothing else);
//! - `plan`: what the leader proposes (placement, fencing, leader elections),
//!   as pure functions;
//! - `storage`: raft's in-memory view of the persisted log;
//! - `store`: the log, hard state and snapshot on the engine's `Disk`;
//! - `quorum`: one voter, sans-IO (messages, ticks, requests in; work to
//!   persist, messages and answers out);
//! - `node`: a voter with its disk, persisting before anything leaves.
//!
//! Invariants (debug assertions here; the simulator checks them across
//! nodes):
//! - Q1: at most one leader per term.
//! - Q2: a committed entry is never lost or changed: raft's hard state and
//!   entries are on disk before a vote or an append's ack is sent.
//! - Q3: images are built by applying the committed log in order, with no
//!   entry skipped or applied twice: two nodes at the same applied index
//!   hold the same image.
//! - Q4: every partition's leader is in its ISR, the ISR within its
//!   replicas and never empty (`MetadataImage::check`).

pub mod image;
pub mod node;
pub mod plan;
pub mod quorum;
pub mod records;
pub mod storage;
pub mod store;

pub use image::MetadataImage;
pub use node::QuorumNode;
pub use plan::{ElectionType, PartitionElection};
pub use quorum::{Answer, BrokerState, Controller, ProposalId, QuorumConfig};
pub use records::{Endpoint, IsrChange, MetadataRecord, PartitionRecord};

#[cfg(test)]
mod tests;
