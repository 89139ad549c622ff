//! Picks the storage backend at startup (`--io auto|uring|std`) and hides
//! the choice behind one `Disk` type, so the engine is not generic over it.

use super::disk::{Disk, DiskFile, OpenMode};
// Only the names: with the traits in scope, every backend would have two
// `open`s (a trait object's methods need no import).
use super::dyn_disk;
use super::std_disk::{StdDisk, StdFile, StdLock};
#[cfg(target_os = "linux")]
use super::uring::{self, UringDisk, UringFile, UringStats};
use bytes::Bytes;
use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// Which backend to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoChoice {
    /// io_uring if this host can complete an operation through it, else std.
    #[default]
    Auto,
    /// io_uring, or an error: for deployments that must not silently lose
    /// batched submission.
    Uring,
    /// The portable backend.
    Std,
}

impl FromStr for IoChoice {
    type Err = ParseIoChoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(IoChoice::Auto),
            "uring" => Ok(IoChoice::Uring),
            "std" => Ok(IoChoice::Std),
            _ => Err(ParseIoChoiceError { input: s.to_owned() }),
        }
    }
}

impl fmt::Display for IoChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoChoice::Auto => "auto",
            IoChoice::Uring => "uring",
            IoChoice::Std => "std",
        })
    }
}

/// An `--io` value other than auto, uring or std.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIoChoiceError {
    input: String,
}

impl fmt::Display for ParseIoChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown I/O backend {:?}: expected \"auto\", \"uring\" or \"std\"", self.input)
    }
}

impl std::error::Error for ParseIoChoiceError {}

/// The backend chosen at startup.
#[derive(Clone, Debug)]
pub enum AnyDisk {
    #[cfg(target_os = "linux")]
    Uring(UringDisk),
    Std(StdDisk),
    /// A backend from outside the engine (the simulator's disk), through
    /// boxed futures (dyn_disk.rs).
    Dyn(Arc<dyn dyn_disk::DynDisk>),
}

impl AnyDisk {
    /// The io_uring backend's completion reaper (see
    /// [`UringDisk::completion_reaper`]); `None` for the std backend.
    #[cfg(target_os = "linux")]
    pub fn completion_reaper(&self) -> Option<super::uring::CompletionReaper> {
        match self {
            AnyDisk::Uring(disk) => Some(disk.completion_reaper()),
            AnyDisk::Std(_) | AnyDisk::Dyn(_) => None,
        }
    }
}

/// A file of an [`AnyDisk`].
#[derive(Debug)]
pub enum AnyFile {
    #[cfg(target_os = "linux")]
    Uring(UringFile),
    Std(StdFile),
    Dyn(Box<dyn dyn_disk::DynFile>),
}

/// A directory lock of an [`AnyDisk`].
#[derive(Debug)]
pub enum AnyLock {
    #[cfg(target_os = "linux")]
    Uring(<UringDisk as Disk>::Lock),
    Std(StdLock),
    Dyn(dyn_disk::DynLock),
}

/// Runs `$body` with `$inner` bound to whichever backend `$value` holds.
macro_rules! delegate {
    ($value:expr, $inner:ident => $body:expr) => {
        match $value {
            #[cfg(target_os = "linux")]
            Self::Uring($inner) => $body,
            Self::Std($inner) => $body,
            Self::Dyn($inner) => $body,
        }
    };
}

impl AnyDisk {
    /// The backend's name for logs and metrics: "io_uring" or "std".
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            AnyDisk::Uring(_) => "io_uring",
            AnyDisk::Std(_) => "std",
            AnyDisk::Dyn(_) => "dyn",
        }
    }

    /// Ring counters, when the backend is io_uring.
    #[cfg(target_os = "linux")]
    pub fn uring_stats(&self) -> Option<UringStats> {
        match self {
            AnyDisk::Uring(disk) => Some(disk.stats()),
            AnyDisk::Std(_) | AnyDisk::Dyn(_) => None,
        }
    }
}

/// Opens the backend `choice` asks for. Under `Auto`, a host where io_uring
/// is disabled (seccomp, `io_uring_disabled`, old kernel) gets the std
/// backend and a warning rather than a failed start.
pub fn open_backend(choice: IoChoice) -> io::Result<AnyDisk> {
    select(choice, open_uring)
}

fn select(choice: IoChoice, open_uring: impl FnOnce() -> io::Result<AnyDisk>) -> io::Result<AnyDisk> {
    let disk = match choice {
        IoChoice::Std => AnyDisk::Std(StdDisk::new()),
        IoChoice::Uring => open_uring()?,
        IoChoice::Auto => open_uring().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "io_uring unavailable; falling back to the std backend, whose syscalls block the calling task");
            AnyDisk::Std(StdDisk::new())
        }),
    };
    tracing::info!(backend = disk.name(), requested = %choice, "storage I/O backend selected");
    Ok(disk)
}

