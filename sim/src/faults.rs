//! The fault schedule of the safety phase, run on a "chaos" node so that
//! healing is one kill: crashes (the disk crashes right before the node is
//! killed, and the restarted node gets the same disk), pauses, network
//! partitions and clogged links, bursts of packet loss, a full disk. The
//! steady faults (disk EIO, flips, misdirected writes, latency, background
//! loss, duplicates) are set once per seed by the swarm draw.

use crate::disk::DiskFaults;
use crate::rng::Rng;
use crate::world::World;
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The nodes of a run.
#[derive(Clone, Debug)]
pub struct Nodes {
    pub broker: NodeId,
    pub clients: Vec<NodeId>,
    /// The consumer-group members' nodes (group seeds only).
    pub members: Vec<NodeId>,
    pub chaos: NodeId,
    pub verifier: NodeId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Episode {
    Crash,
    Pause,
    Partition,
    LossBurst,
    DiskFull,
}

async fn sleep_ms(ms: u64) {
    madsim::time::sleep(Duration::from_millis(ms)).await;
}

/// Crashes the broker's disk, kills the node, waits `down_ms`, restarts it.
pub async fn crash_restart(world: &World, broker: NodeId, down_ms: u64, why: &str) {
    let handle = Handle::current();
    world.broker_down.store(true, Ordering::SeqCst);
    world.broker_serving.store(false, Ordering::SeqCst);
    let kind = world.disk.crash(world.cfg.crash_weights);
    handle.kill(broker);
    world.broker_paused.store(false, Ordering::SeqCst);
    world.checker().note(None, None, format!("{why}: disk crash ({kind:?}), broker killed for {down_ms} ms"));
    sleep_ms(down_ms).await;
    handle.restart(broker);
    world.broker_down.store(false, Ordering::SeqCst);
}

/// The chaos node's task: fault episodes at random gaps until it is killed.
pub async fn chaos(world: Arc<World>, nodes: Nodes) {
    let mut rng = Rng::fork(world.cfg.seed, "chaos");
    let c = world.cfg.classes;
    let mut options = Vec::new();
    for (on, episode) in [
        (c.crash, Episode::Crash),
        (c.pause, Episode::Pause),
        (c.partition, Episode::Partition),
        (c.loss, Episode::LossBurst),
        (c.enospc, Episode::DiskFull),
    ] {
        if on {
            options.push(episode);
        }
    }
    if options.is_empty() {
        return;
    }
    loop {
        let (lo, hi) = world.cfg.episode_gap_ms;
        sleep_ms(rng.range(lo, hi)).await;
        match *rng.pick(&options) {
            Episode::Crash => crash_restart(&world, nodes.broker, rng.range(0, 2_000), "fault").await,
            Episode::Pause => pause(&world, nodes.broker, rng.range(10, 3_000)).await,
            Episode::Partition => partition(&world, &nodes, &mut rng),
            Episode::LossBurst => loss_burst(&world, &mut rng),
            Episode::DiskFull => disk_full(&world, &mut rng).await,
        }
    }
}

async fn pause(world: &World, broker: NodeId, ms: u64) {
    let handle = Handle::current();
    world.counters.fault("pause");
    world.checker().note(None, None, format!("broker paused for {ms} ms"));
    world.broker_paused.store(true, Ordering::SeqCst);
    handle.pause(broker);
    sleep_ms(ms).await;
    handle.resume(broker);
    world.broker_paused.store(false, Ordering::SeqCst);
}

/// Cuts the broker off (both ways or one way) or clogs one client's link,
/// for a while; runs beside the other episodes.
fn partition(world: &Arc<World>, nodes: &Nodes, rng: &mut Rng) {
    let net = NetSim::current();
    let ms = rng.range(50, 4_000);
    let broker = nodes.broker;
    let clients: Vec<NodeId> = nodes.clients.iter().chain(&nodes.members).copied().collect();
    let client = *rng.pick(&clients);
    let how = rng.below(4);
    match how {
        0 => net.clog_node(broker),
        1 => net.clog_node_in(broker),
        2 => net.clog_node_out(broker),
        _ => {
            net.clog_link(client, broker);
            net.clog_link(broker, client);
        }
    }
    world.counters.fault("partition");
    let what = ["broker isolated", "broker deaf", "broker mute", "client link cut"][how as usize];
    world.checker().note(None, None, format!("network: {what} for {ms} ms"));
    madsim::task::spawn(async move {
        sleep_ms(ms).await;
        match how {
            0 => net.unclog_node(broker),
            1 => net.unclog_node_in(broker),
            2 => net.unclog_node_out(broker),
            _ => {
                net.unclog_link(client, broker);
                net.unclog_link(broker, client);
            }
        }
    });
}

fn loss_burst(world: &Arc<World>, rng: &mut Rng) {
    let net = NetSim::current();
    let (rate, ms) = (rng.range(20, 90) as f64 / 100.0, rng.range(100, 3_000));
    net.update_config(|c| c.packet_loss_rate = rate);
    world.counters.fault("loss_burst");
    world.checker().note(None, None, format!("network: {:.0}% loss for {ms} ms", rate * 100.0));
    let background = world.cfg.loss_rate;
    madsim::task::spawn(async move {
        sleep_ms(ms).await;
        net.update_config(|c| c.packet_loss_rate = background);
    });
}

async fn disk_full(world: &World, rng: &mut Rng) {
    let (slack, ms) = (rng.range(0, 64 * 1024), rng.range(100, 3_000));
    world.disk.fill_up(slack).await;
    world.checker().note(None, None, format!("disk full (+{slack} bytes) for {ms} ms"));
    sleep_ms(ms).await;
    world.disk.unfill();
}

/// Ends the safety phase: stops every fault and undoes the lasting ones.
pub fn heal(world: &World, nodes: &Nodes) {
    let handle = Handle::current();
    handle.kill(nodes.chaos);
    let net = NetSim::current();
    let all: Vec<NodeId> = [nodes.broker, nodes.chaos, nodes.verifier]
        .into_iter()
        .chain(nodes.clients.clone())
        .chain(nodes.members.clone())
        .collect();
    for a in &all {
        net.unclog_node(*a);
        for b in &all {
            net.unclog_link(*a, *b);
        }
    }
    net.update_config(|c| c.packet_loss_rate = 0.0);
    world.disk.unfill();
    world.disk.set_faults(DiskFaults::default());
    if world.broker_paused.swap(false, Ordering::SeqCst) {
        handle.resume(nodes.broker);
    }
    if world.broker_down.swap(false, Ordering::SeqCst) {
        handle.restart(nodes.broker);
    }
    world.checker().note(None, None, "healed: faults stopped, network and disk restored".to_string());
}
