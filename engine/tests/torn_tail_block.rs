//! A power loss while an append rewrites the active segment's last partial
//! block.
//!
//! Segments are written with direct I/O in whole 4 KiB blocks, so an append
//! rewrites the block its bytes begin in, and that block already holds
//! batches that were synced and acknowledged. Under the disk model (each
//! 512-byte sector of a write in flight holds its old or its new contents)
//! that is safe only because the rewrite carries exactly the bytes the
//! synced prefix already holds. These tests crash in the middle of such a
//! rewrite with every per-sector outcome for the tail block, recover, and
//! require every acknowledged batch back intact and only unsynced data cut.
//! They also pin down what happens when a sector is left neither old nor new
//! (garbage), which the engine does not promise to survive: it is detected,
//! never served, and costs at most the acknowledged batches touching the
//! tail block.

mod common;

use bytes::{Bytes, BytesMut};
use common::{batch, batches, clock, id_of, runtime};
use ringtail_engine::io::mem::{CrashMode, PendingSector, SectorFate};
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{FlushPolicy, Log, LogCache, LogConfig, OpenError, RecoveryReport};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;

const T0: i64 = 1_700_000_000_000;
const BLOCK: u64 = 4096;
const SECTOR: u64 = 512;
const SECTORS_PER_BLOCK: u64 = BLOCK / SECTOR;
/// Bytes of `common::batch` beyond its payload.
const BATCH_OVERHEAD: usize = 61;

fn dir() -> PathBuf {
    PathBuf::from("/data/t-0")
}

async fn open(
    disk: &MemDisk,
    config: LogConfig,
    recovery_point: u64,
) -> Result<(Log<MemDisk>, RecoveryReport), OpenError> {
    let cp = LogCheckpoint { recovery_point, log_start_offset: 0 };
    Log::open(Arc::new(disk.clone()), dir(), config, clock(), cp, &LogCache::new(1 << 20)).await
}

/// Every batch from offset 0 on; a read error fails the test.
async fn read_all(log: &Log<MemDisk>) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, None).await.expect("a recovered log reads without error");
        for (h, b) in batches(&r.records) {
            offset = h.next_offset();
            out.push(b);
        }
    }
    out
}

/// One crash point: batches acknowledged one by one (flush=always: each
/// synced before its append returned), then one more append whose rewrite
/// of the tail block is written but not yet synced when the power fails.
#[derive(Clone, Debug)]
struct Case {
    /// Payload sizes of the acknowledged batches, appended one per round.
    acked: Vec<usize>,
    /// Payload sizes of the batches of the append in flight (one round).
    in_flight: Vec<usize>,
}

impl Case {
    fn acked_bytes(&self) -> u64 {
        self.acked.iter().map(|p| (p + BATCH_OVERHEAD) as u64).sum()
    }

    /// Start of the block holding the last acknowledged bytes: the block the
    /// append in flight rewrites.
    fn tail_block(&self) -> u64 {
        self.acked_bytes() / BLOCK * BLOCK
    }
}

/// What the crash left and recovery made of it.
struct Outcome {
    acked: Vec<Bytes>,
    /// Writes in flight at the crash (written, not synced).
    pending_writes: u64,
    /// `Ok` with the recovered log's batches, or why it refused to open.
    recovered: Result<(Vec<Bytes>, RecoveryReport), OpenError>,
}

/// Runs `case` on a fresh disk, crashes with `fate` deciding every sector of
/// every write in flight, and reopens with the recovery point at
/// `recovery_point(acked end offset)`.
fn run_case(
    case: &Case,
    fate: &mut dyn FnMut(PendingSector) -> SectorFate,
    recovery_point: impl FnOnce(u64) -> u64,
) -> Outcome {
    runtime().block_on(async {
        let disk = MemDisk::new();
        // A sync takes a turn of the executor, so the crash can fall between
        // the rewrite and its sync.
        disk.set_sync_yields(1);
        let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
        let (log, _) = open(&disk, config, 0).await.unwrap();
        for (i, payload) in case.acked.iter().enumerate() {
            log.append(batch(1, i as u64, T0, *payload), 0).await.expect("acknowledged");
        }
        let acked = read_all(&log).await;
        let acked_end = log.log_end_offset();
        assert_eq!(acked.iter().map(|b| b.len() as u64).sum::<u64>(), case.acked_bytes());
        assert_ne!(case.acked_bytes() % BLOCK, 0, "the case must leave a partial tail block");

        let mut records = BytesMut::new();
        for (i, payload) in case.in_flight.iter().enumerate() {
            records.extend_from_slice(&batch(1, 1000 + i as u64, T0, *payload));
        }
        let before = disk.stats();
        let mut append = Box::pin(log.append(records.freeze(), 0));
        // Drive the append until its write is issued; stop before its sync.
        let finished = std::future::poll_fn(|cx| match append.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(true),
            Poll::Pending if disk.stats().writes > before.writes => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        })
        .await;
        assert!(!finished, "the append must still wait for its sync");
        let pending_writes = disk.stats().writes - before.writes;
        assert_eq!(disk.stats().syncs, before.syncs, "the crash comes before any sync of the rewrite");
        disk.crash(CrashMode::Sectors(fate));
        drop(append);
        drop(log);

        let recovered = match open(&disk, config, recovery_point(acked_end)).await {
            Ok((log, report)) => Ok((read_all(&log).await, report)),
            Err(e) => Err(e),
        };
        Outcome { acked, pending_writes, recovered }
    })
}

