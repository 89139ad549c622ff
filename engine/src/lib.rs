//! Ringtail's engine: everything a broker knows, and no sockets.
//!
//! - `io`: the `Disk` trait (the storage seam) and its backends.
//! - `log`: the partition log: record batches, segments, indexes, recovery,
//!   rolling, retention, truncation, group-committed flushing.
//! - `group`: consumer groups: the coordinator state machine, offsets.
//! - `replica`: replication's state machines: a leader's followers, ISR
//!   and high watermark.
//! - `broker`: one node: topics, partitions, groups, behind typed requests.
//! - `security`: users' SCRAM credentials and the exchange that checks them.
//! - `error`: Kafka's error codes and the broker's error type; a leaf that
//!   every other module may use and that uses none of them.
//! - `clock`: the time seam; the engine never reads the ambient clock.
//! - `watch`: a value tasks wait on, woken in a fixed order (tokio's
//!   `watch` wakes in a random one, which breaks the simulator's replays).

pub mod broker;
pub mod canary;
pub mod clock;
pub mod controller;
pub mod entropy;
pub mod error;
pub mod group;
pub mod io;
pub mod join;
pub mod log;
pub mod quota;
pub mod replica;
pub mod security;
pub mod watch;
