//! `SimFile`: one open file of a `SimDisk`, its reads, writes and syncs
//! with the disk's faults and latency.

use super::{eio, SimDisk};
use bytes::Bytes;
use ringtail_engine::io::mem::{MemFile, SECTOR_BYTES};
use ringtail_engine::io::DiskFile;
use std::io;
use std::path::PathBuf;

// The server holds its files behind trait objects that ask for Debug.
impl std::fmt::Debug for SimFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimFile({})", self.path.display())
    }
}

pub struct SimFile {
    pub(super) disk: SimDisk,
    /// The path this file was opened at (for taints and flips).
    pub(super) path: PathBuf,
    pub(super) inner: MemFile,
    /// Whether flips and misdirected writes may hit this file.
    pub(super) media_target: bool,
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
