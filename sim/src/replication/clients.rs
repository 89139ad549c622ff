//! The replication scenario's clients, on a node of their own: an admin
//! creating the seed's topics, producers and consumers through
//! `ringtail-client` bootstrapped from every member, and the verifier that
//! reads every partition whole after healing. Each request is one attempt
//! under a timeout; after an error the client refreshes its metadata, as a
//! Kafka client does, so it finds a partition's new leader.

use super::{ReplicationWorld, TopicPlan};
use crate::checker::Invariant;
use crate::quorum::sleep_ms;
use crate::replicationcheck::Tp;
use crate::rng::Rng;
use crate::world::{sim_elapsed_ms, SimClock};
use madsim::time::timeout;
use ringtail_client::error::code;
use ringtail_client::{
    build_batch, Acks, Client, ClientConfig, FetchOptions, FetchPosition, NewTopic, PartitionFetch,
    ProducerRecord,
};
use ringtail_engine::clock::Clock;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long the verifier may take to write to and read every partition.
const VERIFY_BOUND_MS: u64 = 60_000;

/// Creates the topics, then runs the producers and consumers until quiet.
pub async fn run(world: Arc<ReplicationWorld>) {
    for index in 0..world.plan.producers {
        madsim::task::spawn(producer(world.clone(), index));
    }
    for index in 0..world.plan.consumers {
        madsim::task::spawn(consumer(world.clone(), index));
    }
    admin(world).await;
}

async fn connect(world: &ReplicationWorld, client_id: String) -> Option<Client> {
    let config = ClientConfig {
        client_id,
        connect_timeout: Duration::from_millis(1_000),
        request_timeout: Duration::from_millis(5_000),
        // One attempt per request: the caller decides, the checker sees
        // every outcome.
        attempts_max: 1,
        ..ClientConfig::default()
    };
    timeout(Duration::from_millis(3_000), Client::connect(&world.bootstrap(), config)).await.ok()?.ok()
}

/// A client, connected again and again until it is (or the run is quiet).
async fn connected(world: &ReplicationWorld, client_id: &str) -> Option<Client> {
    while !world.quiet.load(Ordering::SeqCst) {
        if let Some(client) = connect(world, client_id.to_owned()).await {
            return Some(client);
        }
        sleep_ms(200).await;
    }
    None
}

/// After a failed request: learn where partitions are now.
async fn refresh(client: &Client, topic: &str) {
    let _ = timeout(Duration::from_millis(1_000), client.fetch_metadata(Some(&[topic]))).await;
}

async fn admin(world: Arc<ReplicationWorld>) {
    let Some(client) = connected(&world, "admin").await else { return };
    for topic in world.plan.topics.clone() {
        let new = NewTopic {
            name: topic.name.clone(),
            partitions: Some(topic.partitions),
            replication_factor: Some(topic.replication_factor),
            configs: vec![("min.insync.replicas".into(), topic.min_insync.to_string())],
        };
        while !world.quiet.load(Ordering::SeqCst) {
            world.quorum.counters.op("create_topic");
            match timeout(Duration::from_millis(5_000), client.create_topic(&new)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.kafka_code() == Some(code::TOPIC_ALREADY_EXISTS) => {}
                _ => {
                    sleep_ms(200).await;
                    continue;
                }
            }
            world.note(format!("admin: created {} ({topic:?})", topic.name));
            world.topic_created(topic);
            break;
        }
    }
}

