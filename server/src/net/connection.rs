//! One client connection.
//!
//! The reader half reads a frame, parses it, and starts its handler in a
//! task of its own; the writer half writes the handlers' responses strictly
//! in request order, as Kafka promises clients. Up to
//! `requests_in_flight_max` requests run at once; at the limit the reader
//! stops reading, which pushes back on the client through TCP.
//!
//! Concurrency must not reorder effects a client can observe, so each API
//! declares its `Sequencing`: before the reader starts the next request it
//! waits for a produce to have queued its appends (a pipelining producer's
//! batches land in request order), and for an admin request (topic create
//! or delete, producer id) to have finished. Reads run freely.
//!
//! Malformed input (a bad length, a short frame, an unknown API or version,
//! a body that does not decode) closes the connection after the responses
//! already due, as Kafka does; it never reaches the engine.

use super::body_pool::BodyPool;
use super::budget::RequestBudget;
use super::frame::{body_length, read_prefix, FrameError};
use super::listener::{Admission, Listener};
use super::tracker::TaskToken;
use crate::handlers::{self, response_failed, Context, Reply};
use crate::protocol::request::{check, decode, Checked, Request};
use crate::protocol::response::{self, Frame};
use crate::security::authorize::Caller;
use crate::security::sasl::{Admit, SaslSession};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a connection whose SASL authentication failed is held before
/// it is closed (Kafka's `connection.failed.authentication.delay.ms`).
const FAILED_AUTHENTICATION_DELAY: Duration = Duration::from_millis(100);

/// Socket buffering: most requests and responses fit in one read or write.
const SOCKET_BUFFER_BYTES: usize = 64 * 1024;

/// What all connections share.
pub struct Shared {
    pub ctx: Arc<Context>,
    /// A frame's body is read only once the server-wide budget
    /// (`Limits::request_bytes_in_flight_max`) has room for it.
    pub request_bytes: Arc<RequestBudget>,
    /// Where large request bodies are read.
    pub bodies: Arc<BodyPool>,
    /// Connection slots, over every listener.
    pub admission: Admission,
}

/// When the reader may start the request after this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequencing {
    /// At once: the request only reads.
    Concurrent,
    /// Once the handler's first poll returns. A produce queues its appends
    /// in the engine during that poll (`Partition::produce` queues before
    /// its first await), so successive produces append in request order
    /// while their fsyncs overlap.
    AfterFirstPoll,
    /// Once the handler has finished: its effect (a topic created or
    /// deleted) must be visible to the next request.
    Barrier,
}

pub fn sequencing(api_key: ApiKey) -> Sequencing {
    match api_key {
        ApiKey::Produce => Sequencing::AfterFirstPoll,
        // Metadata may auto-create topics the next request uses;
        // FindCoordinator creates `__consumer_offsets`. A group's commits
        // and departures take effect in request order, as on Kafka (which
        // runs one request per connection at a time). JoinGroup and
        // SyncGroup may wait a whole rebalance, so they do not hold up the
        // heartbeats behind them.
        ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::InitProducerId
        | ApiKey::Metadata
        | ApiKey::FindCoordinator
        | ApiKey::OffsetCommit
        | ApiKey::LeaveGroup
        | ApiKey::DeleteGroups => Sequencing::Barrier,
        _ => Sequencing::Concurrent,
    }
}

/// A response on its way to the writer, in request order.
struct Pending {
    outgoing: oneshot::Receiver<Outgoing>,
    api_key: ApiKey,
    /// When the request's length prefix was read.
    arrived: Instant,
    /// The request's in-flight slot, freed once its response is written.
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug)]
enum Outgoing {
    Frame(Frame),
    Nothing,
    Close(String),
}

/// Why a connection's reader stopped.
#[derive(Debug)]
enum Stop {
    EndOfStream,
    Idle,
    /// A request body did not arrive by its deadline.
    SlowBody {
        len: usize,
        deadline: Duration,
    },
    Shutdown,
    WriterGone,
    Frame(FrameError),
    Protocol(String),
    /// SASL authentication failed (logged where it failed).
    Authentication,
}

