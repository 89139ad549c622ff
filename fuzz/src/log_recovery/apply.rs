//! `Harness::apply`: one operation on the log, mirrored in the model, and
//! the expectations on its outcome.

use super::harness::{dir, Harness};
use super::model::MBatch;
use super::{Op, ROOT};
use crate::exec::{block_on, join_all};
use crate::gen::opaque_batch;
use bytes::Bytes;
use ringtail_engine::clock::Clock;
use ringtail_engine::io::Disk;
use ringtail_engine::log::{AppendError, FlushPolicy};
use std::path::PathBuf;

impl Harness {
    /// Expects `result` to be Ok, or an error the log's state explains.
    /// Returns whether it was Ok.
    fn outcome<T, E: std::fmt::Display>(
        &self,
        what: &str,
        was_poisoned: bool,
        result: &Result<T, E>,
    ) -> bool {
        self.outcome_or(what, was_poisoned, result, false)
    }

    /// `outcome`, where `explained` also accounts for an error.
    fn outcome_or<T, E: std::fmt::Display>(
        &self,
        what: &str,
        was_poisoned: bool,
        result: &Result<T, E>,
        explained: bool,
    ) -> bool {
        match result {
            Ok(_) => {
                if was_poisoned {
                    self.fail(format_args!("{what} succeeded on a poisoned log"));
                }
                true
            }
            Err(e) => {
                let text = e.to_string();
                let explained = explained
                    || (was_poisoned && text.contains("poisoned"))
                    || (self.faults_armed && !text.contains("poisoned"));
                if !explained {
                    self.fail(format_args!("{what} failed unexpectedly: {e}"));
                }
                false
            }
        }
    }

