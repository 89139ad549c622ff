//! io_uring storage backend (Linux), the production default.
//!
//! One ring per [`UringDisk`], shared by its callers and one driver thread
//! (driver.rs). A caller puts its operation (with its owned buffer and a
//! oneshot sender) in the submission queue and enters the kernel itself; a
//! caller's several operations (the pieces of a large write or read) go in
//! with one `io_uring_enter`. Completions are reaped by the driver thread,
//! or, faster, by the callers' runtime through a [`CompletionReaper`].
//!
//! Only the data path (write, read, fdatasync) goes through the ring.
//! Metadata calls (open, rename, listing, locking, set_len, len) are rare and
//! cheap, so they run inline through the std backend's code.
//!
//! Segment files are opened with `O_DIRECT` (`open_direct`): written and
//! read in aligned blocks, bypassing the page cache (the facts file has the
//! alignment rules). Other files, and file systems that refuse `O_DIRECT`,
//! are buffered. std opens every file with `O_CLOEXEC`.
//! IOPOLL is never set: it hangs on this class of virtio disk.
#![cfg(target_os = "linux")]

use super::disk::{Disk, DiskFile, OpenMode};
use super::std_disk::{self, StdLock};
use bytes::Bytes;
use driver::{Driver, State};
use io_uring::{opcode, squeue, types, IoUring};
use read::ReadOp;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use tokio::sync::oneshot;

/// Ring size used by [`UringDisk::new`].
pub const DEFAULT_ENTRIES: u32 = 256;

/// Writes larger than this are split into pieces of this size, all in
/// flight at once. A multiple of the direct-I/O alignment.
pub const WRITE_PIECE_BYTES: usize = 1 << 20;

/// Linux moves at most this many bytes per read or write (MAX_RW_COUNT);
/// larger buffers take several rounds through the short-transfer path.
const MAX_RW: usize = 0x7fff_f000;

/// Work done by a ring since it was created. SQEs and completions count
/// caller operations (a resubmitted short transfer counts again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UringStats {
    pub sqes_submitted: u64,
    pub completions: u64,
    /// Every `io_uring_enter`, including the driver's that only wait.
    pub enter_calls: u64,
    /// `io_uring_enter` calls that handed the kernel at least one operation:
    /// `sqes_submitted / submit_calls` is the mean submission batch. Unlike
    /// `enter_calls`, it does not grow when completions trickle in one at a
    /// time, as buffered writes do: io_uring runs those on a worker thread,
    /// serialized per file, and each completion can wake the driver.
    pub submit_calls: u64,
    /// Completions that answered no operation in flight, ignored (driver.rs);
    /// none is expected: each is logged as an error.
    pub stray_completions: u64,
}

impl UringStats {
    /// The work done between `before` and these counters.
    pub fn since(&self, before: &UringStats) -> UringStats {
        UringStats {
            sqes_submitted: self.sqes_submitted - before.sqes_submitted,
            completions: self.completions - before.completions,
            enter_calls: self.enter_calls - before.enter_calls,
            submit_calls: self.submit_calls - before.submit_calls,
            stray_completions: self.stray_completions - before.stray_completions,
        }
    }
}

/// Creates a throwaway ring and completes one NOP through it: proof that
/// io_uring is usable here, not merely compiled in.
pub fn probe() -> io::Result<()> {
    let mut ring = IoUring::new(2)?;
    let nop = opcode::Nop::new().build().user_data(1);
    // SAFETY: a NOP references no memory.
    unsafe { ring.submission().push(&nop) }.map_err(|_| io::Error::other("empty ring is full"))?;
    loop {
        match ring.submit_and_wait(1) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        if let Some(cqe) = ring.completion().next() {
            return match cqe.result() {
                res if res < 0 => Err(io::Error::from_raw_os_error(-res)),
                _ => Ok(()),
            };
        }
    }
}

