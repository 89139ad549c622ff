//! The metadata quorum under the simulator (`sim/run --scenario quorum`):
//! 1, 3 or 5 controller voters, each the server's voter (controller
//! listener, connections, loop) around the engine's `QuorumNode`, on a
//! simulated disk of its own and madsim's TCP; simulated brokers register,
//! heartbeat and fetch the image, and an admin creates topics, through the
//! server's `QuorumClient`. Faults: voter
//! crashes (power loss included, of a minority or of every voter at once),
//! network cuts isolating a voter (the leader, often), pauses, packet
//! loss, slow disks, and on some seeds voter disks that fail reads, writes
//! and fsyncs (the voter stops; the chaos restarts it, as a supervisor
//! would). Invariants in `quorumcheck`.
//!
//! Bit flips are not injected on voter disks: a flip in the quorum log's
//! last frame reads exactly like a torn write, which recovery cuts, so a
//! voter could forget a vote it gave (see `controller/store.rs`).
//!
//! What it does not run yet: brokers that serve data (the server in cluster
//! mode, `server/src/cluster.rs`, with the engine's `follow_image`).

pub mod brokers;
pub mod members;
pub mod voter;

use crate::checker::Invariant;
use crate::disk::{CrashWeights, DiskFaults, SimDisk};
use crate::quorumcheck::QuorumCheck;
use crate::report::SeedResult;
use crate::rng::Rng;
use crate::run::RunOptions;
use crate::stats::Counters;
use crate::taint::Taints;
use crate::world::sim_elapsed_ms;
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use ringtail_engine::controller::MetadataImage;
use ringtail_engine::io::Disk;
use ringtail_server::metered_disk::ServerBroker;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The controller listener's port on every voter.
pub const CONTROLLER_PORT: u16 = 9093;

pub fn voter_addr(id: u64) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 3, 0, id as u8)), CONTROLLER_PORT)
}

/// What a seed draws for the quorum scenario.
#[derive(Clone, Debug)]
pub struct QuorumPlan {
    pub seed: u64,
    pub voters: u64,
    pub brokers: i32,
    pub safety_ms: u64,
    pub broker_session_ms: u64,
    pub snapshot_every: u64,
    /// Gap between fault episodes.
    pub episode_gap_ms: (u64, u64),
    pub crash_weights: CrashWeights,
    pub disk: DiskFaults,
    pub loss_rate: f64,
    pub latency_ms: (u64, u64),
    /// Servers in cluster mode, brokers only (`members`).
    pub members: usize,
    /// Chance that a voter's disk operation fails with EIO.
    pub voter_eio: f64,
    /// The controller's preferred-leader rebalancing interval, or off.
    pub rebalance_ms: Option<i64>,
}

impl QuorumPlan {
    pub fn draw(seed: u64, safety_ms: u64) -> QuorumPlan {
        let mut r = Rng::fork(seed, "quorum-swarm");
        QuorumPlan {
            seed,
            voters: *r.pick(&[3, 3, 5, 1]),
            brokers: r.range(1, 5) as i32,
            safety_ms,
            broker_session_ms: r.range(1_500, 6_000),
            snapshot_every: *r.pick(&[8, 64, 1_024]),
            episode_gap_ms: *r.pick(&[(200, 1_500), (1_000, 5_000)]),
            crash_weights: CrashWeights {
                keep_all: r.range(0, 3),
                drop_unsynced: r.range(1, 4),
                random: r.range(1, 4),
            },
            disk: DiskFaults {
                latency_us_max: r.range(0, 5_000),
                sync_latency_us_max: r.range(0, 20_000),
                ..DiskFaults::default()
            },
            loss_rate: *r.pick(&[0.0, 0.0, 0.01, 0.05]),
            latency_ms: (1, r.range(2, 30)),
            // Drawn apart, so the other draws of a seed stay as they were.
            members: Rng::fork(seed, "quorum-members").below(3) as usize,
            voter_eio: *Rng::fork(seed, "quorum-voter-eio").pick(&[0.0, 0.0, 0.0005, 0.003]),
            rebalance_ms: *Rng::fork(seed, "quorum-rebalance").pick(&[
                None,
                Some(1_000),
                Some(3_000),
                Some(8_000),
            ]),
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "quorum: voters={} brokers={} members={} session={}ms snapshot_every={} episodes every {:?}ms crash={:?} \
             disk={:?} voter_eio={} loss={} latency={:?}ms rebalance={:?}ms",
            self.voters,
            self.brokers,
            self.members,
            self.broker_session_ms,
            self.snapshot_every,
            self.episode_gap_ms,
            self.crash_weights,
            self.disk,
            self.voter_eio,
            self.loss_rate,
            self.latency_ms,
            self.rebalance_ms
        )
    }
}

