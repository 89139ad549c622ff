//! The quorum's durable state in `__cluster_metadata-0/`, on the engine's
//! `Disk` (so the simulator's disk faults reach it):
//!
//! - `quorum.log`: frames appended in order, each fsynced before anything
//!   that depends on it leaves the node (a vote, an append's ack). A frame
//!   is `[len u32][crc32c u32][payload]`, the payload an optional hard
//!   state (term, vote, commit) and a run of entries; entries at an index
//!   the log already holds replace it and everything after (Raft's
//!   truncation of a divergent tail).
//! - `quorum.snapshot`: the latest snapshot (the image at an index, as
//!   JSON, with raft's metadata), replaced atomically; the log then
//!   restarts from it (rewritten atomically, holding what follows).
//!
//! One frame per persist: the next is written only after this one is
//! synced, so only the last frame can be torn by a crash. A bad frame at
//! the end is that torn write, and is cut; a bad frame followed by a good
//! one is damage to synced state, and the node refuses to start (Raft's
//! promises rest on what it persisted: guessing would break them).

use crate::io::{Disk, DiskFile, OpenMode};
use crate::log::checkpoint::write_atomic;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::prelude::{Entry, HardState, Snapshot};
use std::io;
use std::path::{Path, PathBuf};

/// `log::manager::METADATA_TOPIC`'s partition 0, as Kafka names it.
pub const QUORUM_DIR: &str = "__cluster_metadata-0";
const LOG_FILE: &str = "quorum.log";
const SNAPSHOT_FILE: &str = "quorum.snapshot";
const FRAME_HEADER: usize = 8;
/// Largest frame or snapshot read back; a bigger length is damage.
const FRAME_BYTES_MAX: usize = 256 * 1024 * 1024;

/// What a restart finds.
#[derive(Debug, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
    /// Bytes of torn tail cut off.
    pub cut_bytes: u64,
}

pub struct QuorumStore<D: Disk> {
    disk: D,
    dir: PathBuf,
    log: D::File,
    len: u64,
    /// A failed write or sync leaves the file's tail unknown: nothing more
    /// is written until a restart recovers it.
    failed: bool,
}

fn damage(path: &Path, what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()))
}

impl<D: Disk> QuorumStore<D> {
    /// Opens (creating) the store under `data_dir` and reads it back.
    pub async fn open(disk: D, data_dir: &Path) -> io::Result<(QuorumStore<D>, Recovered)> {
        let dir = data_dir.join(QUORUM_DIR);
        disk.create_dir_all(&dir).await?;
        // The directory and the log file must survive power loss before
        // anything in them counts as persisted.
        disk.sync_dir(data_dir).await?;
        let snapshot = read_snapshot(&disk, &dir.join(SNAPSHOT_FILE)).await?;
        let path = dir.join(LOG_FILE);
        let log = disk.open(&path, OpenMode::Create).await?;
        disk.sync_dir(&dir).await?;
        let file_len = log.len().await?;
        let bytes = log.read_at(0, file_len as usize).await?;
        let (frames, good_len) = parse_frames(&path, &bytes)?;
        let mut recovered = Recovered { snapshot, cut_bytes: file_len - good_len, ..Recovered::default() };
        let first = recovered.snapshot.as_ref().map_or(1, |s| s.get_metadata().index + 1);
        for (hard_state, entries) in frames {
            if let Some(hs) = hard_state {
                recovered.hard_state = hs;
            }
            for entry in entries {
                if entry.index < first {
                    continue;
                }
                let keep = (entry.index - first) as usize;
                if keep > recovered.entries.len() {
                    return Err(damage(&path, format!("entry {} leaves a gap", entry.index)));
                }
                recovered.entries.truncate(keep);
                recovered.entries.push(entry);
            }
        }
        if recovered.cut_bytes > 0 {
            tracing::warn!(path = %path.display(), bytes = recovered.cut_bytes, "cutting a torn tail off the quorum log");
            log.set_len(good_len).await?;
            log.sync_data().await?;
        }
        let store = QuorumStore { disk, dir, log, len: good_len, failed: false };
        Ok((store, recovered))
    }

