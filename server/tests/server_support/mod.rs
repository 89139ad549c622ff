//! Shared by the server's integration tests: an in-process server on an
//! ephemeral port with a data directory under the target dir, and a raw
//! Kafka client built on kafka-protocol's client-side codec.

#![allow(dead_code)] // each test file uses a different part

pub mod cli;
pub mod sasl;
pub mod tls;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use ringtail_server::config::{HostPort, ServeConfig};
use ringtail_server::serve::{self, RunningServer};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any single network step of a test may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

pub fn data_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(name).tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

pub fn config(dir: &Path) -> ServeConfig {
    let local = |port| HostPort { host: "127.0.0.1".into(), port };
    ServeConfig {
        data_dir: dir.to_path_buf(),
        listen: local(0),
        metrics_listen: local(0),
        ..ServeConfig::defaults()
    }
}

/// `config` with consumer-group timers short enough for tests: a first
/// rebalance that waits 200 ms for more members, session timeouts from
/// 1 s, and 4 `__consumer_offsets` partitions.
pub fn group_config(dir: &Path) -> ServeConfig {
    let mut config = config(dir);
    config.group.initial_rebalance_delay_ms = 200;
    config.group.min_session_timeout_ms = 1000;
    config.group.offsets_topic_partitions = 4;
    config
}

/// The flags that give a `ringtail serve` process `group_config`'s timers.
pub const GROUP_TEST_FLAGS: [&str; 6] = [
    "--group-initial-rebalance-delay-ms",
    "200",
    "--group-min-session-timeout-ms",
    "1000",
    "--offsets-topic-partitions",
    "4",
];

pub async fn start(dir: &Path) -> RunningServer {
    serve::start(config(dir)).await.unwrap()
}

/// A Kafka client over raw frames, on TCP or any other stream (TLS).
pub struct Client<S = TcpStream> {
    stream: S,
    correlation_id: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(addr)).await.unwrap().unwrap();
        stream.set_nodelay(true).unwrap();
        Client::over(stream)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Client<S> {
    pub fn over(stream: S) -> Client<S> {
        Client { stream, correlation_id: 0 }
    }

    /// Sends `request` at `version` and decodes the response.
    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        let correlation_id = self.send(version, request).await;
        self.receive::<R>(version, correlation_id).await
    }

    /// Sends without reading the response; returns its correlation id.
    pub async fn send<R: Request>(&mut self, version: i16, request: &R) -> i32 {
        self.correlation_id += 1;
        let api_key = ApiKey::try_from(R::KEY).unwrap();
        let frame = request_frame(api_key, version, self.correlation_id, request);
        self.send_raw(&frame).await;
        self.correlation_id
    }

    pub async fn receive<R: Request>(&mut self, version: i16, correlation_id: i32) -> R::Response {
        let mut frame = self.read_frame().await.expect("connection closed instead of a response");
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        let response = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "bytes left after the response");
        response
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        tokio::time::timeout(STEP_TIMEOUT, self.stream.write_all(bytes)).await.unwrap().unwrap();
    }

    /// The next response frame (without its length), or `None` once the
    /// server has closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        tokio::time::timeout(STEP_TIMEOUT, async {
            let mut len = [0u8; 4];
            if self.stream.read_exact(&mut len).await.is_err() {
                return None;
            }
            let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut body).await.ok()?;
            Some(Bytes::from(body))
        })
        .await
        .expect("no response in time")
    }

    /// Reads until the server closes the connection (or resets it);
    /// returns the bytes read.
    pub async fn read_to_end_bytes(&mut self) -> usize {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    }

    /// True once the server has closed the connection (reads end).
    pub async fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(STEP_TIMEOUT, self.stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => false,
            Err(_) => false,
        }
    }
}

/// A length-prefixed request frame.
pub fn request_frame<T: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("ringtail-test")))
        .encode(&mut buf, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

pub fn record(offset: i64, key: &str, value: &str) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        // What the broker stamps: the fetched batch is then byte-identical.
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // kafka-protocol's encoder starts a new batch wherever offset minus
        // sequence changes; offset - 1 keeps one batch whose base sequence
        // is -1 (not idempotent) when offsets start at 0.
        sequence: offset as i32 - 1,
        timestamp: 1_700_000_000_000 + offset,
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    }
}

/// One uncompressed v2 batch of `count` records with offsets from 0.
pub fn batch(count: i64, prefix: &str) -> Bytes {
    let records: Vec<Record> =
        (0..count).map(|i| record(i, &format!("k{i}"), &format!("{prefix}-{i}"))).collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .unwrap();
    buf.freeze()
}

/// A v2 batch of `count` records compressed with `compression`, as a
/// compressing producer sends it (the broker reads its records to check
/// them, and stores and returns it as sent).
pub fn compressed_batch(count: i64, compression: Compression) -> Bytes {
    use std::io::Write;
    let records: Vec<Record> = (0..count).map(|i| record(i, "k", "v")).collect();
    let mut buf = BytesMut::new();
    let compressor = |input: &mut BytesMut, out: &mut BytesMut, c: Compression| -> anyhow::Result<()> {
        let compressed = match c {
            Compression::Gzip => {
                let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gzip.write_all(input)?;
                gzip.finish()?
            }
            Compression::Snappy => snap::raw::Encoder::new().compress_vec(input)?,
            Compression::Lz4 => {
                let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
                lz4.write_all(input)?;
                lz4.finish()?
            }
            Compression::Zstd => {
                ruzstd::encoding::compress_to_vec(&input[..], ruzstd::encoding::CompressionLevel::Fastest)
            }
            Compression::None => input.to_vec(),
        };
        out.put_slice(&compressed);
        Ok(())
    };
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buf,
        &records,
        &RecordEncodeOptions { version: 2, compression },
        Some(compressor),
    )
    .unwrap();
    buf.freeze()
}

/// Spawns `command` (a `ringtail serve` with a piped stdout) and returns
/// the child and a channel that yields its readiness line: empty if stdout
/// closed first (the server exited). Stdout is drained after that line, so
/// a later write never meets a closed pipe.
pub fn spawn_serve(
    mut command: std::process::Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = command.stdout(std::process::Stdio::piped()).spawn().expect("ringtail serve spawns");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    (child, rx)
}

/// The address after `prefix` ("kafka on ", "metrics on ") in a readiness
/// line.
pub fn ready_address(ready: &str, prefix: &str) -> String {
    ready
        .split(prefix)
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no {prefix:?} in readiness line {ready:?}"))
        .to_owned()
}

/// One HTTP exchange (the metrics endpoint): the whole response.
pub async fn http(addr: SocketAddr, request: &str) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    tokio::time::timeout(STEP_TIMEOUT, exchange).await.unwrap()
}