/// Serves one connection until the client leaves, misbehaves, or the
/// server shuts down.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    shared: Arc<Shared>,
    token: TaskToken,
) {
    // Kafka responses are latency-sensitive and already batched by clients.
    let _ = stream.set_nodelay(true);
    let Some(tls) = &listener.tls else {
        let (read_half, write_half) = ringtail_client::tcp::split(stream);
        return serve_halves(read_half, write_half, peer, &listener, None, shared, token).await;
    };
    // The handshake is held to the wait for a first request: a client that
    // connects and says nothing must not keep its slot for long.
    let wait = Duration::from_millis(
        shared.ctx.limits.first_request_ms_max.min(shared.ctx.limits.connection_idle_ms_max),
    );
    match tokio::time::timeout(wait, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => {
            // A client certificate (verified against the listener's client
            // CA) names the client, as Kafka's SSL principal does.
            let certified = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
            let subject = certified.and_then(|cert| crate::security::certificate::subject(cert));
            let principal = match subject {
                None => None,
                Some(subject) => match listener.principal_mapping.map(&subject) {
                    Some(name) => {
                        tracing::debug!(%peer, %subject, principal = name, "client certificate");
                        Some(format!("User:{name}"))
                    }
                    None => {
                        shared.ctx.metrics.tls_handshakes_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            %peer,
                            listener = listener.name,
                            %subject,
                            "closing connection: no ssl-principal-mapping-rules rule gives this certificate a name"
                        );
                        return;
                    }
                },
            };
            let (read_half, write_half) = tokio::io::split(stream);
            serve_halves(read_half, write_half, peer, &listener, principal, shared, token).await
        }
        Ok(Err(e)) => {
            shared.ctx.metrics.tls_handshakes_failed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, listener = listener.name, error = %e, "closing connection: TLS handshake failed");
        }
        Err(_) => {
            shared.ctx.metrics.tls_handshakes_failed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, listener = listener.name, ?wait, "closing connection: no TLS handshake in time");
        }
    }
}

async fn serve_halves<R, W>(
    read_half: R,
    write_half: W,
    peer: SocketAddr,
    listener: &Listener,
    certified: Option<String>,
    shared: Arc<Shared>,
    token: TaskToken,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (queue, pending) = mpsc::unbounded_channel();
    let metrics = shared.ctx.metrics.clone();
    let stall = Duration::from_millis(shared.ctx.limits.response_write_stall_ms_max);
    let writer = tokio::spawn(write_responses(write_half, pending, metrics, stall));
    let stop = read_requests(read_half, peer, listener, certified, &queue, &shared, &token).await;
    match &stop {
        Stop::EndOfStream | Stop::Shutdown | Stop::WriterGone => {
            tracing::debug!(%peer, ?stop, "connection closed")
        }
        Stop::Idle => tracing::debug!(%peer, "closing idle connection"),
        Stop::Authentication => {}
        Stop::SlowBody { len, deadline } => {
            shared.ctx.metrics.connections_closed_slow_upload.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, bytes = len, ?deadline, "closing connection: a request body arrived too slowly")
        }
        Stop::Frame(FrameError::Io(e)) => tracing::debug!(%peer, error = %e, "connection failed"),
        Stop::Frame(e) => protocol_error(&shared, peer, e),
        Stop::Protocol(e) => protocol_error(&shared, peer, e),
    }
    // The writer finishes the responses already due, then closes.
    drop(queue);
    match writer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "writing responses failed"),
        Err(e) => tracing::error!(%peer, error = %e, "connection writer panicked"),
    }
}

fn protocol_error(shared: &Shared, peer: SocketAddr, error: &dyn std::fmt::Display) {
    shared.ctx.metrics.connections_closed_by_protocol_error.fetch_add(1, Ordering::Relaxed);
    tracing::info!(%peer, %error, "closing connection: malformed or unsupported request");
}

