//! One seed, start to end: draw the world, start the nodes, run the safety
//! phase (workload under faults), heal, run the liveness phase (everything
//! converges within a bound), crash and restart once more and converge
//! again, then summarise.

use crate::checker::{Checker, Invariant};
use crate::disk::SimDisk;
use crate::faults::{self, Nodes};
use crate::group;
use crate::node::{self, DATA_DIR};
use crate::report::SeedResult;
use crate::rng::Rng;
use crate::stats::Counters;
use crate::swarm::{self, SimConfig};
use crate::taint::Taints;
use crate::verify;
use crate::workload;
use crate::world::{sim_elapsed_ms, World};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use ringtail_engine::group::{offsets_partition_for, OFFSETS_TOPIC};
use ringtail_engine::log::FlushPolicy;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the command line asks of every seed.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub safety_ms: u64,
    pub trace: bool,
    pub scenario: Scenario,
}

/// What a seed runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One broker (the real server) under its workload and faults.
    Broker,
    /// The metadata quorum's voters (`quorum`).
    Quorum,
    /// Cluster members replicating partitions (`replication`).
    Replication,
}

/// How long the workload may take to wind down after being told to stop.
const WIND_DOWN_MS: u64 = 60_000;

fn ip(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, a, b))
}

/// Runs the seed of the current madsim runtime.
pub async fn run_current_seed(options: RunOptions) -> SeedResult {
    let seed = Handle::current().seed();
    let cfg = swarm::draw(seed, options.safety_ms);
    let world = build_world(&cfg, options.trace);
    world.checker().note(None, None, describe(&cfg));
    for plan in &cfg.topics {
        world.checker().topic_planned(&plan.name, plan.partitions, plan.retention);
    }
    if let Some(g) = &cfg.groups {
        let mut checker = world.checker();
        checker.topic_planned(&g.topic.name, g.topic.partitions, false);
        let offsets = offsets_partition_for(&g.group, cfg.group_config.offsets_topic_partitions);
        checker.group_planned(&g.group, &g.topic.name, (OFFSETS_TOPIC.to_string(), offsets));
    }
    let nodes = start_nodes(&world);
    let workload = start_workload(&world, &nodes);

    // Safety phase: the workload under faults.
    let end = sim_elapsed_ms() + cfg.safety_ms;
    while sim_elapsed_ms() < end && !world.failed() {
        madsim::time::sleep(Duration::from_millis(250)).await;
    }
    world.stop_workload.store(true, std::sync::atomic::Ordering::SeqCst);
    wind_down(workload).await;
    faults::heal(&world, &nodes);
    world.group_quiet.store(true, std::sync::atomic::Ordering::SeqCst);

    // Liveness phase: healed, everything must converge within the bound.
    converge_or_fail(&world, &nodes, 0).await;
    // The group's members drain what is left (G3), then stop.
    if cfg.groups.is_some() && !world.failed() {
        drain_or_fail(&world, &nodes).await;
    }
    world.group_done.store(true, std::sync::atomic::Ordering::SeqCst);
    // Once more through a crash: recovery keeps what converged.
    if !world.failed() {
        faults::crash_restart(&world, nodes.broker, 0, "final restart").await;
        converge_or_fail(&world, &nodes, 1).await;
    }
    summarise(&world, &cfg, seed)
}

fn build_world(cfg: &SimConfig, trace: bool) -> Arc<World> {
    let taints = Arc::new(Mutex::new(Taints::default()));
    let disk = SimDisk::new(Rng::fork(cfg.seed, "disk"), Path::new(DATA_DIR), taints.clone());
    disk.set_faults(cfg.disk);
    NetSim::current().update_config(|c| {
        c.packet_loss_rate = cfg.loss_rate;
        c.send_latency = Duration::from_millis(cfg.latency_ms.0)..Duration::from_millis(cfg.latency_ms.1);
    });
    let flush_always = cfg.flush == FlushPolicy::Always;
    let checker = Checker::new(flush_always, taints.clone(), trace, Box::new(sim_elapsed_ms));
    Arc::new(World {
        cfg: cfg.clone(),
        disk,
        checker: Mutex::new(checker),
        taints,
        counters: Arc::new(Counters::default()),
        broker_addr: SocketAddr::new(ip(0, 1), crate::kafka::BROKER_PORT),
        broker_starts: AtomicU64::new(0),
        broker_down: AtomicBool::new(false),
        broker_serving: AtomicBool::new(false),
        last_open_error: Mutex::new(None),
        broker_paused: AtomicBool::new(false),
        stop_workload: AtomicBool::new(false),
        topics_ready: AtomicBool::new(false),
        group_topic_ready: AtomicBool::new(false),
        group_quiet: AtomicBool::new(false),
        group_done: AtomicBool::new(false),
        compacted: Mutex::default(),
    })
}

