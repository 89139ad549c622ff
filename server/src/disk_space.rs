//! Free space on the data directory's file system: a gauge for the metrics
//! and a warning from the upkeep when it falls under `--disk-free-warn-bytes`,
//! so an operator hears of a filling disk before produces start failing.
//! The simulator's disk is not a host file system: there it is unknown.

use std::path::Path;

/// Bytes an unprivileged writer may still use on `dir`'s file system, or
/// `None` if it cannot be asked (no such directory, or the simulator).
#[cfg(not(madsim))]
pub fn free_bytes(dir: &Path) -> Option<u64> {
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
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(madsim)]
pub fn free_bytes(_dir: &Path) -> Option<u64> {
    None
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
