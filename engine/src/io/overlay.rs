//! A `Disk` over a real directory tree that never changes it: reads go to
//! the files underneath, every change (a write, a cut, a create, a remove,
//! a rename) is kept in memory on top of them. `ringtail check` runs the
//! broker's own recovery on it, so what it reports is what a start-up would
//! do, without doing it.
//!
//! A file changed here is the bytes of the file underneath (read-only, up
//! to the length it was cut to) with the writes made since laid over them,
//! in order. Files underneath are opened read-only for each read and never
//! held open, so a data directory with many thousands of segments costs no
//! descriptors; only the files changed here cost memory, and recovery
//! changes few (a cut tail, a rewritten checkpoint).
//!
//! Every sync succeeds at once: nothing here is durable, by design. The
//! directory lock is the real one (`flock` on the lock file, opened
//! read-only), so a running broker's directory is refused.

use super::aligned::DIRECT_IO_ALIGN;
use super::disk::{Disk, DiskFile, OpenMode};
use super::std_disk::{list_dirs, list_files, read_full_at};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A read-only view of the real file system with an in-memory layer of
/// changes on top. Clones share the layer.
#[derive(Clone, Debug, Default)]
pub struct OverlayDisk {
    layer: Arc<Mutex<Layer>>,
}

#[derive(Debug, Default)]
struct Layer {
    /// Every file opened, created or renamed here, by its current path;
    /// `None` where a file underneath was removed or renamed away.
    files: BTreeMap<PathBuf, Option<Arc<Mutex<Contents>>>>,
    /// Directories created here.
    dirs_created: BTreeSet<PathBuf>,
    /// Directories removed here: nothing underneath them shows any more.
    dirs_removed: BTreeSet<PathBuf>,
}

/// A file as this disk shows it.
#[derive(Debug)]
struct Contents {
    /// The file underneath and how much of it still shows: cuts shrink it.
    below: Option<(PathBuf, u64)>,
    /// Writes since, applied in order over `below` and zeros.
    writes: Vec<(u64, Bytes)>,
    len: u64,
    alignment: usize,
}

/// An open file of [`OverlayDisk`].
#[derive(Debug)]
pub struct OverlayFile {
    contents: Arc<Mutex<Contents>>,
}

/// The lock file's descriptor, holding its `flock` (or nothing, where the
/// directory has no lock file: no broker ever ran there).
#[derive(Debug)]
pub struct OverlayLock {
    _file: Option<File>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} does not exist", path.display()))
}

impl OverlayDisk {
    pub fn new() -> OverlayDisk {
        OverlayDisk::default()
    }

    fn layer(&self) -> MutexGuard<'_, Layer> {
        self.layer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Paths changed here (written, cut, created), sorted: what a real run
    /// would have changed, removals and renames aside.
    pub fn changed_files(&self) -> Vec<PathBuf> {
        let layer = self.layer();
        let changed = |c: &Arc<Mutex<Contents>>| {
            let c = c.lock().unwrap_or_else(|e| e.into_inner());
            !c.writes.is_empty() || c.below.as_ref().is_none_or(|(_, shown)| *shown != c.len)
        };
        layer.files.iter().filter(|(_, c)| c.as_ref().is_some_and(changed)).map(|(p, _)| p.clone()).collect()
    }

    fn open_contents(&self, path: &Path, mode: OpenMode, direct: bool) -> io::Result<OverlayFile> {
        let mut layer = self.layer();
        if let Some(entry) = layer.files.get(path) {
            return match (entry, mode) {
                (Some(contents), _) => Ok(OverlayFile { contents: contents.clone() }),
                (None, OpenMode::Existing) => Err(not_found(path)),
                (None, OpenMode::Create) => Ok(layer.create(path)),
            };
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !layer.dir_exists(parent) {
                return Err(not_found(parent));
            }
        }
        let below = if layer.shows_below(path) { metadata_of_file(path)? } else { None };
        match (below, mode) {
            (Some(len), _) => {
                let alignment = if direct { direct_alignment(path) } else { 1 };
                let contents =
                    Contents { below: Some((path.to_path_buf(), len)), writes: Vec::new(), len, alignment };
                let contents = Arc::new(Mutex::new(contents));
                layer.files.insert(path.to_path_buf(), Some(contents.clone()));
                Ok(OverlayFile { contents })
            }
            (None, OpenMode::Existing) => Err(not_found(path)),
            (None, OpenMode::Create) => Ok(layer.create(path)),
        }
    }
}

