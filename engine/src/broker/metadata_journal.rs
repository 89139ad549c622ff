//! How a broker that keeps its own metadata persists it: a snapshot
//! (`cluster-metadata.json`, replaced atomically) and a journal of the
//! changes made since (`cluster-metadata.journal`), so that creating one
//! topic among ten thousand writes that topic, not all of them.
//!
//! Invariants:
//! - J1: a change is acknowledged only once its journal record (or a
//!   snapshot holding it) is durable;
//! - J2: loading applies exactly the records after the snapshot's sequence
//!   number, in order, and stops at the first torn or damaged record
//!   (nothing after it was acknowledged: records are appended one at a
//!   time, each fsynced before the next is written);
//! - J3: the journal is folded into a new snapshot once it outgrows the
//!   snapshot (at least `COMPACT_BYTES_MIN`), so the work per change stays
//!   proportional to the change, amortised;
//! - J4: after a failed write or fsync the journal's durable contents are
//!   unknown, so the next change goes into a whole new snapshot (its
//!   sequence number past every record that may have landed), never after
//!   the unknown bytes.
//!
//! Record framing: `len: u32 BE` (of the payload), `crc32c: u32 BE` (of the
//! payload), payload = JSON `{ "seq": n, "changes": [...] }`.

use super::metadata::{ClusterMetadata, TopicState, METADATA_FILE};
use crate::io::{Disk, DiskFile, OpenMode};
use crate::log::checkpoint::write_atomic;
use crate::security::state::SecurityChange;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

pub const JOURNAL_FILE: &str = "cluster-metadata.journal";
/// The journal is folded into the snapshot once it is larger than both
/// this and the snapshot.
const COMPACT_BYTES_MIN: u64 = 1 << 20;
/// Largest record read back: a whole image's worth of changes.
const RECORD_BYTES_MAX: u32 = 256 << 20;
const FRAME_BYTES: usize = 8;
/// Largest journal read back: it is folded long before (J3).
const JOURNAL_BYTES_MAX: u64 = 2 * super::metadata::METADATA_BYTES_MAX;

/// One change to the metadata; a record holds the changes made together.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MetadataChange {
    PutTopic {
        name: String,
        topic: TopicState,
    },
    DeleteTopic {
        name: String,
    },
    ProducerIds {
        next: i64,
    },
    /// A cluster member followed an image: its cluster id and applied index.
    Followed {
        cluster_id: String,
        applied: u64,
    },
    /// Credentials, ACLs and quotas. Untagged: its own `change` tag names
    /// the kind (`put_acl`, ...), so journals read as before.
    #[serde(untagged)]
    Security(SecurityChange),
}

impl MetadataChange {
    pub fn apply(self, m: &mut ClusterMetadata) {
        match self {
            MetadataChange::PutTopic { name, topic } => {
                m.topics.insert(name, topic);
            }
            MetadataChange::DeleteTopic { name } => {
                m.topics.remove(&name);
            }
            MetadataChange::ProducerIds { next } => m.next_producer_id = next,
            MetadataChange::Followed { cluster_id, applied } => {
                m.cluster_id = cluster_id;
                m.applied = applied;
            }
            MetadataChange::Security(change) => {
                m.security.apply(&change);
            }
        }
    }
}

#[derive(Deserialize)]
struct Record {
    seq: u64,
    changes: Vec<MetadataChange>,
}

#[derive(Serialize)]
struct RecordOut<'a> {
    seq: u64,
    changes: &'a [MetadataChange],
}

/// The snapshot file: the metadata, and the last journal record it holds.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    #[serde(flatten)]
    metadata: &'a ClusterMetadata,
    journal_seq: u64,
}

#[derive(Deserialize)]
struct SnapshotIn {
    #[serde(flatten)]
    metadata: ClusterMetadata,
    /// Absent in files written before the journal existed.
    #[serde(default)]
    journal_seq: u64,
}

