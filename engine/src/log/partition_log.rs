//! The partition log: an ordered list of segments, appended through one
//! writer at a time with group commit.
//!
//! Concurrency: `state` (a std mutex, never held across an `.await`) holds
//! what readers need; `writer` (an async mutex) is the writer role. Every
//! change to files (append, roll, truncate, retention, flush) is made by the
//! writer-role holder, so readers only ever see whole, written batches.
//! The append path and its group commit are in append.rs; reads, retention
//! and truncation in files of their own, all `impl Log`.
//!
//! Invariants (checked by debug assertions and the model tests):
//! - segments are sorted by base offset and never empty as a list;
//! - `log_start_offset <= log_end_offset` and `flushed_offset <=
//!   log_end_offset`; `flushed_offset` only ever claims what an fsync covered
//!   (it may lie below the start: recovery then re-scans a little more);
//! - offsets within and across segments only increase, with no overlap;
//! - after a failed write or fsync the log is poisoned and takes no writes.

use super::append::PendingAppend;
use super::cache::CacheHandle;
use super::chunk::{self, WriteBuf};
use super::config::{FlushPolicy, LogConfig};
use super::epochs::LeaderEpochs;
use super::error::{AppendError, LogError, Poisoned};
use super::segment::{self, Segment};
use crate::clock::Clock;
use crate::io::{Disk, DiskFile, OpenMode};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub(super) struct LogState<F> {
    pub segments: Vec<Segment<F>>,
    pub log_start_offset: u64,
    /// Everything below this offset is durable: the recovery point.
    pub flushed_offset: u64,
    pub last_flush_ms: i64,
    pub queue: VecDeque<PendingAppend>,
    pub poisoned: Option<Poisoned>,
    pub closed: bool,
}

impl<F: DiskFile> LogState<F> {
    pub fn active(&self) -> &Segment<F> {
        self.segments.last().expect("a log always has a segment")
    }

    /// The active segment's file, which is always open.
    pub fn active_file(&self) -> Arc<F> {
        self.active().file.active_file().expect("the active segment's file is open").clone()
    }

    pub fn active_mut(&mut self) -> &mut Segment<F> {
        self.segments.last_mut().expect("a log always has a segment")
    }

    pub fn log_end_offset(&self) -> u64 {
        self.active().next_offset
    }

    pub fn check_invariants(&self) {
        debug_assert!(!self.segments.is_empty());
        debug_assert!(self.segments.windows(2).all(|w| w[0].next_offset <= w[1].base_offset));
        debug_assert!(self.segments.iter().all(|s| s.base_offset <= s.next_offset));
        debug_assert!(self.log_start_offset <= self.log_end_offset());
        debug_assert!(self.flushed_offset <= self.log_end_offset());
        debug_assert!(self.active().file.active_file().is_some());
        debug_assert!(self.segments.iter().rev().skip(1).all(|s| s.file.active_file().is_none()));
    }
}

pub struct Log<D: Disk> {
    pub(super) disk: Arc<D>,
    pub(super) dir: PathBuf,
    /// Read on every append; changed only by `set_config` (topic config
    /// updates).
    pub(super) config: std::sync::RwLock<LogConfig>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) state: Mutex<LogState<D::File>>,
    pub(super) writer: tokio::sync::Mutex<()>,
    /// The syncer role: one fsync of the active segment at a time.
    pub(super) syncer: tokio::sync::Mutex<()>,
    /// This log's part of the broker's cache of written bytes. Never locked
    /// while `state` is.
    pub(super) cache: CacheHandle,
    /// The memory appends are written from; only the writer-role holder
    /// locks it, never across an `.await`.
    pub(super) write_buf: Mutex<Option<WriteBuf>>,
    /// Where each leader epoch starts (`epochs`); changed only by holders
    /// of the writer role, never locked across an `.await`.
    pub(super) epochs: Mutex<LeaderEpochs>,
    /// The broker's bound on open sealed segment files (`open_files`).
    pub(super) open_files: Arc<super::open_files::OpenFiles>,
    /// The cleaner role (one pass at a time) and the offset below which
    /// the log is clean (`cleaner`).
    pub(super) cleaner: tokio::sync::Mutex<u64>,
    /// The read ahead in flight, if any (`read`): a reader that needs its
    /// bytes waits for them instead of reading them a second time.
    pub(super) reading_ahead: Mutex<Option<super::read::InFlight>>,
}

