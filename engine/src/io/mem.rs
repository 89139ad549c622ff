//! An in-memory `Disk` with crash semantics, for tests and fuzzing.
//!
//! Each file keeps its *live* bytes (what reads see) and its *durable* bytes
//! (what survives a crash), with the writes and length changes made since the
//! last `sync_data` kept as pending operations. Directory entries are likewise
//! live or durable: a create, rename or remove is durable only after
//! `sync_dir` of the parent. A crash keeps the durable namespace and, per
//! file, the durable bytes plus an arbitrary choice of the pending
//! operations, each applied whole, dropped, or torn at sector granularity.
//!
//! A torn write leaves each of its 512-byte sectors, independently, with its
//! old or its new contents, whatever the write's alignment: a direct-I/O
//! write of a whole 4 KiB block is torn per sector like any other. "Old" is
//! what the durable bytes and the pending writes applied before it left.
//! That is the model the log is built for (see `crate::io`'s durability
//! notes): rewriting a sector with the bytes it already holds is safe under
//! it, whatever the crash keeps. `CrashMode::Sectors` lets a test choose
//! every sector's fate, including `SectorFate::Garbage` (neither old nor
//! new), which real devices may leave beyond their atomic write unit but
//! `Random` never draws.
//!
//! `MemDisk` is a handle: clones share the same storage, which is how a test
//! "restarts" a process on the same disk after `crash`.

use super::disk::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

mod crash;
use crash::apply;
pub use crash::{CrashMode, PendingSector, SectorFate};

/// Sectors are the unit of atomicity of a torn write.
pub const SECTOR_BYTES: u64 = 512;

type InodeId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    File(InodeId),
    Dir,
}

#[derive(Clone, Debug)]
enum PendingOp {
    Write { offset: u64, data: Bytes },
    SetLen(u64),
}

#[derive(Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
}

#[derive(Default)]
struct State {
    inodes: BTreeMap<InodeId, Inode>,
    next_inode: InodeId,
    live: BTreeMap<PathBuf, Entry>,
    durable: BTreeMap<PathBuf, Entry>,
    locks: BTreeMap<PathBuf, u64>,
    next_lock_token: u64,
    /// Bumped by every crash so that handles from before it fail.
    incarnation: u64,
    capacity_bytes: Option<u64>,
    failing_syncs: u32,
    failing_dir_syncs: u32,
    sync_yields: u32,
    stats: MemStats,
    /// Renames since their directory's last sync: `(from, to, inode)`. A
    /// crash keeps or drops each whole, as a journaling file system does
    /// (the source name never goes without the target coming).
    renames: Vec<(PathBuf, PathBuf, InodeId)>,
}

/// Operation counts, for tests that check what the log did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    pub writes: u64,
    pub syncs: u64,
    pub dir_syncs: u64,
}

#[derive(Clone, Default)]
pub struct MemDisk {
    state: Arc<Mutex<State>>,
}

impl MemDisk {
    pub fn new() -> MemDisk {
        let disk = MemDisk::default();
        for root in ["/", ""] {
            disk.lock().live.insert(PathBuf::from(root), Entry::Dir);
            disk.lock().durable.insert(PathBuf::from(root), Entry::Dir);
        }
        disk
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock is a test bug; keep going so the
        // test reports the original panic, not a poisoned mutex.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Limits the total live bytes of all files; writes past it fail with
    /// `StorageFull` (ENOSPC). `None` removes the limit.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity_bytes = bytes;
    }

    /// Makes the next `n` `sync_data` calls fail with EIO (durable contents
    /// then unchanged, as after a real failed fsync that lost the pages).
    pub fn fail_next_syncs(&self, n: u32) {
        self.lock().failing_syncs = n;
    }

    /// Makes the next `n` `sync_dir` calls fail with EIO (the directory's
    /// durable entries then unchanged).
    pub fn fail_next_dir_syncs(&self, n: u32) {
        self.lock().failing_dir_syncs = n;
    }

    /// Makes every `sync_data` and `sync_dir` yield to the executor `n`
    /// times before it completes, like a real fsync that takes time, so
    /// that concurrent tasks run while it is in flight (group commit shows
    /// up in tests) and a test can cut an operation off there.
    pub fn set_sync_yields(&self, n: u32) {
        self.lock().sync_yields = n;
    }

    pub fn stats(&self) -> MemStats {
        self.lock().stats
    }

