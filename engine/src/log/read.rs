//! Reads by offset: index lookup, then scan. (By timestamp: `by_time`.)
//!
//! Every batch read from the disk has just passed its length, magic and
//! CRC-32C checks: a batch corrupted on disk after it was written is
//! reported, never served. Batches from the log cache were checked when they
//! were appended and have not left memory since.

use super::batch::{BatchError, BatchHeader, BatchScanner};
use super::error::ReadError;
use super::open_files::FileHandle;
use super::partition_log::Log;
use super::segment::Segment;
use crate::io::{Disk, DiskFile};
use bytes::Bytes;

/// Smallest read issued, so that small fetches still read ahead a little.
const READ_BYTES_MIN: usize = 64 * 1024;
/// The most one read adds to `max_bytes` to cover the gap between an
/// index entry and the offset asked for.
const INDEX_SLACK_BYTES_MAX: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole record batches, starting with the one holding the requested
    /// offset; empty at the log end.
    pub records: Bytes,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    /// Set when the records came from the disk and their segment holds
    /// more: what a reader going on from here reads next, for
    /// `Log::read_ahead` to bring into the cache meanwhile.
    pub read_ahead: Option<ReadAhead>,
}

/// The next read of a reader going through a segment on the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAhead {
    segment: u64,
    from: AheadFrom,
    /// Bytes to read: what the reader's last read took.
    len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AheadFrom {
    /// Where the reader's next read starts: the index entry at or before
    /// the offset it asks for next (its last read came from the disk).
    Offset(u64),
    /// The end of the cached bytes it is reading through, a batch
    /// boundary: its next reads are cache hits up to there.
    Position(u64),
}

/// A read ahead in flight: bytes `[from, to)` of `segment`, cached (or
/// given up on) once `done` turns true or its sender is gone.
pub(super) struct InFlight {
    segment: u64,
    from: u64,
    to: u64,
    done: crate::watch::Receiver<bool>,
}

/// What a reader needs of one segment, taken under the state lock.
pub(super) struct SegmentView<F> {
    pub file: FileHandle<F>,
    pub base_offset: u64,
    pub next_offset: u64,
    pub size_bytes: u64,
    /// Where a scan for the wanted offset starts, and the base offset of the
    /// batch there (from the index; verified by the scan).
    pub start_position: u64,
    pub start_offset: u64,
    /// Bytes the last read of this segment took from the disk (0: served
    /// from the cache).
    pub read_from_disk: usize,
    /// Where the batches the last read served end.
    pub served_end: u64,
}

