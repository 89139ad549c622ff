//! Partition replication under the simulator (`sim/run --scenario
//! replication`): 3 to 5 cluster members (`ringtail serve` in cluster mode,
//! the quorum scenario's members) serving clients, on the quorum's voters.
//! Topics of replication factor 2-3 and `min.insync.replicas` 1-2;
//! producers (mostly acks=all, some acks=1) and consumers speak Kafka to
//! the partitions' leaders through `ringtail-client`, which follows leader
//! changes from the metadata; the members' followers pull from their
//! leaders over the same listeners. Every member runs flush=always.
//!
//! Faults in the safety phase (`chaos`): members crash (power loss of their
//! disk: unsynced writes dropped, kept or torn) and restart, every member
//! loses power at once, a partition's leader is cut off from the other
//! members and the quorum while its clients still reach it, members pause
//! or are cut off from everyone; on a third of the seeds the voters' own
//! faults too. Then it heals, must converge (RL), every replica must hold
//! its leader's bytes (RA), and every acknowledged record must be readable;
//! then every member loses power at once, and all of it must hold again.
//! Invariants in `replicationcheck`.

pub mod chaos;
pub mod clients;

use crate::checker::Invariant;
use crate::disk::{CrashWeights, DiskFaults};
use crate::quorum::{self, members, sleep_ms, Cluster, MemberTuning, QuorumPlan, QuorumWorld};
use crate::replicationcheck::{Found, ReplicationCheck, Tp};
use crate::report::SeedResult;
use crate::rng::Rng;
use crate::run::RunOptions;
use crate::world::sim_elapsed_ms;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use ringtail_engine::controller::MetadataImage;
use ringtail_engine::log::FlushPolicy;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A topic the seed creates.
#[derive(Clone, Debug)]
pub struct TopicPlan {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub min_insync: i16,
}

/// Fault classes a seed switches on (swarm).
#[derive(Clone, Copy, Debug)]
pub struct FaultMix {
    pub crash: bool,
    pub power_loss_all: bool,
    pub isolate_leader: bool,
    pub pause: bool,
    pub cut_off: bool,
    pub clock_jump: bool,
    pub graceful_restart: bool,
}

#[derive(Clone, Debug)]
pub struct ReplicationPlan {
    pub seed: u64,
    pub safety_ms: u64,
    pub voters: u64,
    pub members: usize,
    pub topics: Vec<TopicPlan>,
    pub producers: usize,
    pub consumers: usize,
    /// Share of produce requests sent with acks=all (the rest acks=1).
    pub acks_all: f64,
    pub request_timeout_ms: (u64, u64),
    pub session_ms: u64,
    pub lag_ms: i64,
    pub faults: FaultMix,
    pub voter_chaos: bool,
    pub episode_gap_ms: (u64, u64),
    pub crash_weights: CrashWeights,
    pub disk: DiskFaults,
    pub loss_rate: f64,
    pub latency_ms: (u64, u64),
    /// The controller's preferred-leader rebalancing interval, or off.
    pub rebalance_ms: Option<i64>,
    /// Chance that a member's disk operation fails with EIO (until healing).
    pub member_eio: f64,
}

