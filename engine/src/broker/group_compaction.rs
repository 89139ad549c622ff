//! Compaction of the `__consumer_offsets` partitions this broker leads
//! (`group::compaction` says what and why): the snapshot written, then the
//! log start moved to it.

use super::{Broker, Partition};
use crate::group::compaction::worth_compacting;
use crate::group::records::build_batch;
use crate::group::OffsetsRecord;
use crate::io::Disk;
use bytes::Bytes;

/// Encoded bytes per snapshot batch: well under the offsets topic's
/// max.message.bytes, which every single record written live fits.
const SNAPSHOT_BATCH_BYTES: usize = 256 << 10;

/// A snapshot's records as batches of about `SNAPSHOT_BATCH_BYTES`.
/// `None` if any is not encodable (not expected: each was when first
/// written): a snapshot is whole or not written at all.
fn snapshot_batches(records: &[OffsetsRecord], now_ms: i64) -> Option<Vec<Bytes>> {
    let mut chunks = Vec::new();
    let (mut from, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        bytes += r.encode().map(|(k, v)| k.len() + v.map_or(0, |v| v.len())).unwrap_or(0);
        if bytes >= SNAPSHOT_BATCH_BYTES || i + 1 == records.len() {
            chunks.push(&records[from..=i]);
            (from, bytes) = (i + 1, 0);
        }
    }
    chunks
        .into_iter()
        .map(|chunk| {
            build_batch(chunk, now_ms)
                .inspect_err(|e| tracing::error!(error = %e, "snapshot not encodable"))
                .ok()
        })
        .collect()
}

impl<D: Disk> Broker<D> {
    /// When most of offsets partition `p`'s log is superseded, appends its
    /// live records as a snapshot and moves the log start to the snapshot
    /// (`group::compaction`). A failure leaves the log as it was.
    pub(super) async fn compact_offsets_partition(&self, p: i32, partition: &Partition<D>) {
        let now_ms = self.now_ms();
        let min_records = self.config.group.compaction_min_records;
        // Only a whole snapshot may move the log start: a partial one would
        // drop the records it did not rewrite.
        let mut whole = true;
        let (tickets, log_end) = {
            let mut c = self.coordinator();
            let Ok(shard) = c.shard(p) else { return };
            let log_records = partition.log.log_end_offset() - partition.log.log_start_offset();
            if !worth_compacting(log_records, shard.mirror.len(), min_records) {
                return;
            }
            let Some(batches) = snapshot_batches(&shard.mirror.snapshot(), now_ms) else { return };
            let mut tickets = Vec::new();
            for batch in batches {
                match partition.log.enqueue(batch, partition.leader_epoch()) {
                    Ok(ticket) => tickets.push(ticket),
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, "compacting consumer offsets failed");
                        whole = false;
                        break;
                    }
                }
            }
            (tickets, partition.log.log_end_offset())
        };
        let mut start = None;
        for ticket in tickets {
            match ticket.wait().await {
                Ok(info) => {
                    start.get_or_insert(info.base_offset);
                }
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "compacting consumer offsets failed");
                    whole = false;
                }
            }
        }
        partition.refresh_high_watermark();
        if !whole {
            return;
        }
        // No live record: everything written before the check is superseded.
        let start = start.unwrap_or(log_end);
        match self.logs.delete_records_before(&partition.tp, start).await {
            Ok(outcome) => tracing::info!(
                partition = %partition.tp,
                log_start_offset = outcome.log_start_offset,
                segments_deleted = outcome.segments_deleted,
                "compacted consumer offsets"
            ),
            Err(e) => tracing::warn!(partition = p, error = %e, "compacting consumer offsets failed"),
        }
    }
}