impl<D: Disk> Log<D> {
    /// Reads whole batches from the one holding `offset`, at most `max_bytes`
    /// of them except that the first batch is returned whole whatever its
    /// size (so a consumer always makes progress). Batches starting at or
    /// after `max_offset` (e.g. the high watermark) are not returned.
    pub async fn read(
        &self,
        offset: u64,
        max_bytes: usize,
        max_offset: Option<u64>,
    ) -> Result<ReadResult, ReadError> {
        let mut from = offset;
        // A sealed segment's file is opened after the lock is let go: if
        // retention deleted the segment meanwhile, look again (the offset
        // is then below the log start), once.
        let mut looked_again = false;
        // Batches read so far that hold no records (a compacted log's
        // stand-ins for removed ones): a read goes on past them into the
        // next segment, so that a reader gets a record with them where one
        // exists (librdkafka fails a fetch that brings it empty batches
        // alone: MSG_SIZE_TOO_LARGE).
        let mut empties = bytes::BytesMut::new();
        let with_empties = |empties: bytes::BytesMut, records: Bytes| {
            if empties.is_empty() {
                return records;
            }
            let mut all = empties;
            all.extend_from_slice(&records);
            all.freeze()
        };
        loop {
            let (mut view, log_start_offset, log_end_offset) = {
                let st = self.state();
                let (start, end) = (st.log_start_offset, st.log_end_offset());
                if offset < start || offset > end {
                    return Err(ReadError::OffsetOutOfRange {
                        offset,
                        log_start_offset: start,
                        log_end_offset: end,
                    });
                }
                let empty = ReadResult {
                    records: with_empties(std::mem::take(&mut empties), Bytes::new()),
                    log_start_offset: start,
                    log_end_offset: end,
                    read_ahead: None,
                };
                if from >= end || max_offset.is_some_and(|m| from >= m) {
                    return Ok(empty);
                }
                let at = st.segments.partition_point(|s| s.next_offset <= from);
                let Some(seg) = st.segments.get(at) else { return Ok(empty) };
                (view_of(seg, from), start, end)
            };
            let records = match self.read_segment(&mut view, from, max_bytes, max_offset).await {
                Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && !looked_again => {
                    looked_again = true;
                    continue;
                }
                result => result?,
            };
            let next_offset =
                BatchScanner::verified(&records).filter_map(Result::ok).last().map(|(_, h)| h.next_offset());
            let ends_segment = next_offset.is_some_and(|next| next >= view.next_offset);
            let only_empties = !records.is_empty()
                && BatchScanner::verified(&records).filter_map(Result::ok).all(|(_, h)| h.record_count == 0);
            if only_empties
                && ends_segment
                && empties.len() + records.len() < max_bytes
                && view.next_offset < log_end_offset
            {
                empties.extend_from_slice(&records);
                from = view.next_offset;
                continue;
            }
            if !records.is_empty() || view.next_offset >= log_end_offset {
                let read_ahead = match next_offset {
                    Some(next) if !ends_segment => self.next_read_ahead(&view, next, max_bytes),
                    _ => None,
                };
                let records = with_empties(empties, records);
                return Ok(ReadResult { records, log_start_offset, log_end_offset, read_ahead });
            }
            // Nothing at or after `from` in this segment: go on to the next.
            from = view.next_offset.max(from);
        }
    }

