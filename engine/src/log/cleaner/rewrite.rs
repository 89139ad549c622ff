//! Reading a segment's batches in order, and writing a group of segments'
//! batches again with only the records compaction keeps.

use super::super::batch::{BatchError, BatchHeader, BatchScanner};
use super::super::index::SegmentIndex;
use super::super::records::{compress, decompress, iter_records, BatchBuilder, Record};
use super::{KeyMap, Pacer};
use crate::io::DiskFile;
use bytes::Bytes;
use std::io;

/// Bytes read from a segment at a time.
const READ_BYTES: usize = 1 << 20;
/// Cleaned bytes gathered before a write.
const WRITE_BYTES: usize = 1 << 20;

/// Reads the batches of one sealed segment from its start, in order.
pub struct BatchReader<'a, F> {
    file: &'a F,
    pacer: &'a dyn Pacer,
    size: u64,
    position: u64,
    buf: Bytes,
    at: usize,
}

impl<'a, F: DiskFile> BatchReader<'a, F> {
    pub fn new(file: &'a F, size: u64, pacer: &'a dyn Pacer) -> Self {
        BatchReader { file, pacer, size, position: 0, buf: Bytes::new(), at: 0 }
    }

    /// The next batch and its position; `None` at the segment's end. A
    /// batch that does not parse is an error: sealed segments were checked
    /// when written or recovered.
    pub async fn next(&mut self) -> io::Result<Option<(u64, BatchHeader, Bytes)>> {
        loop {
            let rest = &self.buf[self.at..];
            if let Some(Ok((_, header))) = BatchScanner::new(rest).next() {
                let size = header.size_bytes();
                let batch = self.buf.slice(self.at..self.at + size);
                let position = self.position + self.at as u64;
                self.at += size;
                return Ok(Some((position, header, batch)));
            }
            self.position += self.at as u64;
            if self.position >= self.size {
                return Ok(None);
            }
            let need = match BatchHeader::parse(rest) {
                Ok(header) if header.size_bytes() <= rest.len() => {
                    return Err(corrupt(self.position, "CRC mismatch".into()));
                }
                Ok(header) => header.size_bytes(),
                Err(BatchError::Incomplete { .. }) => 0,
                Err(e) => return Err(corrupt(self.position, e.to_string())),
            };
            let len = READ_BYTES.max(need).min((self.size - self.position) as usize);
            if len <= rest.len() {
                return Err(corrupt(self.position, "a batch runs past the segment's end".into()));
            }
            self.pacer.pace(len as u64).await;
            self.buf = self.file.read_at(self.position, len).await?;
            self.at = 0;
            if self.buf.len() < len {
                return Err(corrupt(self.position, "segment shorter than its size".into()));
            }
        }
    }
}

fn corrupt(position: u64, why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cleaning: bad batch at position {position}: {why}"))
}

/// A batch's records, decompressed if need be.
pub fn records_of(batch: &[u8]) -> io::Result<(BatchHeader, Vec<Record>)> {
    let uncompressed;
    let plain = match BatchHeader::parse(batch).map(|h| h.compression()) {
        Ok(0) => batch,
        _ => {
            uncompressed = decompress::uncompressed(batch).map_err(|e| corrupt(0, e.to_string()))?;
            &uncompressed[..]
        }
    };
    let (header, iter) = iter_records(plain).map_err(|e| corrupt(0, e.to_string()))?;
    let records: Result<Vec<Record>, _> = iter.map(|r| r.map(|r| r.to_record())).collect();
    Ok((header, records.map_err(|e| corrupt(0, e.to_string()))?))
}

/// What cleaning decides for each record.
pub struct Keep<'a> {
    pub map: &'a KeyMap,
    /// Tombstones below this offset whose batch is older than
    /// `tombstone_horizon_ms` go: they were in the cleaned part of the log
    /// before this pass, so consumers had `delete.retention.ms` to see them.
    pub tombstones_cleaned_below: u64,
    pub tombstone_horizon_ms: i64,
}

impl Keep<'_> {
    fn record(&self, header: &BatchHeader, record: &Record) -> bool {
        let Some(key) = &record.key else {
            // Kafka's cleaner drops records without a key: a compacted
            // topic refuses them, so only a topic turned compacted has any.
            return false;
        };
        let offset = record.offset(header) as u64;
        if self.map.latest(key).is_some_and(|latest| latest > offset) {
            return false;
        }
        let expired_tombstone = record.value.is_none()
            && offset < self.tombstones_cleaned_below
            && header.max_timestamp < self.tombstone_horizon_ms;
        !expired_tombstone
    }
}

