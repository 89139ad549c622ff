//! Recovery (invariant 5): a recovered log, read whole, is a valid prefix
//! that keeps everything synced, and a second recovery changes nothing.

use super::{decode_batches, Checker, Epochs, How, Invariant, Known, LogRead, Tp};

impl Checker {
    /// A partition as recovery left it, read whole by the harness before
    /// the broker serves. `damage_reported`: the recovery report shows a cut,
    /// deleted segments or kept corruption.
    pub fn recovered(&mut self, tp: &Tp, read: &LogRead, damage_reported: bool) {
        let id = self.tp_id(tp);
        let tainted = self.tainted(id);
        if tainted && damage_reported {
            self.part(id).damage_reported = true;
        }
        let (lso, leo) = (read.log_start, read.end);
        self.note_id(
            id,
            Some((lso, leo)),
            format!(
                "recovered: log [{lso}, {leo}){}",
                if damage_reported { ", damage reported" } else { "" }
            ),
        );
        self.observe_lso(id, lso);
        self.check_lost(id, lso, leo, tainted && damage_reported);
        if self.violation.is_some() {
            return;
        }
        let (readable_end, error) = match &read.error {
            Some((at, e)) => (*at, Some(e.clone())),
            None => (leo, None),
        };
        if let Some(e) = error {
            self.checks += 1;
            if tainted {
                self.outcomes.refused += 1;
            } else {
                let detail = format!("the recovered log cannot be read at {readable_end}: {e}");
                self.violate(Invariant::Recovery, Some(id), Some(readable_end), detail);
                return;
            }
        }
        self.check_log_contents(id, read, readable_end, How::Recovered, "recovery");
        let flush_always = self.flush_always;
        let part = self.part(id);
        if flush_always {
            part.max_hw = part.max_hw.max(leo);
        } else {
            // Without flush=always a crash may legitimately lower the HW.
            part.max_hw = leo;
            part.hw_by_reader.clear();
        }
    }

    /// Checks that what must survive is below `leo`; drops knowledge of
    /// records a crash may legitimately have taken.
    fn check_lost(&mut self, tp: u32, lso: u64, leo: u64, loss_reported: bool) {
        self.checks += 1;
        let part = self.part(tp);
        let retention = part.retention;
        let lost_required: Vec<(u64, Known)> =
            part.known.range(leo..).filter(|(_, k)| k.required).map(|(o, k)| (*o, *k)).collect();
        let max_hw = part.max_hw;
        if let Some((offset, k)) = lost_required.first().copied() {
            if !loss_reported && offset >= lso {
                let detail = format!("{} ({}) at {offset} is gone: the log ends at {leo}", k.key, k.how);
                let inv = match k.how {
                    How::Acked(_) => Invariant::AckedNeverLost,
                    How::Fetched => Invariant::ReadStaysRead,
                    How::Recovered => Invariant::Recovery,
                };
                self.violate(inv, Some(tp), Some(offset), detail);
                return;
            }
            self.outcomes.lost_reported += lost_required.len() as u64;
        }
        if self.flush_always && !loss_reported && max_hw > leo {
            let detail = format!("the high watermark was {max_hw}, the recovered log ends at {leo}");
            self.violate(Invariant::ReadStaysRead, Some(tp), Some(leo), detail);
            return;
        }
        if !retention {
            let below: Option<(u64, Known)> =
                self.part(tp).known.range(..lso).find(|(_, k)| k.required).map(|(o, k)| (*o, *k));
            if let Some((offset, k)) = below.filter(|_| !loss_reported) {
                let detail = format!("{} ({}) at {offset} is below the log start {lso}", k.key, k.how);
                self.violate(Invariant::AckedNeverLost, Some(tp), Some(offset), detail);
                return;
            }
        }
        let dropped = self.part(tp).known.split_off(&leo).len() as u64;
        self.outcomes.unsynced_lost += dropped.saturating_sub(lost_required.len() as u64);
        if loss_reported {
            let part = self.part(tp);
            part.max_hw = part.max_hw.min(leo);
            part.hw_by_reader.clear();
        }
    }

    /// Checks a whole read of a log: dense offsets from the log start up to
    /// `end`, every record valid and consistent with what is known.
    pub(super) fn check_log_contents(&mut self, tp: u32, read: &LogRead, end: u64, how: How, whence: &str) {
        let decoded = match decode_batches(&read.batches) {
            Ok(d) => d,
            Err(e) => {
                self.violate(
                    Invariant::Recovery,
                    Some(tp),
                    None,
                    format!("{whence} read an invalid batch: {e}"),
                );
                return;
            }
        };
        let mut expected = read.log_start;
        for (offset, value) in decoded.iter().filter(|(o, _)| *o >= read.log_start) {
            self.checks += 1;
            if *offset >= end {
                break;
            }
            if *offset != expected {
                let detail = format!("{whence} found offset {offset} where {expected} was expected");
                self.violate(Invariant::DenseOffsets, Some(tp), Some(expected), detail);
                return;
            }
            expected += 1;
            if let Some(key) = self.check_served(tp, *offset, value, whence) {
                let (required, epochs) = (self.flush_always, Epochs::at(self.loss_epoch()));
                self.learn(tp, *offset, key, required, how, epochs);
            }
        }
        self.checks += 1;
        if expected < end && read.error.is_none() {
            let detail = format!("{whence} read stopped at {expected}, before the end {end}");
            self.violate(Invariant::Recovery, Some(tp), Some(expected), detail);
        }
    }

    /// Recovery run twice on the same disk must agree: the second open finds
    /// nothing to repair and the same log.
    pub fn recovery_repeated(
        &mut self,
        tp: &Tp,
        first: (u64, u64),
        second: (u64, u64),
        second_repaired: bool,
    ) {
        let id = self.tp_id(tp);
        self.checks += 1;
        if first != second || second_repaired {
            let detail = format!(
                "recovery is not idempotent: first gave [{}, {}), a second open gave [{}, {}){}",
                first.0,
                first.1,
                second.0,
                second.1,
                if second_repaired { " and repaired again" } else { "" }
            );
            self.violate(Invariant::Recovery, Some(id), Some(second.1), detail);
        }
    }
}