/// How members are set up beyond the quorum's plan (the replication
/// scenario's choices; the quorum scenario takes the defaults).
#[derive(Clone, Copy, Debug, Default)]
pub struct MemberTuning {
    /// `None`: the server's default.
    pub flush: Option<ringtail_engine::log::FlushPolicy>,
    /// `replica.lag.time.max.ms`; `None`: the server's default.
    pub replica_lag_ms: Option<i64>,
    /// Faults of the members' disks from the start (`None`: none).
    pub disk: Option<DiskFaults>,
}

pub struct QuorumWorld {
    pub plan: QuorumPlan,
    pub tuning: MemberTuning,
    pub disks: Vec<SimDisk>,
    pub member_disks: Vec<SimDisk>,
    /// Members whose server started, by node id.
    pub members: Mutex<BTreeMap<i32, Arc<ServerBroker>>>,
    /// Per member: crashed by the chaos and not yet restarted.
    pub member_down: Vec<AtomicBool>,
    /// Per member: its server stopped by itself (or did not start); the
    /// supervisor starts the node again.
    pub member_stopped: Vec<AtomicBool>,
    /// Per member: the chaos sent it SIGTERM.
    pub member_term: Vec<AtomicBool>,
    /// Per member: how far its wall clock is off simulated time (stepped by
    /// the replication scenario's chaos; kept across restarts, as a host's).
    pub member_clock_offsets: Vec<Arc<AtomicI64>>,
    /// Per member: starts so far, so each start draws its own randomness
    /// (its incarnation above all: a restart must register a new one).
    pub member_starts: Vec<AtomicU64>,
    check: Mutex<QuorumCheck>,
    pub counters: Counters,
    /// Per voter: starts so far; refused to start (damaged disk); stopped
    /// after a disk failure (waiting for a restart).
    pub starts: Vec<AtomicU64>,
    pub refused: Vec<AtomicBool>,
    pub exited: Vec<AtomicBool>,
    /// Killed by the chaos and not yet restarted.
    pub down: Vec<AtomicBool>,
    /// Faults are over: brokers stop misbehaving and report their state.
    pub quiet: AtomicBool,
    pub done: AtomicBool,
    /// After healing: each heartbeating broker, unfenced or not.
    pub live_brokers: Mutex<BTreeMap<i32, bool>>,
}

impl QuorumWorld {
    pub fn check(&self) -> MutexGuard<'_, QuorumCheck> {
        self.check.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn note(&self, text: String) {
        self.check().at(sim_elapsed_ms()).note(text);
    }

    pub(crate) fn failed(&self) -> bool {
        self.check().violation().is_some()
    }
}

pub(crate) async fn sleep_ms(ms: u64) {
    madsim::time::sleep(Duration::from_millis(ms)).await;
}

/// A node's disk with an empty, synced data directory, then `faults` on.
async fn fresh_disk(
    rng: Rng,
    data_dir: &str,
    taints: &Arc<Mutex<Taints>>,
    faults: Option<DiskFaults>,
) -> SimDisk {
    let disk = SimDisk::new(rng, Path::new(data_dir), taints.clone());
    disk.set_quiet(true);
    disk.create_dir_all(Path::new(data_dir)).await.expect("a fresh disk takes a directory");
    disk.sync_dir(Path::new("/")).await.expect("a fresh disk syncs");
    if let Some(faults) = faults {
        disk.set_faults(faults);
    }
    disk.set_quiet(false);
    disk
}

