//! The replication scenario's (`replication`) invariants over what clients saw and what
//! the members' replicas hold. Each judgement returns the violation it
//! found; the scenario reports it with the quorum's history.
//!
//! - 1: a record acknowledged under acks=all is never lost and never
//!   moves: every read at its offset, and the final log, hold it there
//!   (every member runs flush=always, so no crash or power loss excuses a
//!   loss); two acks=all acknowledgements never share an offset;
//! - 2: every record read is one a producer sent to that partition, and
//!   appears at one offset only;
//! - 3: a fetch answers dense offsets from where it was asked;
//! - 4: consumers read only below the high watermark, and what they read
//!   stays: the same record at the same offset in every later read and in
//!   the final log;
//! - RH: the high watermark a consumer is told never goes backwards;
//! - RE: one leader per partition per leader epoch, among the members'
//!   replicas as they act (sampled);
//! - RA: after healing, every replica holds the leader's bytes, batch for
//!   batch, below the high watermark (`agree`);
//! - RL: after healing, within a bound, every partition led (by its
//!   preferred replica when the controller rebalances), its ISR whole,
//!   acks=all produce accepted, every acknowledged record readable.
//!
//! acks=1 acknowledgements promise nothing across a leader change (Kafka's
//! contract): a zombie leader cut off from the quorum may acknowledge acks=1
//! records at offsets the new leader fills with others. They are held only
//! to 2 and 3 when read.

use crate::checker::Invariant;
use std::collections::BTreeMap;

/// A topic partition as the scenario names it.
pub type Tp = (String, i32);

pub type Found = Option<(Invariant, String)>;

#[derive(Default)]
pub struct ReplicationCheck {
    checks: u64,
    /// Every value a producer sent, and where to.
    sent: BTreeMap<String, Tp>,
    /// acks=all acknowledgements: offset -> value, per partition.
    acked: BTreeMap<Tp, BTreeMap<i64, String>>,
    /// What consumers read: offset -> value, per partition.
    read: BTreeMap<Tp, BTreeMap<i64, String>>,
    /// Where each value was read.
    read_at: BTreeMap<String, (Tp, i64)>,
    /// Per consumer and partition, the highest high watermark it was told.
    hw_seen: BTreeMap<(usize, Tp), i64>,
    /// Per partition and leader epoch, the member that led it.
    leaders: BTreeMap<(Tp, i32), i32>,
}

impl ReplicationCheck {
    pub fn checks(&self) -> u64 {
        self.checks
    }

    pub fn acked_count(&self) -> usize {
        self.acked.values().map(BTreeMap::len).sum()
    }

    pub fn sent(&mut self, tp: &Tp, value: &str) {
        self.sent.insert(value.to_owned(), tp.clone());
    }

    /// An acks=all acknowledgement of `values` from `base_offset` on.
    pub fn acked(&mut self, tp: &Tp, base_offset: i64, values: &[String]) -> Found {
        for (i, value) in values.iter().enumerate() {
            self.checks += 1;
            let offset = base_offset + i as i64;
            let acked = self.acked.entry(tp.clone()).or_default();
            if let Some(other) = acked.get(&offset).filter(|v| *v != value) {
                return Some((
                    Invariant::AckedNeverLost,
                    format!("{tp:?} offset {offset}: acks=all acknowledged {value} where {other} was acknowledged"),
                ));
            }
            acked.insert(offset, value.clone());
            if let Some(other) = self.read.get(tp).and_then(|r| r.get(&offset)).filter(|v| *v != value) {
                return Some((
                    Invariant::AckedNeverLost,
                    format!(
                        "{tp:?} offset {offset}: acks=all acknowledged {value}, but {other} was read there"
                    ),
                ));
            }
        }
        None
    }

    /// A consumer's fetch of `tp` from `from`: the records it returned and
    /// the high watermark it was told.
    pub fn read(&mut self, consumer: usize, tp: &Tp, from: i64, records: &[(i64, String)], hw: i64) -> Found {
        self.checks += 1;
        let seen = self.hw_seen.entry((consumer, tp.clone())).or_insert(-1);
        if hw < *seen {
            return Some((
                Invariant::HighWatermarkMonotone,
                format!("consumer {consumer} was told high watermark {hw} for {tp:?} after {}", *seen),
            ));
        }
        *seen = hw;
        for (expected, (offset, value)) in (from..).zip(records) {
            self.checks += 1;
            if *offset != expected {
                return Some((
                    Invariant::DenseOffsets,
                    format!("{tp:?}: a fetch from {from} gave offset {offset} where {expected} was next"),
                ));
            }
            if *offset >= hw {
                return Some((
                    Invariant::ReadStaysRead,
                    format!("{tp:?}: a consumer read offset {offset}, at or above the high watermark {hw}"),
                ));
            }
            if let Some(found) = self.read_one(tp, *offset, value) {
                return Some(found);
            }
        }
        None
    }

