//! The engine's disk, wrapped to time every fdatasync for the metrics. The
//! engine reaches storage only through the `Disk` trait, so the server can
//! observe fsync latency without the engine knowing about metrics.

use crate::metrics::IoCounter;
use crate::metrics::Metrics;
use bytes::Bytes;
use ringtail_engine::broker::Broker;
use ringtail_engine::io::{AnyDisk, AnyFile, AnyLock, Disk, DiskFile, OpenMode};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The broker as the server runs it.
pub type ServerBroker = Broker<MeteredDisk>;

#[derive(Clone, Debug)]
pub struct MeteredDisk {
    inner: AnyDisk,
    metrics: Arc<Metrics>,
}

impl MeteredDisk {
    pub fn new(inner: AnyDisk, metrics: Arc<Metrics>) -> MeteredDisk {
        MeteredDisk { inner, metrics }
    }

    /// "io_uring" or "std".
    pub fn backend_name(&self) -> &'static str {
        self.inner.name()
    }

    /// The backend's own counters, for the metrics page.
    pub fn io_counters(&self) -> Vec<IoCounter> {
        #[cfg(target_os = "linux")]
        if let Some(stats) = self.inner.uring_stats() {
            return vec![
                (
                    "ringtail_io_uring_sqes_submitted_total",
                    "Operations submitted to io_uring.",
                    stats.sqes_submitted,
                ),
                ("ringtail_io_uring_completions_total", "io_uring completions reaped.", stats.completions),
                (
                    "ringtail_io_uring_submit_calls_total",
                    "io_uring_enter calls that submitted work.",
                    stats.submit_calls,
                ),
                ("ringtail_io_uring_enter_calls_total", "io_uring_enter calls.", stats.enter_calls),
                (
                    "ringtail_io_uring_stray_completions_total",
                    "io_uring completions that answered no operation in flight (ignored; none is expected).",
                    stats.stray_completions,
                ),
            ];
        }
        Vec::new()
    }
}

#[derive(Debug)]
pub struct MeteredFile {
    inner: AnyFile,
    metrics: Arc<Metrics>,
}

impl Disk for MeteredDisk {
    type File = MeteredFile;
    type Lock = AnyLock;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<MeteredFile> {
        let inner = self.inner.open(path, mode).await?;
        Ok(MeteredFile { inner, metrics: self.metrics.clone() })
    }

    async fn open_direct(&self, path: &Path, mode: OpenMode) -> io::Result<MeteredFile> {
        let inner = self.inner.open_direct(path, mode).await?;
        Ok(MeteredFile { inner, metrics: self.metrics.clone() })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to).await
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir).await
    }

    async fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dirs(dir).await
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir).await
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(dir).await
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir).await
    }

    async fn try_lock(&self, path: &Path) -> io::Result<AnyLock> {
        self.inner.try_lock(path).await
    }
}

impl DiskFile for MeteredFile {
    async fn write_at(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        self.inner.write_at(offset, buf).await
    }

    /// Timed as an fsync: the wait that makes the appended bytes durable,
    /// here with their write.
    async fn write_at_durable(&self, offset: u64, buf: Bytes) -> io::Result<()> {
        let started = Instant::now();
        let result = self.inner.write_at_durable(offset, buf).await;
        self.metrics.fsync.observe(started.elapsed());
        result
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.inner.read_at(offset, len).await
    }

    async fn sync_data(&self) -> io::Result<()> {
        let started = Instant::now();
        let result = self.inner.sync_data().await;
        self.metrics.fsync.observe(started.elapsed());
        result
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len).await
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
    use ringtail_engine::io::{open_backend, IoChoice};

    /// The wrapper must not lose what the backend offers: segment files
    /// opened for direct I/O through it keep their alignment (and so their
    /// O_DIRECT writes) wherever the backend's own do.
    #[tokio::test]
    async fn direct_files_stay_direct_through_the_wrapper() {
        let dir = tempfile::tempdir().unwrap();
        for choice in [IoChoice::Std, IoChoice::Auto] {
            let inner = open_backend(choice).unwrap();
            let metered = MeteredDisk::new(inner.clone(), Metrics::new(inner.name()));
            let plain = dir.path().join(format!("{}-plain", inner.name()));
            let direct = dir.path().join(format!("{}-direct", inner.name()));
            let expected = inner.open_direct(&direct, OpenMode::Create).await.unwrap().write_alignment();
            let file = metered.open_direct(&direct, OpenMode::Create).await.unwrap();
            assert_eq!(file.write_alignment(), expected, "{}", inner.name());
            let file = metered.open(&plain, OpenMode::Create).await.unwrap();
            assert_eq!(file.write_alignment(), 1, "{}", inner.name());
        }
    }
}