/// The cleaned copy of a group of segments being written: kept batches as
/// they were, batches that lost records rewritten, and each run of batches
/// that lost all of them replaced by one empty batch over the same offsets,
/// so the segment covers exactly the offsets the group did.
pub struct GroupWriter<'a, F> {
    file: &'a F,
    pacer: &'a dyn Pacer,
    pub index: SegmentIndex,
    pub size: u64,
    pending: Vec<u8>,
    /// Offsets `[start, end)` of removed batches not yet written, and the
    /// leader epoch of the first: epochs never go down along a log (a
    /// follower copying it refuses one that does), and the run's empty
    /// batch carries it.
    gap: Option<(u64, u64, i32)>,
    pub next_offset: u64,
    pub records_removed: u64,
}

impl<'a, F: DiskFile> GroupWriter<'a, F> {
    pub fn new(file: &'a F, index: SegmentIndex, base_offset: u64, pacer: &'a dyn Pacer) -> Self {
        GroupWriter {
            file,
            pacer,
            index,
            size: 0,
            pending: Vec::new(),
            gap: None,
            next_offset: base_offset,
            records_removed: 0,
        }
    }

    /// Adds one batch of the group, keeping what `keep` keeps.
    pub async fn add(&mut self, header: &BatchHeader, batch: &Bytes, keep: &Keep<'_>) -> io::Result<()> {
        if header.base_offset as u64 != self.next_offset {
            let why =
                format!("batch at offset {} where {} was expected", header.base_offset, self.next_offset);
            return Err(corrupt(self.size, why));
        }
        self.next_offset = header.next_offset();
        if header.is_control() || header.record_count == 0 {
            return self.put(header, batch.clone()).await;
        }
        let (_, records) = records_of(batch)?;
        let total = records.len();
        let kept: Vec<Record> = records.into_iter().filter(|r| keep.record(header, r)).collect();
        self.records_removed += (total - kept.len()) as u64;
        if kept.is_empty() {
            let (start, epoch) = self
                .gap
                .map_or((header.base_offset as u64, header.partition_leader_epoch), |(start, _, epoch)| {
                    (start, epoch)
                });
            self.gap = Some((start, header.next_offset(), epoch));
            return Ok(());
        }
        if kept.len() == total {
            return self.put(header, batch.clone()).await;
        }
        let mut builder = BatchBuilder::new(header.base_offset, header.base_timestamp);
        builder.partition_leader_epoch = header.partition_leader_epoch;
        builder.producer_id = header.producer_id;
        builder.producer_epoch = header.producer_epoch;
        builder.base_sequence = header.base_sequence;
        builder.attributes = header.attributes;
        builder.keep_range = Some((header.last_offset_delta, header.max_timestamp));
        for record in kept {
            builder.push_record(record);
        }
        // With the codec it came with, as Kafka's cleaner writes it.
        let rebuilt = match header.compression() {
            0 => builder.build(),
            codec => Bytes::from(
                compress::compressed(&builder.build(), codec).map_err(|e| corrupt(0, e.to_string()))?,
            ),
        };
        let rebuilt_header = BatchHeader::parse(&rebuilt).map_err(|e| corrupt(0, e.to_string()))?;
        self.put(&rebuilt_header, rebuilt).await
    }

    /// Writes out what is pending; the group's cleaned copy is then whole
    /// (not yet durable).
    pub async fn finish(&mut self) -> io::Result<()> {
        self.close_gap().await?;
        self.flush().await
    }

    async fn put(&mut self, header: &BatchHeader, batch: Bytes) -> io::Result<()> {
        self.close_gap().await?;
        self.index.observe(header, self.size);
        self.size += batch.len() as u64;
        self.pending.extend_from_slice(&batch);
        if self.pending.len() >= WRITE_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the removed run as empty batches (one per `i32` of offsets).
    async fn close_gap(&mut self) -> io::Result<()> {
        let Some((mut start, end, epoch)) = self.gap.take() else { return Ok(()) };
        while start < end {
            let span = (end - start).min(i32::MAX as u64);
            let mut filler = BatchBuilder::new(start as i64, -1);
            filler.partition_leader_epoch = epoch;
            filler.keep_range = Some(((span - 1) as i32, -1));
            let bytes = filler.build();
            let header = BatchHeader::parse(&bytes).map_err(|e| corrupt(0, e.to_string()))?;
            self.index.observe(&header, self.size);
            self.size += bytes.len() as u64;
            self.pending.extend_from_slice(&bytes);
            start += span;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let at = self.size - self.pending.len() as u64;
        self.pacer.pace(self.pending.len() as u64).await;
        self.file.write_at(at, Bytes::from(std::mem::take(&mut self.pending))).await
    }
}
