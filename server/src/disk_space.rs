//! Free space on the data directory's file system: a gauge for the metrics,
//! a warning from the upkeep when it falls under `--disk-free-warn-bytes`,
//! so an operator hears of a filling disk before produces start failing,
//! and the guard that keeps a full disk from breaking more than produce.
//!
//! The guard (`DiskGuard`): produce is refused (KAFKA_STORAGE_ERROR, a
//! retriable error) while a request would leave less than
//! `--disk-min-free-bytes` free. So producers never fill the disk: no
//! append fails half-way and poisons its log, and what must still write
//! (offset commits, metadata changes such as DeleteTopics, checkpoints,
//! DeleteRecords) has room; fetches only read. Something else may fill the
//! disk all the same (another process, followers' appends), so a reserve
//! file of `--disk-reserve-bytes` is written at start-up and deleted the
//! moment produce is refused, giving that room back to those writes, as
//! Redpanda keeps its reserve. Once space is freed, produce resumes by
//! itself and the reserve is made again.
//!
//! The simulator's disk is not a host file system: there free space is
//! unknown, and the guard admits everything and holds no reserve.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The reserve file in the data directory (a plain file: the log manager
/// looks only at directories).
pub const RESERVE_FILE: &str = "disk-reserve";
/// How long a produce trusts the last look at free space while far from
/// the limit; near it (within 4 × the limit), every produce looks again.
const RECHECK_AFTER: Duration = Duration::from_millis(100);

/// Bytes an unprivileged writer may still use on `dir`'s file system, or
/// `None` if it cannot be asked (no such directory, or the simulator).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    space(dir).map(|s| s.usable)
}

/// The size of a file system, and what an unprivileged writer may still use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    pub usable: u64,
}

/// `dir`'s file system's space, or `None` if it cannot be asked.
#[cfg(not(madsim))]
pub fn space(dir: &Path) -> Option<Space> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is NUL-terminated and `stat` is a writable statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs filled it on success.
    let stat = unsafe { stat.assume_init() };
    let frsize = stat.f_frsize;
    Some(Space { total: stat.f_blocks.saturating_mul(frsize), usable: stat.f_bavail.saturating_mul(frsize) })
}

#[cfg(madsim)]
pub fn space(_dir: &Path) -> Option<Space> {
    None
}

/// Produce's admission on a filling disk, and the reserve (see the module).
pub struct DiskGuard {
    dir: PathBuf,
    min_free: u64,
    reserve_bytes: u64,
    state: Mutex<GuardState>,
}

#[derive(Debug)]
struct GuardState {
    /// Free bytes at the last look, and when; `None`: unknown.
    free: Option<(u64, Instant)>,
    refusing: bool,
    reserve_held: bool,
}

impl DiskGuard {
    /// The guard of `dir`, with its reserve written if there is room for
    /// it (a failure to write it is logged, not fatal: the guard still
    /// refuses produce on a full disk).
    pub fn new(dir: &Path, min_free: u64, reserve_bytes: u64) -> DiskGuard {
        let guard = DiskGuard {
            dir: dir.to_owned(),
            min_free,
            reserve_bytes,
            state: Mutex::new(GuardState { free: None, refusing: false, reserve_held: false }),
        };
        let path = guard.reserve_path();
        // A reserve left by an earlier run is counted as held. Where free
        // space is unknown (the simulator) the host's files are not looked at.
        let held =
            free_bytes(dir).is_some() && std::fs::metadata(&path).is_ok_and(|m| m.len() >= reserve_bytes);
        guard.lock().reserve_held = held;
        guard.refresh();
        guard
    }

    /// A guard that admits everything and holds no reserve (fixtures
    /// whose disk is not a host file system).
    pub fn disabled() -> DiskGuard {
        DiskGuard {
            dir: PathBuf::new(),
            min_free: 0,
            reserve_bytes: 0,
            state: Mutex::new(GuardState { free: None, refusing: false, reserve_held: false }),
        }
    }

