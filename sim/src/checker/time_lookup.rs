//! Invariant LT: ListOffsets by time agrees with the model. The answer to
//! "the first offset at or after time t" has no record below it at or after
//! t, and the record it names is at or after t. Both hold whether the
//! broker looks up by batch (Ringtail today) or by record (Kafka), because
//! the workload gives every record of a batch one time.
//!
//! Judged on records that had to be durable (flush=always), in partitions
//! no retention or delete moves: elsewhere the log the broker looked in may
//! differ from the model without anything being wrong.

use super::{Checker, Invariant};
use crate::values::RecordKey;

impl Checker {
    /// The time every record of `keys` was produced with.
    pub fn timestamped(&mut self, keys: impl Iterator<Item = RecordKey>, time_ms: i64) {
        for key in keys {
            self.times.insert(key, time_ms);
        }
    }

    /// A ListOffsets answer `offset` for time `time_ms` (>= 0; -1 when no
    /// record is that late).
    pub(super) fn check_time_lookup(&mut self, tp: u32, time_ms: i64, offset: u64) {
        if !self.flush_always || self.tainted(tp) {
            return;
        }
        let part = self.part(tp);
        if part.retention || part.deleted {
            return;
        }
        let below: Vec<(u64, RecordKey)> =
            part.known.range(..offset).filter(|(_, k)| k.required).map(|(o, k)| (*o, k.key)).collect();
        let at = part.known.get(&offset).filter(|k| k.required).map(|k| k.key);
        self.checks += 1;
        for (o, key) in below {
            if let Some(time) = self.times.get(&key).copied().filter(|t| *t >= time_ms) {
                let detail = format!(
                    "ListOffsets for time {time_ms} answered {offset}, but {o} below it holds {key} of time {time}"
                );
                self.violate(Invariant::TimeLookup, Some(tp), Some(offset), detail);
                return;
            }
        }
        if let Some(key) = at {
            if let Some(time) = self.times.get(&key).copied().filter(|t| *t < time_ms) {
                let detail = format!(
                    "ListOffsets for time {time_ms} answered {offset}, whose record {key} is of time {time}"
                );
                self.violate(Invariant::TimeLookup, Some(tp), Some(offset), detail);
            }
        }
    }
}
