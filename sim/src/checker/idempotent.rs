//! Invariant I: an idempotent producer's records appear once each, in the
//! order of their sequence numbers, whatever retries and duplicated
//! requests crossed on the network.
//!
//! A producer that gives up on a batch (its outcome unknown) starts again
//! with a new producer id; its records from then on are a new identity,
//! whose order is its own (the abandoned batch may still land later, as a
//! request delayed on the network can). Identities are told apart by the
//! first record sequence each one used: the producer's sequences only grow.

use super::{Checker, Epochs, Invariant};
use crate::values::RecordKey;
use std::collections::BTreeMap;

/// Where a record of an idempotent producer was seen.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    tp: u32,
    offset: u64,
    required: bool,
    epochs: Epochs,
}

#[derive(Default)]
pub(super) struct Idempotence {
    /// Producer -> the first record sequence of each of its identities.
    identities: BTreeMap<u32, Vec<u64>>,
    seen: BTreeMap<RecordKey, Seen>,
    /// (producer, identity's first sequence, partition) -> sequence -> offset,
    /// for records that had to be durable.
    order: BTreeMap<(u32, u64, u32), BTreeMap<u64, u64>>,
}

impl Checker {
    /// Producer `producer` is idempotent, with a new producer id from its
    /// record sequence `first_seq` on.
    pub fn idempotent_identity(&mut self, producer: u32, first_seq: u64) {
        self.idempotence.identities.entry(producer).or_default().push(first_seq);
        self.note(None, None, format!("producer {producer}: a new producer id from record {first_seq} on"));
    }

    /// Checks `key`, just learned at `offset` of `tp`, if an idempotent
    /// producer wrote it.
    pub(super) fn check_idempotent(
        &mut self,
        tp: u32,
        offset: u64,
        key: RecordKey,
        required: bool,
        epochs: Epochs,
    ) {
        let Some(identity) = self
            .idempotence
            .identities
            .get(&key.producer)
            .and_then(|firsts| firsts.iter().rev().find(|first| **first <= key.seq).copied())
        else {
            return;
        };
        self.checks += 1;
        let fresh = Seen { tp, offset, required, epochs };
        match self.idempotence.seen.get(&key).copied() {
            Some(seen) if (seen.tp, seen.offset) != (tp, offset) => {
                // One of the two may be a copy a loss event took since (it
                // never had to be durable): then the other is the record.
                let first_lost = !seen.required && seen.epochs.lo < epochs.hi;
                let second_stale = !required && epochs.lo < seen.epochs.hi;
                if !(first_lost || second_stale) {
                    let detail = format!(
                        "{key} of an idempotent producer is at {} and at {} of {}",
                        seen.offset, offset, self.tps[tp as usize].0
                    );
                    self.violate(Invariant::IdempotentOnce, Some(tp), Some(offset), detail);
                    return;
                }
                if first_lost {
                    self.idempotence.seen.insert(key, fresh);
                }
            }
            Some(seen) => {
                if required && !seen.required {
                    self.idempotence.seen.insert(key, fresh);
                }
            }
            None => {
                self.idempotence.seen.insert(key, fresh);
            }
        }
        if !required {
            return;
        }
        let order = self.idempotence.order.entry((key.producer, identity, tp)).or_default();
        order.insert(key.seq, offset);
        let before = order.range(..key.seq).next_back().map(|(s, o)| (*s, *o));
        let after = order.range(key.seq + 1..).next().map(|(s, o)| (*s, *o));
        let misplaced = before.filter(|(_, o)| *o >= offset).or(after.filter(|(_, o)| *o <= offset));
        if let Some((other_seq, other_offset)) = misplaced {
            let detail = format!(
                "{key} of an idempotent producer is at {offset}, out of order with record {other_seq} at {other_offset}"
            );
            self.violate(Invariant::IdempotentOnce, Some(tp), Some(offset), detail);
        }
    }
}
