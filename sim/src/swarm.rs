//! Swarm testing: each seed draws its own world. Every fault probability is
//! re-drawn, whole fault classes are switched off at random (a class that
//! fires constantly can hide the bugs another one would expose), and the
//! buggify knobs shrink segments, indexes, timeouts and fetch sizes so that
//! rare paths (rolls, retention, retries) run all the time.

use crate::disk::{CrashWeights, DiskFaults};
use crate::rng::Rng;
use ringtail_engine::group::GroupConfig;
use ringtail_engine::log::FlushPolicy;
use std::fmt;

#[derive(Clone, Debug)]
pub struct TopicPlan {
    pub name: String,
    pub partitions: u32,
    /// Topic configs by Kafka name.
    pub configs: Vec<(String, String)>,
    /// Whether retention may delete records of this topic during the run.
    pub retention: bool,
}

/// Which fault classes this seed uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Classes {
    pub crash: bool,
    pub pause: bool,
    pub partition: bool,
    pub loss: bool,
    pub duplicate: bool,
    pub enospc: bool,
    pub disk_eio: bool,
    pub disk_latency: bool,
    /// Beyond the budget: bit flips in settled (fsynced) bytes.
    pub flip: bool,
    /// Beyond the budget: writes that land in the wrong place.
    pub misdirect: bool,
}

impl Classes {
    pub fn beyond_budget(&self) -> bool {
        self.flip || self.misdirect
    }
}

impl fmt::Display for Classes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = [
            (self.crash, "crash"),
            (self.pause, "pause"),
            (self.partition, "partition"),
            (self.loss, "loss"),
            (self.duplicate, "dup"),
            (self.enospc, "enospc"),
            (self.disk_eio, "eio"),
            (self.disk_latency, "latency"),
            (self.flip, "flip"),
            (self.misdirect, "misdirect"),
        ];
        let names: Vec<&str> = on.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        write!(f, "{}", if names.is_empty() { "none".to_string() } else { names.join(",") })
    }
}

/// Everything a seed decides before the run starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub flush: FlushPolicy,
    pub topics: Vec<TopicPlan>,
    pub producers: u32,
    pub consumers: u32,
    /// The admin cycles scratch topics (create, fill, read, delete).
    pub scratch_topics: bool,
    /// Weights of acks 0, 1 and all.
    pub acks_weights: [u64; 3],
    /// Per producer: idempotent (a producer id, sequenced batches, retries
    /// deduplicated by the broker), always with acks=all.
    pub idempotent: Vec<bool>,
    /// Per consumer: how long its fetches may wait at the broker for
    /// records (0: answered at once; else a long poll).
    pub fetch_wait_ms: Vec<u64>,
    pub batch_records_max: u64,
    pub value_bytes_max: u64,
    pub think_ms_max: u64,
    pub request_timeout_ms: u64,
    pub fetch_bytes_max: u32,
    pub maintain_ms: u64,
    /// Chance per upkeep tick of forcing a roll of one partition.
    pub roll_chance: f64,
    pub safety_ms: u64,
    pub liveness_bound_ms: u64,
    pub classes: Classes,
    pub disk: DiskFaults,
    pub crash_weights: CrashWeights,
    /// Gap between fault episodes, drawn uniformly in this range.
    pub episode_gap_ms: (u64, u64),
    pub loss_rate: f64,
    pub duplicate_rate: f64,
    pub latency_ms: (u64, u64),
    /// The consumer-group scenario, on some seeds (see `GroupPlan`).
    pub groups: Option<GroupPlan>,
    /// The broker's coordinator settings.
    pub group_config: GroupConfig,
    /// The broker's log cache: off, small enough to evict all the time, or
    /// holding everything.
    pub log_cache_bytes: usize,
    /// Sealed segment files the broker keeps open: one (every read of an
    /// older segment opens its file, racing retention and truncation), a
    /// few, or the default.
    pub open_segment_files_max: usize,
    /// A compacted topic beside the workload, its producer rewriting this
    /// many keys (`compacted`); on half the seeds.
    pub compacted_keys: Option<u64>,
}

