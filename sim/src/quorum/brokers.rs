//! The quorum scenario's clients, on one node: simulated brokers that
//! register and heartbeat (some fall silent for longer than their session,
//! some restart with a new incarnation), and an admin creating topics.
//! They find the leader by asking around and following NOT_CONTROLLER.

use super::wire::{client_addr, voter_addr, Ask, Outcome, Reply, Request, TAG_REPLY, TAG_REQUEST};
use super::QuorumWorld;
use crate::rng::Rng;
use crate::world::sim_elapsed_ms;
use madsim::net::Endpoint;
use ringtail_engine::error::ErrorCode;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a request waits for its reply.
const REPLY_TIMEOUT_MS: u64 = 1_000;

/// Requests out and their reply slots, over one endpoint.
pub struct Caller {
    endpoint: Arc<Endpoint>,
    next_id: Mutex<u64>,
    slots: Arc<Mutex<BTreeMap<u64, tokio::sync::oneshot::Sender<Outcome>>>>,
    /// The voter last found leading.
    leader: Mutex<u64>,
    voters: u64,
}

impl Caller {
    pub async fn new(voters: u64) -> Arc<Caller> {
        let endpoint = Arc::new(Endpoint::bind(client_addr()).await.expect("the client address is free"));
        let slots: Arc<Mutex<BTreeMap<u64, tokio::sync::oneshot::Sender<Outcome>>>> = Arc::default();
        let (e, s) = (endpoint.clone(), slots.clone());
        madsim::task::spawn(async move {
            while let Ok((payload, _)) = e.recv_from_raw(TAG_REPLY).await {
                if let Ok(reply) = payload.downcast::<Reply>() {
                    if let Some(slot) = s.lock().unwrap_or_else(|p| p.into_inner()).remove(&reply.id) {
                        let _ = slot.send(reply.outcome);
                    }
                }
            }
        });
        Arc::new(Caller { endpoint, next_id: Mutex::new(0), slots, leader: Mutex::new(1), voters })
    }

    /// Asks the leader (as far as it knows), trying the next voter on
    /// silence or NOT_CONTROLLER; `None` if nobody answered for it.
    pub async fn call(&self, ask: Ask) -> Option<Outcome> {
        for _ in 0..self.voters * 2 {
            let to = *self.leader.lock().unwrap_or_else(|p| p.into_inner());
            let id = {
                let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
                *next += 1;
                *next
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.slots.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
            let request = Request { id, ask: ask.clone() };
            let _ = self.endpoint.send_to_raw(voter_addr(to), TAG_REQUEST, Box::new(request)).await;
            let outcome = madsim::time::timeout(Duration::from_millis(REPLY_TIMEOUT_MS), rx).await;
            self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            match outcome {
                Ok(Ok(Outcome::Refused(e))) if e.code == ErrorCode::NotController => self.next_voter(to),
                Ok(Ok(outcome)) => return Some(outcome),
                _ => self.next_voter(to),
            }
        }
        None
    }

    fn next_voter(&self, from: u64) {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = from % self.voters + 1;
    }
}

async fn sleep_ms(ms: u64) {
    madsim::time::sleep(Duration::from_millis(ms)).await;
}

/// A simulated broker: registers, heartbeats; during the safety phase it
/// sometimes falls silent past its session, or restarts (new incarnation).
pub async fn broker(world: Arc<QuorumWorld>, caller: Arc<Caller>, node_id: i32) {
    let mut rng = Rng::fork(world.plan.seed, &format!("quorum-broker-{node_id}"));
    let mut incarnation = 1u64;
    let mut registered = false;
    while !world.done.load(Ordering::SeqCst) {
        let quiet = world.quiet.load(Ordering::SeqCst);
        if !registered {
            if let Some(Outcome::Committed(index)) = caller.call(Ask::Register { node_id, incarnation }).await
            {
                world.check().at(sim_elapsed_ms()).note(format!(
                    "client: broker {node_id} incarnation {incarnation} registered at index {index}"
                ));
                registered = true;
            }
        } else {
            match caller.call(Ask::Heartbeat { node_id, incarnation }).await {
                Some(Outcome::Refused(e)) if e.code == ErrorCode::StaleBrokerEpoch => registered = false,
                Some(Outcome::Heartbeat(state)) if quiet => {
                    world
                        .live_brokers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(node_id, !state.fenced);
                }
                _ => {}
            }
        }
        if !quiet && rng.chance(0.01) {
            let ms = world.plan.broker_session_ms + rng.range(0, 3_000);
            world
                .check()
                .at(sim_elapsed_ms())
                .note(format!("client: broker {node_id} falls silent for {ms} ms"));
            sleep_ms(ms).await;
        } else if !quiet && rng.chance(0.005) {
            incarnation += 1;
            registered = false;
            world.check().at(sim_elapsed_ms()).note(format!("client: broker {node_id} restarts"));
        }
        sleep_ms(world.plan.broker_session_ms / 4).await;
    }
}

/// Creates topics one after another; acknowledged ones must survive.
pub async fn admin(world: Arc<QuorumWorld>, caller: Arc<Caller>) {
    let mut rng = Rng::fork(world.plan.seed, "quorum-admin");
    let mut n = 0;
    while !world.quiet.load(Ordering::SeqCst) {
        let name = format!("t{n}");
        n += 1;
        let ask = Ask::CreateTopic {
            name: name.clone(),
            partitions: rng.range(1, 4) as i32,
            replication_factor: rng.range(1, world.plan.brokers as u64 + 1) as i16,
        };
        world.counters.op("create_topic");
        if let Some(Outcome::Committed(index)) = caller.call(ask).await {
            world.check().at(sim_elapsed_ms()).acked(&name, index);
        }
        sleep_ms(rng.range(50, 800)).await;
    }
}
