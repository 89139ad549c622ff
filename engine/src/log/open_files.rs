//! Sealed segments' log files: opened when read, kept open within one
//! broker-wide bound, the least recently used closed first.
//!
//! Kafka keeps every segment's file open, so a broker's descriptors grow
//! with its segments (a partition with a week of one-hour segments holds
//! 168). Here only each log's active segment is always open (it takes the
//! appends); a sealed segment's file is opened on the first read that
//! misses the log cache and closed again once `capacity` others were used
//! more recently. A reader holds its own reference, so closing a file here
//! never breaks a read in progress: the descriptor goes with the last one.
//!
//! Invariants:
//! - at most `capacity` files are held here (a read in progress may hold one
//!   more of its own);
//! - only segments still alive are held: a segment that goes (deleted,
//!   truncated away, its log closed) takes its file with it, so a deleted
//!   file's space is not kept from the disk, and a file opened for a
//!   segment that went meanwhile is not kept;
//! - a segment's id is never reused, so a new segment at the same base
//!   offset (after a truncation) never finds its predecessor's file.

use crate::io::{Disk, DiskFile, OpenMode};
use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Sealed segment files kept open by default, broker-wide.
pub const OPEN_SEGMENT_FILES_MAX: usize = 4096;

/// Files are held type-erased, so that one bound covers every log whatever
/// its disk backend (and `LogCache`, which carries it, stays non-generic).
type AnyFile = Arc<dyn Any + Send + Sync>;

pub struct OpenFiles {
    capacity: AtomicUsize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Segment id → (last use, file).
    files: HashMap<u64, (u64, AnyFile)>,
    /// Last use → segment id, oldest first.
    by_use: BTreeMap<u64, u64>,
    /// Segments alive now: only their files may be held.
    alive: HashSet<u64>,
    clock: u64,
    next_id: u64,
    opened: u64,
}

impl OpenFiles {
    pub fn new(capacity: usize) -> Arc<OpenFiles> {
        Arc::new(OpenFiles { capacity: AtomicUsize::new(capacity), inner: Mutex::new(Inner::default()) })
    }

    /// Holds at most `capacity` files from the next one kept on.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every change below leaves the maps consistent at each step.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files held open now, and files opened on demand since start.
    pub fn stats(&self) -> (usize, u64) {
        let inner = self.inner();
        (inner.files.len(), inner.opened)
    }

    fn register(&self) -> u64 {
        let mut inner = self.inner();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.alive.insert(id);
        id
    }

    fn get<F: DiskFile>(&self, id: u64) -> Option<Arc<F>> {
        let mut inner = self.inner();
        inner.clock += 1;
        let now = inner.clock;
        let (used, file) = inner.files.get_mut(&id)?;
        let previous = std::mem::replace(used, now);
        let file = file.clone();
        inner.by_use.remove(&previous);
        inner.by_use.insert(now, id);
        file.downcast::<F>().ok()
    }

    fn keep<F: DiskFile>(&self, id: u64, file: Arc<F>) {
        let mut inner = self.inner();
        if !inner.alive.contains(&id) {
            return;
        }
        inner.clock += 1;
        let now = inner.clock;
        if let Some((previous, _)) = inner.files.insert(id, (now, file)) {
            inner.by_use.remove(&previous);
        }
        inner.by_use.insert(now, id);
        while inner.files.len() > self.capacity.load(Ordering::Relaxed) {
            let Some((_, oldest)) = inner.by_use.pop_first() else { break };
            inner.files.remove(&oldest);
        }
        debug_assert_eq!(inner.files.len(), inner.by_use.len());
    }

    fn forget(&self, id: u64) {
        let mut inner = self.inner();
        inner.alive.remove(&id);
        if let Some((used, _)) = inner.files.remove(&id) {
            inner.by_use.remove(&used);
        }
    }
}

/// Which segment a file belongs to; while any copy lives, the segment's
/// file may be held open (see the invariants above).
struct Key {
    id: u64,
    path: PathBuf,
    files: Arc<OpenFiles>,
}

impl Drop for Key {
    fn drop(&mut self) {
        self.files.forget(self.id);
    }
}

/// A segment's log file: held open while the segment is active (it takes
/// the appends), opened on demand once sealed.
pub struct SegmentFile<F> {
    key: Arc<Key>,
    active: Option<Arc<F>>,
}

impl<F: DiskFile> SegmentFile<F> {
    /// The open file of an active segment at `path`.
    pub fn active(file: Arc<F>, path: PathBuf, files: &Arc<OpenFiles>) -> SegmentFile<F> {
        let key = Arc::new(Key { id: files.register(), path, files: files.clone() });
        SegmentFile { key, active: Some(file) }
    }

