//! Building uncompressed v2 batches: sized first, then encoded in place.

use super::{Record, COMPRESSION_MASK};
use crate::log::batch::{BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES, MAGIC_V2};
use bytes::{BufMut, Bytes};

/// Builds one uncompressed v2 batch. Fields default to what a non-idempotent
/// producer sends: base offset as given (the leader reassigns it), no leader
/// epoch, producer id/epoch and base sequence -1.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// Record timestamps are stored relative to this; Kafka producers use the
    /// first record's timestamp.
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Batch attributes; the compression bits are cleared by `build`, since
    /// the records are written uncompressed.
    pub attributes: i16,
    /// Keeps a batch's offset range and max timestamp when some of its
    /// records are gone (compaction): `(last_offset_delta, max_timestamp)`
    /// instead of what the records left would give.
    pub keep_range: Option<(i32, i64)>,
    records: Vec<Record>,
}

impl BatchBuilder {
    pub fn new(base_offset: i64, base_timestamp: i64) -> Self {
        BatchBuilder {
            base_offset,
            partition_leader_epoch: -1,
            base_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            keep_range: None,
            records: Vec::new(),
        }
    }

    /// Appends a record at the next offset (one past the last record's).
    pub fn push(&mut self, key: Option<Bytes>, value: Option<Bytes>, timestamp: i64) -> &mut Self {
        let offset_delta = self.records.last().map_or(0, |r| r.offset_delta.wrapping_add(1));
        self.records.push(Record {
            offset_delta,
            timestamp_delta: timestamp.wrapping_sub(self.base_timestamp),
            key,
            value,
            headers: Vec::new(),
        });
        self
    }

    /// Appends a record as given. Offset deltas should increase and be
    /// non-negative (gaps are allowed, as compaction leaves them).
    pub fn push_record(&mut self, record: Record) -> &mut Self {
        self.records.push(record);
        self
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch, computing last_offset_delta, max_timestamp,
    /// record_count, batch_length and the CRC. An empty batch gets
    /// last_offset_delta 0 and max_timestamp = base_timestamp. Nothing here
    /// enforces `BATCH_SIZE_BYTES_MAX`; `validate_batch` refuses larger batches.
    ///
    /// # Panics
    /// If the batch, a record, a key, a value or a header count exceeds
    /// `i32::MAX`, which the format cannot represent.
    pub fn build(self) -> Bytes {
        // Sized first, so that every value is copied once, straight into
        // the batch: a load generator builds gigabytes of these.
        let body_lens: Vec<usize> = self.records.iter().map(record_body_len).collect();
        let body_bytes: usize = body_lens.iter().map(|&len| varint_len(len_i32(len)) + len).sum();
        let last_offset_delta = self.records.iter().map(|r| r.offset_delta).max().unwrap_or(0).max(0);
        let max_timestamp = self
            .records
            .iter()
            .map(|r| self.base_timestamp.wrapping_add(r.timestamp_delta))
            .max()
            .unwrap_or(self.base_timestamp);
        let (last_offset_delta, max_timestamp) =
            self.keep_range.unwrap_or((last_offset_delta, max_timestamp));

        let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + body_bytes);
        out.put_i64(self.base_offset);
        out.put_i32(len_i32(BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + body_bytes));
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(MAGIC_V2);
        out.put_u32(0); // CRC, filled in below once the covered bytes exist
        out.put_i16(self.attributes & !COMPRESSION_MASK);
        out.put_i32(last_offset_delta);
        out.put_i64(self.base_timestamp);
        out.put_i64(max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(len_i32(self.records.len()));
        debug_assert_eq!(out.len(), BATCH_HEADER_BYTES);
        for (record, &len) in self.records.iter().zip(&body_lens) {
            put_varint(&mut out, len_i32(len));
            let start = out.len();
            encode_record_body(record, &mut out);
            debug_assert_eq!(out.len() - start, len, "record_body_len agrees with encode_record_body");
        }
        debug_assert_eq!(out.len(), out.capacity(), "the batch was sized exactly");
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("length exceeds i32::MAX, which a v2 batch cannot hold")
}

fn encode_record_body(record: &Record, out: &mut Vec<u8>) {
    out.put_i8(0); // attributes
    put_varlong(out, record.timestamp_delta);
    put_varint(out, record.offset_delta);
    put_nullable(out, record.key.as_deref());
    put_nullable(out, record.value.as_deref());
    put_varint(out, len_i32(record.headers.len()));
    for (key, value) in &record.headers {
        put_varint(out, len_i32(key.len()));
        out.extend_from_slice(key.as_bytes());
        put_nullable(out, value.as_deref());
    }
}

/// The bytes `encode_record_body` writes for `record`.
fn record_body_len(record: &Record) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(key, value)| varint_len(len_i32(key.len())) + key.len() + nullable_len(value.as_deref()))
        .sum();
    1 + unsigned_len(zigzag64(record.timestamp_delta))
        + varint_len(record.offset_delta)
        + nullable_len(record.key.as_deref())
        + nullable_len(record.value.as_deref())
        + varint_len(len_i32(record.headers.len()))
        + headers
}

fn nullable_len(bytes: Option<&[u8]>) -> usize {
    bytes.map_or(varint_len(-1), |b| varint_len(len_i32(b.len())) + b.len())
}

pub(super) fn varint_len(v: i32) -> usize {
    unsigned_len(u64::from(zigzag32(v)))
}

pub(super) fn unsigned_len(v: u64) -> usize {
    // Seven bits a byte; zero still takes one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

pub(super) fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, len_i32(b.len()));
            out.extend_from_slice(b);
        }
    }
}

pub(super) fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, u64::from(zigzag32(v)));
}

pub(super) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, zigzag64(v));
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
