//! Reads by consumers: fetches (invariants 3 and 4), fetch errors and
//! list-offsets answers.

use super::{decode_batches, Checker, Epochs, How, Invariant, Known, Tp};
use bytes::Bytes;

impl Checker {
    /// A fetch response to reader `reader` asking for `requested`.
    #[allow(clippy::too_many_arguments)]
    pub fn fetched(
        &mut self,
        reader: u32,
        tp: &Tp,
        requested: u64,
        records: &Bytes,
        hw: u64,
        lso: u64,
        epochs: Epochs,
    ) {
        let id = self.tp_id(tp);
        self.check_not_deleted(id, "a fetch");
        self.observe_lso(id, lso);
        self.observe_hw(reader, id, hw);
        let decoded = match decode_batches(std::slice::from_ref(records)) {
            Ok(d) => d,
            Err(e) => {
                let detail = format!("a fetch served an invalid batch: {e}");
                self.violate(Invariant::Recovery, Some(id), Some(requested), detail);
                return;
            }
        };
        let served: Vec<&(u64, Bytes)> = decoded.iter().filter(|(o, _)| *o >= requested).collect();
        if let (Some(first), Some(last)) = (served.first(), served.last()) {
            self.note_id(
                id,
                Some((first.0, last.0)),
                format!("reader {reader} fetched from {requested}, hw={hw}"),
            );
        }
        self.checks += 1;
        if let Some((first, _)) = served.first() {
            if *first != requested {
                self.check_gap(id, requested, *first);
            }
        }
        let mut expected = served.first().map(|(o, _)| *o);
        for (offset, value) in served {
            self.checks += 1;
            if Some(*offset) != expected {
                let detail = format!("fetch offsets not dense: expected {expected:?}, got {offset}");
                self.violate(Invariant::DenseOffsets, Some(id), Some(*offset), detail);
                return;
            }
            expected = Some(offset + 1);
            if *offset >= hw {
                let detail = format!("fetch served offset {offset} at or above the high watermark {hw}");
                self.violate(Invariant::ReadStaysRead, Some(id), Some(*offset), detail);
                return;
            }
            if let Some(key) = self.check_served(id, *offset, value, "a fetch") {
                let required = self.flush_always;
                self.learn(id, *offset, key, required, How::Fetched, epochs);
            }
        }
    }

    /// A fetch at `requested` returned records from `first` on: the offsets
    /// between must be ones nobody may rely on (retention took them).
    fn check_gap(&mut self, tp: u32, requested: u64, first: u64) {
        let part = self.part(tp);
        let lost: Option<(u64, Known)> =
            part.known.range(requested..first).find(|(_, k)| k.required).map(|(o, k)| (*o, *k));
        let excused = part.retention;
        if let Some((offset, k)) = lost.filter(|_| !excused) {
            let detail = format!(
                "a fetch from {requested} skipped to {first}, past {} ({}) at {offset}",
                k.key, k.how
            );
            self.violate(Invariant::DenseOffsets, Some(tp), Some(offset), detail);
        }
    }

    /// A fetch or list-offsets error. `log_range` is given for offset out of
    /// range.
    pub fn fetch_failed(
        &mut self,
        reader: u32,
        tp: &Tp,
        requested: u64,
        code: i16,
        log_range: Option<(u64, u64)>,
    ) {
        let id = self.tp_id(tp);
        self.note_id(id, Some((requested, requested)), format!("reader {reader} fetch failed: code {code}"));
        if code == 56 && self.tainted(id) {
            self.outcomes.refused += 1;
        }
        let Some((start, end)) = log_range else { return };
        self.checks += 1;
        let strict = self.flush_always && !(self.tainted(id) && self.part(id).damage_reported);
        if requested > end && strict {
            let seen = self.part(id).hw_by_reader.get(&reader).copied().unwrap_or(0);
            if requested <= seen {
                let detail = format!(
                    "reader {reader} had read up to {requested} (hw {seen}), now the log ends at {end}"
                );
                self.violate(Invariant::ReadStaysRead, Some(id), Some(end), detail);
            }
        }
        if requested < start {
            self.observe_lso(id, start);
        }
    }

    /// A list-offsets answer: earliest (-2) or latest (-1, the HW).
    pub fn listed(&mut self, reader: u32, tp: &Tp, timestamp: i64, offset: i64) {
        let id = self.tp_id(tp);
        self.check_not_deleted(id, "a list-offsets");
        let Ok(offset) = u64::try_from(offset) else { return };
        match timestamp {
            -2 => self.observe_lso(id, offset),
            -1 => self.observe_hw(reader, id, offset),
            time if time >= 0 => self.check_time_lookup(id, time, offset),
            _ => {}
        }
    }
}
