//! The workload, on client nodes: producers with acks 0/1/all and varied
//! batch and record sizes, consumers reading by offset, and an admin that
//! creates the topics and then creates, fills, reads and deletes scratch
//! topics for the whole run. Every request and answer goes to the checker.

use crate::kafka::Client;
use crate::ops::{Request, Response};
use crate::rng::Rng;
use crate::swarm::TopicPlan;
use crate::values::{make_value, RecordKey};
use crate::world::World;
use bytes::Bytes;
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::records::BatchBuilder;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Most value bytes in one produced batch.
const BATCH_BYTES_MAX: u64 = 32 * 1024;
/// Chance per fetch that a consumer also looks an offset up by time.
const TIME_LOOKUP_CHANCE: f64 = 0.1;
/// A large fetch's byte limit.
const LARGE_FETCH_BYTES: u32 = 1 << 20;
/// Attempts per produce before the producer gives up (unknown outcome).
const PRODUCE_ATTEMPTS_MAX: u32 = 5;
/// Attempts per admin operation in one round; the admin keeps going after.
const ADMIN_ATTEMPTS_MAX: u32 = 20;
/// Producer ids of the admin and the verifier, apart from the producers'.
pub const ADMIN_PRODUCER: u32 = 10_000;
pub const VERIFIER_PRODUCER: u32 = 20_000;
/// Kafka error codes the workload acts on.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;

pub async fn client(world: &World, name: &str) -> Client {
    world.kafka_client(name, Duration::from_millis(world.cfg.request_timeout_ms))
}

async fn pause_ms(lo: u64, hi: u64, rng: &mut Rng) {
    madsim::time::sleep(Duration::from_millis(rng.range(lo, hi.max(lo)))).await;
}

