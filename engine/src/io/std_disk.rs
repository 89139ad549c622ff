//! Portable storage backend on `std::fs`, the fallback where io_uring is
//! unavailable (non-Linux hosts, or kernels with `io_uring_disabled` set).
//!
//! Every method runs its syscall inline and so blocks the calling task until
//! the kernel returns. That is acceptable for a fallback: positional writes
//! and reads of a log mostly hit the page cache and return in microseconds,
//! and the one slow call, `fdatasync`, is issued once per group commit rather
//! than once per record, so it stalls one task per batch. Offloading to a
//! thread pool would tie the engine to a runtime, which it must not be.
//!
//! The free functions below are the metadata operations (open, rename,
//! listing, locking, ...) shared with the io_uring backend, which has no
//! reason to route them through the ring.

use super::disk::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The portable backend. Holds no state; clones are free.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdDisk;

impl StdDisk {
    pub fn new() -> Self {
        StdDisk
    }
}

/// An open file of [`StdDisk`].
#[derive(Debug)]
pub struct StdFile {
    /// Written (O_DIRECT for `open_direct` files) and synced through.
    file: File,
    /// Read through: a second, buffered descriptor for direct files, since
    /// O_DIRECT reads would need aligned buffers too.
    reader: Option<File>,
    align: usize,
}

impl StdFile {
    /// The underlying file, for callers that need its descriptor.
    pub fn as_file(&self) -> &File {
        &self.file
    }
}

/// An exclusive `flock` on a lock file, released when dropped (closing the
/// descriptor releases the lock). Shared by both backends.
#[derive(Debug)]
pub struct StdLock {
    _file: File,
}

/// Opens `path` read-write. std always opens with `O_CLOEXEC`, so the
/// descriptor does not leak into child processes.
pub(crate) fn open_file(path: &Path, mode: OpenMode) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(mode == OpenMode::Create).truncate(false).open(path)
}

/// Opens `path` for direct-I/O writes plus a buffered descriptor for reads:
/// `(writer, Some(reader), DIRECT_IO_ALIGN)`. Where the file system refuses
/// O_DIRECT (EINVAL), falls back to one buffered descriptor, alignment 1.
pub(crate) fn open_direct_pair(path: &Path, mode: OpenMode) -> io::Result<(File, Option<File>, usize)> {
    use std::os::unix::fs::OpenOptionsExt;
    let reader = open_file(path, mode)?;
    let direct = OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(path);
    match direct {
        Ok(writer) => Ok((writer, Some(reader), super::aligned::DIRECT_IO_ALIGN)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::warn!(path = %path.display(), "file system refuses O_DIRECT; writing through the page cache");
            Ok((reader, None, 1))
        }
        Err(e) => Err(e),
    }
}

/// Names of the entries of `dir` whose type satisfies `keep`, sorted
/// bytewise. Names that are not UTF-8 are skipped: the engine only creates
/// ASCII names, so such an entry cannot be one of its files.
fn list_entries(dir: &Path, keep: impl Fn(&fs::FileType) -> bool) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        // `DirEntry::file_type` does not follow symlinks, so a symlink is
        // neither a regular file nor a directory here.
        if !keep(&entry.file_type()?) {
            continue;
        }
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    // `String`'s order is bytewise on UTF-8, as the trait requires.
    names.sort_unstable();
    Ok(names)
}

pub(crate) fn list_files(dir: &Path) -> io::Result<Vec<String>> {
    list_entries(dir, fs::FileType::is_file)
}

pub(crate) fn list_dirs(dir: &Path) -> io::Result<Vec<String>> {
    list_entries(dir, fs::FileType::is_dir)
}