async fn producer(world: Arc<ReplicationWorld>, index: usize) {
    let mut rng = Rng::fork(world.plan.seed, &format!("replication-producer-{index}"));
    let Some(client) = connected(&world, &format!("producer-{index}")).await else { return };
    let mut sent = 0u64;
    while !world.quiet.load(Ordering::SeqCst) && !world.failed() {
        let topics = world.created();
        if topics.is_empty() {
            sleep_ms(100).await;
            continue;
        }
        let topic = rng.pick(&topics).clone();
        let tp: Tp = (topic.name.clone(), rng.below(topic.partitions as u64) as i32);
        let values: Vec<String> = (0..rng.range(1, 5))
            .map(|_| {
                sent += 1;
                format!("p{index}-{sent}")
            })
            .collect();
        {
            let mut check = world.check();
            for v in &values {
                check.sent(&tp, v);
            }
        }
        let records: Vec<ProducerRecord> =
            values.iter().map(|v| ProducerRecord { key: None, value: Some(v.clone().into()) }).collect();
        let acks = if rng.chance(world.plan.acks_all) { Acks::All } else { Acks::Leader };
        let (lo, hi) = world.plan.request_timeout_ms;
        let limit = Duration::from_millis(rng.range(lo, hi));
        world.quorum.counters.op(if acks == Acks::All { "produce_all" } else { "produce_1" });
        match timeout(limit, client.produce_batch(&tp.0, tp.1, batch(&records), acks)).await {
            Ok(Ok(ack)) if acks == Acks::All => {
                let found = world.check().acked(&tp, ack.base_offset, &values);
                world.judge(found);
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                refresh(&client, &tp.0).await;
                sleep_ms(rng.range(20, 200)).await;
            }
            // An unknown outcome: the records may or may not be there.
            Err(_) => refresh(&client, &tp.0).await,
        }
        sleep_ms(rng.range(0, 30)).await;
    }
}

async fn consumer(world: Arc<ReplicationWorld>, index: usize) {
    let mut rng = Rng::fork(world.plan.seed, &format!("replication-consumer-{index}"));
    let Some(client) = connected(&world, &format!("consumer-{index}")).await else { return };
    let mut positions: BTreeMap<Tp, i64> = BTreeMap::new();
    while !world.quiet.load(Ordering::SeqCst) && !world.failed() {
        let topics = world.created();
        if topics.is_empty() {
            sleep_ms(100).await;
            continue;
        }
        let topic = rng.pick(&topics).clone();
        let options = FetchOptions {
            max_wait: Duration::from_millis(rng.range(0, 200)),
            min_bytes: 1,
            max_bytes: 1 << 20,
            partition_max_bytes: *rng.pick(&[256, 4_096, 1 << 20]),
        };
        let (lo, hi) = world.plan.request_timeout_ms;
        let limit = Duration::from_millis(rng.range(lo, hi));
        world.quorum.counters.op("fetch");
        if !fetch_once(&world, &client, index, &topic, &mut positions, &options, limit).await {
            refresh(&client, &topic.name).await;
            sleep_ms(rng.range(20, 200)).await;
        }
    }
}

/// One fetch of every partition of `topic` from the consumer's positions,
/// judged; false if it failed.
async fn fetch_once(
    world: &ReplicationWorld,
    client: &Client,
    consumer: usize,
    topic: &TopicPlan,
    positions: &mut BTreeMap<Tp, i64>,
    options: &FetchOptions,
    limit: Duration,
) -> bool {
    let asked: Vec<FetchPosition> = (0..topic.partitions)
        .map(|p| FetchPosition {
            partition: p,
            offset: positions.get(&(topic.name.clone(), p)).copied().unwrap_or(0),
        })
        .collect();
    let fetched = match timeout(limit, client.fetch(&topic.name, &asked, options)).await {
        Ok(Ok(fetched)) => fetched,
        Ok(Err(e)) => {
            if e.kafka_code() == Some(code::OFFSET_OUT_OF_RANGE) {
                world.judge(Some((
                    Invariant::ReadStaysRead,
                    format!("consumer {consumer}: {} no longer reaches offsets it read: {e}", topic.name),
                )));
            }
            return false;
        }
        Err(_) => return false,
    };
    for (f, position) in fetched.iter().zip(&asked) {
        if f.high_watermark < 0 {
            continue; // the partition's leader moved: nothing was said
        }
        let tp: Tp = (topic.name.clone(), f.partition);
        let records = records_of(f);
        let found = world.check().read(consumer, &tp, position.offset, &records, f.high_watermark);
        world.judge(found);
        positions.insert(tp, f.next_offset.max(position.offset));
    }
    true
}

