//! Recovery: clean reopens, crashes and bit flips, and the checks on every
//! recovered log.

use super::harness::{dir, Harness};
use super::model::Damage;
use super::{Crash, CrashKind, Flip};
use crate::exec::block_on;
use bytes::Bytes;
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::Disk;
use ringtail_engine::log::RecoveryReport;
use std::collections::BTreeMap;

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

impl Harness {
    /// Clean close, then reopen: nothing may be lost or repaired.
    pub(super) fn reopen(&mut self) {
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
    pub(super) fn crash(&mut self, crash: &Crash) {
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
        // DeleteRecords may move the start past data not yet fsynced (the
        // broker bounds it by the high watermark, which under flush=never
        // or interval is not the flushed end). The start's checkpoint is
        // durable; if the data below it is lost in a crash, recovery
        // starts the log afresh at the start: nothing below it was
        // readable anyway. Any other end must be a batch boundary.
        let started_afresh = start == end && end > model_end && end <= self.model.log_start;
        if started_afresh {
            self.model.start_fully_at(end);
        } else if model_end != end {
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