async fn read_requests<R: AsyncRead + Unpin>(
    read_half: R,
    peer: SocketAddr,
    listener: &Listener,
    certified: Option<String>,
    queue: &mpsc::UnboundedSender<Pending>,
    shared: &Arc<Shared>,
    token: &TaskToken,
) -> Stop {
    let limits = shared.ctx.limits;
    let idle = Duration::from_millis(limits.connection_idle_ms_max);
    // Until its first request, a connection is held to a shorter wait: one
    // that connects and says nothing must not keep its slot for long.
    let mut wait = idle.min(Duration::from_millis(limits.first_request_ms_max));
    let slots = Arc::new(Semaphore::new(limits.requests_in_flight_max));
    let mut shutdown = shared.ctx.shutdown.clone();
    let mut reader = BufReader::with_capacity(SOCKET_BUFFER_BYTES, read_half);
    let mut session = SaslSession::new(listener.sasl.clone(), listener.sasl_session_lifetime, certified);
    loop {
        // A free in-flight slot before reading on: at the limit the socket
        // is left unread.
        let slot = tokio::select! {
        biased;
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return Stop::WriterGone,
            },
            _ = crate::shutdown::signalled(&mut shutdown) => return Stop::Shutdown,
            _ = queue.closed() => return Stop::WriterGone,
        };
        let prefix = tokio::select! {
        biased;
            read = tokio::time::timeout(wait, read_prefix(&mut reader)) => match read {
                Err(_) => return Stop::Idle,
                Ok(Ok(None)) => return Stop::EndOfStream,
                Ok(Ok(Some(prefix))) => prefix,
                Ok(Err(e)) => return Stop::Frame(e),
            },
            _ = crate::shutdown::signalled(&mut shutdown) => return Stop::Shutdown,
            _ = queue.closed() => return Stop::WriterGone,
        };
        let arrived = Instant::now();
        wait = idle;
        let len = match body_length(prefix, limits.frame_size_bytes_max) {
            Ok(len) => len,
            Err(e) => return Stop::Frame(e),
        };
        let mut budget = tokio::select! {
        biased;
            budget = shared.request_bytes.take(len) => budget,
            _ = crate::shutdown::signalled(&mut shutdown) => return Stop::Shutdown,
        };
        // The body must keep coming at the minimum rate: what it holds of
        // the budget is not held by a client that stopped sending.
        let deadline = limits.body_deadline(len);
        let body = tokio::select! {
        biased;
            read = tokio::time::timeout(deadline, shared.bodies.read(&mut reader, len)) => match read {
                Err(_) => return Stop::SlowBody { len, deadline },
                Ok(Ok(body)) => body,
                Ok(Err(e)) => return Stop::Frame(e),
            },
            _ = crate::shutdown::signalled(&mut shutdown) => return Stop::Shutdown,
        };
        shared.ctx.metrics.bytes_received.fetch_add(4 + len as u64, Ordering::Relaxed);
        let layout = match check(&body, limits.request_array_elements_max) {
            Err(e) => return Stop::Protocol(e.to_string()),
            Ok(Checked::ApiVersionsUnsupported { correlation_id }) => {
                // Answered at version 0, whatever version was asked (Kafka's fallback).
                let answer = ResponseKind::ApiVersions(handlers::api_versions::unsupported_version());
                let header = (ApiKey::ApiVersions, 0, correlation_id);
                if answer_now(queue, header, &answer, arrived, slot).is_err() {
                    return Stop::WriterGone;
                }
                continue;
            }
            Ok(Checked::Request(layout)) => layout,
        };
        let body = if layout.extent < len {
            // Bytes no field claims are tolerated, as Kafka does, but not
            // held: a long poll padded to the frame limit would otherwise
            // keep its whole share of the budget while it waits.
            tracing::debug!(api = ?layout.api_key, bytes = len - layout.extent, "ignoring bytes after a request body");
            budget.shrink_to(layout.extent);
            shared.bodies.keep_prefix(body, layout.extent)
        } else {
            body
        };
        let mut request = match decode(body.into_bytes(budget), layout) {
            Err(e) => return Stop::Protocol(e.to_string()),
            Ok(request) => Request { peer: Some(peer), arrived_on: listener.route.clone(), ..request },
        };
        match session.admit(&shared.ctx, &request) {
            Admit::Dispatch => {
                if let Some(principal) = session.principal() {
                    request.caller = Caller { principal: principal.clone(), host: peer.ip().to_string() };
                }
            }
            Admit::Answer(answer) => {
                if answer_now(queue, header_of(&request), &answer, arrived, slot).is_err() {
                    return Stop::WriterGone;
                }
                continue;
            }
            Admit::AnswerAndClose(answer, reason) => {
                let _ = answer_now(queue, header_of(&request), &answer, arrived, slot);
                tracing::info!(%peer, listener = listener.name, %reason, "closing connection: SASL authentication failed");
                // Each guess at a password costs a connection and this long.
                tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
                return Stop::Authentication;
            }
            Admit::Close(reason) => return Stop::Protocol(reason),
        }
        let sequencing = sequencing(request.api_key);
        let (outgoing, outgoing_rx) = oneshot::channel();
        let pending = Pending { outgoing: outgoing_rx, api_key: request.api_key, arrived, _slot: slot };
        if queue.send(pending).is_err() {
            return Stop::WriterGone;
        }
        let (dispatched, dispatched_rx) = oneshot::channel::<()>();
        let job = Job { ctx: shared.ctx.clone(), request, sequencing, dispatched, outgoing };
        tokio::spawn(run_request(job, token.clone()));
        if sequencing != Sequencing::Concurrent {
            // Resolves when the job drops its end: after the first poll or
            // at completion, per `sequencing`.
            let _ = dispatched_rx.await;
        }
    }
}

