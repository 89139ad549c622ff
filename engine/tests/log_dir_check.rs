//! Recovery run on an `OverlayDisk` (what `ringtail check` does) reports
//! exactly what recovery on the real disk then does, and changes nothing
//! underneath; the progress it counts adds up to the directory.

mod common;

use common::{batch, clock, runtime};
use ringtail_engine::io::overlay::OverlayDisk;
use ringtail_engine::io::{Disk, StdDisk};
use ringtail_engine::log::{
    LogCache, LogConfig, LogManager, OpenError, RecoveryProgress, RecoveryReport, TopicPartition,
};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 2000, index_interval_bytes: 200, ..LogConfig::default() }
}

async fn open<D: Disk>(
    disk: D,
    dir: &Path,
    progress: &RecoveryProgress,
) -> Result<(LogManager<D>, Vec<RecoveryReport>), OpenError> {
    LogManager::open_with_progress(
        Arc::new(disk),
        dir.to_path_buf(),
        clock(),
        LogCache::new(1 << 20),
        |_| config(),
        progress,
    )
    .await
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn active_segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

#[test]
fn a_check_reports_what_recovery_then_does_and_writes_nothing() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = tmp.path().join("data");
    runtime().block_on(async {
        let (m, _) = open(StdDisk::new(), &dir, &RecoveryProgress::new()).await.unwrap();
        for (i, topic) in ["clean", "torn"].into_iter().enumerate() {
            let log = m.get_or_create(&TopicPartition::new(topic, 0), config()).await.unwrap();
            for id in 0..12 {
                log.append(batch(2, id + 100 * i as u64, T0, 300), 0).await.unwrap();
            }
        }
        m.close().await.unwrap();
    });
    // A torn tail: half a batch's worth of garbage after the last batch.
    let torn = active_segment(&dir.join("torn-0"));
    let mut bytes = fs::read(&torn).unwrap();
    let valid_len = bytes.len() as u64;
    bytes.extend_from_slice(&[0xab; 150]);
    fs::write(&torn, &bytes).unwrap();
    let before = snapshot(&dir);
    let dir_bytes: u64 = before
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "log"))
        .map(|(_, b)| b.len() as u64)
        .sum();

    let progress = RecoveryProgress::new();
    let checked = runtime().block_on(async {
        let (m, reports) = open(OverlayDisk::new(), &dir, &progress).await.unwrap();
        assert!(m.offline_logs().is_empty());
        reports
    });
    assert_eq!(snapshot(&dir), before, "the check changed files underneath");
    let p = progress.snapshot();
    assert!(p.finished);
    assert_eq!((p.logs_done, p.logs_total), (2, 2));
    assert_eq!((p.bytes_done, p.bytes_total), (dir_bytes, dir_bytes));

    let by_dir = |reports: &[RecoveryReport], name: &str| {
        reports.iter().find(|r| r.dir.ends_with(name)).unwrap().clone()
    };
    assert!(by_dir(&checked, "clean-0").is_clean());
    let would = by_dir(&checked, "torn-0");
    let cut = would.cut.clone().expect("the torn tail is found");
    assert_eq!((cut.position, cut.bytes_cut), (valid_len, 150));
    assert_eq!(would.log_end_offset, 24);

    let repaired =
        runtime().block_on(async { open(StdDisk::new(), &dir, &RecoveryProgress::new()).await.unwrap().1 });
    assert_eq!(by_dir(&repaired, "torn-0"), would, "the check and the repair disagree");
    assert_eq!(by_dir(&repaired, "clean-0"), by_dir(&checked, "clean-0"));
    assert_eq!(fs::metadata(&torn).unwrap().len(), valid_len, "the repair cut the tail");
}

#[test]
fn a_check_is_refused_while_the_directory_is_in_use() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = tmp.path().join("data");
    runtime().block_on(async {
        let (_running, _) = open(StdDisk::new(), &dir, &RecoveryProgress::new()).await.unwrap();
        match open(OverlayDisk::new(), &dir, &RecoveryProgress::new()).await {
            Err(OpenError::Locked(d)) => assert_eq!(d, dir),
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("a check ran on a directory in use"),
        }
    });
}
