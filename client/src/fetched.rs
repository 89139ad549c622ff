//! One partition's answer to a fetch with its records still encoded, as
//! the response brought them: `FetchedBatches`. A consumer reads the
//! records in place (`records`), or decodes them into `ConsumedRecord`s
//! (`decode`) whose keys and values still share the response's memory.
//!
//! Where the next fetch starts is known from the batch headers alone, so a
//! consumer can ask for the next records before it reads these.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::PartitionData;
use ringtail_engine::log::records::{decompress, RecordsError};

use super::error::{ClientError, Result};
use super::fetch::{ConsumedRecord, FetchPosition, PartitionFetch};
use super::records::{Batches, RecordIter, RecordRef};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBatches {
    pub topic: String,
    pub partition: i32,
    /// The offset asked for; the first batch may begin before it.
    pub fetch_offset: i64,
    /// Whole batches only: a last batch the broker cut short to respect
    /// the size limits is left out, to be fetched whole from `next_offset`.
    /// Compressed batches are here decompressed (see `decompress`), so
    /// every batch reads in place.
    pub bytes: Bytes,
    /// Where to fetch next: past every whole batch returned, even those
    /// with no records to show (transaction markers, records before the
    /// fetch offset).
    pub next_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl FetchedBatches {
    /// Keeps the whole batches of `data`'s records, their headers checked.
    pub(crate) fn new(topic: &str, position: FetchPosition, data: &PartitionData) -> Result<FetchedBatches> {
        let records = data.records.clone().unwrap_or_default();
        let mut next_offset = position.offset;
        // Once a compressed batch turns up: the batches so far, then each
        // one uncompressed (see `decompress`). Until then nothing is copied.
        let mut rewritten: Option<Vec<u8>> = None;
        let mut batches = Batches::new(&records);
        loop {
            let start = batches.position();
            let batch = match batches.next() {
                None => break,
                Some(Ok(batch)) => batch,
                Some(Err(e)) => {
                    return Err(records_error(topic, position.partition, next_offset, RecordsError::Batch(e)))
                }
            };
            next_offset = next_offset.max(batch.next_offset());
            if batch.header.compression() != 0 {
                let plain =
                    decompress::uncompressed(batch.bytes()).map_err(|source| ClientError::Decompress {
                        topic: topic.to_owned(),
                        partition: position.partition,
                        offset: batch.header.base_offset,
                        source,
                    })?;
                rewritten.get_or_insert_with(|| records[..start].to_vec()).extend_from_slice(&plain);
            } else if let Some(out) = &mut rewritten {
                out.extend_from_slice(batch.bytes());
            }
        }
        let bytes = rewritten.map_or_else(|| records.slice(..batches.position()), Bytes::from);
        Ok(FetchedBatches {
            topic: topic.to_owned(),
            partition: position.partition,
            fetch_offset: position.offset,
            bytes,
            next_offset,
            high_watermark: data.high_watermark,
            log_start_offset: data.log_start_offset,
        })
    }

    /// Nothing fetched: the next fetch starts where this one did.
    pub(crate) fn empty(topic: &str, position: FetchPosition) -> FetchedBatches {
        FetchedBatches {
            topic: topic.to_owned(),
            partition: position.partition,
            fetch_offset: position.offset,
            bytes: Bytes::new(),
            next_offset: position.offset,
            high_watermark: -1,
            log_start_offset: -1,
        }
    }

    pub fn batches(&self) -> Batches<'_> {
        Batches::new(&self.bytes)
    }

    /// The user records at or after the fetch offset, read in place. Each
    /// batch's CRC-32C is checked when the iterator reaches it; the first
    /// error ends the iteration.
    pub fn records(&self) -> PartitionRecords<'_> {
        PartitionRecords { fetched: self, batches: self.batches(), current: None, done: false }
    }

    /// The records as owned values, sharing the fetched bytes (so a record
    /// kept keeps the whole response in memory).
    pub fn decode(&self) -> Result<PartitionFetch> {
        let shared = |slice: &[u8]| self.bytes.slice_ref(slice);
        let records = self
            .records()
            .map(|record| {
                record.map(|r| ConsumedRecord {
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    key: r.key.map(shared),
                    value: r.value.map(shared),
                    headers: r.headers().map(|(k, v)| (k.to_owned(), v.map(shared))).collect(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PartitionFetch {
            partition: self.partition,
            records,
            next_offset: self.next_offset,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
        })
    }
}

/// See `FetchedBatches::records`.
pub struct PartitionRecords<'a> {
    fetched: &'a FetchedBatches,
    batches: Batches<'a>,
    /// The batch being read: its base offset (for errors) and records.
    current: Option<(i64, RecordIter<'a>)>,
    done: bool,
}

impl<'a> Iterator for PartitionRecords<'a> {
    type Item = Result<RecordRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let f = self.fetched;
        while !self.done {
            if let Some((base_offset, records)) = &mut self.current {
                match records.next() {
                    // A batch may begin before the offset asked for.
                    Some(Ok(record)) if record.offset < f.fetch_offset => continue,
                    Some(Ok(record)) => return Some(Ok(record)),
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(records_error(&f.topic, f.partition, *base_offset, e)));
                    }
                    None => self.current = None,
                }
            }
            let batch = match self.batches.next()? {
                Ok(batch) => batch,
                Err(e) => {
                    self.done = true;
                    return Some(Err(records_error(
                        &f.topic,
                        f.partition,
                        f.fetch_offset,
                        RecordsError::Batch(e),
                    )));
                }
            };
            // Transaction markers carry no user records.
            if batch.header.is_control() {
                continue;
            }
            match batch.records() {
                Ok(records) => self.current = Some((batch.header.base_offset, records)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(records_error(&f.topic, f.partition, batch.header.base_offset, e)));
                }
            }
        }
        None
    }
}

