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
//! Incremental fetch sessions (KIP-227) are kept in `fetch_session`; from
//! v13 topics are named by id.
//!
//! A consumer needs READ on each topic; a follower (a replica id) needs
//! CLUSTER_ACTION on the cluster. A partition read without it is answered
//! TOPIC_AUTHORIZATION_FAILED, as Kafka does. A consumer over its fetch
//! quota is answered after `throttle_time_ms` (`quotas`).

use super::fetch_session::PartitionKey;
use super::{check_leader_epoch, code, topic_name, Context};
use crate::metered_disk::MeteredDisk;
use crate::quotas::QuotaKind;
use crate::security::authorize::Access;
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::partition::Partition;
use ringtail_engine::join::join_in_order;
use ringtail_engine::log::batch::BatchHeader;
use ringtail_engine::log::read::ReadAhead;
use ringtail_engine::security::acl::Operation;
use ringtail_engine::watch;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;

/// Kafka's `isolation_level` for read_committed.
const READ_COMMITTED: i8 = 1;
/// Topics are named by id from this version on.
const TOPIC_IDS_FROM: i16 = 13;

pub async fn handle(ctx: &Context, access: Access<'_>, request: FetchRequest, version: i16) -> FetchResponse {
    let (requested, forgotten) = resolve(ctx, &request, version);
    let plan = match ctx.fetch_sessions.begin(&request, requested, &forgotten) {
        Ok(plan) => plan,
        Err(error_code) => return FetchResponse::default().with_error_code(error_code),
    };
    let topics = by_topic(&plan.partitions);
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms).unwrap_or(0).min(ctx.limits.fetch_wait_ms_max),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0).min(ctx.limits.fetch_response_bytes_max);
    let read_committed = request.isolation_level == READ_COMMITTED;
    // A follower replicating (Kafka's replica id, in the replica state from
    // v15; -1 for consumers).
    let replica_id = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
    let replica = (replica_id >= 0).then_some(replica_id);
    let readable = readable(access, &topics, replica);
    // The request is a slice of its frame, and with it the frame's share of
    // the request budget: a long poll holds neither.
    drop(request);
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let round = read_round(ctx, &topics, &readable, max_bytes, read_committed, replica, version).await;
        let done = round.bytes >= min_bytes
            || round.failed
            || round.watches.is_empty()
            || Instant::now() >= deadline
            || *shutdown.borrow();
        if done {
            let mut answered = round.topics;
            ctx.fetch_sessions.finish(&plan, &mut answered);
            let responses = answered.into_iter().map(|(_, topic)| topic).collect();
            // Followers replicate; only clients are held to quotas.
            let throttle = match replica {
                None => {
                    ctx.quotas.throttle(&ctx.broker, access.principal(), QuotaKind::Fetch, round.bytes as u64)
                }
                Some(_) => Duration::ZERO,
            };
            super::produce::hold_back(ctx, throttle).await;
            return FetchResponse::default()
                .with_session_id(plan.session_id)
                .with_responses(responses)
                .with_throttle_time_ms(super::produce::throttle_ms(throttle));
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

/// The request's partitions and forgotten partitions as keys: by name up
/// to v12, by topic id from v13 (an id unknown here keeps an empty name).
fn resolve(
    ctx: &Context,
    request: &FetchRequest,
    version: i16,
) -> (Vec<(PartitionKey, FetchPartition)>, Vec<PartitionKey>) {
    let key = |name: &TopicName, id: uuid::Uuid, partition: i32| {
        if version >= TOPIC_IDS_FROM {
            let name = ctx.broker.topic_name_by_id(id.into_bytes()).unwrap_or_default();
            PartitionKey { name, id, partition }
        } else {
            PartitionKey { name: name.0.to_string(), id: uuid::Uuid::nil(), partition }
        }
    };
    // A partition named twice is read and answered once (the first time):
    // each read allocates up to its partition's limit.
    let mut seen = std::collections::BTreeSet::new();
    let requested = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (key(&t.topic, t.topic_id, p.partition), p)))
        .filter(|(key, _)| seen.insert(key.clone()))
        .map(|(key, p)| (key, p.clone()))
        .collect();
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| key(&t.topic, t.topic_id, *p)))
        .collect();
    (requested, forgotten)
}

