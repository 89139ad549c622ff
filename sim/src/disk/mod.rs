//! `SimDisk`: the engine's `Disk` trait on top of `MemDisk`, with media
//! faults and latency added, every choice drawn from a seeded stream.
//!
//! `MemDisk` already models what a crash keeps: pending (unsynced) bytes
//! apart from durable ones, namespace changes durable only after `sync_dir`,
//! and on a crash each pending write kept, dropped or torn at sector
//! granularity. This wrapper adds what a real device does while running:
//! - latency: every operation sleeps a random simulated time first, so
//!   concurrent operations complete out of order;
//! - EIO on read, write (with any prefix of the write landed) and fsync
//!   (after which the dirty data is gone, as on Linux);
//! - bit flips found on read paths, which persist: the flip is applied to
//!   the medium (`MemDisk::corrupt`), so every later read and any recovery
//!   sees it, until the sector is rewritten;
//! - misdirected writes: the data lands whole sectors away from where it
//!   was meant to, and the call succeeds;
//! - ENOSPC: the disk is made full (`MemDisk::set_capacity`) for a while.
//!
//! The harness owns each broker's disk: it crashes it right before killing
//! the node and hands the same disk to the restarted node.

use crate::rng::Rng;
use crate::taint::{media_fault_target, Taints};
use ringtail_engine::io::mem::{CrashMode, MemFile, MemLock};
use ringtail_engine::io::{Disk, DiskFile, MemDisk, OpenMode};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Fault rates of a running disk: probabilities per operation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiskFaults {
    pub latency_us_max: u64,
    pub sync_latency_us_max: u64,
    pub eio_read: f64,
    pub eio_write: f64,
    pub eio_sync: f64,
    /// A read finds one bit flipped in one sector of the range it reads.
    pub flip: f64,
    pub misdirect: f64,
}

/// Faults injected so far, by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounts {
    pub eio_read: u64,
    pub eio_write: u64,
    pub eio_sync: u64,
    pub flip: u64,
    pub misdirect: u64,
    pub enospc: u64,
    pub crash_keep_all: u64,
    pub crash_drop_unsynced: u64,
    pub crash_random: u64,
}

/// How a crash treats unsynced state; see `CrashMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// A process crash: the page cache survives.
    KeepAll,
    /// Power loss where nothing unsynced reached the medium.
    DropUnsynced,
    /// Power loss with each unsynced write kept, dropped or torn.
    Random,
}

/// Relative weights of the crash kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashWeights {
    pub keep_all: u64,
    pub drop_unsynced: u64,
    pub random: u64,
}

struct DiskState {
    rng: Rng,
    faults: DiskFaults,
    /// Verification reads by the harness run with no faults and no latency.
    quiet: bool,
    counts: DiskCounts,
    /// Byte ranges written since the file's last sync, by path: a flip there
    /// would fight the pending write, so flips land only on settled bytes.
    dirty: BTreeMap<PathBuf, Vec<(u64, u64)>>,
    /// Sectors flipped so far (path, sector index): each holds one flip.
    flipped: BTreeSet<(PathBuf, u64)>,
}

struct Shared {
    mem: MemDisk,
    data_dir: PathBuf,
    taints: Arc<Mutex<Taints>>,
    state: Mutex<DiskState>,
}

#[derive(Clone)]
pub struct SimDisk {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected EIO on {what}"))
}

// The server holds its disk behind a trait object that asks for Debug.
impl std::fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimDisk")
    }
}

impl SimDisk {
    pub fn new(rng: Rng, data_dir: &Path, taints: Arc<Mutex<Taints>>) -> SimDisk {
        let state = DiskState {
            rng,
            faults: DiskFaults::default(),
            quiet: false,
            counts: DiskCounts::default(),
            dirty: BTreeMap::new(),
            flipped: BTreeSet::new(),
        };
        let shared = Shared {
            mem: MemDisk::new(),
            data_dir: data_dir.to_path_buf(),
            taints,
            state: Mutex::new(state),
        };
        SimDisk { shared: Arc::new(shared) }
    }