/// The consumer-group scenario of a seed: one group of `members` dynamic
/// members consuming `topic` (fed by a group producer) beside the rest of
/// the workload, members crashing, stalling past their session and leaving
/// during the safety phase, then draining it in a quiet phase.
#[derive(Clone, Debug)]
pub struct GroupPlan {
    pub group: String,
    pub topic: TopicPlan,
    pub members: u32,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub heartbeat_ms: u64,
    /// Members commit their positions about this often.
    pub commit_ms: u64,
    /// The members' request timeout during the safety phase.
    pub request_timeout_ms: u64,
    /// Chances per member step (tens of ms apart) of each misbehaviour.
    pub crash_chance: f64,
    pub stall_chance: f64,
    pub leave_chance: f64,
    /// Acks of the group producer: -1 mostly, sometimes 1.
    pub acks_weights: [u64; 2],
    /// Members are static (a `group.instance.id` each, kept across crashes).
    pub static_members: bool,
    pub assignors: Assignors,
}

/// The assignors the group's members offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignors {
    /// `range`: eager members.
    Range,
    /// `cooperative-sticky`: cooperative members.
    Cooperative,
    /// Kafka's rolling upgrade to cooperative: a member's first incarnation
    /// offers both assignors and rebalances eagerly; each one restarted
    /// (after a crash) offers `cooperative-sticky` alone and keeps its
    /// partitions. The coordinator picks `cooperative-sticky` throughout.
    Upgrade,
}

impl Assignors {
    /// What member incarnation `incarnation` offers, most preferred first.
    pub fn offered(self, incarnation: u32) -> Vec<&'static str> {
        use ringtail_client::assignor::{
            COOPERATIVE_STICKY_ASSIGNOR as COOPERATIVE, RANGE_ASSIGNOR as RANGE,
        };
        match self {
            Assignors::Range => vec![RANGE],
            Assignors::Cooperative => vec![COOPERATIVE],
            Assignors::Upgrade if incarnation == 0 => vec![COOPERATIVE, RANGE],
            Assignors::Upgrade => vec![COOPERATIVE],
        }
    }
}

/// Share of seeds that run the consumer-group scenario.
const GROUPS_ON: f64 = 0.5;

impl SimConfig {
    /// Draws what kind of clients the producers and consumers are, from a
    /// stream of its own, so that the other draws stay as they were.
    fn with_clients(mut self, seed: u64) -> SimConfig {
        let mut r = Rng::fork(seed, "swarm-clients");
        let idempotent_chance = *r.pick(&[0.0, 0.5, 1.0]);
        self.idempotent = (0..self.producers).map(|_| r.chance(idempotent_chance)).collect();
        self.fetch_wait_ms =
            (0..self.consumers).map(|_| if r.chance(0.5) { 0 } else { r.range(1, 500) }).collect();
        self
    }

    /// The topics the verifier checks after healing: the planned ones and
    /// the group scenario's.
    pub fn verified_topics(&self) -> Vec<TopicPlan> {
        let mut topics = self.topics.clone();
        topics.extend(self.groups.iter().map(|g| g.topic.clone()));
        topics
    }
}

/// Swarm switches: each class is on with this chance.
const CLASS_ON: f64 = 0.6;
/// Beyond-budget classes are rarer: most seeds check the strict contract.
const BEYOND_BUDGET_ON: f64 = 0.15;
/// Each buggify knob is on with this chance.
const BUGGIFY_ON: f64 = 0.35;

