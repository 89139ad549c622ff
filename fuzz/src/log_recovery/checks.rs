//! The live log checked against the model: its offsets, reads and
//! timestamp lookups.

use super::harness::Harness;
use super::model::MBatch;
use crate::exec::block_on;
use ringtail_engine::clock::Clock;
use ringtail_engine::log::ReadError;

impl Harness {
    pub(super) fn check_invariants(&self) {
        let log = self.log();
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        if start > end || log.flushed_offset() > end {
            self.fail(format_args!(
                "offsets out of order: start {start}, flushed {}, end {end}",
                log.flushed_offset()
            ));
        }
        if !self.poisoned() {
            if (start, end) != (self.model.log_start, self.model.end()) {
                self.fail(format_args!(
                    "log [{start}, {end}) but model [{}, {})",
                    self.model.log_start,
                    self.model.end()
                ));
            }
            if log.flushed_offset() < self.model.durable {
                self.fail(format_args!(
                    "the log claims less durability ({}) than it owes ({})",
                    log.flushed_offset(),
                    self.model.durable
                ));
            }
        }
    }

    fn segment_of(&self, base: u64) -> u64 {
        let bases = self.log().segment_base_offsets();
        bases.iter().copied().filter(|&b| b <= base).max().unwrap_or(0)
    }

    /// May reading `offset` fail? Only where a damaged batch at or before
    /// it in the same segment is in the way, or the log is poisoned (its
    /// files may have lost bytes it still counts).
    fn read_error_allowed(&self, offset: u64, error: &ReadError) -> bool {
        if self.poisoned() && offset >= self.model.durable {
            return true;
        }
        let Some(i) = self.model.batch_holding(offset) else { return false };
        let base = self.model.batches[i].base;
        let segment = self.segment_of(base);
        if self.model.index_damaged.contains(&segment) && crate::known_bugs::tolerated("index-trusted") {
            return true;
        }
        matches!(error, ReadError::Corrupt { .. })
            && self.model.damaged.iter().any(|(&b, d)| b <= base && d.segment == segment && !d.epoch_only)
    }

    fn same_batch(&self, got: &[u8], want: &MBatch) -> bool {
        if got == &want.bytes[..] {
            return true;
        }
        self.model.damaged.get(&want.base).is_some_and(|d| d.epoch_only && got == &d.on_disk[..])
    }

    pub(super) fn check_read(&self, offset: u64, max_bytes: usize) {
        if self.poisoned() && crate::known_bugs::tolerated("read-spins-short-segment") {
            return;
        }
        let result = block_on(self.log().read(offset, max_bytes, None));
        let (start, end) = (self.model.log_start, self.model.end());
        if !self.poisoned() && (offset < start || offset > end) {
            if !matches!(result, Err(ReadError::OffsetOutOfRange { .. })) {
                self.fail(format_args!("read {offset} outside [{start}, {end}]: {result:?}"));
            }
            return;
        }
        let got = match result {
            Ok(got) => got,
            Err(e) => {
                if !self.read_error_allowed(offset, &e) {
                    self.fail(format_args!("read {offset} in [{start}, {end}) failed: {e}"));
                }
                return;
            }
        };
        let (parsed, bad) = crate::reference::split_batches(&got.records);
        if bad.is_some() {
            self.fail(format_args!("read {offset} returned bytes that are not whole valid batches"));
        }
        let Some(first) = self.model.batch_holding(offset) else {
            if !parsed.is_empty() {
                self.fail(format_args!("read {offset} at the end returned batches"));
            }
            return;
        };
        if parsed.is_empty() {
            if !self.poisoned() {
                self.fail(format_args!("read {offset} below the end {end} returned nothing"));
            }
            return;
        }
        let total: usize = parsed.iter().map(|b| b.size).sum();
        if parsed.len() > 1 && total > max_bytes {
            self.fail(format_args!("read {offset} returned {total} bytes, over max {max_bytes}"));
        }
        for (k, b) in parsed.iter().enumerate() {
            let bytes = &got.records[b.position..b.position + b.size];
            match self.model.batches.get(first + k) {
                Some(want) if self.same_batch(bytes, want) => {}
                Some(want) => self.fail(format_args!(
                    "read {offset}: batch {k} (offset {}) differs from the one appended at {}",
                    b.base_offset, want.base
                )),
                None => self.fail(format_args!("read {offset} returned a batch past the model's end")),
            }
        }
    }

    /// `offset_for_timestamp` answers the first batch (from the start) whose
    /// max timestamp reaches the target.
    pub(super) fn check_time_lookup(&self, at: u8) {
        let model = &self.model;
        let live: Vec<&MBatch> = model.batches.iter().filter(|b| b.next > model.log_start).collect();
        let target = match live.get(usize::from(at) % (live.len() + 1)) {
            Some(b) => b.max_ts - i64::from(at % 3),
            None => self.clock.now_ms() + 1_000_000,
        };
        let result = block_on(self.log().offset_for_timestamp(target));
        let want = live.iter().find(|b| b.max_ts >= target).map(|b| (b.base.max(model.log_start), b.max_ts));
        let unreliable = self.poisoned() || !model.damaged.is_empty() || self.timestamps_unreliable;
        match result {
            Ok(got) if got == want => {}
            Ok(got) if unreliable => {
                // A damaged batch may hide a timestamp; never invent one.
                if let Some((o, ts)) = got {
                    if !live.iter().any(|b| b.base.max(model.log_start) == o && b.max_ts == ts) {
                        self.fail(format_args!("offset_for_timestamp({target}) = {got:?}: no such batch"));
                    }
                }
            }
            Ok(got) => self.fail(format_args!("offset_for_timestamp({target}) = {got:?}, expected {want:?}")),
            Err(e) if unreliable => {
                if !matches!(e, ReadError::Corrupt { .. }) && !self.poisoned() {
                    self.fail(format_args!("offset_for_timestamp({target}) failed: {e}"));
                }
            }
            Err(e) => self.fail(format_args!("offset_for_timestamp({target}) failed: {e}")),
        }
    }

    /// Every batch in the log reads back as appended (or fails where damage
    /// explains it); one large read from the start too.
    pub(super) fn check_all(&self) {
        let start = self.model.log_start;
        for b in self.model.batches.iter().filter(|b| b.next > start) {
            self.check_read(b.base.max(start), 1);
        }
        self.check_read(start, 1 << 20);
        self.check_read(self.model.end(), 1);
    }
}