fn describe_group(cfg: &SimConfig) -> String {
    let Some(g) = &cfg.groups else { return "groups=off".into() };
    format!(
        "group={} topic={}x{} members={} static={} assignors={:?} session={}ms rebalance={}ms heartbeat={}ms commit~{}ms timeout={}ms \
         crash/stall/leave={:.4}/{:.4}/{:.4} offsets_partitions={} initial_delay={}ms \
         compact_min={}",
        g.group,
        g.topic.name,
        g.topic.partitions,
        g.members,
        g.static_members,
        g.assignors,
        g.session_timeout_ms,
        g.rebalance_timeout_ms,
        g.heartbeat_ms,
        g.commit_ms,
        g.request_timeout_ms,
        g.crash_chance,
        g.stall_chance,
        g.leave_chance,
        cfg.group_config.offsets_topic_partitions,
        cfg.group_config.initial_rebalance_delay_ms,
        cfg.group_config.compaction_min_records,
    )
}

fn describe(cfg: &SimConfig) -> String {
    let topics: Vec<String> = cfg
        .topics
        .iter()
        .map(|t| {
            let configs: Vec<String> = t.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}x{}[{}]", t.name, t.partitions, configs.join(" "))
        })
        .collect();
    format!(
        "seed {}: flush={} classes={} topics={} producers={} idempotent={:?} consumers={} fetch_wait={:?}ms timeout={}ms fetch<={}B cache={}B open_files={} compacted_keys={:?} disk={:?} {}",
        cfg.seed,
        cfg.flush,
        cfg.classes,
        topics.join(","),
        cfg.producers,
        cfg.idempotent,
        cfg.consumers,
        cfg.fetch_wait_ms,
        cfg.request_timeout_ms,
        cfg.fetch_bytes_max,
        cfg.log_cache_bytes,
        cfg.open_segment_files_max,
        cfg.compacted_keys,
        cfg.disk,
        describe_group(cfg)
    )
}

fn start_nodes(world: &Arc<World>) -> Nodes {
    let handle = Handle::current();
    let w = world.clone();
    let broker = handle
        .create_node()
        .name("broker")
        .ip(world.broker_addr.ip())
        .init(move || node::broker_main(w.clone()))
        .build();
    let clients: Vec<_> =
        (0..2).map(|i| handle.create_node().name(format!("client-{i}")).ip(ip(1, i + 1)).build()).collect();
    let members: Vec<_> = (0..world.cfg.groups.as_ref().map_or(0, |g| g.members))
        .map(|i| handle.create_node().name(format!("member-{i}")).ip(ip(2, i as u8 + 1)).build())
        .collect();
    for (i, node) in members.iter().enumerate() {
        node.spawn(group::member(world.clone(), i as u32));
    }
    let chaos = handle.create_node().name("chaos").ip(ip(9, 1)).build();
    let verifier = handle.create_node().name("verifier").ip(ip(9, 2)).build();
    let nodes = Nodes {
        broker: broker.id(),
        clients: clients.iter().map(|c| c.id()).collect(),
        members: members.iter().map(|m| m.id()).collect(),
        chaos: chaos.id(),
        verifier: verifier.id(),
    };
    chaos.spawn(faults::chaos(world.clone(), nodes.clone()));
    nodes
}

