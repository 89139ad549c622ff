//! Cluster members in the quorum scenario: `ringtail serve` itself in
//! cluster mode (`serve::start_on` with `--controllers` naming the
//! scenario's voters), a broker only, on a simulated disk of its own. It
//! registers, heartbeats and follows the image through the server's
//! `cluster.rs` and the engine's `Broker::follow_image`, opening the logs
//! of the replicas the quorum places on it. Members crash (power loss of
//! their disk) and restart, resuming from what their data directory kept.
//! QL requires each member, after healing, alive in the image and holding
//! the voters' topics at their applied index.

use super::{sleep_ms, voter_addr, QuorumWorld};
use crate::disk::CrashWeights;
use crate::rng::Rng;
use crate::world::{sim_elapsed_ms, SteppedClock};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use ringtail_engine::io::AnyDisk;
use ringtail_server::config::{Controller, HostPort, ServeConfig};
use ringtail_server::serve::Platform;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const DATA_DIR: &str = "/data";
/// Members' node ids start here (the simulated brokers' are 1..=4).
pub const MEMBER_ID_BASE: i32 = 11;

pub fn member_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 3, 2, index as u8 + 1))
}

fn serve_config(world: &QuorumWorld, index: usize) -> ServeConfig {
    let host = member_ip(index).to_string();
    let mut config = ServeConfig::defaults();
    config.node_id = MEMBER_ID_BASE + index as i32;
    config.data_dir = PathBuf::from(DATA_DIR);
    config.listen = HostPort { host: host.clone(), port: 9092 };
    config.metrics_listen = HostPort { host, port: 9644 };
    config.controllers = (1..=world.plan.voters)
        .map(|id| {
            let addr = voter_addr(id);
            Controller {
                node_id: id as i32,
                address: HostPort { host: addr.ip().to_string(), port: addr.port() },
            }
        })
        .collect();
    config.log_cache_bytes = 8 << 20;
    config.log_cache_pretouch = false;
    // The workload rolls tiny segments on purpose, below the floors a
    // production broker holds clients to. Two sealed segment files open at
    // most: reads of older ones (followers catching up) open theirs, racing
    // truncation and retention.
    config.topic_limits = ringtail_engine::broker::TopicLimits {
        open_segment_files_max: 2,
        ..ringtail_engine::broker::TopicLimits::none()
    };
    if let Some(flush) = world.tuning.flush {
        config.flush = flush;
        config.topic_defaults.flush = flush;
    }
    if let Some(ms) = world.tuning.replica_lag_ms {
        config.replication.lag_time_max_ms = ms;
    }
    config
}

/// A member's node: starts the server (it returns once the member follows
/// the quorum) and keeps it until the node is killed. A server that stops
/// by itself (a failed log) or cannot start ends its process: `supervise`
/// starts the node again, as a supervisor would. A SIGTERM (the chaos sets
/// `member_term`) stops the server as `ringtail serve` does on one: a
/// controlled shutdown, a drain, the logs closed; then the supervisor too.
pub async fn member_main(world: Arc<QuorumWorld>, index: usize) {
    let node_id = MEMBER_ID_BASE + index as i32;
    world.member_stopped[index].store(false, Ordering::SeqCst);
    world.member_term[index].store(false, Ordering::SeqCst);
    // A restarted process draws fresh randomness; the same seed for every
    // start gave a restart its old incarnation, so the quorum never fenced it.
    let start = world.member_starts[index].fetch_add(1, Ordering::SeqCst);
    let platform = Platform {
        disk: AnyDisk::Dyn(Arc::new(world.member_disks[index].clone())),
        clock: Arc::new(SteppedClock(world.member_clock_offsets[index].clone())),
        seed: world.plan.seed ^ ((node_id as u64) << 40) ^ start.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        observer: None,
    };
    match ringtail_server::serve::start_on(serve_config(&world, index), platform).await {
        Ok(server) => {
            world.check().at(sim_elapsed_ms()).note(format!("member {node_id}: follows the quorum"));
            world.members.lock().unwrap_or_else(|e| e.into_inner()).insert(node_id, server.broker().clone());
            let terminated = async {
                while !world.member_term[index].load(Ordering::SeqCst) {
                    sleep_ms(50).await;
                }
            };
            // Biased: an unbiased select draws from tokio's own RNG, which
            // madsim does not seed (the run would not replay).
            tokio::select! {
                biased;
                () = server.stopping() => {}
                () = terminated => {
                    world.check().at(sim_elapsed_ms()).note(format!("member {node_id}: SIGTERM"));
                }
            }
            world.members.lock().unwrap_or_else(|e| e.into_inner()).remove(&node_id);
            let why = server.shutdown().await.err().map_or("no error".to_owned(), |e| e.to_string());
            world.check().at(sim_elapsed_ms()).note(format!("member {node_id}: stopped: {why}"));
        }
        Err(e) => world.check().at(sim_elapsed_ms()).note(format!("member {node_id}: did not start: {e}")),
    }
    world.member_stopped[index].store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

/// Starts again, a second later, every member whose process ended by
/// itself (and that no chaos holds down), until the run ends.
pub async fn supervise(world: Arc<QuorumWorld>, nodes: Vec<NodeId>) {
    loop {
        sleep_ms(1_000).await;
        for (index, node) in nodes.iter().enumerate() {
            if !world.member_down[index].load(Ordering::SeqCst)
                && world.member_stopped[index].swap(false, Ordering::SeqCst)
            {
                world.counters.fault("member_restarted");
                // The process ended: the OS releases its lock on the data
                // directory and keeps what it wrote (a process crash).
                let process_exit = CrashWeights { keep_all: 1, drop_unsynced: 0, random: 0 };
                world.member_disks[index].crash(process_exit);
                Handle::current().restart(*node);
            }
        }
    }
}

/// Member crashes until killed (with the chaos node).
pub async fn chaos(world: Arc<QuorumWorld>, nodes: Vec<NodeId>) {
    let mut rng = Rng::fork(world.plan.seed, "quorum-member-chaos");
    loop {
        sleep_ms(rng.range(2_000, 8_000)).await;
        let index = rng.below(nodes.len() as u64) as usize;
        let node_id = MEMBER_ID_BASE + index as i32;
        let down = rng.range(0, 3_000);
        world.member_down[index].store(true, Ordering::SeqCst);
        world.members.lock().unwrap_or_else(|e| e.into_inner()).remove(&node_id);
        let kind = world.member_disks[index].crash(world.plan.crash_weights);
        Handle::current().kill(nodes[index]);
        world.counters.fault("member_crash");
        world
            .check()
            .at(sim_elapsed_ms())
            .note(format!("chaos: member {node_id} crashes ({kind:?}) for {down} ms"));
        sleep_ms(down).await;
        Handle::current().restart(nodes[index]);
        world.member_down[index].store(false, Ordering::SeqCst);
    }
}

/// Restarts every member the chaos left down.
pub fn heal(world: &QuorumWorld, nodes: &[NodeId]) {
    for (index, node) in nodes.iter().enumerate() {
        if world.member_down[index].swap(false, Ordering::SeqCst) {
            Handle::current().restart(*node);
        }
    }
}