/// The io_uring backend. Clones share one ring and driver thread.
///
/// The driver stops when the last handle, disk or file, is dropped. That
/// drop blocks until the operations still in flight (including those whose
/// futures were dropped) complete, which keeps their buffers valid: at most
/// a few milliseconds (one fdatasync), once, at shutdown.
#[derive(Clone)]
pub struct UringDisk {
    client: Arc<Client>,
}

/// An open file of [`UringDisk`]. Keeps the ring alive while it exists.
pub struct UringFile {
    /// Written, read and synced through: O_DIRECT for `open_direct` files
    /// (then `align` is the block size every transfer is aligned to).
    file: Arc<File>,
    align: usize,
    client: Arc<Client>,
}

impl UringDisk {
    /// A disk with a [`DEFAULT_ENTRIES`]-entry ring. Fails, rather than
    /// panics, where io_uring is disabled or unsupported.
    pub fn new() -> io::Result<Self> {
        Self::with_entries(DEFAULT_ENTRIES)
    }

    /// A disk whose ring has `entries` submission slots (the kernel rounds
    /// up to a power of two).
    pub fn with_entries(entries: u32) -> io::Result<Self> {
        let mut ring = IoUring::new(entries)?;
        let limit = ring.completion().capacity();
        // SAFETY: eventfd returns a new descriptor we own, or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid descriptor owned by nobody else.
        let completed = unsafe { OwnedFd::from_raw_fd(raw) };
        ring.submitter().register_eventfd(completed.as_raw_fd())?;
        let shared = Arc::new(Shared {
            ring,
            state: Mutex::new(State::new(limit)),
            completed,
            reapers: AtomicUsize::new(0),
            driver: OnceLock::new(),
            shutdown: AtomicBool::new(false),
            sqes: AtomicU64::new(0),
            completions: AtomicU64::new(0),
            enters: AtomicU64::new(0),
            submits: AtomicU64::new(0),
            strays: AtomicU64::new(0),
        });
        let driver = Driver::new(Arc::clone(&shared));
        let thread = thread::Builder::new().name("ringtail-uring".into()).spawn(move || driver.run())?;
        let _ = shared.driver.set(thread.thread().clone());
        Ok(UringDisk { client: Arc::new(Client { shared, thread: Some(thread) }) })
    }

    /// Lets the caller's runtime reap this ring's completions: it waits for
    /// the reaper's descriptor (`as_raw_fd`) to become readable, then calls
    /// `reap`. While a reaper exists
    /// the driver thread leaves completions to it, reaping only those left
    /// waiting for over `REAPER_GRACE` (driver.rs).
    pub fn completion_reaper(&self) -> CompletionReaper {
        self.client.shared.reapers.fetch_add(1, Ordering::SeqCst);
        self.client.shared.unpark_driver();
        CompletionReaper { client: Arc::clone(&self.client) }
    }

    pub fn stats(&self) -> UringStats {
        let s = &self.client.shared;
        UringStats {
            sqes_submitted: s.sqes.load(Ordering::Relaxed),
            completions: s.completions.load(Ordering::Relaxed),
            enter_calls: s.enters.load(Ordering::Relaxed),
            submit_calls: s.submits.load(Ordering::Relaxed),
            stray_completions: s.strays.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for UringDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringDisk").field("stats", &self.stats()).finish()
    }
}

impl fmt::Debug for UringFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringFile").field("fd", &self.file.as_raw_fd()).finish()
    }
}

/// State shared by the callers, the driver thread and reapers.
struct Shared {
    /// Its queues are used under `state`'s lock.
    ring: IoUring,
    state: Mutex<State>,
    /// Registered with the ring: counts completions as they are posted.
    completed: OwnedFd,
    /// `CompletionReaper`s alive.
    reapers: AtomicUsize,
    driver: OnceLock<Thread>,
    shutdown: AtomicBool,
    sqes: AtomicU64,
    completions: AtomicU64,
    enters: AtomicU64,
    submits: AtomicU64,
    strays: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update of the state completes under the lock, so it is
        // consistent even after a panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The owner of the driver thread. Dropping the last handle (disk or file)
/// lets the driver finish what is in flight, then joins it.
struct Client {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Client {
    fn submit(&self, op: Op) {
        self.shared.submit_all([op]);
    }