/// The nodes of a quorum world: voters, members, and the world they share.
pub struct Cluster {
    pub world: Arc<QuorumWorld>,
    pub voters: Vec<NodeId>,
    pub members: Vec<NodeId>,
}

/// Builds the world `plan` draws and starts its voters and members (the
/// members configured by `tuning`), on madsim's network as `plan` sets it.
pub async fn start_cluster(plan: &QuorumPlan, options: &RunOptions, tuning: MemberTuning) -> Cluster {
    let seed = plan.seed;
    NetSim::current().update_config(|c| {
        c.packet_loss_rate = plan.loss_rate;
        c.send_latency = Duration::from_millis(plan.latency_ms.0)..Duration::from_millis(plan.latency_ms.1);
    });
    let taints = Arc::new(Mutex::new(Taints::default()));
    let mut disks = Vec::new();
    let voter_faults = DiskFaults {
        eio_read: plan.voter_eio,
        eio_write: plan.voter_eio,
        eio_sync: plan.voter_eio,
        ..plan.disk
    };
    for id in 1..=plan.voters {
        let rng = Rng::fork(seed, &format!("quorum-disk-{id}"));
        disks.push(fresh_disk(rng, voter::DATA_DIR, &taints, Some(voter_faults)).await);
    }
    let mut member_disks = Vec::new();
    for index in 0..plan.members {
        let rng = Rng::fork(seed, &format!("quorum-member-disk-{index}"));
        member_disks.push(fresh_disk(rng, members::DATA_DIR, &taints, tuning.disk).await);
    }
    let voters = plan.voters as usize;
    let world = Arc::new(QuorumWorld {
        plan: plan.clone(),
        tuning,
        disks,
        member_disks,
        members: Mutex::new(BTreeMap::new()),
        member_down: (0..plan.members).map(|_| AtomicBool::new(false)).collect(),
        member_starts: (0..plan.members).map(|_| AtomicU64::new(0)).collect(),
        member_stopped: (0..plan.members).map(|_| AtomicBool::new(false)).collect(),
        member_term: (0..plan.members).map(|_| AtomicBool::new(false)).collect(),
        member_clock_offsets: (0..plan.members).map(|_| Arc::new(AtomicI64::new(0))).collect(),
        check: Mutex::new(QuorumCheck::new(options.trace, plan.voters)),
        counters: Counters::default(),
        starts: (0..voters).map(|_| AtomicU64::new(0)).collect(),
        refused: (0..voters).map(|_| AtomicBool::new(false)).collect(),
        exited: (0..voters).map(|_| AtomicBool::new(false)).collect(),
        down: (0..voters).map(|_| AtomicBool::new(false)).collect(),
        quiet: AtomicBool::new(false),
        done: AtomicBool::new(false),
        live_brokers: Mutex::new(BTreeMap::new()),
    });
    world.note(plan.describe());

    let handle = Handle::current();
    let voter_nodes: Vec<NodeId> = (1..=plan.voters)
        .map(|id| {
            let w = world.clone();
            handle
                .create_node()
                .name(format!("voter-{id}"))
                .ip(voter_addr(id).ip())
                .init(move || voter::voter_main(w.clone(), id))
                .build()
                .id()
        })
        .collect();
    let member_nodes: Vec<NodeId> = (0..plan.members)
        .map(|index| {
            let w = world.clone();
            handle
                .create_node()
                .name(format!("member-{}", members::MEMBER_ID_BASE + index as i32))
                .ip(members::member_ip(index))
                .init(move || members::member_main(w.clone(), index))
                .build()
                .id()
        })
        .collect();
    if !member_nodes.is_empty() {
        let supervisor = handle.create_node().name("supervisor").build();
        supervisor.spawn(members::supervise(world.clone(), member_nodes.clone()));
    }
    Cluster { world, voters: voter_nodes, members: member_nodes }
}