    /// XORs `mask` into the byte at `offset` of `path`, live and durable: a
    /// media fault that a later read and any recovery will see.
    pub fn corrupt(&self, path: &Path, offset: u64, mask: u8) -> io::Result<()> {
        let mut s = self.lock();
        let id = s.file_id(path)?;
        let inode = s.inodes.get_mut(&id).expect("entry points at inode");
        for bytes in [&mut inode.live, &mut inode.durable] {
            if let Some(b) = bytes.get_mut(offset as usize) {
                *b ^= mask;
            }
        }
        Ok(())
    }

    /// Live contents of a file, for assertions.
    pub fn contents(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        let id = s.file_id(path)?;
        Ok(s.inodes[&id].live.clone())
    }
}

fn write_into(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset as usize..end].copy_from_slice(data);
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

impl State {
    fn file_id(&self, path: &Path) -> io::Result<InodeId> {
        match self.live.get(path) {
            Some(Entry::File(id)) => Ok(*id),
            Some(Entry::Dir) => Err(io::Error::other(format!("{}: is a directory", path.display()))),
            None => Err(not_found(path)),
        }
    }

    fn parent_exists(&self, path: &Path) -> bool {
        match path.parent() {
            None => true,
            Some(p) => matches!(self.live.get(p), Some(Entry::Dir)),
        }
    }

    fn live_bytes(&self) -> u64 {
        self.inodes.values().map(|i| i.live.len() as u64).sum()
    }

    fn children(&self, dir: &Path, want_dirs: bool) -> Vec<String> {
        let mut names: Vec<String> = self
            .live
            .iter()
            .filter(|(p, e)| p.parent() == Some(dir) && matches!(e, Entry::Dir) == want_dirs)
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    }
}

pub struct MemFile {
    disk: MemDisk,
    inode: InodeId,
    incarnation: u64,
    /// Direct-I/O alignment enforced on writes, as the kernel would (EINVAL).
    align: usize,
}

impl MemFile {
    fn with_inode<T>(&self, f: impl FnOnce(&mut State, InodeId) -> io::Result<T>) -> io::Result<T> {
        let mut s = self.disk.lock();
        if s.incarnation != self.incarnation || !s.inodes.contains_key(&self.inode) {
            return Err(io::Error::other("stale file handle: the disk crashed since it was opened"));
        }
        f(&mut s, self.inode)
    }
}

pub struct MemLock {
    disk: MemDisk,
    path: PathBuf,
    token: u64,
}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut s = self.disk.lock();
        if s.locks.get(&self.path) == Some(&self.token) {
            s.locks.remove(&self.path);
        }
    }
}

