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
//!
//! - `build`: `BatchBuilder`, which sizes a batch first and encodes its
//!   records straight into it, and the varint writers.

mod build;
#[cfg(test)]
mod tests;

pub use build::BatchBuilder;

use bytes::Bytes;
use thiserror::Error;

use super::batch::{validate_batch, BatchError, BatchHeader, BATCH_HEADER_BYTES};

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