/// fsyncs the directory itself, which persists the entries created, renamed
/// or removed inside it.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `flock(LOCK_EX | LOCK_NB)` through std. flock locks belong to the open
/// file description, so a second open of the same path in this process
/// contends too, as the trait requires.
pub(crate) fn try_lock(path: &Path) -> io::Result<StdLock> {
    let file = open_file(path, OpenMode::Create)?;
    match file.try_lock() {
        Ok(()) => Ok(StdLock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{} is locked by another owner", path.display()),
        )),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Positional read that only returns short at end of file.
pub(crate) fn read_full_at(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

impl Disk for StdDisk {
    type File = StdFile;
    type Lock = StdLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<StdFile> {
        open_file(path, mode).map(|file| StdFile { file, reader: None, align: 1 })
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<StdFile> {
        let (file, reader, align) = open_direct_pair(path, mode)?;
        Ok(StdFile { file, reader, align })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        list_files(dir)
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        list_dirs(dir)
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir_all(dir)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }

    async fn try_lock(&self, path: &Path) -> io::Result<StdLock> {
        try_lock(path)
    }
}

impl DiskFile for StdFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.file.write_all_at(&buf, offset)
    }

    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.file.write_all_at(&buf, offset)?;
        self.file.sync_data()
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        read_full_at(self.reader.as_ref().unwrap_or(&self.file), offset, len)
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn write_alignment(&self) -> usize {
        self.align
    }
}

/// Contract tests shared by both backends: `uring.rs` runs them against
/// `UringDisk` too, so the two cannot drift apart.
#[cfg(test)]
pub(crate) mod contract {
    use super::super::disk::{Disk, DiskFile, OpenMode};
    use bytes::Bytes;
    use std::io;
    use std::path::Path;
    use std::sync::Arc;

    /// A directory on a real filesystem where there is one (/work on the
    /// dev machines): /tmp may be tmpfs, which accepts what ext4 rejects.
    pub fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir_in("/work").or_else(|_| tempfile::tempdir()).expect("create a temp dir")
    }

    /// Every single-task check, each in its own fresh directory.
    pub async fn suite(disk: &impl Disk) {
        let dirs: Vec<_> = (0..4).map(|_| tempdir()).collect();
        round_trip_and_short_read(disk, dirs[0].path()).await;
        set_len(disk, dirs[1].path()).await;
        directory_ops(disk, dirs[2].path()).await;
        locking(disk, dirs[3].path()).await;
    }

    pub async fn round_trip_and_short_read(disk: &impl Disk, dir: &Path) {
        let path = dir.join("a.log");
        let err = disk.open(&path, OpenMode::Existing).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::NotFound));

        let f = disk.open(&path, OpenMode::Create).await.unwrap();
        assert_eq!(f.len().await.unwrap(), 0);
        f.write_at(0, Bytes::from_static(b"hello ")).await.unwrap();
        f.write_at(6, Bytes::from_static(b"world")).await.unwrap();
        f.sync_data().await.unwrap();
        assert_eq!(f.len().await.unwrap(), 11);
        assert_eq!(&f.read_at(0, 11).await.unwrap()[..], b"hello world");
        // Short only because the file ends first.
        assert_eq!(&f.read_at(6, 100).await.unwrap()[..], b"world");
        assert!(f.read_at(11, 10).await.unwrap().is_empty());
        assert!(f.read_at(1000, 10).await.unwrap().is_empty());
        assert!(f.read_at(0, 0).await.unwrap().is_empty());

        // Create keeps existing contents.
        drop(f);
        let f = disk.open(&path, OpenMode::Create).await.unwrap();
        assert_eq!(&f.read_at(0, 5).await.unwrap()[..], b"hello");

        // A large write and read cross page boundaries in one call.
        let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        f.write_at(100, Bytes::from(big.clone())).await.unwrap();
        let back = f.read_at(100, big.len() + 50).await.unwrap();
        assert_eq!(back.len(), big.len());
        assert!(back[..] == big[..]);

        // Durable writes land like plain ones, small and large (io_uring
        // splits the large one into pieces).
        f.write_at_durable(11, Bytes::from_static(b"!")).await.unwrap();
        assert_eq!(&f.read_at(5, 7).await.unwrap()[..], b" world!");
        let end = 100 + big.len() as u64;
        f.write_at_durable(end, Bytes::from(big.clone())).await.unwrap();
        assert_eq!(f.len().await.unwrap(), end + big.len() as u64);
        assert!(f.read_at(end, big.len()).await.unwrap()[..] == big[..]);
    }

    pub async fn concurrent_writes<D: Disk>(disk: &D, dir: &Path, n: usize, size: usize) {
        let f = Arc::new(disk.open(&dir.join("c.log"), OpenMode::Create).await.unwrap());
        let rt = tokio::runtime::Handle::current();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let f = Arc::clone(&f);
                rt.spawn(async move {
                    let buf = Bytes::from(vec![i as u8; size]);
                    f.write_at((i * size) as u64, buf).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        f.sync_data().await.unwrap();
        let all = f.read_at(0, n * size).await.unwrap();
        assert_eq!(all.len(), n * size);
        for (i, chunk) in all.chunks(size).enumerate() {
            assert!(chunk.iter().all(|&b| b == i as u8), "chunk {i}");
        }
    }

    pub async fn set_len(disk: &impl Disk, dir: &Path) {
        let f = disk.open(&dir.join("s.log"), OpenMode::Create).await.unwrap();
        f.write_at(0, Bytes::from_static(b"0123456789")).await.unwrap();
        f.set_len(4).await.unwrap();
        assert_eq!(f.len().await.unwrap(), 4);
        assert_eq!(&f.read_at(0, 10).await.unwrap()[..], b"0123");
        f.set_len(8).await.unwrap();
        assert_eq!(&f.read_at(0, 10).await.unwrap()[..], b"0123\0\0\0\0");
        f.sync_data().await.unwrap();
    }

    pub async fn directory_ops(disk: &impl Disk, dir: &Path) {
        let sub = dir.join("p/q");
        disk.create_dir_all(&sub).await.unwrap();
        disk.create_dir_all(&sub).await.unwrap();
        disk.create_dir_all(&dir.join("b-dir")).await.unwrap();
        for name in ["zeta", "alpha", "Beta", "10", "9"] {
            let f = disk.open(&dir.join(name), OpenMode::Create).await.unwrap();
            f.write_at(0, Bytes::from(name.to_owned())).await.unwrap();
        }
        std::os::unix::fs::symlink(dir.join("zeta"), dir.join("link")).unwrap();
        disk.sync_dir(dir).await.unwrap();
        assert_eq!(disk.list(dir).await.unwrap(), ["10", "9", "Beta", "alpha", "zeta"]);
        assert_eq!(disk.list_dirs(dir).await.unwrap(), ["b-dir", "p"]);
        assert!(disk.list(&sub).await.unwrap().is_empty());

        // Rename replaces an existing target.
        disk.rename(&dir.join("alpha"), &dir.join("zeta")).await.unwrap();
        disk.sync_dir(dir).await.unwrap();
        assert_eq!(disk.list(dir).await.unwrap(), ["10", "9", "Beta", "zeta"]);
        let f = disk.open(&dir.join("zeta"), OpenMode::Existing).await.unwrap();
        assert_eq!(&f.read_at(0, 100).await.unwrap()[..], b"alpha");

        disk.remove(&dir.join("10")).await.unwrap();
        let err = disk.remove(&dir.join("10")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(disk.list(dir).await.unwrap(), ["9", "Beta", "zeta"]);

        disk.remove_dir_all(&dir.join("p")).await.unwrap();
        assert_eq!(disk.list_dirs(dir).await.unwrap(), ["b-dir"]);
        let err = disk.list(&dir.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    pub async fn locking(disk: &impl Disk, dir: &Path) {
        let path = dir.join("LOCK");
        let held = disk.try_lock(&path).await.unwrap();
        let err = disk.try_lock(&path).await.err().expect("second lock must fail");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        let again = disk.try_lock(&path).await.unwrap();
        drop(again);
    }
}

#[cfg(test)]
mod tests {
    use super::contract;
    use super::*;

    /// Round trip, short read at EOF, set_len, sorted files-only listing,
    /// rename-replaces, remove, and lock contention.
    #[tokio::test]
    async fn contract() {
        contract::suite(&StdDisk::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_at_distinct_offsets() {
        let dir = contract::tempdir();
        contract::concurrent_writes(&StdDisk::new(), dir.path(), 64, 10_000).await;
    }
}
