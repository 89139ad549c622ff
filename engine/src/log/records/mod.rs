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
//! The broker stores batches as producers send them, compressed or not;
//! the decoder serves whoever reads records: the leader checking a
//! produced batch and seeking by time, group replay, the client's
//! consumer, the simulator's checker, and tests. A compressed batch is
//! first rewritten uncompressed (`decompress`). Decoding treats its input
//! as hostile: every count and length is checked against the bytes that
//! remain before anything is allocated or sliced for it.
//!
//! - `build`: `BatchBuilder`, which sizes a batch first and encodes its
//!   records straight into it, and the varint writers.
//! - `decode`: the one record decoder, reading in place (`iter_records`,
//!   `RecordRef`), and `decode_records`, which copies out owned `Record`s.
//! - `decompress`: Kafka's four codecs, read back to an uncompressed batch.
//! - `compress`: an uncompressed batch compressed again (the cleaner's).

mod build;
pub mod compress;
mod decode;
pub mod decompress;
#[cfg(test)]
mod tests;

pub use build::BatchBuilder;
pub use decode::{decode_records, iter_checked_records, iter_records, RecordIter, RecordRef};

use bytes::Bytes;
use thiserror::Error;

use super::batch::{BatchError, BatchHeader};

const COMPRESSION_MASK: i16 = 0x07;

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
        absolute_offset(header, self.offset_delta)
    }

    /// Absolute timestamp, as Kafka reads it (`absolute_timestamp`).
    pub fn timestamp(&self, header: &BatchHeader) -> i64 {
        absolute_timestamp(header, self.timestamp_delta)
    }
}

fn absolute_offset(header: &BatchHeader, offset_delta: i32) -> i64 {
    header.base_offset.wrapping_add(i64::from(offset_delta))
}

/// With LogAppendTime every record carries the batch's `max_timestamp`,
/// whatever its delta says, as Kafka reads it.
fn absolute_timestamp(header: &BatchHeader, timestamp_delta: i64) -> i64 {
    if header.is_log_append_time() {
        header.max_timestamp
    } else {
        header.base_timestamp.wrapping_add(timestamp_delta)
    }
}
