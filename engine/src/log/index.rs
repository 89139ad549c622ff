//! Sparse indexes of one segment, kept in memory and written beside it.
//!
//! On disk both use Kafka's formats, big-endian:
//! - offset index (`.index`): 8-byte entries `(relative offset u32, position u32)`
//!   mapping a batch's base offset to its byte position in the `.log` file;
//! - time index (`.timeindex`): 12-byte entries `(timestamp i64, relative
//!   offset u32)`, where the timestamp is the largest seen in the segment up to
//!   and including the batch at that offset.
//!
//! Indexes are a cache of the log file: written when a segment is sealed or
//! the log closes, checked when loaded, and rebuilt from the log whenever they
//! are missing, inconsistent, or belong to a segment recovery re-scans.

use super::batch::BatchHeader;

pub const OFFSET_ENTRY_BYTES: usize = 8;
pub const TIME_ENTRY_BYTES: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// Both indexes of a segment plus the running state that decides when the
/// next entry is due. Appends and recovery feed batches through the same
/// `observe` so the indexes they build are identical.
#[derive(Clone, Debug)]
pub struct SegmentIndex {
    pub base_offset: u64,
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    bytes_since_entry: u64,
    /// Largest batch max timestamp so far, or `i64::MIN` while empty.
    pub max_timestamp: i64,
    /// Largest number of offset entries before the segment must roll.
    entries_max: usize,
    interval_bytes: u64,
}

impl SegmentIndex {
    pub fn new(base_offset: u64, interval_bytes: u64, index_bytes_max: u64) -> SegmentIndex {
        SegmentIndex {
            base_offset,
            offsets: Vec::new(),
            times: Vec::new(),
            bytes_since_entry: 0,
            max_timestamp: i64::MIN,
            entries_max: (index_bytes_max as usize / OFFSET_ENTRY_BYTES).max(1),
            interval_bytes,
        }
    }

    pub fn is_full(&self) -> bool {
        self.offsets.len() >= self.entries_max
    }

    /// Records a batch appended at `position`. The first batch of a segment
    /// needs no entry: lookups below the first entry start at position 0.
    pub fn observe(&mut self, header: &BatchHeader, position: u64) {
        debug_assert!(header.base_offset as u64 >= self.base_offset);
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        if self.bytes_since_entry >= self.interval_bytes && !self.is_full() {
            let relative_offset = (header.base_offset as u64 - self.base_offset) as u32;
            if let Some(last) = self.offsets.last() {
                debug_assert!(last.relative_offset < relative_offset && u64::from(last.position) < position);
            }
            self.offsets.push(OffsetEntry { relative_offset, position: position as u32 });
            if self.times.last().is_none_or(|t| t.timestamp < self.max_timestamp) {
                self.times.push(TimeEntry { timestamp: self.max_timestamp, relative_offset });
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += header.size_bytes() as u64;
    }

    /// Byte position from which a scan finds the batch holding `offset`.
    pub fn lookup(&self, offset: u64) -> u64 {
        self.lookup_entry(offset).0
    }

    /// `(position, base offset of the batch there)` from which a scan finds
    /// the batch holding `offset`.
    pub fn lookup_entry(&self, offset: u64) -> (u64, u64) {
        let relative = offset.saturating_sub(self.base_offset);
        let at = self.offsets.partition_point(|e| u64::from(e.relative_offset) <= relative);
        match at.checked_sub(1).map(|i| self.offsets[i]) {
            None => (0, self.base_offset),
            Some(e) => (u64::from(e.position), self.base_offset + u64::from(e.relative_offset)),
        }
    }

    /// An offset from which a scan finds the first batch whose max timestamp
    /// is at least `timestamp`: every batch before it is older.
    pub fn lookup_time(&self, timestamp: i64) -> u64 {
        let at = self.times.partition_point(|e| e.timestamp < timestamp);
        if at == 0 {
            self.base_offset
        } else {
            self.base_offset + u64::from(self.times[at - 1].relative_offset)
        }
    }

    /// Counts batch bytes appended after the last entry without adding one
    /// (rebuilding the running state after a truncation).
    pub fn note_bytes(&mut self, bytes: u64) {
        self.bytes_since_entry += bytes;
    }

    /// Drops entries at or past `position` after a truncation.
    pub fn truncate_to_position(&mut self, position: u64) {
        self.offsets.retain(|e| u64::from(e.position) < position);
        let last = self.offsets.last().map(|e| e.relative_offset);
        self.times.retain(|t| last.is_some_and(|l| t.relative_offset <= l));
        self.max_timestamp = self.times.last().map_or(i64::MIN, |t| t.timestamp);
        self.bytes_since_entry = 0;
    }

    pub fn encode_offsets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for e in &self.offsets {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    /// The time index, with a final entry for the segment's largest
    /// timestamp so that it is known after a reopen without a scan.
    pub fn encode_times(&self, last_batch_offset: u64) -> Vec<u8> {
        let mut times = self.times.clone();
        if self.max_timestamp != i64::MIN && times.last().is_none_or(|t| t.timestamp < self.max_timestamp) {
            let relative_offset = (last_batch_offset - self.base_offset) as u32;
            if times.last().is_none_or(|t| t.relative_offset < relative_offset) {
                times.push(TimeEntry { timestamp: self.max_timestamp, relative_offset });
            }
        }
        let mut out = Vec::with_capacity(times.len() * TIME_ENTRY_BYTES);
        for e in &times {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    /// Loads indexes written by `encode_*` for a segment of `log_bytes`
    /// bytes. Returns `None` if they are not consistent, in which case the
    /// caller rebuilds them from the log.
    pub fn decode(
        base_offset: u64,
        interval_bytes: u64,
        index_bytes_max: u64,
        offsets: &[u8],
        times: &[u8],
        log_bytes: u64,
    ) -> Option<SegmentIndex> {
        if !offsets.len().is_multiple_of(OFFSET_ENTRY_BYTES) || !times.len().is_multiple_of(TIME_ENTRY_BYTES)
        {
            return None;
        }
        let mut index = SegmentIndex::new(base_offset, interval_bytes, index_bytes_max);
        for chunk in offsets.chunks_exact(OFFSET_ENTRY_BYTES) {
            let relative_offset = u32::from_be_bytes(chunk[0..4].try_into().ok()?);
            let position = u32::from_be_bytes(chunk[4..8].try_into().ok()?);
            let increasing = index
                .offsets
                .last()
                .is_none_or(|l| l.relative_offset < relative_offset && l.position < position);
            if !increasing || u64::from(position) >= log_bytes || position == 0 {
                return None;
            }
            index.offsets.push(OffsetEntry { relative_offset, position });
        }
        for chunk in times.chunks_exact(TIME_ENTRY_BYTES) {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().ok()?);
            let relative_offset = u32::from_be_bytes(chunk[8..12].try_into().ok()?);
            let increasing = index
                .times
                .last()
                .is_none_or(|l| l.timestamp < timestamp && l.relative_offset < relative_offset);
            if !increasing {
                return None;
            }
            index.times.push(TimeEntry { timestamp, relative_offset });
        }
        index.max_timestamp = index.times.last().map_or(i64::MIN, |t| t.timestamp);
        Some(index)
    }
}
