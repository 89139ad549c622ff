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
use bytes::Bytes;
use ringtail_engine::io::mem::{CrashMode, MemFile, MemLock, SECTOR_BYTES};
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

pub struct SimFile {
    disk: SimDisk,
    /// The path this file was opened at (for taints and flips).
    path: PathBuf,
    inner: MemFile,
    /// Whether flips and misdirected writes may hit this file.
    media_target: bool,
}

impl SimFile {
    fn mark_dirty(&self, start: u64, end: u64) {
        // Only flips read the dirty ranges, and only media targets flip.
        if self.media_target {
            self.disk.state().dirty.entry(self.path.clone()).or_default().push((start, end));
        }
    }

    /// The unit a write is torn or displaced by: a sector, or the direct-I/O
    /// block for direct files (whose writes must stay aligned).
    fn unit(&self) -> u64 {
        (self.inner.write_alignment() as u64).max(SECTOR_BYTES)
    }

    /// A failed write: some prefix of it (whole units) may have landed.
    async fn failed_write(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        let unit = self.unit();
        let units = (buf.len() as u64).div_ceil(unit);
        let landed = {
            let mut st = self.disk.state();
            st.counts.eio_write += 1;
            if units == 0 {
                0
            } else {
                st.rng.below(units)
            }
        };
        let bytes = (landed * unit) as usize;
        let what = format!(
            "disk: EIO on write of {} bytes at {}:{offset}, {bytes} landed",
            buf.len(),
            self.path.display()
        );
        self.disk.event(what);
        if bytes > 0 {
            let _ = self.inner.write_at(offset, buf.slice(..bytes)).await;
            self.mark_dirty(offset, offset + bytes as u64);
        }
        Err(eio("write"))
    }

    /// A write that lands whole units away from `offset` and reports success.
    async fn misdirected_write(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        let unit = self.unit();
        let wrong = {
            let mut st = self.disk.state();
            let k = st.rng.range(1, 8) * unit;
            let wrong = if st.rng.chance(0.5) || offset < k { offset + k } else { offset - k };
            st.counts.misdirect += 1;
            wrong
        };
        let len = buf.len() as u64;
        let event =
            format!("disk: write of {len} bytes for {}:{offset} misdirected to {wrong}", self.path.display());
        self.disk.taint(&self.path, event);
        self.inner.write_at(wrong, buf).await?;
        self.mark_dirty(wrong, wrong + len);
        Ok(())
    }

    /// Flips one bit in a settled sector of `[offset, offset + len)`, if the
    /// draw says so: a latent media error this read discovers.
    async fn maybe_flip(&self, offset: u64, len: usize) {
        if len == 0 || !self.media_target || !self.disk.roll(|f| f.flip) {
            return;
        }
        let file_len = self.inner.len().await.unwrap_or(0);
        let end = (offset + len as u64).min(file_len);
        if offset >= end {
            return;
        }
        let target = {
            let mut st = self.disk.state();
            let byte = st.rng.range(offset, end - 1);
            let sector = byte / SECTOR_BYTES;
            let dirty = st
                .dirty
                .get(&self.path)
                .is_some_and(|ranges| ranges.iter().any(|&(s, e)| byte >= s && byte < e));
            if dirty || !st.flipped.insert((self.path.clone(), sector)) {
                None
            } else {
                st.counts.flip += 1;
                Some((byte, 1u8 << st.rng.below(8)))
            }
        };
        if let Some((byte, mask)) = target {
            if self.disk.shared.mem.corrupt(&self.path, byte, mask).is_ok() {
                let event = format!("disk: bit flip (mask {mask:#04x}) at {}:{byte}", self.path.display());
                self.disk.taint(&self.path, event);
            }
        }
    }
}