/// The partitions grouped by topic, each run of one topic's partitions a
/// group, in order.
fn by_topic(partitions: &[(PartitionKey, FetchPartition)]) -> Vec<Vec<(PartitionKey, FetchPartition)>> {
    let mut topics: Vec<Vec<(PartitionKey, FetchPartition)>> = Vec::new();
    for (key, p) in partitions {
        match topics.last_mut() {
            Some(last) if last[0].0.name == key.name && last[0].0.id == key.id => {
                last.push((key.clone(), p.clone()))
            }
            _ => topics.push(vec![(key.clone(), p.clone())]),
        }
    }
    topics
}

/// Per topic group, whether the caller may read it. A topic id unknown
/// here (no name) is left to be answered UNKNOWN_TOPIC_ID.
fn readable(
    access: Access<'_>,
    topics: &[Vec<(PartitionKey, FetchPartition)>],
    replica: Option<i32>,
) -> Vec<bool> {
    if replica.is_some() {
        let allowed = access.cluster(Operation::ClusterAction);
        return vec![allowed; topics.len()];
    }
    topics.iter().map(|t| t[0].0.name.is_empty() || access.topic(Operation::Read, &t[0].0.name)).collect()
}

/// One pass over the requested partitions.
struct Round {
    /// Each topic's answer, with the keys of its partitions (for the
    /// session's bookkeeping).
    topics: Vec<(Vec<PartitionKey>, FetchableTopicResponse)>,
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
    topics: &[Vec<(PartitionKey, FetchPartition)>],
    readable: &[bool],
    max_bytes: usize,
    read_committed: bool,
    replica: Option<i32>,
    version: i16,
) -> Round {
    let mut round =
        Round { topics: Vec::with_capacity(topics.len()), bytes: 0, failed: false, watches: Vec::new() };
    let limits_sum = topics.iter().flatten().map(|(_, p)| partition_limit(p)).fold(0, usize::saturating_add);
    let mut early_reads = Vec::new().into_iter();
    if limits_sum <= max_bytes {
        let mut reads = Vec::new();
        for (topic, allowed) in topics.iter().zip(readable) {
            for (key, p) in topic {
                reads.push(read_partition(ctx, key, p, partition_limit(p), replica, *allowed));
            }
        }
        early_reads = join_in_order(reads).await.into_iter();
    }
    for (topic, allowed) in topics.iter().zip(readable) {
        let mut partitions = Vec::with_capacity(topic.len());
        for (key, p) in topic {
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
                None => read_partition(ctx, key, p, partition_max_bytes, replica, *allowed).await,
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
                        if let Some(partition) = ctx.broker.partition(&key.name, p.partition) {
                            data.log_start_offset = partition.log.log_start_offset() as i64;
                        }
                    }
                }
            }
            partitions.push(data);
        }
        let first = &topic[0].0;
        let mut answer = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= TOPIC_IDS_FROM {
            answer.topic_id = first.id;
        } else {
            answer.topic = topic_name(first.name.clone());
        }
        round.topics.push((topic.iter().map(|(k, _)| k.clone()).collect(), answer));
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
    key: &PartitionKey,
    p: &FetchPartition,
    max_bytes: usize,
    replica: Option<i32>,
    allowed: bool,
) -> Result<PartitionRead, i16> {
    if !allowed {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    if key.name.is_empty() && !key.id.is_nil() {
        return Err(ResponseError::UnknownTopicId.code());
    }
    let topic = key.name.as_str();
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
        read_ahead(&partition, outcome.read_ahead);
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
    read_ahead(&partition, outcome.read_ahead);
    Ok(PartitionRead {
        records: outcome.records,
        high_watermark: outcome.high_watermark as i64,
        log_start_offset: outcome.log_start_offset as i64,
        watches,
    })
}

/// A read that came from the disk: the partition's next chunk is read into
/// the log cache while this one is answered, so that a reader going through
/// old data finds its next fetch in memory (`Log::read_ahead`).
fn read_ahead(partition: &Arc<Partition<MeteredDisk>>, ahead: Option<ReadAhead>) {
    if let Some(ahead) = ahead {
        let partition = Arc::clone(partition);
        tokio::spawn(async move { partition.log.read_ahead(ahead).await });
    }
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
