//! A data directory: its lock, its checkpoint files, one log per partition
//! replica in `<topic>-<partition>/`.

use super::cache::LogCache;
use super::checkpoint::{self, Offsets, LOG_START_FILE, RECOVERY_POINT_FILE};
use super::config::LogConfig;
use super::error::{LogError, OpenError};
use super::partition_log::Log;
use super::progress::RecoveryProgress;
use super::recovery::{LogCheckpoint, RecoveryReport};
use super::retention::RetentionOutcome;
use super::segment::{parse_file_name, LOG_SUFFIX};
use crate::clock::Clock;
use crate::io::{Disk, DiskFile, OpenMode};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub const LOCK_FILE: &str = ".lock";
/// Kafka's limit on topic name length.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.to_string(), partition }
    }

    /// `<topic>-<partition>`, the replica's directory name.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name; topics may contain '-', partitions cannot.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        let partition: i32 = partition.parse().ok().filter(|p| *p >= 0)?;
        validate_topic_name(topic).ok()?;
        Some(TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Kafka's rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
/// The metadata quorum's log lives in `<data dir>/__cluster_metadata-0/`
/// (controller::store), beside the partitions' logs: no topic may take the
/// name, and the log manager leaves that directory alone.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name == METADATA_TOPIC {
        return Err(format!("topic name {name} is reserved for the metadata quorum's log"));
    }
    if name.is_empty() || name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!("topic name must be 1 to {TOPIC_NAME_BYTES_MAX} characters"));
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be '.' or '..'".into());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(format!("topic name {name:?} may only contain ASCII letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// A log left closed because opening it found damaged acknowledged data
/// (`OpenError::Corrupt`).
#[derive(Clone, Debug)]
pub struct OfflineLog {
    /// Why it is offline, for the logs, `topic describe` and the client's
    /// error message.
    pub reason: String,
    /// What the checkpoint files said when it was found damaged, written
    /// back unchanged by every checkpoint: dropping the recovery point would
    /// let the next open take the damage for a torn tail and cut it.
    checkpoint: LogCheckpoint,
}

pub struct LogManager<D: Disk> {
    disk: Arc<D>,
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    /// Shared by every log here: one memory budget for the directory.
    cache: Arc<LogCache>,
    logs: Mutex<BTreeMap<TopicPartition, Arc<Log<D>>>>,
    /// Logs found damaged where recovery must not cut (acknowledged data):
    /// kept closed, with their checkpoints, so that one bad log does not
    /// keep the rest of the directory from being served.
    offline: Mutex<BTreeMap<TopicPartition, OfflineLog>>,
    /// One new log opened at a time. Two opens of the same directory at
    /// once (a topic's creation and the maintenance tick's sync with the
    /// metadata, on two threads) break each other: the second takes the
    /// first's temporary files (its leader-epoch checkpoint being written)
    /// for strays and removes them, and the first's rename fails (ENOENT).
    creating: tokio::sync::Mutex<()>,
    /// One checkpoint write at a time, so files are never interleaved.
    checkpointing: tokio::sync::Mutex<()>,
    _lock: D::Lock,
}

impl<D: Disk> LogManager<D> {
    /// Locks `dir` and opens every partition log in it, recovering each.
    /// `config_for` gives the config of a topic's logs.
    pub async fn open(
        disk: Arc<D>,
        dir: PathBuf,
        clock: Arc<dyn Clock>,
        cache: Arc<LogCache>,
        config_for: impl Fn(&str) -> LogConfig,
    ) -> Result<(LogManager<D>, Vec<RecoveryReport>), OpenError> {
        Self::open_with_progress(disk, dir, clock, cache, config_for, &RecoveryProgress::new()).await
    }

