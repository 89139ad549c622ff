//! Model test of compaction: random appends of a few keys (values and
//! tombstones), rolls, time passing, cleaning passes, and crashes in the
//! middle of a pass (the disk loses, keeps or tears what was not synced).
//!
//! After every pass and every reopen the log, read from its start, must:
//! - hold only records the model holds, at the offsets it holds them;
//! - hold the latest record of every key, unless that is a tombstone
//!   older than `delete.retention.ms` (which may go);
//! - end where the model ends, every offset in between readable in order;
//! - hold no two records of a key below the last pass's clean offset.
//!
//! Cases: `PROPTEST_CASES` (default 256).

mod common;

use bytes::Bytes;
use common::runtime;
use proptest::prelude::*;
use ringtail_engine::clock::{Clock, ManualClock};
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::cleaner::{CleanerSettings, Unpaced};
use ringtail_engine::log::config::CleanupPolicy;
use ringtail_engine::log::records::{decode_records, decompress, BatchBuilder};
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{FlushPolicy, Log, LogCache, LogConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

const DELETE_RETENTION_MS: i64 = 10_000;

#[derive(Clone, Debug)]
enum Op {
    /// Records of keys `k{key}`, a tombstone where the value is `None`.
    Append(Vec<(u8, Option<u16>)>),
    Roll,
    Tick {
        ms: i64,
    },
    Clean {
        budget: usize,
    },
    /// A pass cut off after `polls` yields, then power lost.
    CleanCrash {
        polls: u32,
        mode: u8,
        seed: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let record = (0u8..6, prop::option::weighted(0.8, any::<u16>()));
    prop_oneof![
        8 => prop::collection::vec(record, 1..4).prop_map(Op::Append),
        2 => Just(Op::Roll),
        2 => (0i64..6_000).prop_map(|ms| Op::Tick { ms }),
        3 => prop_oneof![Just(usize::MAX), 0usize..400].prop_map(|budget| Op::Clean { budget }),
        2 => (0u32..40, 0u8..3, any::<u64>()).prop_map(|(polls, mode, seed)| Op::CleanCrash { polls, mode, seed }),
        1 => Just(Op::Reopen),
    ]
}

fn config() -> LogConfig {
    let mut config = LogConfig {
        segment_bytes: 300,
        flush: FlushPolicy::Always,
        cleanup_policy: CleanupPolicy::Compact,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    config.compaction.min_cleanable_dirty_ratio_ppm = 0;
    config.compaction.delete_retention_ms = DELETE_RETENTION_MS;
    config
}

/// (key, value, append time) of each appended record, by offset.
type Model = BTreeMap<u64, (u8, Option<u16>, i64)>;

struct Harness {
    disk: Arc<MemDisk>,
    clock: Arc<ManualClock>,
    dir: PathBuf,
}

impl Harness {
    fn new(disk: &Arc<MemDisk>) -> Harness {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        Harness { disk: disk.clone(), clock, dir: PathBuf::from("/data/t-0") }
    }

    /// Appends `records` as one batch at leader epoch `epoch`, and to `model`.
    async fn append(&self, log: &Log<MemDisk>, model: &mut Model, records: &[(u8, Option<u16>)], epoch: i32) {
        let now = self.clock.now_ms();
        let info = log.append(batch(records, now), epoch).await.expect("append");
        for (i, (key, value)) in records.iter().enumerate() {
            model.insert(info.base_offset + i as u64, (*key, *value, now));
        }
    }

    async fn open(&self) -> Log<MemDisk> {
        let checkpoint = LogCheckpoint::default();
        let cache = LogCache::new(64 * 1024);
        // Every sealed file is opened when read, so cleaning races the LRU.
        cache.open_files().set_capacity(1);
        let (log, _) =
            Log::open(self.disk.clone(), self.dir.clone(), config(), self.clock.clone(), checkpoint, &cache)
                .await
                .expect("the log opens after any crash");
        log
    }
}

/// An uncompressed batch, or one compressed with the codec the first
/// record's key picks, so that cleaning rewrites compressed batches too.
fn batch(records: &[(u8, Option<u16>)], now: i64) -> Bytes {
    let mut builder = BatchBuilder::new(0, now);
    for (key, value) in records {
        let value = value.map(|v| Bytes::from(v.to_string()));
        builder.push(Some(Bytes::from(format!("k{key}"))), value, now);
    }
    let codec = records[0].0 % 5;
    Bytes::from(ringtail_engine::log::records::compress::compressed(&builder.build(), codec).unwrap())
}

/// Every record the log serves from its start: (offset, key, value).
async fn read_all(log: &Log<MemDisk>) -> Vec<(u64, u8, Option<u16>, i64)> {
    let mut out = Vec::new();
    let mut epoch = i32::MIN;
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20, None).await.expect("every offset below the end reads");
        assert!(!read.records.is_empty(), "read at {offset} below the end {end} is empty");
        let mut at = 0;
        while at < read.records.len() {
            let header = ringtail_engine::log::batch::BatchHeader::parse(&read.records[at..]).unwrap();
            // A follower copying the log refuses an epoch that goes down.
            assert!(header.partition_leader_epoch >= epoch, "epoch goes down at {}", header.base_offset);
            epoch = header.partition_leader_epoch;
            let bytes = &read.records[at..at + header.size_bytes()];
            let plain = if header.compression() == 0 {
                bytes.to_vec()
            } else {
                decompress::uncompressed(bytes).unwrap()
            };
            let (_, records) = decode_records(&plain).expect("batches decode");
            assert!(header.base_offset as u64 >= offset || header.next_offset() > offset);
            for r in records {
                let key: u8 = std::str::from_utf8(&r.key.clone().unwrap()[1..]).unwrap().parse().unwrap();
                let value = r.value.as_ref().map(|v| std::str::from_utf8(v).unwrap().parse().unwrap());
                out.push((r.offset(&header) as u64, key, value, r.timestamp(&header)));
            }
            offset = header.next_offset();
            at += header.size_bytes();
        }
    }
    out.retain(|r| r.0 >= log.log_start_offset());
    out
}

/// The checks listed at the top of the file.
async fn check(log: &Log<MemDisk>, model: &Model, now: i64, clean_below: u64) {
    assert_eq!(log.log_end_offset(), model.keys().next_back().map_or(0, |o| o + 1), "log end");
    let read = read_all(log).await;
    assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    for (offset, key, value, _) in &read {
        let held = model.get(offset).map(|(k, v, _)| (*k, *v));
        assert_eq!(held, Some((*key, *value)), "offset {offset} holds what was appended");
    }
    let mut latest: BTreeMap<u8, u64> = BTreeMap::new();
    for (offset, (key, _, _)) in model {
        latest.insert(*key, *offset);
    }
    for (key, offset) in &latest {
        if read.iter().any(|r| r.0 == *offset) {
            continue;
        }
        let (_, value, appended_ms) = model[offset];
        assert!(value.is_none(), "the latest record of k{key} (offset {offset}) is gone: {read:?}");
        assert!(
            now - appended_ms > DELETE_RETENTION_MS,
            "the tombstone of k{key} (offset {offset}) went {} ms after it was written",
            now - appended_ms
        );
    }
    let mut seen = BTreeMap::new();
    for (offset, key, _, _) in read.iter().filter(|r| r.0 < clean_below) {
        if let Some(earlier) = seen.insert(*key, *offset) {
            panic!("k{key} twice below the clean offset {clean_below}: at {earlier} and {offset}");
        }
    }
}

async fn run(ops: Vec<Op>) {
    let disk = Arc::new(MemDisk::new());
    disk.set_sync_yields(1);
    let h = Harness::new(&disk);
    let mut log = h.open().await;
    let mut model = Model::new();
    let mut clean_below = 0;
    // The leader epoch appends carry: a new one after each roll.
    let mut epoch = 0;
    let settings = |budget| CleanerSettings { dedupe_buffer_bytes: budget, keep_newest_sealed: 0 };
    for op in ops {
        let now = h.clock.now_ms();
        match op {
            Op::Append(records) => h.append(&log, &mut model, &records, epoch).await,
            Op::Roll => {
                log.roll().await.expect("roll");
                epoch += 1;
            }
            Op::Tick { ms } => h.clock.advance_ms(ms),
            Op::Clean { budget } => {
                if let Some(done) = log.clean(u64::MAX, &settings(budget), &Unpaced).await.expect("clean") {
                    if done.clean_below > 0 {
                        clean_below = done.clean_below;
                    }
                }
                check(&log, &model, now, clean_below).await;
            }
            Op::CleanCrash { polls, mode, seed } => {
                let cut = async {
                    for _ in 0..polls {
                        tokio::task::yield_now().await;
                    }
                };
                let unbounded = settings(usize::MAX);
                tokio::select! {
                    biased;
                    _ = log.clean(u64::MAX, &unbounded, &Unpaced) => {}
                    _ = cut => {}
                }
                drop(log);
                let mut rng = seed;
                let mut next = move || {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    rng >> 33
                };
                disk.crash(match mode {
                    0 => CrashMode::DropUnsynced,
                    1 => CrashMode::KeepAll,
                    _ => CrashMode::Random(&mut next),
                });
                log = h.open().await;
                // What was cleaned before the crash is not known here.
                clean_below = 0;
                check(&log, &model, now, clean_below).await;
            }
            Op::Reopen => {
                log.close().await.expect("close");
                drop(log);
                log = h.open().await;
                clean_below = 0;
                check(&log, &model, now, clean_below).await;
            }
        }
    }
    check(&log, &model, h.clock.now_ms(), clean_below).await;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn compaction_keeps_the_latest_record_of_every_key(ops in prop::collection::vec(op(), 1..80)) {
        runtime().block_on(run(ops));
    }
}

/// Counts the bytes the cleaner paces.
#[derive(Default)]
struct Counted(std::sync::atomic::AtomicU64);

impl ringtail_engine::log::cleaner::Pacer for Counted {
    fn pace(&self, bytes: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.0.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        Box::pin(std::future::ready(()))
    }
}

/// A key rewritten over several segments is cleaned down to its latest
/// record, offsets stay, and the cleaned log survives a reopen (its index
/// files were written, or rebuilt).
#[test]
fn a_rewritten_key_cleans_down_to_its_latest_record() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let h = Harness::new(&disk);
        let log = h.open().await;
        let mut model = Model::new();
        for i in 0..40u16 {
            h.append(&log, &mut model, &[(0, Some(i)), (1 + (i % 2) as u8, Some(i))], 0).await;
        }
        let before = log.segment_base_offsets().len();
        assert!(before >= 5, "{before} segments");
        let settings = CleanerSettings { dedupe_buffer_bytes: usize::MAX, keep_newest_sealed: 0 };
        let counted = Counted::default();
        let done = log.clean(u64::MAX, &settings, &counted).await.unwrap().expect("cleaning was due");
        // Every byte read (to map, then to rewrite) and written is paced.
        let paced = counted.0.load(std::sync::atomic::Ordering::Relaxed);
        assert!(paced >= done.bytes_before * 2 + done.bytes_after, "{paced} bytes paced for {done:?}");
        assert!(done.records_removed >= 70, "{done:?}");
        assert!(done.bytes_after * 3 < done.bytes_before, "{done:?}");
        check(&log, &model, h.clock.now_ms(), done.clean_below).await;
        let read = read_all(&log).await;
        let below: Vec<_> = read.iter().filter(|r| r.0 < done.clean_below).collect();
        assert!(below.len() <= 3, "one record per key below the clean offset: {below:?}");
        assert!(log.clean(u64::MAX, &settings, &Unpaced).await.unwrap().is_none(), "nothing dirty is left");
        log.close().await.unwrap();
        drop(log);
        let log = h.open().await;
        check(&log, &model, h.clock.now_ms(), 0).await;
        assert_eq!(read_all(&log).await, read);
    });
}

