//! The client against a fake broker on 127.0.0.1: version negotiation,
//! pipelining and response matching, frame limits, timeouts, acks=0,
//! re-routing after NOT_LEADER_OR_FOLLOWER, and fetch decoding.

mod cli_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cli_support::{
    all_api_ranges, api_versions_body, encode, metadata_body, read_request, response_frame,
    response_frame_with_id, FakeBroker, Reply,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use ringtail_client::{
    Acks, Client, ClientConfig, ClientError, Connection, FetchOptions, FetchPosition, ProducerRecord,
};
use ringtail_engine::log::batch::set_base_offset;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const API_VERSIONS: i16 = ApiKey::ApiVersions as i16;
const METADATA: i16 = ApiKey::Metadata as i16;
const PRODUCE: i16 = ApiKey::Produce as i16;
const FETCH: i16 = ApiKey::Fetch as i16;

fn quick_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(1),
        ..ClientConfig::default()
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// The client asks ApiVersions first, then uses for Metadata the highest
/// version both sides speak (the broker's 9 here, not the client's 13).
#[tokio::test]
async fn negotiates_the_highest_common_version() {
    let seen = Arc::new(AtomicUsize::new(0));
    let seen_in = Arc::clone(&seen);
    let broker = FakeBroker::start(move |header, _| match header.request_api_key {
        API_VERSIONS => {
            let mut ranges = all_api_ranges();
            ranges.retain(|r| r.0 != ApiKey::Metadata);
            ranges.push((ApiKey::Metadata, 0, 9));
            Reply::Body(api_versions_body(header.request_api_version, &ranges))
        }
        METADATA => {
            seen_in.store(header.request_api_version as usize, Ordering::SeqCst);
            Reply::Body(metadata_body(header.request_api_version, &[], &[]))
        }
        _ => Reply::Close,
    })
    .await;
    let connection = Connection::connect(&broker.addr, &quick_config()).await.expect("connects");
    assert_eq!(connection.version_for::<MetadataRequest>().expect("negotiated"), 9);
    assert_eq!(connection.version_for::<ProduceRequest>().expect("negotiated"), 12);
    connection.request(|_| MetadataRequest::default().with_topics(None)).await.expect("metadata");
    assert_eq!(seen.load(Ordering::SeqCst), 9);
}

/// A broker that does not know ApiVersions v4 answers UNSUPPORTED_VERSION
/// in a v0 body naming its range; the client asks again at that version.
#[tokio::test]
async fn api_versions_falls_back_to_an_older_broker() {
    let broker = FakeBroker::start(|header, _| {
        if header.request_api_key != API_VERSIONS {
            return Reply::Close;
        }
        let version = header.request_api_version;
        let mut ranges = all_api_ranges();
        ranges.retain(|r| r.0 != ApiKey::ApiVersions);
        ranges.push((ApiKey::ApiVersions, 0, 2));
        if version > 2 {
            let refusal = kafka_protocol::messages::ApiVersionsResponse::default()
                .with_error_code(35)
                .with_api_keys(vec![kafka_protocol::messages::api_versions_response::ApiVersion::default()
                    .with_api_key(API_VERSIONS)
                    .with_min_version(0)
                    .with_max_version(2)]);
            return Reply::Body(encode(&refusal, 0));
        }
        Reply::Body(api_versions_body(version, &ranges))
    })
    .await;
    let connection =
        Connection::connect(&broker.addr, &quick_config()).await.expect("connects after falling back");
    assert_eq!(connection.versions().broker_range(API_VERSIONS), Some((0, 2)));
}

/// Several requests are written before any response is read, and each
/// caller gets its own response back: the fake reads all five requests
/// first, then answers each with the topic its request named.
#[tokio::test]
async fn pipelined_requests_are_matched_in_order() {
    const REQUESTS: usize = 5;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let (header, _) = read_request(&mut stream).await.expect("ApiVersions");
        let body = api_versions_body(header.request_api_version, &all_api_ranges());
        stream.write_all(&response_frame(&header, &body)).await.expect("write");
        let mut requests = Vec::new();
        for _ in 0..REQUESTS {
            requests.push(read_request(&mut stream).await.expect("request"));
        }
        for (header, mut body) in requests {
            let request = MetadataRequest::decode(&mut body, header.request_api_version).expect("decode");
            let name = request.topics.expect("topics")[0].name.clone().expect("name");
            let response = MetadataResponse::default().with_topics(vec![
                kafka_protocol::messages::metadata_response::MetadataResponseTopic::default()
                    .with_name(Some(name)),
            ]);
            let body = encode(&response, header.request_api_version);
            stream.write_all(&response_frame(&header, &body)).await.expect("write");
        }
        stream
    });
    let connection = Arc::new(Connection::connect(&addr, &quick_config()).await.expect("connects"));
    let mut callers = Vec::new();
    for i in 0..REQUESTS {
        let connection = Arc::clone(&connection);
        callers.push(tokio::spawn(async move {
            let topic = MetadataRequestTopic::default().with_name(Some(topic_name(&format!("t{i}"))));
            let response = connection
                .request(|_| MetadataRequest::default().with_topics(Some(vec![topic])))
                .await
                .expect("response");
            (i, response.topics[0].name.clone().expect("name").0.as_str().to_owned())
        }));
    }
    for caller in callers {
        let (i, name) = caller.await.expect("caller");
        assert_eq!(name, format!("t{i}"));
    }
    drop(server.await.expect("server"));
}

