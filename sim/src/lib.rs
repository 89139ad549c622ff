//! Ringtail's deterministic simulator: a broker on a faulty simulated disk
//! and network, driven by one seed, with invariants checked throughout.
//!
//! Pure parts (build and test in any build):
//! - `rng`: seeded splitmix streams, one per component.
//! - `swarm`: what a seed draws: workload, topic configs, buggify knobs,
//!   which fault classes are on and how often they fire.
//! - `values`: self-describing record values and fingerprints.
//! - `ops`: the workload's requests and responses.
//! - `history`: the event log, `--trace`, and violation slices.
//! - `taint`: partitions a beyond-budget fault touched.
//! - `checker`: the invariants; `groupcheck`: the consumer-group ones;
//!   `quorumcheck`: the metadata quorum's.
//! - `disk`: `SimDisk`, the engine's `Disk` on `MemDisk` plus media faults.
//! - `stats`: operation and fault counters.
//! - `report`: per-seed lines, violations, the suite table.
//!
//! madsim parts (only with `RUSTFLAGS="--cfg madsim"`, see `sim/run`):
//! - `world`: what the nodes of one run share; the simulated clock.
//! - `kafka`: each workload request as calls of the project's Kafka client.
//! - `node`: the broker node: recover, check recovery, serve, upkeep.
//! - `observer`: the server's requests and replies as the broker handles them.
//! - `workload`: producers, consumers, the topic admin.
//! - `group`: the consumer-group scenario: members, their producer, the drain.
//! - `faults`: the fault schedule and healing.
//! - `verify`: the liveness phase's convergence check.
//! - `run`: one seed from start to summary.
//! - `quorum`: the metadata quorum scenario (`--scenario quorum`).

pub mod checker;
pub mod disk;
pub mod groupcheck;
pub mod history;
pub mod ops;
pub mod quorumcheck;
pub mod replicationcheck;
pub mod report;
pub mod rng;
pub mod stats;
pub mod swarm;
pub mod taint;
pub mod values;

#[cfg(madsim)]
pub mod compacted;
#[cfg(madsim)]
pub mod faults;
#[cfg(madsim)]
pub mod group;
#[cfg(madsim)]
pub mod kafka;
#[cfg(madsim)]
pub mod node;
#[cfg(madsim)]
pub mod observer;
#[cfg(madsim)]
pub mod quorum;
#[cfg(madsim)]
pub mod replication;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod verify;
#[cfg(madsim)]
pub mod workload;
#[cfg(madsim)]
pub mod world;