/// splitmix64: fates of the sectors a mask does not cover, from a seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sector fates from `mask`: bit `w * 8 + s` gives sector `s` of the tail
/// block in pending write `w` its new (1) or old (0) contents; sectors
/// elsewhere are drawn from the mask.
fn masked(case: &Case, mask: u64) -> impl FnMut(PendingSector) -> SectorFate {
    let tail = case.tail_block();
    move |s: PendingSector| {
        let bit = if (tail..tail + BLOCK).contains(&s.offset) {
            mask >> (s.write as u64 * SECTORS_PER_BLOCK + (s.offset - tail) / SECTOR) & 1
        } else {
            mix(mask ^ s.offset.rotate_left(17) ^ s.write as u64) & 1
        };
        if bit == 1 {
            SectorFate::New
        } else {
            SectorFate::Old
        }
    }
}

/// Every acknowledged batch came back byte for byte, whatever follows is a
/// prefix of the append in flight, and recovery cut nothing acknowledged.
fn check_no_loss(case: &Case, mask: u64, outcome: &Outcome) {
    let (recovered, report) = match &outcome.recovered {
        Ok(r) => r,
        Err(e) => panic!("{case:?} mask {mask:#x}: recovery refused to open: {e}"),
    };
    assert!(
        recovered.len() >= outcome.acked.len(),
        "{case:?} mask {mask:#x}: {} of {} acknowledged batches recovered",
        recovered.len(),
        outcome.acked.len()
    );
    for (i, (got, want)) in recovered.iter().zip(&outcome.acked).enumerate() {
        assert_eq!(got, want, "{case:?} mask {mask:#x}: acknowledged batch {i} changed");
    }
    let extra = &recovered[outcome.acked.len()..];
    assert!(extra.len() <= case.in_flight.len(), "{case:?} mask {mask:#x}: batches nobody wrote");
    for (i, b) in extra.iter().enumerate() {
        assert_eq!(id_of(b), 1000 + i as u64, "{case:?} mask {mask:#x}: not the batch in flight");
    }
    if let Some(cut) = &report.cut {
        assert!(
            cut.position >= case.acked_bytes(),
            "{case:?} mask {mask:#x}: recovery cut at byte {} below the acknowledged end {}",
            cut.position,
            case.acked_bytes()
        );
    }
}

/// Acknowledged prefixes ending at different places in the tail block (in
/// its first sector, on a sector boundary, mid-block, one byte short of the
/// block end, and after a whole first block), each followed by appends that
/// stay in the block, run into the next, or carry two batches.
fn cases() -> Vec<Case> {
    let prefixes: [&[usize]; 6] = [&[39], &[451], &[200, 439], &[1000, 1000, 739], &[4034], &[3000, 1500]];
    let appends: [&[usize]; 3] = [&[100], &[5000], &[50, 300]];
    let mut out = Vec::new();
    for acked in prefixes {
        for in_flight in appends {
            out.push(Case { acked: acked.to_vec(), in_flight: in_flight.to_vec() });
        }
    }
    out
}

/// The masks to try for `pending` writes in flight: all of them while that
/// is at most 2^12, else 2048 drawn from a fixed seed.
fn masks(pending: u64) -> Vec<u64> {
    let bits = pending * SECTORS_PER_BLOCK;
    if bits <= 12 {
        (0..1u64 << bits).collect()
    } else {
        (0..2048).map(|i| mix(i) & ((1u64 << bits.min(63)) - 1)).collect()
    }
}

/// Every per-sector outcome of a crash during the rewrite of the tail
/// block: nothing acknowledged is lost or changed, recovery cuts only the
/// unsynced append (whole batches of it may survive).
#[test]
fn crash_during_tail_block_rewrite_loses_nothing_acknowledged() {
    let mut tried = 0;
    for case in cases() {
        // One run to learn how many writes are in flight at the crash.
        let probe = run_case(&case, &mut masked(&case, 0), |_| 0);
        for mask in masks(probe.pending_writes) {
            // The recovery point is 0 here: damage to acknowledged bytes
            // would show as a cut, not as a refusal to open.
            let outcome = run_case(&case, &mut masked(&case, mask), |_| 0);
            assert_eq!(outcome.pending_writes, probe.pending_writes, "the crash point is deterministic");
            check_no_loss(&case, mask, &outcome);
            tried += 1;
        }
        // With the recovery point at the acknowledged end, as a checkpoint
        // may have recorded it, recovery must not find damage below it.
        for mask in [0, u64::MAX] {
            check_no_loss(&case, mask, &run_case(&case, &mut masked(&case, mask), |acked_end| acked_end));
        }
    }
    assert!(tried >= 18 * 256, "every case walked its tail block's sector outcomes ({tried})");
}

