//! Fetched record batches read in place: keys, values and headers are
//! slices of the response frame, never copies, so a consumer pays per byte
//! only for the CRC-32C check of each batch (which it must not skip: it is
//! what catches a corrupt batch on disk or on the wire).
//!
//! The record layout is the engine's (`ringtail_engine::log::records`),
//! whose decoder copies every key and value into a buffer of its own; this
//! one borrows them. Input is treated as hostile in the same way: every
//! length is checked against the bytes that remain before it is used.

use ringtail_engine::log::batch::{validate_batch, BatchError, BatchHeader, BATCH_HEADER_BYTES};
use ringtail_engine::log::records::{Reader, RecordsError};

/// Attribute bit 3: timestamps are the broker's append time (`max_timestamp`).
const TIMESTAMP_LOG_APPEND_TIME: i16 = 0x08;

/// The batches at the start of a partition's fetched bytes, up to the first
/// one cut short (a broker may cut the last batch to respect its size
/// limits; it comes whole in the next fetch). Only the header is checked
/// here; `Batch::records` checks the CRC.
pub struct Batches<'a> {
    rest: &'a [u8],
    /// Bytes of the batches yielded so far.
    position: usize,
    done: bool,
}

impl<'a> Batches<'a> {
    pub fn new(bytes: &'a [u8]) -> Batches<'a> {
        Batches { rest: bytes, position: 0, done: false }
    }

    /// Bytes of the whole batches yielded so far.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(self.rest) {
            Ok(header) => header,
            Err(BatchError::Incomplete { .. }) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let Some(bytes) = self.rest.get(..header.size_bytes()) else {
            self.done = true;
            return None;
        };
        self.rest = &self.rest[bytes.len()..];
        self.position += bytes.len();
        Some(Ok(Batch { header, bytes }))
    }
}

/// One whole batch, its header parsed but its CRC not yet checked.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub header: BatchHeader,
    bytes: &'a [u8],
}

impl<'a> Batch<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        i64::try_from(self.header.next_offset()).unwrap_or(i64::MAX)
    }

    /// Checks the batch's CRC-32C and that it is uncompressed, then reads
    /// its records one at a time.
    pub fn records(&self) -> Result<Records<'a>, RecordsError> {
        let header = validate_batch(self.bytes)?;
        match header.compression() {
            0 => {}
            codec @ 1..=4 => return Err(RecordsError::Compressed(codec)),
            codec => return Err(RecordsError::UnknownCodec(codec)),
        }
        Ok(Records {
            header,
            // validate_batch checked the length covers the fixed header.
            reader: Reader { buf: self.bytes.get(BATCH_HEADER_BYTES..).unwrap_or_default() },
            index: 0,
            count: usize::try_from(header.record_count).unwrap_or(0),
            done: false,
        })
    }
}

/// The records of one checked batch. After an error the iterator ends; a
/// final `TrailingBytes` error reports bytes after the last declared record.
pub struct Records<'a> {
    header: BatchHeader,
    reader: Reader<'a>,
    index: usize,
    count: usize,
    done: bool,
}