impl Disk for MemDisk {
    type File = MemFile;
    type Lock = MemLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<MemFile> {
        let mut s = self.lock();
        let inode = match s.live.get(path) {
            Some(Entry::File(id)) => *id,
            Some(Entry::Dir) => return Err(io::Error::other(format!("{}: is a directory", path.display()))),
            None if mode == OpenMode::Existing => return Err(not_found(path)),
            None => {
                if !s.parent_exists(path) {
                    return Err(not_found(path.parent().unwrap_or(path)));
                }
                let id = s.next_inode;
                s.next_inode += 1;
                s.inodes.insert(id, Inode::default());
                s.live.insert(path.to_path_buf(), Entry::File(id));
                id
            }
        };
        Ok(MemFile { disk: self.clone(), inode, incarnation: s.incarnation, align: 1 })
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<MemFile> {
        let file = self.open(path, mode).await?;
        Ok(MemFile { align: super::aligned::DIRECT_IO_ALIGN, ..file })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.file_id(path)?;
        s.live.remove(path);
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let id = s.file_id(from)?;
        s.live.remove(from);
        s.live.insert(to.to_path_buf(), Entry::File(id));
        s.renames.push((from.to_path_buf(), to.to_path_buf(), id));
        Ok(())
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        if !matches!(s.live.get(dir), Some(Entry::Dir)) {
            return Err(not_found(dir));
        }
        Ok(s.children(dir, false))
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        if !matches!(s.live.get(dir), Some(Entry::Dir)) {
            return Err(not_found(dir));
        }
        Ok(s.children(dir, true))
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        for ancestor in dir.ancestors() {
            match s.live.get(ancestor) {
                Some(Entry::Dir) => break,
                Some(Entry::File(_)) => {
                    return Err(io::Error::other(format!("{}: not a directory", ancestor.display())))
                }
                None => {
                    s.live.insert(ancestor.to_path_buf(), Entry::Dir);
                }
            }
        }
        Ok(())
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if !matches!(s.live.get(dir), Some(Entry::Dir)) {
            return Err(not_found(dir));
        }
        s.live.retain(|p, _| !p.starts_with(dir));
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Namespace changes made before this call stay pending while it is
        // in flight: a crash then may keep or drop each of them.
        let yields = self.lock().sync_yields;
        for _ in 0..yields {
            YieldNow(false).await;
        }
        let mut s = self.lock();
        if !matches!(s.live.get(dir), Some(Entry::Dir)) {
            return Err(not_found(dir));
        }
        if s.failing_dir_syncs > 0 {
            s.failing_dir_syncs -= 1;
            return Err(io::Error::other(format!("injected EIO on fsync of directory {}", dir.display())));
        }
        s.stats.dir_syncs += 1;
        let in_dir = |p: &Path| p.parent() == Some(dir);
        s.durable.retain(|p, _| !in_dir(p));
        let synced: Vec<(PathBuf, Entry)> =
            s.live.iter().filter(|(p, _)| in_dir(p)).map(|(p, e)| (p.clone(), *e)).collect();
        s.durable.extend(synced);
        s.renames.retain(|(from, to, _)| !in_dir(from) && !in_dir(to));
        Ok(())
    }

    async fn try_lock(&self, path: &Path) -> io::Result<MemLock> {
        if !self.lock().live.contains_key(path) {
            self.open(path, OpenMode::Create).await?;
        }
        let mut s = self.lock();
        if s.locks.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, format!("{} is locked", path.display())));
        }
        s.next_lock_token += 1;
        let token = s.next_lock_token;
        s.locks.insert(path.to_path_buf(), token);
        Ok(MemLock { disk: self.clone(), path: path.to_path_buf(), token })
    }
}

impl DiskFile for MemFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        let align = self.align;
        let aligned = offset.is_multiple_of(align as u64)
            && buf.len().is_multiple_of(align)
            && (buf.as_ptr() as usize).is_multiple_of(align);
        if !aligned {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "misaligned direct-I/O write"));
        }
        self.with_inode(|s, id| {
            let end = offset + buf.len() as u64;
            let growth = end.saturating_sub(s.inodes[&id].live.len() as u64);
            if let Some(cap) = s.capacity_bytes {
                if s.live_bytes() + growth > cap {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
                }
            }
            s.stats.writes += 1;
            let inode = s.inodes.get_mut(&id).expect("checked");
            write_into(&mut inode.live, offset, &buf);
            inode.pending.push(PendingOp::Write { offset, data: buf });
            Ok(())
        })
    }

    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.write_at(offset, buf).await?;
        self.sync_data().await
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.with_inode(|s, id| {
            let live = &s.inodes[&id].live;
            let start = (offset as usize).min(live.len());
            let end = start.saturating_add(len).min(live.len());
            Ok(Bytes::copy_from_slice(&live[start..end]))
        })
    }

    async fn sync_data(&self) -> io::Result<()> {
        let yields = self.disk.lock().sync_yields;
        for _ in 0..yields {
            YieldNow(false).await;
        }
        self.with_inode(|s, id| {
            s.stats.syncs += 1;
            if s.failing_syncs > 0 {
                s.failing_syncs -= 1;
                // As on Linux after a failed fsync: the dirty data is dropped
                // and the durable contents stay what they were.
                let inode = s.inodes.get_mut(&id).expect("checked");
                inode.pending.clear();
                inode.live = inode.durable.clone();
                return Err(io::Error::other("injected fsync failure (EIO)"));
            }
            let inode = s.inodes.get_mut(&id).expect("checked");
            for op in std::mem::take(&mut inode.pending) {
                apply(&mut inode.durable, &op, None);
            }
            debug_assert_eq!(inode.durable, inode.live);
            Ok(())
        })
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_inode(|s, id| {
            let inode = s.inodes.get_mut(&id).expect("checked");
            inode.live.resize(len as usize, 0);
            inode.pending.push(PendingOp::SetLen(len));
            Ok(())
        })
    }

    async fn len(&self) -> io::Result<u64> {
        self.with_inode(|s, id| Ok(s.inodes[&id].live.len() as u64))
    }

    fn write_alignment(&self) -> usize {
        self.align
    }
}

/// Returns `Pending` once (waking itself at once): a runtime-agnostic yield.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