    /// The data directory it watches (empty for a disabled guard).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reserve_path(&self) -> PathBuf {
        self.dir.join(RESERVE_FILE)
    }

    /// Whether a produce of `bytes` may go ahead; if not, why.
    pub fn admit(&self, bytes: u64) -> Result<(), String> {
        if self.min_free == 0 {
            return Ok(());
        }
        let known = self.lock().free;
        let free = match known {
            Some((free, at)) if free > 4 * self.min_free && at.elapsed() < RECHECK_AFTER => Some(free),
            _ => self.refresh(),
        };
        match free {
            Some(free) if free.saturating_sub(bytes) < self.min_free => Err(format!(
                "the data directory's disk has {free} bytes free, under --disk-min-free-bytes {}: \
                 produce is refused until space is freed",
                self.min_free
            )),
            _ => Ok(()),
        }
    }

    /// Looks at free space again: releases the reserve when produce is
    /// refused, makes it again once there is room. Returns the free bytes,
    /// if known. The upkeep calls it every second, produce near the limit.
    pub fn refresh(&self) -> Option<u64> {
        let free = free_bytes(&self.dir)?;
        let mut st = self.lock();
        st.free = Some((free, Instant::now()));
        let refusing = self.min_free > 0 && free < self.min_free;
        if refusing != st.refusing {
            st.refusing = refusing;
            if refusing {
                tracing::warn!(
                    data_dir = %self.dir.display(),
                    free_bytes = free,
                    min_free_bytes = self.min_free,
                    "the data directory's disk is full: produce is refused until space is freed"
                );
            } else {
                tracing::info!(data_dir = %self.dir.display(), free_bytes = free, "produce is taken again");
            }
        }
        if refusing && st.reserve_held {
            match std::fs::remove_file(self.reserve_path()) {
                Ok(()) => {
                    st.reserve_held = false;
                    tracing::warn!(
                        bytes = self.reserve_bytes,
                        "gave the disk reserve back, for commits and metadata"
                    );
                }
                Err(e) => tracing::error!(error = %e, "cannot delete the disk reserve"),
            }
        } else if !st.reserve_held && self.reserve_bytes > 0 && free >= self.min_free + 2 * self.reserve_bytes
        {
            // Made only with twice its size to spare, so that making it
            // does not itself bring the disk under the limit.
            match write_reserve(&self.reserve_path(), self.reserve_bytes) {
                Ok(()) => st.reserve_held = true,
                Err(e) => {
                    // A part of it would hold space for nothing.
                    let _ = std::fs::remove_file(self.reserve_path());
                    tracing::warn!(error = %e, "cannot write the disk reserve");
                }
            }
        }
        Some(free)
    }

    /// Whether produce is refused as of the last look.
    pub fn refusing(&self) -> bool {
        self.lock().refusing
    }

    pub fn reserve_held(&self) -> bool {
        self.lock().reserve_held
    }
}

/// Writes `bytes` of zeros to `path`, synced: space a file system with
/// delayed allocation or compression must really give.
fn write_reserve(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// Whether the upkeep is warning about free space: warns once on falling
/// under the threshold, and says so once when it is back above.
#[derive(Debug, Default)]
pub struct LowSpace {
    warned: bool,
}

impl LowSpace {
    /// Looks at `free` against `threshold` (0: never warn) and logs a
    /// change of state.
    pub fn observe(&mut self, dir: &Path, free: Option<u64>, threshold: u64) {
        let Some(free) = free else { return };
        let low = threshold > 0 && free < threshold;
        if low && !self.warned {
            tracing::warn!(
                data_dir = %dir.display(),
                free_bytes = free,
                threshold_bytes = threshold,
                "the data directory's disk is nearly full; produce will fail once it is"
            );
        } else if !low && self.warned {
            tracing::info!(data_dir = %dir.display(), free_bytes = free, "the data directory's disk has room again");
        }
        self.warned = low;
    }

    pub fn warned(&self) -> bool {
        self.warned
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_has_free_space_and_a_missing_one_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
    }

    #[test]
    fn warns_once_below_the_threshold_and_clears_above_it() {
        let dir = Path::new("/data");
        let mut low = LowSpace::default();
        low.observe(dir, Some(500), 1000);
        assert!(low.warned());
        low.observe(dir, Some(400), 1000);
        assert!(low.warned());
        low.observe(dir, Some(2000), 1000);
        assert!(!low.warned());
        low.observe(dir, Some(1), 0);
        assert!(!low.warned(), "a threshold of 0 never warns");
        low.observe(dir, None, 1000);
        assert!(!low.warned(), "unknown free space says nothing");
    }
}
