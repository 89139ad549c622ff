//! Connections on the controller listener, in both worlds (tokio's TCP, or
//! madsim's under the simulator): one outbound connection per peer voter,
//! carrying raft messages; inbound connections from peers and brokers,
//! whose frames become events for the voter's loop.
//!
//! Raft tolerates lost messages (it retransmits), so a connection that
//! breaks drops what was queued on it, and a peer that cannot be reached
//! has its messages dropped until it can: nothing queues without bound.

use super::tls::ControllerTls;
use super::wire::{encode, read_frame, Frame, Request};
use bytes::Bytes;
use ringtail_client::tcp;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How long a connect to a peer may take, and the pause after a failed one.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// The halves of a controller connection, plaintext or TLS alike.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection to voter `voter` at `addr`, through the TLS handshake
/// when `tls` is set.
pub async fn connect(
    voter: u64,
    addr: SocketAddr,
    tls: Option<&ControllerTls>,
    timeout: Duration,
) -> io::Result<(BoxRead, BoxWrite)> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    match tls {
        Some(tls) => tls.connect(voter, stream).await,
        None => {
            let (read, write) = tcp::split(stream);
            Ok((Box::new(read), Box::new(write)))
        }
    }
}

/// What arrives for the voter's loop.
pub enum Event {
    Raft(raft::prelude::Message),
    /// A broker's request, and where its reply goes.
    Request(Request, UnboundedSender<Bytes>),
}

/// Sends raft messages to peers.
pub struct Peers {
    queues: BTreeMap<u64, UnboundedSender<Bytes>>,
}

impl Peers {
    /// Starts a sender task per peer (`peers` without this voter).
    pub fn start(peers: &BTreeMap<u64, SocketAddr>, tls: Option<Arc<ControllerTls>>) -> Peers {
        let queues = peers
            .iter()
            .map(|(id, addr)| {
                let (tx, rx) = unbounded_channel();
                tokio::spawn(peer_sender(*id, *addr, tls.clone(), rx));
                (*id, tx)
            })
            .collect();
        Peers { queues }
    }

    pub fn send(&self, message: raft::prelude::Message) {
        if let Some(queue) = self.queues.get(&message.to) {
            let _ = queue.send(encode(&Frame::Raft(message)));
        }
    }
}

async fn peer_sender(
    id: u64,
    addr: SocketAddr,
    tls: Option<Arc<ControllerTls>>,
    mut queue: UnboundedReceiver<Bytes>,
) {
    loop {
        let mut writer = match connect(id, addr, tls.as_deref(), CONNECT_TIMEOUT).await {
            Ok((_, writer)) => writer,
            Err(e) => {
                tracing::debug!(peer = id, %addr, error = %e, "controller peer unreachable");
                tokio::time::sleep(RECONNECT_PAUSE).await;
                // What queued meanwhile is stale: raft sends again.
                while queue.try_recv().is_ok() {}
                continue;
            }
        };
        loop {
            let Some(frame) = queue.recv().await else { return };
            let written = async {
                writer.write_all(&frame).await?;
                writer.flush().await
            }
            .await;
            if written.is_err() {
                break;
            }
        }
    }
}

/// Accepts connections and turns their frames into events, until the
/// listener fails.
pub async fn accept(listener: TcpListener, tls: Option<Arc<ControllerTls>>, events: UnboundedSender<Event>) {
    loop {
        let Ok((stream, from)) = listener.accept().await else { return };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, from, tls.clone(), events.clone()));
    }
}

async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    tls: Option<Arc<ControllerTls>>,
    events: UnboundedSender<Event>,
) {
    let (mut reader, mut writer): (BoxRead, BoxWrite) = match tls {
        Some(tls) => match tls.accept(stream).await {
            Ok(halves) => halves,
            Err(e) => {
                tracing::warn!(%from, error = %e, "refused a controller connection: TLS handshake failed");
                return;
            }
        },
        None => {
            let (read, write) = tcp::split(stream);
            (Box::new(read), Box::new(write))
        }
    };
    let (replies, mut outgoing) = unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
    });
    loop {
        let event = match read_frame(&mut reader).await {
            Ok(Some(Frame::Raft(m))) => Event::Raft(m),
            Ok(Some(Frame::Request(r))) => Event::Request(r, replies.clone()),
            Ok(Some(Frame::Reply(_))) | Ok(None) => return,
            Err(e) => {
                tracing::warn!(%from, error = %e, "closing a controller connection");
                return;
            }
        };
        if events.send(event).is_err() {
            return;
        }
    }
}
