//! Read-ahead: a read served from the disk names the next chunk, which
//! `Log::read_ahead` brings into the cache; the next read is then a cache
//! hit with the same bytes the disk holds, and nothing read across a
//! truncation is ever served.

mod common;

use common::{batch, batches, clock, id_of, runtime};
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::read::ReadResult;
use ringtail_engine::log::{Log, LogCache, LogConfig, LogManager, TopicPartition};
use std::path::PathBuf;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

async fn manager(disk: &Arc<MemDisk>) -> LogManager<MemDisk> {
    LogManager::open(disk.clone(), PathBuf::from("/data"), clock(), LogCache::new(8 << 20), |_| {
        LogConfig::default()
    })
    .await
    .unwrap()
    .0
}

fn ids(records: &bytes::Bytes) -> Vec<u64> {
    batches(records).iter().map(|(_, b)| id_of(b)).collect()
}

/// A log of `n` one-record batches of 4 KiB (ids `0..n`) with nothing of
/// it cached, and a first read of it (from offset 0, `max_bytes`), from
/// the disk.
async fn first_read(
    disk: &Arc<MemDisk>,
    n: u64,
    max_bytes: usize,
) -> (LogManager<MemDisk>, Arc<Log<MemDisk>>, ReadResult) {
    let m = manager(disk).await;
    let tp = TopicPartition::new("t", 0);
    let log = m.get_or_create(&tp, LogConfig::default()).await.unwrap();
    for id in 0..n {
        log.append(batch(1, id, T0, 4096), 0).await.unwrap();
    }
    m.reopen(&tp).await.unwrap();
    let log = m.get(&tp).unwrap();
    let first = log.read(0, max_bytes, None).await.unwrap();
    (m, log, first)
}

#[test]
fn the_next_read_of_a_reader_on_the_disk_comes_from_the_cache() {
    runtime().block_on(async {
        let (m, log, first) = first_read(&Arc::new(MemDisk::new()), 200, 64 * 1024).await;
        let got = ids(&first.records);
        assert!(!got.is_empty() && got.len() < 200, "one chunk: {} batches", got.len());
        let ahead = first.read_ahead.expect("a read from the disk with more behind it names the next");
        assert!(log.read_ahead(ahead).await, "the next chunk is cached");

        let misses = m.cache().stats().misses;
        let next = log.read(got.len() as u64, 64 * 1024, None).await.unwrap();
        assert_eq!(m.cache().stats().misses, misses, "served from the cache");
        let want: Vec<u64> = (got.len() as u64..).take(ids(&next.records).len()).collect();
        assert!(!want.is_empty());
        assert_eq!(ids(&next.records), want);

        // A reader that runs the read-aheads it is named never waits on the
        // disk again: each read near the end of what is cached names the
        // chunk after it.
        let mut offset = got.len() as u64;
        let mut ahead = next.read_ahead;
        while offset < 200 {
            if let Some(ahead) = ahead.take() {
                log.read_ahead(ahead).await;
            }
            let read = log.read(offset, 64 * 1024, None).await.unwrap();
            let n = ids(&read.records);
            assert_eq!(n, (offset..offset + n.len() as u64).collect::<Vec<_>>());
            offset += n.len() as u64;
            ahead = read.read_ahead;
        }
        assert_eq!(m.cache().stats().misses, misses, "every read after the first was a cache hit");
    });
}

/// A reader whose whole segment is cached (a consumer near the log end)
/// is named nothing to read ahead.
#[test]
fn a_reader_in_cached_data_reads_nothing_ahead() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let m = manager(&disk).await;
        let tp = TopicPartition::new("t", 0);
        let log = m.get_or_create(&tp, LogConfig::default()).await.unwrap();
        for id in 0..50 {
            log.append(batch(1, id, T0, 4096), 0).await.unwrap();
        }
        let mut offset = 0;
        while offset < 50 {
            let read = log.read(offset, 16 * 1024, None).await.unwrap();
            assert_eq!(read.read_ahead, None, "at offset {offset}");
            offset += ids(&read.records).len() as u64;
        }
    });
}

/// A read ahead taken before a truncation, run after the log was cut and
/// written anew, caches the new bytes or nothing: readers see the log as it
/// is now.
#[test]
fn a_read_ahead_across_a_truncation_serves_only_the_new_log() {
    runtime().block_on(async {
        let (_m, log, first) = first_read(&Arc::new(MemDisk::new()), 100, 16 * 1024).await;
        let ahead = first.read_ahead.expect("more behind it");
        let next = ids(&first.records).len() as u64;

        log.truncate_to(next).await.unwrap();
        for id in 1000..1050 {
            log.append(batch(1, id, T0, 4096), 0).await.unwrap();
        }
        log.read_ahead(ahead).await;
        let read = log.read(next, 16 * 1024, None).await.unwrap();
        let got = ids(&read.records);
        assert!(!got.is_empty());
        assert_eq!(got, (1000..).take(got.len()).collect::<Vec<_>>(), "the new batches, never the cut ones");
    });
}

/// The bytes a read ahead caches are checked as a disk read's are: a
/// damaged batch is not cached, and the reader's own read reports it.
#[test]
fn a_damaged_batch_is_not_cached_by_a_read_ahead() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let (_m, log, first) = first_read(&disk, 100, 16 * 1024).await;
        let ahead = first.read_ahead.expect("more behind it");
        let next = ids(&first.records).len() as u64;
        let position = first.records.len() as u64;
        let segment = PathBuf::from("/data/t-0/00000000000000000000.log");
        disk.corrupt(&segment, position + 100, 0xff).unwrap();
        assert!(!log.read_ahead(ahead).await, "nothing cached");
        assert!(log.read(next, 16 * 1024, None).await.is_err(), "the reader's own read finds the damage");
    });
}
