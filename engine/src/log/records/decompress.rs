//! Compressed record batches made readable. Producers may compress a
//! batch's records (gzip, snappy, lz4 or zstd) and the broker stores and
//! serves them as sent; whoever reads the records decompresses them: a
//! consumer, and the broker when it checks a produced batch or seeks by
//! time. Each compressed batch is rewritten as the same batch uncompressed
//! (records decompressed, codec bits cleared, length and CRC-32C
//! recomputed), after its original CRC has been checked, so everything
//! downstream reads one format in place.
//!
//! The codecs' framing is Kafka's: gzip streams, snappy either raw or in
//! the xerial framing the Java client writes, LZ4 frames, zstd frames. A
//! batch that would decompress to more than `BATCH_SIZE_BYTES_MAX` is
//! refused, so a small hostile batch cannot make its reader allocate
//! without bound. The codecs are pure Rust crates: nothing to link, and
//! nothing that reads the ambient world.

use crate::log::batch::{
    validate_batch, BatchError, BATCH_HEADER_BYTES, BATCH_SIZE_BYTES_MAX, CRC_START, LOG_OVERHEAD_BYTES,
};
use std::io::Read;
use thiserror::Error;

/// The compression bits of a batch's attributes.
const COMPRESSION_MASK: u8 = 0x07;
/// Offset of the attributes (i16) in a v2 batch.
const ATTRIBUTES_AT: usize = CRC_START;
/// The stream header of snappy-java's framing (xerial): magic, then a
/// version and a compatible version (i32 each), then blocks, each a
/// big-endian i32 length and a raw snappy block.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;

#[derive(Debug, Error)]
pub enum DecompressError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("{codec} records do not decompress: {reason}")]
    Corrupt { codec: &'static str, reason: String },
    #[error("{codec} records decompress to more than {max} bytes")]
    TooLarge { codec: &'static str, max: usize },
}

/// `batch` (one whole v2 batch, compressed) as the same batch uncompressed.
pub fn uncompressed(batch: &[u8]) -> Result<Vec<u8>, DecompressError> {
    let header = validate_batch(batch)?;
    let records = &batch[BATCH_HEADER_BYTES..];
    let max = BATCH_SIZE_BYTES_MAX - BATCH_HEADER_BYTES;
    let codec = header.compression();
    let name = codec_name(codec).ok_or(DecompressError::UnknownCodec(codec))?;
    let corrupt = |reason: String| DecompressError::Corrupt { codec: name, reason };
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + records.len() * 2);
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    match codec {
        1 => read_capped(flate2::read::MultiGzDecoder::new(records), &mut out, max, name)?,
        2 if records.starts_with(&XERIAL_MAGIC) => xerial(records, &mut out, max)?,
        2 => snappy_block(records, &mut out, max)?,
        3 => read_capped(lz4_flex::frame::FrameDecoder::new(records), &mut out, max, name)?,
        _ => {
            // A stream may hold several frames, one after another.
            let mut rest = records;
            while !rest.is_empty() {
                let frame =
                    ruzstd::decoding::StreamingDecoder::new(&mut rest).map_err(|e| corrupt(e.to_string()))?;
                let room = max.saturating_sub(out.len() - BATCH_HEADER_BYTES);
                read_capped(frame, &mut out, room, name)?;
            }
        }
    }
    let length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES).expect("capped below i32::MAX");
    out[LOG_OVERHEAD_BYTES - 4..LOG_OVERHEAD_BYTES].copy_from_slice(&length.to_be_bytes());
    out[ATTRIBUTES_AT + 1] &= !COMPRESSION_MASK;
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
    debug_assert!(validate_batch(&out).is_ok_and(|h| h.compression() == 0));
    Ok(out)
}

fn codec_name(codec: u8) -> Option<&'static str> {
    match codec {
        1 => Some("gzip"),
        2 => Some("snappy"),
        3 => Some("lz4"),
        4 => Some("zstd"),
        _ => None,
    }
}

/// Appends what `reader` yields to `out`, at most `max` bytes of it.
fn read_capped(
    reader: impl Read,
    out: &mut Vec<u8>,
    max: usize,
    codec: &'static str,
) -> Result<(), DecompressError> {
    let start = out.len();
    reader
        .take(max as u64 + 1)
        .read_to_end(out)
        .map_err(|e| DecompressError::Corrupt { codec, reason: e.to_string() })?;
    if out.len() - start > max {
        return Err(DecompressError::TooLarge { codec, max });
    }
    Ok(())
}

/// One raw snappy block; its header states its length, checked first.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), DecompressError> {
    let corrupt = |e: snap::Error| DecompressError::Corrupt { codec: "snappy", reason: e.to_string() };
    let len = snap::raw::decompress_len(block).map_err(corrupt)?;
    let used = out.len() - BATCH_HEADER_BYTES;
    if used + len > max {
        return Err(DecompressError::TooLarge { codec: "snappy", max });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(corrupt)?;
    out.truncate(start + written);
    Ok(())
}

