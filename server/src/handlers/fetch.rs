//! Fetch: reads record batches below the high watermark, long-polling until
//! `min_bytes` are available across the partitions, `max_wait_ms` (capped
//! by `Limits::fetch_wait_ms_max`) passes, or the server shuts down.
//!
//! Byte limits follow Kafka (KIP-74): each partition reads at most its
//! `partition_max_bytes` and the response at most `max_bytes` (capped by
//! `Limits::fetch_response_bytes_max`), except that
//! the first batch of the first partition with data is returned whole, so a
//! consumer always makes progress past a batch larger than its limits.
//!
//! When the partitions' own limits add up to no more than the response's,
//! no partition's read depends on another's, so all are read at once: the
//! log's reads overlap (one checks its CRCs while the next is read, and a
//! disk sees a queue). Otherwise they are read one after another, each
//! within what the earlier ones left.
//!
//! Fetch sessions (KIP-227) are not kept: every answer carries session id 0,
//! which tells clients to send full requests, as Kafka does when its session
//! cache is full.

use super::{check_leader_epoch, code, Context};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::join::join_in_order;
use ringtail_engine::log::batch::BatchHeader;
use ringtail_engine::watch;
use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;

/// Kafka's `isolation_level` for read_committed.
const READ_COMMITTED: i8 = 1;

pub async fn handle(ctx: &Context, request: FetchRequest, version: i16) -> FetchResponse {
    if let Some(error_code) = session_error(&request) {
        return FetchResponse::default().with_error_code(error_code);
    }
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms).unwrap_or(0).min(ctx.limits.fetch_wait_ms_max),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0).min(ctx.limits.fetch_response_bytes_max);
    let read_committed = request.isolation_level == READ_COMMITTED;
    // A follower replicating (Kafka's replica id; -1 for consumers).
    let replica = (request.replica_id.0 >= 0).then_some(request.replica_id.0);
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let round = read_round(ctx, &request.topics, max_bytes, read_committed, replica, version).await;
        let done = round.bytes >= min_bytes
            || round.failed
            || round.watches.is_empty()
            || Instant::now() >= deadline
            || *shutdown.borrow();
        if done {
            return FetchResponse::default().with_responses(round.topics);
        }
        let mut watches = round.watches;
        tokio::select! {
        biased;
            _ = high_watermark_moved(&mut watches) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = crate::shutdown::signalled(&mut shutdown) => {}
        }
    }
}

/// Incremental fetch sessions are not kept, so a request in one refers to
/// a session we do not have. Session id 0 with epoch 0 (open a session) or
/// -1 (no session) is a full request, answered without one.
fn session_error(request: &FetchRequest) -> Option<i16> {
    if request.session_id != 0 {
        Some(ResponseError::FetchSessionIdNotFound.code())
    } else if request.session_epoch > 0 {
        Some(ResponseError::InvalidFetchSessionEpoch.code())
    } else {
        None
    }
}

/// One pass over the requested partitions.
struct Round {
    topics: Vec<FetchableTopicResponse>,
    /// Record bytes in the answer.
    bytes: usize,
    /// Some partition answered with an error: Kafka answers at once.
    failed: bool,
    /// High watermark watches of the partitions read (and, for a follower,
    /// log end watches), subscribed before their read so that a move
    /// during the read is not missed.
    watches: Vec<watch::Receiver<u64>>,
}