/// A response whose correlation id is not the oldest request's means the
/// stream is out of step: that request fails and the connection closes.
#[tokio::test]
async fn a_mismatched_correlation_id_closes_the_connection() {
    let broker = FakeBroker::start(|header, _| match header.request_api_key {
        API_VERSIONS => Reply::Body(api_versions_body(header.request_api_version, &all_api_ranges())),
        _ => {
            let body = metadata_body(header.request_api_version, &[], &[]);
            Reply::Raw(response_frame_with_id(header, header.correlation_id + 100, &body))
        }
    })
    .await;
    let connection = Connection::connect(&broker.addr, &quick_config()).await.expect("connects");
    let err = connection.request(|_| MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("correlation id"), "{err}");
    assert!(connection.is_closed());
    let err = connection.request(|_| MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed { .. }), "{err}");
}

/// A length prefix beyond the limit is refused before anything is
/// allocated for it (here 2 GiB, which would not fit comfortably).
#[tokio::test]
async fn oversized_response_frames_are_refused() {
    let broker = FakeBroker::start(|header, _| match header.request_api_key {
        API_VERSIONS => Reply::Body(api_versions_body(header.request_api_version, &all_api_ranges())),
        _ => Reply::Raw(i32::MAX.to_be_bytes().to_vec()),
    })
    .await;
    let config = ClientConfig { response_frame_bytes_max: 1 << 20, ..quick_config() };
    let connection = Connection::connect(&broker.addr, &config).await.expect("connects");
    let err = connection.request(|_| MetadataRequest::default()).await.unwrap_err();
    match err {
        ClientError::FrameTooLarge { len_bytes, max_bytes, .. } => {
            assert_eq!(len_bytes, i32::MAX as u64);
            assert_eq!(max_bytes, 1 << 20);
        }
        other => panic!("expected FrameTooLarge, got {other}"),
    }
}

/// A broker that never answers costs one request timeout, not forever,
/// and the connection is closed so the next request starts afresh.
#[tokio::test]
async fn unanswered_requests_time_out() {
    let broker = FakeBroker::start(|header, _| match header.request_api_key {
        API_VERSIONS => Reply::Body(api_versions_body(header.request_api_version, &all_api_ranges())),
        _ => Reply::Nothing,
    })
    .await;
    let config = ClientConfig { request_timeout: Duration::from_millis(200), ..quick_config() };
    let connection = Connection::connect(&broker.addr, &config).await.expect("connects");
    let started = Instant::now();
    let err = connection.request(|_| MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(connection.is_closed());
}

/// A broker closing the connection fails the request in flight with a
/// clear error instead of leaving it waiting.
#[tokio::test]
async fn a_closed_connection_fails_requests_in_flight() {
    let broker = FakeBroker::start(|header, _| match header.request_api_key {
        API_VERSIONS => Reply::Body(api_versions_body(header.request_api_version, &all_api_ranges())),
        _ => Reply::Close,
    })
    .await;
    let connection = Connection::connect(&broker.addr, &quick_config()).await.expect("connects");
    let err = connection.request(|_| MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed { .. }), "{err}");
}

