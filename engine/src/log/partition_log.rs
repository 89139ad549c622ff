//! The partition log: an ordered list of segments, appended through one
//! writer at a time with group commit.
//!
//! Concurrency: `state` (a std mutex, never held across an `.await`) holds
//! what readers need; `writer` (an async mutex) is the writer role. Every
//! change to files (append, roll, truncate, retention, flush) is made by the
//! writer-role holder, so readers only ever see whole, written batches.
//!
//! Group commit, in two pipelined stages:
//! 1. write: an appender queues its batches, then takes the writer role. If
//!    an earlier holder already wrote its batches, it takes the result.
//!    Otherwise it drains the queue and writes everything queued with one
//!    write, then releases the role.
//! 2. sync (`flush=always`): the appender takes the syncer role. If an fsync
//!    that started after its write already covers it, it is done; otherwise
//!    it fsyncs everything written so far, for itself and all who wait.
//!
//! So while one round is being fsynced, the next round is being written, and
//! every round shares one write and one fsync.
//!
//! Invariants (checked by debug assertions and the model tests):
//! - segments are sorted by base offset and never empty as a list;
//! - `log_start_offset <= log_end_offset` and `flushed_offset <=
//!   log_end_offset`; `flushed_offset` only ever claims what an fsync covered
//!   (it may lie below the start: recovery then re-scans a little more);
//! - offsets within and across segments only increase, with no overlap;
//! - after a failed write or fsync the log is poisoned and takes no writes.

use super::batch::{self, BatchHeader, BatchScanner};
use super::cache::CacheHandle;
use super::chunk::{self, Chunk, WriteBuf};
use super::config::{FlushPolicy, LogConfig};
use super::error::{AppendError, LogError, Poisoned};
use super::index::SegmentIndex;
use super::segment::{self, Segment};
use crate::clock::Clock;
use crate::io::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The most bytes one group-commit round writes; more queued appends wait for
/// the next round, so one round's buffer stays bounded.
pub const ROUND_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: u64,
    pub last_offset: u64,
    /// Largest record timestamp in the appended batches.
    pub max_timestamp: i64,
    pub log_start_offset: u64,
}

/// Record batches that passed `Log::validate`, with their headers. Only
/// `validate` makes one, so `enqueue_validated` can trust it.
pub struct Validated {
    records: Bytes,
    headers: Vec<BatchHeader>,
}

impl Validated {
    pub fn headers(&self) -> &[BatchHeader] {
        &self.headers
    }
}

pub(super) struct PendingAppend {
    pub records: Bytes,
    pub headers: Vec<BatchHeader>,
    pub leader_epoch: i32,
    done: oneshot::Sender<Result<AppendInfo, AppendError>>,
}

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

impl<F> LogState<F> {
    pub fn active(&self) -> &Segment<F> {
        self.segments.last().expect("a log always has a segment")
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

    fn check_writable(st: &LogState<D::File>) -> Result<(), AppendError> {
        if let Some(p) = &st.poisoned {
            return Err(AppendError::Poisoned(p.clone()));
        }
        if st.closed {
            return Err(AppendError::Closed);
        }
        Ok(())
    }

    /// Checks every batch of an append (sizes, CRC-32C, dense offsets)
    /// before it is queued. Callers that need the headers first (idempotent
    /// producers) validate, then `enqueue_validated`: each byte's CRC is
    /// computed once.
    pub fn validate(&self, records: Bytes) -> Result<Validated, AppendError> {
        let headers = self.check_batches(&records)?;
        Ok(Validated { records, headers })
    }

    fn check_batches(&self, records: &Bytes) -> Result<Vec<BatchHeader>, AppendError> {
        let mut headers = Vec::new();
        for item in BatchScanner::new(records) {
            let (_, header) = item.map_err(|(_, e)| AppendError::InvalidBatch(e))?;
            let size = header.size_bytes() as u64;
            if size > self.config().max_message_bytes {
                return Err(AppendError::BatchTooLarge { size, max: self.config().max_message_bytes });
            }
            if header.record_count as i64 != i64::from(header.last_offset_delta) + 1 {
                // Offsets assigned by the leader must be dense: one per record.
                return Err(AppendError::InvalidBatch(batch::BatchError::BadHeader(
                    "record count does not match last offset delta",
                )));
            }
            headers.push(header);
        }
        if headers.is_empty() {
            return Err(AppendError::Empty);
        }
        Ok(headers)
    }

    /// Appends one or more record batches as the leader: assigns their
    /// offsets, stamps `leader_epoch`, and completes once they are written
    /// and, under `flush=always`, fsynced. All batches of one call land in
    /// one segment, contiguously.
    pub async fn append(&self, records: Bytes, leader_epoch: i32) -> Result<AppendInfo, AppendError> {
        self.enqueue(records, leader_epoch)?.wait().await
    }

    /// The first half of `append`, which does no I/O: validates the batches
    /// and queues them. Appends get their offsets in the order they were
    /// queued, so a caller that must order appends (idempotent producers)
    /// queues under its own lock and waits outside it.
    pub fn enqueue(&self, records: Bytes, leader_epoch: i32) -> Result<AppendTicket<'_, D>, AppendError> {
        self.enqueue_validated(self.validate(records)?, leader_epoch)
    }

