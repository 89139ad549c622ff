//! Idempotent producers: per partition, the last batches of each producer id
//! so that a retried batch is answered with its original offsets and a gap
//! in sequence numbers is refused, as Kafka does.

use crate::error::{BrokerError, ErrorCode};
use crate::log::batch::BatchHeader;
use std::collections::{BTreeMap, VecDeque};

/// Kafka keeps the last five batches per producer: a producer has at most
/// five requests in flight per partition.
pub const BATCHES_PER_PRODUCER: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequencedBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    /// `(base, last)` offsets once written; `None` while the append is in
    /// flight.
    pub offsets: Option<(u64, u64)>,
}

#[derive(Clone, Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<SequencedBatch>,
    /// The max timestamp of its last batch (DescribeProducers).
    last_timestamp: i64,
}

/// A producer as DescribeProducers shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
}

/// What to do with an incoming batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// A retry of a batch already in the log: answer with its offsets.
    Duplicate(SequencedBatch),
}

#[derive(Clone, Debug, Default)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
}

fn next_sequence(sequence: i32) -> i32 {
    // Sequences wrap from i32::MAX to 0, as in Kafka.
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

fn last_sequence(header: &BatchHeader) -> i32 {
    ((i64::from(header.base_sequence) + i64::from(header.last_offset_delta)) % (i64::from(i32::MAX) + 1))
        as i32
}

impl ProducerStates {
    /// Checks one batch against the producer's state without changing it.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, BrokerError> {
        if header.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(BrokerError::new(
                ErrorCode::InvalidProducerEpoch,
                format!(
                    "producer {} epoch {} is older than {}",
                    header.producer_id, header.producer_epoch, entry.epoch
                ),
            ));
        }
        if header.producer_epoch > entry.epoch {
            // A new epoch starts its sequences over.
            return if header.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(BrokerError::new(
                    ErrorCode::OutOfOrderSequenceNumber,
                    format!(
                        "new epoch {} must start at sequence 0, got {}",
                        header.producer_epoch, header.base_sequence
                    ),
                ))
            };
        }
        let last = last_sequence(header);
        if let Some(dup) =
            entry.batches.iter().find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last)
        {
            // CANARY canary-idempotent-dedup-off (planted bug, sim/canaries):
            // a retried batch is appended again instead of answered with
            // its first offsets.
            if crate::canary::Canary::IdempotentDedupOff.on() {
                return Ok(SequenceCheck::Append);
            }
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let expected = entry.batches.back().map_or(0, |b| next_sequence(b.last_sequence));
        if header.base_sequence != expected {
            return Err(BrokerError::new(
                ErrorCode::OutOfOrderSequenceNumber,
                format!(
                    "producer {} expected sequence {expected}, got {}",
                    header.producer_id, header.base_sequence
                ),
            ));
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that is being appended (`offsets` unknown yet) or
    /// was found in the log on recovery.
    pub fn record(&mut self, header: &BatchHeader, offsets: Option<(u64, u64)>) {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(SequencedBatch {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence(header),
            offsets,
        });
        entry.last_timestamp = header.max_timestamp;
        while entry.batches.len() > BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
    }

    /// The producers with a batch in the log, by id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        self.producers
            .iter()
            .filter_map(|(id, e)| {
                let last = e.batches.back()?;
                Some(ActiveProducer {
                    producer_id: *id,
                    epoch: e.epoch,
                    last_sequence: last.last_sequence,
                    last_timestamp: e.last_timestamp,
                })
            })
            .collect()
    }

    /// Fills in the offsets of a batch recorded while in flight.
    pub fn confirm(&mut self, header: &BatchHeader, base_offset: u64, last_offset: u64) {
        let Some(entry) = self.producers.get_mut(&header.producer_id) else { return };
        if let Some(b) =
            entry.batches.iter_mut().find(|b| b.first_sequence == header.base_sequence && b.offsets.is_none())
        {
            b.offsets = Some((base_offset, last_offset));
        }
    }

    /// Forgets batches at or past `offset` (after a truncation).
    pub fn truncate(&mut self, offset: u64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.offsets.is_some_and(|(_, last)| last < offset));
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    /// In-sequence batches append, retries are answered with their original
    /// offsets, gaps and stale epochs are refused.
    #[test]
    fn sequences() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&header(7, 0, 0, 3, 0)), Ok(SequenceCheck::Append));
        s.record(&header(7, 0, 0, 3, 0), None);
        let pending = s.check(&header(7, 0, 0, 3, 0)).unwrap();
        assert!(matches!(pending, SequenceCheck::Duplicate(b) if b.offsets.is_none()));
        s.confirm(&header(7, 0, 0, 3, 0), 10, 12);
        let dup = s.check(&header(7, 0, 0, 3, 0)).unwrap();
        assert!(matches!(dup, SequenceCheck::Duplicate(b) if b.offsets == Some((10, 12))));
        assert_eq!(s.check(&header(7, 0, 3, 1, 0)), Ok(SequenceCheck::Append));
        assert_eq!(s.check(&header(7, 0, 5, 1, 0)).unwrap_err().code, ErrorCode::OutOfOrderSequenceNumber);
        s.record(&header(7, 1, 0, 1, 13), Some((13, 13)));
        assert_eq!(s.check(&header(7, 0, 4, 1, 0)).unwrap_err().code, ErrorCode::InvalidProducerEpoch);
        assert_eq!(s.check(&header(7, 2, 9, 1, 0)).unwrap_err().code, ErrorCode::OutOfOrderSequenceNumber);
        assert_eq!(s.check(&header(-1, -1, -1, 1, 0)), Ok(SequenceCheck::Append));
        s.truncate(13);
        assert_eq!(
            s.check(&header(7, 1, 0, 1, 0)),
            Ok(SequenceCheck::Append),
            "state after truncation forgets"
        );
    }

    /// DescribeProducers sees each producer's epoch, last sequence and last
    /// batch's time, and only producers whose batches are in the log.
    #[test]
    fn active_producers_are_those_with_batches() {
        let mut s = ProducerStates::default();
        let stamped = |pid, epoch, seq, records, base, ts| BatchHeader {
            max_timestamp: ts,
            ..header(pid, epoch, seq, records, base)
        };
        s.record(&stamped(7, 0, 0, 3, 0, 100), Some((0, 2)));
        s.record(&stamped(7, 0, 3, 2, 3, 150), Some((3, 4)));
        s.record(&stamped(9, 2, 0, 1, 5, 120), Some((5, 5)));
        s.record(&stamped(-1, -1, -1, 1, 6, 130), Some((6, 6)));
        let active = |s: &ProducerStates| {
            s.active()
                .iter()
                .map(|p| (p.producer_id, p.epoch, p.last_sequence, p.last_timestamp))
                .collect::<Vec<_>>()
        };
        assert_eq!(active(&s), [(7, 0, 4, 150), (9, 2, 0, 120)]);
        s.truncate(5);
        assert_eq!(active(&s), [(7, 0, 4, 150)], "producer 9's only batch was cut");
    }
}
