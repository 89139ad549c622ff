//! The records inside an uncompressed v2 batch: building and decoding.
//!
//! After the 61-byte header (see `batch.rs`) come `record_count` records:
//!
//! ```text
//! length           varint   bytes of the rest of this record
//! attributes       i8       unused by Kafka so far; written as 0, ignored
//! timestamp_delta  varlong  from the batch's base_timestamp
//! offset_delta     varint   from the batch's base_offset
//! key_length       varint   -1 for a null key
//! key              bytes
//! value_length     varint   -1 for a null value
//! value            bytes
//! header_count     varint
//! headers          (key_length varint, key UTF-8, value_length varint, value)*
//! ```
//!
//! Varints are zigzag LEB128 (as protobuf's sint32/sint64): at most 5 bytes
//! for a varint, 10 for a varlong.
//!
//! The broker stores batches exactly as producers send them, compressed or
//! not, so it never decompresses; `decode_records` serves the places that
//! need record contents of uncompressed batches, and tests. Decoding treats
//! its input as hostile: every count and length is checked against the bytes
//! that remain before anything is allocated or sliced for it.

use bytes::{BufMut, Bytes};
use thiserror::Error;

use super::batch::{
    validate_batch, BatchError, BatchHeader, BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES, MAGIC_V2,
};

const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamps are the broker's append time (`max_timestamp`).
const TIMESTAMP_LOG_APPEND_TIME: i16 = 0x08;
/// Smallest encoded record: one byte each for length, attributes, timestamp
/// delta, offset delta, key length, value length and header count. Bounds
/// preallocation by what the input can actually hold.
const MIN_RECORD_BYTES: usize = 7;
/// Smallest encoded header: empty key and null value, one byte each.
const MIN_HEADER_BYTES: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordsError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("batch is compressed (codec {0}); only uncompressed batches are decoded")]
    Compressed(u8),
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("malformed record {index}: {reason}")]
    Malformed { index: usize, reason: &'static str },
    #[error("{0} bytes left over after the last record")]
    TrailingBytes(usize),
}

/// One record of a v2 batch, with offset and timestamp relative to the batch.
/// Header keys are Kafka strings (UTF-8); keys may repeat, as in Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl Record {
    /// Absolute offset of this record in a batch with `header`.
    pub fn offset(&self, header: &BatchHeader) -> i64 {
        header.base_offset.wrapping_add(i64::from(self.offset_delta))
    }

    /// Absolute timestamp, as Kafka reads it: with LogAppendTime every record
    /// carries the batch's `max_timestamp`, whatever its delta says.
    pub fn timestamp(&self, header: &BatchHeader) -> i64 {
        if header.attributes & TIMESTAMP_LOG_APPEND_TIME != 0 {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(self.timestamp_delta)
        }
    }
}

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

fn varint_len(v: i32) -> usize {
    unsigned_len(u64::from(zigzag32(v)))
}

fn unsigned_len(v: u64) -> usize {
    // Seven bits a byte; zero still takes one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn zigzag64(v: i64) -> u64 {
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

fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, u64::from(zigzag32(v)));
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, zigzag64(v));
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Validates `batch` (exactly one v2 batch, CRC included) and decodes all
/// its records. Compressed batches are refused with `Compressed`.
///
/// Stricter than Kafka's Java reader in three ways no correct producer can
/// trip: lengths below -1 (Java reads any negative as null), header keys that
/// are not UTF-8 (Java substitutes U+FFFD), and varints whose last byte
/// overflows 32/64 bits (Java drops the excess bits) are errors.
pub fn decode_records(batch: &[u8]) -> Result<(BatchHeader, Vec<Record>), RecordsError> {
    let (header, iter) = iter_records(batch)?;
    // `record_count` comes from the input: reserve no more than the
    // remaining bytes could encode.
    let count = usize::try_from(header.record_count).unwrap_or(0);
    let mut records = Vec::with_capacity(count.min(iter.reader.buf.len() / MIN_RECORD_BYTES));
    for record in iter {
        records.push(record?);
    }
    Ok((header, records))
}

