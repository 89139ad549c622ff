//! Fetched record batches read in place: keys, values and headers are
//! slices of the response frame, never copies, so a consumer pays per byte
//! only for the CRC-32C check of each batch (which it must not skip: it is
//! what catches a corrupt batch on disk or on the wire).
//!
//! Here the fetched bytes are split into whole batches; each batch's
//! records are read by the engine's decoder (`ringtail_engine::log::records`),
//! which borrows them and treats its input as hostile.

use ringtail_engine::log::batch::{BatchError, BatchHeader};
use ringtail_engine::log::records::{iter_records, RecordsError};

pub use ringtail_engine::log::records::{RecordIter, RecordRef};

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
    /// its records one at a time, in place.
    pub fn records(&self) -> Result<RecordIter<'a>, RecordsError> {
        iter_records(self.bytes).map(|(_, records)| records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ringtail_engine::log::batch::set_base_offset;
    use ringtail_engine::log::records::BatchBuilder;

    fn batch(base_offset: u64, values: &[&'static [u8]]) -> Vec<u8> {
        let mut b = BatchBuilder::new(0, 1000);
        for v in values {
            b.push(None, Some(Bytes::from_static(v)), 1000);
        }
        let mut bytes = b.build().to_vec();
        set_base_offset(&mut bytes, base_offset);
        bytes
    }

    /// A whole batch is found, the next offset is past it, and its records
    /// read at their absolute offsets as slices of the fetched bytes.
    #[test]
    fn whole_batches_read_in_place() {
        let bytes = batch(40, &[b"a", b"b", b"c"]);
        let batches: Vec<_> = Batches::new(&bytes).collect::<Result<_, _>>().expect("whole");
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].next_offset(), 43);
        let records: Vec<RecordRef<'_>> =
            batches[0].records().expect("checked").collect::<Result<_, _>>().expect("records");
        let read: Vec<_> = records.iter().map(|r| (r.offset, r.value)).collect();
        assert_eq!(read, [(40, Some(&b"a"[..])), (41, Some(&b"b"[..])), (42, Some(&b"c"[..]))]);
        let value = records[0].value.expect("value");
        assert!(bytes.as_ptr_range().contains(&value.as_ptr()), "copied, not borrowed");
    }

    /// A cut-off last batch ends the batches quietly; a corrupt one is an
    /// error when its records are read, not before.
    #[test]
    fn partial_tails_end_and_corruption_is_caught() {
        let mut bytes = batch(0, &[b"a"]);
        let first = bytes.len();
        let second = batch(1, &[b"b"]);
        bytes.extend(&second[..second.len() - 3]);
        let mut batches = Batches::new(&bytes);
        assert!(batches.next().expect("first").is_ok());
        assert!(batches.next().is_none());
        assert_eq!(batches.position(), first);

        let mut corrupt = batch(0, &[b"a"]);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let batch = Batches::new(&corrupt).next().expect("one").expect("header is fine");
        assert!(matches!(batch.records().err(), Some(RecordsError::Batch(BatchError::BadCrc { .. }))));

        let mut bad_magic = corrupt.clone();
        bad_magic[16] = 1;
        assert!(matches!(Batches::new(&bad_magic).next(), Some(Err(BatchError::BadMagic(1)))));
    }

    /// No prefix of fetched bytes panics: whatever whole batches it holds
    /// are found and read, and the cut one is left for the next fetch.
    #[test]
    fn every_prefix_is_read_or_left() {
        let mut bytes = batch(5, &[b"key", b"value"]);
        bytes.extend(batch(7, &[b"more"]));
        for cut in 0..bytes.len() {
            let mut batches = Batches::new(&bytes[..cut]);
            for batch in batches.by_ref() {
                let records = batch.expect("a valid prefix").records().expect("whole and checked");
                let read: Vec<_> = records.collect::<Result<_, _>>().expect("valid records");
                assert!(!read.is_empty());
            }
            assert!(batches.position() <= cut);
        }
    }
}
