//! A partition replica hosted by this broker: its log, its high watermark,
//! and its producers' sequence state; produce, fetch and list-offsets. Its
//! role in replication (leader or follower) is in `replication`.

use super::producers::{ProducerStates, SequenceCheck};
use super::replication::Role;
use crate::error::{BrokerError, ErrorCode};
use crate::io::Disk;
use crate::log::batch::BatchScanner;
use crate::log::read::{ReadAhead, ReadResult};
use crate::log::{FlushPolicy, Log, TopicPartition};
use crate::watch;
use bytes::Bytes;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many segments from the end are scanned to rebuild producer state at
/// open. Producers idle for longer than that restart their sequences.
/// The cleaner leaves these segments alone (`Broker::clean_logs`).
pub(super) const PRODUCER_STATE_SEGMENTS: usize = 2;

/// Kafka's `acks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// 0: the producer wants no answer.
    None,
    /// 1: the leader has it.
    Leader,
    /// -1: every in-sync replica has it (and, under flush=always, fsynced).
    All,
}

impl Acks {
    pub fn from_kafka(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub base_offset: u64,
    /// For acks=all: `wait_replicated` waits until this is replicated.
    pub last_offset: u64,
    pub log_start_offset: u64,
    /// The time the leader stamped under LogAppendTime (-1 otherwise, and
    /// for a retry answered from the producer state, as Kafka).
    pub log_append_time: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOutcome {
    pub records: Bytes,
    pub high_watermark: u64,
    pub last_stable_offset: u64,
    pub log_start_offset: u64,
    /// What to read ahead while these records are sent (`Log::read_ahead`).
    pub read_ahead: Option<ReadAhead>,
}

impl FetchOutcome {
    /// The answer carrying `read` (`None`: nothing read, no records).
    pub(super) fn new(read: Option<ReadResult>, high_watermark: u64, log_start_offset: u64) -> Self {
        let (records, read_ahead) = read.map_or((Bytes::new(), None), |r| (r.records, r.read_ahead));
        FetchOutcome {
            records,
            high_watermark,
            last_stable_offset: high_watermark,
            log_start_offset,
            read_ahead,
        }
    }
}

pub struct Partition<D: Disk> {
    pub tp: TopicPartition,
    pub log: Arc<Log<D>>,
    pub(super) leader_epoch: AtomicI32,
    /// Consumers read below it; it never goes backwards. Also sent (same
    /// value) when the role changes, to wake acks=all waiters.
    pub(super) high_watermark: watch::Sender<u64>,
    /// The log end after each append here: followers' fetches wait on it.
    pub(super) log_end: watch::Sender<u64>,
    /// Sent when a replica's log start may have moved, and at role
    /// changes: DeleteRecords waits on it for the low watermark.
    pub(super) log_starts: watch::Sender<()>,
    pub(super) producers: Mutex<ProducerStates>,
    /// Leader or follower; never held across an `.await`.
    pub(super) role: Mutex<Role>,
    /// Held by a role change and by a follower's truncation or append, so
    /// that a follower's writes never reach the log of a leader.
    pub(super) transition: tokio::sync::Mutex<()>,
}

impl<D: Disk> Partition<D> {
    /// Opens the replica, as a follower until `apply_assignment` says more
    /// (a leader's role needs its epoch in the log's checkpoint first).
    pub async fn open(tp: TopicPartition, log: Arc<Log<D>>, leader_epoch: i32) -> Partition<D> {
        let producers = rebuild_producer_state(&log).await;
        Partition {
            tp,
            high_watermark: watch::Sender::new(log.log_start_offset()),
            log_end: watch::Sender::new(log.log_end_offset()),
            log_starts: watch::Sender::new(()),
            log,
            leader_epoch: AtomicI32::new(leader_epoch),
            producers: Mutex::new(producers),
            role: Mutex::new(Role::Follower { leader: -1 }),
            transition: tokio::sync::Mutex::new(()),
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::SeqCst)
    }

    /// The metadata's leader epoch for this partition; epochs only grow.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.fetch_max(epoch, Ordering::SeqCst);
    }

    pub fn high_watermark(&self) -> u64 {
        *self.high_watermark.borrow()
    }

    /// Changes whenever the high watermark moves: long polls wait on it.
    pub fn high_watermark_watch(&self) -> watch::Receiver<u64> {
        self.high_watermark.subscribe()
    }

    /// The idempotent producers with batches in this replica's log.
    pub fn active_producers(&self) -> Vec<super::producers::ActiveProducer> {
        self.producers().active()
    }

    pub(super) fn producers(&self) -> MutexGuard<'_, ProducerStates> {
        self.producers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How far this replica's own log counts as replicated: under
    /// flush=always only what is fsynced, so that nothing a consumer read
    /// or an acks=all producer was told can be lost to a power loss.
    pub(super) fn local_end(&self) -> u64 {
        match self.log.config().flush {
            // CANARY canary-hw-ahead-of-fsync (planted bug, sim/canaries):
            // consumers may read what a power loss can still take.
            FlushPolicy::Always if !crate::canary::Canary::HwAheadOfFsync.on() => self.log.flushed_offset(),
            _ => self.log.log_end_offset(),
        }
    }

    /// After the log grew or was fsynced: a leader's high watermark may
    /// move (alone in its ISR, everything it holds durably is replicated);
    /// followers waiting for records hear of them.
    pub fn refresh_high_watermark(&self) {
        self.log_end.send_if_modified(|end| {
            let now = self.log.log_end_offset();
            let moved = now != *end;
            *end = now;
            moved
        });
        let hw = match &mut *self.role() {
            Role::Leader { state, .. } => {
                state.on_local_end(self.local_end());
                state.high_watermark()
            }
            Role::Follower { .. } => return,
        };
        self.publish_high_watermark(hw);
    }

    /// Publishes `hw` if it is ahead of the published one (never back).
    pub(super) fn publish_high_watermark(&self, hw: u64) {
        self.high_watermark.send_if_modified(|current| {
            let moved = hw > *current;
            if moved {
                *current = hw;
            }
            moved
        });
    }

    /// Appends a producer's record batches (validated, offsets assigned).
    /// Retries of idempotent batches already in the log are answered with
    /// their original offsets.
    /// For acks=all the ISR must hold `min.insync.replicas` before anything
    /// is appended (NOT_ENOUGH_REPLICAS); the caller then waits with
    /// `wait_replicated`, which may be cancelled where this may not.
    pub async fn produce(&self, records: Bytes, acks: Acks) -> Result<ProduceOutcome, BrokerError> {
        if acks == Acks::All {
            self.check_min_insync()?;
        }
        let produced = self.log.validate_produced(records)?;
        let log_append_time = produced.log_append_time.unwrap_or(-1);
        let batches = produced.batches;
        let headers = batches.headers().to_vec();
        let idempotent = headers.iter().any(|h| h.producer_id >= 0);
        if idempotent && headers.len() != 1 {
            return Err(BrokerError::new(
                ErrorCode::InvalidRecord,
                "an idempotent produce carries one batch per partition",
            ));
        }
        let ticket = {
            let mut producers = self.producers();
            if let Some(h) = headers.iter().find(|h| h.producer_id >= 0) {
                match producers.check(h)? {
                    SequenceCheck::Duplicate(b) => {
                        return match b.offsets {
                            Some((base_offset, last_offset)) => Ok(ProduceOutcome {
                                base_offset,
                                last_offset,
                                log_start_offset: self.log.log_start_offset(),
                                log_append_time: -1,
                            }),
                            None => Err(BrokerError::new(
                                ErrorCode::DuplicateSequenceNumber,
                                "a retry of a batch that is still being written",
                            )),
                        };
                    }
                    SequenceCheck::Append => producers.record(h, None),
                }
            }
            // Queued under the producer lock: offsets follow sequence order.
            self.log.enqueue_validated(batches, self.leader_epoch())?
        };
        let info = ticket.wait().await?;
        if let Some(h) = headers.iter().find(|h| h.producer_id >= 0) {
            self.producers().confirm(h, info.base_offset, info.last_offset);
        }
        self.refresh_high_watermark();
        Ok(ProduceOutcome {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            log_start_offset: info.log_start_offset,
            log_append_time,
        })
    }

    /// Reads whole batches from `offset`, below the high watermark.
    pub async fn fetch(&self, offset: i64, max_bytes: usize) -> Result<FetchOutcome, BrokerError> {
        self.check_serves_reads()?;
        let hw = self.high_watermark();
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        let out_of_range = || {
            BrokerError::new(ErrorCode::OffsetOutOfRange, format!("offset {offset} outside [{start}, {end}]"))
        };
        let offset = u64::try_from(offset).map_err(|_| out_of_range())?;
        if offset < start || offset > end {
            return Err(out_of_range());
        }
        let read = if offset >= hw { None } else { Some(self.log.read(offset, max_bytes, Some(hw)).await?) };
        Ok(FetchOutcome::new(read, hw, start))
    }

    /// Kafka's ListOffsets for one partition: the first record at or after
    /// a timestamp, or one of Kafka's special timestamps (`ListTime`).
    /// Returns `(offset, timestamp)`, `(-1, -1)` when no record matches.
    /// Records at or above the high watermark are not there yet for this.
    pub async fn list_offset(&self, timestamp: i64) -> Result<(i64, i64), BrokerError> {
        self.check_serves_reads()?;
        let visible = |found: Option<(u64, i64)>| match found {
            Some((offset, ts)) if offset < self.high_watermark() => (offset as i64, ts),
            _ => (-1, -1),
        };
        match ListTime::of(timestamp)? {
            ListTime::Earliest | ListTime::EarliestLocal => Ok((self.log.log_start_offset() as i64, -1)),
            ListTime::Latest => Ok((self.high_watermark() as i64, -1)),
            ListTime::MaxTimestamp => Ok(visible(self.log.offset_of_max_timestamp().await?)),
            ListTime::LatestTiered => Ok((-1, -1)),
            ListTime::At(t) => Ok(visible(self.log.offset_for_timestamp(t).await?)),
        }
    }
}

/// What a ListOffsets timestamp asks for: a time, or one of Kafka's special
/// values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListTime {
    /// -2: the log start.
    Earliest,
    /// -1: the high watermark.
    Latest,
    /// -3 (v7): the first record holding the largest timestamp.
    MaxTimestamp,
    /// -4 (v8): the start of the local log; all of it is local here.
    EarliestLocal,
    /// -5 (v9): the end of the tiered part, which is empty here (-1, as
    /// Kafka answers with tiered storage off).
    LatestTiered,
    At(i64),
}

