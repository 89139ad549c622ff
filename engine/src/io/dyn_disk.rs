//! Any `Disk` behind trait objects, so that a backend the engine does not
//! know (the simulator's faulty disk) can sit inside [`AnyDisk`] and the
//! server runs on it unchanged, without being generic over its disk.
//!
//! `Disk`'s methods return `impl Future`, which a trait object cannot; this
//! adapter boxes each future. That costs an allocation per operation, which
//! only backends outside the engine pay.
//!
//! [`AnyDisk`]: super::AnyDisk

use super::disk::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;

/// A boxed future of an I/O result.
pub type IoFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A directory lock held for as long as the box lives.
pub type DynLock = Box<dyn Any + Send + Sync>;

/// [`Disk`] as a trait object. Implemented for every `Disk` whose files
/// are `Debug`.
pub trait DynDisk: fmt::Debug + Send + Sync + 'static {
    fn open<'a>(&'a self, path: &'a Path, mode: OpenMode) -> IoFuture<'a, Box<dyn DynFile>>;
    fn open_direct<'a>(&'a self, path: &'a Path, mode: OpenMode) -> IoFuture<'a, Box<dyn DynFile>>;
    fn remove<'a>(&'a self, path: &'a Path) -> IoFuture<'a, ()>;
    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> IoFuture<'a, ()>;
    fn list<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, Vec<String>>;
    fn list_dirs<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, Vec<String>>;
    fn create_dir_all<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, ()>;
    fn remove_dir_all<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, ()>;
    fn sync_dir<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, ()>;
    fn try_lock<'a>(&'a self, path: &'a Path) -> IoFuture<'a, DynLock>;
}

/// [`DiskFile`] as a trait object.
// `len` is the file's size, as in `DiskFile`, which says why no `is_empty`.
#[allow(clippy::len_without_is_empty)]
pub trait DynFile: fmt::Debug + Send + Sync + 'static {
    fn write_at(&self, offset: u64, buf: Bytes) -> IoFuture<'_, ()>;
    fn write_at_durable(&self, offset: u64, buf: Bytes) -> IoFuture<'_, ()>;
    fn read_at(&self, offset: u64, len: usize) -> IoFuture<'_, Bytes>;
    fn sync_data(&self) -> IoFuture<'_, ()>;
    fn set_len(&self, len: u64) -> IoFuture<'_, ()>;
    fn len(&self) -> IoFuture<'_, u64>;
    fn write_alignment(&self) -> usize;
}

fn boxed_file<F: DynFile>(file: F) -> Box<dyn DynFile> {
    Box::new(file)
}

impl<D> DynDisk for D
where
    D: Disk + fmt::Debug,
    D::File: fmt::Debug,
{
    fn open<'a>(&'a self, path: &'a Path, mode: OpenMode) -> IoFuture<'a, Box<dyn DynFile>> {
        Box::pin(async move { Disk::open(self, path, mode).await.map(boxed_file) })
    }

    fn open_direct<'a>(&'a self, path: &'a Path, mode: OpenMode) -> IoFuture<'a, Box<dyn DynFile>> {
        Box::pin(async move { Disk::open_direct(self, path, mode).await.map(boxed_file) })
    }

    fn remove<'a>(&'a self, path: &'a Path) -> IoFuture<'a, ()> {
        Box::pin(Disk::remove(self, path))
    }

    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> IoFuture<'a, ()> {
        Box::pin(Disk::rename(self, from, to))
    }

    fn list<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, Vec<String>> {
        Box::pin(Disk::list(self, dir))
    }

    fn list_dirs<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, Vec<String>> {
        Box::pin(Disk::list_dirs(self, dir))
    }

    fn create_dir_all<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, ()> {
        Box::pin(Disk::create_dir_all(self, dir))
    }

    fn remove_dir_all<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, ()> {
        Box::pin(Disk::remove_dir_all(self, dir))
    }

    fn sync_dir<'a>(&'a self, dir: &'a Path) -> IoFuture<'a, ()> {
        Box::pin(Disk::sync_dir(self, dir))
    }

    fn try_lock<'a>(&'a self, path: &'a Path) -> IoFuture<'a, DynLock> {
        Box::pin(async move { Disk::try_lock(self, path).await.map(|lock| Box::new(lock) as DynLock) })
    }
}

impl<F: DiskFile + fmt::Debug> DynFile for F {
    fn write_at(&self, offset: u64, buf: Bytes) -> IoFuture<'_, ()> {
        Box::pin(DiskFile::write_at(self, offset, buf))
    }

    fn write_at_durable(&self, offset: u64, buf: Bytes) -> IoFuture<'_, ()> {
        Box::pin(DiskFile::write_at_durable(self, offset, buf))
    }

    fn read_at(&self, offset: u64, len: usize) -> IoFuture<'_, Bytes> {
        Box::pin(DiskFile::read_at(self, offset, len))
    }

    fn sync_data(&self) -> IoFuture<'_, ()> {
        Box::pin(DiskFile::sync_data(self))
    }

    fn set_len(&self, len: u64) -> IoFuture<'_, ()> {
        Box::pin(DiskFile::set_len(self, len))
    }

    fn len(&self) -> IoFuture<'_, u64> {
        Box::pin(DiskFile::len(self))
    }

    fn write_alignment(&self) -> usize {
        DiskFile::write_alignment(self)
    }
}