/// What a response is framed with: the API, its version, the correlation id.
type ResponseHeader = (ApiKey, i16, i32);

fn header_of(request: &Request) -> ResponseHeader {
    (request.api_key, request.version(), request.header.correlation_id)
}

/// Queues `answer`, made here rather than by a handler, in its turn among
/// the connection's responses.
fn answer_now(
    queue: &mpsc::UnboundedSender<Pending>,
    (api_key, version, correlation_id): ResponseHeader,
    answer: &ResponseKind,
    arrived: Instant,
    slot: OwnedSemaphorePermit,
) -> Result<(), ()> {
    let outgoing = match response::encode(api_key, version, correlation_id, answer) {
        Ok(frame) => Outgoing::Frame(Frame::single(frame)),
        Err(e) => Outgoing::Close(e.to_string()),
    };
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(outgoing);
    queue.send(Pending { outgoing: rx, api_key, arrived, _slot: slot }).map_err(|_| ())
}

/// One request's work, run in a task of its own so that it finishes even
/// if the connection goes away (an engine append must never be dropped
/// half-way: that poisons the log).
struct Job {
    ctx: Arc<Context>,
    request: Request,
    sequencing: Sequencing,
    dispatched: oneshot::Sender<()>,
    outgoing: oneshot::Sender<Outgoing>,
}

async fn run_request(job: Job, _token: TaskToken) {
    let Job { ctx, request, sequencing, dispatched, outgoing } = job;
    let started = Instant::now();
    let (api_key, version) = (request.api_key, request.version());
    let correlation_id = request.header.correlation_id;
    let handler = Box::pin(handlers::handle(&ctx, request));
    let reply = match sequencing {
        Sequencing::AfterFirstPoll => SignalAfterFirstPoll { inner: handler, signal: Some(dispatched) }.await,
        Sequencing::Concurrent | Sequencing::Barrier => {
            let reply = handler.await;
            drop(dispatched);
            reply
        }
    };
    let mut failed = true;
    let reply = match reply {
        Reply::Respond(body) => {
            failed = response_failed(&body);
            match response::encode_frame(api_key, version, correlation_id, &body) {
                Ok(frame) => Outgoing::Frame(frame),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a response; closing the connection");
                    Outgoing::Close(e.to_string())
                }
            }
        }
        Reply::Nothing => {
            failed = false;
            Outgoing::Nothing
        }
        Reply::Close(reason) => Outgoing::Close(reason),
    };
    ctx.metrics.observe_request(api_key, started.elapsed(), failed);
    tracing::debug!(api = ?api_key, version, correlation_id, failed, "request handled");
    // The connection may be gone; the work is done either way.
    let _ = outgoing.send(reply);
}

