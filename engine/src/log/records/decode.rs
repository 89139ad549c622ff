//! Decoding the records of one uncompressed v2 batch, in place: keys,
//! values and headers are slices of the batch's bytes (`RecordRef`), so a
//! reader pays per byte only for the batch's CRC-32C check. `decode_records`
//! copies them out into owned `Record`s for those who keep them.
//!
//! The input is hostile: every count and length is checked against the
//! bytes that remain before anything is allocated or sliced for it.

use super::{absolute_offset, absolute_timestamp, Record, RecordsError};
use crate::log::batch::{validate_batch, BatchHeader, BATCH_HEADER_BYTES};

/// Smallest encoded record: one byte each for length, attributes, timestamp
/// delta, offset delta, key length, value length and header count. Bounds
/// preallocation by what the input can actually hold.
const MIN_RECORD_BYTES: usize = 7;

/// Validates `batch` (exactly one v2 batch, CRC included) and decodes all
/// its records into owned values. Compressed batches are refused with
/// `Compressed`.
///
/// Stricter than Kafka's Java reader in three ways no correct producer can
/// trip: lengths below -1 (Java reads any negative as null), header keys that
/// are not UTF-8 (Java substitutes U+FFFD), and varints whose last byte
/// overflows 32/64 bits (Java drops the excess bits) are errors.
pub fn decode_records(batch: &[u8]) -> Result<(BatchHeader, Vec<Record>), RecordsError> {
    let (header, iter) = iter_records(batch)?;
    // `record_count` comes from the input: reserve no more than the
    // remaining bytes could encode.
    let mut records = Vec::with_capacity(iter.count.min(iter.reader.buf.len() / MIN_RECORD_BYTES));
    for record in iter {
        records.push(record?.to_record());
    }
    Ok((header, records))
}

/// Validates `batch` as `decode_records` does, then yields its records one
/// at a time, read in place. After an error the iterator ends. A final
/// `TrailingBytes` error reports bytes after the last declared record.
pub fn iter_records(batch: &[u8]) -> Result<(BatchHeader, RecordIter<'_>), RecordsError> {
    let header = validate_batch(batch)?;
    match header.compression() {
        0 => {}
        codec @ 1..=4 => return Err(RecordsError::Compressed(codec)),
        codec => return Err(RecordsError::UnknownCodec(codec)),
    }
    Ok((header, iter_checked_records(batch, header)))
}

/// The records of `batch`, an uncompressed batch that `validate_batch` has
/// already checked and parsed as `header` (so its CRC is not computed again).
pub fn iter_checked_records(batch: &[u8], header: BatchHeader) -> RecordIter<'_> {
    debug_assert_eq!(header.compression(), 0);
    debug_assert_eq!(batch.len(), header.size_bytes());
    RecordIter {
        header,
        // validate_batch checked batch.len() == header.size_bytes() >= 61.
        reader: Reader { buf: batch.get(BATCH_HEADER_BYTES..).unwrap_or_default() },
        index: 0,
        count: usize::try_from(header.record_count).unwrap_or(0),
        done: false,
    }
}

/// One record of a v2 batch, borrowing its key, value and headers from the
/// batch's bytes. Made only by `RecordIter`, which has checked it whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's absolute offset in its partition.
    pub offset: i64,
    /// The record's timestamp as Kafka reads it (`Record::timestamp`).
    pub timestamp_ms: i64,
    /// Offset and timestamp relative to the batch, as encoded.
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    header_count: usize,
    /// The encoded headers, already checked whole.
    header_bytes: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// The record's headers: (key, value) in order; keys may repeat.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let mut reader = Reader { buf: self.header_bytes };
        // Decoding checked these bytes, so this never stops early.
        (0..self.header_count).map_while(move |_| header(&mut reader).ok())
    }

    /// The record as an owned value, its bytes copied.
    pub fn to_record(&self) -> Record {
        let owned = |bytes: &[u8]| bytes::Bytes::copy_from_slice(bytes);
        Record {
            offset_delta: self.offset_delta,
            timestamp_delta: self.timestamp_delta,
            key: self.key.map(owned),
            value: self.value.map(owned),
            headers: self.headers().map(|(k, v)| (k.to_owned(), v.map(owned))).collect(),
        }
    }
}

/// Records of one validated batch, decoded lazily; see `iter_records`.
pub struct RecordIter<'a> {
    header: BatchHeader,
    reader: Reader<'a>,
    index: usize,
    count: usize,
    done: bool,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordRef<'a>, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index == self.count {
            self.done = true;
            let left = self.reader.buf.len();
            return (left > 0).then_some(Err(RecordsError::TrailingBytes(left)));
        }
        let result = decode_record(&mut self.reader, &self.header)
            .map_err(|reason| RecordsError::Malformed { index: self.index, reason });
        self.index += 1;
        self.done = result.is_err();
        Some(result)
    }
}

fn decode_record<'a>(r: &mut Reader<'a>, batch: &BatchHeader) -> Result<RecordRef<'a>, &'static str> {
    let length = usize::try_from(r.varint()?).map_err(|_| "negative record length")?;
    // Everything below reads from this record's own bytes, so a bad inner
    // length cannot run into the next record.
    let mut body = Reader { buf: r.take(length)? };
    let _attributes = body.byte()?;
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let key = body.nullable()?;
    let value = body.nullable()?;
    let header_count = usize::try_from(body.varint()?).map_err(|_| "negative header count")?;
    let header_bytes = body.buf;
    for _ in 0..header_count {
        header(&mut body)?;
    }
    if !body.buf.is_empty() {
        return Err("record length exceeds its fields");
    }
    Ok(RecordRef {
        offset: absolute_offset(batch, offset_delta),
        timestamp_ms: absolute_timestamp(batch, timestamp_delta),
        offset_delta,
        timestamp_delta,
        key,
        value,
        header_count,
        header_bytes,
    })
}

/// One header: a UTF-8 key (Kafka's strings) and a nullable value.
fn header<'a>(r: &mut Reader<'a>) -> Result<(&'a str, Option<&'a [u8]>), &'static str> {
    let key_length = usize::try_from(r.varint()?).map_err(|_| "negative header key length")?;
    let key = std::str::from_utf8(r.take(key_length)?).map_err(|_| "header key is not UTF-8")?;
    Ok((key, r.nullable()?))
}

/// A cursor over untrusted bytes in Kafka's record encoding; every read is
/// bounds-checked. `buf` is what is left to read.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&b, rest) = self.buf.split_first().ok_or("truncated")?;
        self.buf = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
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

    pub(super) fn varint(&mut self) -> Result<i32, &'static str> {
        let z = u32::try_from(self.unsigned(5)?).map_err(|_| "varint overflows 32 bits")?;
        Ok((z >> 1) as i32 ^ -((z & 1) as i32))
    }

    pub(super) fn varlong(&mut self) -> Result<i64, &'static str> {
        let z = u64::try_from(self.unsigned(10)?).map_err(|_| "varlong overflows 64 bits")?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    /// A varint length then that many bytes; -1 means null.
    fn nullable(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            n => {
                let n = usize::try_from(n).map_err(|_| "length below -1")?;
                self.take(n).map(Some)
            }
        }
    }
}