async fn read_round(
    ctx: &Context,
    topics: &[FetchTopic],
    max_bytes: usize,
    read_committed: bool,
    replica: Option<i32>,
    version: i16,
) -> Round {
    let mut round =
        Round { topics: Vec::with_capacity(topics.len()), bytes: 0, failed: false, watches: Vec::new() };
    let limits_sum =
        topics.iter().flat_map(|t| &t.partitions).map(partition_limit).fold(0, usize::saturating_add);
    let mut early_reads = Vec::new().into_iter();
    if limits_sum <= max_bytes {
        let mut reads = Vec::new();
        for topic in topics {
            for p in &topic.partitions {
                reads.push(read_partition(ctx, topic.topic.0.as_str(), p, partition_limit(p), replica));
            }
        }
        early_reads = join_in_order(reads).await.into_iter();
    }
    for topic in topics {
        let name = topic.topic.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let budget = max_bytes.saturating_sub(round.bytes);
            let partition_max_bytes = partition_limit(p).min(budget);
            let mut data =
                PartitionData::default().with_partition_index(p.partition).with_records(Some(Bytes::new()));
            if read_committed {
                data.aborted_transactions = Some(Vec::new());
            } else {
                data.aborted_transactions = None;
            }
            let read = match early_reads.next() {
                Some(read) => read,
                None => read_partition(ctx, name, p, partition_max_bytes, replica).await,
            };
            match read {
                Ok(read) => {
                    let first_data = round.bytes == 0;
                    // Only the first partition with data may exceed the
                    // remaining budget (with its first batch). A read made
                    // before the budget was known keeps the batches that
                    // fit: what a read within the budget returns.
                    let records =
                        if first_data { read.records } else { whole_batches_within(read.records, budget) };
                    round.bytes += records.len();
                    round.watches.extend(read.watches);
                    data = data
                        .with_high_watermark(read.high_watermark)
                        .with_last_stable_offset(read.high_watermark)
                        .with_records(Some(records));
                    if version >= 5 {
                        data.log_start_offset = read.log_start_offset;
                    }
                }
                Err(error_code) => {
                    round.failed = true;
                    data = data.with_error_code(error_code).with_high_watermark(-1);
                    if error_code == ResponseError::OffsetOutOfRange.code() && version >= 5 {
                        // Where the log starts now: a follower that fell
                        // below it starts over there (`server/src/replication.rs`).
                        if let Some(partition) = ctx.broker.partition(name, p.partition) {
                            data.log_start_offset = partition.log.log_start_offset() as i64;
                        }
                    }
                }
            }
            partitions.push(data);
        }
        round.topics.push(
            FetchableTopicResponse::default().with_topic(topic.topic.clone()).with_partitions(partitions),
        );
    }
    round
}

struct PartitionRead {
    records: Bytes,
    high_watermark: i64,
    log_start_offset: i64,
    watches: Vec<watch::Receiver<u64>>,
}

/// The partition's own limit on its records.
fn partition_limit(p: &FetchPartition) -> usize {
    usize::try_from(p.partition_max_bytes).unwrap_or(0)
}

/// The whole batches at the start of `records` that fit in `max_bytes`.
fn whole_batches_within(records: Bytes, max_bytes: usize) -> Bytes {
    if records.len() <= max_bytes {
        return records;
    }
    let mut end = 0;
    while let Some(header) = records.get(end..).and_then(|rest| BatchHeader::parse(rest).ok()) {
        match end.checked_add(header.size_bytes()) {
            Some(next) if next <= max_bytes => end = next,
            _ => break,
        }
    }
    records.slice(..end)
}

async fn read_partition(
    ctx: &Context,
    topic: &str,
    p: &FetchPartition,
    max_bytes: usize,
    replica: Option<i32>,
) -> Result<PartitionRead, i16> {
    let (index, current_leader_epoch, offset) = (p.partition, p.current_leader_epoch, p.fetch_offset);
    let partition = ctx.broker.leader_partition(topic, index).map_err(|e| code(&e))?;
    check_leader_epoch(current_leader_epoch, partition.leader_epoch())?;
    let mut watches = vec![partition.high_watermark_watch()];
    if let Some(replica) = replica {
        // A follower waits for records past the high watermark too.
        watches.push(partition.log_end_watch());
        let outcome =
            partition.replica_fetch(replica, offset, max_bytes, ctx.broker.now_ms()).await.map_err(|e| {
                tracing::debug!(topic, partition = index, replica, offset, error = %e, "replica fetch refused");
                code(&e)
            })?;
        if let Ok(log_start) = u64::try_from(p.log_start_offset) {
            partition.note_follower_log_start(replica, log_start);
        }
        return Ok(PartitionRead {
            records: outcome.records,
            high_watermark: outcome.high_watermark as i64,
            log_start_offset: outcome.log_start_offset as i64,
            watches,
        });
    }
    if max_bytes == 0 {
        // No budget left: nothing is read (the engine would return a whole
        // batch), but the offsets are still reported and watched.
        return Ok(PartitionRead {
            records: Bytes::new(),
            high_watermark: partition.high_watermark() as i64,
            log_start_offset: partition.log.log_start_offset() as i64,
            watches,
        });
    }
    let outcome = partition.fetch(offset, max_bytes).await.map_err(|e| {
        tracing::debug!(topic, partition = index, offset, error = %e, "fetch refused");
        code(&e)
    })?;
    Ok(PartitionRead {
        records: outcome.records,
        high_watermark: outcome.high_watermark as i64,
        log_start_offset: outcome.log_start_offset as i64,
        watches,
    })
}

/// Resolves when any watched high watermark moves (or its partition goes
/// away, which the next round reports).
async fn high_watermark_moved(watches: &mut [watch::Receiver<u64>]) {
    let mut changes: Vec<_> = watches.iter_mut().map(|w| Box::pin(w.changed())).collect();
    poll_fn(|cx| {
        if changes.iter_mut().any(|c| c.as_mut().poll(cx).is_ready()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
