//! One TCP connection to one broker (through TLS and SASL where the
//! client's `Security` says so), with pipelining.
//!
//! Kafka answers the requests of a connection in the order they were sent,
//! so the connection keeps a FIFO of requests awaiting a response: a writer
//! enqueues its entry and writes its frame under one lock (queue order is
//! wire order), and a reader task pops the front entry for each response
//! frame and checks the correlation ids match. Up to `in_flight_max`
//! requests wait at once; the permit is held by the queue entry, so it is
//! released only when the response has been read, even if the caller gave up.
//!
//! Any failure that leaves the stream's position uncertain (an I/O error, a
//! mismatched correlation id, a timeout) closes the connection: later calls
//! fail fast with `Closed`, and the cluster layer opens a new one.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use std::sync::{Arc, Mutex as StdMutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::config::ClientConfig;
use super::error::{code, ClientError, Result};
use super::frame::{self, api_name, FrameError, FRAME_LENGTH_BYTES};
use super::versions::{BrokerVersions, API_VERSIONS_VERSION_MAX};
use crate::security::{LoginMechanism, SaslLogin};
use ringtail_engine::security::scram::ClientFirst;
use rustls_pki_types::ServerName;

/// The connection's halves: plain TCP or TLS, and a client needs no more
/// speed than a virtual call per read or write costs.
type StreamRead = Box<dyn AsyncRead + Send + Unpin>;
type StreamWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A SCRAM client nonce: 24 bytes from the OS, base64.
fn client_nonce() -> String {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    // The OS has randomness on every supported host; were it to fail, the
    // nonce would be predictable, not reused across connections by design.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub struct Connection {
    addr: String,
    config: ClientConfig,
    writer: Mutex<Writer>,
    permits: Arc<Semaphore>,
    /// Why the connection closed; `None` while it is usable.
    closed: Arc<StdMutex<Option<String>>>,
    reader: JoinHandle<()>,
    versions: BrokerVersions,
}

struct Writer {
    half: StreamWrite,
    next_correlation_id: i32,
    pending: mpsc::UnboundedSender<Pending>,
}