/// Poisons the log if a writer's future is dropped in the middle of its I/O:
/// the files may then hold bytes the in-memory state does not know about,
/// and only recovery (a reopen) can say what they are.
pub(super) struct PoisonOnDrop<'a, D: Disk> {
    log: &'a Log<D>,
    armed: bool,
}

impl<D: Disk> PoisonOnDrop<'_, D> {
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl<D: Disk> Drop for PoisonOnDrop<'_, D> {
    fn drop(&mut self) {
        if self.armed {
            self.log.poison("a write was cancelled mid-flight");
        }
    }
}

impl<D: Disk> Log<D> {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        *self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a new configuration from the next operation on. Segments
    /// already written keep their layout (index interval, sizes).
    pub fn set_config(&self, config: LogConfig) -> Result<(), String> {
        config.validate()?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    pub(super) fn epochs(&self) -> MutexGuard<'_, LeaderEpochs> {
        self.epochs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn state(&self) -> MutexGuard<'_, LogState<D::File>> {
        // A panic while holding the lock leaves state we cannot trust for
        // writing; readers may continue, writes are refused by poisoning.
        self.state.lock().unwrap_or_else(|e| {
            let mut guard = e.into_inner();
            guard.poisoned.get_or_insert_with(|| Poisoned("a thread panicked while holding the log".into()));
            guard
        })
    }

    /// The write buffer; see the field for who may lock it. A panic while
    /// it was held leaves nothing half-done that a later append relies on:
    /// the next stage either continues a buffer whose filled bytes are
    /// whole, or starts a new one.
    pub(super) fn write_buf(&self) -> MutexGuard<'_, Option<WriteBuf>> {
        self.write_buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offset of the first record still kept.
    pub fn log_start_offset(&self) -> u64 {
        self.state().log_start_offset
    }

    /// Offset the next appended record will get; records below it are readable.
    pub fn log_end_offset(&self) -> u64 {
        self.state().log_end_offset()
    }

    /// Everything below this offset is on stable storage.
    pub fn flushed_offset(&self) -> u64 {
        self.state().flushed_offset
    }

    pub fn poisoned(&self) -> Option<Poisoned> {
        self.state().poisoned.clone()
    }

    /// Number of segments, and their total size in bytes.
    pub fn segment_stats(&self) -> (usize, u64) {
        let st = self.state();
        (st.segments.len(), st.segments.iter().map(|s| s.size_bytes).sum())
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.state().segments.iter().map(|s| s.base_offset).collect()
    }

