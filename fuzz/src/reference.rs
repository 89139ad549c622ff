//! A reference scanner for segment bytes, written from the format
//! description alone (not from the engine's code), to compare against.

/// Fixed header size of a v2 batch; the smallest batch.
pub const HEADER_BYTES: usize = 61;
/// The engine's bound on one batch, whatever its header claims.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefBatch {
    pub position: usize,
    pub size: usize,
    pub base_offset: u64,
    pub next_offset: u64,
    pub max_timestamp: i64,
    pub record_count: i32,
    pub compression: u8,
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x))
}

/// The batch at the start of `buf` if it is one whole valid v2 batch prefix:
/// length in range, magic 2, sane counts, CRC-32C over bytes 21..end.
pub fn parse_one(buf: &[u8]) -> Option<RefBatch> {
    if buf.len() < HEADER_BYTES {
        return None;
    }
    let length = be(&buf[8..12]) as u32 as i32 as i64;
    let size = length + 12;
    if size < HEADER_BYTES as i64 || size > BATCH_BYTES_MAX as i64 || size as usize > buf.len() {
        return None;
    }
    let size = size as usize;
    if buf[16] != 2 {
        return None;
    }
    let base_offset = be(&buf[0..8]) as i64;
    let last_offset_delta = be(&buf[23..27]) as u32 as i32;
    let record_count = be(&buf[57..61]) as u32 as i32;
    if base_offset < 0 || last_offset_delta < 0 || record_count < 0 {
        return None;
    }
    if be(&buf[17..21]) as u32 != crc32c::crc32c(&buf[21..size]) {
        return None;
    }
    Some(RefBatch {
        position: 0,
        size,
        base_offset: base_offset as u64,
        next_offset: base_offset as u64 + last_offset_delta as u64 + 1,
        max_timestamp: be(&buf[35..43]) as i64,
        record_count,
        compression: buf[22] & 0x07,
    })
}

/// Scans a segment file whose batches must start at `base` with dense
/// offsets: the valid prefix's batches, its length in bytes, and whether
/// bytes that are not a valid batch follow it.
pub fn scan_segment(file: &[u8], base: u64) -> (Vec<RefBatch>, usize, bool) {
    let mut batches = Vec::new();
    let mut position = 0;
    let mut expected = base;
    while position < file.len() {
        match parse_one(&file[position..]) {
            Some(b) if b.base_offset == expected => {
                expected = b.next_offset;
                batches.push(RefBatch { position, ..b });
                position += b.size;
            }
            _ => return (batches, position, true),
        }
    }
    (batches, position, false)
}

/// Splits a buffer of consecutive batches (no offset rule): the batches and
/// the position where invalid bytes start, if any.
pub fn split_batches(buf: &[u8]) -> (Vec<RefBatch>, Option<usize>) {
    let mut batches = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        match parse_one(&buf[position..]) {
            Some(b) => {
                batches.push(RefBatch { position, ..b });
                position += b.size;
            }
            None => return (batches, Some(position)),
        }
    }
    (batches, None)
}
