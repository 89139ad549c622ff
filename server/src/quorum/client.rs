//! A broker's (or a tool's) side of the controller listener: requests to
//! the quorum's leader, found by asking around and following the leader a
//! voter names in NOT_CONTROLLER.

use super::tls::ControllerTls;
use super::transport::{self, BoxWrite};
use super::wire::{encode, read_frame, Ask, Frame, Outcome, Request};
use ringtail_engine::error::ErrorCode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

type Pending = Arc<Mutex<BTreeMap<u64, oneshot::Sender<Outcome>>>>;

struct Connection {
    writer: tokio::sync::Mutex<BoxWrite>,
    pending: Pending,
}

pub struct QuorumClient {
    voters: BTreeMap<u64, SocketAddr>,
    timeout: Duration,
    next_id: Mutex<u64>,
    /// The voter to ask first.
    leader: Mutex<u64>,
    connections: Mutex<BTreeMap<u64, Arc<Connection>>>,
    /// Set when the controller listener takes TLS only.
    tls: Option<Arc<ControllerTls>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl QuorumClient {
    pub fn new(voters: BTreeMap<u64, SocketAddr>, timeout: Duration) -> QuorumClient {
        let first = voters.keys().next().copied().unwrap_or(1);
        QuorumClient {
            voters,
            timeout,
            next_id: Mutex::new(0),
            leader: Mutex::new(first),
            connections: Mutex::new(BTreeMap::new()),
            tls: None,
        }
    }

    /// Connects to the voters with TLS (`quorum::tls`).
    pub fn with_tls(self, tls: Option<Arc<ControllerTls>>) -> QuorumClient {
        QuorumClient { tls, ..self }
    }

    /// Asks the leader; tries each voter in turn (twice round) on silence
    /// or NOT_CONTROLLER. `None` when none answered otherwise.
    pub async fn call(&self, ask: Ask) -> Option<Outcome> {
        for _ in 0..self.voters.len() * 2 {
            let to = *lock(&self.leader);
            match self.call_one(to, ask.clone()).await {
                Some(Outcome::Refused { code, leader, .. }) if code == ErrorCode::NotController.code() => {
                    self.next(to, leader);
                }
                Some(outcome) => return Some(outcome),
                None => self.next(to, None),
            }
        }
        None
    }

    fn next(&self, from: u64, hint: Option<u64>) {
        let ids: Vec<u64> = self.voters.keys().copied().collect();
        let after = ids.iter().position(|id| *id == from).map_or(0, |i| (i + 1) % ids.len().max(1));
        let next = hint.filter(|h| self.voters.contains_key(h) && *h != from).unwrap_or(ids[after]);
        *lock(&self.leader) = next;
    }

    /// One request to voter `to`; `None` on a timeout or a broken connection.
    pub async fn call_one(&self, to: u64, ask: Ask) -> Option<Outcome> {
        let connection = self.connection(to).await?;
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            *next
        };
        let (tx, rx) = oneshot::channel();
        lock(&connection.pending).insert(id, tx);
        let frame = encode(&Frame::Request(Request { id, ask }));
        let sent = {
            let mut writer = connection.writer.lock().await;
            writer.write_all(&frame).await.is_ok() && writer.flush().await.is_ok()
        };
        let outcome =
            if sent { tokio::time::timeout(self.timeout, rx).await.ok().and_then(Result::ok) } else { None };
        lock(&connection.pending).remove(&id);
        if outcome.is_none() {
            // Unknown state: the next call starts a fresh connection.
            lock(&self.connections).remove(&to);
        }
        outcome
    }

    async fn connection(&self, to: u64) -> Option<Arc<Connection>> {
        if let Some(c) = lock(&self.connections).get(&to) {
            return Some(c.clone());
        }
        let addr = *self.voters.get(&to)?;
        let (mut reader, writer) = match transport::connect(to, addr, self.tls.as_deref(), self.timeout).await
        {
            Ok(halves) => halves,
            Err(e) => {
                tracing::debug!(voter = to, %addr, error = %e, "cannot reach the controller");
                return None;
            }
        };
        let pending: Pending = Arc::default();
        let slots = pending.clone();
        tokio::spawn(async move {
            while let Ok(Some(frame)) = read_frame(&mut reader).await {
                if let Frame::Reply(reply) = frame {
                    if let Some(slot) = lock(&slots).remove(&reply.id) {
                        let _ = slot.send(reply.outcome);
                    }
                }
            }
        });
        let connection = Arc::new(Connection { writer: tokio::sync::Mutex::new(writer), pending });
        lock(&self.connections).insert(to, connection.clone());
        Some(connection)
    }
}