/// What a load found.
pub struct Loaded {
    pub metadata: ClusterMetadata,
    /// Sequence number of the last change applied.
    seq: u64,
    /// Bytes of the journal's valid prefix (records up to the first torn
    /// or damaged one).
    journal_valid: u64,
    snapshot_bytes: u64,
}

/// Reads the snapshot and replays the journal after it (read-only).
/// `None` when there is no snapshot yet.
pub async fn load<D: Disk>(disk: &D, dir: &Path) -> io::Result<Option<Loaded>> {
    let Some(bytes) = read_whole(disk, &dir.join(METADATA_FILE), super::metadata::METADATA_BYTES_MAX).await?
    else {
        return Ok(None);
    };
    let snapshot: SnapshotIn = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("{} is not valid metadata: {e}", dir.join(METADATA_FILE).display())))?;
    snapshot.metadata.check_format()?;
    let mut loaded = Loaded {
        metadata: snapshot.metadata,
        seq: snapshot.journal_seq,
        journal_valid: 0,
        snapshot_bytes: bytes.len() as u64,
    };
    let journal_path = dir.join(JOURNAL_FILE);
    let Some(journal) = read_whole(disk, &journal_path, JOURNAL_BYTES_MAX).await? else {
        return Ok(Some(loaded));
    };
    let mut at = 0usize;
    while let Some((record, len)) = decode(&journal[at..]) {
        if record.seq > loaded.seq + 1 {
            // Records are contiguous after the snapshot (J4): a gap means
            // acknowledged changes are missing, which must not pass quietly.
            return Err(invalid(format!(
                "{}: record {} follows {} (changes are missing)",
                journal_path.display(),
                record.seq,
                loaded.seq
            )));
        }
        if record.seq == loaded.seq + 1 {
            for change in record.changes {
                change.apply(&mut loaded.metadata);
            }
            loaded.seq = record.seq;
        }
        // Older records were folded into the snapshot already.
        at += len;
    }
    if at < journal.len() {
        tracing::warn!(
            path = %journal_path.display(),
            valid = at,
            bytes = journal.len(),
            "metadata journal ends in a torn or damaged record; it was never acknowledged, dropping it"
        );
    }
    loaded.journal_valid = at as u64;
    Ok(Some(loaded))
}

/// The writer: appends changes, folds them into snapshots.
pub struct MetadataJournal<D: Disk> {
    dir: PathBuf,
    file: D::File,
    /// Where the next record goes.
    len: u64,
    seq: u64,
    snapshot_bytes: u64,
    /// A write or fsync failed: the next change goes into a snapshot (J4).
    needs_snapshot: bool,
}

