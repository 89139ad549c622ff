//! What a leader must decide about a producer's batches, written from
//! Kafka's rules (LogValidator, ProducerStateManager) rather than from the
//! engine's validator: whether a request is acceptable as batches, and
//! what an idempotent producer's next batch may be. Records are decoded
//! with the engine's codec (`decode_records`, `decompress`), which the
//! `record_batch` target checks on its own.

use crate::reference;
use ringtail_engine::log::batch::BatchHeader;
use ringtail_engine::log::records::{decode_records, decompress};
use std::collections::{BTreeMap, VecDeque};

/// Kafka's `message.timestamp.type` and bounds, and the broker's clock.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub log_append_time: bool,
    pub before_max_ms: i64,
    pub after_max_ms: i64,
    pub max_message_bytes: u64,
    pub now_ms: i64,
}

/// One batch of a request that is acceptable as sent.
#[derive(Clone, Debug)]
pub struct Expected {
    pub header: BatchHeader,
    /// The `max_timestamp` the stored batch must carry.
    pub max_timestamp: i64,
}

const ATTR_TIMESTAMP_TYPE: u8 = 0x08;
const ATTR_TRANSACTIONAL: u8 = 0x10;
const ATTR_CONTROL: u8 = 0x20;

/// The batches of `request` if every one of them may be appended (the
/// idempotent producer's sequence aside), or why not.
pub fn judge(request: &[u8], rules: &Rules) -> Result<Vec<Expected>, String> {
    let (batches, bad_at) = reference::split_batches(request);
    if let Some(at) = bad_at {
        return Err(format!("no valid batch at byte {at}"));
    }
    if batches.is_empty() {
        return Err("no batch".into());
    }
    let mut out = Vec::new();
    for b in &batches {
        let bytes = &request[b.position..b.position + b.size];
        out.push(judge_batch(bytes, rules)?);
    }
    if out.len() > 1 && out.iter().any(|e| e.header.producer_id >= 0) {
        return Err("an idempotent produce carries one batch per partition".into());
    }
    Ok(out)
}

fn judge_batch(bytes: &[u8], rules: &Rules) -> Result<Expected, String> {
    let header = BatchHeader::parse(bytes).map_err(|e| format!("header: {e}"))?;
    if bytes.len() as u64 > rules.max_message_bytes {
        return Err(format!("{} bytes > max.message.bytes", bytes.len()));
    }
    if i64::from(header.record_count) != i64::from(header.last_offset_delta) + 1 {
        return Err("record count != last offset delta + 1".into());
    }
    let attributes = bytes[22];
    if attributes & ATTR_CONTROL != 0 {
        return Err("control batch".into());
    }
    if attributes & ATTR_TRANSACTIONAL != 0 {
        return Err("transactional".into());
    }
    if attributes & ATTR_TIMESTAMP_TYPE != 0 {
        return Err("LogAppendTime set by the producer".into());
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err("producer id without a sequence".into());
    }
    let plain;
    let batch = match attributes & 0x07 {
        0 => bytes,
        1..=4 => {
            plain = decompress::uncompressed(bytes).map_err(|e| format!("decompress: {e}"))?;
            &plain[..]
        }
        codec => return Err(format!("codec {codec}")),
    };
    let (h, records) = decode_records(batch).map_err(|e| format!("records: {e}"))?;
    // Decoding yields exactly `record_count` records or fails.
    assert_eq!(records.len() as i64, i64::from(header.record_count), "decode_records miscounted");
    let mut max_timestamp = -1i64;
    for (i, r) in records.iter().enumerate() {
        if r.offset_delta as i64 != i as i64 {
            return Err(format!("record {i} has offset delta {}", r.offset_delta));
        }
        let ts = r.timestamp(&h);
        if !rules.log_append_time && ts != -1 {
            let low = rules.now_ms.saturating_sub(rules.before_max_ms);
            let high = rules.now_ms.saturating_add(rules.after_max_ms);
            if ts < low || ts > high {
                return Err(format!("record {i} timestamp {ts} outside [{low}, {high}]"));
            }
        }
        max_timestamp = max_timestamp.max(ts);
    }
    let max_timestamp = if rules.log_append_time { rules.now_ms } else { max_timestamp };
    Ok(Expected { header, max_timestamp })
}

/// What the producer state says of an idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    Append,
    /// A retry of a batch in the log: answered with its offsets.
    Duplicate {
        base: u64,
        last: u64,
    },
    Refused,
}

#[derive(Clone, Debug, Default)]
struct Producer {
    epoch: i16,
    /// (first sequence, last sequence, base offset, last offset), the last
    /// five, as Kafka keeps them.
    batches: VecDeque<(i32, i32, u64, u64)>,
}

/// Kafka's idempotent-producer rules, per producer id.
#[derive(Clone, Debug, Default)]
pub struct Producers {
    by_id: BTreeMap<i64, Producer>,
}

fn last_sequence(h: &BatchHeader) -> i32 {
    ((i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (1i64 << 31)) as i32
}

impl Producers {
    pub fn check(&self, h: &BatchHeader) -> Sequence {
        if h.producer_id < 0 {
            return Sequence::Append;
        }
        let Some(p) = self.by_id.get(&h.producer_id) else { return Sequence::Append };
        if h.producer_epoch < p.epoch {
            return Sequence::Refused;
        }
        if h.producer_epoch > p.epoch {
            return if h.base_sequence == 0 { Sequence::Append } else { Sequence::Refused };
        }
        let last = last_sequence(h);
        if let Some(&(_, _, base, last_offset)) =
            p.batches.iter().find(|(first, l, _, _)| *first == h.base_sequence && *l == last)
        {
            return Sequence::Duplicate { base, last: last_offset };
        }
        let expected = p.batches.back().map_or(0, |(_, l, _, _)| if *l == i32::MAX { 0 } else { l + 1 });
        if h.base_sequence == expected {
            Sequence::Append
        } else {
            Sequence::Refused
        }
    }

    pub fn appended(&mut self, h: &BatchHeader, base: u64, last: u64) {
        if h.producer_id < 0 {
            return;
        }
        let p = self.by_id.entry(h.producer_id).or_default();
        if h.producer_epoch != p.epoch {
            p.epoch = h.producer_epoch;
            p.batches.clear();
        }
        p.batches.push_back((h.base_sequence, last_sequence(h), base, last));
        if p.batches.len() > 5 {
            p.batches.pop_front();
        }
    }
}
