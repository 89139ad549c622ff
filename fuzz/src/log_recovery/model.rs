//! The model: every batch the log may hold, and what must survive a crash.

use crate::gen::stamped;
use bytes::Bytes;
use std::collections::BTreeMap;

/// A batch as the log must serve it.
#[derive(Clone, Debug)]
pub(super) struct MBatch {
    pub(super) base: u64,
    pub(super) next: u64,
    pub(super) bytes: Bytes,
    pub(super) max_ts: i64,
}

/// A batch a bit flip changed on the disk.
#[derive(Clone, Debug)]
pub(super) struct Damage {
    pub(super) segment: u64,
    pub(super) on_disk: Bytes,
    /// Only the partition leader epoch (outside the CRC) changed: no check
    /// can see it, by the format's design. Reads may serve these bytes.
    pub(super) epoch_only: bool,
}

#[derive(Default)]
pub(super) struct Model {
    /// Every batch the log may hold, oldest first, dense; below the log
    /// start too (reads there are out of range).
    pub(super) batches: Vec<MBatch>,
    /// The log end offset if every written batch is there.
    next: u64,
    pub(super) log_start: u64,
    /// Lowest start a crash may bring back (a checkpoint write failed).
    pub(super) log_start_min: u64,
    /// Offsets below this survive any crash.
    pub(super) durable: u64,
    pub(super) next_id: u64,
    pub(super) damaged: BTreeMap<u64, Damage>,
    /// Segments whose `.index` file took a bit flip.
    pub(super) index_damaged: std::collections::BTreeSet<u64>,
}

impl Model {
    pub(super) fn end(&self) -> u64 {
        self.next
    }

    pub(super) fn offset_at(&self, at: u8) -> u64 {
        let (start, end) = (self.log_start, self.end());
        start + (end - start) * u64::from(at) / 255
    }

    pub(super) fn push(&mut self, base: u64, batch: &Bytes, epoch: i32) -> u64 {
        let count = u64::from(u32::from_be_bytes(batch[57..61].try_into().unwrap()));
        let max_ts = i64::from_be_bytes(batch[35..43].try_into().unwrap());
        let bytes = stamped(batch, base, epoch);
        self.batches.push(MBatch { base, next: base + count, bytes, max_ts });
        self.next = base + count;
        self.next
    }

    /// Drops every batch at or past `offset` (whole batches, as
    /// `truncate_to` does); the new end offset.
    pub(super) fn truncate(&mut self, offset: u64) -> u64 {
        if let Some(first_gone) = self.batches.iter().find(|b| b.next > offset) {
            self.next = first_gone.base;
        }
        self.batches.retain(|b| b.next <= offset);
        let end = self.next;
        self.damaged.retain(|&base, _| base < end);
        self.durable = self.durable.min(end);
        end
    }

    /// The log holds nothing, and its next offset is `offset`: what
    /// recovery makes of a log whose durable start lies past its durable
    /// data (Kafka's truncateFullyAndStartAt).
    pub(super) fn start_fully_at(&mut self, offset: u64) {
        self.batches.clear();
        self.damaged.clear();
        self.next = offset;
        self.durable = offset;
    }

    pub(super) fn first_damaged(&self) -> Option<u64> {
        self.damaged.iter().find(|(_, d)| !d.epoch_only).map(|(&b, _)| b)
    }

    pub(super) fn batch_holding(&self, offset: u64) -> Option<usize> {
        let i = self.batches.partition_point(|b| b.next <= offset);
        (i < self.batches.len()).then_some(i)
    }
}
