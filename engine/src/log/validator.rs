//! The leader's checks of a producer's batches, as Kafka's LogValidator
//! makes them, and the stamps it puts on them before they are appended.
//!
//! `Log::validate` checks what every append needs (sizes, CRC-32C, a record
//! count that matches the offset range); a follower copying its leader
//! needs no more. What comes from a producer is also read record by record
//! (decompressed first when it is compressed):
//! - the records present are exactly `record_count`, with offset deltas
//!   0, 1, 2, ... and nothing after the last; a batch's header cannot claim
//!   offsets its bytes do not hold;
//! - no control batches (the broker writes those) and no transactional ones
//!   (Ringtail has no transactions); a producer id comes with a sequence;
//! - CreateTime: each timestamp within `message.timestamp.before.max.ms`
//!   before and `after.max.ms` after the broker's clock, and the header's
//!   `max_timestamp` is the records' largest (rewritten if the producer's
//!   is wrong, as Kafka does, since the time index is built from it);
//! - LogAppendTime: the leader stamps its clock as the batch's
//!   `max_timestamp`, which every record then reads as its timestamp;
//! - a compacted log's records each have a key.
//!
//! Rewriting a header means a new CRC and a copy of the request's bytes, so
//! batches that need no stamp are appended as they arrived.

use super::append::Validated;
use super::batch::{set_max_timestamp, BatchHeader};
use super::config::{LogConfig, TimestampType};
use super::error::AppendError;
use super::records::{decompress, iter_checked_records, iter_records, RecordsError};
use bytes::BytesMut;

/// Kafka's "no timestamp" (-1), which the bounds do not apply to.
const NO_TIMESTAMP: i64 = -1;

/// The rules a produced batch is checked against, at one instant.
#[derive(Clone, Copy, Debug)]
pub(super) struct ProduceRules {
    pub timestamp_type: TimestampType,
    pub before_max_ms: i64,
    pub after_max_ms: i64,
    pub now_ms: i64,
    /// A compacted log: every record needs a key (Kafka refuses the
    /// batch with INVALID_RECORD otherwise).
    pub keys_required: bool,
}

impl ProduceRules {
    pub fn new(config: &LogConfig, now_ms: i64) -> ProduceRules {
        ProduceRules {
            timestamp_type: config.timestamp_type,
            before_max_ms: config.timestamp_before_max_ms,
            after_max_ms: config.timestamp_after_max_ms,
            now_ms,
            keys_required: config.cleanup_policy.compacts(),
        }
    }

    /// The append time stamped on every batch, under LogAppendTime.
    pub fn log_append_time(&self) -> Option<i64> {
        (self.timestamp_type == TimestampType::LogAppendTime).then_some(self.now_ms)
    }

    fn check_timestamp(&self, timestamp: i64) -> Result<(), AppendError> {
        if timestamp == NO_TIMESTAMP {
            return Ok(());
        }
        let (now, before, after) = (self.now_ms, self.before_max_ms, self.after_max_ms);
        if timestamp < now.saturating_sub(before) {
            return Err(AppendError::InvalidTimestamp(format!(
                "timestamp {timestamp} is more than message.timestamp.before.max.ms {before} before \
                 the broker's time {now}"
            )));
        }
        if timestamp > now.saturating_add(after) {
            return Err(AppendError::InvalidTimestamp(format!(
                "timestamp {timestamp} is more than message.timestamp.after.max.ms {after} after \
                 the broker's time {now}"
            )));
        }
        Ok(())
    }
}

/// Checks the records of `validated` (from `Log::validate`) and stamps
/// their headers where they need it.
pub(super) fn check_produced(validated: Validated, rules: &ProduceRules) -> Result<Validated, AppendError> {
    let Validated { records, mut headers } = validated;
    let log_append_time = rules.log_append_time().is_some();
    let mut stamps = Vec::new();
    let mut position = 0;
    for (i, header) in headers.iter().enumerate() {
        let size = header.size_bytes();
        let max_timestamp = check_batch(&records[position..position + size], header, rules)?;
        if max_timestamp != header.max_timestamp || log_append_time != header.is_log_append_time() {
            stamps.push((i, position, size, max_timestamp));
        }
        position += size;
    }
    if stamps.is_empty() {
        return Ok(Validated { records, headers });
    }
    let mut bytes = BytesMut::from(&records[..]);
    for (i, position, size, max_timestamp) in stamps {
        let batch = &mut bytes[position..position + size];
        set_max_timestamp(batch, log_append_time, max_timestamp);
        headers[i] = BatchHeader::parse(batch).expect("a valid header, restamped");
    }
    Ok(Validated { records: bytes.freeze(), headers })
}

/// One batch's records checked; returns the max timestamp its header must
/// carry.
fn check_batch(batch: &[u8], header: &BatchHeader, rules: &ProduceRules) -> Result<i64, AppendError> {
    let invalid = |reason: String| AppendError::InvalidRecords { base_offset: header.base_offset, reason };
    if header.is_control() {
        return Err(invalid("producers may not write control batches".into()));
    }
    if header.is_transactional() {
        return Err(invalid("transactional batches are not supported (Ringtail has no transactions)".into()));
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(invalid(format!("producer id {} with no base sequence", header.producer_id)));
    }
    if header.is_log_append_time() {
        return Err(AppendError::InvalidTimestamp(
            "producers may not set the LogAppendTime timestamp type".into(),
        ));
    }
    let plain;
    let batch = if header.compression() == 0 {
        batch
    } else {
        plain = decompress::uncompressed(batch).map_err(|e| invalid(e.to_string()))?;
        &plain[..]
    };
    // An uncompressed batch's CRC was checked by `Log::validate`.
    let records = if header.compression() == 0 {
        iter_checked_records(batch, *header)
    } else {
        iter_records(batch).map_err(|e| invalid(e.to_string()))?.1
    };
    let mut max_timestamp = NO_TIMESTAMP;
    let mut count = 0i64;
    for record in records {
        let record = record.map_err(|e: RecordsError| invalid(e.to_string()))?;
        // Deltas, not absolute offsets: the base offset is whatever the
        // producer sent (the leader assigns the real one at append), and
        // adding to one near i64::MAX overflowed (a panic where overflow
        // is checked: found by fuzz/produce_batches).
        if i64::from(record.offset_delta) != count {
            let delta = record.offset_delta;
            return Err(invalid(format!("record {count} has offset delta {delta}, expected {count}")));
        }
        if rules.timestamp_type == TimestampType::CreateTime {
            rules.check_timestamp(record.timestamp_ms)?;
        }
        if rules.keys_required && record.key.is_none() {
            return Err(invalid(format!("record {count} has no key, and the topic is compacted")));
        }
        max_timestamp = max_timestamp.max(record.timestamp_ms);
        count += 1;
    }
    // The iterator yields `record_count` records or an error (a record
    // missing, or bytes after the last).
    debug_assert_eq!(count, i64::from(header.record_count));
    Ok(rules.log_append_time().unwrap_or(max_timestamp))
}
