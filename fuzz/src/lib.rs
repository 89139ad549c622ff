//! Fuzz target bodies for ringtail-engine and ringtail-server.
//!
//! Each target is a plain function over bytes, so that the fuzz targets in
//! `fuzz_targets/` (built by `cargo fuzz`) and the replay test in
//! `tests/replay_corpus.rs` (plain `cargo test` on stable) run the same code.
//! A target signals a bug by panicking.
//!
//! - `log_recovery`: operations, a crash and media faults on an in-memory
//!   disk, then recovery, checked against a durable and a written model.
//! - `segment_bytes`: arbitrary segment and index files, then recovery,
//!   checked against a reference scan.
//! - `record_batch`: batch validation, scanning and record decoding, with a
//!   decode/encode round trip.
//! - `kafka_request`: request frames through the server's decoding and
//!   dispatch to a broker, checked: responses encode with the request's
//!   correlation id, nothing stored changes but what a request changed.
//! - `produce_batches`: a producer's batches (CRCs made valid) through a
//!   partition's produce path (validator, idempotent sequences, append) on
//!   a `MemDisk`, checked against Kafka's rules and read back.
//! - `group_member_metadata`: group API sequences with arbitrary member
//!   metadata and assignments against the group coordinator, its records
//!   appended to an offsets log, checked: caps, records decode back, a
//!   reload gives the same groups, nobody is left waiting.

pub mod alloc;
pub mod exec;
pub mod gen;
pub mod group_member_metadata;
pub mod kafka_request;
pub mod known_bugs;
pub mod log_recovery;
pub mod produce_batches;
pub mod record_batch;
pub mod reference;
pub mod segment_bytes;
pub mod watch;

pub use alloc::LimitAlloc;

/// A target's body: panics on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and the seed generator.
pub const TARGETS: [(&str, Target); 6] = [
    ("log_recovery", log_recovery::run),
    ("segment_bytes", segment_bytes::run),
    ("record_batch", record_batch::run),
    ("kafka_request", kafka_request::run),
    ("produce_batches", produce_batches::run),
    ("group_member_metadata", group_member_metadata::run),
];