pub async fn run_quorum_seed(options: RunOptions) -> SeedResult {
    let seed = Handle::current().seed();
    let plan = QuorumPlan::draw(seed, options.safety_ms);
    let Cluster { world, voters: nodes, members: member_nodes } =
        start_cluster(&plan, &options, MemberTuning::default()).await;
    let handle = Handle::current();
    let client = handle.create_node().name("client").ip("10.3.1.1".parse().expect("an address")).build();
    let w = world.clone();
    client.spawn(async move {
        let caller = brokers::caller(w.plan.voters);
        for node_id in 1..=w.plan.brokers {
            madsim::task::spawn(brokers::broker(w.clone(), caller.clone(), node_id));
        }
        brokers::admin(w, caller).await;
    });
    let chaos = handle.create_node().name("chaos").ip("10.3.9.1".parse().expect("an address")).build();
    chaos.spawn(chaos_main(world.clone(), nodes.clone()));
    if !member_nodes.is_empty() {
        chaos.spawn(members::chaos(world.clone(), member_nodes.clone()));
    }

    let end = sim_elapsed_ms() + plan.safety_ms;
    while sim_elapsed_ms() < end && !world.failed() {
        sleep_ms(250).await;
    }
    handle.kill(chaos.id());
    heal(&world, &nodes).await;
    members::heal(&world, &member_nodes);
    world.quiet.store(true, Ordering::SeqCst);
    world.note("healed".into());
    converge(&world, "after healing").await;
    if !world.failed() {
        // Power loss of every voter at once: what converged must stay.
        world.note("power loss of every voter".into());
        for i in 0..nodes.len() {
            world.kill(&nodes, i);
        }
        sleep_ms(500).await;
        for i in 0..nodes.len() {
            world.restart(&nodes, i);
        }
        converge(&world, "after a power loss of every voter").await;
    }
    world.done.store(true, Ordering::SeqCst);
    summarise(&world)
}

impl QuorumWorld {
    /// Power loss (or a process crash) of voter `i`: its disk crashes and
    /// the node is killed until `restart`.
    fn kill(&self, nodes: &[NodeId], i: usize) -> crate::disk::CrashKind {
        self.down[i].store(true, Ordering::SeqCst);
        let kind = self.disks[i].crash(self.plan.crash_weights);
        Handle::current().kill(nodes[i]);
        kind
    }

    fn restart(&self, nodes: &[NodeId], i: usize) {
        // madsim's restart alone keeps the node's sockets bound; a kill
        // first closes them, as the exit of a process would.
        Handle::current().kill(nodes[i]);
        Handle::current().restart(nodes[i]);
        self.down[i].store(false, Ordering::SeqCst);
        self.exited[i].store(false, Ordering::SeqCst);
    }

    /// Voters that stopped on a disk error, or refused to start on one, and
    /// are not killed by the chaos.
    fn stopped(&self, i: usize) -> bool {
        let stopped = self.exited[i].load(Ordering::SeqCst) || self.refused[i].load(Ordering::SeqCst);
        stopped && !self.down[i].load(Ordering::SeqCst)
    }
}