impl ListTime {
    fn of(timestamp: i64) -> Result<ListTime, BrokerError> {
        Ok(match timestamp {
            -1 => ListTime::Latest,
            -2 => ListTime::Earliest,
            -3 => ListTime::MaxTimestamp,
            -4 => ListTime::EarliestLocal,
            -5 => ListTime::LatestTiered,
            t if t >= 0 => ListTime::At(t),
            t => {
                return Err(BrokerError::new(ErrorCode::InvalidRequest, format!("unsupported timestamp {t}")))
            }
        })
    }
}

/// Reads the last segments' batch headers to learn each producer's latest
/// sequences.
pub(super) async fn rebuild_producer_state<D: Disk>(log: &Log<D>) -> ProducerStates {
    let mut states = ProducerStates::default();
    let bases = log.segment_base_offsets();
    let from = bases.len().saturating_sub(PRODUCER_STATE_SEGMENTS);
    let mut offset = bases[from].max(log.log_start_offset());
    while offset < log.log_end_offset() {
        let Ok(read) = log.read(offset, 8 << 20, None).await else { break };
        let mut advanced = false;
        for (_, header) in BatchScanner::new(&read.records).map_while(Result::ok) {
            states.record(&header, Some((header.base_offset as u64, header.last_offset())));
            offset = header.next_offset();
            advanced = true;
        }
        if !advanced {
            break;
        }
    }
    states
}