/// Several appends written and not yet synced (flush on an interval, the
/// acknowledged part synced by an explicit flush), each rewriting the tail
/// block again: every mix of their sectors keeps the synced batches.
#[test]
fn several_unsynced_rewrites_keep_the_synced_prefix() {
    for seed in 0..512u64 {
        runtime().block_on(async {
            let disk = MemDisk::new();
            let config = LogConfig { flush: FlushPolicy::Interval { ms: 1 << 40 }, ..LogConfig::default() };
            let (log, _) = open(&disk, config, 0).await.unwrap();
            let size = |i: u64| 40 + (mix(seed ^ i) % 1500) as usize;
            let synced_count = 1 + mix(seed) % 5;
            for i in 0..synced_count {
                log.append(batch(1, i, T0, size(i)), 0).await.unwrap();
            }
            log.flush().await.unwrap();
            let acked = read_all(&log).await;
            let before = disk.stats().writes;
            for i in 0..1 + mix(!seed) % 4 {
                log.append(batch(1, 1000 + i, T0, size(100 + i)), 0).await.unwrap();
            }
            assert!(disk.stats().writes > before);
            let mut draws = seed;
            let mut fate = |_: PendingSector| {
                draws = mix(draws);
                if draws & 1 == 1 {
                    SectorFate::New
                } else {
                    SectorFate::Old
                }
            };
            disk.crash(CrashMode::Sectors(&mut fate));
            drop(log);
            let (log, report) = open(&disk, config, 0).await.unwrap();
            let recovered = read_all(&log).await;
            assert!(recovered.len() >= acked.len(), "seed {seed}: acknowledged batches lost");
            assert_eq!(&recovered[..acked.len()], &acked[..], "seed {seed}: acknowledged batches changed");
            for (i, b) in recovered[acked.len()..].iter().enumerate() {
                assert_eq!(id_of(b), 1000 + i as u64, "seed {seed}: recovered a batch out of order");
            }
            let synced_bytes: u64 = acked.iter().map(|b| b.len() as u64).sum();
            assert!(
                report.cut.as_ref().is_none_or(|c| c.position >= synced_bytes),
                "seed {seed}: cut below the sync"
            );
        });
    }
}

/// Beyond the model: a sector of the rewritten tail block left as garbage
/// (neither old nor new). The engine does not survive that without loss,
/// but it never serves the damage, loses nothing outside the tail block,
/// and refuses to open rather than cut below a recovery point that covers
/// the damaged batches.
#[test]
fn garbage_in_the_tail_block_is_detected_and_bounded() {
    for case in cases() {
        let tail = case.tail_block();
        for sector in 0..SECTORS_PER_BLOCK {
            let garbage_at = tail + sector * SECTOR;
            let mut fate = |s: PendingSector| {
                if s.offset == garbage_at {
                    SectorFate::Garbage
                } else {
                    SectorFate::New
                }
            };
            let outcome = run_case(&case, &mut fate, |_| 0);
            let (recovered, _) = outcome.recovered.as_ref().expect("recovery point 0: recovery cuts");
            // Batches wholly before the tail block are never touched.
            let mut end = 0u64;
            for (i, want) in outcome.acked.iter().enumerate() {
                end += want.len() as u64;
                if end <= tail {
                    assert_eq!(
                        recovered.get(i),
                        Some(want),
                        "{case:?} sector {sector}: batch {i} outside the tail block"
                    );
                }
            }
            // Whatever was recovered is what was written (reads checked
            // every batch's CRC), in order.
            let kept = recovered.iter().zip(&outcome.acked).take_while(|(g, w)| g == w).count();
            let hits_acked = garbage_at < case.acked_bytes();
            if hits_acked {
                assert!(
                    kept < outcome.acked.len(),
                    "{case:?} sector {sector}: garbage over acknowledged bytes went unnoticed"
                );
                assert_eq!(recovered.len(), kept, "{case:?} sector {sector}: served past damaged bytes");
                let refused = run_case(&case, &mut fate, |acked_end| acked_end);
                assert!(
                    matches!(refused.recovered, Err(OpenError::Corrupt { .. })),
                    "{case:?} sector {sector}: damage below the recovery point must refuse to open"
                );
            } else {
                assert_eq!(
                    kept,
                    outcome.acked.len(),
                    "{case:?} sector {sector}: garbage past the acknowledged end"
                );
            }
        }
    }
}