async fn wait_for_topics(world: &World) {
    while !world.topics_ready.load(Ordering::SeqCst) && !world.stopping() {
        madsim::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One batch of fresh records for producer `producer`.
pub fn make_batch(
    world: &World,
    rng: &mut Rng,
    producer: u32,
    seq: &mut u64,
    count: u64,
) -> (Bytes, Vec<(RecordKey, Bytes)>) {
    make_stamped_batch(world, rng, producer, seq, count, None)
}

/// An idempotent producer's identity on a batch: its producer id and epoch,
/// and the batch's first sequence number in its partition.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// `make_batch`, stamped for an idempotent producer if `stamp` is given.
pub fn make_stamped_batch(
    world: &World,
    rng: &mut Rng,
    producer: u32,
    seq: &mut u64,
    count: u64,
    stamp: Option<Stamp>,
) -> (Bytes, Vec<(RecordKey, Bytes)>) {
    // Every record of a batch gets the same time: the checker's model of
    // ListOffsets by time needs no batch boundaries then.
    let timestamp = world.now_ms();
    let mut builder = BatchBuilder::new(0, timestamp);
    if let Some(stamp) = stamp {
        builder.producer_id = stamp.producer_id;
        builder.producer_epoch = stamp.producer_epoch;
        builder.base_sequence = stamp.base_sequence;
    }
    let mut records = Vec::new();
    for _ in 0..count {
        let key = RecordKey { producer, seq: *seq };
        *seq += 1;
        let value = make_value(key, rng.range(1, world.cfg.value_bytes_max) as usize);
        builder.push(None, Some(value.clone()), timestamp);
        records.push((key, value));
    }
    world.checker().timestamped(records.iter().map(|(k, _)| *k), timestamp);
    (builder.build(), records)
}

/// Sends one produce, retrying on errors and timeouts; returns the base
/// offset if a response acknowledged it.
pub async fn produce(
    world: &World,
    client: &mut Client,
    rng: &mut Rng,
    tp: &(String, i32),
    acks: i8,
    batch: Bytes,
    records: &[(RecordKey, Bytes)],
) -> Option<u64> {
    world.checker().produce_sent(tp, records, acks, true);
    let request = Request::Produce { topic: tp.0.clone(), partition: tp.1, acks, records: batch };
    if acks == 0 {
        world.counters.op("produce");
        client.send_only(request).await;
        return None;
    }
    let keys: Vec<RecordKey> = records.iter().map(|(k, _)| *k).collect();
    for _ in 0..PRODUCE_ATTEMPTS_MAX {
        world.counters.op("produce");
        match client.call(request.clone()).await {
            Some(Response::Produced { base_offset, log_start_offset }) => {
                let epoch = client.last_epochs();
                world.checker().produce_acked(tp, &keys, acks, base_offset, log_start_offset, epoch);
                return Some(base_offset);
            }
            Some(Response::Error { code, message, .. }) => {
                world.checker().note(Some(tp), None, format!("produce failed: {code}: {message}"));
            }
            Some(other) => panic!("a produce was answered with {other:?}"),
            None => world.checker().note(Some(tp), None, "produce timed out".to_string()),
        }
        if world.stopping() {
            break;
        }
        pause_ms(5, 100, rng).await;
    }
    None
}

/// An idempotent producer's id and epoch, and its next sequence number per
/// partition.
struct Identity {
    producer_id: i64,
    producer_epoch: i16,
    next: BTreeMap<(String, i32), i32>,
}

/// Asks for a producer id; records from `first_seq` on are its.
async fn init_identity(world: &World, client: &mut Client, index: u32, first_seq: u64) -> Option<Identity> {
    world.counters.op("init_producer_id");
    match client.call(Request::InitProducerId).await? {
        Response::ProducerId { id, epoch } => {
            world.checker().idempotent_identity(index, first_seq);
            Some(Identity { producer_id: id, producer_epoch: epoch, next: BTreeMap::new() })
        }
        Response::Error { code, message, .. } => {
            world.checker().note(
                None,
                None,
                format!("producer {index}: init producer id failed: {code}: {message}"),
            );
            None
        }
        other => panic!("an InitProducerId was answered with {other:?}"),
    }
}

/// A producer: random partitions, acks, batch sizes and record sizes. An
/// idempotent one sends acks=all, retries each batch with the same sequence
/// numbers, and takes a new producer id when it gives a batch up.
pub async fn producer(world: Arc<World>, index: u32) {
    let mut rng = Rng::fork(world.cfg.seed, &format!("producer-{index}"));
    let mut client = client(&world, &format!("producer-client-{index}")).await;
    let idempotent = world.cfg.idempotent.get(index as usize).copied().unwrap_or(false);
    wait_for_topics(&world).await;
    let mut seq = 0u64;
    let mut identity: Option<Identity> = None;
    while !world.stopping() {
        if idempotent && identity.is_none() {
            identity = init_identity(&world, &mut client, index, seq).await;
            if identity.is_none() {
                pause_ms(5, 100, &mut rng).await;
                continue;
            }
        }
        let topic: &TopicPlan = rng.pick(&world.cfg.topics);
        let tp = (topic.name.clone(), rng.below(u64::from(topic.partitions)) as i32);
        let acks = [0i8, 1, -1][rng.weighted(&world.cfg.acks_weights)];
        let acks = if idempotent { -1 } else { acks };
        // A batch holds at most BATCH_BYTES_MAX of values: the run's data
        // volume (and so its wall time) stays bounded whatever the draw.
        let fit = (BATCH_BYTES_MAX / world.cfg.value_bytes_max).max(1);
        let count = rng.range(1, world.cfg.batch_records_max.min(fit));
        let stamp = identity.as_ref().map(|i| Stamp {
            producer_id: i.producer_id,
            producer_epoch: i.producer_epoch,
            base_sequence: i.next.get(&tp).copied().unwrap_or(0),
        });
        let (batch, records) = make_stamped_batch(&world, &mut rng, index, &mut seq, count, stamp);
        let acked = produce(&world, &mut client, &mut rng, &tp, acks, batch, &records).await;
        match (acked, &mut identity) {
            (Some(_), Some(identity)) => *identity.next.entry(tp).or_insert(0) += count as i32,
            // The batch's fate is unknown: a new producer id, whose
            // sequences start over, rather than a gap the broker refuses.
            (None, Some(_)) => identity = None,
            _ => {}
        }
        pause_ms(0, world.cfg.think_ms_max, &mut rng).await;
    }
}

/// A consumer: follows its share of the partitions from the log start,
/// fetching by offset; on offset-out-of-range it starts over.
pub async fn consumer(world: Arc<World>, index: u32) {
    let mut rng = Rng::fork(world.cfg.seed, &format!("consumer-{index}"));
    let mut client = client(&world, &format!("consumer-client-{index}")).await;
    let wait_ms = world.cfg.fetch_wait_ms.get(index as usize).copied().unwrap_or(0);
    client.set_fetch_wait(Duration::from_millis(wait_ms));
    // Every other consumer asks for large fetches, the rest for the
    // seed's limit (tiny on some seeds).
    let fetch_bytes = if index % 2 == 1 { LARGE_FETCH_BYTES } else { world.cfg.fetch_bytes_max };
    wait_for_topics(&world).await;
    let all: Vec<(String, i32)> =
        world.cfg.topics.iter().flat_map(|t| (0..t.partitions as i32).map(|p| (t.name.clone(), p))).collect();
    let mine: Vec<(String, i32)> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as u32 % world.cfg.consumers == index)
        .map(|(_, tp)| tp.clone())
        .collect();
    if mine.is_empty() {
        return;
    }
    let mut positions: BTreeMap<(String, i32), u64> = BTreeMap::new();
    // The time of the last record read from each partition.
    let mut times: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut turn = 0usize;
    while !world.stopping() {
        let tp = mine[turn % mine.len()].clone();
        turn += 1;
        match positions.get(&tp).copied() {
            None => {
                if let Some(start) = list_offset(&world, &mut client, index, &tp, -2).await {
                    positions.insert(tp, start);
                }
            }
            Some(position) => {
                let mut last_time = None;
                let fetched =
                    fetch_once(&world, &mut client, index, &tp, position, fetch_bytes, &mut last_time).await;
                if let Some(next) = fetched {
                    match next {
                        Some(next) => positions.insert(tp.clone(), next),
                        None => positions.remove(&tp),
                    };
                }
                if let Some(time) = last_time {
                    times.insert(tp.clone(), time);
                }
                if let Some(&time) = times.get(&tp).filter(|_| rng.chance(TIME_LOOKUP_CHANCE)) {
                    // At a record's own time, just before and after it,
                    // before every record, and after them all.
                    let at = *rng.pick(&[time, time - 1, time + 1, 0, time + 3_600_000]);
                    list_offset(&world, &mut client, index, &tp, at).await;
                }
            }
        }
        pause_ms(0, world.cfg.think_ms_max, &mut rng).await;
    }
}

pub async fn list_offset(
    world: &World,
    client: &mut Client,
    reader: u32,
    tp: &(String, i32),
    timestamp: i64,
) -> Option<u64> {
    world.counters.op("list_offsets");
    let request = Request::ListOffsets { topic: tp.0.clone(), partition: tp.1, timestamp };
    match client.call(request).await? {
        Response::Offset { offset } => {
            world.checker().listed(reader, tp, timestamp, offset);
            u64::try_from(offset).ok()
        }
        Response::Error { code, .. } => {
            world.checker().note(Some(tp), None, format!("reader {reader} list-offsets failed: {code}"));
            None
        }
        other => panic!("a list-offsets was answered with {other:?}"),
    }
}

/// The time of the last record of `records`' batches (the batch's newest:
/// the workload gives every record of a batch the same time).
fn last_record_time(records: &Bytes) -> Option<i64> {
    BatchScanner::new(records).filter_map(Result::ok).last().map(|(_, header)| header.max_timestamp)
}

/// One fetch at `position`. `Some(Some(next))`: the next position;
/// `Some(None)`: start over from the log start; `None`: try again.
async fn fetch_once(
    world: &World,
    client: &mut Client,
    reader: u32,
    tp: &(String, i32),
    position: u64,
    max_bytes: u32,
    last_time: &mut Option<i64>,
) -> Option<Option<u64>> {
    world.counters.op("fetch");
    let request = Request::Fetch { topic: tp.0.clone(), partition: tp.1, offset: position as i64, max_bytes };
    match client.call(request).await? {
        Response::Fetched { records, high_watermark, log_start_offset } => {
            let epoch = client.last_epochs();
            world.checker().fetched(reader, tp, position, &records, high_watermark, log_start_offset, epoch);
            let last = crate::checker::decode_batches(std::slice::from_ref(&records))
                .ok()
                .and_then(|r| r.last().map(|(o, _)| *o));
            *last_time = last_record_time(&records);
            Some(Some(last.map_or(position, |l| (l + 1).max(position))))
        }
        Response::Error { code, log_range, .. } => {
            world.checker().fetch_failed(reader, tp, position, code, log_range);
            (code == OFFSET_OUT_OF_RANGE).then_some(None)
        }
        other => panic!("a fetch was answered with {other:?}"),
    }
}

/// Creates a topic, retrying until acknowledged (created or already there).
pub async fn create_topic(world: &World, client: &mut Client, rng: &mut Rng, plan: &TopicPlan) -> bool {
    let request = Request::CreateTopic {
        name: plan.name.clone(),
        partitions: plan.partitions,
        configs: plan.configs.clone(),
    };
    for _ in 0..ADMIN_ATTEMPTS_MAX {
        world.counters.op("create_topic");
        match client.call(request.clone()).await {
            Some(Response::Created) => {
                world.checker().topic_created(&plan.name);
                return true;
            }
            Some(Response::Error { code: TOPIC_ALREADY_EXISTS, .. }) => {
                world.checker().topic_created(&plan.name);
                return true;
            }
            Some(Response::Error { code, message, .. }) => {
                world.checker().note(None, None, format!("create {} failed: {code}: {message}", plan.name));
            }
            Some(other) => panic!("a create was answered with {other:?}"),
            None => {}
        }
        pause_ms(10, 200, rng).await;
    }
    false
}

/// Deletes a topic, retrying until acknowledged (deleted or already gone).
async fn delete_topic(world: &World, client: &mut Client, rng: &mut Rng, name: &str) -> bool {
    world.checker().topic_delete_issued(name);
    for _ in 0..ADMIN_ATTEMPTS_MAX {
        world.counters.op("delete_topic");
        match client.call(Request::DeleteTopic { name: name.to_string() }).await {
            Some(Response::Deleted) | Some(Response::Error { code: UNKNOWN_TOPIC_OR_PARTITION, .. }) => {
                world.checker().topic_deleted(name);
                return true;
            }
            Some(Response::Error { code, message, .. }) => {
                world.checker().note(None, None, format!("delete {name} failed: {code}: {message}"));
            }
            Some(other) => panic!("a delete was answered with {other:?}"),
            None => {}
        }
        pause_ms(10, 200, rng).await;
    }
    false
}

/// The admin: creates the planned topics, then cycles scratch topics
/// (create, produce, read back, delete) until the workload stops.
pub async fn admin(world: Arc<World>) {
    let mut rng = Rng::fork(world.cfg.seed, "admin");
    let mut client = client(&world, "admin-client").await;
    for plan in world.cfg.topics.clone() {
        while !create_topic(&world, &mut client, &mut rng, &plan).await {
            if world.stopping() {
                return;
            }
        }
    }
    world.topics_ready.store(true, Ordering::SeqCst);
    let mut seq = 0u64;
    let mut n = 0u32;
    while world.cfg.scratch_topics && !world.stopping() {
        let plan = TopicPlan {
            name: format!("scratch{n}"),
            partitions: rng.range(1, 2) as u32,
            configs: Vec::new(),
            retention: false,
        };
        n += 1;
        world.checker().topic_planned(&plan.name, plan.partitions, false);
        if !create_topic(&world, &mut client, &mut rng, &plan).await {
            continue;
        }
        for _ in 0..rng.range(1, 4) {
            let tp = (plan.name.clone(), rng.below(u64::from(plan.partitions)) as i32);
            let count = rng.range(1, 8);
            let (batch, records) = make_batch(&world, &mut rng, ADMIN_PRODUCER, &mut seq, count);
            produce(&world, &mut client, &mut rng, &tp, -1, batch, &records).await;
            fetch_once(&world, &mut client, ADMIN_PRODUCER, &tp, 0, world.cfg.fetch_bytes_max, &mut None)
                .await;
        }
        pause_ms(0, 500, &mut rng).await;
        while !delete_topic(&world, &mut client, &mut rng, &plan.name).await {
            if world.stopping() {
                return;
            }
        }
        // A deleted topic takes no records: a success here is a violation.
        let tp = (plan.name.clone(), 0);
        let (batch, records) = make_batch(&world, &mut rng, ADMIN_PRODUCER, &mut seq, 1);
        world.checker().produce_sent(&tp, &records, -1, false);
        let request = Request::Produce { topic: tp.0.clone(), partition: 0, acks: -1, records: batch };
        world.counters.op("produce");
        if let Some(Response::Produced { base_offset, log_start_offset }) = client.call(request).await {
            let epoch = client.last_epochs();
            world.checker().produce_acked(&tp, &[records[0].0], -1, base_offset, log_start_offset, epoch);
        }
        pause_ms(0, 500, &mut rng).await;
    }
}
