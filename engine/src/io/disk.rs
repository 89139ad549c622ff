//! The `Disk` trait: the only way the engine reaches storage.
//!
//! Three implementations plug in here: io_uring (production on Linux), a
//! portable std backend (where io_uring is disabled), and in-memory disks with
//! crash semantics (unit tests, and the simulator's fault-injecting disk).
//!
//! Buffers are owned (`Bytes` in, `Bytes` out) because a completion-based
//! backend such as io_uring must keep the memory alive until the kernel is
//! done with it, which may be after the caller's future was dropped.
//!
//! Durability model, shared by every backend and relied on by the log:
//! - `write_at` and `set_len` change a file's *live* contents at once, but
//!   only `sync_data` makes them *durable* (they survive a crash).
//! - Creating, renaming and removing a file changes the directory's live
//!   listing; only `sync_dir` on the parent makes the change durable.
//! - A write may be torn by a crash at sector (512 byte) granularity: each
//!   sector of an unsynced write holds either its old or its new contents.

use bytes::Bytes;
use std::future::Future;
use std::io;
use std::path::Path;

/// How `Disk::open` treats a missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing file; `NotFound` if it does not exist.
    Existing,
    /// Open the file, creating it empty if it does not exist. Existing
    /// contents are kept.
    Create,
}

/// A storage device holding named files in directories.
pub trait Disk: Send + Sync + 'static {
    type File: DiskFile;
    /// Held while a directory is owned; dropping it releases the lock.
    type Lock: Send + Sync + 'static;

    /// Opens `path` for reading and writing. Under `OpenMode::Create` a new,
    /// empty file is created when none exists; that creation is durable only
    /// after `sync_dir` of the parent directory.
    fn open(&self, path: &Path, mode: OpenMode) -> impl Future<Output = io::Result<Self::File>> + Send;

    /// Like `open`, but the file is written with direct I/O (O_DIRECT) where
    /// the backend and the file system support it: `write_at` then needs
    /// offsets, lengths and buffers aligned to the file's `write_alignment`,
    /// and bypasses the page cache. Reads stay buffered. Backends without
    /// direct I/O return a normal file (alignment 1). No default: a wrapper
    /// that forgot to forward this would silently turn direct I/O off.
    fn open_direct(&self, path: &Path, mode: OpenMode)
        -> impl Future<Output = io::Result<Self::File>> + Send;

    /// Removes the file at `path`. Durable only after `sync_dir` of its parent.
    fn remove(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Atomically renames `from` to `to`, replacing `to` if it exists. Both
    /// paths are in the same directory. Durable only after `sync_dir`.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Names (not paths) of the regular files directly inside `dir`, sorted
    /// bytewise so that callers behave the same on every backend.
    fn list(&self, dir: &Path) -> impl Future<Output = io::Result<Vec<String>>> + Send;

    /// Names of the directories directly inside `dir`, sorted bytewise.
    fn list_dirs(&self, dir: &Path) -> impl Future<Output = io::Result<Vec<String>>> + Send;

    /// Creates `dir` and any missing parents. Durable only after `sync_dir`
    /// of each parent.
    fn create_dir_all(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Removes an empty-or-not directory and everything inside it.
    fn remove_dir_all(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Makes every create, rename and remove of entries inside `dir` durable.
    fn sync_dir(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Takes an exclusive lock on the file at `path` (created if missing),
    /// held until the returned guard is dropped. Fails with `WouldBlock` if
    /// another owner, in this process or another, holds it.
    fn try_lock(&self, path: &Path) -> impl Future<Output = io::Result<Self::Lock>> + Send;
}

/// An open file. Every method takes `&self`: one file may have several
/// operations in flight, as the log's group commit needs.
// `len` is an I/O operation here, not a container size: no `is_empty`.
#[allow(clippy::len_without_is_empty)]
pub trait DiskFile: Send + Sync + 'static {
    /// Writes all of `buf` at byte `offset`, extending the file if needed.
    /// On success the bytes are live (visible to `read_at`) but not durable.
    /// On error any part of the range may or may not have been written.
    fn write_at(&self, offset: u64, buf: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// `write_at` whose bytes are durable when it returns, as if followed
    /// by `sync_data` covering them (O_DSYNC semantics: the data and the
    /// metadata needed to read it back). Backends that can do both in one
    /// operation (io_uring's RWF_DSYNC) save a round trip through the
    /// kernel; the others write, then sync. An error leaves the range's
    /// durable contents unknown, as for `sync_data`.
    fn write_at_durable(&self, offset: u64, buf: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// Reads up to `len` bytes at `offset`. The result is shorter than `len`
    /// only when the file ends first (empty at or past the end).
    fn read_at(&self, offset: u64, len: usize) -> impl Future<Output = io::Result<Bytes>> + Send;

    /// Makes all completed writes and length changes of this file durable
    /// (fdatasync). After an error the file's durable contents are unknown:
    /// callers must not retry and assume success (see the log's poisoning).
    fn sync_data(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// Truncates or extends (with zeros) the file to `len` bytes. Live at
    /// once, durable after `sync_data`.
    fn set_len(&self, len: u64) -> impl Future<Output = io::Result<()>> + Send;

    /// The file's live length in bytes.
    fn len(&self) -> impl Future<Output = io::Result<u64>> + Send;

    /// What `write_at` offsets, lengths and buffer addresses must be
    /// multiples of: 1 for buffered files, the direct-I/O alignment for files
    /// opened with `open_direct`. No default, as for `Disk::open_direct`.
    fn write_alignment(&self) -> usize;
}