    /// `enqueue` of batches `validate` has checked.
    pub fn enqueue_validated(
        &self,
        batches: Validated,
        leader_epoch: i32,
    ) -> Result<AppendTicket<'_, D>, AppendError> {
        let Validated { records, headers } = batches;
        let (done, result) = oneshot::channel();
        let mut st = self.state();
        Self::check_writable(&st)?;
        st.queue.push_back(PendingAppend { records, headers, leader_epoch, done });
        Ok(AppendTicket { log: self, result })
    }

    /// Returns once every offset below `end` is durable, fsyncing if no
    /// fsync that covers it has completed yet.
    async fn wait_durable(&self, end: u64) -> Result<(), LogError> {
        let _syncer = self.syncer.lock().await;
        {
            let st = self.state();
            if let Some(p) = &st.poisoned {
                return Err(LogError::Poisoned(p.clone()));
            }
            if st.flushed_offset >= end {
                return Ok(());
            }
        }
        let result = self.sync_active(self.clock.now_ms()).await;
        self.poison_on_err(result)
    }

    /// Takes one round of queued appends, writes them (and fsyncs them if
    /// `flush=interval` is due), and completes each waiter. Caller holds the
    /// writer role.
    async fn commit_round(&self) {
        let mut round = Vec::new();
        {
            let mut st = self.state();
            let mut bytes = 0;
            while let Some(next) = st.queue.front() {
                if !round.is_empty() && bytes + next.records.len() > ROUND_BYTES_MAX {
                    break;
                }
                bytes += next.records.len();
                round.extend(st.queue.pop_front());
            }
            if let Err(e) = Self::check_writable(&st) {
                drop(st);
                for p in round {
                    let _ = p.done.send(Err(e.clone()));
                }
                return;
            }
        }
        let guard = self.poison_guard();
        let outcome = self.write_round(&round).await;
        guard.disarm();
        match outcome {
            Ok(infos) => {
                for (p, info) in round.into_iter().zip(infos) {
                    let _ = p.done.send(Ok(info));
                }
            }
            Err(e) => {
                self.poison(&e.to_string());
                for p in round {
                    let _ = p.done.send(Err(e.clone()));
                }
            }
        }
    }

    /// Does the round need a new segment before `pending` can go in?
    fn should_roll(
        &self,
        active: &Segment<D::File>,
        chunk: &Chunk,
        pending: &PendingAppend,
        now_ms: i64,
    ) -> bool {
        let empty = active.is_empty() && chunk.len == 0;
        if empty {
            return false;
        }
        let size = active.size_bytes + chunk.len as u64 + pending.records.len() as u64;
        let records: u64 = pending.headers.iter().map(|h| h.last_offset_delta as u64 + 1).sum();
        let last_relative = chunk.next_offset + records - active.base_offset;
        size > self.config().segment_bytes
            || active.index.is_full()
            || last_relative > u64::from(u32::MAX)
            || active.first_batch_ms.is_some_and(|t| now_ms.saturating_sub(t) >= self.config().segment_ms)
    }

    async fn write_round(&self, round: &[PendingAppend]) -> Result<Vec<AppendInfo>, AppendError> {
        let now_ms = self.clock.now_ms();
        let mut chunk = {
            let st = self.state();
            Chunk::new(st.active())
        };
        let mut infos = Vec::with_capacity(round.len());
        for pending in round {
            let must_roll = {
                let st = self.state();
                self.should_roll(st.active(), &chunk, pending, now_ms)
            };
            if must_roll {
                self.write_chunk(&mut chunk, now_ms).await?;
                self.roll_locked().await?;
                chunk = Chunk::new(self.state().active());
            }
            infos.push(chunk.push(pending));
        }
        self.write_chunk(&mut chunk, now_ms).await?;
        let due = match self.config().flush {
            FlushPolicy::Interval { ms } => now_ms.saturating_sub(self.state().last_flush_ms) >= ms as i64,
            // `always` syncs in the append's second stage, outside the writer role.
            FlushPolicy::Always | FlushPolicy::Never => false,
        };
        if due {
            self.sync_active(now_ms).await?;
        }
        let log_start_offset = self.state().log_start_offset;
        for info in &mut infos {
            info.log_start_offset = log_start_offset;
        }
        Ok(infos)
    }

    /// Writes the chunk to the active segment and publishes it to readers.
    async fn write_chunk(&self, chunk: &mut Chunk, now_ms: i64) -> Result<(), AppendError> {
        if chunk.parts.is_empty() {
            return Ok(());
        }
        let (file, base, tail) = {
            let st = self.state();
            (st.active().file.clone(), st.active().base_offset, st.active().tail.clone())
        };
        // The guard goes at the end of the statement, before the write awaits.
        let staged = chunk::stage(
            &mut self.write_buf(),
            base,
            &tail,
            file.write_alignment(),
            chunk,
            self.cache.pool(),
        );
        file.write_at(staged.write_position, staged.write).await?;
        chunk.parts.clear();
        chunk.len = 0;
        // Cached before readers can see the new size, so every read of it
        // finds it in the cache (unless evicted by then).
        let (cached_from, cached) = staged.cached;
        let end = cached_from + cached.len() as u64;
        self.cache.insert(base, cached_from, cached, staged.pinned);
        let mut st = self.state();
        let active = st.active_mut();
        active.tail = staged.tail;
        debug_assert_eq!(active.size_bytes, chunk.position);
        for b in chunk.batches.drain(..) {
            active.index.observe(&b.header, b.position);
        }
        active.size_bytes = end;
        active.next_offset = chunk.next_offset;
        active.first_batch_ms.get_or_insert(now_ms);
        chunk.position = active.size_bytes;
        st.check_invariants();
        Ok(())
    }

    /// Fsyncs the active segment; everything written before the call is then
    /// durable (earlier segments were fsynced when they were sealed).
    async fn sync_active(&self, now_ms: i64) -> Result<(), LogError> {
        let (file, end) = {
            let st = self.state();
            (st.active().file.clone(), st.log_end_offset())
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
            (active.file.clone(), active.base_offset, offsets, times, active.next_offset, active.size_bytes)
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
        st.segments.push(Segment {
            base_offset: next_offset,
            file: Arc::new(new_file),
            size_bytes: 0,
            next_offset,
            index: SegmentIndex::new(
                next_offset,
                self.config().index_interval_bytes,
                self.config().segment_index_bytes,
            ),
            first_batch_ms: None,
            tail: Vec::new(),
        });
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
            let _ = p.done.send(Err(AppendError::Closed));
        }
        if let Some(p) = self.poisoned() {
            return Err(LogError::Poisoned(p));
        }
        let result = async {
            let (file, size_bytes) = {
                let st = self.state();
                (st.active().file.clone(), st.active().size_bytes)
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

/// A queued append; `wait` drives it to completion.
pub struct AppendTicket<'a, D: Disk> {
    log: &'a Log<D>,
    result: oneshot::Receiver<Result<AppendInfo, AppendError>>,
}

impl<D: Disk> AppendTicket<'_, D> {
    /// Completes once the batches are written and, under `flush=always`,
    /// durable.
    pub async fn wait(mut self) -> Result<AppendInfo, AppendError> {
        let log = self.log;
        let info = {
            let _writer = log.writer.lock().await;
            loop {
                match self.result.try_recv() {
                    Ok(outcome) => break outcome?,
                    Err(oneshot::error::TryRecvError::Closed) => return Err(AppendError::Closed),
                    Err(oneshot::error::TryRecvError::Empty) => log.commit_round().await,
                }
            }
        };
        // CANARY canary-ack-before-fsync (planted bug, sim/canaries): acknowledge
        // once written, without waiting for the fsync.
        if log.config().flush == FlushPolicy::Always && !cfg!(feature = "canary-ack-before-fsync") {
            log.wait_durable(info.last_offset + 1).await?;
        }
        Ok(info)
    }
}
