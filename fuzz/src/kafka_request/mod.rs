//! `kafka_request`: arbitrary request frames through the server's frame,
//! header and body decoding (`net::frame`, `protocol::request::parse`) and,
//! when a frame decodes, through `handlers::handle` to a broker holding a
//! few topics, then the response through `protocol::response::encode`
//! (and `encode_frame`, as the connection writes it, to the same bytes).
//! No socket: the frames are handled one after another, as a connection
//! would handle them if each request finished before the next was read.
//!
//! Input: a mode byte, then the frames.
//!
//! - bit 0 clear: the rest is one frame body (no length prefix), handed to
//!   `parse` as is (whatever its length);
//! - bit 0 set: the rest is a connection's byte stream, length-prefixed
//!   frames read with the server's `read_prefix`/`body_length`/`BodyPool`
//!   until the stream ends or a frame is refused (where the connection would
//!   close), at most `FRAMES_MAX` frames;
//! - bit 1 set: the broker does not auto-create topics;
//! - bit 2 set: the record batches of a decoded Produce get their CRCs
//!   recomputed before the handler sees them, so that mutated batches reach
//!   the engine's checks past the CRC (timestamps, offsets, counts,
//!   producer ids and sequences, attributes) as a client could send them.
//!
//! Checked, for every frame:
//!
//! - nothing panics, no single allocation exceeds `alloc::ALLOC_BYTES_MAX`,
//!   no handler hangs (tokio's clock is paused, so a handler that can never
//!   finish trips a timeout at once, and long polls end at once);
//! - the decoded header's correlation id is the one on the wire (bytes
//!   4..8); every response encodes, its length prefix is right, it carries
//!   that correlation id (also the ApiVersions fallback answer to an unknown
//!   version), decodes back with kafka-protocol to its end, and
//!   re-encodes to the same bytes; its shape matches the request (one answer
//!   per topic and partition asked for);
//! - nothing stored changes (the data directory's files, the broker's
//!   topics, its partitions' log start and end offsets and high watermarks)
//!   unless the request succeeded at a change: a successful produce changes
//!   its own partitions only, a successful CreateTopics (not validate_only),
//!   DeleteTopics or auto-creating Metadata the topics it names only (and a
//!   delete the offset checkpoints, which it rewrites), a
//!   successful InitProducerId the metadata file's producer id reservation
//!   only; the persisted metadata always equals the broker's view;
//! - fetched records are whole valid batches below the high watermark;
//!   listed offsets lie in [log start, high watermark].
//!
//! The broker runs on `StdDisk` in a fresh directory per run, under
//! /dev/shm (tmpfs: memory) when it exists, with a `ManualClock` and
//! `SeededEntropy`. It cannot run on `MemDisk`: the handlers take the
//! server's broker type, `Broker<MeteredDisk>`, whose disk wraps `AnyDisk`
//! (io_uring or std), so only a real file system fits under them.
//!
//! The harness, by file:
//!
//! - `describe`: an input decoded into its mode and frames, for
//!   `examples/show.rs`;
//! - `fixture`: the broker under test (its data directory, topics and
//!   batches) and snapshots of what it stores;
//! - `serve`: a connection's read loop, one frame through parsing, the
//!   handler and the checks, and the Produce CRC fix-up;
//! - `asked`: the request's shape, kept before the handler consumes it;
//! - `allowed`: the changes a response allows;
//! - `checks`: the header, the response's encoding, shape and values, and
//!   what changed in storage;
//! - `seeds`: request frames and inputs built for the seed corpus.
//!
//! Here: the mode bits and fixture constants, `run`, and the per-thread
//! tokio runtime with its clock paused.

mod allowed;
mod asked;
mod checks;
mod describe;
mod fixture;
mod seeds;
mod serve;

pub use describe::describe;
pub use seeds::{request_frame, seed_batch, single, stream};
pub use serve::fix_crcs;

use bytes::Bytes;
use fixture::Fixture;
use ringtail_server::protocol::header::REQUEST_HEADER_BYTES_MIN;
use ringtail_server::protocol::request::parse;
use std::time::Duration;

/// Mode bit: the input is a length-prefixed stream, not one frame body.
pub const MODE_STREAM: u8 = 1;
/// Mode bit: the broker does not auto-create topics.
pub const MODE_NO_AUTO_CREATE: u8 = 2;
/// Mode bit: Produce record batches get valid CRCs.
pub const MODE_FIX_CRC: u8 = 4;
/// Frames handled from one stream.
pub const FRAMES_MAX: usize = 64;

pub const T0: i64 = 1_700_000_000_000;
const SEED: u64 = 0x5eed_ca7a;
pub const NODE_ID: i32 = 1;
/// Virtual time (tokio's clock is paused) after which a handler is declared
/// hung: nothing legitimate waits longer than a long poll.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(3600);

/// A fixture topic: name, partitions, configs.
pub type TopicSpec = (&'static str, u32, &'static [(&'static str, &'static str)]);

/// The fixture's topics. `t-0` holds three batches of 1, 2 and 1 records
/// (offsets 0..4, timestamps T0 - 10 s, - 9 s, - 8 s); the others are empty.
pub const FIXTURE_TOPICS: [TopicSpec; 2] =
    [("t", 2, &[]), ("u", 1, &[("segment.bytes", "1024"), ("retention.ms", "60000")])];

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & MODE_STREAM == 0 && rest.len() < REQUEST_HEADER_BYTES_MIN {
        // `parse` refuses it before anything else: no broker needed.
        assert!(parse(Bytes::copy_from_slice(rest), usize::MAX).is_err(), "a short frame parsed");
        return;
    }
    block_on(async {
        let mut fixture = Fixture::open(mode & MODE_NO_AUTO_CREATE == 0).await;
        fixture.fix_crc = mode & MODE_FIX_CRC != 0;
        if mode & MODE_STREAM == 0 {
            fixture.serve(Bytes::copy_from_slice(rest)).await;
        } else {
            fixture.serve_stream(rest).await;
        }
    });
}

thread_local! {
    static VERBOSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `run`, printing each reply (for `examples/show.rs`).
pub fn run_verbose(data: &[u8]) {
    VERBOSE.with(|v| v.set(true));
    run(data);
    VERBOSE.with(|v| v.set(false));
}

thread_local! {
    /// One runtime per thread, built once: a current-thread runtime whose
    /// clock is paused, so that timers fire as soon as nothing else can run.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(future))
}
