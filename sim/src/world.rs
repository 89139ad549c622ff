//! What every simulated node of one run shares: the seed's configuration,
//! the broker's disk (owned by the harness, so it outlives crashes), the
//! checker, the counters, and the phase flags.

use crate::checker::Checker;
use crate::disk::SimDisk;
use crate::stats::Counters;
use crate::swarm::SimConfig;
use crate::taint::Taints;
use ringtail_engine::clock::Clock;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Simulated wall clock at time zero: 2023-11-14, a fixed Kafka timestamp.
pub const T0_MS: i64 = 1_700_000_000_000;

/// Milliseconds of simulated time since the run started.
pub fn sim_elapsed_ms() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_millis() as u64
}

/// The engine's clock in the simulator: madsim's time from a fixed epoch.
pub struct SimClock;

/// A host's wall clock in the simulator: simulated time plus an offset the
/// chaos steps (an NTP step, a VM resumed late). Only the engine reads it;
/// the runtime's timers (madsim's time) are monotonic, as tokio's are.
pub struct SteppedClock(pub Arc<AtomicI64>);

impl Clock for SteppedClock {
    fn now_ms(&self) -> i64 {
        SimClock.now_ms() + self.0.load(Ordering::SeqCst)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        T0_MS + sim_elapsed_ms() as i64
    }
}

pub struct World {
    pub cfg: SimConfig,
    pub disk: SimDisk,
    pub checker: Mutex<Checker>,
    /// Shared with the disk and the checker: loss events, tainted files.
    pub taints: Arc<Mutex<Taints>>,
    pub counters: Arc<Counters>,
    pub broker_addr: SocketAddr,
    /// Bumped each time the broker node starts: seeds its streams.
    pub broker_starts: AtomicU64,
    /// The broker node is killed (crashed and not yet restarted).
    pub broker_down: AtomicBool,
    /// The broker opened and serves (false while down or recovering, and
    /// while it refuses to open).
    pub broker_serving: AtomicBool,
    /// Why the broker's last open failed, if it did.
    pub last_open_error: Mutex<Option<String>>,
    /// The broker is paused (madsim stops polling its tasks).
    pub broker_paused: AtomicBool,
    /// The workload should finish its current operation and stop.
    pub stop_workload: AtomicBool,
    /// The planned topics exist (their create was acknowledged).
    pub topics_ready: AtomicBool,
    /// The group scenario: its topic exists; faults are over and members
    /// drain (no more misbehaviour); the drain is checked and members stop.
    pub group_topic_ready: AtomicBool,
    pub group_quiet: AtomicBool,
    pub group_done: AtomicBool,
    /// The compacted topic's producer's record (`compacted`).
    pub compacted: Mutex<crate::compacted::Compacted>,
}

impl World {
    pub fn compacted(&self) -> MutexGuard<'_, crate::compacted::Compacted> {
        self.compacted.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn checker(&self) -> MutexGuard<'_, Checker> {
        self.checker.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn failed(&self) -> bool {
        self.checker().violation().is_some()
    }

    pub fn stopping(&self) -> bool {
        self.stop_workload.load(Ordering::SeqCst)
    }

    /// A Kafka client of the broker named `name` (its client id), whose
    /// requests time out after `timeout`.
    pub fn kafka_client(&self, name: &str, timeout: std::time::Duration) -> crate::kafka::Client {
        let duplicates = crate::kafka::Duplicates {
            rng: crate::rng::Rng::fork(self.cfg.seed, &format!("{name}-duplicates")),
            rate: self.cfg.duplicate_rate,
            counters: self.counters.clone(),
        };
        crate::kafka::Client::new(
            self.broker_addr,
            name.to_string(),
            timeout,
            self.taints.clone(),
            Some(duplicates),
        )
    }

    /// A Kafka client whose requests are never duplicated (the verifier's).
    pub fn quiet_kafka_client(&self, name: &str, timeout: std::time::Duration) -> crate::kafka::Client {
        crate::kafka::Client::new(self.broker_addr, name.to_string(), timeout, self.taints.clone(), None)
    }

    /// Client-side timestamps for records.
    pub fn now_ms(&self) -> i64 {
        SimClock.now_ms()
    }
}
