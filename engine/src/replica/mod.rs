//! Partition replication as sans-IO state machines: what a partition's
//! leader knows of its followers (their log ends, the ISR, the high
//! watermark) and decides (ISR changes to ask of the controller, when an
//! acks=all produce is done). Fed by messages and the time the owner reads
//! from its clock; the broker (server and simulator alike) drives it.
//!
//! Invariants (debug-asserted in `leader`, checked again by the simulator):
//! - R1: the high watermark never goes backwards.
//! - R2: the high watermark is at most the log end of every replica that is
//!   or may become a member of the ISR (the ISR the controller committed,
//!   plus members a pending change adds): whatever a consumer may read, or
//!   an acks=all producer was told is safe, every possible leader holds.
//! - R3: the leader is in every ISR it holds or asks for.
//! - R4: a follower is asked into the ISR only once its log end has reached
//!   both the high watermark and the offset where this leader's epoch
//!   began, so that it holds everything acknowledged, by any leader.
//! - R5: a new leader serves reads only once its high watermark has reached
//!   the offset its epoch began at; before then its high watermark (learned
//!   as a follower) may be below what the old leader let consumers read.

pub mod follower;
pub mod leader;

pub use follower::{truncation, Truncation};
pub use leader::{LeaderState, ReplicationConfig};
