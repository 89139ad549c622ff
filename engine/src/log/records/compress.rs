//! An uncompressed batch compressed again, for the log cleaner: a batch
//! that lost some of its records is rebuilt from those left and written
//! with the codec it came with, as Kafka's cleaner does. The framing is
//! what `decompress` reads and Kafka's clients expect: gzip streams,
//! snappy in the xerial framing the Java client writes, LZ4 frames, zstd
//! frames.

use crate::log::batch::{validate_batch, BatchError, BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES};
use std::io::Write;
use thiserror::Error;

const COMPRESSION_MASK: u8 = 0x07;
/// snappy-java's stream header: magic, version 1, compatible version 1.
const XERIAL_HEADER: [u8; 16] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
/// Uncompressed bytes per xerial block (snappy-java's default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

#[derive(Debug, Error)]
pub enum CompressError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("the batch is already compressed")]
    AlreadyCompressed,
    #[error("{codec} compression failed: {reason}")]
    Failed { codec: &'static str, reason: String },
}

/// `batch` (one whole uncompressed v2 batch) with its records compressed by
/// `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd; 0 returns it as it is).
pub fn compressed(batch: &[u8], codec: u8) -> Result<Vec<u8>, CompressError> {
    let header = validate_batch(batch)?;
    if header.compression() != 0 {
        return Err(CompressError::AlreadyCompressed);
    }
    let records = &batch[BATCH_HEADER_BYTES..];
    let failed =
        |codec: &'static str| move |e: std::io::Error| CompressError::Failed { codec, reason: e.to_string() };
    let body = match codec {
        0 => return Ok(batch.to_vec()),
        1 => {
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gzip.write_all(records).map_err(failed("gzip"))?;
            gzip.finish().map_err(failed("gzip"))?
        }
        2 => {
            let mut out = XERIAL_HEADER.to_vec();
            let mut encoder = snap::raw::Encoder::new();
            for chunk in records.chunks(XERIAL_BLOCK_BYTES) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| CompressError::Failed { codec: "snappy", reason: e.to_string() })?;
                let len =
                    i32::try_from(block.len()).expect("a block of at most 32 KiB compresses below 2 GiB");
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
        3 => {
            let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
            lz4.write_all(records).map_err(failed("lz4"))?;
            lz4.finish().map_err(|e| CompressError::Failed { codec: "lz4", reason: e.to_string() })?
        }
        4 => ruzstd::encoding::compress_to_vec(records, ruzstd::encoding::CompressionLevel::Fastest),
        other => return Err(CompressError::UnknownCodec(other)),
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&body);
    let length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| CompressError::Failed { codec: "any", reason: "batch too large".into() })?;
    out[LOG_OVERHEAD_BYTES - 4..LOG_OVERHEAD_BYTES].copy_from_slice(&length.to_be_bytes());
    out[CRC_START + 1] = (out[CRC_START + 1] & !COMPRESSION_MASK) | codec;
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
    debug_assert!(validate_batch(&out).is_ok_and(|h| h.compression() == codec));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::{decode_records, decompress, BatchBuilder};
    use bytes::Bytes;

    /// Every codec's output decompresses back to the batch it came from,
    /// header fields (attributes but the codec) unchanged.
    #[test]
    fn every_codec_round_trips() {
        let mut builder = BatchBuilder::new(40, 1_700_000_000_000);
        builder.producer_id = 7;
        builder.base_sequence = 3;
        for i in 0..200 {
            let value = Bytes::from(format!("value {i} ").repeat(i % 50 + 1));
            builder.push(Some(Bytes::from(format!("k{i}"))), Some(value), 1_700_000_000_000 + i as i64);
        }
        let plain = builder.build();
        for codec in 1..=4u8 {
            let packed = compressed(&plain, codec).unwrap();
            assert!(packed.len() < plain.len(), "codec {codec} made it larger");
            let header = validate_batch(&packed).unwrap();
            assert_eq!(header.compression(), codec);
            assert_eq!((header.producer_id, header.base_sequence, header.record_count), (7, 3, 200));
            let back = decompress::uncompressed(&packed).unwrap();
            assert_eq!(decode_records(&back).unwrap(), decode_records(&plain).unwrap(), "codec {codec}");
        }
        assert!(matches!(compressed(&plain, 9), Err(CompressError::UnknownCodec(9))));
        let packed = compressed(&plain, 1).unwrap();
        assert!(matches!(compressed(&packed, 1), Err(CompressError::AlreadyCompressed)));
    }
}
