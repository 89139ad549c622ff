//! What a voter does with what raft committed: entries applied to the
//! metadata image in order (answering this node's proposals), snapshots
//! installed, and snapshots taken every `snapshot_every` entries.

use super::{Controller, SnapshotData};
use crate::controller::records::decode_batch;
use crate::error::{BrokerError, ErrorCode};
use raft::prelude::{ConfState, Entry, EntryType, HardState, Snapshot};

impl Controller {
    pub(super) fn install_snapshot(&mut self, snapshot: Snapshot) {
        match serde_json::from_slice::<SnapshotData>(snapshot.get_data()) {
            Ok(data) => {
                self.image = data.image;
                self.applied = data.applied;
            }
            // The leader built it from its own image: unreadable data is a
            // bug, not damage (it crossed the network with raft's framing).
            Err(e) => panic!("a leader's snapshot is unreadable: {e}"),
        }
        self.raw.mut_store().apply_snapshot(snapshot);
    }

    pub(super) fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if entry.index <= self.applied {
                continue;
            }
            debug_assert_eq!(entry.index, self.applied + 1, "entries apply in order, none skipped");
            self.applied = entry.index;
            if let Some(log) = &mut self.applied_log {
                log.push((entry.index, entry.term, crc32c::crc32c(&entry.data)));
            }
            if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
                continue;
            }
            let outcome = match decode_batch(&entry.data) {
                Ok(records) => {
                    let mut took = true;
                    for record in &records {
                        took &= self.image.apply(record);
                    }
                    took
                }
                Err(e) => {
                    // Written by a leader of this quorum and checksummed on
                    // disk: every node skips it alike.
                    tracing::error!(index = entry.index, error = %e, "skipping an unreadable metadata entry");
                    false
                }
            };
            debug_assert_eq!(self.image.check(), Ok(()), "the image after entry {}", entry.index);
            self.answer(&entry, outcome);
        }
    }

    /// Answers this node's proposal carried by `entry`.
    fn answer(&mut self, entry: &Entry, took: bool) {
        let Some((node, id)) = entry.context.split_at_checked(8) else { return };
        let node = u64::from_be_bytes(node.try_into().expect("8 bytes"));
        let Ok(id) = <[u8; 8]>::try_from(id).map(u64::from_be_bytes) else { return };
        if node != self.config.node_id || self.pending.remove(&id).is_none() {
            return;
        }
        if self.duty == Some(id) {
            self.duty = None;
            return;
        }
        let answer = if took {
            Ok(entry.index)
        } else {
            Err(BrokerError::new(ErrorCode::InvalidRequest, "overtaken by an earlier metadata change"))
        };
        self.answers.push((id, answer));
    }

    pub(super) fn maybe_snapshot(&mut self) {
        let store = self.raw.store();
        if self.applied < store.snapshot_index() + self.config.snapshot_every {
            return;
        }
        let term = raft::Storage::term(store, self.applied).expect("an applied entry is in the log");
        let data = SnapshotData { applied: self.applied, image: self.image.clone() };
        let mut snapshot = Snapshot::default();
        snapshot.set_data(serde_json::to_vec(&data).expect("the image serializes").into());
        let meta = snapshot.mut_metadata();
        meta.index = self.applied;
        meta.term = term;
        meta.set_conf_state(ConfState::from((self.config.voters.clone(), Vec::new())));
        self.raw.mut_store().compact_to(snapshot.clone());
        self.compaction = Some(snapshot);
    }

    /// A snapshot taken since the last call, with what the store keeps
    /// after it: the driver writes them.
    pub fn take_compaction(&mut self) -> Option<(Snapshot, HardState, Vec<Entry>)> {
        let snapshot = self.compaction.take()?;
        let store = self.raw.store();
        Some((snapshot, store.hard_state().clone(), store.entries_after_snapshot().to_vec()))
    }
}