fn start_workload(world: &Arc<World>, nodes: &Nodes) -> Vec<madsim::task::JoinHandle<()>> {
    let handle = Handle::current();
    let client =
        |i: usize| handle.get_node(nodes.clients[i % nodes.clients.len()]).expect("client node exists");
    let mut tasks = vec![client(0).spawn(workload::admin(world.clone()))];
    for i in 0..world.cfg.producers {
        tasks.push(client(i as usize).spawn(workload::producer(world.clone(), i)));
    }
    for i in 0..world.cfg.consumers {
        tasks.push(client(i as usize + 1).spawn(workload::consumer(world.clone(), i)));
    }
    if world.cfg.groups.is_some() {
        tasks.push(client(1).spawn(group::producer(world.clone())));
    }
    if let Some(keys) = world.cfg.compacted_keys {
        tasks.push(client(0).spawn(crate::compacted::producer(world.clone(), keys)));
    }
    tasks
}

/// Waits for the workload to stop; a task still stuck after the bound is a
/// harness bug, but it must not hang the run.
async fn wind_down(tasks: Vec<madsim::task::JoinHandle<()>>) {
    let deadline = sim_elapsed_ms() + WIND_DOWN_MS;
    for task in tasks {
        let left = deadline.saturating_sub(sim_elapsed_ms()).max(1);
        if madsim::time::timeout(Duration::from_millis(left), task).await.is_err() {
            // Dropping the handle detaches the task; it stops at its next
            // check of the stop flag.
        }
    }
}

async fn converge_or_fail(world: &Arc<World>, nodes: &Nodes, round: u32) {
    let verifier = Handle::current().get_node(nodes.verifier).expect("verifier node exists");
    let bound_ms = world.cfg.liveness_bound_ms;
    let outcome = verifier.spawn(verify::converge(world.clone(), bound_ms, round)).await;
    let mut checker = world.checker();
    match outcome {
        Ok(Ok(waited_ms)) => {
            checker.note(None, None, format!("liveness round {round}: converged after {waited_ms} ms"))
        }
        Ok(Err(why)) => checker.report(
            Invariant::Liveness,
            format!("not converged {bound_ms} ms after healing (round {round}): {why}"),
        ),
        Err(e) => checker.report(Invariant::Liveness, format!("the verifier failed: {e:?}")),
    }
}

async fn drain_or_fail(world: &Arc<World>, nodes: &Nodes) {
    let verifier = Handle::current().get_node(nodes.verifier).expect("verifier node exists");
    let bound_ms = world.cfg.liveness_bound_ms;
    let outcome = verifier.spawn(group::drain(world.clone(), bound_ms)).await;
    let mut checker = world.checker();
    match outcome {
        Ok(Ok(waited_ms)) => checker.note(None, None, format!("group: drained after {waited_ms} ms")),
        Ok(Err(why)) => {
            checker.group_not_drained(format!("not consumed by the group {bound_ms} ms after healing: {why}"))
        }
        Err(e) => checker.report(Invariant::GroupConsumedAll, format!("the drain check failed: {e:?}")),
    }
}

fn summarise(world: &World, cfg: &SimConfig, seed: u64) -> SeedResult {
    let mut faults = world.counters.faults();
    let d = world.disk.counts();
    for (name, n) in [
        ("eio_read", d.eio_read),
        ("eio_write", d.eio_write),
        ("eio_sync", d.eio_sync),
        ("flip", d.flip),
        ("misdirect", d.misdirect),
        ("enospc", d.enospc),
        ("crash_keep_all", d.crash_keep_all),
        ("crash_drop_unsynced", d.crash_drop_unsynced),
        ("crash_torn", d.crash_random),
    ] {
        faults.set(name, n);
    }
    let checker = world.checker();
    SeedResult {
        seed,
        sim_ms: sim_elapsed_ms(),
        wall_ms: 0,
        ops: world.counters.ops(),
        faults,
        checks: checker.checks(),
        hash: checker.state_hash(),
        classes: cfg.classes.to_string(),
        flush: cfg.flush.to_string(),
        beyond_budget: cfg.classes.beyond_budget(),
        outcomes: checker.outcomes(),
        violation: checker.violation().cloned(),
    }
}