    async fn read_segment(
        &self,
        view: &mut SegmentView<D::File>,
        offset: u64,
        max_bytes: usize,
        max_offset: Option<u64>,
    ) -> Result<Bytes, ReadError> {
        let (mut position, mut expected) = (view.start_position, view.start_offset);
        // The fallback scan from the segment start happens at most once.
        let mut rescanned = false;
        // Set if a cached chunk ever failed to hold whole batches (a bug):
        // the disk then serves this read.
        let mut bypass_cache = false;
        // The index entry may lie up to an index interval before `offset`;
        // the interval is a client's to set, so what one read adds for it
        // is clamped (a longer gap is crossed by the loop below).
        let mut want = self.read_len(max_bytes);
        'read: loop {
            let len = want.min((view.size_bytes - position) as usize);
            if len == 0 {
                return Ok(Bytes::new());
            }
            let mut cached =
                if bypass_cache { None } else { self.cache.get(view.base_offset, position, len) };
            if cached.is_none() && !bypass_cache {
                if let Some(mut done) = self.read_ahead_holding(view.base_offset, position) {
                    // Its bytes are on their way: wait rather than read them twice.
                    let _ = done.wait_for(|finished| *finished).await;
                    cached = self.cache.get(view.base_offset, position, len);
                }
            }
            let from_cache = cached.is_some();
            let buf = match cached {
                Some(bytes) => bytes,
                None => view.file.file(self.disk.as_ref()).await?.read_at(position, len).await?,
            };
            view.read_from_disk = if from_cache { 0 } else { len };
            // A cached read may end early, at the end of a chunk (a batch
            // boundary). Only a damaged file (or one whose unsynced pages a
            // failed fsync dropped) is shorter than the bytes the log wrote:
            // serve what is there, fail where the wanted bytes are missing.
            let short = !from_cache && buf.len() < len;
            let missing = || {
                let e =
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "segment shorter than its size");
                ReadError::Io(e)
            };
            let mut start = None;
            let mut end = 0usize;
            let mut skipped = 0usize;
            let scanner = if from_cache { BatchScanner::verified(&buf) } else { BatchScanner::new(&buf) };
            for item in scanner {
                let corrupt = |at: usize, error| {
                    let segment = Segment::<D::File>::log_path(&self.dir, view.base_offset);
                    ReadError::Corrupt { segment, position: position + at as u64, error }
                };
                // The first batch the index pointed at is not what it said:
                // scan from the segment start instead (slower, still right).
                let index_wrong = |at: usize| {
                    !rescanned
                        && start.is_none()
                        && at == 0
                        && position == view.start_position
                        && position > 0
                };
                let (at, header) = match item {
                    Ok(found) => found,
                    Err(_) if start.is_some() => break, // serve the valid prefix; the next read reports it
                    Err((_, BatchError::Incomplete { .. })) if from_cache && buf.len() < len => {
                        debug_assert!(false, "a cached chunk ends inside a batch");
                        bypass_cache = true;
                        continue 'read;
                    }
                    Err((_, BatchError::Incomplete { .. })) if short => return Err(missing()),
                    Err((at, BatchError::Incomplete { need, .. }))
                        if position + (at + need) as u64 <= view.size_bytes =>
                    {
                        // The batch we need continues past this read.
                        want = want.max(need);
                        break;
                    }
                    Err((at, _)) if index_wrong(at) => {
                        tracing::warn!(dir = %self.dir.display(), base = view.base_offset, "offset index points inside a batch");
                        (position, expected) = (0, view.base_offset);
                        rescanned = true;
                        continue 'read;
                    }
                    Err((at, error)) => return Err(corrupt(at, error)),
                };
                if header.base_offset as u64 != expected {
                    if start.is_some() {
                        break;
                    }
                    if index_wrong(at) {
                        tracing::warn!(dir = %self.dir.display(), base = view.base_offset, "offset index inconsistent with its segment");
                        (position, expected) = (0, view.base_offset);
                        rescanned = true;
                        continue 'read;
                    }
                    return Err(corrupt(
                        at,
                        BatchError::BadHeader("base offset breaks the segment's offset sequence"),
                    ));
                }
                expected = header.next_offset();
                if header.last_offset() < offset {
                    skipped = at + header.size_bytes();
                    continue;
                }
                // Nothing at or past the segment's end offset is part of it.
                let bound = Some(max_offset.map_or(view.next_offset, |m| m.min(view.next_offset)));
                if !admit(&header, start.is_none(), start.map_or(0, |s| end - s), max_bytes, bound) {
                    view.served_end = position + end as u64;
                    return Ok(start.map_or_else(Bytes::new, |s| buf.slice(s..end)));
                }
                start.get_or_insert(at);
                end = at + header.size_bytes();
            }
            if let Some(start) = start {
                view.served_end = position + end as u64;
                return Ok(buf.slice(start..end));
            }
            if position + skipped as u64 >= view.size_bytes {
                return Ok(Bytes::new());
            }
            if short && skipped == buf.len() {
                return Err(missing());
            }
            position += skipped as u64;
        }
    }
}

impl<D: Disk> Log<D> {
    /// Bytes a read of `max_bytes` asks of the disk: the index entry may lie
    /// up to an index interval before the offset wanted; the interval is a
    /// client's to set, so what one read adds for it is clamped (a longer
    /// gap is crossed by `read_segment`'s loop).
    fn read_len(&self, max_bytes: usize) -> usize {
        let slack = (self.config().index_interval_bytes as usize).min(INDEX_SLACK_BYTES_MAX);
        max_bytes.saturating_add(slack).max(READ_BYTES_MIN)
    }

    /// What to read ahead for a reader whose next offset is `next`, in the
    /// segment `view` it just read: the next chunk when that read came from
    /// the disk; when it came from the cache, the chunk after the cached
    /// bytes ahead of it once less than one read of them is left (so a
    /// reader going through old data keeps the disk one chunk ahead, and a
    /// reader in well-cached data costs one short walk of the cache).
    fn next_read_ahead(&self, view: &SegmentView<D::File>, next: u64, max_bytes: usize) -> Option<ReadAhead> {
        let segment = view.base_offset;
        if view.read_from_disk > 0 {
            return Some(ReadAhead { segment, from: AheadFrom::Offset(next), len: view.read_from_disk });
        }
        let len = self.read_len(max_bytes);
        let cached_to = self.cache.cached_run_end(segment, view.served_end, len)?;
        (cached_to < view.size_bytes).then_some(ReadAhead {
            segment,
            from: AheadFrom::Position(cached_to),
            len,
        })
    }