impl ReplicationPlan {
    pub fn draw(seed: u64, safety_ms: u64) -> ReplicationPlan {
        let mut r = Rng::fork(seed, "replication-swarm");
        let members = r.range(3, 5) as usize;
        let topics = (0..r.range(1, 3))
            .map(|i| {
                let replication_factor = *r.pick(&[3, 3, 2]).min(&(members as i16));
                TopicPlan {
                    name: format!("t{i}"),
                    partitions: r.range(1, 3) as i32,
                    replication_factor,
                    min_insync: (r.range(1, 2) as i16).min(replication_factor),
                }
            })
            .collect();
        let mut on = || r.chance(0.7);
        let faults = FaultMix {
            crash: on(),
            power_loss_all: on(),
            isolate_leader: on(),
            pause: on(),
            cut_off: on(),
            // Drawn apart, so the other draws of a seed stay as they were.
            clock_jump: Rng::fork(seed, "replication-clock-jump").chance(0.5),
            graceful_restart: Rng::fork(seed, "replication-graceful-restart").chance(0.5),
        };
        ReplicationPlan {
            seed,
            safety_ms,
            voters: *r.pick(&[1, 3, 3]),
            members,
            topics,
            producers: r.range(1, 3) as usize,
            consumers: r.range(1, 2) as usize,
            acks_all: *r.pick(&[1.0, 0.8, 0.5]),
            request_timeout_ms: *r.pick(&[(500, 1_500), (1_000, 4_000)]),
            session_ms: r.range(1_500, 4_000),
            lag_ms: r.range(1_000, 5_000) as i64,
            faults,
            voter_chaos: r.chance(0.33),
            episode_gap_ms: *r.pick(&[(300, 2_000), (1_000, 4_000)]),
            crash_weights: CrashWeights {
                keep_all: r.range(0, 3),
                drop_unsynced: r.range(1, 4),
                random: r.range(1, 4),
            },
            disk: DiskFaults {
                latency_us_max: r.range(0, 3_000),
                sync_latency_us_max: r.range(0, 10_000),
                ..DiskFaults::default()
            },
            loss_rate: *r.pick(&[0.0, 0.0, 0.01]),
            latency_ms: (1, r.range(2, 20)),
            // Drawn apart, so the other draws of a seed stay as they were.
            rebalance_ms: *Rng::fork(seed, "replication-rebalance").pick(&[None, Some(1_000), Some(4_000)]),
            member_eio: *Rng::fork(seed, "replication-member-eio").pick(&[0.0, 0.0, 0.0002, 0.001]),
        }
    }

    /// The quorum under the members: the voters' part of the quorum
    /// scenario, no simulated brokers.
    fn quorum_plan(&self) -> QuorumPlan {
        QuorumPlan {
            seed: self.seed,
            voters: self.voters,
            brokers: 0,
            safety_ms: self.safety_ms,
            broker_session_ms: self.session_ms,
            snapshot_every: 64,
            episode_gap_ms: (2_000, 6_000),
            crash_weights: self.crash_weights,
            disk: self.disk,
            loss_rate: self.loss_rate,
            latency_ms: self.latency_ms,
            members: self.members,
            voter_eio: 0.0,
            rebalance_ms: self.rebalance_ms,
        }
    }

    fn describe(&self) -> String {
        format!(
            "replication: members={} voters={} topics={:?} producers={} consumers={} acks_all={} timeouts={:?}ms \
             session={}ms lag={}ms faults={:?} voter_chaos={} rebalance={:?}ms member_eio={}",
            self.members,
            self.voters,
            self.topics.iter().map(|t| (t.partitions, t.replication_factor, t.min_insync)).collect::<Vec<_>>(),
            self.producers,
            self.consumers,
            self.acks_all,
            self.request_timeout_ms,
            self.session_ms,
            self.lag_ms,
            self.faults,
            self.voter_chaos,
            self.rebalance_ms,
            self.member_eio
        )
    }
}

pub struct ReplicationWorld {
    pub plan: ReplicationPlan,
    pub quorum: Arc<QuorumWorld>,
    pub voters: Vec<NodeId>,
    pub members: Vec<NodeId>,
    check: Mutex<ReplicationCheck>,
    /// Topics whose creation was acknowledged.
    created: Mutex<Vec<TopicPlan>>,
    /// Clients stop (healing has begun).
    pub quiet: AtomicBool,
}

impl ReplicationWorld {
    pub fn check(&self) -> MutexGuard<'_, ReplicationCheck> {
        self.check.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports what a judgement found, if anything.
    pub fn judge(&self, found: Found) {
        if let Some((invariant, detail)) = found {
            self.quorum.check().at(sim_elapsed_ms()).violate(invariant, detail);
        }
    }

    pub fn note(&self, text: String) {
        self.quorum.note(text);
    }

    pub fn failed(&self) -> bool {
        self.quorum.failed()
    }