/// Fault episodes until killed.
pub(crate) async fn chaos_main(world: Arc<QuorumWorld>, nodes: Vec<NodeId>) {
    let mut rng = Rng::fork(world.plan.seed, "quorum-chaos");
    let handle = Handle::current();
    let net = NetSim::current();
    loop {
        let (lo, hi) = world.plan.episode_gap_ms;
        sleep_ms(rng.range(lo, hi)).await;
        // A supervisor restarts voters whose disk failed them.
        for i in (0..nodes.len()).filter(|i| world.stopped(*i)) {
            world.note(format!("chaos: voter {} restarted after a disk error", i + 1));
            world.restart(&nodes, i);
        }
        let target = rng.below(nodes.len() as u64) as usize;
        match rng.below(6) {
            0 | 1 => {
                // A minority of voters crash (one, or up to half less one).
                let count = 1 + rng.below((nodes.len() as u64 - 1) / 2 + 1) as usize;
                let count = count.min(nodes.len().div_ceil(2).saturating_sub(1)).max(1);
                let down = rng.range(0, 3_000);
                for k in 0..count {
                    let i = (target + k) % nodes.len();
                    let kind = world.kill(&nodes, i);
                    world.counters.fault("voter_crash");
                    world.note(format!("chaos: voter {} crashes ({kind:?}) for {down} ms", i + 1));
                }
                sleep_ms(down).await;
                for k in 0..count {
                    world.restart(&nodes, (target + k) % nodes.len());
                }
            }
            2 => {
                world.note("chaos: power loss of every voter".into());
                world.counters.fault("power_loss_all");
                for i in 0..nodes.len() {
                    world.kill(&nodes, i);
                }
                sleep_ms(rng.range(0, 2_000)).await;
                for i in 0..nodes.len() {
                    world.restart(&nodes, i);
                }
            }
            3 | 4 => {
                let ms = rng.range(200, 6_000);
                world.counters.fault("partition");
                world.note(format!("chaos: voter {} cut off for {ms} ms", target + 1));
                net.clog_node(nodes[target]);
                sleep_ms(ms).await;
                net.unclog_node(nodes[target]);
            }
            _ => {
                let ms = rng.range(10, 3_000);
                world.counters.fault("pause");
                world.note(format!("chaos: voter {} paused for {ms} ms", target + 1));
                handle.pause(nodes[target]);
                sleep_ms(ms).await;
                handle.resume(nodes[target]);
            }
        }
    }
}

pub(crate) async fn heal(world: &QuorumWorld, nodes: &[NodeId]) {
    let handle = Handle::current();
    let net = NetSim::current();
    net.update_config(|c| c.packet_loss_rate = 0.0);
    for (i, node) in nodes.iter().enumerate() {
        net.unclog_node(*node);
        handle.resume(*node);
        world.disks[i].set_quiet(true);
        if world.stopped(i) || world.down[i].load(Ordering::SeqCst) {
            world.restart(nodes, i);
        }
    }
}

/// QL: within the bound, one leader, voters converged, acknowledged topics
/// present, heartbeating brokers unfenced.
pub(crate) async fn converge(world: &QuorumWorld, when: &str) {
    const BOUND_MS: u64 = 30_000;
    let start = sim_elapsed_ms();
    loop {
        sleep_ms(500).await;
        let why = match world.convergence_gap() {
            None => {
                world.note(format!("converged {when} in {} ms", sim_elapsed_ms() - start));
                return;
            }
            Some(why) => why,
        };
        if world.failed() {
            return;
        }
        if sim_elapsed_ms() - start > BOUND_MS {
            world.check().at(sim_elapsed_ms()).violate(
                Invariant::QuorumLiveness,
                format!("{when}: not converged within {BOUND_MS} ms: {why}"),
            );
            return;
        }
    }
}

