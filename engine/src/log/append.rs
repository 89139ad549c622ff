//! The append path of the partition log: validation, the queue, and group
//! commit.
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
//! every round shares one write and one fsync. A small round with nothing
//! queued behind it has nothing to overlap with: it is written and synced in
//! one durable write inside stage 1 (`DURABLE_ROUND_BYTES_MAX`), and stage 2
//! finds it durable.
//!
//! Invariants, beyond the log's own (partition_log.rs):
//! - appends get their offsets in the order they were queued;
//! - a round's waiters are completed only after its write (and, under
//!   `flush=always`, an fsync that started after it, or the write itself
//!   if it was a durable one) finished;
//! - a failed round poisons the log and fails every waiter in it.

use super::batch::{self, BatchHeader, BatchScanner};
use super::chunk::{self, Chunk};
use super::config::FlushPolicy;
use super::error::{AppendError, LogError};
use super::partition_log::{Log, LogState};
use super::segment::Segment;
use crate::io::{Disk, DiskFile};
use bytes::Bytes;
use tokio::sync::oneshot;

/// The most bytes one group-commit round writes; more queued appends wait for
/// the next round, so one round's buffer stays bounded.
pub const ROUND_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Under `flush=always`, a round of at most this many bytes with nothing
/// queued behind it is written and synced in one durable write, inside the
/// writer role: one operation instead of a write and an fsync, each a trip
/// through the I/O backend's threads. Larger rounds, and rounds with appends
/// waiting behind them, keep the two stages, so that their fsync overlaps
/// the next round's write: with ~1 MB rounds, whose write alone takes a
/// millisecond or more, that overlap measured worth more than the saved
/// trip (half-load runs with 960 KiB batches), with 128 KiB rounds less.
pub const DURABLE_ROUND_BYTES_MAX: usize = 256 * 1024;

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
    pub(super) records: Bytes,
    pub(super) headers: Vec<BatchHeader>,
}

impl Validated {
    pub fn headers(&self) -> &[BatchHeader] {
        &self.headers
    }
}

/// A producer's batches that passed `Log::validate_produced`.
pub struct Produced {
    pub batches: Validated,
    /// The time stamped on them under LogAppendTime.
    pub log_append_time: Option<i64>,
}

pub(super) struct PendingAppend {
    pub records: Bytes,
    pub headers: Vec<BatchHeader>,
    pub origin: Origin,
    done: oneshot::Sender<Result<AppendInfo, AppendError>>,
}

/// Who gives an append its offsets and epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// The leader: offsets from the log end, this epoch stamped.
    Leader { epoch: i32 },
    /// A follower copying the leader's batches: offsets and epochs as they
    /// are, and they must continue the log exactly.
    Replica,
}

impl PendingAppend {
    /// Completes the waiter with `error`; nothing of it was written.
    pub(super) fn fail(self, error: AppendError) {
        // A waiter that gave up has nothing left to tell.
        let _ = self.done.send(Err(error));
    }
}

impl<D: Disk> Log<D> {
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

    /// `validate`, then the checks and stamps of a producer's batches
    /// (`validator`): what a leader appends for a client.
    pub fn validate_produced(&self, records: Bytes) -> Result<Produced, AppendError> {
        let rules = super::validator::ProduceRules::new(&self.config(), self.clock.now_ms());
        let batches = super::validator::check_produced(self.validate(records)?, &rules)?;
        Ok(Produced { batches, log_append_time: rules.log_append_time() })
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
        self.enqueue_from(batches, Origin::Leader { epoch: leader_epoch })
    }