/// Like `decode_records`, but yields the records one at a time. After an
/// error the iterator ends. A final `TrailingBytes` error reports bytes after
/// the last declared record.
pub fn iter_records(batch: &[u8]) -> Result<(BatchHeader, RecordIter<'_>), RecordsError> {
    let header = validate_batch(batch)?;
    match header.compression() {
        0 => {}
        codec @ 1..=4 => return Err(RecordsError::Compressed(codec)),
        codec => return Err(RecordsError::UnknownCodec(codec)),
    }
    let iter = RecordIter {
        // validate_batch checked batch.len() == header.size_bytes() >= 61.
        reader: Reader { buf: batch.get(BATCH_HEADER_BYTES..).unwrap_or_default() },
        index: 0,
        count: usize::try_from(header.record_count).unwrap_or(0),
        done: false,
    };
    Ok((header, iter))
}

/// Records of one validated batch, decoded lazily; see `iter_records`.
pub struct RecordIter<'a> {
    reader: Reader<'a>,
    index: usize,
    count: usize,
    done: bool,
}

impl Iterator for RecordIter<'_> {
    type Item = Result<Record, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index == self.count {
            self.done = true;
            let left = self.reader.buf.len();
            return (left > 0).then_some(Err(RecordsError::TrailingBytes(left)));
        }
        let result = decode_record(&mut self.reader)
            .map_err(|reason| RecordsError::Malformed { index: self.index, reason });
        self.index += 1;
        self.done = result.is_err();
        Some(result)
    }
}

