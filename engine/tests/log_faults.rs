//! Storage faults: a failed fsync or a full disk fails the append, poisons the
//! log (no retry-and-pretend), loses nothing acknowledged, and a reopen
//! (recovery) brings the log back once the fault is gone.

mod common;

use common::{batch, batches, clock, id_of, runtime};
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::{AppendError, LogCache, LogConfig, LogError, LogManager, TopicPartition};
use std::path::PathBuf;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;
const CACHE_BYTES: usize = 1 << 20;

async fn manager(disk: &Arc<MemDisk>) -> LogManager<MemDisk> {
    LogManager::open(disk.clone(), PathBuf::from("/data"), clock(), LogCache::new(CACHE_BYTES), |_| {
        LogConfig::default()
    })
    .await
    .unwrap()
    .0
}

async fn ids(m: &LogManager<MemDisk>, tp: &TopicPartition) -> Vec<u64> {
    let log = m.get(tp).unwrap();
    let r = log.read(log.log_start_offset(), 1 << 20, None).await.unwrap();
    batches(&r.records).iter().map(|(_, b)| id_of(b)).collect()
}

/// After a failed fsync the append fails, the log refuses further writes
/// (reads still work), and a reopen recovers every acknowledged batch.
#[test]
fn failed_fsync_poisons_until_reopened() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let m = manager(&disk).await;
        let tp = TopicPartition::new("t", 0);
        let log = m.get_or_create(&tp, LogConfig::default()).await.unwrap();
        log.append(batch(1, 1, T0, 100), 0).await.unwrap();
        disk.fail_next_syncs(1);
        assert!(matches!(log.append(batch(1, 2, T0, 100), 0).await, Err(AppendError::Io(_))));
        assert!(matches!(log.append(batch(1, 3, T0, 100), 0).await, Err(AppendError::Poisoned(_))));
        assert!(matches!(log.roll().await, Err(LogError::Poisoned(_))));
        assert_eq!(ids(&m, &tp).await[0], 1, "reads of acknowledged data still work");
        let report = m.reopen(&tp).await.unwrap();
        assert_eq!(report.log_end_offset, 1, "the unacknowledged batch is gone: {report}");
        let log = m.get(&tp).unwrap();
        assert_eq!(log.append(batch(1, 4, T0, 100), 0).await.unwrap().base_offset, 1);
        assert_eq!(ids(&m, &tp).await, vec![1, 4]);
    });
}

/// A full disk fails appends with a storage error and corrupts nothing; once
/// space is freed, a reopen lets appends go on from the last good batch.
#[test]
fn full_disk_fails_appends_then_recovers() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let m = manager(&disk).await;
        let tp = TopicPartition::new("t", 0);
        let log = m.get_or_create(&tp, LogConfig::default()).await.unwrap();
        for i in 0..5 {
            log.append(batch(1, i, T0, 100), 0).await.unwrap();
        }
        let used: u64 =
            disk.contents(&PathBuf::from("/data/t-0/00000000000000000000.log")).unwrap().len() as u64;
        disk.set_capacity(Some(used + 400));
        let mut acked = 5;
        let error = loop {
            match log.append(batch(1, 100 + acked, T0, 100), 0).await {
                Ok(_) => acked += 1,
                Err(e) => break e,
            }
        };
        match &error {
            AppendError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::StorageFull),
            other => panic!("expected a storage-full error, got {other}"),
        }
        disk.set_capacity(None);
        m.reopen(&tp).await.unwrap();
        let log = m.get(&tp).unwrap();
        assert_eq!(log.log_end_offset(), acked, "every acknowledged batch is kept");
        log.append(batch(1, 999, T0, 100), 0).await.unwrap();
        let got = ids(&m, &tp).await;
        assert_eq!(got.len() as u64, acked + 1);
        assert_eq!(*got.last().unwrap(), 999);
    });
}

/// A retention pass whose directory fsync fails leaves the segments it did
/// not surely delete in the log, below its start, for the next pass: were
/// they forgotten, their files would outlive later deletions and come back
/// after a crash as a gap at the log start.
#[test]
fn failed_segment_deletion_is_retried_not_forgotten() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let tp = TopicPartition::new("t", 0);
        {
            let m = manager(&disk).await;
            let log = m.get_or_create(&tp, LogConfig::default()).await.unwrap();
            for i in 0..4 {
                log.append(batch(1, i, T0, 100), 0).await.unwrap();
                log.roll().await.unwrap();
            }
            m.checkpoint().await.unwrap();
            disk.fail_next_dir_syncs(1);
            assert!(log.delete_records_before(2).await.is_err(), "the failed fsync is reported");
            assert_eq!(log.log_start_offset(), 2);
            assert_eq!(log.segment_base_offsets(), vec![0, 1, 2, 3, 4], "nothing forgotten");
            let retried = log.apply_retention().await.unwrap();
            assert_eq!(retried.segments_deleted, 2, "the next pass deletes them");
            assert_eq!(log.segment_base_offsets(), vec![2, 3, 4]);
            log.delete_records_before(3).await.unwrap();
            // Crash before any checkpoint records the new log start.
            disk.crash(CrashMode::DropUnsynced);
        }
        let m = manager(&disk).await;
        let log = m.get(&tp).unwrap();
        assert_eq!(log.log_start_offset(), 3);
        assert_eq!(ids(&m, &tp).await, vec![3], "the log starts where its first record is");
    });
}

/// Segments wholly below the checkpointed log start (a retention pass that
/// died half-way) are deleted by recovery rather than served.
#[test]
fn recovery_deletes_segments_below_the_log_start() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let tp = TopicPartition::new("t", 0);
        {
            let m = manager(&disk).await;
            let log = m.get_or_create(&tp, LogConfig::default()).await.unwrap();
            for i in 0..3 {
                log.append(batch(1, i, T0, 100), 0).await.unwrap();
                log.roll().await.unwrap();
            }
            disk.fail_next_dir_syncs(1);
            assert!(m.delete_records_before(&tp, 2).await.is_err());
            // The failed pass removed segment 0 but not 1; the checkpoint
            // written next already says the log starts at 2.
            m.checkpoint().await.unwrap();
            disk.crash(CrashMode::KeepAll);
        }
        let m = manager(&disk).await;
        let log = m.get(&tp).unwrap();
        assert_eq!(log.segment_base_offsets(), vec![2, 3]);
        assert_eq!(ids(&m, &tp).await, vec![2]);
    });
}
