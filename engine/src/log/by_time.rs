//! Reads by timestamp, as Kafka's ListOffsets answers them: the offset of
//! the first *record* whose timestamp is at or after a time, not of the
//! batch around it (a producer that batches 100 records would otherwise
//! get an answer up to 100 offsets early).
//!
//! Each segment's time index points near the first batch whose largest
//! timestamp reaches the time; the scan goes on from there batch by batch,
//! and a batch that reaches it is read record by record (decompressed when
//! it is compressed). Records need not be in time order, so a batch whose
//! largest timestamp reaches the time may still hold no record that does
//! (when its header's max is wrong: the leader corrects it on produce, but
//! older data may carry one), and the scan then goes on.

use super::batch::BatchHeader;
use super::error::ReadError;
use super::partition_log::Log;
use super::read::{view_of, SegmentView};
use super::records::{decompress, iter_records};
use super::segment::{self, OffsetCheck, ScannedBatch, Segment};
use crate::io::{Disk, DiskFile};
use std::ops::ControlFlow;

impl<D: Disk> Log<D> {
    /// The first record at or after the log start whose timestamp is at
    /// least `timestamp`, as `(offset, its timestamp)`; `None` if every
    /// record is older.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>, ReadError> {
        let candidates: Vec<SegmentView<D::File>> = {
            let st = self.state();
            st.segments
                .iter()
                .filter(|s| {
                    !s.is_empty() && s.index.max_timestamp >= timestamp && s.next_offset > st.log_start_offset
                })
                .map(|s| view_of(s, s.index.lookup_time(timestamp).max(st.log_start_offset)))
                .collect()
        };
        let log_start = self.log_start_offset();
        for mut view in candidates {
            let file = match view.file.file(self.disk.as_ref()).await {
                Ok(file) => file,
                // Deleted by retention since the lock was let go: its
                // records are below the log start now.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let file = file.as_ref();
            let (mut position, mut check) = (view.start_position, OffsetCheck::Exactly(view.start_offset));
            loop {
                let mut reaches = None;
                let visit = |b: ScannedBatch| {
                    if b.header.max_timestamp >= timestamp && b.header.last_offset() >= log_start {
                        reaches = Some(b);
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                };
                let (end, stop) = segment::scan(file, position, view.size_bytes, check, visit).await?;
                if let Some(batch) = reaches {
                    if let Some(found) = self.first_record_at(file, &batch, timestamp, log_start).await? {
                        return Ok(Some(found));
                    }
                    (position, check) = (end, OffsetCheck::Exactly(batch.header.next_offset()));
                    continue;
                }
                match stop {
                    None => break,
                    Some(_) if end == view.start_position && end > 0 && position == view.start_position => {
                        // The index pointed at no batch: scan from the start.
                        (position, check) = (0, OffsetCheck::Exactly(view.base_offset));
                    }
                    Some(stop) => {
                        let segment = Segment::<D::File>::log_path(&self.dir, view.base_offset);
                        return Err(ReadError::Corrupt { segment, position: end, error: stop.into_error() });
                    }
                }
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the first record holding the log's
    /// largest timestamp (ListOffsets' MAX_TIMESTAMP), from the segments'
    /// time indexes; `None` for an empty log. A segment's largest may lie
    /// below a log start moved into it (DeleteRecords), and is then not
    /// found: as in Kafka, the answer is looked for among the segments'
    /// maxima only.
    pub async fn offset_of_max_timestamp(&self) -> Result<Option<(u64, i64)>, ReadError> {
        let max = {
            let st = self.state();
            let live = st.segments.iter().filter(|s| !s.is_empty() && s.next_offset > st.log_start_offset);
            live.map(|s| s.index.max_timestamp).max()
        };
        match max {
            Some(max) => self.offset_for_timestamp(max).await,
            None => Ok(None),
        }
    }

    /// The first record of `batch` at or after `log_start` with a timestamp
    /// of at least `timestamp`.
    async fn first_record_at(
        &self,
        file: &D::File,
        batch: &ScannedBatch,
        timestamp: i64,
        log_start: u64,
    ) -> Result<Option<(u64, i64)>, ReadError> {
        let header: &BatchHeader = &batch.header;
        let bytes = file.read_at(batch.position, header.size_bytes()).await?;
        let plain;
        let bytes = if header.compression() == 0 {
            &bytes[..]
        } else {
            match decompress::uncompressed(&bytes) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(error) => return Ok(self.whole_batch_answer(header, log_start, &error)),
            }
        };
        let records = match iter_records(bytes) {
            Ok((_, records)) => records,
            Err(error) => return Ok(self.whole_batch_answer(header, log_start, &error)),
        };
        for record in records {
            let record = match record {
                Ok(record) => record,
                Err(error) => return Ok(self.whole_batch_answer(header, log_start, &error)),
            };
            if record.timestamp_ms >= timestamp && record.offset >= log_start as i64 {
                return Ok(Some((record.offset as u64, record.timestamp_ms)));
            }
        }
        Ok(None)
    }

    /// The answer for a batch whose records cannot be read (its CRC holds,
    /// so it was written that way, before the leader checked records): the
    /// batch itself, as a consumer seeking there will find out.
    fn whole_batch_answer(
        &self,
        header: &BatchHeader,
        log_start: u64,
        error: &dyn std::fmt::Display,
    ) -> Option<(u64, i64)> {
        tracing::warn!(
            dir = %self.dir.display(),
            base_offset = header.base_offset,
            %error,
            "a batch's records do not decode; seeking by time to the batch"
        );
        Some(((header.base_offset as u64).max(log_start), header.max_timestamp))
    }
}