    /// Submits `ops` together: one `io_uring_enter` for all.
    fn submit_all(&self, ops: Vec<Op>) {
        self.shared.submit_all(ops);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.unpark_driver();
        if let Some(thread) = self.thread.take() {
            // Joining ourselves would deadlock; a driver that dropped the last
            // handle (through a waker) exits on its own once idle.
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// See [`UringDisk::completion_reaper`]. Keeps the ring alive.
pub struct CompletionReaper {
    client: Arc<Client>,
}

impl CompletionReaper {
    /// Resets the eventfd and reaps every completion waiting, answering
    /// their callers on this thread. `WouldBlock` if nothing was posted
    /// since the last call: then wait for the descriptor again.
    pub fn reap(&self) -> io::Result<usize> {
        let mut count = [0u8; 8];
        // SAFETY: reads 8 bytes into a live buffer from our own eventfd.
        let n = unsafe { libc::read(self.client.shared.completed.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.client.shared.reap())
    }
}

/// The ring's completion eventfd (non-blocking): readable when completions
/// were posted since the last `reap`.
impl AsRawFd for CompletionReaper {
    fn as_raw_fd(&self) -> RawFd {
        self.client.shared.completed.as_raw_fd()
    }
}

impl Drop for CompletionReaper {
    /// The driver goes back to waiting on the ring.
    fn drop(&mut self) {
        self.client.shared.reapers.fetch_sub(1, Ordering::SeqCst);
        self.client.shared.unpark_driver();
    }
}

impl fmt::Debug for CompletionReaper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionReaper").field("fd", &self.as_raw_fd()).finish()
    }
}

fn driver_gone() -> io::Error {
    io::Error::other("io_uring driver thread stopped")
}

/// Rejects ranges the kernel would read as negative offsets (`-1` means
/// "current position" to io_uring).
fn check_range(offset: u64, len: usize) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "file range exceeds i64::MAX")),
    }
}

/// One caller request. It owns its buffer and an `Arc` of the file, so both
/// stay valid until the kernel completes, even if the caller gave up.
enum Op {
    Write {
        file: Arc<File>,
        offset: u64,
        buf: Bytes,
        done: usize,
        /// RWF_DSYNC or 0.
        flags: i32,
        tx: oneshot::Sender<io::Result<()>>,
    },
    Read(ReadOp),
    Sync {
        file: Arc<File>,
        tx: oneshot::Sender<io::Result<()>>,
    },
}

impl Op {
    /// The SQE for the remaining part of the operation.
    fn sqe(&mut self, user_data: u64) -> squeue::Entry {
        let entry = match self {
            Op::Write { file, offset, buf, done, flags, .. } => {
                let rest = &buf[*done..];
                let n = rest.len().min(MAX_RW) as u32;
                opcode::Write::new(types::Fd(file.as_raw_fd()), rest.as_ptr(), n)
                    .offset(*offset + *done as u64)
                    .rw_flags(*flags)
                    .build()
            }
            Op::Read(read) => read.sqe(),
            Op::Sync { file, .. } => {
                opcode::Fsync::new(types::Fd(file.as_raw_fd())).flags(types::FsyncFlags::DATASYNC).build()
            }
        };
        entry.user_data(user_data)
    }

    /// Applies a CQE result: answers the caller, or returns the op if a
    /// short transfer left work to resubmit.
    fn complete(self, res: i32) -> Option<Op> {
        let err = |res: i32| io::Error::from_raw_os_error(-res);
        match self {
            Op::Write { file, offset, buf, done, flags, tx } => {
                let done = match res {
                    r if r == -libc::EINTR => done,
                    r if r < 0 => return send(tx, Err(err(r))),
                    0 => return send(tx, Err(io::ErrorKind::WriteZero.into())),
                    r => done + r as usize,
                };
                if done == buf.len() {
                    return send(tx, Ok(()));
                }
                Some(Op::Write { file, offset, buf, done, flags, tx })
            }
            Op::Read(read) => read.complete(res).map(Op::Read),
            // A failed fdatasync is never retried: the durable state is unknown.
            Op::Sync { tx, .. } => send(tx, if res < 0 { Err(err(res)) } else { Ok(()) }),
        }
    }