/// A crash right after a swap's manifest was written: recovery finishes
/// the swap before it looks at the segments (the two old segments go, the
/// cleaned one covering both takes their place), and a cleaned copy
/// without a manifest is dropped.
#[test]
fn recovery_finishes_a_committed_swap() {
    use ringtail_engine::io::{Disk, DiskFile, OpenMode};
    use ringtail_engine::log::cleaner::swap;
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let h = Harness::new(&disk);
        let log = h.open().await;
        let mut model = Model::new();
        for i in 0..18u16 {
            h.append(&log, &mut model, &[(i as u8 % 3, Some(i))], 0).await;
        }
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 4, "{bases:?}");
        log.close().await.unwrap();
        drop(log);
        // A "cleaned" copy of the first two segments that removed nothing:
        // their bytes one after the other.
        let path = |base: u64, suffix: &str| h.dir.join(format!("{base:020}{suffix}"));
        let mut both = disk.contents(&path(bases[0], ".log")).unwrap();
        both.extend(disk.contents(&path(bases[1], ".log")).unwrap());
        let cleaned = disk.open(&swap::cleaned_path(&h.dir, bases[0]), OpenMode::Create).await.unwrap();
        cleaned.write_at(0, Bytes::from(both)).await.unwrap();
        cleaned.sync_data().await.unwrap();
        swap::commit(disk.as_ref(), &h.dir, &bases[..2]).await.unwrap();
        // And an unfinished one of the next segment, with no manifest.
        let unfinished = disk.open(&swap::cleaned_path(&h.dir, bases[2]), OpenMode::Create).await.unwrap();
        unfinished.write_at(0, Bytes::from_static(b"half")).await.unwrap();
        disk.crash(CrashMode::DropUnsynced);
        let log = h.open().await;
        let after = log.segment_base_offsets();
        assert_eq!(after[0], bases[0]);
        assert!(!after.contains(&bases[1]), "{after:?}");
        assert_eq!(after.len(), bases.len() - 1);
        check(&log, &model, h.clock.now_ms(), 0).await;
        assert_eq!(read_all(&log).await.len(), model.len(), "nothing was cleaned away");
        let names = disk.list(&h.dir).await.unwrap();
        assert!(names.iter().all(|n| !n.ends_with(".swap") && !n.ends_with(".cleaned")), "{names:?}");
    });
}