    /// The read ahead in flight that reads `position` of `segment`, if any.
    fn read_ahead_holding(&self, segment: u64, position: u64) -> Option<crate::watch::Receiver<bool>> {
        let slot = self.reading_ahead.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|f| f.segment == segment && (f.from..f.to).contains(&position))
            .map(|f| f.done.clone())
    }

    /// Reads what a reader going through a segment on the disk asks for
    /// next (`ReadResult::read_ahead`) into the cache, so that its next
    /// read is served from memory: run beside the answer to the read that
    /// returned it, the disk reads the next chunk while this one is sent.
    /// Only whole batches that pass their checks are cached, and nothing
    /// read across a truncation or a swap (`CacheHandle::insert_read`).
    /// Failures are left to the reader's own read to meet and report.
    /// Whether anything was cached.
    pub async fn read_ahead(&self, ahead: ReadAhead) -> bool {
        // Taken before the segment: a removal after it may have changed
        // the bytes this reads, and keeps them out of the cache.
        let removals = self.cache.removals();
        let (file, size_bytes, position) = {
            let st = self.state();
            let Some(seg) = st.segments.iter().find(|s| s.base_offset == ahead.segment) else { return false };
            let position = match ahead.from {
                AheadFrom::Offset(offset) if offset < seg.next_offset => view_of(seg, offset).start_position,
                AheadFrom::Position(position) => position,
                AheadFrom::Offset(_) => return false,
            };
            (seg.file.handle(), seg.size_bytes, position)
        };
        if position >= size_bytes {
            return false;
        }
        // Never 0: a ReadAhead names at least one byte and the segment
        // holds bytes past `position`.
        let len = ahead.len.min((size_bytes - position) as usize);
        // Readers of these bytes wait for this read from here on; dropping
        // `done` (on every return) lets them go.
        let (done, waiting) = crate::watch::channel(false);
        *self.reading_ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(InFlight {
            segment: ahead.segment,
            from: position,
            to: position + len as u64,
            done: waiting,
        });
        let cached = self.read_into_cache(file, ahead.segment, position, len, removals).await;
        done.send(true);
        cached
    }

    async fn read_into_cache(
        &self,
        mut file: FileHandle<D::File>,
        segment: u64,
        position: u64,
        len: usize,
        removals: u64,
    ) -> bool {
        let Ok(file) = file.file(self.disk.as_ref()).await else { return false };
        let Ok(buf) = file.read_at(position, len).await else { return false };
        let mut end = 0;
        for item in BatchScanner::new(&buf) {
            match item {
                Ok((at, header)) => end = at + header.size_bytes(),
                Err(_) => break,
            }
        }
        end > 0 && self.cache.insert_read(segment, position, buf.slice(..end), removals)
    }
}

pub(super) fn view_of<F: DiskFile>(seg: &Segment<F>, offset: u64) -> SegmentView<F> {
    let (start_position, start_offset) = seg.index.lookup_entry(offset);
    SegmentView {
        file: seg.file.handle(),
        base_offset: seg.base_offset,
        next_offset: seg.next_offset,
        size_bytes: seg.size_bytes,
        start_position,
        start_offset,
        read_from_disk: 0,
        served_end: 0,
    }
}

/// Whether the next batch joins a read that already holds `bytes_so_far`.
fn admit(
    header: &BatchHeader,
    first: bool,
    bytes_so_far: usize,
    max_bytes: usize,
    max_offset: Option<u64>,
) -> bool {
    if max_offset.is_some_and(|m| header.base_offset as u64 >= m) {
        return false;
    }
    first || bytes_so_far + header.size_bytes() <= max_bytes
}
