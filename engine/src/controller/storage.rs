//! raft's view of the log: what the node has persisted (the store on disk
//! holds the same), in memory. raft reads it; the controller changes it
//! only after the disk has the change.

use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

#[derive(Default)]
pub struct QuorumStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot: its data is the image at its index.
    snapshot: Snapshot,
    /// `entries[i].index == snapshot index + 1 + i`.
    entries: Vec<Entry>,
}

impl QuorumStorage {
    pub fn new(conf_state: ConfState) -> QuorumStorage {
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().set_conf_state(conf_state.clone());
        QuorumStorage { conf_state, snapshot, ..QuorumStorage::default() }
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub fn latest_snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn entries_after_snapshot(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends `entries`, replacing any the log holds at their indexes and
    /// after (a new leader's log wins over a divergent tail).
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        let base = self.snapshot_index() + 1;
        assert!(first.index >= base, "appending {} below the snapshot at {}", first.index, base - 1);
        let keep = ((first.index - base) as usize).min(self.entries.len());
        assert!(keep == (first.index - base) as usize, "appending {} leaves a gap", first.index);
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
    }

    /// A snapshot from the leader replaces the whole log.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.get_conf_state().clone();
        self.entries.clear();
        self.snapshot = snapshot;
    }

    /// A snapshot of our own applied state: entries up to it are dropped.
    pub fn compact_to(&mut self, snapshot: Snapshot) {
        let index = snapshot.get_metadata().index;
        let drop = (index.saturating_sub(self.snapshot_index()) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot = snapshot;
    }
}

impl raft::Storage for QuorumStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let first = self.snapshot_index() + 1;
        if low < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let last = self.snapshot_index() + self.entries.len() as u64;
        if high > last + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut entries = self.entries[(low - first) as usize..(high - first) as usize].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let snapshot = self.snapshot.get_metadata();
        if idx == snapshot.index {
            return Ok(snapshot.term);
        }
        if idx < snapshot.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match self.entries.get((idx - snapshot.index - 1) as usize) {
            Some(e) => Ok(e.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.snapshot_index() + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.snapshot_index() + self.entries.len() as u64)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot_index() >= request_index {
            Ok(self.snapshot.clone())
        } else {
            Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
        }
    }
}