/// Drops `signal` once `inner` has been polled once.
struct SignalAfterFirstPoll<F> {
    inner: Pin<Box<F>>,
    signal: Option<oneshot::Sender<()>>,
}

impl<F: Future> Future for SignalAfterFirstPoll<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let output = self.inner.as_mut().poll(cx);
        self.signal.take();
        output
    }
}

/// Writes responses in request order, flushing whenever the next one is not
/// ready yet, so that pipelined responses share syscalls but none waits
/// behind a slow request. A write or flush that makes no progress for
/// `stall` ends the connection (the reader sees the writer gone): a client
/// that stops reading does not pin its responses, nor its in-flight slots.
///
/// A frame goes out segment by segment: the buffer gathers the small ones
/// (headers, fields, small responses), and a segment at least as large as
/// the buffer (a Fetch response's record batches) goes straight from its
/// own memory to the socket once what is buffered before it is flushed, as
/// `BufWriter` does for such writes.
async fn write_responses<W: AsyncWrite + Unpin>(
    write_half: W,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    metrics: Arc<crate::metrics::Metrics>,
    stall: Duration,
) -> std::io::Result<()> {
    let mut writer = BufWriter::with_capacity(SOCKET_BUFFER_BYTES, StallGuard::new(write_half, stall));
    loop {
        let mut next = match pending.try_recv() {
            Ok(next) => next,
            Err(mpsc::error::TryRecvError::Empty) => {
                writer.flush().await?;
                match pending.recv().await {
                    Some(next) => next,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        let outgoing = match next.outgoing.try_recv() {
            Ok(outgoing) => outgoing,
            Err(oneshot::error::TryRecvError::Empty) => {
                writer.flush().await?;
                // A handler task that panicked drops its sender: closing is
                // the only answer that keeps responses in order.
                (&mut next.outgoing).await.unwrap_or(Outgoing::Close("request handler failed".into()))
            }
            Err(oneshot::error::TryRecvError::Closed) => Outgoing::Close("request handler failed".into()),
        };
        match outgoing {
            Outgoing::Frame(frame) => {
                for segment in frame.segments() {
                    writer.write_all(segment).await?;
                }
                metrics.bytes_sent.fetch_add(frame.len() as u64, Ordering::Relaxed);
                metrics.observe_response(next.api_key, next.arrived.elapsed());
            }
            Outgoing::Nothing => metrics.observe_response(next.api_key, next.arrived.elapsed()),
            Outgoing::Close(reason) => {
                tracing::info!(%reason, "closing connection");
                break;
            }
        }
    }
    writer.flush().await?;
    writer.shutdown().await
}

/// A socket writer whose writes fail with `TimedOut` once the socket has
/// taken nothing for `stall` (each write that makes progress starts the
/// clock again, so a slow but reading client is not cut off).
struct StallGuard<W> {
    inner: W,
    stall: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<W: AsyncWrite + Unpin> StallGuard<W> {
    fn new(inner: W, stall: Duration) -> StallGuard<W> {
        StallGuard { inner, stall, deadline: None }
    }

    /// Ready(Err) once stalled too long; arms the clock on the first
    /// pending poll.
    fn check_stall(&mut self, cx: &mut TaskContext<'_>) -> Poll<std::io::Error> {
        let stall = self.stall;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {stall:?}"),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(
        &mut self,
        cx: &mut TaskContext<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.deadline = None;
                Poll::Ready(result)
            }
            Poll::Pending => match self.check_stall(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for StallGuard<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progress(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