/// With acks=0 the broker sends no response; the client must not wait for
/// one, and the next request's response must still match its request.
#[tokio::test]
async fn acks_zero_produce_expects_no_response() {
    let produced = Arc::new(AtomicUsize::new(0));
    let produced_in = Arc::clone(&produced);
    let port = Arc::new(AtomicUsize::new(0));
    let port_in = Arc::clone(&port);
    let broker = FakeBroker::start(move |header, mut body| {
        let version = header.request_api_version;
        match header.request_api_key {
            API_VERSIONS => Reply::Body(api_versions_body(version, &all_api_ranges())),
            METADATA => {
                let port = port_in.load(Ordering::SeqCst) as i32;
                Reply::Body(metadata_body(version, &[(1, port)], &[("t", &[(0, 1)])]))
            }
            PRODUCE => {
                let request = ProduceRequest::decode(&mut body, version).expect("produce");
                assert_eq!(request.acks, 0);
                produced_in.fetch_add(1, Ordering::SeqCst);
                Reply::Nothing
            }
            _ => Reply::Close,
        }
    })
    .await;
    port.store(broker.port as usize, Ordering::SeqCst);
    let client = Client::connect(&broker.addr, quick_config()).await.expect("client");
    let record = ProducerRecord { key: None, value: Some(Bytes::from_static(b"v")) };
    for _ in 0..3 {
        let ack = client.produce("t", 0, std::slice::from_ref(&record), Acks::None).await.expect("sent");
        assert_eq!(ack.base_offset, -1);
    }
    let info = client.refresh_topic("t").await.expect("metadata after acks=0 produces");
    assert_eq!(info.partitions.len(), 1);
    assert_eq!(produced.load(Ordering::SeqCst), 3);
}

/// NOT_LEADER_OR_FOLLOWER from the broker the metadata named makes the
/// client refresh metadata and send the batch to the new leader.
#[tokio::test]
async fn produce_reroutes_after_not_leader_or_follower() {
    let new_leader = FakeBroker::start(|header, _| {
        let version = header.request_api_version;
        match header.request_api_key {
            API_VERSIONS => Reply::Body(api_versions_body(version, &all_api_ranges())),
            PRODUCE => Reply::Body(produce_body(version, "t", 0, 0, 42)),
            _ => Reply::Close,
        }
    })
    .await;
    let new_port = new_leader.port;
    let metadata_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&metadata_calls);
    let port = Arc::new(AtomicUsize::new(0));
    let port_in = Arc::clone(&port);
    let old_leader = FakeBroker::start(move |header, _| {
        let version = header.request_api_version;
        let own_port = port_in.load(Ordering::SeqCst) as i32;
        match header.request_api_key {
            API_VERSIONS => Reply::Body(api_versions_body(version, &all_api_ranges())),
            METADATA => {
                // The first topic lookup names this broker; later ones the new leader.
                let leader = if calls.fetch_add(1, Ordering::SeqCst) < 2 { 1 } else { 2 };
                Reply::Body(metadata_body(version, &[(1, own_port), (2, new_port)], &[("t", &[(0, leader)])]))
            }
            PRODUCE => Reply::Body(produce_body(version, "t", 0, 6, -1)),
            _ => Reply::Close,
        }
    })
    .await;
    port.store(old_leader.port as usize, Ordering::SeqCst);
    let client = Client::connect(&old_leader.addr, quick_config()).await.expect("client");
    let record = ProducerRecord { key: None, value: Some(Bytes::from_static(b"v")) };
    let ack = client.produce("t", 0, &[record], Acks::All).await.expect("produced after re-routing");
    assert_eq!(ack.base_offset, 42);
}