/// A request on the wire awaiting its response. The queue is unbounded as
/// a channel but bounded in fact: each entry holds one of `in_flight_max` permits.
struct Pending {
    correlation_id: i32,
    reply: oneshot::Sender<Result<Bytes>>,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// Connects to `addr` and negotiates API versions with the broker.
    pub async fn connect(addr: &str, config: &ClientConfig) -> Result<Connection> {
        let connect_error = |source| ClientError::Connect { addr: addr.to_owned(), source };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!("connecting to {addr}"),
                after: config.connect_timeout,
            })?
            .map_err(connect_error)?;
        // Requests are written whole; Nagle would only add latency.
        stream.set_nodelay(true).map_err(connect_error)?;
        let (read_half, write_half): (StreamRead, StreamWrite) = match &config.security.tls {
            None => {
                let (read_half, write_half) = crate::tcp::split(stream);
                (Box::new(read_half), Box::new(write_half))
            }
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_owned()).map_err(|e| ClientError::Connect {
                    addr: addr.to_owned(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                })?;
                let stream = tokio::time::timeout(config.connect_timeout, tls.connect(name, stream))
                    .await
                    .map_err(|_| ClientError::Timeout {
                        what: format!("TLS handshake with {addr}"),
                        after: config.connect_timeout,
                    })?
                    .map_err(connect_error)?;
                let (read_half, write_half) = tokio::io::split(stream);
                (Box::new(read_half), Box::new(write_half))
            }
        };
        let mut connection = Connection::from_halves(addr, read_half, write_half, config);
        connection.versions = connection.fetch_api_versions().await?;
        if let Some(login) = &config.security.sasl {
            connection.authenticate(login).await?;
        }
        Ok(connection)
    }

    /// SaslHandshake, then the mechanism's exchange through
    /// SaslAuthenticate: PLAIN's one message, or SCRAM's two, whose last
    /// answer must prove the broker knows the password's server key too.
    async fn authenticate(&self, login: &SaslLogin) -> Result<()> {
        let refused = |code: i16, message: Option<StrBytes>| ClientError::Kafka {
            context: format!("SASL {} authentication of {} with {}", login.mechanism, login.user, self.addr),
            code,
            message: message.map(|m| m.to_string()),
        };
        let mechanism = StrBytes::from_static_str(login.mechanism.name());
        let handshake = self.request(|_| SaslHandshakeRequest::default().with_mechanism(mechanism)).await?;
        if handshake.error_code != 0 {
            return Err(refused(handshake.error_code, None));
        }
        let scram_mechanism = match login.mechanism {
            LoginMechanism::Scram(m) => m,
            LoginMechanism::Plain => {
                // RFC 4616: authorization id (empty: the user's own), user,
                // password, NUL-separated.
                let message = format!("\0{}\0{}", login.user, login.password);
                let done = self
                    .request(|_| {
                        SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message.clone()))
                    })
                    .await?;
                if done.error_code != 0 {
                    return Err(refused(done.error_code, done.error_message));
                }
                return Ok(());
            }
        };
        let scram =
            ClientFirst::new(scram_mechanism, &login.user, login.password.as_bytes(), &client_nonce());
        let first = self
            .request(|_| SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(scram.message())))
            .await?;
        if first.error_code != 0 {
            return Err(refused(first.error_code, first.error_message));
        }
        let protocol = |reason: String| ClientError::Protocol { addr: self.addr.clone(), reason };
        let (last, expected) = scram.answer(&first.auth_bytes).map_err(|e| protocol(e.to_string()))?;
        let done =
            self.request(|_| SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(last))).await?;
        if done.error_code != 0 {
            return Err(refused(done.error_code, done.error_message));
        }
        if done.auth_bytes.as_ref() != expected.as_slice() {
            self.close("the broker's SCRAM signature is wrong");
            return Err(protocol(
                "the broker did not prove it knows the password (SCRAM server signature)".into(),
            ));
        }
        Ok(())
    }

    fn from_halves(
        addr: &str,
        read_half: StreamRead,
        write_half: StreamWrite,
        config: &ClientConfig,
    ) -> Connection {
        let (pending_tx, pending_rx) = mpsc::unbounded_channel();
        let closed = Arc::new(StdMutex::new(None));
        let reader = tokio::spawn(read_responses(
            read_half,
            pending_rx,
            addr.to_owned(),
            config.response_frame_bytes_max,
            Arc::clone(&closed),
        ));
        Connection {
            addr: addr.to_owned(),
            config: config.clone(),
            writer: Mutex::new(Writer { half: write_half, next_correlation_id: 0, pending: pending_tx }),
            permits: Arc::new(Semaphore::new(config.in_flight_max.max(1))),
            closed,
            reader,
            versions: BrokerVersions::default(),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    pub fn is_closed(&self) -> bool {
        self.closed_reason().is_some()
    }

    fn closed_reason(&self) -> Option<String> {
        self.closed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Closes the connection: queued requests fail with `Closed`.
    pub fn close(&self, reason: &str) {
        mark_closed(&self.closed, reason);
        self.reader.abort();
    }

    /// The version this connection uses for `R`: the highest both sides speak.
    pub fn version_for<R: Request>(&self) -> Result<i16> {
        self.versions.negotiate(R::KEY).map_err(|e| ClientError::UnsupportedVersion {
            addr: self.addr.clone(),
            api: api_name(R::KEY),
            client_min: e.client.0,
            client_max: e.client.1,
            broker: e.broker_text(),
        })
    }

    /// Sends the request `build` makes for the negotiated version, and
    /// returns the broker's response.
    pub async fn request<R: Request>(&self, build: impl FnOnce(i16) -> R) -> Result<R::Response> {
        let version = self.version_for::<R>()?;
        self.send(&build(version), version).await
    }

    /// Sends `request` at `version` and decodes the response.
    pub async fn send<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        let frame = self.round_trip(request, version).await?;
        let (_, response) = frame::decode_response::<R>(frame, version).map_err(|reason| {
            // The frame was read whole, so the stream is still in step; but a
            // broker that sends undecodable responses is not worth talking to.
            self.close("undecodable response");
            ClientError::Protocol { addr: self.addr.clone(), reason }
        })?;
        Ok(response)
    }

    /// Writes a request the broker will not answer (Produce with acks=0).
    pub async fn send_without_response<R: Request>(&self, build: impl FnOnce(i16) -> R) -> Result<()> {
        let version = self.version_for::<R>()?;
        let request = build(version);
        let what = || format!("{} request to {}", api_name(R::KEY), self.addr);
        let timeout = self.config.request_timeout;
        match tokio::time::timeout(timeout, self.write(&request, version, None)).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => {
                self.close("write timed out");
                Err(ClientError::Timeout { what: what(), after: timeout })
            }
        }
    }

    /// Sends one request and returns its response frame (correlation id
    /// checked, header and body not yet decoded).
    async fn round_trip<R: Request>(&self, request: &R, version: i16) -> Result<Bytes> {
        let timeout = self.config.request_timeout;
        let what = || format!("{} request to {}", api_name(R::KEY), self.addr);
        // Waiting for a pipelining slot leaves the stream untouched, so
        // running out of time here does not close the connection.
        let permit = tokio::time::timeout(timeout, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!("waiting to send {}", what()),
                after: timeout,
            })?
            .map_err(|_| self.closed_error())?;
        let exchange = async {
            let (reply_tx, reply_rx) = oneshot::channel();
            self.write(request, version, Some((reply_tx, permit))).await?;
            // The reader drops the sender only when the connection is closing.
            reply_rx.await.map_err(|_| self.closed_error())?
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                self.close("request timed out");
                Err(ClientError::Timeout { what: what(), after: timeout })
            }
        }
    }

    /// Encodes and writes one frame; with `reply`, queues its response
    /// first, under the same lock, so queue order is wire order.
    async fn write<R: Request>(
        &self,
        request: &R,
        version: i16,
        reply: Option<(oneshot::Sender<Result<Bytes>>, OwnedSemaphorePermit)>,
    ) -> Result<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        // Encoding happens outside the lock; only the id is stamped inside.
        let mut frame = frame::encode_request(request, version, 0, &self.config.client_id)
            .map_err(|reason| ClientError::Encode { api: api_name(R::KEY), version, reason })?;
        let mut writer = self.writer.lock().await;
        let correlation_id = writer.next_correlation_id;
        writer.next_correlation_id = correlation_id.wrapping_add(1);
        frame::set_correlation_id(&mut frame, correlation_id);
        if let Some((reply, permit)) = reply {
            let pending = Pending { correlation_id, reply, _permit: permit };
            writer.pending.send(pending).map_err(|_| self.closed_error())?;
        }
        // A caller dropped mid-write (a timeout, a select!) would leave half
        // a frame on the wire; the guard closes the connection if so.
        let mut guard = PartialWriteGuard { connection: self, finished: false };
        let half = &mut writer.half;
        // The flush sends the frame under the simulator (a no-op on real TCP).
        let written = async {
            half.write_all(&frame).await?;
            half.flush().await
        }
        .await;
        guard.finished = true;
        if let Err(source) = written {
            drop(writer);
            self.close("write failed");
            return Err(ClientError::Io { addr: self.addr.clone(), source });
        }
        Ok(())
    }

    fn closed_error(&self) -> ClientError {
        let reason = self.closed_reason().unwrap_or_else(|| "closed".to_owned());
        ClientError::Closed { addr: self.addr.clone(), reason }
    }

    /// Asks for the broker's API versions. Kafka answers a version of
    /// ApiVersions it does not know with UNSUPPORTED_VERSION in a v0 body
    /// listing its own range, so on that answer ask again at its highest.
    async fn fetch_api_versions(&self) -> Result<BrokerVersions> {
        let mut version = API_VERSIONS_VERSION_MAX;
        for _ in 0..2 {
            let mut request = ApiVersionsRequest::default();
            if version >= 3 {
                request = request
                    .with_client_software_name(StrBytes::from_static_str("ringtail"))
                    .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            }
            let frame = self.round_trip(&request, version).await?;
            // The ApiVersions response header is always v0: just the
            // correlation id. Every version's body starts with error_code.
            let error_code = frame.get(4..6).map(|b| i16::from_be_bytes([b[0], b[1]]));
            if error_code == Some(code::UNSUPPORTED_VERSION) && version > 0 {
                let mut body = frame.slice(4..);
                let fallback = ApiVersionsResponse::decode(&mut body, 0)
                    .map_err(|e| ClientError::Protocol { addr: self.addr.clone(), reason: e.to_string() })?;
                let broker_max = BrokerVersions::from_response(&fallback)
                    .broker_range(ApiKey::ApiVersions as i16)
                    .map_or(0, |(_, max)| max);
                version = broker_max.clamp(0, version - 1);
                continue;
            }
            let (_, response) = frame::decode_response::<ApiVersionsRequest>(frame, version)
                .map_err(|reason| ClientError::Protocol { addr: self.addr.clone(), reason })?;
            super::error::check(response.error_code, None, || format!("ApiVersions from {}", self.addr))?;
            return Ok(BrokerVersions::from_response(&response));
        }
        Err(ClientError::Protocol {
            addr: self.addr.clone(),
            reason: "broker refused every ApiVersions version offered".to_owned(),
        })
    }
}