    pub(super) fn apply(&mut self, op: &Op) {
        let was_poisoned = self.poisoned();
        let always = self.config.flush == FlushPolicy::Always;
        match op {
            Op::Append { batches, records, payload, epoch, ts_skew } => {
                let mut bytes = Vec::new();
                let mut parts = Vec::new();
                for _ in 0..1 + batches % 3 {
                    let ts = self.clock.now_ms() + i64::from(*ts_skew);
                    let b = opaque_batch(
                        1 + u32::from(records % 4),
                        self.model.next_id,
                        ts,
                        8 + usize::from(*payload),
                    );
                    self.model.next_id += 1;
                    bytes.extend_from_slice(&b);
                    parts.push(b);
                }
                let epoch = i32::from(*epoch);
                let result = block_on(self.log().append(Bytes::from(bytes), epoch));
                self.after_append(was_poisoned, result.map(|i| i.base_offset), &parts, epoch, always);
            }
            Op::Concurrent { count, payload } => {
                if self.faults_armed || was_poisoned {
                    // Failed concurrent appends leave their offsets unknown:
                    // only run them when all must succeed.
                    return;
                }
                let mut parts = Vec::new();
                for _ in 0..2 + count % 5 {
                    let b =
                        opaque_batch(1, self.model.next_id, self.clock.now_ms(), 8 + usize::from(*payload));
                    self.model.next_id += 1;
                    parts.push(b);
                }
                let log = self.log().clone();
                let results = join_all(parts.iter().map(|b| log.append(b.clone(), 3)).collect());
                let mut done: Vec<(u64, &Bytes)> = results
                    .into_iter()
                    .zip(&parts)
                    .map(|(r, b)| match r {
                        Ok(info) => (info.base_offset, b),
                        Err(e) => {
                            self.fail(format_args!("concurrent append failed with no fault armed: {e}"))
                        }
                    })
                    .collect();
                done.sort_by_key(|(base, _)| *base);
                for (base, b) in done {
                    if base != self.model.end() {
                        self.fail(format_args!(
                            "concurrent append got offset {base}, expected {}",
                            self.model.end()
                        ));
                    }
                    self.model.push(base, b, 3);
                }
                if always {
                    self.model.durable = self.model.end();
                }
            }
            Op::Read { at, max_bytes } => {
                let offset = if *at > 250 {
                    self.model.end() + u64::from(at - 250)
                } else {
                    self.model.offset_at(*at)
                };
                self.check_read(offset, usize::from(*max_bytes));
            }
            Op::TimeLookup { at } => self.check_time_lookup(*at),
            Op::Flush => {
                let result = block_on(self.log().flush());
                if self.outcome("flush", was_poisoned, &result) {
                    self.model.durable = self.model.end();
                }
            }
            Op::FlushIfDue => {
                // Ok on a poisoned log is right when no flush was due.
                let result = block_on(self.log().flush_if_due());
                self.outcome("flush_if_due", was_poisoned && result.is_err(), &result);
            }
            Op::Roll => {
                let result = block_on(self.log().roll());
                if self.outcome("roll", was_poisoned, &result) {
                    self.model.durable = self.model.end();
                }
            }
            Op::Tick { ms } => self.clock.advance_ms(i64::from(*ms)),
            Op::Retention => {
                let expected = self.expected_retention();
                let result = block_on(self.log().apply_retention());
                if let (Ok(outcome), Some(want)) = (&result, expected) {
                    if outcome.segments_deleted != want {
                        self.fail(format_args!(
                            "retention deleted {} segments, the model {want} (segments {:?})",
                            outcome.segments_deleted,
                            self.describe_segments()
                        ));
                    }
                }
                if let Ok(outcome) = &result {
                    if outcome.log_start_offset < self.model.log_start
                        || outcome.log_start_offset > self.model.end()
                    {
                        self.fail(format_args!("retention moved the start to {}", outcome.log_start_offset));
                    }
                    self.model.log_start = outcome.log_start_offset;
                    if outcome.segments_deleted > 0 {
                        // Deleting segments is durable (the directory is
                        // synced): no crash brings their offsets back. (The
                        // start itself may be a delete-records start whose
                        // checkpoint failed: not durable.)
                        let first = self.log().segment_base_offsets()[0];
                        self.model.log_start_min = self.model.log_start_min.max(first);
                    }
                } else {
                    self.model.log_start = self.model.log_start.max(self.log().log_start_offset());
                }
                self.outcome("retention", was_poisoned, &result);
            }
            Op::DeleteRecordsBefore { at } => {
                let offset = self.model.offset_at(*at);
                let result = match &self.manager {
                    Some(m) => block_on(m.delete_records_before(&self.tp, offset)),
                    None => block_on(self.log().delete_records_before(offset)),
                };
                if result.is_ok() && !self.via_manager {
                    self.checkpoint();
                }
                let ok = self.outcome("delete_records_before", was_poisoned, &result);
                let start = self.log().log_start_offset();
                if ok {
                    if start != self.model.log_start.max(offset) {
                        self.fail(format_args!("delete_records_before({offset}) left the start at {start}"));
                    }
                    self.model.log_start_min = start;
                }
                self.model.log_start = self.model.log_start.max(start);
            }
            Op::Truncate { at } => {
                let offset = self.model.offset_at(*at);
                self.timestamps_unreliable |= crate::known_bugs::tolerated("truncate-max-timestamp");
                let before = self.log().log_start_offset();
                let result = match &self.manager {
                    Some(m) => block_on(m.truncate_to(&self.tp, offset)),
                    None => block_on(self.log().truncate_to(offset)),
                };
                // The recovery point must come down with the log before
                // anything is appended past the cut (the manager does it).
                if !self.via_manager && result.is_ok() {
                    self.checkpoint();
                }
                let _ = before;
                // Truncating through a damaged batch is refused (it cannot
                // be parsed past), and poisons the log.
                let damage = self.model.first_damaged().is_some() || !self.model.index_damaged.is_empty();
                let corrupt = result.as_ref().is_err_and(|e| e.to_string().contains("corrupt"));
                let ok = self.outcome_or("truncate_to", was_poisoned, &result, damage && corrupt);
                // Through the manager, an error with the log still healthy is
                // a failed checkpoint after a truncation that took place.
                if ok || (self.via_manager && !was_poisoned && !self.poisoned()) {
                    let end = self.model.truncate(offset);
                    self.model.log_start = self.model.log_start.min(end);
                    self.model.log_start_min = self.model.log_start_min.min(end);
                } else {
                    // Partly done: the batches may or may not be there, and
                    // losing them is no longer a durability failure.
                    let mut copy = self.model.batches.clone();
                    copy.retain(|b| b.next <= offset);
                    let end = copy.last().map_or(self.model.log_start.min(offset), |b| b.next);
                    self.model.durable = self.model.durable.min(end);
                    self.model.log_start_min = self.model.log_start_min.min(end);
                    self.claim_cap = Some(self.claim_cap.unwrap_or(u64::MAX).min(end));
                }
            }
            Op::Checkpoint => {
                if !self.checkpoint() && !self.faults_armed {
                    self.fail(format_args!("checkpoint failed with no fault armed"));
                }
            }
            Op::Reopen => self.reopen(),
            Op::FailNextSyncs { n } => {
                self.disk.fail_next_syncs(1 + u32::from(n % 2));
                self.faults_armed = true;
            }
            Op::DiskFull { headroom } => {
                let used = self.live_bytes();
                self.disk.set_capacity(Some(used + u64::from(*headroom % 2048)));
                self.faults_armed = true;
            }
            Op::ClearFaults => self.clear_faults(),
            Op::Crash(c) => self.crash(c),
        }
    }

