//! Malformed input: each case sends something no correct client would,
//! then checks that the server answered or closed that connection (never
//! crashed), that a fresh client still gets a correct ApiVersions answer,
//! and that stored data is untouched.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use ringtail_server::protocol::versions::SUPPORTED;
use server_support::{batch, data_dir, request_frame, Client};
use std::net::SocketAddr;

/// Frames of the randomized case; each on its own connection.
const RANDOM_FRAMES: usize = 300;
/// Largest random frame body.
const RANDOM_FRAME_BYTES_MAX: usize = 600;

async fn assert_healthy(addr: SocketAddr) {
    let mut client = Client::connect(addr).await;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("probe"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let response = client.call(3, &request).await;
    assert_eq!(response.error_code, 0);
    assert_eq!(response.api_keys.len(), SUPPORTED.len());
}

/// Sends `bytes` on a fresh connection and waits until the server answers
/// (the garbage happened to decode) or closes the connection.
async fn send_and_expect_close_or_answer(addr: SocketAddr, bytes: &[u8]) {
    let mut client = Client::connect(addr).await;
    client.send_raw(bytes).await;
    let _ = client.read_frame().await;
}

/// A server whose long polls end quickly: garbage that decodes as a Fetch
/// may ask for a long wait.
async fn start_server(dir: &std::path::Path) -> ringtail_server::serve::RunningServer {
    let mut config = server_support::config(dir);
    config.limits.fetch_wait_ms_max = 50;
    ringtail_server::serve::start(config).await.unwrap()
}

async fn send_and_expect_close(addr: SocketAddr, bytes: &[u8]) {
    let mut client = Client::connect(addr).await;
    client.send_raw(bytes).await;
    assert!(client.read_frame().await.is_none(), "server answered {bytes:02x?}");
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// A seeded xorshift64*: the same frames on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A topic with known contents, to check nothing malformed changed it.
async fn seed_topic(addr: SocketAddr) -> bytes::Bytes {
    let mut client = Client::connect(addr).await;
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("keep")))
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
    let records = batch(5, "keep");
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("keep")))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records.clone()))]),
    ]);
    assert_eq!(client.call(9, &produce).await.responses[0].partition_responses[0].error_code, 0);
    records
}