/// Closes the connection if dropped before the frame was written whole.
struct PartialWriteGuard<'a> {
    connection: &'a Connection,
    finished: bool,
}

impl Drop for PartialWriteGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.close("a request was abandoned half written");
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn mark_closed(closed: &StdMutex<Option<String>>, reason: &str) {
    let mut slot = closed.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| reason.to_owned());
}

/// The reader task: one response frame per queued request, in order.
async fn read_responses(
    mut half: StreamRead,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    addr: String,
    frame_bytes_max: usize,
    closed: Arc<StdMutex<Option<String>>>,
) {
    while let Some(next) = pending.recv().await {
        let result =
            read_frame(&mut half, frame_bytes_max, &addr).await.and_then(
                |frame| match frame::correlation_id(&frame) {
                    Some(id) if id == next.correlation_id => Ok(frame),
                    other => Err(ClientError::Protocol {
                        addr: addr.clone(),
                        reason: format!(
                        "response correlation id {other:?} does not match the oldest request in flight ({})",
                        next.correlation_id
                    ),
                    }),
                },
            );
        let failed = result.as_ref().err().map(ToString::to_string);
        // The caller may have timed out and gone; nothing to tell it then.
        let _ = next.reply.send(result);
        if let Some(reason) = failed {
            mark_closed(&closed, &reason);
            break;
        }
    }
    // Fail whatever is still queued: no more responses will be read.
    mark_closed(&closed, "connection closed");
    pending.close();
    let reason = closed.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
    while let Ok(next) = pending.try_recv() {
        let _ = next.reply.send(Err(ClientError::Closed { addr: addr.clone(), reason: reason.clone() }));
    }
}

