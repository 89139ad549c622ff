//! The checks every observation goes through, whoever made it: a record
//! learnt at an offset (invariant 2), a served record against what was sent,
//! the log start and a reader's high watermark (invariant 4).

use super::{Checker, Epochs, How, Invariant, Known, Tp};
use crate::values::{fingerprint, parse_key, RecordKey};

impl Checker {
    pub(super) fn observe_lso(&mut self, tp: u32, lso: u64) {
        self.checks += 1;
        let tainted = self.tainted(tp);
        let part = self.part(tp);
        part.max_lso = part.max_lso.max(lso);
        if lso > 0 && !part.retention && !tainted {
            self.violate(
                Invariant::AckedNeverLost,
                Some(tp),
                Some(lso),
                format!("log start offset moved to {lso} on a topic without retention"),
            );
        }
    }

    /// The broker moved a log start by retention (the node tells, as it
    /// knows what its upkeep did).
    pub fn retention_moved(&mut self, tp: &Tp, lso: u64) {
        let id = self.tp_id(tp);
        let part = self.part(id);
        if lso > part.max_lso {
            part.max_lso = lso;
            self.note_id(id, Some((lso, lso)), "retention moved the log start".to_string());
        }
    }

    /// Learns that `offset` holds `key`, checking it against what was known.
    /// `epochs` bound the loss epoch when the broker produced the
    /// observation: a late answer from before a crash carries the epochs
    /// before it.
    pub(super) fn learn(
        &mut self,
        tp: u32,
        offset: u64,
        key: RecordKey,
        required: bool,
        how: How,
        epochs: Epochs,
    ) {
        self.checks += 1;
        let part = self.part(tp);
        let fresh = Known { key, required, how, epochs };
        match part.known.get_mut(&offset) {
            Some(k) if k.key != key && !k.required && k.epochs.lo < epochs.hi => {
                // Never had to be durable, and unsynced data was lost since:
                // the offset was legitimately reused.
                *k = fresh;
                self.outcomes.unsynced_lost += 1;
            }
            Some(k) if k.key != key && !required && epochs.lo < k.epochs.hi => {
                // A late answer from before a loss that took this record.
                self.outcomes.unsynced_lost += 1;
            }
            Some(k) if k.key != key => {
                let detail = format!("offset {offset} held {} ({}), now {key} ({how})", k.key, k.how);
                self.violate(Invariant::OneValuePerOffset, Some(tp), Some(offset), detail);
            }
            Some(k) => {
                if required && !k.required {
                    k.required = true;
                    k.how = how;
                }
            }
            None => {
                part.known.insert(offset, fresh);
            }
        }
        if self.violation.is_none() {
            self.check_idempotent(tp, offset, key, required, epochs);
        }
    }

    /// Checks a record served at `offset` of `tp` is one a producer wrote,
    /// undamaged, to this partition; returns its key.
    pub(super) fn check_served(
        &mut self,
        tp: u32,
        offset: u64,
        value: &[u8],
        whence: &str,
    ) -> Option<RecordKey> {
        self.checks += 1;
        let Some(key) = parse_key(value) else {
            let head = String::from_utf8_lossy(&value[..value.len().min(24)]).into_owned();
            self.violate(
                Invariant::Recovery,
                Some(tp),
                Some(offset),
                format!("{whence} served bytes no producer wrote at offset {offset}: {head:?}"),
            );
            return None;
        };
        let Some(sent) = self.registry.get(&key).copied() else {
            self.violate(
                Invariant::Recovery,
                Some(tp),
                Some(offset),
                format!("{whence} served record {key} that was never sent"),
            );
            return None;
        };
        if sent.fingerprint != fingerprint(value) {
            self.violate(
                Invariant::Recovery,
                Some(tp),
                Some(offset),
                format!("{whence} served record {key} damaged (fingerprint differs)"),
            );
            return None;
        }
        if sent.tp != tp {
            let (t, p) = self.tps[sent.tp as usize].clone();
            self.violate(
                Invariant::OneValuePerOffset,
                Some(tp),
                Some(offset),
                format!("{whence} served record {key}, which was sent to {t}-{p}"),
            );
            return None;
        }
        Some(key)
    }

    /// Checks a reader's high watermark never goes back (flush=always: what
    /// was below it was fsynced).
    pub(super) fn observe_hw(&mut self, reader: u32, tp: u32, hw: u64) {
        self.checks += 1;
        // Answers seen as handlers finish, not in the order their high
        // watermarks were read, prove nothing by their order.
        let strict = self.flush_always && !self.tainted(tp) && reader != super::UNORDERED_READER;
        let part = self.part(tp);
        let before = part.hw_by_reader.insert(reader, hw).unwrap_or(0);
        part.max_hw = part.max_hw.max(hw);
        if strict && hw < before {
            self.violate(
                Invariant::ReadStaysRead,
                Some(tp),
                Some(hw),
                format!("reader {reader} saw the high watermark go back from {before} to {hw}"),
            );
        }
    }
}
