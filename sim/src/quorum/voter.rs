//! A voter node: the server's controller voter (`ringtail_server::quorum`:
//! the controller listener, its connections, the voter's loop) around the
//! engine's `QuorumNode`, on the node's simulated disk and madsim's TCP.
//! Killed and restarted by the scenario; each start recovers from the disk.

use super::{voter_addr, QuorumWorld};
use crate::quorumcheck::{image_hash, QuorumCheck};
use crate::world::{sim_elapsed_ms, SimClock};
use ringtail_engine::controller::{Controller, QuorumConfig, QuorumNode};
use ringtail_engine::entropy::SeededEntropy;
use ringtail_server::quorum::voter::{self, VoterObserver};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const DATA_DIR: &str = "/data";

pub async fn voter_main(world: Arc<QuorumWorld>, id: u64) {
    let starts = world.starts[id as usize - 1].fetch_add(1, Ordering::SeqCst);
    let disk = world.disks[id as usize - 1].clone();
    let mut config = QuorumConfig::new(id, (1..=world.plan.voters).collect());
    config.broker_session_timeout_ms = world.plan.broker_session_ms as i64;
    config.snapshot_every = world.plan.snapshot_every;
    config.leader_rebalance_interval_ms = world.plan.rebalance_ms;
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
    let listener = madsim::net::TcpListener::bind(voter_addr(id)).await.expect("the voter's address is free");
    let peers: BTreeMap<u64, _> =
        (1..=world.plan.voters).filter(|p| *p != id).map(|p| (p, voter_addr(p))).collect();
    let observer = Arc::new(Reporter { world: world.clone(), id, last_applied: AtomicU64::new(u64::MAX) });
    let error = voter::run(node, listener, peers, Arc::new(SimClock), Some(observer), None).await;
    world.check().at(sim_elapsed_ms()).note(format!("voter {id}: stops: its disk failed: {error}"));
    world.exited[id as usize - 1].store(true, Ordering::SeqCst);
}

/// What the checker hears from a voter after each turn.
struct Reporter {
    world: Arc<QuorumWorld>,
    id: u64,
    last_applied: AtomicU64,
}

impl VoterObserver for Reporter {
    fn after_turn(&self, c: &mut Controller) {
        let id = self.id;
        let mut check = self.world.check();
        let check: &mut QuorumCheck = check.at(sim_elapsed_ms());
        if c.is_leader() {
            check.leader(id, c.term());
        }
        for (index, term, crc) in c.take_applied() {
            check.applied(id, index, term, crc);
        }
        if self.last_applied.swap(c.applied(), Ordering::SeqCst) != c.applied() {
            check.image(id, c.applied(), image_hash(c.image()));
            check.state(id, c.applied(), Some(c.image()), c.is_leader());
        } else {
            check.state(id, c.applied(), None, c.is_leader());
        }
    }
}
