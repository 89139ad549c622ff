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

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use ringtail_engine::broker::metadata::{ClusterMetadata, METADATA_FILE};
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Acks, Broker, BrokerConfig, BrokerEndpoint, TopicState};
use ringtail_engine::clock::ManualClock;
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::{AnyDisk, StdDisk};
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::checkpoint::{LOG_START_FILE, RECOVERY_POINT_FILE};
use ringtail_engine::log::records::BatchBuilder;
use ringtail_engine::log::{LogConfig, TopicPartition};
use ringtail_server::handlers::{self, Context, Reply};
use ringtail_server::limits::Limits;
use ringtail_server::metered_disk::{MeteredDisk, ServerBroker};
use ringtail_server::metrics::Metrics;
use ringtail_server::net::body_pool::BodyPool;
use ringtail_server::net::frame::{body_length, read_prefix};
use ringtail_server::protocol::header::REQUEST_HEADER_BYTES_MIN;
use ringtail_server::protocol::request::{parse, Parsed, Request};
use ringtail_server::protocol::response;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

/// `data` as a list of frames, for `examples/show.rs`.
pub fn describe(data: &[u8]) -> String {
    let Some((&mode, rest)) = data.split_first() else { return "empty input".into() };
    let limits = Limits::default();
    let mut out = format!("mode {mode:#04x}\n");
    let frames: Vec<Bytes> = if mode & MODE_STREAM == 0 {
        vec![Bytes::copy_from_slice(rest)]
    } else {
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some(prefix) = rest.get(at..at + 4) {
            let len = body_length(prefix.try_into().unwrap(), limits.frame_size_bytes_max);
            match len {
                Ok(len) if at + 4 + len <= rest.len() => {
                    frames.push(Bytes::copy_from_slice(&rest[at + 4..at + 4 + len]));
                    at += 4 + len;
                }
                Ok(len) => {
                    out += &format!("frame of {len} bytes, {} left: truncated\n", rest.len() - at - 4);
                    break;
                }
                Err(e) => {
                    out += &format!("refused frame: {e}\n");
                    break;
                }
            }
        }
        frames
    };
    for frame in frames {
        match parse(frame, limits.request_array_elements_max) {
            Ok(Parsed::Request(r)) => out += &format!("{:?} {:?}\n", r.header, r.body),
            Ok(other) => out += &format!("{other:?}\n"),
            Err(e) => out += &format!("refused: {e}\n"),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Runtime

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

// ---------------------------------------------------------------------------
// The broker

struct Fixture {
    dir: PathBuf,
    broker: Arc<ServerBroker>,
    ctx: Context,
    auto_create: bool,
    fix_crc: bool,
    /// Kept so that the handlers never see a shutdown.
    _shutdown: tokio::sync::watch::Sender<bool>,
}

/// This thread's data directory: the same path every run, so that messages
/// that name it are the same too.
fn run_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static DIR: PathBuf = {
            let shm = Path::new("/dev/shm");
            let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
            let n = THREADS.fetch_add(1, Ordering::Relaxed);
            base.join(format!("ringtail-fuzz-kafka-request-{}-{n}", std::process::id()))
        };
    }
    DIR.with(Clone::clone)
}

impl Fixture {
    async fn open(auto_create: bool) -> Fixture {
        let dir = run_dir();
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing {}: {e}", dir.display()),
        }
        std::fs::create_dir_all(&dir).expect("create the data directory");
        let metrics = Metrics::new("std");
        let disk = MeteredDisk::new(AnyDisk::Std(StdDisk::new()), metrics.clone());
        let config = BrokerConfig {
            node_id: NODE_ID,
            advertised: BrokerEndpoint { node_id: NODE_ID, host: "localhost".into(), port: 9092 },
            default_partitions: 1,
            default_replication_factor: None,
            auto_create_topics: auto_create,
            topic_defaults: LogConfig::default(),
            group: ringtail_engine::group::GroupConfig::default(),
            log_cache_bytes: 1 << 20,
        };
        let (broker, _) = Broker::open(
            Arc::new(disk),
            dir.clone(),
            config,
            Arc::new(ManualClock::new(T0)),
            Arc::new(SeededEntropy::new(SEED)),
        )
        .await
        .expect("open the broker");
        for (name, partitions, configs) in FIXTURE_TOPICS {
            let configs = configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let request = CreateTopic {
                name: name.into(),
                partitions: Some(partitions),
                replication_factor: None,
                configs,
            };
            broker.create_topic(request, false).await.expect("create a fixture topic");
        }
        let partition = broker.leader_partition("t", 0).expect("t-0");
        for i in 0..3 {
            partition.produce(fixture_batch(i), Acks::All).await.expect("fixture produce");
        }
        let broker = Arc::new(broker);
        let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let ctx = Context { broker: broker.clone(), metrics, limits: Limits::default(), shutdown };
        Fixture { dir, broker, ctx, auto_create, fix_crc: false, _shutdown: shutdown_tx }
    }

    /// A connection's read loop over `stream`, one request at a time.
    async fn serve_stream(&self, stream: &[u8]) {
        let limits = self.ctx.limits;
        let mut reader = stream;
        let bodies = BodyPool::new(0);
        for _ in 0..FRAMES_MAX {
            let prefix = match read_prefix(&mut reader).await {
                Ok(Some(prefix)) => prefix,
                Ok(None) | Err(_) => return,
            };
            let Ok(len) = body_length(prefix, limits.frame_size_bytes_max) else { return };
            if len > reader.len() {
                // The connection would wait for the rest, then close at the
                // end of the stream. (`BodyPool::read` reserves the announced
                // length first, by design, up to `frame_size_bytes_max`:
                // 100 MiB, above the fuzz allocation bound.)
                return;
            }
            let body = bodies.read(&mut reader, len).await.expect("a frame within the stream reads");
            assert_eq!(body.len(), len, "BodyPool::read returned another length than announced");
            if !self.serve(body).await {
                return;
            }
        }
    }

    /// One frame. Returns whether the connection would read on.
    async fn serve(&self, frame: Bytes) -> bool {
        // The correlation id as the client wrote it: bytes 4..8 in every
        // header version.
        let wire_id = frame.get(4..8).map(|b| i32::from_be_bytes(b.try_into().unwrap()));
        let request = match parse(frame, self.ctx.limits.request_array_elements_max) {
            Err(_) => return false,
            Ok(Parsed::ApiVersionsUnsupported { correlation_id }) => {
                assert_eq!(Some(correlation_id), wire_id, "fallback answer to another correlation id");
                let body = ResponseKind::ApiVersions(handlers::api_versions::unsupported_version());
                check_encoding(ApiKey::ApiVersions, 0, correlation_id, &body);
                return true;
            }
            Ok(Parsed::Request(request)) => request,
        };
        let mut request = request;
        if let (true, RequestKind::Produce(r)) = (self.fix_crc, &mut request.body) {
            for p in r.topic_data.iter_mut().flat_map(|t| t.partition_data.iter_mut()) {
                p.records = p.records.as_ref().map(|b| fix_crcs(b));
            }
        }
        check_header(&request);
        let (api_key, version) = (request.api_key, request.version());
        let correlation_id = request.header.correlation_id;
        assert_eq!(Some(correlation_id), wire_id, "the decoded header has another correlation id");
        let asked = Asked::of(&request);
        let before = self.snapshot().await;
        let reply = tokio::time::timeout(HANDLER_TIMEOUT, handlers::handle(&self.ctx, request))
            .await
            .unwrap_or_else(|_| panic!("{api_key:?} v{version} handler did not finish"));
        let after = self.snapshot().await;
        if VERBOSE.with(|v| v.get()) {
            println!("{api_key:?} v{version} -> {reply:?}");
        }
        let (allowed, go_on) = match &reply {
            Reply::Respond(body) => {
                check_encoding(api_key, version, correlation_id, body);
                check_shape(&asked, body);
                (self.allowed(&asked, body, version, &before, &after), true)
            }
            Reply::Nothing | Reply::Close(_) => {
                let Asked::Produce { acks: 0, partitions, .. } = &asked else {
                    panic!(
                        "{api_key:?} v{version} answered {reply:?}: only an acks=0 produce goes unanswered"
                    )
                };
                // Which partitions failed is not told: any may have changed.
                let allowed =
                    Allowed { produced: partitions.iter().cloned().collect(), ..Allowed::default() };
                (allowed, matches!(reply, Reply::Nothing))
            }
        };
        check_changes(&asked, &allowed, &before, &after);
        go_on
    }

    async fn snapshot(&self) -> Snapshot {
        let mut files = BTreeMap::new();
        read_tree(&self.dir, &self.dir, &mut files);
        let persisted = ClusterMetadata::load(&StdDisk::new(), &self.dir).await.expect("metadata file loads");
        let partitions = self
            .broker
            .hosted_partitions()
            .into_iter()
            .map(|p| {
                let offsets = (p.log.log_start_offset(), p.log.log_end_offset(), p.high_watermark());
                (p.tp.clone(), offsets)
            })
            .collect();
        Snapshot { files, topics: self.broker.topics(), persisted, partitions }
    }

    /// What the response says was changed.
    fn allowed(
        &self,
        asked: &Asked,
        body: &ResponseKind,
        version: i16,
        before: &Snapshot,
        after: &Snapshot,
    ) -> Allowed {
        check_values(body, version, after);
        let mut allowed = Allowed::default();
        match body {
            ResponseKind::Produce(r) => {
                for t in &r.responses {
                    for p in t.partition_responses.iter().filter(|p| p.error_code == 0) {
                        allowed.produced.insert(TopicPartition::new(t.name.as_str(), p.index));
                    }
                }
            }
            ResponseKind::CreateTopics(r) => {
                let Asked::CreateTopics { validate_only, .. } = asked else { unreachable!() };
                for t in r.topics.iter().filter(|t| t.error_code == 0) {
                    let name = t.name.to_string();
                    if *validate_only {
                        assert!(!after.topics.contains_key(&name), "validate_only created topic {name}");
                    } else {
                        allowed.created.insert(name);
                    }
                }
            }
            ResponseKind::DeleteTopics(r) => {
                for t in r.responses.iter().filter(|t| t.error_code == 0) {
                    let name = t.name.as_ref().expect("a deleted topic is named in the answer").to_string();
                    allowed.deleted.insert(name);
                }
            }
            ResponseKind::Metadata(r) => {
                let Asked::Metadata { may_create, .. } = asked else { unreachable!() };
                for t in r.topics.iter().filter(|t| t.error_code == 0) {
                    let Some(name) = &t.name else { continue };
                    let name = name.to_string();
                    if !before.topics.contains_key(&name) {
                        assert!(
                            *may_create && self.auto_create,
                            "Metadata v{version} created topic {name} (auto-create {}, request allows {may_create})",
                            self.auto_create
                        );
                        allowed.created.insert(name);
                    }
                }
            }
            ResponseKind::InitProducerId(r) => allowed.producer_ids = r.error_code == 0,
            _ => {}
        }
        allowed
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `records` with the CRC of each v2 batch header found in it (walking by
/// the batch lengths) recomputed; the rest as it is.
pub fn fix_crcs(records: &[u8]) -> Bytes {
    let mut out = records.to_vec();
    let mut at = 0;
    while let Some(header) = out.get(at..at + 21) {
        let len = i32::from_be_bytes(header[8..12].try_into().unwrap());
        let Some(end) = usize::try_from(len).ok().and_then(|l| (at + 12).checked_add(l)) else { break };
        if header[16] != 2 || end > out.len() || end < at + 21 {
            break;
        }
        let crc = crc32c::crc32c(&out[at + 21..end]);
        out[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
    Bytes::from(out)
}

/// A batch of the fixture's `t-0`: 1-2 records 1 s apart.
fn fixture_batch(i: i64) -> Bytes {
    let mut b = BatchBuilder::new(0, T0 - 10_000 + i * 1000);
    for r in 0..=i % 2 {
        let value = Bytes::from(format!("value-{i}-{r}"));
        b.push(Some(Bytes::from(format!("key-{i}"))), Some(value), T0 - 10_000 + i * 1000 + r * 10);
    }
    b.build()
}

fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("list the data directory")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            out.insert(name, None);
            read_tree(root, &path, out);
        } else {
            out.insert(name, Some(std::fs::read(&path).expect("read a data file")));
        }
    }
}

// ---------------------------------------------------------------------------
// Checks

/// What is stored, before and after a request.
struct Snapshot {
    /// Every file (contents) and directory (`None`) under the data
    /// directory, by relative path.
    files: BTreeMap<String, Option<Vec<u8>>>,
    topics: BTreeMap<String, TopicState>,
    persisted: Option<ClusterMetadata>,
    /// Hosted partitions: (log start, log end, high watermark).
    partitions: BTreeMap<TopicPartition, (u64, u64, u64)>,
}

/// The changes a request's outcome allows.
#[derive(Default, Debug)]
struct Allowed {
    produced: BTreeSet<TopicPartition>,
    created: BTreeSet<String>,
    deleted: BTreeSet<String>,
    producer_ids: bool,
}

/// The request's shape, kept before the handler consumes it.
#[derive(Debug)]
enum Asked {
    Produce {
        acks: i16,
        partitions: Vec<TopicPartition>,
        shape: Vec<usize>,
    },
    Fetch {
        shape: Vec<usize>,
    },
    ListOffsets {
        shape: Vec<usize>,
    },
    /// `topics`: the answers due, `None` for all topics.
    Metadata {
        topics: Option<usize>,
        may_create: bool,
    },
    CreateTopics {
        count: usize,
        validate_only: bool,
    },
    DeleteTopics {
        count: usize,
    },
    DescribeConfigs {
        count: usize,
    },
    OffsetForLeaderEpoch {
        shape: Vec<usize>,
    },
    Other,
}

/// `[topics, partitions of the first, partitions of the second, ...]`.
fn shape<T>(topics: &[T], partitions: impl Fn(&T) -> usize) -> Vec<usize> {
    std::iter::once(topics.len()).chain(topics.iter().map(partitions)).collect()
}

impl Asked {
    fn of(request: &Request) -> Asked {
        let version = request.version();
        match &request.body {
            RequestKind::Produce(r) => Asked::Produce {
                acks: r.acks,
                partitions: r
                    .topic_data
                    .iter()
                    .flat_map(|t| {
                        t.partition_data.iter().map(|p| TopicPartition::new(t.name.as_str(), p.index))
                    })
                    .collect(),
                shape: shape(&r.topic_data, |t| t.partition_data.len()),
            },
            RequestKind::Fetch(r) => Asked::Fetch { shape: shape(&r.topics, |t| t.partitions.len()) },
            RequestKind::ListOffsets(r) => {
                Asked::ListOffsets { shape: shape(&r.topics, |t| t.partitions.len()) }
            }
            RequestKind::Metadata(r) => Asked::Metadata {
                topics: match &r.topics {
                    Some(list) if !(version == 0 && list.is_empty()) => Some(list.len()),
                    _ => None,
                },
                may_create: version < 4 || r.allow_auto_topic_creation,
            },
            RequestKind::CreateTopics(r) => {
                Asked::CreateTopics { count: r.topics.len(), validate_only: r.validate_only }
            }
            RequestKind::DeleteTopics(r) => {
                Asked::DeleteTopics { count: if version >= 6 { r.topics.len() } else { r.topic_names.len() } }
            }
            RequestKind::DescribeConfigs(r) => Asked::DescribeConfigs { count: r.resources.len() },
            RequestKind::OffsetForLeaderEpoch(r) => {
                Asked::OffsetForLeaderEpoch { shape: shape(&r.topics, |t| t.partitions.len()) }
            }
            _ => Asked::Other,
        }
    }
}

/// The decoded header agrees with the prefix `parse` read by hand.
fn check_header(request: &Request) {
    assert_eq!(request.header.request_api_key, request.api_key as i16, "header api key");
    assert!(
        ringtail_server::protocol::versions::is_supported(request.api_key, request.version()),
        "{:?} v{} was decoded, but is not implemented",
        request.api_key,
        request.version()
    );
}

/// The response encodes into a frame with the request's correlation id,
/// decodes back to its end, and re-encodes to the same bytes.
fn check_encoding(api_key: ApiKey, version: i16, correlation_id: i32, body: &ResponseKind) {
    let frame = response::encode(api_key, version, correlation_id, body)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response does not encode: {e}\n{body:?}"));
    assert!(frame.len() >= 8, "{api_key:?} v{version} response frame of {} bytes", frame.len());
    // What the connection writes (a Fetch response in segments, its records
    // not copied) is the same bytes.
    let written = response::encode_frame(api_key, version, correlation_id, body)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response does not encode as written: {e}"));
    assert_eq!(written.len(), frame.len(), "{api_key:?} v{version} written frame length");
    assert_eq!(written.to_bytes(), frame, "{api_key:?} v{version} written frame differs");
    let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(len as usize, frame.len() - 4, "{api_key:?} v{version} response length prefix");
    assert_eq!(
        i32::from_be_bytes(frame[4..8].try_into().unwrap()),
        correlation_id,
        "{api_key:?} v{version} response carries another correlation id"
    );
    let mut buf = frame.slice(4..);
    let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(version))
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response header does not decode: {e}"));
    assert_eq!(header.correlation_id, correlation_id, "{api_key:?} v{version} decoded correlation id");
    let body_bytes = buf.clone();
    let decoded = ResponseKind::decode(api_key, &mut buf, version)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response does not decode: {e}\n{body:?}"));
    assert!(buf.is_empty(), "{api_key:?} v{version} response: {} bytes after the body", buf.len());
    let mut again = BytesMut::new();
    decoded.encode(&mut again, version).expect("a decoded response re-encodes");
    assert_eq!(&again[..], &body_bytes[..], "{api_key:?} v{version} response does not round-trip");
}

/// One answer per topic and partition asked for; fetched records are whole
/// valid batches below the high watermark.
fn check_shape(asked: &Asked, body: &ResponseKind) {
    match (asked, body) {
        (Asked::Produce { shape: s, .. }, ResponseKind::Produce(r)) => {
            assert_eq!(&shape(&r.responses, |t| t.partition_responses.len()), s, "produce answer shape");
        }
        (Asked::Fetch { shape: s }, ResponseKind::Fetch(r)) => {
            if r.error_code != 0 {
                assert!(r.responses.is_empty(), "a failed fetch answered partitions");
                return;
            }
            assert_eq!(&shape(&r.responses, |t| t.partitions.len()), s, "fetch answer shape");
            for p in r.responses.iter().flat_map(|t| &t.partitions) {
                let records = p.records.as_deref().unwrap_or_default();
                if p.error_code != 0 {
                    assert!(records.is_empty(), "a failed fetch partition returned records");
                    continue;
                }
                for item in BatchScanner::new(records) {
                    let (at, h) =
                        item.unwrap_or_else(|(at, e)| panic!("fetched records invalid at {at}: {e}"));
                    assert!(
                        h.next_offset() as i64 <= p.high_watermark,
                        "fetched batch at {at} ends at {} past the high watermark {}",
                        h.next_offset(),
                        p.high_watermark
                    );
                }
            }
        }
        (Asked::ListOffsets { shape: s }, ResponseKind::ListOffsets(r)) => {
            assert_eq!(&shape(&r.topics, |t| t.partitions.len()), s, "list offsets answer shape");
        }
        (Asked::Metadata { topics, .. }, ResponseKind::Metadata(r)) => {
            if let Some(n) = topics {
                assert_eq!(r.topics.len(), *n, "metadata answers {} topics for {n} asked", r.topics.len());
            }
        }
        (Asked::CreateTopics { count, .. }, ResponseKind::CreateTopics(r)) => {
            assert_eq!(r.topics.len(), *count, "create topics answer count");
        }
        (Asked::DeleteTopics { count }, ResponseKind::DeleteTopics(r)) => {
            assert_eq!(r.responses.len(), *count, "delete topics answer count");
        }
        (Asked::DescribeConfigs { count }, ResponseKind::DescribeConfigs(r)) => {
            assert_eq!(r.results.len(), *count, "describe configs answer count");
        }
        (Asked::OffsetForLeaderEpoch { shape: s }, ResponseKind::OffsetForLeaderEpoch(r)) => {
            assert_eq!(&shape(&r.topics, |t| t.partitions.len()), s, "offset for leader epoch answer shape");
        }
        (Asked::Other, _) => {}
        (asked, body) => panic!("a {asked:?} request answered with {body:?}"),
    }
}

/// Offsets answered agree with the partitions' state after the request.
fn check_values(body: &ResponseKind, version: i16, after: &Snapshot) {
    let state = |topic: &str, index: i32| {
        let tp = TopicPartition::new(topic, index);
        match after.partitions.get(&tp) {
            Some(&offsets) => (tp, offsets),
            None => panic!("{tp} answered without an error, but no such partition is hosted"),
        }
    };
    match body {
        ResponseKind::Produce(r) => {
            for t in &r.responses {
                for p in t.partition_responses.iter().filter(|p| p.error_code == 0) {
                    let (tp, (start, end, _)) = state(t.name.as_str(), p.index);
                    assert!(
                        p.base_offset >= 0 && (p.base_offset as u64) < end,
                        "produce to {tp} answered base offset {} with the log end at {end}",
                        p.base_offset
                    );
                    if version >= 5 {
                        assert_eq!(p.log_start_offset, start as i64, "produce to {tp}: log start offset");
                    }
                }
            }
        }
        ResponseKind::ListOffsets(r) => {
            for t in &r.topics {
                for p in t.partitions.iter().filter(|p| p.error_code == 0) {
                    let (tp, (start, _, hw)) = state(t.name.as_str(), p.partition_index);
                    assert!(
                        p.offset == -1 || (start as i64..=hw as i64).contains(&p.offset),
                        "list offsets of {tp} answered {} outside [{start}, {hw}]",
                        p.offset
                    );
                }
            }
        }
        _ => {}
    }
}

/// Nothing stored changed but what `allowed` allows.
fn check_changes(asked: &Asked, allowed: &Allowed, before: &Snapshot, after: &Snapshot) {
    let context = || format!("request {asked:?}, allowed changes {allowed:?}");
    // Topics: exactly those created appear, those deleted go.
    for name in before.topics.keys().chain(after.topics.keys()) {
        let (was, is) = (before.topics.get(name), after.topics.get(name));
        if allowed.created.contains(name) {
            assert!(was.is_none() && is.is_some(), "topic {name} reported created; {}", context());
        } else if allowed.deleted.contains(name) {
            assert!(was.is_some() && is.is_none(), "topic {name} reported deleted; {}", context());
        } else {
            assert_eq!(was, is, "topic {name} changed; {}", context());
        }
    }
    // The persisted metadata is what the broker shows.
    let persisted = after.persisted.as_ref().expect("the metadata file exists");
    assert_eq!(persisted.topics, after.topics, "persisted topics differ from the broker's; {}", context());
    let was = before.persisted.as_ref().expect("the metadata file exists");
    assert_eq!(persisted.cluster_id, was.cluster_id, "the cluster id changed");
    if allowed.producer_ids {
        assert!(persisted.next_producer_id >= was.next_producer_id, "the producer id reservation went back");
    } else {
        assert_eq!(persisted.next_producer_id, was.next_producer_id, "producer ids reserved; {}", context());
    }
    // Hosted partitions: those of the topics, offsets moved by produce only.
    let hosted: BTreeSet<&TopicPartition> = after.partitions.keys().collect();
    let assigned: Vec<TopicPartition> = after
        .topics
        .iter()
        .flat_map(|(name, t)| (0..t.partitions.len()).map(move |i| TopicPartition::new(name, i as i32)))
        .collect();
    assert_eq!(hosted, assigned.iter().collect(), "hosted partitions differ from the topics'; {}", context());
    for (tp, &now) in &after.partitions {
        match before.partitions.get(tp) {
            None => assert!(allowed.created.contains(&tp.topic), "partition {tp} appeared; {}", context()),
            Some(&was) if allowed.produced.contains(tp) => {
                assert_eq!(now.0, was.0, "produce moved the log start of {tp}");
                assert!(now.1 >= was.1 && now.2 >= was.2, "{tp} went back from {was:?} to {now:?}");
            }
            Some(&was) if !allowed.created.contains(&tp.topic) => {
                assert_eq!(now, was, "{tp} (log start, end, high watermark) changed; {}", context());
            }
            Some(_) => {}
        }
    }
    // Files: each change is explained.
    let paths: BTreeSet<&String> = before.files.keys().chain(after.files.keys()).collect();
    for path in paths {
        if before.files.get(path) == after.files.get(path) {
            continue;
        }
        let first = path.split('/').next().unwrap();
        let explained = if first == METADATA_FILE {
            // Its contents were compared above.
            !allowed.created.is_empty() || !allowed.deleted.is_empty() || allowed.producer_ids
        } else if first == RECOVERY_POINT_FILE || first == LOG_START_FILE {
            // Deleting a log writes the checkpoints of all.
            !allowed.deleted.is_empty()
        } else if let Some(tp) = TopicPartition::from_dir_name(first) {
            allowed.produced.contains(&tp)
                || allowed.created.contains(&tp.topic)
                || allowed.deleted.contains(&tp.topic)
        } else {
            false
        };
        let how = match (before.files.get(path), after.files.get(path)) {
            (None, _) => "appeared",
            (_, None) => "disappeared",
            _ => "changed",
        };
        assert!(explained, "{path} {how}; {}", context());
    }
}

// ---------------------------------------------------------------------------
// Seeds

/// A request frame (no length prefix): header with client id "fuzz", then
/// the body, as `version` of `api_key`.
pub fn request_frame<T: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, api_key.request_header_version(version))
        .expect("encode a request header");
    body.encode(&mut buf, version).expect("encode a request body");
    buf.to_vec()
}

/// An input of one frame body.
pub fn single(frame: &[u8], mode: u8) -> Vec<u8> {
    [&[mode & !MODE_STREAM][..], frame].concat()
}

/// An input of a stream of length-prefixed frames.
pub fn stream(frames: &[Vec<u8>], mode: u8) -> Vec<u8> {
    let mut out = vec![mode | MODE_STREAM];
    for f in frames {
        out.put_i32(f.len() as i32);
        out.extend_from_slice(f);
    }
    out
}

/// A valid batch for seeds: `records` records.
pub fn seed_batch(records: i64) -> Bytes {
    let mut b = BatchBuilder::new(0, T0);
    for r in 0..records {
        b.push(Some(Bytes::from(format!("k{r}"))), Some(Bytes::from(format!("v{r}"))), T0 + r);
    }
    b.build()
}
