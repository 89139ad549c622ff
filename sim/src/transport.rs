//! Messages over madsim's simulated network: datagrams on an `Endpoint`,
//! which the network may lose, delay, reorder (random latency per message)
//! and, here, duplicate. Requests carry an id; a client waits for the
//! response with that id up to its timeout and drops stale ones, so a lost
//! or late message is an unknown outcome, as over a real network.

use crate::rng::Rng;
use crate::stats::Counters;
use crate::wire::{self, Envelope, Request, Response};
use madsim::net::Endpoint;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const BROKER_PORT: u16 = 9092;
/// The one tag every message uses; ids match responses to requests.
pub const TAG: u64 = 1;

/// Sends `bytes`; with `duplicate_after` the network delivers a second copy
/// that much later (madsim's network never duplicates by itself).
pub async fn send(ep: &Endpoint, dst: SocketAddr, bytes: Vec<u8>, duplicate_after: Option<Duration>) {
    if let Some(delay) = duplicate_after {
        let (ep, copy) = (ep.clone(), bytes.clone());
        madsim::task::spawn(async move {
            madsim::time::sleep(delay).await;
            let _ = ep.send_to_raw(dst, TAG, Box::new(copy)).await;
        });
    }
    // A send to a dead or partitioned node is dropped silently, like a
    // datagram; only the receiver's timeout tells.
    let _ = ep.send_to_raw(dst, TAG, Box::new(bytes)).await;
}

/// Receives the next message's bytes and its sender.
pub async fn recv(ep: &Endpoint) -> Option<(Vec<u8>, SocketAddr)> {
    let (payload, from) = ep.recv_from_raw(TAG).await.ok()?;
    let bytes = payload.downcast::<Vec<u8>>().ok()?;
    Some((*bytes, from))
}

/// Whether (and how late) to duplicate the next message.
pub fn draw_duplicate(rng: &mut Rng, rate: f64, counters: &Counters) -> Option<Duration> {
    if rng.chance(rate) {
        counters.fault("dup");
        Some(Duration::from_micros(rng.range(0, 20_000)))
    } else {
        None
    }
}

/// A client's connection to one broker: one request at a time.
pub struct Client {
    ep: Endpoint,
    server: SocketAddr,
    next_id: u64,
    timeout: Duration,
    rng: Rng,
    duplicate_rate: f64,
    counters: Arc<Counters>,
    /// The loss epoch the last response carried.
    last_epoch: u64,
}

impl Client {
    pub async fn connect(
        server: SocketAddr,
        timeout: Duration,
        rng: Rng,
        duplicate_rate: f64,
        counters: Arc<Counters>,
    ) -> Client {
        let ep = Endpoint::bind("0.0.0.0:0").await.expect("a client binds an ephemeral port");
        Client { ep, server, next_id: 1, timeout, rng, duplicate_rate, counters, last_epoch: 0 }
    }

    /// The checker's loss epoch when the broker produced the last response.
    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    async fn send(&mut self, body: Request) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = wire::encode_request(&Envelope { id, epoch: 0, body });
        let dup = draw_duplicate(&mut self.rng, self.duplicate_rate, &self.counters);
        send(&self.ep, self.server, bytes, dup).await;
        id
    }

    /// Sends a request that gets no answer (produce with acks=0).
    pub async fn send_only(&mut self, body: Request) {
        self.send(body).await;
    }

    /// Sends a request and waits for its response; `None` on timeout.
    pub async fn call(&mut self, body: Request) -> Option<Response> {
        let timeout = self.timeout;
        self.call_within(body, timeout).await
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// `call` with its own timeout (a JoinGroup waits for the rebalance).
    pub async fn call_within(&mut self, body: Request, timeout: Duration) -> Option<Response> {
        let id = self.send(body).await;
        let ep = &self.ep;
        let wait = async {
            loop {
                let (bytes, _) = recv(ep).await?;
                match wire::decode_response(&bytes) {
                    Ok(msg) if msg.id == id => return Some(msg),
                    // A late answer to an earlier request, or a duplicate.
                    Ok(_) => continue,
                    Err(e) => panic!("a broker sent an undecodable response: {e:?}"),
                }
            }
        };
        let msg = madsim::time::timeout(timeout, wait).await.ok().flatten()?;
        self.last_epoch = msg.epoch;
        Some(msg.body)
    }
}