fn records_error(topic: &str, partition: i32, offset: i64, source: RecordsError) -> ClientError {
    ClientError::Records { topic: topic.to_owned(), partition, offset, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::PartitionFetch;
    use ringtail_engine::log::batch::set_base_offset;
    use ringtail_engine::log::records::BatchBuilder;

    fn batch(base_offset: u64, values: &[&'static str]) -> Vec<u8> {
        let mut b = BatchBuilder::new(0, 1000);
        for v in values {
            b.push(None, Some(Bytes::from_static(v.as_bytes())), 1000);
        }
        let mut bytes = b.build().to_vec();
        set_base_offset(&mut bytes, base_offset);
        bytes
    }

    fn decode(topic: &str, position: FetchPosition, data: &PartitionData) -> Result<PartitionFetch> {
        FetchedBatches::new(topic, position, data)?.decode()
    }

    fn data(bytes: Vec<u8>) -> PartitionData {
        PartitionData::default().with_high_watermark(99).with_records(Some(Bytes::from(bytes)))
    }

    /// Records before the fetch offset are skipped, a cut-off last batch is
    /// ignored, and the next offset is past the last whole batch.
    #[test]
    fn decodes_batches_skipping_earlier_records_and_partial_tail() {
        let mut bytes = batch(10, &["a", "b", "c"]);
        bytes.extend(batch(13, &["d"]));
        let partial = batch(14, &["e"]);
        bytes.extend(&partial[..partial.len() - 3]);
        let f = decode("t", FetchPosition { partition: 0, offset: 11 }, &data(bytes)).expect("decodes");
        let offsets: Vec<i64> = f.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [11, 12, 13]);
        assert_eq!(f.records[0].value.as_deref(), Some(&b"b"[..]));
        assert_eq!(f.next_offset, 14);
        assert_eq!(f.high_watermark, 99);
    }

    /// The next offset is known before any record is read, the partial
    /// tail is dropped, and values are slices of the fetched bytes.
    #[test]
    fn batches_stay_encoded_until_read() {
        let mut bytes = batch(10, &["a", "b", "c"]);
        let whole = bytes.len();
        let partial = batch(13, &["d"]);
        bytes.extend(&partial[..partial.len() - 1]);
        let fetched = FetchedBatches::new("t", FetchPosition { partition: 3, offset: 12 }, &data(bytes))
            .expect("headers");
        assert_eq!((fetched.next_offset, fetched.bytes.len(), fetched.partition), (13, whole, 3));
        let records: Vec<_> = fetched.records().collect::<Result<_>>().expect("records");
        assert_eq!(records.len(), 1);
        assert_eq!((records[0].offset, records[0].value), (12, Some(&b"c"[..])));
        let decoded = fetched.decode().expect("decodes");
        let value = decoded.records[0].value.clone().expect("value");
        assert!(fetched.bytes.as_ptr_range().contains(&value.as_ptr()));
    }

    /// A compressed batch reads like any other, next to uncompressed ones;
    /// one that does not decompress is an error naming where it is.
    #[test]
    fn compressed_batches_are_read_decompressed() {
        let mut compressed = gzip_batch(&["b", "c"]);
        set_base_offset(&mut compressed, 5);
        let mut bytes = batch(4, &["a"]);
        bytes.extend_from_slice(&compressed);
        let fetched = decode("t", FetchPosition { partition: 2, offset: 4 }, &data(bytes.clone())).unwrap();
        let values: Vec<_> = fetched.records.iter().map(|r| (r.offset, r.value.clone().unwrap())).collect();
        assert_eq!(values, [(4, Bytes::from("a")), (5, Bytes::from("b")), (6, Bytes::from("c"))]);
        assert_eq!(fetched.next_offset, 7);

        // Garbage where the gzip stream was, under a valid CRC.
        let last = bytes.len() - 1;
        bytes[last - 8] ^= 0xff;
        let crc = crc32c_of(&bytes[bytes.len() - compressed.len() + 21..]);
        let at = bytes.len() - compressed.len() + 17;
        bytes[at..at + 4].copy_from_slice(&crc.to_be_bytes());
        let err = decode("t", FetchPosition { partition: 2, offset: 4 }, &data(bytes)).unwrap_err();
        assert!(matches!(err, ClientError::Decompress { offset: 5, partition: 2, .. }), "{err}");
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    #[test]
    fn corrupt_batches_are_errors() {
        let mut bytes = batch(0, &["a"]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let err = decode("t", FetchPosition { partition: 0, offset: 0 }, &data(bytes)).unwrap_err();
        assert!(matches!(err, ClientError::Records { .. }), "{err}");
    }

    fn crc32c_of(bytes: &[u8]) -> u32 {
        crc32c::crc32c(bytes)
    }

    /// A batch of `values` at offset 0 with its records gzipped, as a
    /// compressing producer sends it.
    fn gzip_batch(values: &[&'static str]) -> Vec<u8> {
        use ringtail_engine::log::batch::{BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES};
        use std::io::Write;
        let plain = batch(0, values);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&plain[BATCH_HEADER_BYTES..]).unwrap();
        let mut out = plain[..BATCH_HEADER_BYTES].to_vec();
        out.extend_from_slice(&gzip.finish().unwrap());
        let length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
        out[LOG_OVERHEAD_BYTES - 4..LOG_OVERHEAD_BYTES].copy_from_slice(&length.to_be_bytes());
        out[CRC_START + 1] |= 1;
        let crc = crc32c_of(&out[CRC_START..]);
        out[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
        out
    }
}