    /// Arms a guard that poisons the log unless disarmed: wrap every
    /// multi-step change of files with it.
    pub(super) fn poison_guard(&self) -> PoisonOnDrop<'_, D> {
        PoisonOnDrop { log: self, armed: true }
    }

    pub(super) fn poison(&self, why: &str) {
        let mut st = self.state();
        if st.poisoned.is_none() {
            tracing::error!(dir = %self.dir.display(), why, "log poisoned: refusing writes until reopened");
            st.poisoned = Some(Poisoned(why.into()));
        }
    }

    /// Fsyncs the active segment; everything written before the call is then
    /// durable (earlier segments were fsynced when they were sealed).
    pub(super) async fn sync_active(&self, now_ms: i64) -> Result<(), LogError> {
        let (file, end) = {
            let st = self.state();
            (st.active_file(), st.log_end_offset())
        };
        file.sync_data().await?;
        let mut st = self.state();
        // A failed fsync meanwhile dropped dirty pages this one cannot vouch for.
        if let Some(p) = &st.poisoned {
            return Err(LogError::Poisoned(p.clone()));
        }
        st.flushed_offset = st.flushed_offset.max(end);
        st.last_flush_ms = now_ms;
        Ok(())
    }

    /// Seals the active segment (fsynced, indexes written) and starts a new
    /// one at the log end offset. Caller holds the writer role. A no-op on an
    /// empty active segment.
    pub(super) async fn roll_locked(&self) -> Result<(), LogError> {
        let (file, base, offsets, times, next_offset, size_bytes) = {
            let st = self.state();
            if let Some(p) = &st.poisoned {
                return Err(LogError::Poisoned(p.clone()));
            }
            let active = st.active();
            if active.is_empty() {
                return Ok(());
            }
            let (offsets, times) = segment::encode_indexes(active);
            (st.active_file(), active.base_offset, offsets, times, active.next_offset, active.size_bytes)
        };
        // Direct-I/O padding past the last batch goes before the seal.
        file.set_len(size_bytes).await?;
        file.sync_data().await?;
        // A failed fsync meanwhile (a concurrent append's) dropped pages this
        // seal cannot vouch for: no new segment after them.
        if let Some(p) = &self.state().poisoned {
            return Err(LogError::Poisoned(p.clone()));
        }
        segment::write_index_files(self.disk.as_ref(), &self.dir, base, offsets, times).await?;
        let path = Segment::<D::File>::log_path(&self.dir, next_offset);
        let new_file = self.disk.open_direct(&path, OpenMode::Create).await?;
        // A leftover file of that name can only hold bytes nobody committed.
        new_file.set_len(0).await?;
        self.disk.sync_dir(&self.dir).await?;
        let now_ms = self.clock.now_ms();
        let mut st = self.state();
        if let Some(p) = &st.poisoned {
            return Err(LogError::Poisoned(p.clone()));
        }
        st.flushed_offset = st.flushed_offset.max(next_offset);
        st.last_flush_ms = now_ms;
        st.active_mut().file.seal();
        let new = Segment::empty(&self.dir, next_offset, new_file, &self.config(), &self.open_files);
        st.segments.push(new);
        st.check_invariants();
        tracing::debug!(dir = %self.dir.display(), base_offset = next_offset, "rolled segment");
        Ok(())
    }

    /// Starts a new segment now (if the active one holds data).
    pub async fn roll(&self) -> Result<(), LogError> {
        let _writer = self.writer.lock().await;
        self.check_maintainable()?;
        let guard = self.poison_guard();
        let result = self.roll_locked().await;
        guard.disarm();
        self.poison_on_err(result)
    }

    /// Fsyncs everything written so far.
    pub async fn flush(&self) -> Result<(), LogError> {
        let _writer = self.writer.lock().await;
        self.check_maintainable()?;
        let result = self.sync_active(self.clock.now_ms()).await;
        self.poison_on_err(result)
    }

    /// Lets go of the write buffer if nothing was appended since the last
    /// call (see `chunk::release_if_idle`); returns whether it did. The owner
    /// calls it on a timer.
    pub async fn release_idle_write_buf(&self) -> bool {
        let _writer = self.writer.lock().await;
        chunk::release_if_idle(&mut self.write_buf())
    }

    /// Under `flush=interval:MS`, fsyncs if the interval has passed since the
    /// last fsync and there is unsynced data. The owner calls it on a timer.
    pub async fn flush_if_due(&self) -> Result<(), LogError> {
        let FlushPolicy::Interval { ms } = self.config().flush else { return Ok(()) };
        let due = {
            let st = self.state();
            let age = self.clock.now_ms().saturating_sub(st.last_flush_ms);
            st.flushed_offset < st.log_end_offset() && age >= ms as i64
        };
        if due {
            self.flush().await?;
        }
        Ok(())
    }

    /// Syncs, writes the active segment's indexes and refuses further use.
    /// Appends still queued fail with `Closed`.
    pub async fn close(&self) -> Result<(), LogError> {
        let _writer = self.writer.lock().await;
        let queued: Vec<PendingAppend> = {
            let mut st = self.state();
            st.closed = true;
            st.queue.drain(..).collect()
        };
        for p in queued {
            p.fail(AppendError::Closed);
        }
        if let Some(p) = self.poisoned() {
            return Err(LogError::Poisoned(p));
        }
        let result = async {
            let (file, size_bytes) = {
                let st = self.state();
                (st.active_file(), st.active().size_bytes)
            };
            file.set_len(size_bytes).await?;
            self.sync_active(self.clock.now_ms()).await?;
            let (base, offsets, times) = {
                let st = self.state();
                let (o, t) = segment::encode_indexes(st.active());
                (st.active().base_offset, o, t)
            };
            segment::write_index_files(self.disk.as_ref(), &self.dir, base, offsets, times).await?;
            Ok(())
        }
        .await;
        self.poison_on_err(result)
    }

    pub(super) fn check_maintainable(&self) -> Result<(), LogError> {
        let st = self.state();
        match (&st.poisoned, st.closed) {
            (Some(p), _) => Err(LogError::Poisoned(p.clone())),
            (None, true) => Err(LogError::Poisoned(Poisoned("log closed".into()))),
            _ => Ok(()),
        }
    }

    pub(super) fn poison_on_err<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e) = &result {
            if matches!(e, LogError::Io(_)) {
                self.poison(&e.to_string());
            }
        }
        result
    }
}
