//! Replacing sealed segments by their cleaned copy, atomically across
//! crashes.
//!
//! A group of segments `[b0, b1, ...]` is cleaned into `<b0>.cleaned`
//! (fsynced, and its name too). The commit point is the manifest
//! `<b0>.swap`, written whole
//! (temp file, fsync, rename, directory fsync) and naming every base offset
//! it replaces. Completing a swap:
//! 1. removes the replaced segments' index files and every replaced `.log`
//!    but `<b0>.log`;
//! 2. renames `<b0>.cleaned` over `<b0>.log` (if it is still there);
//! 3. fsyncs the directory, then removes the manifest (and fsyncs again).
//!
//! Each step can be repeated, so recovery completes any manifest it finds
//! before it looks at segments; without a manifest, a `.cleaned` file is
//! an unfinished cleaning and is removed as a stray. So after a crash the
//! directory holds either the old segments or the cleaned one, never both
//! and never neither. The cleaned segment's index files are written after
//! the swap; recovery rebuilds them by a scan if they are missing.

use super::super::segment::{file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::io::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

pub const CLEANED_SUFFIX: &str = ".cleaned";
pub const SWAP_SUFFIX: &str = ".swap";

pub fn cleaned_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(file_name(base, CLEANED_SUFFIX))
}

fn manifest_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(file_name(base, SWAP_SUFFIX))
}

/// Commits the swap of `replaces` (ascending; the first is the cleaned
/// segment's base) by writing its manifest.
pub async fn commit<D: Disk>(disk: &D, dir: &Path, replaces: &[u64]) -> io::Result<()> {
    let base = replaces[0];
    // The cleaned file's name durable first: a manifest that outlived a
    // crash without it would have recovery remove the old segments and
    // find nothing to put in their place.
    disk.sync_dir(dir).await?;
    let text: Vec<String> = replaces.iter().map(u64::to_string).collect();
    let tmp = dir.join(file_name(base, ".swap.tmp"));
    let file = disk.open(&tmp, OpenMode::Create).await?;
    let bytes = Bytes::from(format!("{}\n", text.join(" ")));
    let len = bytes.len() as u64;
    file.write_at(0, bytes).await?;
    file.set_len(len).await?;
    file.sync_data().await?;
    disk.rename(&tmp, &manifest_path(dir, base)).await?;
    disk.sync_dir(dir).await
}

/// Completes the swap its manifest names (see the module comment). Safe to
/// repeat.
pub async fn complete<D: Disk>(disk: &D, dir: &Path, replaces: &[u64]) -> io::Result<()> {
    let base = replaces[0];
    let remove = |path: PathBuf| async move {
        match disk.remove(&path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    };
    for &b in replaces {
        remove(dir.join(file_name(b, INDEX_SUFFIX))).await?;
        remove(dir.join(file_name(b, TIME_INDEX_SUFFIX))).await?;
        if b != base {
            remove(dir.join(file_name(b, LOG_SUFFIX))).await?;
        }
    }
    match disk.rename(&cleaned_path(dir, base), &dir.join(file_name(base, LOG_SUFFIX))).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    disk.sync_dir(dir).await?;
    remove(manifest_path(dir, base)).await?;
    disk.sync_dir(dir).await
}

/// Completes every swap whose manifest is in `dir` (`names` is its
/// listing). Returns the bases of the cleaned segments.
pub async fn complete_all<D: Disk>(disk: &D, dir: &Path, names: &[String]) -> io::Result<Vec<u64>> {
    let mut done = Vec::new();
    for name in names {
        let Some(base) = super::super::segment::parse_file_name(name, SWAP_SUFFIX) else { continue };
        let file = disk.open(&dir.join(name), OpenMode::Existing).await?;
        let len = file.len().await?;
        let text = file.read_at(0, len as usize).await?;
        let replaces = parse_manifest(&text).filter(|r| r.first() == Some(&base));
        let Some(replaces) = replaces else {
            // Written whole before its rename, a manifest cannot be torn;
            // one that does not parse was not written by us.
            let error = format!("unreadable cleaner swap manifest {}", dir.join(name).display());
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        };
        complete(disk, dir, &replaces).await?;
        tracing::info!(dir = %dir.display(), base, replaced = replaces.len(), "completed a cleaner swap left by a crash");
        done.push(base);
    }
    Ok(done)
}

fn parse_manifest(text: &[u8]) -> Option<Vec<u64>> {
    let text = std::str::from_utf8(text).ok()?;
    let bases: Option<Vec<u64>> = text.split_whitespace().map(|w| w.parse().ok()).collect();
    bases.filter(|b| !b.is_empty() && b.windows(2).all(|w| w[0] < w[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::MemDisk;

    #[test]
    fn manifests_parse_strictly() {
        assert_eq!(parse_manifest(b"0 10 20\n"), Some(vec![0, 10, 20]));
        assert_eq!(parse_manifest(b""), None);
        assert_eq!(parse_manifest(b"10 0"), None, "not ascending");
        assert_eq!(parse_manifest(b"0 x"), None);
    }

    /// Completing twice (a crash during the first) ends the same.
    #[test]
    fn completion_is_repeatable() {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
            let disk = MemDisk::new();
            let dir = PathBuf::from("/log");
            disk.create_dir_all(&dir).await.unwrap();
            for (name, body) in [
                ("00000000000000000000.log", "old0"),
                ("00000000000000000000.index", ""),
                ("00000000000000000010.log", "old10"),
                ("00000000000000000010.timeindex", ""),
                ("00000000000000000020.log", "active"),
                ("00000000000000000000.cleaned", "new"),
            ] {
                let f = disk.open(&dir.join(name), OpenMode::Create).await.unwrap();
                f.write_at(0, Bytes::from(body)).await.unwrap();
            }
            commit(&disk, &dir, &[0, 10]).await.unwrap();
            let names = disk.list(&dir).await.unwrap();
            assert_eq!(complete_all(&disk, &dir, &names).await.unwrap(), vec![0]);
            complete(&disk, &dir, &[0, 10]).await.unwrap();
            let names = disk.list(&dir).await.unwrap();
            assert_eq!(names, ["00000000000000000000.log", "00000000000000000020.log"]);
            let f = disk.open(&dir.join("00000000000000000000.log"), OpenMode::Existing).await.unwrap();
            assert_eq!(&f.read_at(0, 10).await.unwrap()[..], b"new");
        });
    }
}
