//! A voter node: the engine's `QuorumNode` on the node's simulated disk,
//! raft messages and broker requests over madsim's network. Killed and
//! restarted by the scenario; each start recovers from the disk.

use super::wire::{voter_addr, Ask, Outcome, Reply, Request, TAG_RAFT, TAG_REPLY, TAG_REQUEST};
use super::QuorumWorld;
use crate::quorumcheck::QuorumCheck;
use crate::world::{sim_elapsed_ms, SimClock};
use madsim::net::Endpoint;
use protobuf::Message as _;
use ringtail_engine::clock::Clock;
use ringtail_engine::controller::{QuorumConfig, QuorumNode};
use ringtail_engine::entropy::SeededEntropy;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub const DATA_DIR: &str = "/data";
/// The voter's loop wakes at least this often to tick raft.
const POLL_MS: u64 = 20;

enum Incoming {
    Raft(Vec<u8>),
    Request(Request, SocketAddr),
}

pub async fn voter_main(world: Arc<QuorumWorld>, id: u64) {
    let starts = world.starts[id as usize - 1].fetch_add(1, Ordering::SeqCst);
    let disk = world.disks[id as usize - 1].clone();
    let mut config = QuorumConfig::new(id, (1..=world.plan.voters).collect());
    config.broker_session_timeout_ms = world.plan.broker_session_ms as i64;
    config.snapshot_every = world.plan.snapshot_every;
    let entropy = Arc::new(SeededEntropy::new(world.plan.seed ^ (id << 40) ^ (starts << 20)));
    let mut node = match QuorumNode::open(disk, Path::new(DATA_DIR), config, entropy).await {
        Ok(node) => node,
        Err(e) => {
            world.check().at(sim_elapsed_ms()).note(format!("voter {id}: refuses to start: {e}"));
            world.refused[id as usize - 1].store(true, Ordering::SeqCst);
            return;
        }
    };
    world.refused[id as usize - 1].store(false, Ordering::SeqCst);
    node.controller.observe_applied();
    world.check().at(sim_elapsed_ms()).note(format!("voter {id}: started (start {starts})"));
    let endpoint = Arc::new(Endpoint::bind(voter_addr(id)).await.expect("the voter's address is free"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Receivers on tasks of their own: a datagram is never dropped by a
    // cancelled receive.
    for tag in [TAG_RAFT, TAG_REQUEST] {
        let (endpoint, tx) = (endpoint.clone(), tx.clone());
        madsim::task::spawn(async move {
            while let Ok((payload, from)) = endpoint.recv_from_raw(tag).await {
                let incoming = match tag {
                    TAG_RAFT => payload.downcast::<Vec<u8>>().ok().map(|b| Incoming::Raft(*b)),
                    _ => payload.downcast::<Request>().ok().map(|r| Incoming::Request(*r, from)),
                };
                if incoming.and_then(|i| tx.send(i).ok()).is_none() {
                    return;
                }
            }
        });
    }
    let mut waiting: BTreeMap<u64, (SocketAddr, u64)> = BTreeMap::new();
    let mut last_applied = u64::MAX;
    loop {
        let incoming = tokio_select(&mut rx).await;
        let now = SimClock.now_ms();
        let mut out = Vec::new();
        let result = match incoming {
            Some(Incoming::Raft(bytes)) => match raft::prelude::Message::parse_from_bytes(&bytes) {
                Ok(message) => node.step(message).await,
                Err(_) => Ok(Vec::new()),
            },
            Some(Incoming::Request(request, from)) => {
                match handle(&mut node, &request.ask, now) {
                    Handled::Later(proposal) => {
                        waiting.insert(proposal, (from, request.id));
                    }
                    Handled::Now(outcome) => reply(&endpoint, from, Reply { id: request.id, outcome }).await,
                }
                node.drive().await
            }
            None => Ok(Vec::new()),
        };
        match result {
            Ok(messages) => out.extend(messages),
            Err(e) => return stopped(&world, id, e),
        }
        match node.tick(now).await {
            Ok(messages) => out.extend(messages),
            Err(e) => return stopped(&world, id, e),
        }
        report(&world, id, &mut node, &mut last_applied);
        for (proposal, answer) in node.controller.take_answers() {
            if let Some((from, request)) = waiting.remove(&proposal) {
                let outcome = match answer {
                    Ok(index) => Outcome::Committed(index),
                    Err(e) => Outcome::Refused(e),
                };
                reply(&endpoint, from, Reply { id: request, outcome }).await;
            }
        }
        for message in out {
            let to = voter_addr(message.to);
            let bytes = message.write_to_bytes().expect("a raft message encodes");
            let _ = endpoint.send_to_raw(to, TAG_RAFT, Box::new(bytes)).await;
        }
    }
}

/// The next datagram, or `None` after a poll interval without one.
async fn tokio_select(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Incoming>) -> Option<Incoming> {
    madsim::time::timeout(Duration::from_millis(POLL_MS), rx.recv()).await.ok().flatten()
}

enum Handled {
    /// Answered once this proposal applies.
    Later(u64),
    Now(Outcome),
}

fn handle(node: &mut QuorumNode<crate::disk::SimDisk>, ask: &Ask, now: i64) -> Handled {
    let c = &mut node.controller;
    let proposal = match ask {
        Ask::Register { node_id, incarnation } => c.register_broker(*node_id, *incarnation, Vec::new(), now),
        Ask::CreateTopic { name, partitions, replication_factor } => {
            c.create_topic(name, *partitions, *replication_factor, BTreeMap::new())
        }
        Ask::Heartbeat { node_id, incarnation } => {
            return Handled::Now(match c.broker_heartbeat(*node_id, *incarnation, now) {
                Ok(state) => Outcome::Heartbeat(state),
                Err(e) => Outcome::Refused(e),
            })
        }
    };
    match proposal {
        Ok(id) => Handled::Later(id),
        Err(e) => Handled::Now(Outcome::Refused(e)),
    }
}

async fn reply(endpoint: &Endpoint, to: SocketAddr, reply: Reply) {
    let _ = endpoint.send_to_raw(to, TAG_REPLY, Box::new(reply)).await;
}

fn stopped(world: &QuorumWorld, id: u64, e: std::io::Error) {
    world.check().at(sim_elapsed_ms()).note(format!("voter {id}: stops: its disk failed: {e}"));
    world.exited[id as usize - 1].store(true, Ordering::SeqCst);
}

/// What the checker hears from a voter after each turn.
fn report(world: &QuorumWorld, id: u64, node: &mut QuorumNode<crate::disk::SimDisk>, last_applied: &mut u64) {
    let c = &mut node.controller;
    let mut check = world.check();
    let check: &mut QuorumCheck = check.at(sim_elapsed_ms());
    if c.is_leader() {
        check.leader(id, c.term());
    }
    for (index, term, crc) in c.take_applied() {
        check.applied(id, index, term, crc);
    }
    if c.applied() != *last_applied {
        *last_applied = c.applied();
        let json = serde_json::to_vec(c.image()).expect("an image serializes");
        check.image(id, c.applied(), crc32c::crc32c(&json) as u64 | ((json.len() as u64) << 32));
        check.state(id, c.applied(), Some(c.image()), c.is_leader());
    } else {
        check.state(id, c.applied(), None, c.is_leader());
    }
}
