//! The disk under test: its counters from /proc/diskstats, its free space,
//! quieting it between runs, and removing what the runs leave on it.

use crate::Result;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Counters of one block device from /proc/diskstats.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DiskCounters {
    pub(super) sectors_written: u64,
    pub(super) flushes: u64,
}

impl DiskCounters {
    pub(super) fn since(self, before: DiskCounters) -> DiskCounters {
        DiskCounters {
            sectors_written: self.sectors_written.saturating_sub(before.sectors_written),
            flushes: self.flushes.saturating_sub(before.flushes),
        }
    }
}

/// Reads the counters of `device`. Whitespace-separated columns of
/// /proc/diskstats, counting from 1: 3 the name, 10 sectors written (512
/// bytes each, whatever the sector size), 19 flush requests completed
/// (iostats "field 16", Linux 5.5+). Checked here: 20 `dd conv=fdatasync`
/// moved column 19 by exactly 20. Flushes are accounted on the whole disk
/// only, never on a partition, which is why `device_of` returns the disk.
pub(super) fn read_diskstats(device: &str) -> Option<DiskCounters> {
    let text = std::fs::read_to_string("/proc/diskstats").ok()?;
    text.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 19 || cols[2] != device {
            return None;
        }
        Some(DiskCounters { sectors_written: cols[9].parse().ok()?, flushes: cols[18].parse().ok()? })
    })
}

/// The whole block device holding `path`: st_dev's major:minor through
/// /sys/dev/block, climbing from a partition to its disk. Falls back to
/// "vda" (with a warning) for filesystems not on a block device.
pub(super) fn device_of(path: &Path) -> String {
    let found = (|| {
        let dev = std::fs::metadata(path).ok()?.dev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
        let disk = if sys.join("partition").exists() { sys.parent()?.to_path_buf() } else { sys };
        let name = disk.file_name()?.to_str()?.to_string();
        read_diskstats(&name).map(|_| name)
    })();
    found.unwrap_or_else(|| {
        eprintln!("warning: no block device found for {}; reading counters of vda", path.display());
        "vda".to_string()
    })
}

/// Refuses too little free space; warns about tmpfs.
pub(super) fn check_filesystem(dir: &Path, bytes: u64) -> Result<()> {
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: `statfs` is a plain C struct of integers, for which all
    // zeroes is a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path, alive for the call, and a
    // pointer to a writable `statfs` out-parameter owned by this frame.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } != 0 {
        return Err(format!("statfs {}: {}", dir.display(), std::io::Error::last_os_error()).into());
    }
    if fs.f_type == libc::TMPFS_MAGIC {
        eprintln!("warning: {} is on tmpfs: this measures memory, not a disk", dir.display());
    }
    let free = fs.f_bavail * fs.f_bsize as u64;
    let need = bytes + bytes / 8 + (1 << 30);
    if free < need {
        return Err(format!("{} has {free} bytes free; a run needs about {need}", dir.display()).into());
    }
    Ok(())
}

/// Lets the next run start from a quiet disk: writes back what the last
/// one left (e.g. the journal after deleting its files), then waits for the
/// host to drain what it absorbed.
pub(super) fn settle(secs: u64) {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_secs(secs));
}

/// Removes a file or directory when dropped, so an error leaves no data.
pub(super) struct RemoveOnDrop(pub(super) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let result = if self.0.is_dir() {
            std::fs::remove_dir_all(&self.0)
        } else if self.0.exists() {
            std::fs::remove_file(&self.0)
        } else {
            Ok(())
        };
        if let Err(e) = result {
            eprintln!("warning: could not remove {}: {e}", self.0.display());
        }
    }
}