pub fn draw(seed: u64, safety_ms: u64) -> SimConfig {
    let mut r = Rng::fork(seed, "swarm");
    let classes = Classes {
        crash: r.chance(0.8),
        pause: r.chance(CLASS_ON),
        partition: r.chance(CLASS_ON),
        loss: r.chance(CLASS_ON),
        duplicate: r.chance(CLASS_ON),
        enospc: r.chance(0.4),
        disk_eio: r.chance(CLASS_ON),
        disk_latency: r.chance(0.8),
        flip: r.chance(BEYOND_BUDGET_ON),
        misdirect: r.chance(BEYOND_BUDGET_ON / 2.0),
    };
    let flush = match r.weighted(&[8, 1, 1]) {
        0 => FlushPolicy::Always,
        1 => FlushPolicy::Interval { ms: r.range(5, 500) },
        _ => FlushPolicy::Never,
    };
    let disk = DiskFaults {
        latency_us_max: if classes.disk_latency { r.range(500, 5_000) } else { 0 },
        sync_latency_us_max: if classes.disk_latency { r.range(1_000, 20_000) } else { 0 },
        eio_read: if classes.disk_eio { r.log_uniform(1e-4, 2e-2) } else { 0.0 },
        eio_write: if classes.disk_eio { r.log_uniform(1e-4, 2e-2) } else { 0.0 },
        eio_sync: if classes.disk_eio { r.log_uniform(1e-4, 2e-2) } else { 0.0 },
        flip: if classes.flip { r.log_uniform(1e-3, 3e-2) } else { 0.0 },
        misdirect: if classes.misdirect { r.log_uniform(1e-4, 5e-3) } else { 0.0 },
    };
    let topics = draw_topics(&mut r);
    let tiny_timeouts = r.chance(BUGGIFY_ON);
    let tiny_fetches = r.chance(BUGGIFY_ON);
    let busy_upkeep = r.chance(BUGGIFY_ON);
    let latency_lo = r.range(0, 5);
    SimConfig {
        seed,
        flush,
        topics,
        producers: r.range(1, 5) as u32,
        consumers: r.range(1, 4) as u32,
        scratch_topics: r.chance(0.5),
        acks_weights: [r.range(0, 2), r.range(0, 3), r.range(2, 6)],
        idempotent: Vec::new(),
        fetch_wait_ms: Vec::new(),
        batch_records_max: *r.pick(&[1, 4, 16, 64]),
        value_bytes_max: *r.pick(&[16, 200, 1_500, 6_000]),
        think_ms_max: r.range(1, 60),
        request_timeout_ms: if tiny_timeouts { r.range(3, 40) } else { r.range(200, 1_500) },
        fetch_bytes_max: if tiny_fetches { r.range(1, 600) as u32 } else { 64 * 1024 },
        maintain_ms: if busy_upkeep { r.range(5, 60) } else { r.range(200, 2_000) },
        roll_chance: if r.chance(BUGGIFY_ON) { r.log_uniform(0.01, 0.5) } else { 0.0 },
        safety_ms,
        liveness_bound_ms: 60_000,
        classes,
        disk,
        crash_weights: CrashWeights {
            keep_all: r.range(0, 3),
            drop_unsynced: r.range(0, 3),
            random: r.range(1, 6),
        },
        episode_gap_ms: (r.range(100, 1_500), r.range(2_000, 8_000)),
        loss_rate: if classes.loss { r.log_uniform(0.002, 0.2) } else { 0.0 },
        duplicate_rate: if classes.duplicate { r.log_uniform(0.005, 0.2) } else { 0.0 },
        latency_ms: (latency_lo, latency_lo + r.range(1, 40)),
        groups: None,
        group_config: GroupConfig::default(),
        // From a stream of its own, so the other draws stay as they were.
        log_cache_bytes: *Rng::fork(seed, "swarm-cache").pick(&[0, 64 * 1024, 256 * 1024, 64 << 20]),
        open_segment_files_max: *Rng::fork(seed, "swarm-open-files").pick(&[1, 4, 4096]),
        compacted_keys: {
            let mut r = Rng::fork(seed, "swarm-compacted");
            r.chance(0.5).then(|| *r.pick(&[3, 20, 200]))
        },
    }
    .with_groups(seed)
    .with_clients(seed)
}

