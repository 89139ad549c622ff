//! For the CLI's tests: a fake broker (a TCP listener on 127.0.0.1 that
//! decodes request headers and answers with whatever the test's handler
//! says, encoded with kafka-protocol exactly as a broker would), and a real
//! in-process server (`TestServer`).

#![allow(dead_code)] // each test file uses a different part of this

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, StrBytes};
use ringtail_server::config::{resolve, ServeArgs};
use ringtail_server::serve::{start, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the fake does with one request.
pub enum Reply {
    /// A response body; the fake adds the header for the request's version.
    Body(Vec<u8>),
    /// Nothing, as a broker does for Produce with acks=0.
    Nothing,
    /// These bytes exactly, length prefix and all.
    Raw(Vec<u8>),
    /// Close the connection.
    Close,
}

pub type Handler = Arc<dyn Fn(&RequestHeader, Bytes) -> Reply + Send + Sync>;

pub struct FakeBroker {
    pub addr: String,
    pub port: i32,
    task: JoinHandle<()>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeBroker {
    pub async fn start(
        handler: impl Fn(&RequestHeader, Bytes) -> Reply + Send + Sync + 'static,
    ) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let local = listener.local_addr().expect("local addr");
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, Arc::clone(&handler)));
            }
        });
        FakeBroker { addr: local.to_string(), port: i32::from(local.port()), task }
    }
}

/// Reads one request frame: its header and the undecoded body.
pub async fn read_request(stream: &mut TcpStream) -> Option<(RequestHeader, Bytes)> {
    let len = stream.read_i32().await.ok()?;
    let mut frame = BytesMut::zeroed(usize::try_from(len).ok()?);
    stream.read_exact(&mut frame).await.ok()?;
    let mut frame = frame.freeze();
    let header = decode_request_header_from_buffer(&mut frame).ok()?;
    Some((header, frame))
}

/// A whole response frame for `header`'s request.
pub fn response_frame(header: &RequestHeader, body: &[u8]) -> Vec<u8> {
    response_frame_with_id(header, header.correlation_id, body)
}

pub fn response_frame_with_id(header: &RequestHeader, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let api_key = ApiKey::try_from(header.request_api_key).expect("known API");
    let mut head = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut head, api_key.response_header_version(header.request_api_version))
        .expect("encode header");
    let mut frame = Vec::with_capacity(4 + head.len() + body.len());
    frame.extend_from_slice(&((head.len() + body.len()) as i32).to_be_bytes());
    frame.extend_from_slice(&head);
    frame.extend_from_slice(body);
    frame
}

async fn serve_connection(mut stream: TcpStream, handler: Handler) {
    while let Some((header, body)) = read_request(&mut stream).await {
        let frame = match handler(&header, body) {
            Reply::Body(body) => response_frame(&header, &body),
            Reply::Raw(bytes) => bytes,
            Reply::Nothing => continue,
            Reply::Close => return,
        };
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// Encodes a message body at `version`.
pub fn encode<M: Encodable>(message: &M, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).expect("encode body");
    buf.to_vec()
}

/// The APIs the client uses, with every version the codec knows.
pub fn all_api_ranges() -> Vec<(ApiKey, i16, i16)> {
    [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DescribeConfigs,
    ]
    .into_iter()
    .map(|k| (k, k.valid_versions().min, k.valid_versions().max))
    .collect()
}

pub fn api_versions_body(version: i16, ranges: &[(ApiKey, i16, i16)]) -> Vec<u8> {
    let keys = ranges
        .iter()
        .map(|&(k, min, max)| {
            ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max)
        })
        .collect();
    encode(&ApiVersionsResponse::default().with_api_keys(keys), version)
}

/// Metadata naming `brokers` (node id, port on 127.0.0.1) and `topics`
/// (name, partitions as (index, leader)).
pub fn metadata_body(version: i16, brokers: &[(i32, i32)], topics: &[(&str, &[(i32, i32)])]) -> Vec<u8> {
    let brokers = brokers
        .iter()
        .map(|&(id, port)| {
            MetadataResponseBroker::default()
                .with_node_id(id.into())
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(port)
        })
        .collect();
    let topics = topics
        .iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .iter()
                .map(|&(index, leader)| {
                    MetadataResponsePartition::default()
                        .with_partition_index(index)
                        .with_leader_id(leader.into())
                        .with_replica_nodes(vec![leader.into()])
                        .with_isr_nodes(vec![leader.into()])
                })
                .collect();
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string((*name).to_owned()))))
                .with_partitions(partitions)
        })
        .collect();
    encode(
        &MetadataResponse::default().with_controller_id(1.into()).with_brokers(brokers).with_topics(topics),
        version,
    )
}

/// The consumer group APIs with the versions Ringtail's server advertises
/// (taken from the server's own table, so the two cannot drift apart).
pub fn group_api_ranges() -> Vec<(ApiKey, i16, i16)> {
    use ApiKey::*;
    let groups = [
        FindCoordinator,
        JoinGroup,
        SyncGroup,
        Heartbeat,
        LeaveGroup,
        OffsetCommit,
        OffsetFetch,
        DescribeGroups,
        ListGroups,
        DeleteGroups,
    ];
    let ranges: Vec<_> = ringtail_server::protocol::versions::SUPPORTED
        .iter()
        .filter(|s| groups.contains(&s.key))
        .map(|s| (s.key, s.min, s.max))
        .collect();
    assert_eq!(ranges.len(), groups.len(), "the server advertises every group API");
    ranges
}

/// A real in-process server on ephemeral ports with its own data directory.
pub struct TestServer {
    pub server: RunningServer,
    pub bootstrap: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(name: &str) -> TestServer {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tempfile::Builder::new().prefix(name).tempdir_in(root).expect("temp dir");
        let args = ServeArgs {
            data_dir: Some(dir.path().join("data").display().to_string()),
            listen: Some("127.0.0.1:0".into()),
            controller_listen: Some("127.0.0.1:0".into()),
            metrics_listen: Some("127.0.0.1:0".into()),
            ..ServeArgs::default()
        };
        let config = resolve(&args).expect("valid config");
        let server = start(config).await.expect("server starts");
        let bootstrap = server.kafka_addr.to_string();
        TestServer { server, bootstrap, _dir: dir }
    }

    pub async fn stop(self) {
        self.server.shutdown().await.expect("clean shutdown");
    }
}
