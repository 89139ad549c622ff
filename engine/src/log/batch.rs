//! Kafka's v2 record batch (magic 2): the header the log needs, and validation.
//!
//! Layout (all big-endian, as Kafka's wire and log format):
//!
//! ```text
//!  0  base_offset             i64   assigned by the leader's log
//!  8  batch_length            i32   bytes after this field
//! 12  partition_leader_epoch  i32   stamped by the leader
//! 16  magic                   i8    = 2
//! 17  crc                     u32   CRC-32C of bytes 21..end
//! 21  attributes              i16   compression, timestamp type, txn, control
//! 23  last_offset_delta       i32
//! 27  base_timestamp          i64
//! 35  max_timestamp           i64
//! 43  producer_id             i64
//! 51  producer_epoch          i16
//! 53  base_sequence           i32
//! 57  record_count            i32
//! 61  records...
//! ```
//!
//! Base offset and leader epoch lie outside the CRC, so the log rewrites them
//! without recomputing it, and compressed batches are stored exactly as sent.

use thiserror::Error;

/// Bytes before `batch_length`'s payload: base offset and the length itself.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Size of the fixed v2 header; a batch with no records is this long.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Start of the CRC-covered region.
pub const CRC_START: usize = 21;
pub(crate) const MAGIC_V2: i8 = 2;

/// Upper bound on a single batch we will ever read or accept, whatever a
/// header claims, so no length from disk or network drives an unchecked
/// allocation. Topic-level `max.message.bytes` is checked separately and is
/// at most this.
pub const BATCH_SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    #[error("incomplete batch: have {have} bytes, need {need}")]
    Incomplete { have: usize, need: usize },
    #[error("invalid batch length {0}")]
    BadLength(i64),
    #[error("unsupported magic {0} (only v2 record batches)")]
    BadMagic(i8),
    #[error("CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("invalid header: {0}")]
    BadHeader(&'static str),
}

/// The fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `buf` and checks the length and
    /// magic fields (not the CRC: see `validate_batch`). `buf` may hold more
    /// than one batch.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < LOG_OVERHEAD_BYTES {
            return Err(BatchError::Incomplete { have: buf.len(), need: LOG_OVERHEAD_BYTES });
        }
        let batch_length = be_i32(buf, 8);
        let total = i64::from(batch_length) + LOG_OVERHEAD_BYTES as i64;
        if total < BATCH_HEADER_BYTES as i64 || total > BATCH_SIZE_BYTES_MAX as i64 {
            return Err(BatchError::BadLength(i64::from(batch_length)));
        }
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Incomplete { have: buf.len(), need: BATCH_HEADER_BYTES });
        }
        let magic = buf[16] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        let header = BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length,
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: u32::from_be_bytes(buf[17..21].try_into().expect("4 bytes")),
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        };
        if header.base_offset < 0 {
            return Err(BatchError::BadHeader("negative base offset"));
        }
        if header.last_offset_delta < 0 || header.record_count < 0 {
            return Err(BatchError::BadHeader("negative record count or offset delta"));
        }
        Ok(header)
    }

    /// Total size on disk and on the wire, including the 12-byte overhead.
    pub fn size_bytes(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD_BYTES
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> u64 {
        self.base_offset as u64 + self.last_offset_delta as u64
    }

    /// The offset right after this batch.
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x07) as u8
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Attribute bit 3: every record's timestamp is `max_timestamp`, the
    /// leader's append time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_LOG_APPEND_TIME != 0
    }
}

/// Attribute bit 3 (see `is_log_append_time`).
pub(crate) const TIMESTAMP_LOG_APPEND_TIME: i16 = 0x08;

/// Validates that `buf` is exactly one well-formed v2 batch: length, magic,
/// header sanity and CRC-32C. Returns the parsed header.
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    let size = header.size_bytes();
    if buf.len() < size {
        return Err(BatchError::Incomplete { have: buf.len(), need: size });
    }
    if buf.len() > size {
        return Err(BatchError::BadLength(header.batch_length.into()));
    }
    let computed = crc32c::crc32c(&buf[CRC_START..size]);
    if computed != header.crc {
        return Err(BatchError::BadCrc { stored: header.crc, computed });
    }
    Ok(header)
}

/// Rewrites the base offset of the batch at the start of `buf`.
pub fn set_base_offset(buf: &mut [u8], base_offset: u64) {
    buf[0..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
}

/// Rewrites the partition leader epoch of the batch at the start of `buf`.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Rewrites the timestamp type and max timestamp of the batch `buf` (one
/// whole batch) and then its CRC, which covers both: the leader's stamp
/// under LogAppendTime, or its correction of a producer's wrong max.
pub fn set_max_timestamp(buf: &mut [u8], log_append_time: bool, max_timestamp: i64) {
    let mut attributes = be_i16(buf, 21) & !TIMESTAMP_LOG_APPEND_TIME;
    if log_append_time {
        attributes |= TIMESTAMP_LOG_APPEND_TIME;
    }
    buf[21..23].copy_from_slice(&attributes.to_be_bytes());
    buf[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Splits a buffer holding consecutive batches, validating each one.
/// Yields `(position, header)`; stops at the first error, which it yields
/// once together with the position where the bad bytes start.
pub struct BatchScanner<'a> {
    buf: &'a [u8],
    position: usize,
    done: bool,
    check_crc: bool,
}

impl<'a> BatchScanner<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BatchScanner { buf, position: 0, done: false, check_crc: true }
    }

    /// For batches whose CRC was checked since they were last outside this
    /// process's memory (the log cache's): lengths and headers only.
    pub fn verified(buf: &'a [u8]) -> Self {
        BatchScanner { check_crc: false, ..BatchScanner::new(buf) }
    }

    /// Bytes consumed by the batches yielded so far.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl Iterator for BatchScanner<'_> {
    type Item = Result<(usize, BatchHeader), (usize, BatchError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.position == self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.position..];
        let result = BatchHeader::parse(rest).and_then(|h| {
            let size = h.size_bytes();
            if rest.len() < size {
                return Err(BatchError::Incomplete { have: rest.len(), need: size });
            }
            if !self.check_crc {
                return Ok(h);
            }
            validate_batch(&rest[..size])
        });
        match result {
            Ok(header) => {
                let at = self.position;
                self.position += header.size_bytes();
                Some(Ok((at, header)))
            }
            Err(e) => {
                self.done = true;
                Some(Err((self.position, e)))
            }
        }
    }
}