    /// Appends one frame and syncs it.
    pub async fn persist(&mut self, hard_state: Option<&HardState>, entries: &[Entry]) -> io::Result<()> {
        if hard_state.is_none() && entries.is_empty() {
            return Ok(());
        }
        if self.failed {
            return Err(io::Error::other("the quorum log failed a write earlier"));
        }
        let frame = encode_frame(hard_state, entries);
        let len = frame.len() as u64;
        // Planted bug (sim/canaries): a frame carrying only a vote or a new
        // term is never written, so votes are granted without being durable.
        if crate::canary::Canary::QuorumVoteUnpersisted.on() && entries.is_empty() {
            return Ok(());
        }
        let written = async {
            self.log.write_at(self.len, frame).await?;
            self.log.sync_data().await
        }
        .await;
        match written {
            Ok(()) => {
                self.len += len;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// Makes `snapshot` the store's base: written, then the log rewritten
    /// to hold `hard_state` and the `entries` after it.
    pub async fn install_snapshot(
        &mut self,
        snapshot: &Snapshot,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("the quorum log failed a write earlier"));
        }
        let bytes = snapshot.write_to_bytes().map_err(io::Error::other)?;
        let mut framed = BytesMut::with_capacity(bytes.len() + FRAME_HEADER);
        framed.put_u32(bytes.len() as u32);
        framed.put_u32(crc32c::crc32c(&bytes));
        framed.put_slice(&bytes);
        let result = async {
            write_atomic(&self.disk, &self.dir, SNAPSHOT_FILE, framed.freeze()).await?;
            let frame = encode_frame(Some(hard_state), entries);
            let len = frame.len() as u64;
            write_atomic(&self.disk, &self.dir, LOG_FILE, frame).await?;
            self.log = self.disk.open(&self.dir.join(LOG_FILE), OpenMode::Existing).await?;
            self.len = len;
            Ok(())
        }
        .await;
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

fn encode_frame(hard_state: Option<&HardState>, entries: &[Entry]) -> Bytes {
    let mut payload = BytesMut::new();
    let put_message = |payload: &mut BytesMut, bytes: Vec<u8>| {
        payload.put_u32(bytes.len() as u32);
        payload.put_slice(&bytes);
    };
    match hard_state {
        Some(hs) => {
            payload.put_u8(1);
            put_message(&mut payload, hs.write_to_bytes().expect("a hard state encodes"));
        }
        None => payload.put_u8(0),
    }
    payload.put_u32(entries.len() as u32);
    for entry in entries {
        put_message(&mut payload, entry.write_to_bytes().expect("an entry encodes"));
    }
    let mut frame = BytesMut::with_capacity(payload.len() + FRAME_HEADER);
    frame.put_u32(payload.len() as u32);
    frame.put_u32(crc32c::crc32c(&payload));
    frame.put_slice(&payload);
    frame.freeze()
}

type Frame = (Option<HardState>, Vec<Entry>);

/// The frames of a log file and the length of its good prefix.
fn parse_frames(path: &Path, bytes: &[u8]) -> io::Result<(Vec<Frame>, u64)> {
    let mut frames = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        match frame_at(bytes, at) {
            Some((frame, next)) => {
                frames.push(frame);
                at = next;
            }
            None => {
                // Torn, or damaged? Only the last frame may be torn: a good
                // frame anywhere after this one means synced state is bad.
                if (at + 1..bytes.len()).any(|later| frame_at(bytes, later).is_some()) {
                    return Err(damage(path, format!("a damaged frame at byte {at} before good ones")));
                }
                break;
            }
        }
    }
    Ok((frames, at as u64))
}

/// The frame starting at `at`, and where the next starts; `None` if the
/// bytes there are not a whole frame with a good checksum.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Frame, usize)> {
    let mut header = bytes.get(at..at + FRAME_HEADER)?;
    let len = header.get_u32() as usize;
    let crc = header.get_u32();
    if len == 0 || len > FRAME_BYTES_MAX {
        return None;
    }
    let payload = bytes.get(at + FRAME_HEADER..at + FRAME_HEADER + len)?;
    if crc32c::crc32c(payload) != crc {
        return None;
    }
    let frame = decode_payload(payload)?;
    Some((frame, at + FRAME_HEADER + len))
}

fn decode_payload(mut payload: &[u8]) -> Option<Frame> {
    fn message<'a>(payload: &mut &'a [u8]) -> Option<&'a [u8]> {
        if payload.remaining() < 4 {
            return None;
        }
        let len = payload.get_u32() as usize;
        let (bytes, rest) = (payload.get(..len)?, payload.get(len..)?);
        *payload = rest;
        Some(bytes)
    }
    if payload.remaining() < 1 {
        return None;
    }
    let hard_state = match payload.get_u8() {
        0 => None,
        1 => Some(HardState::parse_from_bytes(message(&mut payload)?).ok()?),
        _ => return None,
    };
    if payload.remaining() < 4 {
        return None;
    }
    let count = payload.get_u32() as usize;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        entries.push(Entry::parse_from_bytes(message(&mut payload)?).ok()?);
    }
    payload.is_empty().then_some((hard_state, entries))
}