async fn read_frame(half: &mut StreamRead, frame_bytes_max: usize, addr: &str) -> Result<Bytes> {
    let io_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            ClientError::Closed { addr: addr.to_owned(), reason: "broker closed the connection".to_owned() }
        } else {
            ClientError::Io { addr: addr.to_owned(), source }
        }
    };
    let mut prefix = [0u8; FRAME_LENGTH_BYTES];
    half.read_exact(&mut prefix).await.map_err(io_error)?;
    let len = frame::response_length(prefix, frame_bytes_max).map_err(|e| match e {
        FrameError::TooLarge { len_bytes } => {
            ClientError::FrameTooLarge { addr: addr.to_owned(), len_bytes, max_bytes: frame_bytes_max }
        }
        FrameError::TooShort { len_bytes } => ClientError::Protocol {
            addr: addr.to_owned(),
            reason: format!("response frame of {len_bytes} bytes is too short to hold a header"),
        },
    })?;
    // Read into spare capacity rather than a zeroed buffer: zeroing a Fetch
    // response of many MiB first would cost one more pass over every byte.
    // The limit keeps each read inside this frame.
    let mut frame = BytesMut::with_capacity(len);
    while frame.len() < len {
        let rest = len - frame.len();
        if half.read_buf(&mut (&mut frame).limit(rest)).await.map_err(io_error)? == 0 {
            return Err(io_error(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(frame.freeze())
}