    fn enqueue_from(&self, batches: Validated, origin: Origin) -> Result<AppendTicket<'_, D>, AppendError> {
        let Validated { records, headers } = batches;
        let (done, result) = oneshot::channel();
        let mut st = self.state();
        Self::check_writable(&st)?;
        st.queue.push_back(PendingAppend { records, headers, origin, done });
        Ok(AppendTicket { log: self, result })
    }

    /// Appends batches fetched from the leader as a follower: their offsets
    /// and leader epochs stay as the leader gave them, so they must start at
    /// this log's end and follow one another densely, with epochs that never
    /// go below the latest this log holds. A new epoch among them is
    /// assigned (durably) first. Completes as `append` does.
    pub async fn append_replicated(&self, records: Bytes) -> Result<AppendInfo, AppendError> {
        let batches = self.validate(records)?;
        let mut next = batches.headers[0].base_offset;
        let mut epoch = self.epochs().latest().map_or(-1, |(e, _)| e);
        for h in &batches.headers {
            if h.base_offset != next {
                return Err(AppendError::NotContiguous { expected: next, found: h.base_offset });
            }
            next = h.next_offset() as i64;
            if h.partition_leader_epoch < epoch {
                return Err(AppendError::EpochRegression { epoch: h.partition_leader_epoch, latest: epoch });
            }
            if h.partition_leader_epoch > epoch {
                epoch = h.partition_leader_epoch;
                self.assign_epoch(epoch, h.base_offset as u64).await?;
            }
        }
        self.enqueue_from(batches, Origin::Replica)?.wait().await
    }

    /// Returns once every offset below `end` is durable, fsyncing if no
    /// fsync that covers it has completed yet.
    async fn wait_durable(&self, end: u64) -> Result<(), LogError> {
        // A durable round's own write covered it: no need to queue behind
        // an fsync of someone else's.
        if self.durable_to(end)? {
            return Ok(());
        }
        let _syncer = self.syncer.lock().await;
        if self.durable_to(end)? {
            return Ok(());
        }
        let result = self.sync_active(self.clock.now_ms()).await;
        self.poison_on_err(result)
    }

    fn durable_to(&self, end: u64) -> Result<bool, LogError> {
        let st = self.state();
        if let Some(p) = &st.poisoned {
            return Err(LogError::Poisoned(p.clone()));
        }
        Ok(st.flushed_offset >= end)
    }

    /// Takes one round of queued appends, writes them (and fsyncs them if
    /// `flush=interval` is due), and completes each waiter. Caller holds the
    /// writer role.
    async fn commit_round(&self) {
        let mut round = Vec::new();
        let last = {
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
                    p.fail(e.clone());
                }
                return;
            }
            st.queue.is_empty()
        };
        let guard = self.poison_guard();
        let outcome = self.write_round(&round, last).await;
        guard.disarm();
        match outcome {
            Ok(infos) => {
                for (p, info) in round.into_iter().zip(infos) {
                    let _ = p.done.send(info);
                }
            }
            Err(e) => {
                self.poison(&e.to_string());
                for p in round {
                    p.fail(e.clone());
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

    /// `last`: nothing was queued behind the round when it was taken.
    /// Each append's outcome, in order; the round's failure if the write
    /// itself failed.
    async fn write_round(
        &self,
        round: &[PendingAppend],
        last: bool,
    ) -> Result<Vec<Result<AppendInfo, AppendError>>, AppendError> {
        let now_ms = self.clock.now_ms();
        let mut chunk = {
            let st = self.state();
            Chunk::new(st.active())
        };
        let mut infos = Vec::with_capacity(round.len());
        for pending in round {
            if pending.origin == Origin::Replica {
                let found = pending.headers[0].base_offset;
                if u64::try_from(found).ok() != Some(chunk.next_offset) {
                    // Another append got there first (or a stale fetch):
                    // this one fails alone, the log stays as it is.
                    infos.push(Err(AppendError::NotContiguous { expected: chunk.next_offset as i64, found }));
                    continue;
                }
            }
            let must_roll = {
                let st = self.state();
                self.should_roll(st.active(), &chunk, pending, now_ms)
            };
            if must_roll {
                // The roll fsyncs the segment it seals.
                self.write_chunk(&mut chunk, now_ms, false).await?;
                self.roll_locked().await?;
                chunk = Chunk::new(self.state().active());
            }
            infos.push(Ok(chunk.push(pending)));
        }
        // CANARY canary-ack-before-fsync (planted bug, sim/canaries): with the
        // ack not waiting for an fsync (below), no write may be durable either.
        let durable = last
            && self.config().flush == FlushPolicy::Always
            && chunk.len <= DURABLE_ROUND_BYTES_MAX
            && !crate::canary::Canary::AckBeforeFsync.on();
        self.write_chunk(&mut chunk, now_ms, durable).await?;
        let due = match self.config().flush {
            FlushPolicy::Interval { ms } => now_ms.saturating_sub(self.state().last_flush_ms) >= ms as i64,
            // `always` synced in the durable write above, or syncs in the
            // append's second stage, outside the writer role.
            FlushPolicy::Always | FlushPolicy::Never => false,
        };
        if due {
            self.sync_active(now_ms).await?;
        }
        let log_start_offset = self.state().log_start_offset;
        for info in infos.iter_mut().flatten() {
            info.log_start_offset = log_start_offset;
        }
        Ok(infos)
    }

    /// Writes the chunk to the active segment and publishes it to readers.
    /// A `durable` write also makes it durable, and with it the log up to its
    /// end if everything before the chunk already was.
    async fn write_chunk(&self, chunk: &mut Chunk, now_ms: i64, durable: bool) -> Result<(), AppendError> {
        if chunk.parts.is_empty() {
            return Ok(());
        }
        let (file, base, tail) = {
            let st = self.state();
            (st.active_file(), st.active().base_offset, st.active().tail.clone())
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
        if durable {
            file.write_at_durable(staged.write_position, staged.write).await?;
        } else {
            file.write_at(staged.write_position, staged.write).await?;
        }
        chunk.parts.clear();
        chunk.len = 0;
        // Cached before readers can see the new size, so every read of it
        // finds it in the cache (unless evicted by then).
        let (cached_from, cached) = staged.cached;
        let end = cached_from + cached.len() as u64;
        self.cache.insert(base, cached_from, cached, staged.pinned);
        let mut st = self.state();
        // The durable write vouches for its own range only: the log is
        // durable to its end if it was to the chunk's start, and if no failed
        // fsync has poisoned the log meanwhile.
        let durable_from = st.active().next_offset;
        if durable && st.poisoned.is_none() && st.flushed_offset >= durable_from {
            st.flushed_offset = chunk.next_offset;
            st.last_flush_ms = now_ms;
        }
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
        if log.config().flush == FlushPolicy::Always && !crate::canary::Canary::AckBeforeFsync.on() {
            log.wait_durable(info.last_offset + 1).await?;
        }
        Ok(info)
    }
}
