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

use crate::exec::{block_on, join_all};
use crate::gen::{opaque_batch, stamped};
use crate::watch::WatchDisk;
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use ringtail_engine::clock::{Clock, ManualClock};
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::{Disk, MemDisk};
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{
    AppendError, FlushPolicy, Log, LogCache, LogConfig, LogManager, OpenError, ReadError, RecoveryReport,
    TopicPartition,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;
const ROOT: &str = "/data";
const OPS_MAX: usize = 64;
/// Small: reads after a run of appends come from the cache and the disk both.
const CACHE_BYTES: usize = 4 * 1024;
pub const FLIPS_MAX: usize = 3;

#[derive(Arbitrary, Debug, Clone)]
pub struct Scenario {
    pub config: ConfigChoice,
    /// Reopen through `LogManager::open` (checkpoint files on the disk), or
    /// through `Log::open` with checkpoints the harness keeps as the manager
    /// would.
    pub via_manager: bool,
    /// Times each fsync yields to the executor (0-2): with more than zero,
    /// concurrent appends share group-commit rounds.
    pub sync_yields: u8,
    /// The crash after the last operation.
    pub crash: Crash,
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ConfigChoice {
    pub segment_bytes: u16,
    pub segment_ms: Option<u16>,
    pub index_interval: u8,
    pub index_entries: u8,
    pub retention_ms: Option<u16>,
    pub retention_bytes: Option<u16>,
    pub flush: FlushChoice,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FlushChoice {
    Always,
    Never,
    Interval(u16),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// One append call of 1-3 batches of 1-4 records each.
    Append {
        batches: u8,
        records: u8,
        payload: u8,
        epoch: u8,
        ts_skew: i8,
    },
    /// 2-6 single-batch appends in flight at once.
    Concurrent {
        count: u8,
        payload: u8,
    },
    Read {
        at: u8,
        max_bytes: u16,
    },
    TimeLookup {
        at: u8,
    },
    Flush,
    FlushIfDue,
    Roll,
    Tick {
        ms: u16,
    },
    Retention,
    DeleteRecordsBefore {
        at: u8,
    },
    Truncate {
        at: u8,
    },
    Checkpoint,
    /// Clean close and reopen.
    Reopen,
    FailNextSyncs {
        n: u8,
    },
    DiskFull {
        headroom: u16,
    },
    ClearFaults,
    Crash(Crash),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Crash {
    pub kind: CrashKind,
    pub seed: u32,
    /// Bit flips in the files after the crash, before recovery: the first
    /// `flip_count % (FLIPS_MAX + 1)` of `flips`. (A fixed array, so that
    /// the flips do not eat the bytes the operations are made of.)
    pub flip_count: u8,
    pub flips: [Flip; FLIPS_MAX],
    /// Lowers the recovery point handed to `Log::open` (always safe).
    pub rp_lower: u8,
}

impl Crash {
    pub fn flips(&self) -> &[Flip] {
        &self.flips[..usize::from(self.flip_count) % (FLIPS_MAX + 1)]
    }
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    DropUnsynced,
    KeepAll,
    /// Each unsynced write kept, dropped or torn at sector granularity.
    Tear,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Flip {
    pub index_file: bool,
    pub file: u8,
    pub at: u16,
    pub bit: u8,
}

pub fn run(data: &[u8]) {
    if let Some(scenario) = Scenario::decode(data) {
        run_scenario(&scenario);
    }
}

impl Scenario {
    /// The scenario in `data`: the fixed fields via `arbitrary`, then one
    /// operation after another until the bytes run out. (The derived
    /// `arbitrary_take_rest` reads a continue-flag byte before each element,
    /// which makes random inputs very short.)
    pub fn decode(data: &[u8]) -> Option<Scenario> {
        let mut u = Unstructured::new(data);
        let config = ConfigChoice::arbitrary(&mut u).ok()?;
        let via_manager = bool::arbitrary(&mut u).ok()?;
        let sync_yields = u8::arbitrary(&mut u).ok()?;
        let crash = Crash::arbitrary(&mut u).ok()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < OPS_MAX {
            ops.push(Op::arbitrary(&mut u).ok()?);
        }
        Some(Scenario { config, via_manager, sync_yields, crash, ops })
    }
}

impl ConfigChoice {
    pub fn config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: 64 + u64::from(self.segment_bytes % 4000),
            segment_ms: self.segment_ms.map_or(LogConfig::default().segment_ms, |ms| 100 + i64::from(ms)),
            retention_ms: self.retention_ms.map(|ms| 1000 + i64::from(ms)),
            retention_bytes: self.retention_bytes.map(|b| 200 + u64::from(b % 8000)),
            index_interval_bytes: [0, 1, 60, 100, 250, 1000, 4096, 3][usize::from(self.index_interval % 8)],
            segment_index_bytes: [8, 16, 24, 64, 10 << 20][usize::from(self.index_entries % 5)],
            flush: match self.flush {
                FlushChoice::Always => FlushPolicy::Always,
                FlushChoice::Never => FlushPolicy::Never,
                FlushChoice::Interval(ms) => FlushPolicy::Interval { ms: 1 + u64::from(ms % 5000) },
            },
            ..LogConfig::default()
        }
    }
}

/// A batch as the log must serve it.
#[derive(Clone, Debug)]
struct MBatch {
    base: u64,
    next: u64,
    bytes: Bytes,
    max_ts: i64,
}

/// A batch a bit flip changed on the disk.
#[derive(Clone, Debug)]
struct Damage {
    segment: u64,
    on_disk: Bytes,
    /// Only the partition leader epoch (outside the CRC) changed: no check
    /// can see it, by the format's design. Reads may serve these bytes.
    epoch_only: bool,
}

#[derive(Default)]
struct Model {
    /// Every batch the log may hold, oldest first, dense; below the log
    /// start too (reads there are out of range).
    batches: Vec<MBatch>,
    /// The log end offset if every written batch is there.
    next: u64,
    log_start: u64,
    /// Lowest start a crash may bring back (a checkpoint write failed).
    log_start_min: u64,
    /// Offsets below this survive any crash.
    durable: u64,
    next_id: u64,
    damaged: BTreeMap<u64, Damage>,
    /// Segments whose `.index` file took a bit flip.
    index_damaged: std::collections::BTreeSet<u64>,
}

impl Model {
    fn end(&self) -> u64 {
        self.next
    }

    fn offset_at(&self, at: u8) -> u64 {
        let (start, end) = (self.log_start, self.end());
        start + (end - start) * u64::from(at) / 255
    }

    fn push(&mut self, base: u64, batch: &Bytes, epoch: i32) -> u64 {
        let count = u64::from(u32::from_be_bytes(batch[57..61].try_into().unwrap()));
        let max_ts = i64::from_be_bytes(batch[35..43].try_into().unwrap());
        let bytes = stamped(batch, base, epoch);
        self.batches.push(MBatch { base, next: base + count, bytes, max_ts });
        self.next = base + count;
        self.next
    }

    /// Drops every batch at or past `offset` (whole batches, as
    /// `truncate_to` does); the new end offset.
    fn truncate(&mut self, offset: u64) -> u64 {
        if let Some(first_gone) = self.batches.iter().find(|b| b.next > offset) {
            self.next = first_gone.base;
        }
        self.batches.retain(|b| b.next <= offset);
        let end = self.next;
        self.damaged.retain(|&base, _| base < end);
        self.durable = self.durable.min(end);
        end
    }

    fn first_damaged(&self) -> Option<u64> {
        self.damaged.iter().find(|(_, d)| !d.epoch_only).map(|(&b, _)| b)
    }

    fn batch_holding(&self, offset: u64) -> Option<usize> {
        let i = self.batches.partition_point(|b| b.next <= offset);
        (i < self.batches.len()).then_some(i)
    }
}

/// The checkpoint the manager would have written (Log::open mode).
#[derive(Clone, Copy, Default)]
struct Cp {
    recovery_point: u64,
    log_start: u64,
}

struct Harness {
    disk: Arc<MemDisk>,
    clock: Arc<ManualClock>,
    config: LogConfig,
    via_manager: bool,
    tp: TopicPartition,
    manager: Option<LogManager<WatchDisk>>,
    log: Option<Arc<Log<WatchDisk>>>,
    /// The disk the log runs on (`disk` is the same storage).
    watched: Arc<WatchDisk>,
    cp: Cp,
    model: Model,
    faults_armed: bool,
    step: usize,
    /// A truncation happened and the known bug `truncate-max-timestamp` is
    /// tolerated (see `crate::known_bugs`): timestamp answers may be off.
    timestamps_unreliable: bool,
    /// After a failed truncation (which may have removed data, as asked),
    /// the log's flushed offset no longer bounds what a crash keeps: the
    /// claim is capped at the truncation's end until the next recovery.
    claim_cap: Option<u64>,
    /// Recovery refused to open the damaged log: the scenario ends there.
    refused: bool,
}

fn dir() -> PathBuf {
    Path::new(ROOT).join("m-0")
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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

impl Harness {
    fn log(&self) -> &Arc<Log<WatchDisk>> {
        self.log.as_ref().expect("log open")
    }

    fn fail(&self, what: std::fmt::Arguments<'_>) -> ! {
        panic!("step {}: {what}", self.step)
    }

    /// Opens the log (recovering it); the recovery report of its directory.
    fn open(&mut self, rp_lower: u64) -> Option<RecoveryReport> {
        self.log = None;
        self.manager = None;
        let config = self.config;
        if self.via_manager {
            let opened = block_on(LogManager::open(
                self.watched.clone(),
                PathBuf::from(ROOT),
                self.clock.clone(),
                LogCache::new(CACHE_BYTES),
                move |_| config,
            ));
            let (m, reports) = match opened {
                Ok(opened) => opened,
                Err(e) => return self.refused(e),
            };
            let log = block_on(m.get_or_create(&self.tp, self.config))
                .unwrap_or_else(|e| self.fail(format_args!("get_or_create failed: {e}")));
            self.log = Some(log);
            self.manager = Some(m);
            reports.into_iter().find(|r| r.dir == dir())
        } else {
            let cache = LogCache::new(CACHE_BYTES);
            let cp = LogCheckpoint {
                recovery_point: self.cp.recovery_point.saturating_sub(rp_lower),
                log_start_offset: self.cp.log_start,
            };
            let (log, report) = match block_on(Log::open(
                self.watched.clone(),
                dir(),
                config,
                self.clock.clone(),
                cp,
                &cache,
            )) {
                Ok(opened) => opened,
                Err(e) => return self.refused(e),
            };
            self.log = Some(Arc::new(log));
            // LogManager::open writes a checkpoint once the logs are open.
            self.checkpoint();
            Some(report)
        }
    }

    /// A refused open is the safe outcome when acknowledged data was
    /// damaged (recovery must neither cut nor serve it); anything else is a
    /// failure. Ends the scenario: there is no log to go on with.
    fn refused(&mut self, e: OpenError) -> Option<RecoveryReport> {
        let damage = !self.model.damaged.is_empty() || !self.model.index_damaged.is_empty();
        if !(damage && matches!(e, OpenError::Corrupt { .. })) {
            self.fail(format_args!("opening the log failed: {e}"));
        }
        self.refused = true;
        None
    }

    /// The manager's checkpoint (Log::open mode: remembered here).
    fn checkpoint(&mut self) -> bool {
        match &self.manager {
            Some(m) => block_on(m.checkpoint()).is_ok(),
            None => {
                let log = self.log();
                self.cp = Cp { recovery_point: log.flushed_offset(), log_start: log.log_start_offset() };
                true
            }
        }
    }

    fn trace_files(&self, when: &str) {
        eprintln!("    files {when} (rp {}, start {}):", self.cp.recovery_point, self.cp.log_start);
        for name in block_on(self.disk.list(&dir())).unwrap_or_default() {
            let contents = self.disk.contents(&dir().join(&name)).unwrap_or_default();
            let scan = name.strip_suffix(".log").map(|stem| {
                let (batches, valid, stop) = crate::reference::scan_segment(&contents, stem.parse().unwrap());
                (batches.len(), batches.last().map(|b| b.next_offset), valid, stop)
            });
            eprintln!("      {name}: {} bytes; (batches, next, valid, garbage) {scan:?}", contents.len());
        }
    }

    fn trace_state(&self) {
        let log = self.log();
        eprintln!(
            "    log [{}, {}) flushed {} poisoned {} segments {:?} | model [{}, {}) start_min {} durable {} damaged {:?}",
            log.log_start_offset(),
            log.log_end_offset(),
            log.flushed_offset(),
            self.poisoned(),
            log.segment_base_offsets(),
            self.model.log_start,
            self.model.end(),
            self.model.log_start_min,
            self.model.durable,
            self.model.damaged.keys().collect::<Vec<_>>(),
        );
    }

    fn poisoned(&self) -> bool {
        self.log().poisoned().is_some()
    }

    fn clear_faults(&mut self) {
        self.disk.fail_next_syncs(0);
        self.disk.set_capacity(None);
        self.faults_armed = false;
    }

    /// What the log claims is durable, as far as a crash may be held to it.
    /// Retention and delete-records clamp the flushed offset up to the log
    /// start (by design), which may lie past the data really synced: claims
    /// at or below the start are not held.
    fn durable_required(&self) -> u64 {
        let claim = self.log().flushed_offset().min(self.claim_cap.unwrap_or(u64::MAX));
        let claim = if claim > self.model.log_start { claim } else { 0 };
        self.model.durable.max(claim)
    }

    fn check_invariants(&self) {
        let log = self.log();
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        if start > end || log.flushed_offset() > end {
            self.fail(format_args!(
                "offsets out of order: start {start}, flushed {}, end {end}",
                log.flushed_offset()
            ));
        }
        if !self.poisoned() {
            if (start, end) != (self.model.log_start, self.model.end()) {
                self.fail(format_args!(
                    "log [{start}, {end}) but model [{}, {})",
                    self.model.log_start,
                    self.model.end()
                ));
            }
            if log.flushed_offset() < self.model.durable {
                self.fail(format_args!(
                    "the log claims less durability ({}) than it owes ({})",
                    log.flushed_offset(),
                    self.model.durable
                ));
            }
        }
    }

    /// Expects `result` to be Ok, or an error the log's state explains.
    /// Returns whether it was Ok.
    fn outcome<T, E: std::fmt::Display>(
        &self,
        what: &str,
        was_poisoned: bool,
        result: &Result<T, E>,
    ) -> bool {
        self.outcome_or(what, was_poisoned, result, false)
    }

    /// `outcome`, where `explained` also accounts for an error.
    fn outcome_or<T, E: std::fmt::Display>(
        &self,
        what: &str,
        was_poisoned: bool,
        result: &Result<T, E>,
        explained: bool,
    ) -> bool {
        match result {
            Ok(_) => {
                if was_poisoned {
                    self.fail(format_args!("{what} succeeded on a poisoned log"));
                }
                true
            }
            Err(e) => {
                let text = e.to_string();
                let explained = explained
                    || (was_poisoned && text.contains("poisoned"))
                    || (self.faults_armed && !text.contains("poisoned"));
                if !explained {
                    self.fail(format_args!("{what} failed unexpectedly: {e}"));
                }
                false
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        let was_poisoned = self.poisoned();
        let always = self.config.flush == FlushPolicy::Always;
        match op {
            Op::Append { batches, records, payload, epoch, ts_skew } => {
                let mut bytes = Vec::new();
                let mut parts = Vec::new();
                for _ in 0..1 + batches % 3 {
                    let ts = self.clock.now_ms() + i64::from(*ts_skew);
                    let b = opaque_batch(
                        1 + u32::from(records % 4),
                        self.model.next_id,
                        ts,
                        8 + usize::from(*payload),
                    );
                    self.model.next_id += 1;
                    bytes.extend_from_slice(&b);
                    parts.push(b);
                }
                let epoch = i32::from(*epoch);
                let result = block_on(self.log().append(Bytes::from(bytes), epoch));
                self.after_append(was_poisoned, result.map(|i| i.base_offset), &parts, epoch, always);
            }
            Op::Concurrent { count, payload } => {
                if self.faults_armed || was_poisoned {
                    // Failed concurrent appends leave their offsets unknown:
                    // only run them when all must succeed.
                    return;
                }
                let mut parts = Vec::new();
                for _ in 0..2 + count % 5 {
                    let b =
                        opaque_batch(1, self.model.next_id, self.clock.now_ms(), 8 + usize::from(*payload));
                    self.model.next_id += 1;
                    parts.push(b);
                }
                let log = self.log().clone();
                let results = join_all(parts.iter().map(|b| log.append(b.clone(), 3)).collect());
                let mut done: Vec<(u64, &Bytes)> = results
                    .into_iter()
                    .zip(&parts)
                    .map(|(r, b)| match r {
                        Ok(info) => (info.base_offset, b),
                        Err(e) => {
                            self.fail(format_args!("concurrent append failed with no fault armed: {e}"))
                        }
                    })
                    .collect();
                done.sort_by_key(|(base, _)| *base);
                for (base, b) in done {
                    if base != self.model.end() {
                        self.fail(format_args!(
                            "concurrent append got offset {base}, expected {}",
                            self.model.end()
                        ));
                    }
                    self.model.push(base, b, 3);
                }
                if always {
                    self.model.durable = self.model.end();
                }
            }
            Op::Read { at, max_bytes } => {
                let offset = if *at > 250 {
                    self.model.end() + u64::from(at - 250)
                } else {
                    self.model.offset_at(*at)
                };
                self.check_read(offset, usize::from(*max_bytes));
            }
            Op::TimeLookup { at } => self.check_time_lookup(*at),
            Op::Flush => {
                let result = block_on(self.log().flush());
                if self.outcome("flush", was_poisoned, &result) {
                    self.model.durable = self.model.end();
                }
            }
            Op::FlushIfDue => {
                // Ok on a poisoned log is right when no flush was due.
                let result = block_on(self.log().flush_if_due());
                self.outcome("flush_if_due", was_poisoned && result.is_err(), &result);
            }
            Op::Roll => {
                let result = block_on(self.log().roll());
                if self.outcome("roll", was_poisoned, &result) {
                    self.model.durable = self.model.end();
                }
            }
            Op::Tick { ms } => self.clock.advance_ms(i64::from(*ms)),
            Op::Retention => {
                let expected = self.expected_retention();
                let result = block_on(self.log().apply_retention());
                if let (Ok(outcome), Some(want)) = (&result, expected) {
                    if outcome.segments_deleted != want {
                        self.fail(format_args!(
                            "retention deleted {} segments, the model {want} (segments {:?})",
                            outcome.segments_deleted,
                            self.describe_segments()
                        ));
                    }
                }
                if let Ok(outcome) = &result {
                    if outcome.log_start_offset < self.model.log_start
                        || outcome.log_start_offset > self.model.end()
                    {
                        self.fail(format_args!("retention moved the start to {}", outcome.log_start_offset));
                    }
                    self.model.log_start = outcome.log_start_offset;
                    if outcome.segments_deleted > 0 {
                        // Deleting segments is durable (the directory is
                        // synced): no crash brings their offsets back. (The
                        // start itself may be a delete-records start whose
                        // checkpoint failed: not durable.)
                        let first = self.log().segment_base_offsets()[0];
                        self.model.log_start_min = self.model.log_start_min.max(first);
                    }
                } else {
                    self.model.log_start = self.model.log_start.max(self.log().log_start_offset());
                }
                self.outcome("retention", was_poisoned, &result);
            }
            Op::DeleteRecordsBefore { at } => {
                let offset = self.model.offset_at(*at);
                let result = match &self.manager {
                    Some(m) => block_on(m.delete_records_before(&self.tp, offset)),
                    None => block_on(self.log().delete_records_before(offset)),
                };
                if result.is_ok() && !self.via_manager {
                    self.checkpoint();
                }
                let ok = self.outcome("delete_records_before", was_poisoned, &result);
                let start = self.log().log_start_offset();
                if ok {
                    if start != self.model.log_start.max(offset) {
                        self.fail(format_args!("delete_records_before({offset}) left the start at {start}"));
                    }
                    self.model.log_start_min = start;
                }
                self.model.log_start = self.model.log_start.max(start);
            }
            Op::Truncate { at } => {
                let offset = self.model.offset_at(*at);
                self.timestamps_unreliable |= crate::known_bugs::tolerated("truncate-max-timestamp");
                let before = self.log().log_start_offset();
                let result = match &self.manager {
                    Some(m) => block_on(m.truncate_to(&self.tp, offset)),
                    None => block_on(self.log().truncate_to(offset)),
                };
                // The recovery point must come down with the log before
                // anything is appended past the cut (the manager does it).
                if !self.via_manager && result.is_ok() {
                    self.checkpoint();
                }
                let _ = before;
                // Truncating through a damaged batch is refused (it cannot
                // be parsed past), and poisons the log.
                let damage = self.model.first_damaged().is_some() || !self.model.index_damaged.is_empty();
                let corrupt = result.as_ref().is_err_and(|e| e.to_string().contains("corrupt"));
                let ok = self.outcome_or("truncate_to", was_poisoned, &result, damage && corrupt);
                // Through the manager, an error with the log still healthy is
                // a failed checkpoint after a truncation that took place.
                if ok || (self.via_manager && !was_poisoned && !self.poisoned()) {
                    let end = self.model.truncate(offset);
                    self.model.log_start = self.model.log_start.min(end);
                    self.model.log_start_min = self.model.log_start_min.min(end);
                } else {
                    // Partly done: the batches may or may not be there, and
                    // losing them is no longer a durability failure.
                    let mut copy = self.model.batches.clone();
                    copy.retain(|b| b.next <= offset);
                    let end = copy.last().map_or(self.model.log_start.min(offset), |b| b.next);
                    self.model.durable = self.model.durable.min(end);
                    self.model.log_start_min = self.model.log_start_min.min(end);
                    self.claim_cap = Some(self.claim_cap.unwrap_or(u64::MAX).min(end));
                }
            }
            Op::Checkpoint => {
                if !self.checkpoint() && !self.faults_armed {
                    self.fail(format_args!("checkpoint failed with no fault armed"));
                }
            }
            Op::Reopen => self.reopen(),
            Op::FailNextSyncs { n } => {
                self.disk.fail_next_syncs(1 + u32::from(n % 2));
                self.faults_armed = true;
            }
            Op::DiskFull { headroom } => {
                let used = self.live_bytes();
                self.disk.set_capacity(Some(used + u64::from(*headroom % 2048)));
                self.faults_armed = true;
            }
            Op::ClearFaults => self.clear_faults(),
            Op::Crash(c) => self.crash(c),
        }
    }

    fn after_append(
        &mut self,
        was_poisoned: bool,
        result: Result<u64, AppendError>,
        parts: &[Bytes],
        epoch: i32,
        always: bool,
    ) {
        match result {
            Ok(base) => {
                if was_poisoned {
                    self.fail(format_args!("append succeeded on a poisoned log"));
                }
                if base != self.model.end() {
                    self.fail(format_args!("append got offset {base}, expected {}", self.model.end()));
                }
                let mut at = base;
                for b in parts {
                    at = self.model.push(at, b, epoch);
                }
                if always {
                    self.model.durable = self.model.end();
                }
            }
            Err(AppendError::Poisoned(_)) if was_poisoned => {}
            Err(AppendError::Io(_)) if self.faults_armed => {
                // The batches may have reached the file: the model keeps them
                // as written, not durable.
                let mut at = self.model.end();
                for b in parts {
                    at = self.model.push(at, b, epoch);
                }
            }
            Err(e) => self.fail(format_args!("append failed unexpectedly: {e}")),
        }
    }

    /// Per segment from the model: (base, next offset, bytes, max timestamp).
    fn describe_segments(&self) -> Vec<(u64, u64, u64, i64)> {
        let bases = self.log().segment_base_offsets();
        bases
            .iter()
            .enumerate()
            .map(|(i, &base)| {
                let until = bases.get(i + 1).copied().unwrap_or(u64::MAX);
                let inside: Vec<&MBatch> =
                    self.model.batches.iter().filter(|b| b.base >= base && b.base < until).collect();
                let next = inside.last().map_or(base, |b| b.next);
                let bytes = inside.iter().map(|b| b.bytes.len() as u64).sum();
                let max_ts = inside.iter().map(|b| b.max_ts).max().unwrap_or(i64::MIN);
                (base, next, bytes, max_ts)
            })
            .collect()
    }

    /// How many segments retention must delete now, by Kafka's rules on the
    /// model's timestamps and sizes; `None` where the model cannot tell.
    fn expected_retention(&self) -> Option<usize> {
        if self.poisoned() || !self.model.damaged.is_empty() || self.timestamps_unreliable {
            return None;
        }
        let segments = self.describe_segments();
        let now = self.clock.now_ms();
        let mut total: u64 = segments.iter().map(|s| s.2).sum();
        let sealed = &segments[..segments.len() - 1];
        let count = sealed
            .iter()
            .take_while(|&&(_, next, bytes, max_ts)| {
                let below_start = next <= self.model.log_start;
                let expired =
                    self.config.retention_ms.is_some_and(|r| bytes == 0 || now.saturating_sub(max_ts) > r);
                let oversized = self.config.retention_bytes.is_some_and(|r| total - bytes >= r);
                let doomed = below_start || expired || oversized;
                if doomed {
                    total -= bytes;
                }
                doomed
            })
            .count();
        Some(count)
    }

    fn live_bytes(&self) -> u64 {
        block_on(async {
            let mut total = 0;
            for d in [PathBuf::from(ROOT), dir()] {
                for name in self.disk.list(&d).await.unwrap_or_default() {
                    total += self.disk.contents(&d.join(name)).map_or(0, |c| c.len() as u64);
                }
            }
            total
        })
    }

    fn segment_of(&self, base: u64) -> u64 {
        let bases = self.log().segment_base_offsets();
        bases.iter().copied().filter(|&b| b <= base).max().unwrap_or(0)
    }

    /// May reading `offset` fail? Only where a damaged batch at or before
    /// it in the same segment is in the way, or the log is poisoned (its
    /// files may have lost bytes it still counts).
    fn read_error_allowed(&self, offset: u64, error: &ReadError) -> bool {
        if self.poisoned() && offset >= self.model.durable {
            return true;
        }
        let Some(i) = self.model.batch_holding(offset) else { return false };
        let base = self.model.batches[i].base;
        let segment = self.segment_of(base);
        if self.model.index_damaged.contains(&segment) && crate::known_bugs::tolerated("index-trusted") {
            return true;
        }
        matches!(error, ReadError::Corrupt { .. })
            && self.model.damaged.iter().any(|(&b, d)| b <= base && d.segment == segment && !d.epoch_only)
    }

    fn same_batch(&self, got: &[u8], want: &MBatch) -> bool {
        if got == &want.bytes[..] {
            return true;
        }
        self.model.damaged.get(&want.base).is_some_and(|d| d.epoch_only && got == &d.on_disk[..])
    }

    fn check_read(&self, offset: u64, max_bytes: usize) {
        if self.poisoned() && crate::known_bugs::tolerated("read-spins-short-segment") {
            return;
        }
        let result = block_on(self.log().read(offset, max_bytes, None));
        let (start, end) = (self.model.log_start, self.model.end());
        if !self.poisoned() && (offset < start || offset > end) {
            if !matches!(result, Err(ReadError::OffsetOutOfRange { .. })) {
                self.fail(format_args!("read {offset} outside [{start}, {end}]: {result:?}"));
            }
            return;
        }
        let got = match result {
            Ok(got) => got,
            Err(e) => {
                if !self.read_error_allowed(offset, &e) {
                    self.fail(format_args!("read {offset} in [{start}, {end}) failed: {e}"));
                }
                return;
            }
        };
        let (parsed, bad) = crate::reference::split_batches(&got.records);
        if bad.is_some() {
            self.fail(format_args!("read {offset} returned bytes that are not whole valid batches"));
        }
        let Some(first) = self.model.batch_holding(offset) else {
            if !parsed.is_empty() {
                self.fail(format_args!("read {offset} at the end returned batches"));
            }
            return;
        };
        if parsed.is_empty() {
            if !self.poisoned() {
                self.fail(format_args!("read {offset} below the end {end} returned nothing"));
            }
            return;
        }
        let total: usize = parsed.iter().map(|b| b.size).sum();
        if parsed.len() > 1 && total > max_bytes {
            self.fail(format_args!("read {offset} returned {total} bytes, over max {max_bytes}"));
        }
        for (k, b) in parsed.iter().enumerate() {
            let bytes = &got.records[b.position..b.position + b.size];
            match self.model.batches.get(first + k) {
                Some(want) if self.same_batch(bytes, want) => {}
                Some(want) => self.fail(format_args!(
                    "read {offset}: batch {k} (offset {}) differs from the one appended at {}",
                    b.base_offset, want.base
                )),
                None => self.fail(format_args!("read {offset} returned a batch past the model's end")),
            }
        }
    }

    /// `offset_for_timestamp` answers the first batch (from the start) whose
    /// max timestamp reaches the target.
    fn check_time_lookup(&self, at: u8) {
        let model = &self.model;
        let live: Vec<&MBatch> = model.batches.iter().filter(|b| b.next > model.log_start).collect();
        let target = match live.get(usize::from(at) % (live.len() + 1)) {
            Some(b) => b.max_ts - i64::from(at % 3),
            None => self.clock.now_ms() + 1_000_000,
        };
        let result = block_on(self.log().offset_for_timestamp(target));
        let want = live.iter().find(|b| b.max_ts >= target).map(|b| (b.base.max(model.log_start), b.max_ts));
        let unreliable = self.poisoned() || !model.damaged.is_empty() || self.timestamps_unreliable;
        match result {
            Ok(got) if got == want => {}
            Ok(got) if unreliable => {
                // A damaged batch may hide a timestamp; never invent one.
                if let Some((o, ts)) = got {
                    if !live.iter().any(|b| b.base.max(model.log_start) == o && b.max_ts == ts) {
                        self.fail(format_args!("offset_for_timestamp({target}) = {got:?}: no such batch"));
                    }
                }
            }
            Ok(got) => self.fail(format_args!("offset_for_timestamp({target}) = {got:?}, expected {want:?}")),
            Err(e) if unreliable => {
                if !matches!(e, ReadError::Corrupt { .. }) && !self.poisoned() {
                    self.fail(format_args!("offset_for_timestamp({target}) failed: {e}"));
                }
            }
            Err(e) => self.fail(format_args!("offset_for_timestamp({target}) failed: {e}")),
        }
    }

    /// Every batch in the log reads back as appended (or fails where damage
    /// explains it); one large read from the start too.
    fn check_all(&self) {
        let start = self.model.log_start;
        for b in self.model.batches.iter().filter(|b| b.next > start) {
            self.check_read(b.base.max(start), 1);
        }
        self.check_read(start, 1 << 20);
        self.check_read(self.model.end(), 1);
    }

    /// Clean close, then reopen: nothing may be lost or repaired.
    fn reopen(&mut self) {
        let closed = match &self.manager {
            Some(m) => block_on(m.close()).is_ok(),
            None => {
                let ok = block_on(self.log().close()).is_ok();
                if ok {
                    self.checkpoint();
                }
                ok
            }
        };
        if closed {
            self.model.durable = self.model.end();
        } else if !self.faults_armed && !self.poisoned() {
            self.fail(format_args!("clean close failed with no fault armed"));
        }
        let required = self.durable_required();
        self.clear_faults();
        let report = self.open(0);
        if self.refused {
            return;
        }
        self.after_recovery(report.as_ref(), required, closed);
    }

    /// Power loss per `crash`, bit flips, then recovery and its checks, then
    /// a second recovery that must change nothing.
    fn crash(&mut self, crash: &Crash) {
        let required = self.durable_required();
        self.log = None;
        self.manager = None;
        self.clear_faults();
        match crash.kind {
            CrashKind::DropUnsynced => self.disk.crash(CrashMode::DropUnsynced),
            CrashKind::KeepAll => self.disk.crash(CrashMode::KeepAll),
            CrashKind::Tear => {
                let mut r = rng(u64::from(crash.seed));
                self.disk.crash(CrashMode::Random(&mut r));
            }
        }
        let mut flipped_index = false;
        for flip in crash.flips() {
            flipped_index |= self.flip(flip);
        }
        if std::env::var_os("RINGTAIL_FUZZ_TRACE").is_some() {
            self.trace_files("after the crash");
        }
        let report = self.open(u64::from(crash.rp_lower));
        if self.refused {
            return;
        }
        self.after_recovery(report.as_ref(), required, false);

        // A second recovery (after a crash that keeps only what is synced)
        // must find nothing to repair and change nothing.
        let (end, start) = (self.log().log_end_offset(), self.log().log_start_offset());
        self.log = None;
        self.manager = None;
        self.disk.crash(CrashMode::DropUnsynced);
        let report2 = self.open(0);
        if self.refused {
            self.fail(format_args!("a second recovery refused what the first accepted"));
        }
        let (end2, start2) = (self.log().log_end_offset(), self.log().log_start_offset());
        if (end2, start2) != (end, start) {
            self.fail(format_args!(
                "a second recovery moved the log from [{start}, {end}) to [{start2}, {end2}); first {report:?}, second {report2:?}"
            ));
        }
        if let Some(r2) = &report2 {
            let damage = !self.model.damaged.is_empty() || flipped_index;
            if r2.cut.is_some() || !r2.segments_deleted.is_empty() || (!damage && !r2.is_clean()) {
                self.fail(format_args!("a second recovery repaired again: first {report:?}, second {r2:?}"));
            }
        }
        self.check_all();
    }

    /// Applies one bit flip to a `.log` (or index) file; whether it hit an
    /// index file.
    fn flip(&mut self, flip: &Flip) -> bool {
        let names = block_on(self.disk.list(&dir())).unwrap_or_default();
        if flip.index_file && crate::known_bugs::tolerated("index-trusted") {
            return false;
        }
        let suffix = if flip.index_file { ".index" } else { ".log" };
        let files: Vec<&String> = names.iter().filter(|n| n.ends_with(suffix)).collect();
        if files.is_empty() {
            return false;
        }
        let name = files[usize::from(flip.file) % files.len()];
        let path = dir().join(name);
        let contents = self.disk.contents(&path).unwrap_or_default();
        if contents.is_empty() {
            return false;
        }
        let at = usize::from(flip.at) % contents.len();
        let mask = 1u8 << (flip.bit % 8);
        self.disk.corrupt(&path, at as u64, mask).expect("file exists");
        let base: u64 = name.trim_end_matches(suffix).parse().expect("segment file name");
        if flip.index_file {
            self.model.index_damaged.insert(base);
            return true;
        }
        // Which batch did it hit? Walk the file as the model knows it.
        let mut position = 0;
        let mut expected = base;
        let by_base: BTreeMap<u64, usize> =
            self.model.batches.iter().enumerate().map(|(i, b)| (b.base, i)).collect();
        while let Some(&i) = by_base.get(&expected) {
            let want = &self.model.batches[i];
            let on_disk = self.model.damaged.get(&want.base).map_or(&want.bytes, |d| &d.on_disk);
            let size = on_disk.len();
            if contents.get(position..position + size) != Some(&on_disk[..]) {
                break; // torn or foreign bytes from here on: recovery cuts them
            }
            if (position..position + size).contains(&at) {
                let mut bytes = on_disk.to_vec();
                bytes[at - position] ^= mask;
                let diff: Vec<usize> = (0..size).filter(|&k| bytes[k] != want.bytes[k]).collect();
                if diff.is_empty() {
                    self.model.damaged.remove(&want.base);
                } else {
                    let epoch_only = diff.iter().all(|k| (12..16).contains(k));
                    let d = Damage { segment: base, on_disk: Bytes::from(bytes), epoch_only };
                    self.model.damaged.insert(want.base, d);
                }
                break;
            }
            position += size;
            expected = want.next;
        }
        false
    }

    /// Checks a recovered log against the models and adopts it as the new
    /// model state.
    fn after_recovery(&mut self, report: Option<&RecoveryReport>, required: u64, clean: bool) {
        let log = self.log().clone();
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        // A bit flip may cost the log its tail from the damaged batch on,
        // unless recovery knew the data there was durable: below the
        // recovery point it was given, corruption must be kept, not cut.
        let recovery_point = report.map_or(0, |r| r.recovery_point);
        let known = if crate::known_bugs::tolerated("cut-below-recovery-point") { 0 } else { recovery_point };
        let must_keep = self.model.first_damaged().map_or(required, |d| required.min(d.max(known)));
        if end < must_keep {
            self.fail(format_args!(
                "recovery lost durable data: end {end} < {must_keep} (durable {required}); report {report:?}"
            ));
        }
        let had_damage = !self.model.damaged.is_empty();
        let excused =
            self.model.first_damaged().is_some() && crate::known_bugs::tolerated("cut-below-recovery-point");
        if clean && end != self.model.end() && !excused {
            self.fail(format_args!("a clean reopen changed the end from {} to {end}", self.model.end()));
        }
        if end > self.model.end() {
            self.fail(format_args!("recovered end {end} past everything written ({})", self.model.end()));
        }
        let model_end = self.model.truncate(end);
        if model_end != end {
            self.fail(format_args!(
                "recovered end {end} is not a batch boundary (model {model_end}); report {report:?}"
            ));
        }
        let (lo, hi) = (self.model.log_start_min.min(end), self.model.log_start.min(end));
        if start < lo || start > hi {
            self.fail(format_args!("recovered start {start} outside [{lo}, {hi}]; report {report:?}"));
        }
        if clean && report.is_some_and(|r| !r.is_clean()) && !had_damage {
            self.fail(format_args!("a clean reopen repaired something: {report:?}"));
        }
        self.model.log_start = start;
        self.model.log_start_min = start;
        self.model.durable = end;
        self.claim_cap = None;
        self.check_invariants();
        self.check_all();
    }
}
