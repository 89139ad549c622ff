//! `log_recovery`: a log on a `MemDisk` driven by arbitrary operations, with
//! crashes (unsynced writes dropped, kept or torn), failed fsyncs, a full
//! disk and bit flips in the files, reopened through `Log::open` or
//! `LogManager::open`, and compared with two models:
//!
//! - the *written* model: every batch the log may hold, in offset order (an
//!   append that failed may or may not have reached the file);
//! - the *durable* point: offsets below it survive any crash (acknowledged
//!   under flush=always, flushed, rolled, closed, or claimed flushed by the
//!   log).
//!
//! After every recovery: the log is a prefix of the written model that keeps
//! everything durable, unless a bit flip landed in it (then the log may end
//! at the damaged batch, and reads of it fail); no read ever returns a batch
//! other than the one appended; and a second recovery changes nothing.
//!
//! The harness, by file:
//!
//! - `scenario`: the scenario decoded from the fuzz input (its types are
//!   re-exported here);
//! - `model`: what the log may hold and what must survive;
//! - `harness`: the harness state, opening the log, and its helpers;
//! - `apply`: one operation on the log, mirrored in the model;
//! - `checks`: the live log checked against the model (invariants, reads,
//!   timestamp lookups);
//! - `recovery`: clean reopens, crashes, bit flips, and the checks after
//!   every recovery.

mod apply;
mod checks;
mod harness;
mod model;
mod recovery;
mod scenario;

pub use scenario::{ConfigChoice, Crash, CrashKind, Flip, FlushChoice, Op, Scenario};

use crate::exec::block_on;
use crate::watch::WatchDisk;
use harness::{Cp, Harness};
use model::Model;
use ringtail_engine::clock::ManualClock;
use ringtail_engine::io::{Disk, MemDisk};
use ringtail_engine::log::TopicPartition;
use std::path::Path;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;
const ROOT: &str = "/data";
const OPS_MAX: usize = 64;
/// Small: reads after a run of appends come from the cache and the disk both.
const CACHE_BYTES: usize = 4 * 1024;
pub const FLIPS_MAX: usize = 3;

pub fn run(data: &[u8]) {
    if let Some(scenario) = Scenario::decode(data) {
        run_scenario(&scenario);
    }
}

pub fn run_scenario(s: &Scenario) {
    let config = s.config.config();
    config.validate().expect("the fuzz config is valid");
    let disk = Arc::new(MemDisk::new());
    disk.set_sync_yields(u32::from(s.sync_yields % 3));
    let watched = Arc::new(WatchDisk(MemDisk::clone(&disk)));
    block_on(async {
        disk.create_dir_all(Path::new(ROOT)).await.unwrap();
        disk.sync_dir(Path::new("/")).await.unwrap();
    });
    let mut h = Harness {
        disk,
        clock: Arc::new(ManualClock::new(T0)),
        config,
        via_manager: s.via_manager,
        tp: TopicPartition::new("m", 0),
        manager: None,
        log: None,
        watched,
        cp: Cp::default(),
        model: Model::default(),
        faults_armed: false,
        step: 0,
        timestamps_unreliable: false,
        claim_cap: None,
        refused: false,
    };
    h.open(0);
    let trace = std::env::var_os("RINGTAIL_FUZZ_TRACE").is_some();
    for op in s.ops.iter().take(OPS_MAX) {
        if h.refused {
            return;
        }
        h.step += 1;
        if trace {
            eprintln!("step {}: {op:?}", h.step);
        }
        h.apply(op);
        if h.refused {
            return;
        }
        if trace {
            h.trace_state();
        }
        h.check_invariants();
    }
    if h.refused {
        return;
    }
    h.step += 1;
    h.crash(&s.crash);
}