    fn state(&self) -> MutexGuard<'_, DiskState> {
        lock(&self.shared.state)
    }

    pub fn set_faults(&self, faults: DiskFaults) {
        self.state().faults = faults;
    }

    /// While quiet, no faults are injected and no latency added.
    pub fn set_quiet(&self, quiet: bool) {
        self.state().quiet = quiet;
    }

    pub fn counts(&self) -> DiskCounts {
        self.state().counts
    }

    pub fn mem(&self) -> &MemDisk {
        &self.shared.mem
    }

    /// Simulates power loss or a process crash, chosen by `weights`. Open
    /// files and locks from before become invalid.
    pub fn crash(&self, weights: CrashWeights) -> CrashKind {
        let mut st = self.state();
        let kind = match st.rng.weighted(&[weights.keep_all, weights.drop_unsynced, weights.random]) {
            0 => CrashKind::KeepAll,
            1 => CrashKind::DropUnsynced,
            _ => CrashKind::Random,
        };
        match kind {
            CrashKind::KeepAll => {
                st.counts.crash_keep_all += 1;
                self.shared.mem.crash(CrashMode::KeepAll);
            }
            CrashKind::DropUnsynced => {
                st.counts.crash_drop_unsynced += 1;
                self.shared.mem.crash(CrashMode::DropUnsynced);
            }
            CrashKind::Random => {
                st.counts.crash_random += 1;
                let rng = &mut st.rng;
                self.shared.mem.crash(CrashMode::Random(&mut || rng.next_u64()));
            }
        }
        st.dirty.clear();
        drop(st);
        self.lost_unsynced();
        kind
    }

    /// Fills the disk: writes that grow it past its current use plus
    /// `slack_bytes` fail with ENOSPC until `unfill`.
    pub async fn fill_up(&self, slack_bytes: u64) {
        let used = self.used_bytes().await;
        self.shared.mem.set_capacity(Some(used + slack_bytes));
        self.state().counts.enospc += 1;
        self.event(format!("disk: full ({used} bytes used, {slack_bytes} more allowed)"));
    }

    pub fn unfill(&self) {
        self.shared.mem.set_capacity(None);
    }

    /// Live bytes of every file, walking the tree (no faults, no latency).
    async fn used_bytes(&self) -> u64 {
        let mem = &self.shared.mem;
        let mut total = 0;
        let mut dirs = vec![PathBuf::from("/")];
        while let Some(dir) = dirs.pop() {
            for name in mem.list(&dir).await.unwrap_or_default() {
                if let Ok(f) = mem.open(&dir.join(&name), OpenMode::Existing).await {
                    total += f.len().await.unwrap_or(0);
                }
            }
            for name in mem.list_dirs(&dir).await.unwrap_or_default() {
                dirs.push(dir.join(name));
            }
        }
        total
    }

    /// Sleeps a random latency, unless quiet.
    async fn delay(&self, sync: bool) {
        let pause = {
            let mut st = self.state();
            let max = if sync { st.faults.sync_latency_us_max } else { st.faults.latency_us_max };
            if st.quiet || max == 0 {
                0
            } else {
                st.rng.below(max + 1)
            }
        };
        // madsim sleeps at least 1 ms, so shorter draws complete at once: a
        // fast device with slow outliers, and the outliers reorder.
        if pause >= 1_000 {
            madsim::time::sleep(Duration::from_micros(pause)).await;
        }
    }

    /// Draws whether a fault of probability `p` happens now.
    fn roll(&self, p: impl Fn(&DiskFaults) -> f64) -> bool {
        let mut st = self.state();
        let p = p(&st.faults);
        !st.quiet && st.rng.chance(p)
    }

    fn taint(&self, path: &Path, event: String) {
        let mut taints = lock(&self.shared.taints);
        taints.add(&self.shared.data_dir, path);
        taints.events.push(event);
    }

    /// Records a fault for the history (`--trace`, violation slices).
    fn event(&self, text: String) {
        lock(&self.shared.taints).events.push(text);
    }

    /// Unsynced data may have been dropped (a crash, a failed fsync).
    fn lost_unsynced(&self) {
        lock(&self.shared.taints).losses += 1;
    }

    fn file(&self, path: &Path, inner: MemFile) -> SimFile {
        let media_target = media_fault_target(&self.shared.data_dir, path);
        SimFile { disk: self.clone(), path: path.to_path_buf(), inner, media_target }
    }
}

impl Disk for SimDisk {
    type File = SimFile;
    type Lock = MemLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        self.delay(false).await;
        let inner = self.shared.mem.open(path, mode).await?;
        Ok(self.file(path, inner))
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        self.delay(false).await;
        let inner = self.shared.mem.open_direct(path, mode).await?;
        Ok(self.file(path, inner))
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.delay(false).await;
        self.shared.mem.remove(path).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.delay(false).await;
        self.shared.mem.rename(from, to).await?;
        let mut st = self.state();
        if let Some(ranges) = st.dirty.remove(from) {
            st.dirty.insert(to.to_path_buf(), ranges);
        }
        Ok(())
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.delay(false).await;
        self.shared.mem.list(dir).await
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.delay(false).await;
        self.shared.mem.list_dirs(dir).await
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.delay(false).await;
        self.shared.mem.create_dir_all(dir).await
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.delay(false).await;
        self.shared.mem.remove_dir_all(dir).await
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.delay(true).await;
        if self.roll(|f| f.eio_sync) {
            // The directory's changes stay volatile, as after a failed fsync.
            self.state().counts.eio_sync += 1;
            self.event(format!("disk: EIO on fsync of directory {}", dir.display()));
            return Err(eio("directory fsync"));
        }
        self.shared.mem.sync_dir(dir).await
    }

    async fn try_lock(&self, path: &Path) -> io::Result<MemLock> {
        self.shared.mem.try_lock(path).await
    }
}

mod file;
#[cfg(test)]
mod tests;

pub use file::SimFile;
