//! Batches for the targets and the seed generator.

use bytes::{BufMut, Bytes, BytesMut};

/// A valid v2 batch of `records` records (1..) with an opaque payload of
/// `payload_bytes` (8..) that starts with `id`, so batches are told apart.
/// The log treats the records section as opaque.
pub fn opaque_batch(records: u32, id: u64, timestamp: i64, payload_bytes: usize) -> Bytes {
    assert!(records >= 1 && payload_bytes >= 8);
    let mut b = BytesMut::with_capacity(61 + payload_bytes);
    b.put_i64(0); // base offset: the log assigns it
    b.put_i32((49 + payload_bytes) as i32);
    b.put_i32(-1); // partition leader epoch: the log stamps it
    b.put_i8(2);
    b.put_u32(0); // crc, below
    b.put_i16(0);
    b.put_i32(records as i32 - 1);
    b.put_i64(timestamp);
    b.put_i64(timestamp);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(records as i32);
    b.put_u64(id);
    for i in 0..payload_bytes - 8 {
        // Never zero, so a torn write (zeros) never looks like the payload.
        b.put_u8(((id as usize + i) % 251 + 1) as u8);
    }
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// `batch` with its base offset and leader epoch set (outside the CRC).
pub fn stamped(batch: &[u8], base_offset: u64, epoch: i32) -> Bytes {
    let mut b = batch.to_vec();
    b[0..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
    Bytes::from(b)
}