/// The length of the regular file at `path`, `None` if there is none.
fn metadata_of_file(path: &Path) -> io::Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Err(io::Error::other(format!("{} is not a regular file", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a real `open_direct` of `path` would align writes to: recovery
/// tells a direct-I/O write's zero padding from damage by it.
fn direct_alignment(path: &Path) -> usize {
    use std::os::unix::fs::OpenOptionsExt;
    match OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path) {
        Ok(_) => DIRECT_IO_ALIGN,
        Err(_) => 1,
    }
}

impl Layer {
    fn create(&mut self, path: &Path) -> OverlayFile {
        let contents = Contents { below: None, writes: Vec::new(), len: 0, alignment: 1 };
        let contents = Arc::new(Mutex::new(contents));
        self.files.insert(path.to_path_buf(), Some(contents.clone()));
        OverlayFile { contents }
    }

    /// Whether what lies at `path` underneath still shows: no directory
    /// above it was removed here.
    fn shows_below(&self, path: &Path) -> bool {
        !path.ancestors().any(|a| self.dirs_removed.contains(a))
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        self.dirs_created.contains(dir) || (self.shows_below(dir) && dir.is_dir())
    }

    /// Names directly inside `dir` that this layer adds (`true`) or hides
    /// (`false`).
    fn file_entries_in<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = (String, bool)> + 'a {
        self.files.iter().filter(move |(p, _)| p.parent() == Some(dir)).filter_map(|(p, c)| {
            let name = p.file_name()?.to_str()?.to_string();
            Some((name, c.is_some()))
        })
    }
}

impl Disk for OverlayDisk {
    type File = OverlayFile;
    type Lock = OverlayLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<OverlayFile> {
        self.open_contents(path, mode, false)
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<OverlayFile> {
        self.open_contents(path, mode, true)
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.open_contents(path, OpenMode::Existing, false)?;
        self.layer().files.insert(path.to_path_buf(), None);
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let file = self.open_contents(from, OpenMode::Existing, false)?;
        let mut layer = self.layer();
        layer.files.insert(from.to_path_buf(), None);
        layer.files.insert(to.to_path_buf(), Some(file.contents));
        Ok(())
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let layer = self.layer();
        if !layer.dir_exists(dir) {
            return Err(not_found(dir));
        }
        let below = if layer.shows_below(dir) && dir.is_dir() { list_files(dir)? } else { Vec::new() };
        let mut names: BTreeSet<String> = below.into_iter().collect();
        for (name, shown) in layer.file_entries_in(dir) {
            if shown {
                names.insert(name);
            } else {
                names.remove(&name);
            }
        }
        Ok(names.into_iter().collect())
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let layer = self.layer();
        if !layer.dir_exists(dir) {
            return Err(not_found(dir));
        }
        let below = if layer.shows_below(dir) && dir.is_dir() { list_dirs(dir)? } else { Vec::new() };
        let mut names: BTreeSet<String> =
            below.into_iter().filter(|n| !layer.dirs_removed.contains(&dir.join(n))).collect();
        let created = layer.dirs_created.iter().filter(|d| d.parent() == Some(dir));
        names.extend(created.filter_map(|d| Some(d.file_name()?.to_str()?.to_string())));
        Ok(names.into_iter().collect())
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut layer = self.layer();
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty() && !layer.dir_exists(a))
            .map(Path::to_path_buf)
            .collect();
        layer.dirs_created.extend(missing);
        Ok(())
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut layer = self.layer();
        if !layer.dir_exists(dir) {
            return Err(not_found(dir));
        }
        layer.files.retain(|p, _| !p.starts_with(dir));
        layer.dirs_created.retain(|d| !d.starts_with(dir));
        layer.dirs_removed.insert(dir.to_path_buf());
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.layer().dir_exists(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    async fn try_lock(&self, path: &Path) -> io::Result<OverlayLock> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OverlayLock { _file: None }),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(OverlayLock { _file: Some(file) }),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another owner", path.display()),
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl OverlayFile {
    fn contents(&self) -> MutexGuard<'_, Contents> {
        self.contents.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DiskFile for OverlayFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        let mut c = self.contents();
        c.len = c.len.max(offset + buf.len() as u64);
        c.writes.push((offset, buf));
        Ok(())
    }

    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.write_at(offset, buf).await
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let c = self.contents();
        let end = c.len.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        if let Some((path, shown)) = &c.below {
            let below_end = end.min(*shown);
            if offset < below_end {
                let bytes = read_full_at(&File::open(path)?, offset, (below_end - offset) as usize)?;
                out[..bytes.len()].copy_from_slice(&bytes);
            }
        }
        for (at, data) in &c.writes {
            let (from, to) = ((*at).max(offset), (at + data.len() as u64).min(end));
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
            }
        }
        Ok(Bytes::from(out))
    }

    async fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        let mut c = self.contents();
        if len < c.len {
            if let Some((_, shown)) = &mut c.below {
                *shown = (*shown).min(len);
            }
            // Bytes past the cut read as zeros if the file grows again.
            c.writes.retain_mut(|(at, data)| {
                if *at >= len {
                    return false;
                }
                data.truncate(data.len().min((len - *at) as usize));
                true
            });
        }
        c.len = len;
        Ok(())
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.contents().len)
    }

    fn write_alignment(&self) -> usize {
        self.contents().alignment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringtail-overlay-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("a.log"), b"0123456789").unwrap();
        fs::write(dir.join("sub/b.log"), b"bbbb").unwrap();
        dir
    }

    #[test]
    fn changes_show_through_the_disk_and_never_reach_the_files() {
        let dir = scratch("changes");
        let disk = OverlayDisk::new();
        block_on(async {
            let a = disk.open_direct(&dir.join("a.log"), OpenMode::Existing).await.unwrap();
            a.set_len(4).await.unwrap();
            a.write_at(6, Bytes::from_static(b"xy")).await.unwrap();
            assert_eq!(&a.read_at(0, 100).await.unwrap()[..], b"0123\0\0xy");
            // A second handle sees the same file.
            let again = disk.open(&dir.join("a.log"), OpenMode::Existing).await.unwrap();
            assert_eq!(again.len().await.unwrap(), 8);

            let new = disk.open(&dir.join("c.tmp"), OpenMode::Create).await.unwrap();
            new.write_at(0, Bytes::from_static(b"new")).await.unwrap();
            disk.rename(&dir.join("c.tmp"), &dir.join("c.log")).await.unwrap();
            disk.remove(&dir.join("sub/b.log")).await.unwrap();
            assert_eq!(disk.list(&dir).await.unwrap(), ["a.log", "c.log"]);
            assert!(disk.list(&dir.join("sub")).await.unwrap().is_empty());
            let c = disk.open(&dir.join("c.log"), OpenMode::Existing).await.unwrap();
            assert_eq!(&c.read_at(0, 10).await.unwrap()[..], b"new");
            assert!(disk.open(&dir.join("c.tmp"), OpenMode::Existing).await.is_err());

            disk.remove_dir_all(&dir.join("sub")).await.unwrap();
            assert!(disk.list_dirs(&dir).await.unwrap().is_empty());
            disk.create_dir_all(&dir.join("fresh/deeper")).await.unwrap();
            assert_eq!(disk.list_dirs(&dir).await.unwrap(), ["fresh"]);
            assert_eq!(disk.changed_files(), [dir.join("a.log"), dir.join("c.log")]);
        });
        // Underneath, nothing moved.
        assert_eq!(fs::read(dir.join("a.log")).unwrap(), b"0123456789");
        assert_eq!(fs::read(dir.join("sub/b.log")).unwrap(), b"bbbb");
        assert!(!dir.join("c.log").exists() && !dir.join("fresh").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_locked_directory_is_refused() {
        let dir = scratch("lock");
        let lock_path = dir.join(".lock");
        fs::write(&lock_path, b"").unwrap();
        let held = File::open(&lock_path).unwrap();
        held.lock().unwrap();
        let disk = OverlayDisk::new();
        let err = block_on(disk.try_lock(&lock_path)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        assert!(block_on(disk.try_lock(&lock_path)).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