    /// `open`, counting the logs and bytes recovered into `progress` as it
    /// goes, for whoever reports on a long start.
    pub async fn open_with_progress(
        disk: Arc<D>,
        dir: PathBuf,
        clock: Arc<dyn Clock>,
        cache: Arc<LogCache>,
        config_for: impl Fn(&str) -> LogConfig,
        progress: &RecoveryProgress,
    ) -> Result<(LogManager<D>, Vec<RecoveryReport>), OpenError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        disk.create_dir_all(&dir).await.map_err(io_err(&dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            disk.sync_dir(parent).await.map_err(io_err(parent))?;
        }
        let lock = match disk.try_lock(&dir.join(LOCK_FILE)).await {
            Ok(lock) => lock,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(OpenError::Locked(dir)),
            Err(e) => return Err(io_err(&dir.join(LOCK_FILE))(e)),
        };
        let recovery_points = read_checkpoint(disk.as_ref(), &dir, RECOVERY_POINT_FILE).await?;
        let log_starts = read_checkpoint(disk.as_ref(), &dir, LOG_START_FILE).await?;
        let mut logs = BTreeMap::new();
        let mut offline = BTreeMap::new();
        let mut reports = Vec::new();
        let mut partitions = Vec::new();
        for name in disk.list_dirs(&dir).await.map_err(io_err(&dir))? {
            if name.strip_suffix("-0") == Some(METADATA_TOPIC) {
                continue;
            }
            let Some(tp) = TopicPartition::from_dir_name(&name) else {
                tracing::warn!(dir = %dir.display(), name, "ignoring directory that is not a partition");
                continue;
            };
            let bytes = segment_bytes(disk.as_ref(), &dir.join(&name)).await?;
            partitions.push((name, tp, bytes));
        }
        progress.planned(partitions.len() as u64, partitions.iter().map(|(_, _, bytes)| bytes).sum());
        for (name, tp, bytes) in partitions {
            let checkpoint = LogCheckpoint {
                recovery_point: recovery_points.get(&tp).copied().unwrap_or(0),
                log_start_offset: log_starts.get(&tp).copied().unwrap_or(0),
            };
            let config = config_for(&tp.topic);
            match Log::open(disk.clone(), dir.join(&name), config, clock.clone(), checkpoint, &cache).await {
                Ok((log, report)) => {
                    logs.insert(tp, Arc::new(log));
                    reports.push(report);
                }
                Err(OpenError::Corrupt { path, reason }) => {
                    tracing::error!(partition = %tp, path = %path.display(), %reason, "log damaged below its recovery point: partition offline");
                    offline.insert(tp, OfflineLog { reason, checkpoint });
                }
                Err(e) => return Err(e),
            }
            progress.log_done(bytes);
        }
        let manager = LogManager {
            disk,
            dir,
            clock,
            cache,
            logs: Mutex::new(logs),
            offline: Mutex::new(offline),
            creating: tokio::sync::Mutex::new(()),
            checkpointing: tokio::sync::Mutex::new(()),
            _lock: lock,
        };
        // Recovery may have moved log starts below what the files say (a log
        // that lost its unsynced tail): record what is true now.
        manager.checkpoint().await.map_err(io_err(&manager.dir))?;
        progress.finish();
        Ok((manager, reports))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cache(&self) -> &LogCache {
        &self.cache
    }

    fn logs(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, Arc<Log<D>>>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log<D>>> {
        self.logs().get(tp).cloned()
    }

    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.logs().keys().cloned().collect()
    }

    fn offline(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, OfflineLog>> {
        self.offline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why `tp`'s log is offline, if it is.
    pub fn offline_reason(&self, tp: &TopicPartition) -> Option<String> {
        self.offline().get(tp).map(|o| o.reason.clone())
    }

    /// Every offline log here, with why.
    pub fn offline_logs(&self) -> BTreeMap<TopicPartition, String> {
        self.offline().iter().map(|(tp, o)| (tp.clone(), o.reason.clone())).collect()
    }

    /// Opens the log of `tp`, creating it empty if it does not exist.
    pub async fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<Log<D>>, OpenError> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let _one = self.creating.lock().await;
        if let Some(log) = self.get(tp) {
            return Ok(log); // opened while this one waited
        }
        if let Some(reason) = self.offline_reason(tp) {
            // Opening it again would find the same damage (after a full
            // rescan); it stays offline until an operator acts and restarts.
            return Err(OpenError::Corrupt { path: self.dir.join(tp.dir_name()), reason });
        }
        validate_topic_name(&tp.topic).map_err(OpenError::Config)?;
        let (log, _) = Log::open(
            self.disk.clone(),
            self.dir.join(tp.dir_name()),
            config,
            self.clock.clone(),
            LogCheckpoint::default(),
            &self.cache,
        )
        .await?;
        Ok(self.logs().entry(tp.clone()).or_insert_with(|| Arc::new(log)).clone())
    }

    /// Reopens a log (after it was poisoned, say), running recovery again.
    /// If recovery fails (the disk is still full, say), the old log stays in
    /// place, still refusing writes, so that a later attempt can succeed.
    pub async fn reopen(&self, tp: &TopicPartition) -> Result<RecoveryReport, OpenError> {
        let Some(old) = self.get(tp) else {
            return Err(OpenError::Io {
                path: self.dir.join(tp.dir_name()),
                source: io::Error::new(io::ErrorKind::NotFound, "no such partition"),
            });
        };
        let _ = old.close().await;
        let checkpoint =
            LogCheckpoint { recovery_point: old.flushed_offset(), log_start_offset: old.log_start_offset() };
        let (log, report) = Log::open(
            self.disk.clone(),
            old.dir().to_path_buf(),
            old.config(),
            self.clock.clone(),
            checkpoint,
            &self.cache,
        )
        .await?;
        self.logs().insert(tp.clone(), Arc::new(log));
        Ok(report)
    }

    /// Deletes a partition's log and its directory (an offline one too).
    pub async fn delete(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let removed = self.logs().remove(tp);
        let dir = match removed {
            Some(log) => {
                let _ = log.close().await;
                log.dir().to_path_buf()
            }
            None if self.offline().contains_key(tp) => self.dir.join(tp.dir_name()),
            None => return Ok(()),
        };
        self.disk.remove_dir_all(&dir).await?;
        // Forgotten only once its files are gone: until then its checkpoint
        // entry keeps the damage from passing for a torn tail.
        self.offline().remove(tp);
        self.disk.sync_dir(&self.dir).await?;
        self.checkpoint().await?;
        Ok(())
    }

    /// Moves a log's start offset and persists it before returning.
    pub async fn delete_records_before(
        &self,
        tp: &TopicPartition,
        offset: u64,
    ) -> Result<RetentionOutcome, LogError> {
        let Some(log) = self.get(tp) else {
            return Err(LogError::Io(Arc::new(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no partition {tp}"),
            ))));
        };
        let outcome = log.delete_records_before(offset).await?;
        self.checkpoint().await?;
        Ok(outcome)
    }

    /// Truncates a log (see `Log::truncate_to`) and persists its lowered
    /// recovery point (and log start) before returning. Until then the
    /// checkpoint would claim the offsets past the cut are durable, and the
    /// records appended there next are not: recovery would take them for
    /// damaged acknowledged data. Callers append nothing to the log while
    /// this runs (a follower truncates before it fetches again).
    pub async fn truncate_to(&self, tp: &TopicPartition, offset: u64) -> Result<(), LogError> {
        let log = self.get(tp).ok_or_else(|| no_partition(tp))?;
        log.truncate_to(offset).await?;
        self.checkpoint().await?;
        Ok(())
    }

    /// Starts a log over, empty, at `offset` (see `Log::restart_at`), and
    /// persists its new log start and recovery point before returning.
    pub async fn restart_at(&self, tp: &TopicPartition, offset: u64) -> Result<(), LogError> {
        let log = self.get(tp).ok_or_else(|| no_partition(tp))?;
        log.restart_at(offset).await?;
        self.checkpoint().await?;
        Ok(())
    }

    /// Writes the recovery-point and log-start checkpoints of every log.
    pub async fn checkpoint(&self) -> io::Result<()> {
        let _one = self.checkpointing.lock().await;
        let (mut recovery, mut start) = (Offsets::new(), Offsets::new());
        for (tp, log) in self.logs().iter() {
            recovery.insert(tp.clone(), log.flushed_offset());
            start.insert(tp.clone(), log.log_start_offset());
        }
        for (tp, o) in self.offline().iter() {
            recovery.insert(tp.clone(), o.checkpoint.recovery_point);
            start.insert(tp.clone(), o.checkpoint.log_start_offset);
        }
        checkpoint::write(self.disk.as_ref(), &self.dir, RECOVERY_POINT_FILE, &recovery).await?;
        checkpoint::write(self.disk.as_ref(), &self.dir, LOG_START_FILE, &start).await
    }

    /// Closes every log (syncing it) and writes the checkpoints.
    pub async fn close(&self) -> Result<(), LogError> {
        let logs: Vec<_> = self.logs().values().cloned().collect();
        let mut first_error = None;
        for log in logs {
            if let Err(e) = log.close().await {
                tracing::error!(dir = %log.dir().display(), error = %e, "closing log failed");
                first_error.get_or_insert(e);
            }
        }
        self.checkpoint().await?;
        first_error.map_or(Ok(()), Err)
    }
}

fn no_partition(tp: &TopicPartition) -> LogError {
    LogError::Io(Arc::new(io::Error::new(io::ErrorKind::NotFound, format!("no partition {tp}"))))
}

/// The bytes of the segment files in a log's directory.
async fn segment_bytes<D: Disk>(disk: &D, dir: &Path) -> Result<u64, OpenError> {
    let io_err = |path: PathBuf| move |source| OpenError::Io { path, source };
    let mut bytes = 0;
    for name in disk.list(dir).await.map_err(io_err(dir.to_path_buf()))? {
        if parse_file_name(&name, LOG_SUFFIX).is_some() {
            let path = dir.join(&name);
            let file = disk.open(&path, OpenMode::Existing).await.map_err(io_err(path.clone()))?;
            bytes += file.len().await.map_err(io_err(path))?;
        }
    }
    Ok(bytes)
}

/// A damaged checkpoint costs only a longer recovery (recovery point) or
/// forgotten deletions (log start): warn and go on without it.
async fn read_checkpoint<D: Disk>(disk: &D, dir: &Path, name: &str) -> Result<Offsets, OpenError> {
    let path = dir.join(name);
    match checkpoint::read(disk, &path).await {
        Ok(Ok(offsets)) => Ok(offsets),
        Ok(Err(why)) => {
            tracing::warn!(path = %path.display(), why, "ignoring unreadable checkpoint");
            Ok(Offsets::new())
        }
        Err(source) => Err(OpenError::Io { path, source }),
    }
}