    pub fn created(&self) -> Vec<TopicPlan> {
        self.created.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn topic_created(&self, topic: TopicPlan) {
        self.created.lock().unwrap_or_else(|e| e.into_inner()).push(topic);
    }

    /// Every member's Kafka listener, as clients bootstrap from them.
    pub fn bootstrap(&self) -> String {
        (0..self.plan.members)
            .map(|i| format!("{}:9092", members::member_ip(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every partition of the created topics.
    pub fn partitions(&self) -> Vec<Tp> {
        self.created().iter().flat_map(|t| (0..t.partitions).map(|p| (t.name.clone(), p))).collect()
    }
}

pub async fn run_replication_seed(options: RunOptions) -> SeedResult {
    let seed = Handle::current().seed();
    let plan = ReplicationPlan::draw(seed, options.safety_ms);
    let tuning = MemberTuning {
        flush: Some(FlushPolicy::Always),
        replica_lag_ms: Some(plan.lag_ms),
        disk: Some(DiskFaults {
            eio_read: plan.member_eio,
            eio_write: plan.member_eio,
            eio_sync: plan.member_eio,
            ..plan.disk
        }),
    };
    let Cluster { world: quorum, voters, members } = start_cluster(&plan, &options, tuning).await;
    let world = Arc::new(ReplicationWorld {
        plan: plan.clone(),
        quorum,
        voters,
        members,
        check: Mutex::new(ReplicationCheck::default()),
        created: Mutex::new(Vec::new()),
        quiet: AtomicBool::new(false),
    });
    world.note(plan.describe());
    let handle = Handle::current();
    let clients = handle.create_node().name("clients").ip("10.3.1.1".parse().expect("an address")).build();
    let w = world.clone();
    clients.spawn(async move { clients::run(w).await });
    let observer = handle.create_node().name("observer").build();
    observer.spawn(sample_leaders(world.clone()));
    let chaos = handle.create_node().name("chaos").ip("10.3.9.1".parse().expect("an address")).build();
    chaos.spawn(chaos::run(world.clone()));
    if plan.voter_chaos {
        chaos.spawn(quorum::chaos_main(world.quorum.clone(), world.voters.clone()));
    }

    let end = sim_elapsed_ms() + plan.safety_ms;
    while sim_elapsed_ms() < end && !world.failed() {
        sleep_ms(250).await;
    }
    handle.kill(chaos.id());
    world.quiet.store(true, Ordering::SeqCst);
    chaos::heal(&world);
    quorum::heal(&world.quorum, &world.voters).await;
    world.note("healed".into());
    settle(&world, &clients, "after healing").await;
    if !world.failed() {
        world.note("power loss of every member".into());
        chaos::power_loss_all(&world).await;
        settle(&world, &clients, "after a power loss of every member").await;
    }
    world.quorum.done.store(true, Ordering::SeqCst);
    summarise(&world)
}

async fn start_cluster(plan: &ReplicationPlan, options: &RunOptions, tuning: MemberTuning) -> Cluster {
    quorum::start_cluster(&plan.quorum_plan(), options, tuning).await
}

/// Converges (QL, then RL), checks the replicas agree (RA), and reads
/// every partition whole through a client (RL, 1, 4).
async fn settle(world: &Arc<ReplicationWorld>, clients: &madsim::runtime::NodeHandle, when: &str) {
    quorum::converge(&world.quorum, when).await;
    if world.failed() {
        return;
    }
    if !converge(world, when).await {
        return;
    }
    agree(world, when).await;
    if world.failed() {
        return;
    }
    let w = world.clone();
    let when = when.to_owned();
    if clients.spawn(async move { clients::verify(w, when).await }).await.is_err() {
        world.note("the verifier's task did not finish".into());
    }
}

/// RL: within the bound, every partition led by a member that serves it,
/// with every replica in the ISR and at the leader's log end.
async fn converge(world: &ReplicationWorld, when: &str) -> bool {
    const BOUND_MS: u64 = 60_000;
    let start = sim_elapsed_ms();
    loop {
        let why = match world.replication_gap() {
            None => {
                world.note(format!("replicas converged {when} in {} ms", sim_elapsed_ms() - start));
                return true;
            }
            Some(why) => why,
        };
        if world.failed() {
            return false;
        }
        if sim_elapsed_ms() - start > BOUND_MS {
            world.judge(Some((
                Invariant::ReplicationLiveness,
                format!("{when}: replicas not converged within {BOUND_MS} ms: {why}"),
            )));
            return false;
        }
        sleep_ms(250).await;
    }
}

impl ReplicationWorld {
    fn image(&self) -> Result<MetadataImage, String> {
        self.quorum.check().converged().map(|(_, image)| image.clone())
    }

    /// What keeps the replicas from having converged, if anything.
    fn replication_gap(&self) -> Option<String> {
        let image = match self.image() {
            Ok(image) => image,
            Err(why) => return Some(why),
        };
        let started = self.quorum.members.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (topic, partition) in self.partitions() {
            let Some(a) = image.topics.get(&topic).and_then(|t| t.partitions.get(partition as usize)) else {
                return Some(format!("{topic}-{partition} is not in the image"));
            };
            let (replicas, isr): (BTreeSet<i32>, BTreeSet<i32>) =
                (a.replicas.iter().copied().collect(), a.isr.iter().copied().collect());
            if replicas != isr {
                return Some(format!("{topic}-{partition}: ISR {:?} of replicas {:?}", a.isr, a.replicas));
            }
            if self.quorum.plan.rebalance_ms.is_some() && a.replicas.first() != Some(&a.leader) {
                return Some(format!(
                    "{topic}-{partition}: led by {}, not its preferred replica {:?}",
                    a.leader,
                    a.replicas.first()
                ));
            }
            let Some(leader) = started.get(&a.leader).and_then(|b| b.partition(&topic, partition)) else {
                return Some(format!("{topic}-{partition}: leader {} is not serving it", a.leader));
            };
            if leader.leading_epoch() != Some(a.leader_epoch) || !leader.serves_reads() {
                return Some(format!(
                    "{topic}-{partition}: {} does not yet lead epoch {}",
                    a.leader, a.leader_epoch
                ));
            }
            let end = leader.log.log_end_offset();
            if leader.high_watermark() != end {
                return Some(format!(
                    "{topic}-{partition}: high watermark {} below the log end {end}",
                    leader.high_watermark()
                ));
            }
            for r in &a.replicas {
                let at = started
                    .get(r)
                    .and_then(|b| b.partition(&topic, partition))
                    .map(|p| p.log.log_end_offset());
                if at != Some(end) {
                    return Some(format!(
                        "{topic}-{partition}: replica {r} ends at {at:?}, the leader at {end}"
                    ));
                }
            }
        }
        None
    }
}

/// RA: every replica of every partition holds the leader's bytes below
/// the high watermark.
async fn agree(world: &ReplicationWorld, when: &str) {
    let image = match world.image() {
        Ok(image) => image,
        Err(why) => return world.note(format!("{when}: no image to compare replicas by: {why}")),
    };
    let started = world.quorum.members.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (topic, partition) in world.partitions() {
        let Some(a) = image.topics.get(&topic).and_then(|t| t.partitions.get(partition as usize)) else {
            continue;
        };
        let Some(leader) = started.get(&a.leader).and_then(|b| b.partition(&topic, partition)) else {
            continue;
        };
        let hw = leader.high_watermark();
        // Each replica applies retention by itself: compare what both keep.
        let from = a
            .replicas
            .iter()
            .filter_map(|r| started.get(r).and_then(|b| b.partition(&topic, partition)))
            .map(|p| p.log.log_start_offset())
            .max()
            .unwrap_or(0);
        let theirs = match read_all(&leader, from, hw).await {
            Ok(bytes) => bytes,
            Err(e) => {
                return world.judge(Some((
                    Invariant::ReplicationLiveness,
                    format!("{when}: {topic}-{partition}: the leader cannot read its log: {e}"),
                )))
            }
        };
        for r in a.replicas.iter().filter(|r| **r != a.leader) {
            let Some(p) = started.get(r).and_then(|b| b.partition(&topic, partition)) else { continue };
            let ours = read_all(&p, from, hw).await;
            if ours.as_ref().ok() != Some(&theirs) {
                let detail = match ours {
                    Ok(bytes) => first_difference(&bytes, &theirs),
                    Err(e) => format!("cannot read: {e}"),
                };
                return world.judge(Some((
                    Invariant::ReplicasAgree,
                    format!("{when}: {topic}-{partition} below {hw}: replica {r} differs from leader {}: {detail}", a.leader),
                )));
            }
        }
    }
    world.note(format!("{when}: replicas agree byte for byte below the high watermark"));
}

/// A replica's record batches from the one holding `from` to `end`, as
/// bytes.
async fn read_all(
    p: &ringtail_engine::broker::Partition<ringtail_server::metered_disk::MeteredDisk>,
    from: u64,
    end: u64,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < end {
        let read = p.log.read(offset, 1 << 20, Some(end)).await.map_err(|e| e.to_string())?;
        if read.records.is_empty() {
            return Err(format!("nothing read at {offset}, below {end}"));
        }
        let mut next = offset;
        for batch in ringtail_engine::log::batch::BatchScanner::new(&read.records) {
            let (_, h) = batch.map_err(|(at, e)| format!("{e} at byte {at}"))?;
            next = h.next_offset();
        }
        out.extend_from_slice(&read.records);
        offset = next;
    }
    Ok(out)
}

/// Where two logs' bytes part: the first batch that differs.
fn first_difference(ours: &[u8], theirs: &[u8]) -> String {
    use ringtail_engine::log::batch::BatchScanner;
    let batches = |bytes| BatchScanner::new(bytes).map_while(Result::ok).map(|(_, h)| h).collect::<Vec<_>>();
    let (a, b) = (batches(ours), batches(theirs));
    let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    format!(
        "{} batches in {} bytes, the leader's {} in {}; batch {at} here {:?}, the leader's {:?}",
        a.len(),
        ours.len(),
        b.len(),
        theirs.len(),
        a.get(at),
        b.get(at)
    )
}

/// RE: samples which member acts as each partition's leader, at which
/// epoch, every 20 ms.
async fn sample_leaders(world: Arc<ReplicationWorld>) {
    loop {
        sleep_ms(20).await;
        let started = world.quorum.members.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (id, broker) in started {
            for p in broker.hosted_partitions() {
                if let Some(epoch) = p.leading_epoch() {
                    let found = world.check().leads(&(p.tp.topic.clone(), p.tp.partition), epoch, id);
                    world.judge(found);
                }
            }
        }
    }
}

fn summarise(world: &ReplicationWorld) -> SeedResult {
    let check = world.quorum.check();
    let mut faults = world.quorum.counters.faults();
    let mut counts = [0u64; 3];
    for disk in world.quorum.member_disks.iter().chain(&world.quorum.disks) {
        let d = disk.counts();
        for (sum, n) in counts.iter_mut().zip([d.crash_keep_all, d.crash_drop_unsynced, d.crash_random]) {
            *sum += n;
        }
    }
    for (name, n) in ["crash_keep_all", "crash_drop_unsynced", "crash_torn"].into_iter().zip(counts) {
        faults.set(name, n);
    }
    let mut eio = [0u64; 3];
    for disk in &world.quorum.member_disks {
        let d = disk.counts();
        for (sum, n) in eio.iter_mut().zip([d.eio_read, d.eio_write, d.eio_sync]) {
            *sum += n;
        }
    }
    for (name, n) in ["member_eio_read", "member_eio_write", "member_eio_sync"].into_iter().zip(eio) {
        if n > 0 {
            faults.set(name, n);
        }
    }
    let replication = world.check();
    SeedResult {
        seed: world.plan.seed,
        sim_ms: sim_elapsed_ms(),
        wall_ms: 0,
        ops: world.quorum.counters.ops(),
        faults,
        checks: check.checks() + replication.checks(),
        hash: check.state_hash() ^ replication.hash(),
        classes: "replication".into(),
        flush: "always".into(),
        beyond_budget: false,
        outcomes: Default::default(),
        violation: check.violation().cloned(),
    }
}
