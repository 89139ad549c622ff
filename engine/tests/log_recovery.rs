//! Recovery: torn and corrupt tails are cut at the last valid batch, and
//! corruption anywhere in a sealed segment is detected, never served.

mod common;

use bytes::Bytes;
use common::{batch, batches, clock, runtime};
use ringtail_engine::io::{Disk, DiskFile, MemDisk, OpenMode, StdDisk, UringDisk};
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{Log, LogCache, LogConfig, ReadError, RecoveryReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

/// A disk to test on, with the directory the log lives in. Each case gets a
/// fresh one; files are damaged through the Disk API so that every backend
/// runs the same tests.
struct Fixture<D: Disk> {
    disk: Arc<D>,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

trait MakeDisk: Disk + Sized {
    fn fixture() -> Fixture<Self>;
}

impl MakeDisk for MemDisk {
    fn fixture() -> Fixture<MemDisk> {
        Fixture { disk: Arc::new(MemDisk::new()), dir: PathBuf::from("/data/t-0"), _tmp: None }
    }
}

fn real<D: Disk>(disk: D) -> Fixture<D> {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    Fixture { disk: Arc::new(disk), dir: tmp.path().join("t-0"), _tmp: Some(tmp) }
}

impl MakeDisk for StdDisk {
    fn fixture() -> Fixture<StdDisk> {
        real(StdDisk::new())
    }
}

impl MakeDisk for UringDisk {
    fn fixture() -> Fixture<UringDisk> {
        real(UringDisk::new().expect("io_uring available"))
    }
}

impl<D: Disk> Fixture<D> {
    fn seg(&self, base: u64, suffix: &str) -> PathBuf {
        self.dir.join(format!("{base:020}.{suffix}"))
    }

    async fn open(&self, config: LogConfig, recovery_point: u64) -> (Log<D>, RecoveryReport) {
        let cp = LogCheckpoint { recovery_point, log_start_offset: 0 };
        Log::open(self.disk.clone(), self.dir.clone(), config, clock(), cp, &LogCache::new(1 << 20))
            .await
            .expect("open")
    }

    async fn write_file(&self, path: &Path, bytes: &[u8]) {
        self.disk.create_dir_all(path.parent().unwrap()).await.unwrap();
        let f = self.disk.open(path, OpenMode::Create).await.unwrap();
        f.set_len(0).await.unwrap();
        f.write_at(0, Bytes::copy_from_slice(bytes)).await.unwrap();
        f.sync_data().await.unwrap();
        self.disk.sync_dir(path.parent().unwrap()).await.unwrap();
    }

    async fn contents(&self, path: &Path) -> Vec<u8> {
        let f = self.disk.open(path, OpenMode::Existing).await.unwrap();
        let len = f.len().await.unwrap();
        f.read_at(0, len as usize).await.unwrap().to_vec()
    }

    /// XORs `mask` into one byte of a file, as a media fault would.
    async fn corrupt(&self, path: &Path, at: u64, mask: u8) {
        let f = self.disk.open(path, OpenMode::Existing).await.unwrap();
        let byte = f.read_at(at, 1).await.unwrap()[0] ^ mask;
        f.write_at(at, Bytes::copy_from_slice(&[byte])).await.unwrap();
        f.sync_data().await.unwrap();
    }
}

/// Every batch of the log, read from offset 0 on, or the first read error.
async fn read_all<D: Disk>(log: &Log<D>) -> (Vec<Bytes>, Option<ReadError>) {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        match log.read(offset, 4096, None).await {
            Ok(r) => {
                for (h, b) in batches(&r.records) {
                    offset = h.next_offset();
                    out.push(b);
                }
            }
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Three one-record batches written and synced; returns the segment bytes
/// and the batch start positions.
async fn three_batches() -> (Vec<u8>, Vec<usize>) {
    let f = MemDisk::fixture();
    let (log, _) = f.open(LogConfig::default(), 0).await;
    for i in 0..3 {
        log.append(batch(1, i, T0, 100), 0).await.unwrap();
    }
    // Closing trims the zero padding of direct-I/O writes past the last batch.
    log.close().await.unwrap();
    let bytes = f.contents(&f.seg(0, "log")).await;
    let starts = batch_starts(&bytes);
    (bytes, starts)
}

/// Positions where each batch of a segment starts.
fn batch_starts(segment: &[u8]) -> Vec<usize> {
    let all = batches(&Bytes::copy_from_slice(segment));
    let mut at = 0;
    all.iter()
        .map(|(h, _)| {
            at += h.size_bytes();
            at - h.size_bytes()
        })
        .collect()
}

/// Cutting the segment at every byte boundary: recovery keeps exactly the
/// batches wholly before the cut, cuts the rest, and a second recovery
/// finds nothing more to do.
async fn torn_tail_at_every_byte_boundary<D: MakeDisk>() {
    let (bytes, starts) = three_batches().await;
    let originals: Vec<Bytes> = batches(&Bytes::from(bytes.clone())).into_iter().map(|(_, b)| b).collect();
    let f = D::fixture();
    for cut in 0..=bytes.len() {
        f.write_file(&f.seg(0, "log"), &bytes[..cut]).await;
        let (log, report) = f.open(LogConfig::default(), 0).await;
        let kept = starts.iter().chain([&bytes.len()]).skip(1).take_while(|end| **end <= cut).count();
        let valid_bytes = if kept == 0 { 0 } else { starts.get(kept).copied().unwrap_or(bytes.len()) };
        assert_eq!(log.log_end_offset(), kept as u64, "cut at {cut}");
        // A torn tail of only zeros reads as direct-I/O padding: trimmed,
        // but not reported as a cut of data.
        assert_eq!(report.bytes_trimmed(), (cut - valid_bytes) as u64);
        assert_eq!(f.contents(&f.seg(0, "log")).await.len(), valid_bytes, "cut at {cut}");
        let (read, error) = read_all(&log).await;
        assert!(error.is_none());
        assert_eq!(read, originals[..kept].to_vec());
        drop(log);
        let (again, report) = f.open(LogConfig::default(), 0).await;
        assert!(report.is_clean(), "second recovery after cut at {cut}: {report}");
        assert_eq!(again.log_end_offset(), kept as u64);
    }
}

/// A flipped bit anywhere in the last batch (outside the leader epoch, which
/// Kafka's format leaves outside the CRC) makes recovery cut that batch.
async fn corrupt_last_batch_is_cut<D: MakeDisk>() {
    let (bytes, starts) = three_batches().await;
    let last = starts[2];
    let f = D::fixture();
    for at in last..bytes.len() {
        if (last + 12..last + 16).contains(&at) {
            continue; // partition leader epoch: not covered by the CRC
        }
        for mask in [0x01u8, 0x80] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            f.write_file(&f.seg(0, "log"), &damaged).await;
            let (log, report) = f.open(LogConfig::default(), 0).await;
            assert_eq!(log.log_end_offset(), 2, "flip {mask:#x} at {at}: {report}");
            assert_eq!(report.cut.unwrap().position, last as u64);
        }
    }
}

fn sealed_config() -> LogConfig {
    LogConfig { segment_bytes: 1000, index_interval_bytes: 300, ..LogConfig::default() }
}

/// A log of several sealed segments, closed cleanly; returns it with the
/// batches it holds and its end offset.
async fn sealed_log<D: MakeDisk>() -> (Fixture<D>, Vec<Bytes>, u64) {
    let f = D::fixture();
    let (log, _) = f.open(sealed_config(), 0).await;
    for i in 0..12 {
        log.append(batch(2, i, T0 + i as i64, 150), 3).await.unwrap();
    }
    log.close().await.unwrap();
    let (all, error) = read_all(&log).await;
    assert!(error.is_none());
    let end = log.log_end_offset();
    (f, all, end)
}

/// Flipping any bit of a sealed segment below the recovery point (outside
/// leader epochs) is detected: a read of the log fails at or before the bad
/// batch, and no batch that differs from what was written is ever returned.
async fn bit_flips_in_sealed_segments_are_never_served<D: MakeDisk>() {
    let (f, originals, end) = sealed_log::<D>().await;
    let path = f.seg(0, "log");
    let segment = f.contents(&path).await;
    let epochs: Vec<usize> = batch_starts(&segment).into_iter().flat_map(|s| s + 12..s + 16).collect();
    for at in (0..segment.len()).filter(|a| !epochs.contains(a)) {
        for mask in [0x01u8, 0x10, 0x80] {
            f.corrupt(&path, at as u64, mask).await;
            let (log, _) = f.open(sealed_config(), end).await;
            let (read, error) = read_all(&log).await;
            assert!(error.is_some(), "flip {mask:#x} at byte {at} went unnoticed");
            assert_eq!(read[..], originals[..read.len()], "flip {mask:#x} at byte {at} was served");
            drop(log);
            f.corrupt(&path, at as u64, mask).await;
        }
    }
}

/// Damaged index files never change what a read returns: they are checked
/// when loaded and reads verify where an entry points.
async fn damaged_indexes_do_not_change_reads<D: MakeDisk>() {
    let (f, originals, end) = sealed_log::<D>().await;
    for suffix in ["index", "timeindex"] {
        let path = f.seg(0, suffix);
        let len = f.contents(&path).await.len();
        assert!(len > 0, "the sealed segment has {suffix} entries");
        for at in 0..len {
            f.corrupt(&path, at as u64, 0x04).await;
            let (log, _) = f.open(sealed_config(), end).await;
            let (read, error) = read_all(&log).await;
            assert!(error.is_none(), "{suffix} byte {at}: {error:?}");
            assert_eq!(read, originals, "{suffix} byte {at}");
            f.corrupt(&path, at as u64, 0x04).await;
        }
    }
}

/// A corrupt batch in the middle of the scanned range cuts the log there and
/// deletes the segments after it; temporary and orphan files are removed.
async fn cut_deletes_later_segments_and_strays<D: MakeDisk>() {
    let (f, originals, _) = sealed_log::<D>().await;
    let bases: Vec<u64> = f.open(sealed_config(), 0).await.0.segment_base_offsets();
    assert!(bases.len() >= 3);
    f.write_file(&f.dir.join("recovery-point.tmp"), b"x").await;
    f.write_file(&f.seg(999, "index"), b"12345678").await;
    // Corrupt the first batch of the second segment.
    f.corrupt(&f.seg(bases[1], "log"), 70, 0x01).await;
    let (log, report) = f.open(sealed_config(), 0).await;
    assert_eq!(log.log_end_offset(), bases[1]);
    assert_eq!(report.cut.as_ref().unwrap().segment_base_offset, bases[1]);
    assert_eq!(report.segments_deleted, bases[2..].to_vec());
    assert_eq!(report.stray_files_removed.len(), 2, "{report}");
    let files = f.disk.list(&f.dir).await.unwrap();
    assert!(
        files.iter().all(|n| !n.ends_with(".tmp") && !n.starts_with("00000000000000000999")),
        "{files:?}"
    );
    let (read, error) = read_all(&log).await;
    assert!(error.is_none());
    assert_eq!(read[..], originals[..read.len()]);
    let next = log.append(batch(1, 77, T0, 100), 3).await.unwrap();
    assert_eq!(next.base_offset, bases[1]);
}

/// A sealed segment whose batches vanished (its file left as zeros, as a
/// write that landed elsewhere leaves it) ends before the next segment
/// starts. Above the recovery point the log is cut there, loudly, and the
/// later segments go. Never is the hole served as if the offsets were not
/// there.
async fn hole_between_segments_is_never_served<D: MakeDisk>() {
    let (f, originals, _) = sealed_log::<D>().await;
    let bases: Vec<u64> = f.open(sealed_config(), 0).await.0.segment_base_offsets();
    assert!(bases.len() >= 3);
    let zeros = vec![0u8; f.contents(&f.seg(bases[1], "log")).await.len()];
    f.write_file(&f.seg(bases[1], "log"), &zeros).await;
    let (log, report) = f.open(sealed_config(), bases[1]).await;
    assert_eq!(log.log_end_offset(), bases[1], "{report}");
    assert!(report.cut.as_ref().is_some_and(|c| c.reason.contains("next segment")), "{report}");
    assert_eq!(report.segments_deleted, bases[2..].to_vec());
    let (read, error) = read_all(&log).await;
    assert!(error.is_none());
    assert_eq!(read[..], originals[..read.len()]);
    drop(log);

    // Below the recovery point a sealed segment is trusted, not scanned:
    // its damage is found by reads, which fail rather than skip it.
    let (f, originals, end) = sealed_log::<D>().await;
    f.write_file(&f.seg(bases[1], "log"), &zeros).await;
    let (log, _) = f.open(sealed_config(), end).await;
    let (read, error) = read_all(&log).await;
    assert!(error.is_some(), "read {} batches and no error", read.len());
    assert_eq!(read[..], originals[..read.len()]);
}

macro_rules! suite {
    ($backend:ident, $disk:ty) => {
        mod $backend {
            use super::*;
            suite!(@tests $disk; torn_tail_at_every_byte_boundary, corrupt_last_batch_is_cut,
                bit_flips_in_sealed_segments_are_never_served, damaged_indexes_do_not_change_reads,
                cut_deletes_later_segments_and_strays, hole_between_segments_is_never_served);
        }
    };
    (@tests $disk:ty; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                runtime().block_on(super::$name::<$disk>());
            }
        )*
    };
}

suite!(mem, MemDisk);
suite!(std_backend, StdDisk);
suite!(uring_backend, UringDisk);