/// snappy-java's framing: a header, then length-prefixed raw blocks.
fn xerial(stream: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), DecompressError> {
    let corrupt = |reason: &str| DecompressError::Corrupt { codec: "snappy", reason: reason.to_owned() };
    let mut rest = stream.get(XERIAL_HEADER_BYTES..).ok_or_else(|| corrupt("truncated xerial header"))?;
    while !rest.is_empty() {
        let (len, after) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("truncated block length"))?;
        let len = usize::try_from(i32::from_be_bytes(*len)).map_err(|_| corrupt("negative block length"))?;
        let block = after.get(..len).ok_or_else(|| corrupt("truncated block"))?;
        snappy_block(block, out, max)?;
        rest = &after[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::{decode_records, BatchBuilder};
    use bytes::Bytes;
    use std::io::Write;

    /// A batch of `values` whose records section is replaced by `compress`'s
    /// output and flagged with `codec`, as a compressing producer sends it.
    fn compressed_batch(values: &[&str], codec: u8, compress: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut builder = BatchBuilder::new(0, 1000);
        for v in values {
            builder.push(None, Some(Bytes::copy_from_slice(v.as_bytes())), 1000);
        }
        let plain = builder.build();
        let mut out = plain[..BATCH_HEADER_BYTES].to_vec();
        out.extend_from_slice(&compress(&plain[BATCH_HEADER_BYTES..]));
        let length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
        out[8..12].copy_from_slice(&length.to_be_bytes());
        out[ATTRIBUTES_AT + 1] |= codec;
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn values_of(batch: &[u8]) -> Vec<String> {
        let (header, records) = decode_records(batch).expect("an uncompressed, valid batch");
        assert_eq!(header.compression(), 0);
        records.iter().map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()).collect()
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn snappy_raw(b: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(b).unwrap()
    }

    /// The framing the Java client writes: the header, then blocks.
    fn snappy_xerial(b: &[u8]) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for chunk in b.chunks(7) {
            let block = snappy_raw(chunk);
            out.extend_from_slice(&(block.len() as i32).to_be_bytes());
            out.extend_from_slice(&block);
        }
        out
    }

    fn lz4(b: &[u8]) -> Vec<u8> {
        let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn zstd(b: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(b, ruzstd::encoding::CompressionLevel::Fastest)
    }

    #[test]
    fn every_codec_round_trips() {
        let values = ["one", "two", "three and more"];
        type Compress = fn(&[u8]) -> Vec<u8>;
        let codecs: [(u8, Compress); 5] =
            [(1, gzip), (2, snappy_raw), (2, snappy_xerial), (3, lz4), (4, zstd)];
        for (codec, compress) in codecs {
            let batch = compressed_batch(&values, codec, compress);
            let plain = uncompressed(&batch).unwrap_or_else(|e| panic!("codec {codec}: {e}"));
            assert_eq!(values_of(&plain), values, "codec {codec}");
        }
    }

    #[test]
    fn zstd_streams_of_several_frames_are_read_whole() {
        let batch = compressed_batch(&["a", "b"], 4, |b| {
            let (first, second) = b.split_at(b.len() / 2);
            [zstd(first), zstd(second)].concat()
        });
        assert_eq!(values_of(&uncompressed(&batch).unwrap()), ["a", "b"]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        // Garbage flagged as each codec, with a valid CRC over it (snappy
        // reads a huge length from it, refused before any allocation).
        for codec in 1..=4 {
            let batch = compressed_batch(&["x"], codec, |_| vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
            let result = uncompressed(&batch);
            assert!(
                matches!(result, Err(DecompressError::Corrupt { .. } | DecompressError::TooLarge { .. })),
                "codec {codec}: {result:?}"
            );
        }
        let batch = compressed_batch(&["x"], 5, |b| b.to_vec());
        assert!(matches!(uncompressed(&batch), Err(DecompressError::UnknownCodec(5))));
        // The original CRC is checked before anything is decompressed.
        let mut batch = compressed_batch(&["x"], 1, gzip);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(uncompressed(&batch), Err(DecompressError::Batch(BatchError::BadCrc { .. }))));
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let huge = vec![0u8; BATCH_SIZE_BYTES_MAX + 1];
        let batch = compressed_batch(&["x"], 1, |_| gzip(&huge));
        assert!(batch.len() < 1 << 20, "the bomb is small: {} bytes", batch.len());
        assert!(matches!(uncompressed(&batch), Err(DecompressError::TooLarge { codec: "gzip", .. })));
        let snappy_bomb = compressed_batch(&["x"], 2, |_| snappy_raw(&huge));
        assert!(matches!(uncompressed(&snappy_bomb), Err(DecompressError::TooLarge { codec: "snappy", .. })));
    }
}