async fn read_snapshot<D: Disk>(disk: &D, path: &Path) -> io::Result<Option<Snapshot>> {
    let file = match disk.open(path, OpenMode::Existing).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.len().await? as usize;
    if len > FRAME_BYTES_MAX + FRAME_HEADER {
        return Err(damage(path, format!("{len} bytes")));
    }
    let bytes = file.read_at(0, len).await?;
    let mut header = bytes.get(..FRAME_HEADER).ok_or_else(|| damage(path, "no header".into()))?;
    let (size, crc) = (header.get_u32() as usize, header.get_u32());
    let body = bytes.get(FRAME_HEADER..).filter(|b| b.len() == size && crc32c::crc32c(b) == crc);
    let body = body.ok_or_else(|| damage(path, "bad checksum or length".into()))?;
    let snapshot = Snapshot::parse_from_bytes(body).map_err(|e| damage(path, e.to_string()))?;
    Ok(Some(snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDisk;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, data: vec![index as u8; 10].into(), ..Default::default() }
    }

    fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
        HardState { term, vote, commit, ..Default::default() }
    }

    async fn open(disk: &MemDisk) -> io::Result<(QuorumStore<MemDisk>, Recovered)> {
        QuorumStore::open(disk.clone(), Path::new("/d")).await
    }

    fn indexes(r: &Recovered) -> Vec<(u64, u64)> {
        r.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[tokio::test]
    async fn frames_replay_with_overwrites_and_the_last_hard_state() {
        let disk = MemDisk::new();
        let (mut store, recovered) = open(&disk).await.unwrap();
        assert!(recovered.entries.is_empty());
        store.persist(Some(&hard_state(1, 1, 0)), &[entry(1, 1), entry(2, 1), entry(3, 1)]).await.unwrap();
        // A new leader's entries replace a divergent tail.
        store.persist(Some(&hard_state(2, 2, 2)), &[entry(3, 2), entry(4, 2)]).await.unwrap();
        let (_, recovered) = open(&disk).await.unwrap();
        assert_eq!(indexes(&recovered), [(1, 1), (2, 1), (3, 2), (4, 2)]);
        assert_eq!(recovered.hard_state, hard_state(2, 2, 2));
    }

    #[tokio::test]
    async fn a_torn_last_frame_is_cut_and_damage_before_a_good_frame_is_refused() {
        let disk = MemDisk::new();
        let (mut store, _) = open(&disk).await.unwrap();
        store.persist(Some(&hard_state(1, 1, 0)), &[entry(1, 1)]).await.unwrap();
        store.persist(None, &[entry(2, 1)]).await.unwrap();
        let log = Path::new("/d").join(QUORUM_DIR).join(LOG_FILE);
        let len = disk.contents(&log).unwrap().len() as u64;
        // The last frame torn: cut, the rest kept, and the store appends on.
        disk.corrupt(&log, len - 3, 0xff).unwrap();
        let (mut store, recovered) = open(&disk).await.unwrap();
        assert_eq!(indexes(&recovered), [(1, 1)]);
        assert!(recovered.cut_bytes > 0);
        store.persist(None, &[entry(2, 1)]).await.unwrap();
        let (_, recovered) = open(&disk).await.unwrap();
        assert_eq!(indexes(&recovered), [(1, 1), (2, 1)]);
        // The first frame damaged with a good one after it: synced state is bad.
        disk.corrupt(&log, 12, 0x01).unwrap();
        let err = open(&disk).await.err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("damaged frame"), "{err}");
    }

    #[tokio::test]
    async fn a_snapshot_becomes_the_base_and_the_log_restarts_after_it() {
        let disk = MemDisk::new();
        let (mut store, _) = open(&disk).await.unwrap();
        store
            .persist(Some(&hard_state(1, 1, 3)), &[entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)])
            .await
            .unwrap();
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = 3;
        snapshot.mut_metadata().term = 1;
        snapshot.set_data(b"image".to_vec().into());
        store.install_snapshot(&snapshot, &hard_state(1, 1, 3), &[entry(4, 1)]).await.unwrap();
        store.persist(None, &[entry(5, 1)]).await.unwrap();
        let (_, recovered) = open(&disk).await.unwrap();
        assert_eq!(recovered.snapshot.as_ref().map(|s| s.get_metadata().index), Some(3));
        assert_eq!(indexes(&recovered), [(4, 1), (5, 1)]);
    }

    #[tokio::test]
    async fn a_failed_write_stops_the_store() {
        let disk = MemDisk::new();
        let (mut store, _) = open(&disk).await.unwrap();
        disk.fail_next_syncs(1);
        assert!(store.persist(None, &[entry(1, 1)]).await.is_err());
        assert!(store.persist(None, &[entry(1, 1)]).await.is_err(), "nothing more after a failure");
    }
}