impl<D: Disk> MetadataJournal<D> {
    /// Opens the journal for appending after what `loaded` read (a torn
    /// tail is cut off first), or, with no snapshot yet, writes `fresh` as
    /// the first one.
    pub async fn open(
        disk: &D,
        dir: &Path,
        loaded: Option<Loaded>,
        fresh: impl FnOnce() -> Option<ClusterMetadata>,
    ) -> io::Result<(MetadataJournal<D>, Option<ClusterMetadata>)> {
        let path = dir.join(JOURNAL_FILE);
        let file = match disk.open(&path, OpenMode::Existing).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let file = disk.open(&path, OpenMode::Create).await?;
                disk.sync_dir(dir).await?;
                file
            }
            Err(e) => return Err(e),
        };
        let mut journal = MetadataJournal::<D> {
            dir: dir.to_path_buf(),
            file,
            len: 0,
            seq: 0,
            snapshot_bytes: 0,
            needs_snapshot: false,
        };
        let metadata = match loaded {
            Some(l) => {
                if journal.file.len().await? > l.journal_valid {
                    journal.file.set_len(l.journal_valid).await?;
                    journal.file.sync_data().await?;
                }
                (journal.len, journal.seq, journal.snapshot_bytes) =
                    (l.journal_valid, l.seq, l.snapshot_bytes);
                Some(l.metadata)
            }
            None => match fresh() {
                Some(m) => {
                    // Records without a snapshot (an operator removed it)
                    // belong to no metadata this one continues.
                    if journal.file.len().await? > 0 {
                        journal.file.set_len(0).await?;
                        journal.file.sync_data().await?;
                    }
                    journal.snapshot(disk, &m).await?;
                    Some(m)
                }
                None => {
                    // Nothing to write yet (a cluster member before its
                    // first image): the first change makes the snapshot,
                    // without which a journal would be ignored.
                    journal.needs_snapshot = true;
                    None
                }
            },
        };
        Ok((journal, metadata))
    }

    /// Makes `changes` durable (J1). `before` gives the metadata they
    /// apply to, asked for only when the whole of it is written: when the
    /// journal is folded (J3) or after a failure (J4). On error nothing may
    /// be assumed about what landed.
    pub async fn commit(
        &mut self,
        disk: &D,
        changes: &[MetadataChange],
        before: impl Fn() -> ClusterMetadata,
    ) -> io::Result<()> {
        let after = || {
            let mut m = before();
            for change in changes {
                change.clone().apply(&mut m);
            }
            m
        };
        self.seq += 1;
        if self.needs_snapshot {
            return self.snapshot(disk, &after()).await;
        }
        let payload = serde_json::to_vec(&RecordOut { seq: self.seq, changes }).map_err(io::Error::other)?;
        let mut frame = Vec::with_capacity(FRAME_BYTES + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        frame.extend_from_slice(&payload);
        let n = frame.len() as u64;
        if let Err(e) = self.file.write_at_durable(self.len, Bytes::from(frame)).await {
            self.needs_snapshot = true;
            return Err(e);
        }
        self.len += n;
        if self.len > self.snapshot_bytes.max(COMPACT_BYTES_MIN) {
            // The change is durable already; a failed fold only means the
            // next change tries again.
            if let Err(e) = self.snapshot(disk, &after()).await {
                tracing::warn!(error = %e, "folding the metadata journal into a snapshot failed; retrying on the next change");
            }
        }
        Ok(())
    }

    /// Writes `m` (holding every change up to `self.seq`) as the snapshot
    /// and empties the journal.
    async fn snapshot(&mut self, disk: &D, m: &ClusterMetadata) -> io::Result<()> {
        self.needs_snapshot = true;
        let json = serde_json::to_vec(&SnapshotOut { metadata: m, journal_seq: self.seq })
            .map_err(io::Error::other)?;
        let bytes = json.len() as u64;
        write_atomic(disk, &self.dir, METADATA_FILE, Bytes::from(json)).await?;
        self.snapshot_bytes = bytes;
        // The snapshot holds every change: emptying the journal is tidying.
        // Records a failed truncate leaves are at or below the snapshot's
        // sequence number, which loading skips; until it succeeds the
        // next change goes into a snapshot too.
        let emptied = async {
            self.file.set_len(0).await?;
            self.file.sync_data().await
        };
        match emptied.await {
            Ok(()) => {
                self.len = 0;
                self.needs_snapshot = false;
            }
            Err(e) => tracing::warn!(error = %e, "emptying the metadata journal failed"),
        }
        Ok(())
    }
}

/// One record at the start of `bytes` and its framed length, or `None` at
/// the end or at a torn or damaged record.
fn decode(bytes: &[u8]) -> Option<(Record, usize)> {
    let len = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
    let crc = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len > RECORD_BYTES_MAX {
        return None;
    }
    let payload = bytes.get(FRAME_BYTES..FRAME_BYTES + len as usize)?;
    if crc32c::crc32c(payload) != crc {
        return None;
    }
    let record = serde_json::from_slice(payload).ok()?;
    Some((record, FRAME_BYTES + len as usize))
}