/// One batch of `records`, stamped with the brokers' clock (the client's
/// own stamps the host's time, which time retention would judge expired).
fn batch(records: &[ProducerRecord]) -> bytes::Bytes {
    build_batch(records, SimClock.now_ms())
}

/// A fetch's records as (offset, value).
fn records_of(f: &PartitionFetch) -> Vec<(i64, String)> {
    let value = |v: &Option<bytes::Bytes>| {
        v.as_ref().map_or_else(String::new, |v| String::from_utf8_lossy(v).into_owned())
    };
    f.records.iter().map(|r| (r.offset, value(&r.value))).collect()
}

/// After healing: an acks=all record into every partition, then every
/// partition read whole by a new consumer and held to what was
/// acknowledged and read before (RL, 1, 4).
pub async fn verify(world: Arc<ReplicationWorld>, when: String) {
    let start = sim_elapsed_ms();
    let deadline = start + VERIFY_BOUND_MS;
    let consumer = 1_000 + (start / 1_000) as usize;
    let Some(client) = connect(&world, format!("verifier-{consumer}")).await else {
        return world
            .judge(Some((Invariant::ReplicationLiveness, format!("{when}: the verifier cannot connect"))));
    };
    for tp in world.partitions() {
        // A fresh value per attempt: an attempt that timed out may still
        // have been appended, and a retried value would then appear twice
        // (as Kafka's non-idempotent producers may), which 2 would flag.
        for attempt in 0.. {
            let value = format!("verify-{consumer}-{}-{}-{attempt}", tp.0, tp.1);
            world.check().sent(&tp, &value);
            let record = [ProducerRecord { key: None, value: Some(value.clone().into()) }];
            match timeout(
                Duration::from_millis(2_000),
                client.produce_batch(&tp.0, tp.1, batch(&record), Acks::All),
            )
            .await
            {
                Ok(Ok(ack)) => {
                    let found = world.check().acked(&tp, ack.base_offset, &[value]);
                    world.judge(found);
                    break;
                }
                outcome => {
                    if sim_elapsed_ms() > deadline {
                        return world.judge(Some((
                            Invariant::ReplicationLiveness,
                            format!("{when}: {tp:?} takes no acks=all produce within {VERIFY_BOUND_MS} ms: {outcome:?}"),
                        )));
                    }
                    refresh(&client, &tp.0).await;
                    sleep_ms(100).await;
                }
            }
        }
        let mut log = BTreeMap::new();
        let mut offset = 0;
        let options = FetchOptions { max_wait: Duration::ZERO, ..FetchOptions::default() };
        loop {
            let asked = [FetchPosition { partition: tp.1, offset }];
            match timeout(Duration::from_millis(2_000), client.fetch(&tp.0, &asked, &options)).await {
                Ok(Ok(fetched)) if fetched.first().is_some_and(|f| f.high_watermark >= 0) => {
                    let f = &fetched[0];
                    let records = records_of(f);
                    let found = world.check().read(consumer, &tp, offset, &records, f.high_watermark);
                    world.judge(found);
                    log.extend(records);
                    offset = f.next_offset.max(offset);
                    if offset >= f.high_watermark {
                        break;
                    }
                }
                outcome => {
                    if sim_elapsed_ms() > deadline {
                        return world.judge(Some((
                            Invariant::ReplicationLiveness,
                            format!("{when}: {tp:?} not readable to its end within {VERIFY_BOUND_MS} ms: {outcome:?}"),
                        )));
                    }
                    refresh(&client, &tp.0).await;
                    sleep_ms(100).await;
                }
            }
        }
        let found = world.check().final_log(&tp, &log);
        world.judge(found);
        if world.failed() {
            return;
        }
    }
    world.note(format!(
        "{when}: every partition written and read whole in {} ms; {} acks=all records held",
        sim_elapsed_ms() - start,
        world.check().acked_count()
    ));
}