impl<'a> Iterator for Records<'a> {
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

/// One record, borrowing from its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset: i64,
    pub timestamp_ms: i64,
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
    // With LogAppendTime every record carries the batch's max_timestamp,
    // whatever its delta says (as Kafka reads it).
    let timestamp_ms = if batch.attributes & TIMESTAMP_LOG_APPEND_TIME != 0 {
        batch.max_timestamp
    } else {
        batch.base_timestamp.wrapping_add(timestamp_delta)
    };
    Ok(RecordRef {
        offset: batch.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp_ms,
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ringtail_engine::log::batch::set_base_offset;
    use ringtail_engine::log::records::{decode_records, BatchBuilder, Record};

    fn batch(base_offset: u64, records: Vec<Record>) -> Vec<u8> {
        let mut b = BatchBuilder::new(0, 1000);
        for r in records {
            b.push_record(r);
        }
        let mut bytes = b.build().to_vec();
        set_base_offset(&mut bytes, base_offset);
        bytes
    }

    fn record(delta: i32, key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> Record {
        Record {
            offset_delta: delta,
            timestamp_delta: i64::from(delta) * 3,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            headers: vec![("h".to_owned(), Some(Bytes::from_static(b"x"))), ("n".to_owned(), None)],
        }
    }

    /// Reads what the engine's copying decoder reads, borrowing instead.
    #[test]
    fn matches_the_engines_decoder() {
        let bytes = batch(
            40,
            vec![record(0, None, Some(b"a")), record(1, Some(b"k"), None), record(2, None, Some(b""))],
        );
        let (header, expected) = decode_records(&bytes).expect("valid");
        let batches: Vec<_> = Batches::new(&bytes).collect::<Result<_, _>>().expect("whole");
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].next_offset(), 43);
        let got: Vec<RecordRef<'_>> =
            batches[0].records().expect("checked").collect::<Result<_, _>>().expect("records");
        assert_eq!(got.len(), expected.len());
        for (got, expected) in got.iter().zip(&expected) {
            assert_eq!(got.offset, expected.offset(&header));
            assert_eq!(got.timestamp_ms, expected.timestamp(&header));
            assert_eq!(got.key, expected.key.as_deref());
            assert_eq!(got.value, expected.value.as_deref());
            let headers: Vec<_> =
                got.headers().map(|(k, v)| (k.to_owned(), v.map(Bytes::copy_from_slice))).collect();
            assert_eq!(headers, expected.headers);
            // Borrowed from the batch, not copied.
            if let Some(value) = got.value.filter(|v| !v.is_empty()) {
                assert!(bytes.as_ptr_range().contains(&value.as_ptr()));
            }
        }
    }

    /// A cut-off last batch ends the batches quietly; a corrupt one is an
    /// error when its records are read, not before.
    #[test]
    fn partial_tails_end_and_corruption_is_caught() {
        let mut bytes = batch(0, vec![record(0, None, Some(b"a"))]);
        let first = bytes.len();
        let second = batch(1, vec![record(0, None, Some(b"b"))]);
        bytes.extend(&second[..second.len() - 3]);
        let mut batches = Batches::new(&bytes);
        assert!(batches.next().expect("first").is_ok());
        assert!(batches.next().is_none());
        assert_eq!(batches.position(), first);

        let mut corrupt = batch(0, vec![record(0, None, Some(b"a"))]);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let batch = Batches::new(&corrupt).next().expect("one").expect("header is fine");
        assert!(matches!(batch.records().err(), Some(RecordsError::Batch(BatchError::BadCrc { .. }))));

        let mut bad_magic = corrupt.clone();
        bad_magic[16] = 1;
        assert!(matches!(Batches::new(&bad_magic).next(), Some(Err(BatchError::BadMagic(1)))));
    }

    /// Restores the CRC over a changed batch, so the change reaches the
    /// record decoder. (The engine keeps its CRC helper private; the
    /// checker's complaint names the value it expects.)
    fn fix_crc(bytes: &mut [u8]) {
        if let Err(BatchError::BadCrc { computed, .. }) = validate_batch(bytes) {
            bytes[17..21].copy_from_slice(&computed.to_be_bytes());
        }
    }

    /// No input panics: every prefix of a valid batch and every single-byte
    /// change, with the CRC made to match, is either read or refused.
    #[test]
    fn hostile_input_never_panics() {
        let bytes = batch(5, vec![record(0, Some(b"key"), Some(b"value")), record(1, None, None)]);
        for cut in 0..bytes.len() {
            for batch in Batches::new(&bytes[..cut]).flatten() {
                let _ = batch.records().map(|records| records.count());
            }
        }
        let mut refused = 0;
        for at in BATCH_HEADER_BYTES..bytes.len() {
            for delta in [1u8, 0x40, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[at] = bad[at].wrapping_add(delta);
                fix_crc(&mut bad);
                for batch in Batches::new(&bad).flatten() {
                    let records = batch.records().expect("the CRC matches");
                    for record in records {
                        match record {
                            Ok(record) => assert!(record.headers().count() <= 2),
                            Err(_) => refused += 1,
                        }
                    }
                }
            }
        }
        assert!(refused > 0);
    }
}