    /// The file, while the segment is active.
    pub fn active_file(&self) -> Option<&Arc<F>> {
        self.active.as_ref()
    }

    /// The segment was sealed: its file joins the others, to be closed
    /// when it has not been used for a while.
    pub fn seal(&mut self) {
        if let Some(file) = self.active.take() {
            self.key.files.keep(self.key.id, file);
        }
    }

    /// The segment takes appends again (a truncation into it): `file` is
    /// its file, open.
    pub fn reactivate(&mut self, file: Arc<F>) {
        self.active = Some(file);
    }

    /// What a reader needs to reach the file without the log's lock.
    pub fn handle(&self) -> FileHandle<F> {
        let open = self.active.clone().or_else(|| self.key.files.get(self.key.id));
        FileHandle { key: self.key.clone(), open }
    }
}

/// A segment's file as a reader takes it: open already, or to be opened.
pub struct FileHandle<F> {
    key: Arc<Key>,
    open: Option<Arc<F>>,
}

impl<F: DiskFile> FileHandle<F> {
    /// The open file, opening it if need be. `NotFound` if the segment was
    /// deleted since the handle was taken.
    pub async fn file<D: Disk<File = F>>(&mut self, disk: &D) -> io::Result<Arc<F>> {
        if let Some(file) = &self.open {
            return Ok(file.clone());
        }
        // Direct I/O, as every segment is read: no trip through (and no
        // filling of) the page cache.
        let file = Arc::new(disk.open_direct(&self.key.path, OpenMode::Existing).await?);
        self.key.files.inner().opened += 1;
        self.key.files.keep(self.key.id, file.clone());
        self.open = Some(file.clone());
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::MemDisk;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    /// Sealed files beyond the bound are closed least recently used first,
    /// reopened on demand, and a closed file stays usable by a reader that
    /// holds it.
    #[test]
    fn sealed_files_stay_within_the_bound() {
        block_on(async {
            let disk = MemDisk::new();
            let files = OpenFiles::new(2);
            let mut segments = Vec::new();
            for i in 0..3u8 {
                let path = PathBuf::from(format!("/s{i}.log"));
                let file = Arc::new(disk.open(&path, OpenMode::Create).await.unwrap());
                file.write_at(0, bytes::Bytes::from(vec![i; 4])).await.unwrap();
                let mut seg = SegmentFile::active(file, path, &files);
                assert!(seg.active_file().is_some());
                seg.seal();
                segments.push(seg);
            }
            assert_eq!(files.stats(), (2, 0), "the first sealed file was closed");
            let mut first = segments[0].handle();
            assert!(first.open.is_none());
            let file = first.file(&disk).await.unwrap();
            assert_eq!(&file.read_at(0, 4).await.unwrap()[..], &[0; 4]);
            assert_eq!(files.stats(), (2, 1));
            // Segment 1 is now the least recently used.
            assert!(segments[2].handle().open.is_some());
            assert!(segments[1].handle().open.is_none());
            // Closed here once the segment and its handles go, still
            // readable through the reader's own reference.
            drop(segments.remove(0));
            assert_eq!(files.stats().0, 2, "a handle keeps the segment's file");
            drop(first);
            assert_eq!(files.stats().0, 1, "a segment that goes takes its file");
            assert_eq!(&file.read_at(0, 4).await.unwrap()[..], &[0; 4]);
        });
    }

    /// A file opened for a segment that went meanwhile is let go with the
    /// last reader, and a deleted segment's file is reported missing.
    #[test]
    fn files_of_gone_segments_are_not_kept() {
        block_on(async {
            let disk = MemDisk::new();
            let files = OpenFiles::new(0);
            let path = PathBuf::from("/gone.log");
            let file = Arc::new(disk.open(&path, OpenMode::Create).await.unwrap());
            let mut seg = SegmentFile::active(file, path.clone(), &files);
            seg.seal();
            assert_eq!(files.stats().0, 0, "nothing is kept at a bound of 0");
            let mut reader = seg.handle();
            let mut late_reader = seg.handle();
            drop(seg);
            assert!(reader.file(&disk).await.is_ok());
            drop(reader);
            disk.remove(&path).await.unwrap();
            let error = late_reader.file(&disk).await.err().expect("the file was removed");
            assert_eq!(error.kind(), io::ErrorKind::NotFound);
            drop(late_reader);
            let inner = files.inner();
            assert!(inner.files.is_empty() && inner.alive.is_empty());
        });
    }
}