    fn read_one(&mut self, tp: &Tp, offset: i64, value: &str) -> Found {
        match self.sent.get(value) {
            Some(to) if to == tp => {}
            Some(to) => {
                return Some((
                    Invariant::OneValuePerOffset,
                    format!("{tp:?} offset {offset}: read {value}, which was sent to {to:?}"),
                ))
            }
            None => {
                return Some((
                    Invariant::OneValuePerOffset,
                    format!("{tp:?} offset {offset}: read {value:?}, which no producer sent"),
                ))
            }
        }
        if let Some(other) = self.read.get(tp).and_then(|r| r.get(&offset)).filter(|v| *v != value) {
            return Some((
                Invariant::ReadStaysRead,
                format!("{tp:?} offset {offset}: read {value}, where {other} was read before"),
            ));
        }
        if let Some(acked) = self.acked.get(tp).and_then(|a| a.get(&offset)).filter(|v| *v != value) {
            return Some((
                Invariant::AckedNeverLost,
                format!("{tp:?} offset {offset}: read {value}, where acks=all acknowledged {acked}"),
            ));
        }
        if let Some(at) = self.read_at.get(value).filter(|at| **at != (tp.clone(), offset)) {
            return Some((
                Invariant::OneValuePerOffset,
                format!("{tp:?}: {value} read at offset {offset} and at {at:?}"),
            ));
        }
        self.read.entry(tp.clone()).or_default().insert(offset, value.to_owned());
        self.read_at.insert(value.to_owned(), (tp.clone(), offset));
        None
    }

    /// Member `member` acts as `tp`'s leader at `epoch`.
    pub fn leads(&mut self, tp: &Tp, epoch: i32, member: i32) -> Found {
        self.checks += 1;
        match self.leaders.insert((tp.clone(), epoch), member) {
            Some(other) if other != member => Some((
                Invariant::OneLeaderPerEpoch,
                format!("{tp:?} epoch {epoch}: member {member} leads, and member {other} led"),
            )),
            _ => None,
        }
    }

    /// The whole log of `tp` as read after healing: every acknowledged and
    /// every read record must be in it at its offset.
    pub fn final_log(&mut self, tp: &Tp, log: &BTreeMap<i64, String>) -> Found {
        for (offset, value) in self.acked.get(tp).into_iter().flatten() {
            self.checks += 1;
            if log.get(offset) != Some(value) {
                return Some((
                    Invariant::AckedNeverLost,
                    format!(
                        "{tp:?} offset {offset}: acks=all acknowledged {value}, the log holds {:?}",
                        log.get(offset)
                    ),
                ));
            }
        }
        for (offset, value) in self.read.get(tp).into_iter().flatten() {
            self.checks += 1;
            if log.get(offset) != Some(value) {
                return Some((
                    Invariant::ReadStaysRead,
                    format!("{tp:?} offset {offset}: {value} was read, the log holds {:?}", log.get(offset)),
                ));
            }
        }
        None
    }

    /// Every partition anything was acknowledged or read in.
    pub fn partitions(&self) -> Vec<Tp> {
        let mut all: Vec<Tp> = self.acked.keys().chain(self.read.keys()).cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// The final state's identity: every partition's acknowledged records.
    pub fn hash(&self) -> u64 {
        let mut h = crc32c::crc32c(b"replication") as u64;
        for (tp, records) in &self.acked {
            for (offset, value) in records {
                let line = format!("{tp:?}{offset}{value}");
                h = h.rotate_left(5) ^ crc32c::crc32c(line.as_bytes()) as u64;
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> Tp {
        ("t".to_owned(), 0)
    }

    #[test]
    fn an_acknowledged_record_read_elsewhere_is_lost() {
        let mut c = ReplicationCheck::default();
        c.sent(&tp(), "a");
        c.sent(&tp(), "b");
        assert!(c.acked(&tp(), 0, &["a".to_owned()]).is_none());
        let found = c.read(0, &tp(), 0, &[(0, "b".to_owned())], 1);
        assert_eq!(found.map(|f| f.0), Some(Invariant::AckedNeverLost));
    }

    #[test]
    fn the_high_watermark_must_not_go_back_for_one_consumer() {
        let mut c = ReplicationCheck::default();
        assert!(c.read(0, &tp(), 0, &[], 5).is_none());
        assert!(c.read(1, &tp(), 0, &[], 3).is_none(), "another consumer has its own view");
        let found = c.read(0, &tp(), 0, &[], 4);
        assert_eq!(found.map(|f| f.0), Some(Invariant::HighWatermarkMonotone));
    }

    #[test]
    fn reads_above_the_high_watermark_or_with_gaps_are_caught() {
        let mut c = ReplicationCheck::default();
        for v in ["a", "b", "c"] {
            c.sent(&tp(), v);
        }
        let above = c.read(0, &tp(), 0, &[(0, "a".to_owned()), (1, "b".to_owned())], 1);
        assert_eq!(above.map(|f| f.0), Some(Invariant::ReadStaysRead));
        let mut c = ReplicationCheck::default();
        c.sent(&tp(), "a");
        let gap = c.read(0, &tp(), 0, &[(1, "a".to_owned())], 5);
        assert_eq!(gap.map(|f| f.0), Some(Invariant::DenseOffsets));
    }

    #[test]
    fn two_leaders_in_one_epoch_are_caught_and_a_final_log_must_hold_what_was_read() {
        let mut c = ReplicationCheck::default();
        assert!(c.leads(&tp(), 3, 11).is_none());
        assert!(c.leads(&tp(), 3, 11).is_none());
        assert!(c.leads(&tp(), 4, 12).is_none());
        assert_eq!(c.leads(&tp(), 3, 12).map(|f| f.0), Some(Invariant::OneLeaderPerEpoch));
        c.sent(&tp(), "a");
        assert!(c.read(0, &tp(), 0, &[(0, "a".to_owned())], 1).is_none());
        let empty = BTreeMap::new();
        assert_eq!(c.final_log(&tp(), &empty).map(|f| f.0), Some(Invariant::ReadStaysRead));
        let log = BTreeMap::from([(0, "a".to_owned())]);
        assert!(c.final_log(&tp(), &log).is_none());
    }
}
