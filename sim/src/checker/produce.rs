//! Produce requests: records registered when sent, offsets learnt from
//! the acknowledgement (invariant 1 for acks=all under flush=always).

use super::{Checker, Epochs, How, Sent, Tp};
use crate::values::{fingerprint, RecordKey};
use bytes::Bytes;

impl Checker {
    /// Registers the records of a produce before it is sent.
    pub fn produce_sent(&mut self, tp: &Tp, records: &[(RecordKey, Bytes)], acks: i8, note: bool) {
        let id = self.tp_id(tp);
        for (key, value) in records {
            self.registry.insert(*key, Sent { tp: id, fingerprint: fingerprint(value) });
        }
        if note {
            let (first, last) = (records[0].0, records[records.len() - 1].0);
            self.note_id(
                id,
                None,
                format!("produce acks={acks} sent {first}..{last} ({} records)", records.len()),
            );
        }
    }

    /// A produce response: the records got offsets `base_offset..`.
    pub fn produce_acked(
        &mut self,
        tp: &Tp,
        keys: &[RecordKey],
        acks: i8,
        base_offset: u64,
        log_start_offset: u64,
        epochs: Epochs,
    ) {
        let id = self.tp_id(tp);
        let last = base_offset + keys.len() as u64 - 1;
        self.note_id(
            id,
            Some((base_offset, last)),
            format!("produce acks={acks} acked {}..{}", keys[0], keys[keys.len() - 1]),
        );
        self.check_not_deleted(id, "a produce");
        self.observe_lso(id, log_start_offset);
        let required = self.flush_always && acks == -1;
        for (i, key) in keys.iter().enumerate() {
            self.learn(id, base_offset + i as u64, *key, required, How::Acked(acks), epochs);
        }
    }
}