impl SimConfig {
    /// Draws the group scenario from a stream of its own, so that turning
    /// it on leaves every other draw of the seed as it was.
    fn with_groups(mut self, seed: u64) -> SimConfig {
        let mut r = Rng::fork(seed, "swarm-groups");
        let on = r.chance(GROUPS_ON);
        self.group_config = GroupConfig {
            // Few offsets partitions: each is a log the harness recovers and reads.
            offsets_topic_partitions: *r.pick(&[1, 2, 5]),
            min_session_timeout_ms: 100,
            max_session_timeout_ms: 60_000,
            initial_rebalance_delay_ms: *r.pick(&[0, 0, 200, 1_000, 3_000]),
            ..GroupConfig::default()
        };
        if !on {
            return self;
        }
        let session = r.range(600, 4_000);
        let tiny_timeouts = r.chance(BUGGIFY_ON);
        let misbehave = |r: &mut Rng| if r.chance(0.8) { r.log_uniform(0.0005, 0.01) } else { 0.0 };
        self.groups = Some(GroupPlan {
            group: "grp".into(),
            topic: TopicPlan {
                name: "g0".into(),
                partitions: r.range(2, 6) as u32,
                configs: if r.chance(BUGGIFY_ON) {
                    vec![("segment.bytes".into(), r.range(512, 16 * 1024).to_string())]
                } else {
                    Vec::new()
                },
                retention: false,
            },
            members: r.range(2, 4) as u32,
            session_timeout_ms: session,
            rebalance_timeout_ms: r.range(session, 3 * session),
            heartbeat_ms: session / r.range(3, 5),
            commit_ms: r.range(20, 1_000),
            request_timeout_ms: if tiny_timeouts { r.range(5, 60) } else { r.range(200, session / 2) },
            crash_chance: misbehave(&mut r),
            stall_chance: misbehave(&mut r),
            leave_chance: misbehave(&mut r),
            acks_weights: [r.range(2, 6), r.range(0, 2)],
            // From a stream of its own, so the draws here stay as they were.
            static_members: Rng::fork(seed, "swarm-group-static").chance(0.5),
            assignors: *Rng::fork(seed, "swarm-group-assignors").pick(&[
                Assignors::Range,
                Assignors::Cooperative,
                Assignors::Upgrade,
            ]),
        });
        // Drawn last, so the draws above stay as they were: small values
        // make the coordinator compact `__consumer_offsets` many times a
        // run, crashes and power loss included.
        self.group_config.compaction_min_records = *r.pick(&[20, 100, 10_000]);
        self
    }
}

/// One to three topics; buggify gives some of them tiny segments and
/// indexes (rolls all the time) or aggressive retention.
fn draw_topics(r: &mut Rng) -> Vec<TopicPlan> {
    (0..r.range(1, 3))
        .map(|i| {
            let mut configs = Vec::new();
            if r.chance(BUGGIFY_ON) {
                configs.push(("segment.bytes".into(), r.range(512, 16 * 1024).to_string()));
            }
            if r.chance(BUGGIFY_ON) {
                configs.push(("segment.index.bytes".into(), (8 * r.range(1, 8)).to_string()));
                configs.push(("index.interval.bytes".into(), r.range(1, 2_048).to_string()));
            }
            if r.chance(BUGGIFY_ON) {
                configs.push(("segment.ms".into(), r.range(50, 5_000).to_string()));
            }
            let retention = r.chance(0.3);
            if retention {
                if r.chance(0.5) {
                    configs.push(("retention.bytes".into(), r.range(1_024, 64 * 1024).to_string()));
                } else {
                    configs.push(("retention.ms".into(), r.range(500, 20_000).to_string()));
                }
            }
            TopicPlan { name: format!("t{i}"), partitions: r.range(1, 4) as u32, configs, retention }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed draws the same world; draws stay within their bounds.
    #[test]
    fn draws_replay_and_stay_in_bounds() {
        for seed in 0..300 {
            let a = draw(seed, 1000);
            let b = draw(seed, 1000);
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            assert!(!a.topics.is_empty() && a.topics.len() <= 3);
            assert!(a.latency_ms.0 < a.latency_ms.1);
            assert!(a.episode_gap_ms.0 < a.episode_gap_ms.1);
            assert!(a.crash_weights.random > 0);
            assert!(a.producers >= 1 && a.consumers >= 1);
            assert!(a.acks_weights.iter().sum::<u64>() > 0);
            for t in &a.topics {
                let mut config = ringtail_engine::log::LogConfig::default();
                for (k, v) in &t.configs {
                    config.set(k, v).unwrap();
                }
            }
        }
    }
}
