//! Retention: whole segments past `retention.ms` or beyond
//! `retention.bytes` are deleted, oldest first (the active one after a roll,
//! as Kafka does); and delete-records-before, which moves the log start
//! offset.

use super::error::LogError;
use super::partition_log::Log;
use super::segment;
use crate::io::Disk;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start_offset: u64,
}

impl<D: Disk> Log<D> {
    /// Deletes the segments that retention no longer keeps.
    pub async fn apply_retention(&self) -> Result<RetentionOutcome, LogError> {
        self.apply_retention_below(u64::MAX).await
    }

    /// As `apply_retention`, deleting only segments wholly below `bound`:
    /// a replicated partition's high watermark, as in Kafka, so a leader
    /// never deletes records its followers have yet to copy (they would
    /// have to skip them) and a log start never passes what is committed.
    ///
    /// The active segment goes too once it holds data that retention no
    /// longer keeps (Kafka's rule: a quiet topic's last records expire on
    /// time, not when `segment.ms` rolls them): a new, empty active segment
    /// is rolled first, and the log start moves to the log end.
    pub async fn apply_retention_below(&self, bound: u64) -> Result<RetentionOutcome, LogError> {
        let _writer = self.writer.lock().await;
        self.check_maintainable()?;
        let now_ms = self.clock.now_ms();
        // A compacted-only log keeps its segments (the cleaner shrinks
        // them); only what lies below the log start goes.
        let deletes = self.config().cleanup_policy.deletes();
        let (count, all) = {
            let st = self.state();
            let mut total: u64 = st.segments.iter().map(|s| s.size_bytes).sum();
            let last = st.segments.len() - 1;
            let count = st
                .segments
                .iter()
                .enumerate()
                .take_while(|(i, seg)| *i < last || !seg.is_empty())
                .map(|(_, seg)| seg)
                .take_while(|seg| seg.next_offset <= bound)
                .take_while(|seg| {
                    let below_start = seg.next_offset <= st.log_start_offset;
                    // A segment whose timestamps are unknown (damage kept by
                    // recovery, never scanned) is not "infinitely old": time
                    // retention must not delete the records it still holds.
                    let known = seg.index.max_timestamp != i64::MIN;
                    let expired = deletes
                        && self.config().retention_ms.is_some_and(|r| {
                            seg.is_empty() || (known && now_ms.saturating_sub(seg.index.max_timestamp) > r)
                        });
                    let oversized =
                        deletes && self.config().retention_bytes.is_some_and(|r| total - seg.size_bytes >= r);
                    let doomed = below_start || expired || oversized;
                    if doomed {
                        total -= seg.size_bytes;
                    }
                    doomed
                })
                .count();
            (count, count == st.segments.len())
        };
        if all {
            let guard = self.poison_guard();
            let rolled = self.roll_locked().await;
            guard.disarm();
            self.poison_on_err(rolled)?;
        }
        self.delete_oldest(count).await
    }

    /// Makes `offset` the new log start offset (if it is higher): records
    /// below it are no longer served, and whole segments below it are
    /// deleted. The owner must persist the new start (the checkpoint file).
    pub async fn delete_records_before(&self, offset: u64) -> Result<RetentionOutcome, LogError> {
        let _writer = self.writer.lock().await;
        self.check_maintainable()?;
        let count = {
            let mut st = self.state();
            let end = st.log_end_offset();
            if offset > end {
                let start = st.log_start_offset;
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: start,
                    log_end_offset: end,
                });
            }
            st.log_start_offset = st.log_start_offset.max(offset);
            let start = st.log_start_offset;
            let sealed = &st.segments[..st.segments.len() - 1];
            sealed.iter().take_while(|s| s.next_offset <= start).count()
        };
        self.delete_oldest(count).await
    }

    /// Drops the `count` oldest segments from the log, then their files.
    /// Readers already holding a segment's file finish their read.
    async fn delete_oldest(&self, count: usize) -> Result<RetentionOutcome, LogError> {
        let (doomed, outcome) = {
            let mut st = self.state();
            debug_assert!(count < st.segments.len(), "the active segment is never deleted");
            let doomed: Vec<_> = st.segments.drain(..count).collect();
            let first_base = st.segments[0].base_offset;
            st.log_start_offset = st.log_start_offset.max(first_base);
            st.check_invariants();
            let outcome = RetentionOutcome {
                segments_deleted: doomed.len(),
                bytes_deleted: doomed.iter().map(|s| s.size_bytes).sum(),
                log_start_offset: st.log_start_offset,
            };
            (doomed, outcome)
        };
        if doomed.is_empty() {
            return Ok(outcome);
        }
        // Oldest first, each removal made durable before the next: a crash
        // may leave a prefix of the deletions undone, never a segment older
        // than a deleted one (which would leave a gap in the offsets).
        let mut doomed = doomed.into_iter();
        while let Some(seg) = doomed.next() {
            self.cache.remove_segment(seg.base_offset);
            let removed = match segment::remove_files(self.disk.as_ref(), &self.dir, seg.base_offset).await {
                Ok(()) => self.disk.sync_dir(&self.dir).await,
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                // The segments not surely gone go back into the log, below
                // its start, where the next retention pass retries them.
                // Forgotten, their files would outlive newer deletions and
                // reappear after a restart as a gap at the log start.
                let mut st = self.state();
                let kept: Vec<_> = std::iter::once(seg).chain(doomed).collect();
                st.segments.splice(..0, kept);
                st.check_invariants();
                return Err(e.into());
            }
        }
        tracing::info!(
            dir = %self.dir.display(),
            segments = outcome.segments_deleted,
            bytes = outcome.bytes_deleted,
            log_start_offset = outcome.log_start_offset,
            "deleted old segments"
        );
        Ok(outcome)
    }
}