async fn read_whole<D: Disk>(disk: &D, path: &Path, max: u64) -> io::Result<Option<Bytes>> {
    let file = match disk.open(path, OpenMode::Existing).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.len().await?;
    if len > max {
        return Err(invalid(format!("{} is {len} bytes", path.display())));
    }
    Ok(Some(file.read_at(0, len as usize).await?))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::PartitionAssignment;
    use crate::io::mem::CrashMode;
    use crate::io::MemDisk;

    fn topic(i: u32) -> TopicState {
        TopicState {
            topic_id: format!("{i:032x}"),
            partitions: vec![PartitionAssignment {
                leader: 1,
                leader_epoch: 0,
                replicas: vec![1],
                isr: vec![1],
                partition_epoch: 0,
            }],
            configs: [("retention.ms".to_string(), i.to_string())].into(),
        }
    }

    /// A broker's view: the journal and the metadata it serves.
    struct Store {
        disk: MemDisk,
        journal: MetadataJournal<MemDisk>,
        served: ClusterMetadata,
    }

    impl Store {
        async fn open(disk: MemDisk) -> Store {
            let loaded = load(&disk, Path::new("/d")).await.unwrap();
            let fresh = || Some(ClusterMetadata::new("c".into()));
            let (journal, m) = MetadataJournal::open(&disk, Path::new("/d"), loaded, fresh).await.unwrap();
            Store { disk, journal, served: m.unwrap() }
        }

        async fn commit(&mut self, changes: Vec<MetadataChange>) -> io::Result<()> {
            let served = &self.served;
            self.journal.commit(&self.disk, &changes, || served.clone()).await?;
            for c in changes {
                c.apply(&mut self.served);
            }
            Ok(())
        }

        async fn persisted(&self) -> ClusterMetadata {
            load(&self.disk, Path::new("/d")).await.unwrap().unwrap().metadata
        }
    }

    fn put(i: u32) -> MetadataChange {
        MetadataChange::PutTopic { name: format!("t{i}"), topic: topic(i) }
    }

    /// Every change reads back, across folds into new snapshots, and one
    /// change among thousands of topics writes a record, not the whole set.
    /// Security changes keep the journal's record shape of before they were
    /// one type: journals written then read back now.
    #[test]
    fn security_changes_read_as_they_were_written() {
        let written = r#"{"change":"put_quota","entity":"alice","key":"producer_byte_rate","value":5}"#;
        let change: MetadataChange = serde_json::from_str(written).unwrap();
        let expected = SecurityChange::PutQuota {
            entity: "alice".into(),
            key: "producer_byte_rate".into(),
            value: Some(5),
        };
        assert_eq!(change, MetadataChange::Security(expected));
        assert_eq!(serde_json::to_string(&change).unwrap(), written);
        assert!(serde_json::from_str::<MetadataChange>(r#"{"change":"launch"}"#).is_err());
    }

    #[tokio::test]
    async fn changes_read_back_and_cost_what_they_change() {
        let disk = MemDisk::new();
        disk.create_dir_all(Path::new("/d")).await.unwrap();
        let mut s = Store::open(disk.clone()).await;
        let mut folds = 0;
        for i in 0..6000 {
            let before = s.journal.len;
            s.commit(vec![put(i)]).await.unwrap();
            if s.journal.len < before {
                folds += 1;
            } else {
                assert!(
                    s.journal.len - before < 512,
                    "one topic's record is {} bytes",
                    s.journal.len - before
                );
            }
            if i % 7 == 3 {
                s.commit(vec![MetadataChange::DeleteTopic { name: format!("t{}", i - 2) }]).await.unwrap();
            }
        }
        s.commit(vec![MetadataChange::ProducerIds { next: 4000 }]).await.unwrap();
        assert!(folds >= 1, "the journal was never folded");
        assert!(s.journal.len <= s.journal.snapshot_bytes.max(COMPACT_BYTES_MIN) + 512);
        assert_eq!(s.persisted().await, s.served);
        let reopened = Store::open(disk).await;
        assert_eq!(reopened.served, s.served);
    }

    /// A crash tears the last record: loading drops it (it was never
    /// acknowledged), reopening cuts it off, and what comes after it reads
    /// back.
    #[tokio::test]
    async fn a_torn_record_is_dropped_and_appends_go_on_after_the_valid_ones() {
        let disk = MemDisk::new();
        disk.create_dir_all(Path::new("/d")).await.unwrap();
        let mut s = Store::open(disk.clone()).await;
        for i in 0..5 {
            s.commit(vec![put(i)]).await.unwrap();
        }
        let acknowledged = s.served.clone();
        let journal = disk.open(&Path::new("/d").join(JOURNAL_FILE), OpenMode::Existing).await.unwrap();
        let end = journal.len().await.unwrap();
        // Half a record: a frame whose payload never fully landed.
        journal.write_at(end, Bytes::from_static(b"\0\0\0\x40\x12\x34\x56\x78{\"seq\":6")).await.unwrap();
        disk.crash(CrashMode::KeepAll);
        let mut s = Store::open(disk.clone()).await;
        assert_eq!(s.served, acknowledged);
        s.commit(vec![put(9)]).await.unwrap();
        assert_eq!(s.persisted().await, s.served);
        assert!(s.served.topics.contains_key("t9"));
    }

    /// After a failed fsync the journal's contents are unknown: the next
    /// change goes into a whole snapshot, and everything acknowledged reads
    /// back.
    #[tokio::test]
    async fn after_a_failed_write_the_next_change_is_a_snapshot() {
        let disk = MemDisk::new();
        disk.create_dir_all(Path::new("/d")).await.unwrap();
        let mut s = Store::open(disk.clone()).await;
        s.commit(vec![put(1)]).await.unwrap();
        disk.fail_next_syncs(1);
        assert!(s.commit(vec![put(2)]).await.is_err());
        assert!(s.journal.needs_snapshot);
        s.commit(vec![put(3)]).await.unwrap();
        assert!(!s.journal.needs_snapshot);
        assert_eq!(s.journal.len, 0, "the change went into the snapshot");
        let persisted = s.persisted().await;
        assert_eq!(persisted, s.served);
        assert!(!persisted.topics.contains_key("t2"), "the failed change was not acknowledged");
        s.commit(vec![put(4)]).await.unwrap();
        disk.crash(CrashMode::DropUnsynced);
        assert_eq!(Store::open(disk).await.served, s.served);
    }

    /// A journal whose snapshot is gone (removed by hand) starts nothing
    /// over: the fresh metadata written in its place does not take its
    /// records, now or after a restart.
    #[tokio::test]
    async fn a_journal_without_its_snapshot_is_not_replayed() {
        let disk = MemDisk::new();
        let dir = Path::new("/d");
        disk.create_dir_all(dir).await.unwrap();
        let mut s = Store::open(disk.clone()).await;
        s.commit(vec![put(1)]).await.unwrap();
        disk.remove(&dir.join(METADATA_FILE)).await.unwrap();
        let fresh = Store::open(disk.clone()).await;
        assert!(fresh.served.topics.is_empty());
        assert!(Store::open(disk).await.served.topics.is_empty());
    }

    /// A snapshot written before the journal existed (no sequence number)
    /// loads, and a gap in the journal's sequence is refused, not skipped.
    #[tokio::test]
    async fn old_snapshots_load_and_gaps_are_refused() {
        let disk = MemDisk::new();
        let dir = Path::new("/d");
        disk.create_dir_all(dir).await.unwrap();
        let mut old = ClusterMetadata::new("c".into());
        old.topics.insert("t".into(), topic(1));
        let json = serde_json::to_vec_pretty(&old).unwrap();
        write_atomic(&disk, dir, METADATA_FILE, Bytes::from(json)).await.unwrap();
        let mut s = Store::open(disk.clone()).await;
        assert_eq!(s.served, old);
        s.commit(vec![put(2)]).await.unwrap();
        s.journal.seq += 1; // as if a record went missing
        s.commit(vec![put(3)]).await.unwrap();
        let refused = load(&disk, dir).await.err().expect("a gap is refused");
        assert!(refused.to_string().contains("changes are missing"), "{refused}");
    }
}