/// A Kafka error that no refresh can fix is reported with its name.
#[tokio::test]
async fn produce_errors_carry_kafka_names() {
    let port = Arc::new(AtomicUsize::new(0));
    let port_in = Arc::clone(&port);
    let broker = FakeBroker::start(move |header, _| {
        let version = header.request_api_version;
        match header.request_api_key {
            API_VERSIONS => Reply::Body(api_versions_body(version, &all_api_ranges())),
            METADATA => {
                let port = port_in.load(Ordering::SeqCst) as i32;
                Reply::Body(metadata_body(version, &[(1, port)], &[("t", &[(0, 1)])]))
            }
            PRODUCE => Reply::Body(produce_body(version, "t", 0, 10, -1)),
            _ => Reply::Close,
        }
    })
    .await;
    port.store(broker.port as usize, Ordering::SeqCst);
    let client = Client::connect(&broker.addr, quick_config()).await.expect("client");
    let err = client.produce("t", 0, &[ProducerRecord::default()], Acks::Leader).await.unwrap_err();
    assert_eq!(err.kafka_code(), Some(10));
    assert!(err.to_string().contains("MESSAGE_TOO_LARGE"), "{err}");
}

/// Fetch decodes the batches a broker returns into records with offsets.
#[tokio::test]
async fn fetch_returns_decoded_records() {
    let port = Arc::new(AtomicUsize::new(0));
    let port_in = Arc::clone(&port);
    let broker = FakeBroker::start(move |header, _| {
        let version = header.request_api_version;
        match header.request_api_key {
            API_VERSIONS => Reply::Body(api_versions_body(version, &all_api_ranges())),
            METADATA => {
                let port = port_in.load(Ordering::SeqCst) as i32;
                Reply::Body(metadata_body(version, &[(1, port)], &[("t", &[(0, 1), (1, 1)])]))
            }
            FETCH => {
                let mut batch = ringtail_client::build_batch(
                    &[
                        ProducerRecord { key: None, value: Some(Bytes::from_static(b"x")) },
                        ProducerRecord {
                            key: Some(Bytes::from_static(b"k")),
                            value: Some(Bytes::from_static(b"y")),
                        },
                    ],
                    1000,
                )
                .to_vec();
                set_base_offset(&mut batch, 7);
                let partitions = vec![
                    PartitionData::default().with_partition_index(0).with_high_watermark(9),
                    PartitionData::default()
                        .with_partition_index(1)
                        .with_high_watermark(9)
                        .with_records(Some(Bytes::from(batch))),
                ];
                let response =
                    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                        .with_topic(topic_name("t"))
                        .with_partitions(partitions)]);
                Reply::Body(encode(&response, version))
            }
            _ => Reply::Close,
        }
    })
    .await;
    port.store(broker.port as usize, Ordering::SeqCst);
    let client = Client::connect(&broker.addr, quick_config()).await.expect("client");
    let positions = [FetchPosition { partition: 0, offset: 9 }, FetchPosition { partition: 1, offset: 7 }];
    let fetched = client.fetch("t", &positions, &FetchOptions::default()).await.expect("fetch");
    assert_eq!(fetched.len(), 2);
    assert!(fetched[0].records.is_empty());
    assert_eq!(fetched[0].next_offset, 9);
    let values: Vec<_> = fetched[1].records.iter().map(|r| (r.offset, r.value.clone())).collect();
    assert_eq!(values, [(7, Some(Bytes::from_static(b"x"))), (8, Some(Bytes::from_static(b"y")))]);
    assert_eq!(fetched[1].records[1].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(fetched[1].next_offset, 9);
}

fn produce_body(version: i16, topic: &str, partition: i32, error_code: i16, base_offset: i64) -> Vec<u8> {
    let answer = PartitionProduceResponse::default()
        .with_index(partition)
        .with_error_code(error_code)
        .with_base_offset(base_offset);
    let response = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(topic_name(topic))
        .with_partition_responses(vec![answer])]);
    encode(&response, version)
}