/// A NOP must complete through a real ring first: creating a ring can
/// succeed where submitting to it is then refused.
#[cfg(target_os = "linux")]
fn open_uring() -> io::Result<AnyDisk> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("io_uring unavailable: {e}"));
    uring::probe().map_err(context)?;
    UringDisk::new().map(AnyDisk::Uring).map_err(context)
}

#[cfg(not(target_os = "linux"))]
fn open_uring() -> io::Result<AnyDisk> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring exists only on Linux"))
}

impl Disk for AnyDisk {
    type File = AnyFile;
    type Lock = AnyLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<AnyFile> {
        match self {
            #[cfg(target_os = "linux")]
            AnyDisk::Uring(disk) => disk.open(path, mode).await.map(AnyFile::Uring),
            AnyDisk::Std(disk) => disk.open(path, mode).await.map(AnyFile::Std),
            AnyDisk::Dyn(disk) => disk.open(path, mode).await.map(AnyFile::Dyn),
        }
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<AnyFile> {
        match self {
            #[cfg(target_os = "linux")]
            AnyDisk::Uring(disk) => disk.open_direct(path, mode).await.map(AnyFile::Uring),
            AnyDisk::Std(disk) => disk.open_direct(path, mode).await.map(AnyFile::Std),
            AnyDisk::Dyn(disk) => disk.open_direct(path, mode).await.map(AnyFile::Dyn),
        }
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        delegate!(self, disk => disk.remove(path).await)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        delegate!(self, disk => disk.rename(from, to).await)
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        delegate!(self, disk => disk.list(dir).await)
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        delegate!(self, disk => disk.list_dirs(dir).await)
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        delegate!(self, disk => disk.create_dir_all(dir).await)
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        delegate!(self, disk => disk.remove_dir_all(dir).await)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        delegate!(self, disk => disk.sync_dir(dir).await)
    }

    async fn try_lock(&self, path: &Path) -> io::Result<AnyLock> {
        match self {
            #[cfg(target_os = "linux")]
            AnyDisk::Uring(disk) => disk.try_lock(path).await.map(AnyLock::Uring),
            AnyDisk::Std(disk) => disk.try_lock(path).await.map(AnyLock::Std),
            AnyDisk::Dyn(disk) => disk.try_lock(path).await.map(AnyLock::Dyn),
        }
    }
}

impl DiskFile for AnyFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        delegate!(self, file => file.write_at(offset, buf).await)
    }

    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        delegate!(self, file => file.write_at_durable(offset, buf).await)
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        delegate!(self, file => file.read_at(offset, len).await)
    }

    async fn sync_data(&self) -> io::Result<()> {
        delegate!(self, file => file.sync_data().await)
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        delegate!(self, file => file.set_len(len).await)
    }

    async fn len(&self) -> io::Result<u64> {
        delegate!(self, file => file.len().await)
    }

    fn write_alignment(&self) -> usize {
        delegate!(self, file => file.write_alignment())
    }
}

// The tests open io_uring, which exists only on Linux.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::super::std_disk::contract;
    use super::*;

    #[test]
    fn parses_the_three_choices_and_rejects_others() {
        for choice in [IoChoice::Auto, IoChoice::Uring, IoChoice::Std] {
            assert_eq!(choice.to_string().parse::<IoChoice>(), Ok(choice));
        }
        let err = "io_uring".parse::<IoChoice>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown I/O backend "io_uring": expected "auto", "uring" or "std""#);
        assert!("".parse::<IoChoice>().is_err());
        assert!("STD".parse::<IoChoice>().is_err());
    }

    #[test]
    fn explicit_choices_get_their_backend() {
        assert_eq!(open_backend(IoChoice::Std).unwrap().name(), "std");
        // io_uring works on this host (see FACTS.md), so auto must pick it.
        assert_eq!(open_backend(IoChoice::Uring).unwrap().name(), "io_uring");
        assert_eq!(open_backend(IoChoice::Auto).unwrap().name(), "io_uring");
    }

    #[test]
    fn auto_falls_back_when_io_uring_is_refused() {
        let refused = || Err(io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(select(IoChoice::Auto, refused).unwrap().name(), "std");
        let err = select(IoChoice::Uring, refused).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }

    #[tokio::test]
    async fn both_variants_meet_the_contract() {
        for choice in [IoChoice::Std, IoChoice::Uring] {
            let disk = open_backend(choice).unwrap();
            contract::suite(&disk).await;
            if let Some(stats) = disk.uring_stats() {
                assert!(stats.sqes_submitted > 0, "{stats:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_backend_behind_trait_objects_meets_the_contract() {
        let disk = AnyDisk::Dyn(Arc::new(StdDisk::new()));
        assert_eq!(disk.name(), "dyn");
        contract::suite(&disk).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_through_any_disk() {
        for choice in [IoChoice::Std, IoChoice::Uring] {
            let dir = contract::tempdir();
            contract::concurrent_writes(&open_backend(choice).unwrap(), dir.path(), 64, 4096).await;
        }
    }
}