    /// Answers the caller with an error. `leak` keeps the buffer allocated
    /// for good, for ops the kernel may still be writing into or reading.
    fn fail(self, leak: bool) {
        match self {
            Op::Write { buf, tx, .. } => {
                let _ = tx.send(Err(driver_gone()));
                if leak {
                    std::mem::forget(buf);
                }
            }
            Op::Read(ReadOp { buf, tx, .. }) => {
                let _ = tx.send(Err(driver_gone()));
                if leak {
                    std::mem::forget(buf);
                }
            }
            Op::Sync { tx, .. } => drop(tx.send(Err(driver_gone()))),
        }
    }
}

/// A caller that dropped its future no longer wants the answer.
fn send<T>(tx: oneshot::Sender<T>, value: T) -> Option<Op> {
    let _ = tx.send(value);
    None
}

impl Disk for UringDisk {
    type File = UringFile;
    type Lock = StdLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<UringFile> {
        let file = Arc::new(std_disk::open_file(path, mode)?);
        Ok(UringFile { file, align: 1, client: Arc::clone(&self.client) })
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<UringFile> {
        // Reads go through the direct descriptor too (see read.rs), so the
        // buffered one std's backend reads through is not kept.
        let (file, _buffered, align) = std_disk::open_direct_pair(path, mode)?;
        Ok(UringFile { file: Arc::new(file), align, client: Arc::clone(&self.client) })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        std_disk::list_files(dir)
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        std_disk::list_dirs(dir)
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std_disk::sync_dir(dir)
    }

    async fn try_lock(&self, path: &Path) -> io::Result<StdLock> {
        std_disk::try_lock(path)
    }
}

impl UringFile {
    async fn write(&self, offset: u64, buf: Bytes, flags: i32) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        check_range(offset, buf.len())?;
        // A large write goes to the ring as several pieces submitted
        // together, so the device sees a queue of them (as fio's iodepth),
        // not one long request at a time.
        let pieces = buf.len().div_ceil(WRITE_PIECE_BYTES);
        let (mut ops, mut pending) = (Vec::with_capacity(pieces), Vec::with_capacity(pieces));
        let mut at = 0;
        while at < buf.len() {
            let piece = buf.slice(at..buf.len().min(at + WRITE_PIECE_BYTES));
            let (tx, rx) = oneshot::channel();
            let file = Arc::clone(&self.file);
            let offset = offset + at as u64;
            ops.push(Op::Write { file, offset, buf: piece, done: 0, flags, tx });
            pending.push(rx);
            at += WRITE_PIECE_BYTES;
        }
        self.client.submit_all(ops);
        let mut result = Ok(());
        for rx in pending {
            let outcome = rx.await.map_err(|_| driver_gone()).and_then(|r| r);
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

impl DiskFile for UringFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.write(offset, buf, 0).await
    }

    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        if buf.len() > WRITE_PIECE_BYTES {
            // Pieces each synced on their own would cost a sync apiece.
            self.write(offset, buf, 0).await?;
            return self.sync_data().await;
        }
        // One operation: the kernel syncs the range before completing it,
        // with no second trip through the driver for the fdatasync.
        self.write(offset, buf, libc::RWF_DSYNC).await
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        check_range(offset, len)?;
        // Direct files are read through their direct descriptor (see read.rs).
        read::read(&self.client, &self.file, offset, len, self.align).await
    }

    async fn sync_data(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.client.submit(Op::Sync { file: Arc::clone(&self.file), tx });
        rx.await.map_err(|_| driver_gone())?
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

mod driver;
mod read;
#[cfg(test)]
mod tests;