    fn after_append(
        &mut self,
        was_poisoned: bool,
        result: Result<u64, AppendError>,
        parts: &[Bytes],
        epoch: i32,
        always: bool,
    ) {
        match result {
            Ok(base) => {
                if was_poisoned {
                    self.fail(format_args!("append succeeded on a poisoned log"));
                }
                if base != self.model.end() {
                    self.fail(format_args!("append got offset {base}, expected {}", self.model.end()));
                }
                let mut at = base;
                for b in parts {
                    at = self.model.push(at, b, epoch);
                }
                if always {
                    self.model.durable = self.model.end();
                }
            }
            Err(AppendError::Poisoned(_)) if was_poisoned => {}
            Err(AppendError::Io(_)) if self.faults_armed => {
                // The batches may have reached the file: the model keeps them
                // as written, not durable.
                let mut at = self.model.end();
                for b in parts {
                    at = self.model.push(at, b, epoch);
                }
            }
            Err(e) => self.fail(format_args!("append failed unexpectedly: {e}")),
        }
    }

    /// Per segment from the model: (base, next offset, bytes, max timestamp).
    fn describe_segments(&self) -> Vec<(u64, u64, u64, i64)> {
        let bases = self.log().segment_base_offsets();
        bases
            .iter()
            .enumerate()
            .map(|(i, &base)| {
                let until = bases.get(i + 1).copied().unwrap_or(u64::MAX);
                let inside: Vec<&MBatch> =
                    self.model.batches.iter().filter(|b| b.base >= base && b.base < until).collect();
                let next = inside.last().map_or(base, |b| b.next);
                let bytes = inside.iter().map(|b| b.bytes.len() as u64).sum();
                let max_ts = inside.iter().map(|b| b.max_ts).max().unwrap_or(i64::MIN);
                (base, next, bytes, max_ts)
            })
            .collect()
    }

    /// How many segments retention must delete now, by Kafka's rules on the
    /// model's timestamps and sizes; `None` where the model cannot tell. The
    /// active segment counts when it holds data (it is rolled, then
    /// deleted, as Kafka lets a quiet topic's last records expire).
    fn expected_retention(&self) -> Option<usize> {
        if self.poisoned() || !self.model.damaged.is_empty() || self.timestamps_unreliable {
            return None;
        }
        let segments = self.describe_segments();
        let now = self.clock.now_ms();
        let mut total: u64 = segments.iter().map(|s| s.2).sum();
        let active_holds_data = segments.last().is_some_and(|s| s.2 > 0);
        let candidates = if active_holds_data { &segments[..] } else { &segments[..segments.len() - 1] };
        let count = candidates
            .iter()
            .take_while(|&&(_, next, bytes, max_ts)| {
                let below_start = next <= self.model.log_start;
                let expired =
                    self.config.retention_ms.is_some_and(|r| bytes == 0 || now.saturating_sub(max_ts) > r);
                let oversized = self.config.retention_bytes.is_some_and(|r| total - bytes >= r);
                let doomed = below_start || expired || oversized;
                if doomed {
                    total -= bytes;
                }
                doomed
            })
            .count();
        Some(count)
    }

    fn live_bytes(&self) -> u64 {
        block_on(async {
            let mut total = 0;
            for d in [PathBuf::from(ROOT), dir()] {
                for name in self.disk.list(&d).await.unwrap_or_default() {
                    total += self.disk.contents(&d.join(name)).map_or(0, |c| c.len() as u64);
                }
            }
            total
        })
    }
}
