//! Power loss on a `MemDisk`: what a crash keeps of the writes, length
//! changes and namespace changes not yet synced (mem.rs has the model).

use super::{write_into, Entry, InodeId, MemDisk, PendingOp, SECTOR_BYTES};
use std::path::PathBuf;

/// How a crash treats pending (unsynced) operations.
pub enum CrashMode<'a> {
    /// Every unsynced write and length change is lost.
    DropUnsynced,
    /// Everything reaches the disk, as after a clean power-off.
    KeepAll,
    /// Each pending operation is kept, dropped or torn (writes only), chosen
    /// by `rng`; pending namespace changes are each kept or dropped too.
    /// A torn write's sectors each hold their old or their new contents.
    Random(&'a mut dyn FnMut() -> u64),
    /// Every pending write is torn, each of its sectors given the fate the
    /// function returns; pending length changes are applied, in order with
    /// the writes; pending namespace changes are lost. For tests that walk
    /// every outcome of one crash point.
    Sectors(&'a mut dyn FnMut(PendingSector) -> SectorFate),
}

/// A sector of a pending write, as `CrashMode::Sectors` asks about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingSector {
    /// Which of its file's pending writes: 0 is the oldest since the last
    /// `sync_data`.
    pub write: usize,
    /// File offset of the write's bytes in this sector (the write's own
    /// offset for a write that starts mid-sector).
    pub offset: u64,
}

/// What a crash leaves in one sector of a write in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectorFate {
    /// What the sector held before the write.
    Old,
    /// The write's bytes.
    New,
    /// Neither: every byte the complement of the write's, as a device that
    /// lost power while programming the sector might leave it.
    Garbage,
}

impl MemDisk {
    /// Simulates power loss: unsynced state is lost or kept per `mode`, open
    /// handles and locks from before the crash become invalid.
    pub fn crash(&self, mut mode: CrashMode<'_>) {
        let mut s = self.lock();
        s.incarnation += 1;
        s.locks.clear();
        let mut namespace = s.durable.clone();
        if let CrashMode::KeepAll = mode {
            namespace = s.live.clone();
        }
        let renames = std::mem::take(&mut s.renames);
        if let CrashMode::Random(rng) = &mut mode {
            // A rename still in effect reached the disk whole or not at all.
            let mut decided = std::collections::BTreeSet::new();
            for (from, to, id) in renames {
                let in_effect = s.live.get(&to) == Some(&Entry::File(id)) && !s.live.contains_key(&from);
                if !in_effect || decided.contains(&from) || decided.contains(&to) {
                    continue;
                }
                if rng() % 2 == 0 {
                    namespace.remove(&from);
                    namespace.insert(to.clone(), Entry::File(id));
                }
                decided.insert(from);
                decided.insert(to);
            }
            // Each other namespace change since the last dir sync
            // independently reached the disk or not.
            let paths: Vec<PathBuf> = s.live.keys().chain(s.durable.keys()).cloned().collect();
            for path in paths.into_iter().filter(|p| !decided.contains(p)) {
                let (live, durable) = (s.live.get(&path).copied(), s.durable.get(&path).copied());
                if live != durable && rng() % 2 == 0 {
                    match live {
                        Some(e) => namespace.insert(path, e),
                        None => namespace.remove(&path),
                    };
                }
            }
        }
        let ids: Vec<InodeId> = s.inodes.keys().copied().collect();
        for id in ids {
            let inode = s.inodes.get_mut(&id).expect("listed");
            let mut bytes = std::mem::take(&mut inode.durable);
            let mut writes = 0;
            for op in inode.pending.drain(..) {
                match &mut mode {
                    CrashMode::DropUnsynced => {}
                    CrashMode::KeepAll => apply(&mut bytes, &op, None),
                    CrashMode::Random(rng) => match rng() % 3 {
                        0 => {}
                        1 => apply(&mut bytes, &op, None),
                        _ => {
                            let mut coin = |_| if rng() % 2 == 0 { SectorFate::New } else { SectorFate::Old };
                            apply(&mut bytes, &op, Some(&mut coin))
                        }
                    },
                    CrashMode::Sectors(fate) => {
                        let write = writes;
                        apply(&mut bytes, &op, Some(&mut |offset| fate(PendingSector { write, offset })));
                    }
                }
                if let PendingOp::Write { .. } = op {
                    writes += 1;
                }
            }
            inode.live = bytes.clone();
            inode.durable = bytes;
        }
        let referenced: Vec<InodeId> = namespace
            .values()
            .filter_map(|e| match e {
                Entry::File(id) => Some(*id),
                Entry::Dir => None,
            })
            .collect();
        s.inodes.retain(|id, _| referenced.contains(id));
        s.live = namespace.clone();
        s.durable = namespace;
    }
}

/// Applies one pending operation to `bytes`. With `tear`, each sector of a
/// write gets the fate `tear` gives it (called with the piece's offset).
pub(super) fn apply(bytes: &mut Vec<u8>, op: &PendingOp, tear: Option<&mut dyn FnMut(u64) -> SectorFate>) {
    match op {
        PendingOp::SetLen(len) => bytes.resize(*len as usize, 0),
        PendingOp::Write { offset, data } => match tear {
            None => write_into(bytes, *offset, data),
            Some(fate) => {
                let end = offset + data.len() as u64;
                let mut at = *offset;
                while at < end {
                    let sector_end = ((at / SECTOR_BYTES) + 1) * SECTOR_BYTES;
                    let piece_end = sector_end.min(end);
                    let piece = &data[(at - offset) as usize..(piece_end - offset) as usize];
                    match fate(at) {
                        SectorFate::Old => {}
                        SectorFate::New => write_into(bytes, at, piece),
                        SectorFate::Garbage => {
                            let junk: Vec<u8> = piece.iter().map(|b| !b).collect();
                            write_into(bytes, at, &junk);
                        }
                    }
                    at = piece_end;
                }
            }
        },
    }
}
