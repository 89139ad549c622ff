//! The leader-epoch checkpoint of a partition's log: where each leader
//! epoch's records begin, so a replica can say where its log diverged from
//! another's (OffsetForLeaderEpoch) and truncate only the divergent tail.
//!
//! Kept in `leader-epoch-checkpoint` in the partition's directory, in
//! Kafka's format (a version line `0`, a count line, then `epoch offset`
//! lines), replaced atomically. An epoch is assigned (and the file written)
//! before any batch of it is appended, so the file never lacks an epoch the
//! log holds; entries a crash left beyond the log's end are dropped at
//! open, and truncation drops entries at or beyond its offset.
//!
//! Invariants: epochs strictly increase along the entries, and so do
//! start offsets (an epoch with no records is replaced by the next one
//! assigned at the same offset).

use super::checkpoint::write_atomic;
use super::partition_log::Log;
use crate::io::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::io;

pub const EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
const CHECKPOINT_BYTES_MAX: u64 = 1 << 20;

/// Epochs and the offsets they start at, ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochs {
    entries: Vec<(i32, u64)>,
}

impl LeaderEpochs {
    pub fn entries(&self) -> &[(i32, u64)] {
        &self.entries
    }

    pub fn latest(&self) -> Option<(i32, u64)> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start`; whether anything changed.
    /// An older epoch, or an offset below the latest epoch's start, is a
    /// caller's bug (debug-asserted) and changes nothing.
    pub fn assign(&mut self, epoch: i32, start: u64) -> bool {
        match self.entries.last().copied() {
            Some((e, _)) if e == epoch => false,
            Some((e, s)) if e > epoch || s > start => {
                debug_assert!(false, "epoch {epoch} at {start} after epoch {e} at {s}");
                false
            }
            Some((_, s)) if s == start => {
                // The previous epoch never got a record: this one replaces it.
                *self.entries.last_mut().expect("just matched") = (epoch, start);
                true
            }
            _ => {
                self.entries.push((epoch, start));
                true
            }
        }
    }

    /// Drops entries starting at or after `offset` (the log was cut there).
    pub fn truncate_from(&mut self, offset: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < offset);
        self.entries.len() != before
    }

    /// Kafka's answer to OffsetForLeaderEpoch for `epoch`, with the log
    /// ending at `log_end`: the largest epoch at or below it that this log
    /// knows, and where that epoch ends (the next epoch's start, or the log
    /// end for the latest). `None` when the log knows no epoch that old, or
    /// none that new: an epoch past the latest is one this log's leader never
    /// led, and Kafka answers it as undefined rather than guess an end.
    pub fn end_of(&self, epoch: i32, log_end: u64) -> Option<(i32, u64)> {
        if self.latest().is_some_and(|(latest, _)| epoch > latest) {
            return None;
        }
        let after = self.entries.partition_point(|(e, _)| *e <= epoch);
        let (found, _) = *self.entries.get(after.checked_sub(1)?)?;
        let end = self.entries.get(after).map_or(log_end, |(_, start)| *start);
        Some((found, end))
    }

    pub fn encode(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            out.push_str(&format!("{epoch} {start}\n"));
        }
        out
    }

    pub fn decode(text: &str) -> Result<LeaderEpochs, String> {
        let mut lines = text.lines();
        if lines.next() != Some("0") {
            return Err("not a version 0 leader-epoch checkpoint".into());
        }
        let count: usize = lines.next().and_then(|l| l.parse().ok()).ok_or("no entry count")?;
        let mut epochs = LeaderEpochs::default();
        for line in lines.by_ref().take(count) {
            let mut fields = line.split(' ');
            let (Some(e), Some(s), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(format!("bad entry {line:?}"));
            };
            let epoch: i32 = e.parse().map_err(|_| format!("bad epoch {e:?}"))?;
            let start: u64 = s.parse().map_err(|_| format!("bad offset {s:?}"))?;
            if epochs.latest().is_some_and(|(le, ls)| le >= epoch || ls >= start) || epoch < 0 {
                return Err(format!("entry {line:?} out of order"));
            }
            epochs.entries.push((epoch, start));
        }
        if epochs.entries.len() != count || lines.next().is_some() {
            return Err(format!("{count} entries announced, {} found or extra lines", epochs.entries.len()));
        }
        Ok(epochs)
    }
}

impl<D: Disk> Log<D> {
    /// This log's leader epochs (a copy).
    pub fn leader_epochs(&self) -> LeaderEpochs {
        self.epochs().clone()
    }

    /// OffsetForLeaderEpoch against this log (see `LeaderEpochs::end_of`).
    pub fn end_of_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        let end = self.log_end_offset();
        self.epochs().end_of(epoch, end)
    }

    /// Records that `epoch`'s records start at `start`, durably, before any
    /// of them is appended: a leader taking its epoch at its log end, a
    /// follower about to append a fetched batch of a new epoch.
    pub async fn assign_epoch(&self, epoch: i32, start: u64) -> io::Result<()> {
        let _writer = self.writer.lock().await;
        let next = {
            let mut next = self.epochs().clone();
            if !next.assign(epoch, start) {
                return Ok(());
            }
            next
        };
        self.write_epochs(&next).await?;
        *self.epochs() = next;
        Ok(())
    }

    /// After the log was cut at `offset` (the caller holds the writer role).
    pub(super) async fn truncate_epochs(&self, offset: u64) -> io::Result<()> {
        let mut next = self.epochs().clone();
        if next.truncate_from(offset) {
            self.write_epochs(&next).await?;
            *self.epochs() = next;
        }
        Ok(())
    }

    async fn write_epochs(&self, epochs: &LeaderEpochs) -> io::Result<()> {
        let bytes = Bytes::from(epochs.encode());
        write_atomic(self.disk.as_ref(), &self.dir, EPOCH_CHECKPOINT, bytes).await
    }
}

/// Reads the checkpoint at open, dropping entries at or past `log_end`
/// (assigned, then lost with their records in a crash). A missing file is
/// empty; an unreadable one too, with an error logged: replicas then fall
/// back to the high watermark to truncate, as Kafka's do.
pub(super) async fn load<D: Disk>(disk: &D, dir: &std::path::Path, log_end: u64) -> io::Result<LeaderEpochs> {
    let path = dir.join(EPOCH_CHECKPOINT);
    let file = match disk.open(&path, OpenMode::Existing).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LeaderEpochs::default()),
        Err(e) => return Err(e),
    };
    let len = file.len().await?;
    let decoded = if len > CHECKPOINT_BYTES_MAX {
        Err(format!("{len} bytes"))
    } else {
        let bytes = file.read_at(0, len as usize).await?;
        std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(LeaderEpochs::decode)
    };
    match decoded {
        Ok(mut epochs) => {
            epochs.truncate_from(log_end);
            Ok(epochs)
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "unreadable leader-epoch checkpoint; starting without one");
            Ok(LeaderEpochs::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(entries: &[(i32, u64)]) -> LeaderEpochs {
        let mut e = LeaderEpochs::default();
        for &(epoch, start) in entries {
            assert!(e.assign(epoch, start));
        }
        e
    }

    #[test]
    fn end_of_an_epoch_is_the_next_ones_start_or_the_log_end() {
        let e = epochs(&[(1, 0), (3, 40), (4, 90)]);
        assert_eq!(e.end_of(0, 120), None, "older than anything known");
        assert_eq!(e.end_of(1, 120), Some((1, 40)));
        assert_eq!(e.end_of(2, 120), Some((1, 40)), "an epoch this log never saw: the one before it");
        assert_eq!(e.end_of(3, 120), Some((3, 90)));
        assert_eq!(e.end_of(4, 120), Some((4, 120)));
        assert_eq!(e.end_of(9, 120), None, "newer than anything known");
        assert_eq!(LeaderEpochs::default().end_of(1, 5), None);
    }

    #[test]
    fn assignment_keeps_order_and_an_empty_epoch_is_replaced() {
        let mut e = epochs(&[(1, 0)]);
        assert!(!e.assign(1, 10), "the same epoch again");
        assert!(e.assign(2, 10));
        assert!(e.assign(3, 10), "epoch 2 had no records");
        assert_eq!(e.entries(), [(1, 0), (3, 10)]);
        assert!(e.truncate_from(10));
        assert_eq!(e.entries(), [(1, 0)]);
        assert!(!e.truncate_from(10));
    }

    #[test]
    fn the_checkpoint_round_trips_in_kafkas_format_and_damage_is_refused() {
        let e = epochs(&[(0, 0), (2, 17), (5, 300)]);
        let text = e.encode();
        assert_eq!(text, "0\n3\n0 0\n2 17\n5 300\n");
        assert_eq!(LeaderEpochs::decode(&text), Ok(e));
        for bad in
            ["1\n0\n", "0\n2\n0 0\n", "0\n1\n0 0 0\n", "0\n2\n2 5\n1 9\n", "0\n1\nx 1\n", "0\n1\n0 0\n1 1\n"]
        {
            assert!(LeaderEpochs::decode(bad).is_err(), "{bad:?}");
        }
    }
}
