//! Truncation: removing the tail of the log from an offset on, as a follower
//! does when its log diverged from the leader's; and starting over past the
//! end, as a follower does when its leader's log starts beyond it.

use super::error::LogError;
use super::partition_log::Log;
use super::segment::{self, OffsetCheck, Segment};
use crate::io::{Disk, DiskFile, OpenMode};
use std::ops::ControlFlow;

impl<D: Disk> Log<D> {
    /// Removes every batch holding an offset at or above `offset`. A batch
    /// that straddles `offset` goes whole, so the new log end offset may be
    /// below `offset`. Durable when it returns: nothing removed can come back
    /// after a crash. The owner must persist the lowered recovery point
    /// before appending again (`LogManager::truncate_to` does).
    ///
    /// At or past the log end no record goes, but leader epochs starting
    /// there do: a replica that led an epoch without appending to it keeps
    /// that epoch's entry, and the new leader's older-epoch records that
    /// follow must not be refused as going back in time.
    pub async fn truncate_to(&self, offset: u64) -> Result<(), LogError> {
        let _writer = self.writer.lock().await;
        self.check_maintainable()?;
        if offset >= self.log_end_offset() {
            return Ok(self.truncate_epochs(offset).await?);
        }
        let (target, mut file, base, size, from, doomed) = {
            let st = self.state();
            let (start, end) = (st.log_start_offset, st.log_end_offset());
            if offset < start {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: start,
                    log_end_offset: end,
                });
            }
            let target = st.segments.partition_point(|s| s.base_offset <= offset).max(1) - 1;
            let seg = &st.segments[target];
            let doomed: Vec<u64> = st.segments[target + 1..].iter().map(|s| s.base_offset).collect();
            (
                target,
                seg.file.handle(),
                seg.base_offset,
                seg.size_bytes,
                seg.index.lookup_entry(offset),
                doomed,
            )
        };
        let guard = self.poison_guard();
        let result = async {
            let file = file.file(self.disk.as_ref()).await?;
            let mut cut = (size, None::<u64>);
            let (from, from_offset) = from;
            let (_, stop) =
                segment::scan(file.as_ref(), from, size, OffsetCheck::Exactly(from_offset), |b| {
                    if b.header.last_offset() >= offset {
                        cut = (b.position, Some(b.header.base_offset as u64));
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                })
                .await?;
            if let (Some(stop), None) = (stop, cut.1) {
                // Truncating around bytes we cannot parse would guess.
                let error = std::io::Error::other(format!("corrupt segment {base} while truncating: {stop}"));
                return Err(LogError::from(error));
            }
            // The largest timestamp of what stays: the index keeps it up to
            // its last entry before the cut; scan the batches after that.
            let (mut index, rescan_from) = {
                let st = self.state();
                let mut index = st.segments[target].index.clone();
                index.truncate_to_position(cut.0);
                let last = index
                    .offsets
                    .last()
                    .map(|e| (u64::from(e.position), base + u64::from(e.relative_offset)));
                (index, last.unwrap_or((0, base)))
            };
            segment::scan(file.as_ref(), rescan_from.0, cut.0, OffsetCheck::Exactly(rescan_from.1), |b| {
                index.max_timestamp = index.max_timestamp.max(b.header.max_timestamp);
                index.note_bytes(b.header.size_bytes() as u64);
                ControlFlow::Continue(())
            })
            .await?;
            // Before any bytes go: a cache hit must never serve what the log
            // no longer holds, and no append continues a buffer past the cut.
            self.cache.remove_from(base, cut.0);
            *self.write_buf() = None;
            for base in &doomed {
                segment::remove_files(self.disk.as_ref(), &self.dir, *base).await?;
            }
            if !doomed.is_empty() {
                self.disk.sync_dir(&self.dir).await?;
            }
            let (position, new_end) = cut;
            file.set_len(position).await?;
            file.sync_data().await?;
            let tail = segment::load_tail(file.as_ref(), position).await?;
            let new_end = {
                let mut st = self.state();
                st.segments.truncate(target + 1);
                let seg = &mut st.segments[target];
                // It takes the appends now.
                seg.file.reactivate(file.clone());
                let new_end = new_end.unwrap_or(seg.next_offset);
                seg.size_bytes = position;
                seg.tail = tail;
                seg.next_offset = new_end;
                seg.index = index;
                if position == 0 {
                    seg.first_batch_ms = None;
                }
                st.flushed_offset = st.flushed_offset.min(new_end);
                // The batch holding the log start may have gone whole: the log is
                // then empty and starts at its end, as in Kafka.
                st.log_start_offset = st.log_start_offset.min(new_end);
                st.check_invariants();
                new_end
            };
            // Again once readers see the cut: a read ahead that took the
            // segment before it (read.rs) is not cached now.
            self.cache.remove_from(base, position);
            self.truncate_epochs(new_end).await?;
            tracing::info!(dir = %self.dir.display(), offset, log_end_offset = new_end, "truncated log");
            Ok(())
        }
        .await;
        guard.disarm();
        self.poison_on_err(result)
    }

    /// Empties the log and starts it again, empty, at `offset` (at or past
    /// its end): a follower whose leader's log now starts beyond all it
    /// holds (retention deleted what it would fetch next) can only start
    /// over there, as Kafka's `truncateFullyAndStartAt` does. Durable when it
    /// returns; the owner persists the new log start and recovery point
    /// before appending (`LogManager::restart_at` does).
    pub async fn restart_at(&self, offset: u64) -> Result<(), LogError> {
        let _writer = self.writer.lock().await;
        self.check_maintainable()?;
        let bases: Vec<u64> = {
            let st = self.state();
            let (start, end) = (st.log_start_offset, st.log_end_offset());
            if offset < end {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: start,
                    log_end_offset: end,
                });
            }
            st.segments.iter().map(|s| s.base_offset).collect()
        };
        let guard = self.poison_guard();
        let result = async {
            // Epochs go first: a crash part-way leaves a prefix of the old
            // log without them, all of it still below the leader's start,
            // so the next fetch finds it out of range again.
            self.truncate_epochs(0).await?;
            *self.write_buf() = None;
            // Newest first, each removal durable before the next, so a
            // crash part-way leaves a prefix of the log, never a gap.
            for base in bases.iter().rev() {
                self.cache.remove_segment(*base);
                segment::remove_files(self.disk.as_ref(), &self.dir, *base).await?;
                self.disk.sync_dir(&self.dir).await?;
            }
            let path = Segment::<D::File>::log_path(&self.dir, offset);
            let file = self.disk.open_direct(&path, OpenMode::Create).await?;
            file.set_len(0).await?;
            self.disk.sync_dir(&self.dir).await?;
            let config = self.config();
            let mut st = self.state();
            st.segments = vec![Segment::empty(&self.dir, offset, file, &config, &self.open_files)];
            st.log_start_offset = offset;
            st.flushed_offset = offset;
            st.check_invariants();
            drop(st);
            // As in `truncate_to`: no read ahead of the old segments cached.
            for base in &bases {
                self.cache.remove_segment(*base);
            }
            tracing::warn!(dir = %self.dir.display(), offset, "started the log over, empty, at the leader's log start");
            Ok(())
        }
        .await;
        guard.disarm();
        self.poison_on_err(result)
    }
}