impl DiskFile for SimFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.disk.delay(false).await;
        if self.disk.roll(|f| f.eio_write) {
            return self.failed_write(offset, buf).await;
        }
        if self.media_target && self.disk.roll(|f| f.misdirect) {
            return self.misdirected_write(offset, buf).await;
        }
        let len = buf.len() as u64;
        self.inner.write_at(offset, buf).await?;
        self.mark_dirty(offset, offset + len);
        Ok(())
    }

    /// A write, then a sync, each with its own faults: a crash or an error
    /// between them leaves the write live and not durable.
    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.write_at(offset, buf).await?;
        self.sync_data().await
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.disk.delay(false).await;
        if self.disk.roll(|f| f.eio_read) {
            self.disk.state().counts.eio_read += 1;
            self.disk.event(format!("disk: EIO on read of {len} bytes at {}:{offset}", self.path.display()));
            return Err(eio("read"));
        }
        self.maybe_flip(offset, len).await;
        self.inner.read_at(offset, len).await
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.disk.delay(true).await;
        let fail = self.disk.roll(|f| f.eio_sync);
        if fail {
            self.disk.state().counts.eio_sync += 1;
            self.disk.shared.mem.fail_next_syncs(1);
            self.disk.lost_unsynced();
            self.disk.event(format!(
                "disk: EIO on fsync of {} (its dirty pages are dropped)",
                self.path.display()
            ));
        }
        let result = self.inner.sync_data().await;
        // A stale handle fails before using up the injected failure: never
        // let it leak to another file's sync.
        self.disk.shared.mem.fail_next_syncs(0);
        // Synced or dropped (a failed fsync loses the dirty pages): either
        // way nothing of this file is pending any more.
        self.disk.state().dirty.remove(&self.path);
        match (fail, result) {
            (true, Ok(())) => Err(eio("fsync")),
            (_, result) => result,
        }
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.disk.delay(false).await;
        self.inner.set_len(len).await?;
        self.mark_dirty(len, u64::MAX);
        Ok(())
    }

    async fn len(&self) -> io::Result<u64> {
        self.inner.len().await
    }

    fn write_alignment(&self) -> usize {
        self.inner.write_alignment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
    }

    fn disk(seed: u64) -> (SimDisk, Arc<Mutex<Taints>>) {
        let taints = Arc::new(Mutex::new(Taints::default()));
        (SimDisk::new(Rng::new(seed), Path::new("/data"), taints.clone()), taints)
    }

    const SEGMENT: &str = "/data/t-0/00000000000000000000.log";

    /// A segment file holding `bytes`, its data and its directory entries
    /// durable.
    async fn synced_file(d: &SimDisk, bytes: &[u8]) -> SimFile {
        d.create_dir_all(Path::new("/data/t-0")).await.unwrap();
        let f = d.open(Path::new(SEGMENT), OpenMode::Create).await.unwrap();
        f.write_at(0, Bytes::copy_from_slice(bytes)).await.unwrap();
        f.sync_data().await.unwrap();
        for dir in ["/", "/data", "/data/t-0"] {
            d.sync_dir(Path::new(dir)).await.unwrap();
        }
        f
    }

    /// A flipped bit is on the medium: every later read sees it, it taints
    /// the partition, and it lands only on settled (synced) bytes.
    #[test]
    fn flips_persist_and_taint() {
        run(async {
            let (d, taints) = disk(1);
            let f = synced_file(&d, &[0u8; 2048]).await;
            d.set_faults(DiskFaults { flip: 1.0, ..Default::default() });
            let first = f.read_at(0, 2048).await.unwrap();
            assert_eq!(first.iter().filter(|b| **b != 0).count(), 1, "one bit flipped");
            d.set_faults(DiskFaults::default());
            assert_eq!(f.read_at(0, 2048).await.unwrap(), first, "the flip persists");
            assert!(taints.lock().unwrap().contains("t", 0));
            f.write_at(2048, Bytes::from_static(&[7; 512])).await.unwrap();
            d.set_faults(DiskFaults { flip: 1.0, ..Default::default() });
            for _ in 0..20 {
                f.read_at(2048, 512).await.unwrap();
            }
            d.set_faults(DiskFaults::default());
            assert_eq!(
                f.read_at(2048, 512).await.unwrap(),
                Bytes::from_static(&[7; 512]),
                "unsynced bytes never flip"
            );
        });
    }

    /// A misdirected write succeeds but lands whole sectors away.
    #[test]
    fn misdirected_write_lands_elsewhere() {
        run(async {
            let (d, taints) = disk(2);
            let f = synced_file(&d, &[0u8; 8192]).await;
            d.set_faults(DiskFaults { misdirect: 1.0, ..Default::default() });
            f.write_at(4096, Bytes::from_static(&[9; 512])).await.unwrap();
            d.set_faults(DiskFaults::default());
            assert_ne!(f.read_at(4096, 512).await.unwrap(), Bytes::from_static(&[9; 512]));
            assert_eq!(d.counts().misdirect, 1);
            assert!(taints.lock().unwrap().contains("t", 0));
        });
    }

    /// EIO on fsync drops the dirty data (as Linux does) and counts a loss;
    /// EIO on read fails the read only.
    #[test]
    fn eio() {
        run(async {
            let (d, taints) = disk(3);
            let f = synced_file(&d, b"durable").await;
            f.write_at(7, Bytes::from_static(b" and more")).await.unwrap();
            d.set_faults(DiskFaults { eio_sync: 1.0, ..Default::default() });
            assert!(f.sync_data().await.is_err());
            d.set_faults(DiskFaults { eio_read: 1.0, ..Default::default() });
            assert!(f.read_at(0, 16).await.is_err());
            d.set_faults(DiskFaults::default());
            assert_eq!(f.read_at(0, 16).await.unwrap(), Bytes::from_static(b"durable"));
            assert_eq!(taints.lock().unwrap().losses, 1);
        });
    }

    /// A crash keeps what was synced; a disk full of data refuses growth.
    #[test]
    fn crash_and_full_disk() {
        run(async {
            let (d, _) = disk(4);
            let f = synced_file(&d, b"kept").await;
            f.write_at(4, Bytes::from_static(b" maybe")).await.unwrap();
            d.create_dir_all(Path::new("/data/t-1")).await.unwrap();
            d.crash(CrashWeights { keep_all: 0, drop_unsynced: 1, random: 0 });
            assert_eq!(d.list_dirs(Path::new("/data")).await.unwrap(), ["t-0"], "an unsynced mkdir is lost");
            let f = d.open(Path::new(SEGMENT), OpenMode::Existing).await.unwrap();
            assert_eq!(f.read_at(0, 16).await.unwrap(), Bytes::from_static(b"kept"));
            d.fill_up(0).await;
            let err = f.write_at(4, Bytes::from_static(b"x")).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::StorageFull);
            d.unfill();
            f.write_at(4, Bytes::from_static(b"x")).await.unwrap();
        });
    }
}