impl QuorumWorld {
    /// What keeps the quorum from having converged, if anything.
    fn convergence_gap(&self) -> Option<String> {
        if self.refused.iter().any(|r| r.load(Ordering::SeqCst)) {
            return Some("a voter refuses to start".into());
        }
        let check = self.check();
        let (applied, image) = match check.converged() {
            Ok((applied, image)) => (applied, image.clone()),
            Err(why) => return Some(why),
        };
        if let Some(missing) = check.acked_topics.keys().find(|t| !image.topics.contains_key(*t)) {
            return Some(format!("acknowledged topic {missing} is not in the image at {applied}"));
        }
        if let Some(back) = check.deleted_topics.keys().find(|t| image.topics.contains_key(*t)) {
            return Some(format!("deleted topic {back} is in the image at {applied}"));
        }
        let acls = &image.security.acls;
        if let Some(missing) = check.acked_acls.keys().find(|acl| !acls.contains(*acl)) {
            return Some(format!(
                "acknowledged ACL for {} is not in the image at {applied}",
                missing.principal
            ));
        }
        if let Some(back) = check.deleted_acls.keys().find(|acl| acls.contains(*acl)) {
            return Some(format!("deleted ACL for {} is in the image at {applied}", back.principal));
        }
        for broker in 1..=self.plan.brokers {
            let at = check.broker_applied.get(&broker).copied().unwrap_or(0);
            if at != applied {
                return Some(format!(
                    "broker {broker} follows the image at {at}, the voters are at {applied}"
                ));
            }
        }
        drop(check);
        let live = self.live_brokers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((id, _)) = live.iter().find(|(_, unfenced)| !**unfenced) {
            return Some(format!("broker {id} heartbeats but is fenced"));
        }
        if live.len() < self.plan.brokers as usize {
            return Some(format!("{} of {} brokers heartbeat", live.len(), self.plan.brokers));
        }
        self.member_gap(applied, &image)
    }
}

impl QuorumWorld {
    /// What keeps a member from following the converged image, if anything.
    fn member_gap(&self, applied: u64, image: &MetadataImage) -> Option<String> {
        let started = self.members.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if started.len() < self.plan.members {
            return Some(format!("{} of {} members started", started.len(), self.plan.members));
        }
        let topics: BTreeMap<String, String> =
            image.topics.iter().map(|(name, t)| (name.clone(), t.topic_id.clone())).collect();
        for (id, broker) in started {
            if !image.is_live(id) {
                return Some(format!("member {id} is not alive in the image at {applied}"));
            }
            let at = *broker.followed_index().borrow();
            if at != applied {
                return Some(format!("member {id} follows the image at {at}, the voters are at {applied}"));
            }
            let theirs: BTreeMap<String, String> =
                broker.topics().into_iter().map(|(name, t)| (name, t.topic_id)).collect();
            if theirs != topics {
                let extra: Vec<_> =
                    theirs.iter().filter(|(n, t)| topics.get(*n) != Some(t)).map(|(n, _)| n).collect();
                let missing: Vec<_> =
                    topics.iter().filter(|(n, t)| theirs.get(*n) != Some(t)).map(|(n, _)| n).collect();
                return Some(format!(
                    "member {id} differs from the image at {applied}: it holds {extra:?} beyond it and lacks {missing:?}"
                ));
            }
            let changes = broker.security_state().changes_to(&image.security);
            if !changes.is_empty() {
                return Some(format!(
                    "member {id}'s credentials, ACLs and quotas differ from the image at {applied}: {changes:?}"
                ));
            }
        }
        None
    }
}

fn summarise(world: &QuorumWorld) -> SeedResult {
    let check = world.check();
    let mut faults = world.counters.faults();
    let mut counts = [0u64; 6];
    for disk in &world.disks {
        let d = disk.counts();
        for (sum, n) in counts.iter_mut().zip([
            d.crash_keep_all,
            d.crash_drop_unsynced,
            d.crash_random,
            d.eio_read,
            d.eio_write,
            d.eio_sync,
        ]) {
            *sum += n;
        }
    }
    let names = [
        "crash_keep_all",
        "crash_drop_unsynced",
        "crash_torn",
        "voter_eio_read",
        "voter_eio_write",
        "voter_eio_sync",
    ];
    for (name, n) in names.into_iter().zip(counts) {
        faults.set(name, n);
    }
    SeedResult {
        seed: world.plan.seed,
        sim_ms: sim_elapsed_ms(),
        wall_ms: 0,
        ops: world.counters.ops(),
        faults,
        checks: check.checks(),
        hash: check.state_hash(),
        classes: "quorum".into(),
        flush: "always".into(),
        beyond_budget: false,
        outcomes: Default::default(),
        violation: check.violation().cloned(),
    }
}
