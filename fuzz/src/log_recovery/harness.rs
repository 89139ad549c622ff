//! The harness state, opening (and recovering) the log, and the helpers the
//! operations and checks share.

use super::model::Model;
use super::{CACHE_BYTES, ROOT};
use crate::exec::block_on;
use crate::watch::WatchDisk;
use ringtail_engine::clock::ManualClock;
use ringtail_engine::io::{Disk, MemDisk};
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{Log, LogCache, LogConfig, LogManager, OpenError, RecoveryReport, TopicPartition};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checkpoint the manager would have written (Log::open mode).
#[derive(Clone, Copy, Default)]
pub(super) struct Cp {
    recovery_point: u64,
    log_start: u64,
}

pub(super) struct Harness {
    pub(super) disk: Arc<MemDisk>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) config: LogConfig,
    pub(super) via_manager: bool,
    pub(super) tp: TopicPartition,
    pub(super) manager: Option<LogManager<WatchDisk>>,
    pub(super) log: Option<Arc<Log<WatchDisk>>>,
    /// The disk the log runs on (`disk` is the same storage).
    pub(super) watched: Arc<WatchDisk>,
    pub(super) cp: Cp,
    pub(super) model: Model,
    pub(super) faults_armed: bool,
    pub(super) step: usize,
    /// A truncation happened and the known bug `truncate-max-timestamp` is
    /// tolerated (see `crate::known_bugs`): timestamp answers may be off.
    pub(super) timestamps_unreliable: bool,
    /// After a failed truncation (which may have removed data, as asked),
    /// the log's flushed offset no longer bounds what a crash keeps: the
    /// claim is capped at the truncation's end until the next recovery.
    pub(super) claim_cap: Option<u64>,
    /// Recovery refused to open the damaged log: the scenario ends there.
    pub(super) refused: bool,
}

pub(super) fn dir() -> PathBuf {
    Path::new(ROOT).join("m-0")
}

impl Harness {
    pub(super) fn log(&self) -> &Arc<Log<WatchDisk>> {
        self.log.as_ref().expect("log open")
    }

    pub(super) fn fail(&self, what: std::fmt::Arguments<'_>) -> ! {
        panic!("step {}: {what}", self.step)
    }

    /// Opens the log (recovering it); the recovery report of its directory.
    pub(super) fn open(&mut self, rp_lower: u64) -> Option<RecoveryReport> {
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
            // A log damaged below its recovery point is kept offline by the
            // manager (the rest of the broker serves); opening it is refused
            // as `Log::open` refuses it.
            let log = match block_on(m.get_or_create(&self.tp, self.config)) {
                Ok(log) => log,
                Err(e) => return self.refused(e),
            };
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
    pub(super) fn checkpoint(&mut self) -> bool {
        match &self.manager {
            Some(m) => block_on(m.checkpoint()).is_ok(),
            None => {
                let log = self.log();
                self.cp = Cp { recovery_point: log.flushed_offset(), log_start: log.log_start_offset() };
                true
            }
        }
    }

    pub(super) fn trace_files(&self, when: &str) {
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

    pub(super) fn trace_state(&self) {
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

    pub(super) fn poisoned(&self) -> bool {
        self.log().poisoned().is_some()
    }

    pub(super) fn clear_faults(&mut self) {
        self.disk.fail_next_syncs(0);
        self.disk.set_capacity(None);
        self.faults_armed = false;
    }

    /// What the log claims is durable, as far as a crash may be held to it.
    /// Retention and delete-records clamp the flushed offset up to the log
    /// start (by design), which may lie past the data really synced: claims
    /// at or below the start are not held.
    pub(super) fn durable_required(&self) -> u64 {
        let claim = self.log().flushed_offset().min(self.claim_cap.unwrap_or(u64::MAX));
        let claim = if claim > self.model.log_start { claim } else { 0 };
        self.model.durable.max(claim)
    }
}