async fn assert_topic_intact(addr: SocketAddr, records: &bytes::Bytes) {
    let mut client = Client::connect(addr).await;
    let request = FetchRequest::default().with_max_bytes(1 << 20).with_session_epoch(-1).with_topics(vec![
        fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("keep")))
            .with_partitions(
                vec![fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)],
            ),
    ]);
    let response = client.call(12, &request).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 5);
    assert_eq!(p.records.as_ref().unwrap(), records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lengths_close_the_connection() {
    let dir = data_dir("bad-lengths");
    let server = start_server(dir.path()).await;
    let addr = server.kafka_addr;
    // Negative lengths.
    send_and_expect_close(addr, &(-1i32).to_be_bytes()).await;
    send_and_expect_close(addr, &i32::MIN.to_be_bytes()).await;
    // Oversized: refused from the prefix alone, nothing buffered.
    send_and_expect_close(addr, &(100 * 1024 * 1024 + 1i32).to_be_bytes()).await;
    send_and_expect_close(addr, &i32::MAX.to_be_bytes()).await;
    // Frames of 0 to 7 bytes cannot hold a request header.
    for len in 0..8usize {
        send_and_expect_close(addr, &framed(&vec![0x00; len])).await;
        send_and_expect_close(addr, &framed(&vec![0xff; len])).await;
    }
    assert_healthy(addr).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_are_dropped_with_the_connection() {
    let dir = data_dir("truncated");
    let server = start_server(dir.path()).await;
    let addr = server.kafka_addr;
    let whole = request_frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    for cut in [1, 2, 3, 4, 5, 9, whole.len() - 1] {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        tokio::io::AsyncWriteExt::write_all(&mut write, &whole[..cut]).await.unwrap();
        // The client hangs up mid-frame.
        tokio::io::AsyncWriteExt::shutdown(&mut write).await.unwrap();
        let mut rest = Vec::new();
        let read_all = tokio::io::AsyncReadExt::read_to_end(&mut read, &mut rest);
        let n = tokio::time::timeout(server_support::STEP_TIMEOUT, read_all).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0, "answered a truncated frame cut at {cut}");
    }
    assert_healthy(addr).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_apis_versions_and_bodies_close_the_connection() {
    let dir = data_dir("unknown");
    let server = start_server(dir.path()).await;
    let addr = server.kafka_addr;
    let records = seed_topic(addr).await;
    // An API key nobody defines, and ones we do not implement.
    send_and_expect_close(addr, &framed(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0, 0])).await;
    let end_txn = request_frame(ApiKey::EndTxn, 0, 1, &EndTxnRequest::default());
    send_and_expect_close(addr, &end_txn).await;
    // Versions outside our ranges.
    send_and_expect_close(addr, &request_frame(ApiKey::Produce, 12, 1, &ProduceRequest::default())).await;
    send_and_expect_close(addr, &request_frame(ApiKey::Fetch, 17, 1, &FetchRequest::default())).await;
    send_and_expect_close(addr, &framed(&[0, 3, 0xff, 0xff, 0, 0, 0, 1, 0, 0])).await;
    // A Metadata request declaring 2^31 - 1 topics in a few bytes: refused
    // before kafka-protocol would try to allocate for them.
    send_and_expect_close(addr, &with_body(ApiKey::Metadata, 0, &i32::MAX.to_be_bytes())).await;
    // The same in a flexible version: compact array count 2^32 - 2 as a
    // varint, then the two booleans and the tagged fields.
    let compact = [0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0, 0];
    send_and_expect_close(addr, &with_body(ApiKey::Metadata, 9, &compact)).await;
    // Nested: one Produce topic declaring 2^31 - 1 partitions.
    let mut produce = vec![0xff, 0xff, 0, 1, 0, 0, 0x13, 0x88, 0, 0, 0, 1, 0, 1, b't'];
    produce.extend_from_slice(&i32::MAX.to_be_bytes());
    send_and_expect_close(addr, &with_body(ApiKey::Produce, 3, &produce)).await;
    // A client id that is not UTF-8.
    send_and_expect_close(addr, &framed(&[0, 18, 0, 1, 0, 0, 0, 1, 0, 2, 0xff, 0xfe])).await;
    // 300,000 empty tagged fields (each a map entry once decoded), in the
    // header of a Metadata v9 request and then in its body: over the
    // request's element budget either way.
    let tags = |n: u32| {
        let mut out = vec![(n & 0x7f) as u8 | 0x80, ((n >> 7) & 0x7f) as u8 | 0x80, (n >> 14) as u8];
        (0..n).for_each(|i| out.extend_from_slice(&[(i % 100) as u8 + 10, 0]));
        out
    };
    let header = |n: u32| [vec![0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff], tags(n)].concat();
    let body = |n: u32| [vec![1, 1, 0, 0], tags(n)].concat();
    send_and_expect_close(addr, &framed(&[header(300_000), body(0)].concat())).await;
    send_and_expect_close(addr, &framed(&[header(0), body(300_000)].concat())).await;
    // Within the budget the same request is answered.
    let mut client = Client::connect(addr).await;
    client.send_raw(&framed(&[header(100), body(100)].concat())).await;
    assert!(client.read_frame().await.is_some(), "a request with 200 tagged fields is answered");
    assert_healthy(addr).await;
    assert_topic_intact(addr, &records).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_a_valid_header_never_reaches_the_data() {
    let dir = data_dir("garbage");
    let server = start_server(dir.path()).await;
    let addr = server.kafka_addr;
    let records = seed_topic(addr).await;
    let mut rng = Rng(0x5eed_0001);
    for s in SUPPORTED {
        for version in [s.min, s.max] {
            // A valid header for this API and version, then garbage.
            let garbage: Vec<u8> = (0..1 + rng.below(64)).map(|_| rng.next() as u8).collect();
            send_and_expect_close_or_answer(addr, &with_body(s.key, version, &garbage)).await;
        }
    }
    assert_healthy(addr).await;
    assert_topic_intact(addr, &records).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_frames_never_bring_the_server_down() {
    let dir = data_dir("random");
    let server = start_server(dir.path()).await;
    let addr = server.kafka_addr;
    let records = seed_topic(addr).await;
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for i in 0..RANDOM_FRAMES {
        let len = rng.below(RANDOM_FRAME_BYTES_MAX);
        let mut body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Most frames get a supported API and version, so that the body
        // decoder (not just the header check) sees the garbage.
        if i % 4 != 0 && body.len() >= 4 {
            let s = SUPPORTED[rng.below(SUPPORTED.len())];
            let version = s.min + rng.below((s.max - s.min + 1) as usize) as i16;
            body[..2].copy_from_slice(&(s.key as i16).to_be_bytes());
            body[2..4].copy_from_slice(&version.to_be_bytes());
        }
        send_and_expect_close_or_answer(addr, &framed(&body)).await;
    }
    assert_healthy(addr).await;
    assert_topic_intact(addr, &records).await;
    server.shutdown().await.unwrap();
}

/// A valid request header of `api_key` and `version`, then `body`.
fn with_body(api_key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = request_frame(api_key, version, 1, &RequestHeaderOnly);
    frame.extend_from_slice(body);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame
}

/// An empty body: `request_frame` then writes just the header.
struct RequestHeaderOnly;

impl kafka_protocol::protocol::Encodable for RequestHeaderOnly {
    fn encode<B: kafka_protocol::protocol::buf::ByteBufMut>(&self, _: &mut B, _: i16) -> anyhow::Result<()> {
        Ok(())
    }

    fn compute_size(&self, _: i16) -> anyhow::Result<usize> {
        Ok(0)
    }
}
