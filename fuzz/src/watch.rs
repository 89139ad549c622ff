//! A `Disk` wrapper that turns a spinning engine loop into a panic: it
//! counts `read_at` calls since the current `block_on` began and panics past
//! a bound no legitimate operation comes near. (A `MemDisk` read completes at
//! once, so a loop that re-reads the same bytes never yields, and neither the
//! executor nor the fuzzer's timeout could name the cause as well.)

use bytes::Bytes;
use ringtail_engine::io::mem::{MemFile, MemLock};
use ringtail_engine::io::{Disk, DiskFile, MemDisk, OpenMode};
use std::cell::Cell;
use std::io;
use std::path::Path;

/// `read_at` calls allowed within one `block_on`.
pub const READS_PER_OPERATION_MAX: u64 = 200_000;

thread_local! {
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// Starts a new operation's count (called by `block_on`).
pub fn reset() {
    READS.with(|r| r.set(0));
}

fn count_read() {
    let n = READS.with(|r| {
        r.set(r.get() + 1);
        r.get()
    });
    if n > READS_PER_OPERATION_MAX {
        panic!("{n} read_at calls in one operation: the engine is spinning (re-reading without progress)");
    }
}

/// A `MemDisk` whose reads are counted. Clones share the disk.
#[derive(Clone, Default)]
pub struct WatchDisk(pub MemDisk);

pub struct WatchFile(MemFile);

impl Disk for WatchDisk {
    type File = WatchFile;
    type Lock = MemLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<WatchFile> {
        self.0.open(path, mode).await.map(WatchFile)
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<WatchFile> {
        self.0.open_direct(path, mode).await.map(WatchFile)
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.remove(path).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to).await
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir).await
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list_dirs(dir).await
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir).await
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.remove_dir_all(dir).await
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir).await
    }

    async fn try_lock(&self, path: &Path) -> io::Result<MemLock> {
        self.0.try_lock(path).await
    }
}

impl DiskFile for WatchFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.0.write_at(offset, buf).await
    }

    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.0.write_at_durable(offset, buf).await
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        count_read();
        self.0.read_at(offset, len).await
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data().await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len).await
    }

    async fn len(&self) -> io::Result<u64> {
        self.0.len().await
    }

    fn write_alignment(&self) -> usize {
        self.0.write_alignment()
    }
}