fn decode_record(r: &mut Reader<'_>) -> Result<Record, &'static str> {
    let length = usize::try_from(r.varint()?).map_err(|_| "negative record length")?;
    // Everything below reads from this record's own bytes, so a bad inner
    // length cannot run into the next record.
    let mut body = Reader { buf: r.take(length)? };
    let _attributes = body.byte()?;
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let key = body.nullable()?.map(Bytes::copy_from_slice);
    let value = body.nullable()?.map(Bytes::copy_from_slice);
    let count = usize::try_from(body.varint()?).map_err(|_| "negative header count")?;
    let mut headers = Vec::with_capacity(count.min(body.buf.len() / MIN_HEADER_BYTES));
    for _ in 0..count {
        let key_length = usize::try_from(body.varint()?).map_err(|_| "negative header key length")?;
        let key = std::str::from_utf8(body.take(key_length)?).map_err(|_| "header key is not UTF-8")?;
        let value = body.nullable()?.map(Bytes::copy_from_slice);
        headers.push((key.to_owned(), value));
    }
    if !body.buf.is_empty() {
        return Err("record length exceeds its fields");
    }
    Ok(Record { offset_delta, timestamp_delta, key, value, headers })
}

/// A cursor over untrusted bytes in Kafka's record encoding; every read is
/// bounds-checked. `buf` is what is left to read. Public so that the
/// client's in-place record decoder reads the same way.
pub struct Reader<'a> {
    pub buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn byte(&mut self) -> Result<u8, &'static str> {
        let (&b, rest) = self.buf.split_first().ok_or("truncated")?;
        self.buf = rest;
        Ok(b)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.buf.len() {
            return Err("length exceeds the remaining bytes");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// LEB128 of at most `max_bytes` bytes; u128 so that the bits of an
    /// overflowing last byte are kept and caught by the caller's try_from.
    fn unsigned(&mut self, max_bytes: u32) -> Result<u128, &'static str> {
        let mut value = 0u128;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u128::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long")
    }

    pub fn varint(&mut self) -> Result<i32, &'static str> {
        let z = u32::try_from(self.unsigned(5)?).map_err(|_| "varint overflows 32 bits")?;
        Ok((z >> 1) as i32 ^ -((z & 1) as i32))
    }

    pub fn varlong(&mut self) -> Result<i64, &'static str> {
        let z = u64::try_from(self.unsigned(10)?).map_err(|_| "varlong overflows 64 bits")?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    /// A varint length then that many bytes; -1 means null.
    pub fn nullable(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            n => {
                let n = usize::try_from(n).map_err(|_| "length below -1")?;
                self.take(n).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    fn varlong_bytes(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varlong(&mut out, v);
        out
    }

    // Vectors from Kafka's ByteUtilsTest (zigzag LEB128).
    #[test]
    fn varint_vectors() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (-65, &[0x81, 0x01]),
            (8191, &[0xfe, 0x7f]),
            (-8192, &[0xff, 0x7f]),
            (8192, &[0x80, 0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(v, bytes) in cases {
            assert_eq!(varint_bytes(v), bytes, "encode {v}");
            let mut r = Reader { buf: bytes };
            assert_eq!(r.varint(), Ok(v), "decode {v}");
            assert!(r.buf.is_empty());
        }
    }

    #[test]
    fn varlong_vectors() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (i64::from(i32::MAX) + 1, &[0x80, 0x80, 0x80, 0x80, 0x10]),
            (i64::MAX, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            (i64::MIN, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for &(v, bytes) in cases {
            assert_eq!(varlong_bytes(v), bytes, "encode {v}");
            let mut r = Reader { buf: bytes };
            assert_eq!(r.varlong(), Ok(v), "decode {v}");
            assert!(r.buf.is_empty());
        }
    }

    #[test]
    fn varints_reject_overlong_overflowing_and_truncated() {
        let bad_varints: &[&[u8]] = &[
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // six bytes
            &[0xff, 0xff, 0xff, 0xff, 0x1f],       // bit 32 set
            &[0x80],                               // truncated
            &[],
        ];
        for bytes in bad_varints {
            assert!(Reader { buf: bytes }.varint().is_err(), "{bytes:x?}");
        }
        let bad_varlongs: &[&[u8]] = &[
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03],
            &[0xff, 0xff],
        ];
        for bytes in bad_varlongs {
            assert!(Reader { buf: bytes }.varlong().is_err(), "{bytes:x?}");
        }
        // Non-canonical but in range: accepted, as Kafka does.
        assert_eq!(Reader { buf: &[0x82, 0x00] }.varint(), Ok(1));
    }

    #[test]
    fn varint_round_trips_edges() {
        for v in [i32::MIN, i32::MIN + 1, -300, -1, 0, 1, 300, i32::MAX - 1, i32::MAX] {
            assert_eq!(Reader { buf: &varint_bytes(v) }.varint(), Ok(v));
        }
        for v in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
            assert_eq!(Reader { buf: &varlong_bytes(v) }.varlong(), Ok(v));
        }
    }

    /// `build` sizes a batch before writing it: the lengths must be the
    /// bytes the encoders write.
    #[test]
    fn varint_lengths_match_the_encoding() {
        for v in [i32::MIN, -65, -64, -1, 0, 63, 64, 8191, 8192, i32::MAX] {
            assert_eq!(varint_len(v), varint_bytes(v).len(), "{v}");
        }
        for v in [i64::MIN, -1, 0, 63, 64, 1 << 34, i64::MAX] {
            assert_eq!(unsigned_len(zigzag64(v)), varlong_bytes(v).len(), "{v}");
        }
    }

    /// The batch in kafka-protocol's records.rs docs: one record, key
    /// "hello", value "world", record attributes byte 1 (ignored).
    #[test]
    fn decodes_kafka_protocol_doc_batch() {
        const BATCH: [u8; 79] = [
            0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x43, 0x0, 0x0, 0x0, 0x0, 0x2, 0x73, 0x6d,
            0x29, 0x7b, 0x0, 0x0, 0x0, 0x0, 0x0, 0x3, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1,
            0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
            0x0, 0x0, 0x0, 0x1, 0x22, 0x1, 0xd0, 0xf, 0x2, 0xa, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xa, 0x77,
            0x6f, 0x72, 0x6c, 0x64, 0x0,
        ];
        let (header, records) = decode_records(&BATCH).expect("valid batch");
        assert_eq!(header.record_count, 1);
        assert_eq!(header.crc, 0x736d_297b);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.offset_delta, 1);
        assert_eq!(r.timestamp_delta, 1000);
        assert_eq!(r.key.as_deref(), Some(&b"hello"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"world"[..]));
        assert!(r.headers.is_empty());
    }

    #[test]
    fn compressed_and_unknown_codecs_are_refused() {
        for (attributes, want) in [
            (1, RecordsError::Compressed(1)),
            (4, RecordsError::Compressed(4)),
            (5, RecordsError::UnknownCodec(5)),
        ] {
            let mut b = BatchBuilder::new(0, 0);
            b.push(None, Some(Bytes::from_static(b"v")), 0);
            // build() clears compression bits, so set them afterwards.
            let mut bytes = b.build().to_vec();
            bytes[22] |= attributes;
            let crc = crc32c::crc32c(&bytes[CRC_START..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            assert_eq!(decode_records(&bytes).unwrap_err(), want);
        }
    }

    /// Rebuilds a one-record batch around a hand-written record body.
    fn batch_with_raw_records(record_count: i32, raw: &[u8]) -> Vec<u8> {
        let mut bytes = BatchBuilder::new(0, 0).build().to_vec();
        bytes.extend_from_slice(raw);
        let len = (bytes.len() - LOG_OVERHEAD_BYTES) as i32;
        bytes[8..12].copy_from_slice(&len.to_be_bytes());
        bytes[57..61].copy_from_slice(&record_count.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn malformed_records_are_named() {
        let malformed = |count, raw: &[u8]| decode_records(&batch_with_raw_records(count, raw)).unwrap_err();
        let at0 = |reason| RecordsError::Malformed { index: 0, reason };
        // A valid minimal record: length 6, attrs, ts 0, off 0, null key, null value, 0 headers.
        let ok = [0x0c, 0, 0, 0, 0x01, 0x01, 0];
        assert_eq!(decode_records(&batch_with_raw_records(1, &ok)).map(|(_, r)| r.len()), Ok(1));
        assert_eq!(malformed(2, &ok), RecordsError::Malformed { index: 1, reason: "truncated" });
        assert_eq!(malformed(0, &ok), RecordsError::TrailingBytes(7));
        assert_eq!(malformed(1, &[0x01]), at0("negative record length"));
        assert_eq!(malformed(1, &[0x0e, 0, 0, 0, 1, 1, 0]), at0("length exceeds the remaining bytes"));
        assert_eq!(malformed(1, &[0x0e, 0, 0, 0, 1, 1, 0, 0]), at0("record length exceeds its fields"));
        assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 0x03, 1, 0]), at0("length below -1"));
        assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 0x06, 1, 0]), at0("length exceeds the remaining bytes"));
        assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 1, 1, 0x01]), at0("negative header count"));
        // One header claimed, but none present; then a huge claimed count.
        assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 1, 1, 0x02]), at0("truncated"));
        assert_eq!(malformed(1, &[0x10, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f]), at0("truncated"));
        // Header key 0xff is not UTF-8.
        assert_eq!(
            malformed(1, &[0x12, 0, 0, 0, 1, 1, 0x02, 0x02, 0xff, 0x01]),
            at0("header key is not UTF-8")
        );
        // A huge record count with no bytes does not preallocate.
        assert_eq!(malformed(i32::MAX, &[]), at0("truncated"));
    }

    #[test]
    fn absolute_offset_and_timestamp() {
        let mut b = BatchBuilder::new(100, 5_000);
        b.push(None, None, 5_007).push(None, None, 4_990);
        let (header, records) = decode_records(&b.build()).expect("valid");
        assert_eq!(header.max_timestamp, 5_007);
        assert_eq!(header.last_offset_delta, 1);
        assert_eq!(records[1].offset(&header), 101);
        assert_eq!(records[1].timestamp(&header), 4_990);
        let log_append = BatchHeader { attributes: TIMESTAMP_LOG_APPEND_TIME, ..header };
        assert_eq!(records[1].timestamp(&log_append), 5_007);
    }
}
