//! Compacted topics end to end with librdkafka: a topic created with
//! `cleanup.policy=compact` takes keyed records (and refuses keyless ones
//! with INVALID_RECORD), its cleaner shrinks it, and a consumer reading
//! from the start gets each key's latest value at the offset it was
//! written at, and no value a later record of its key replaced.

mod server_support;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use server_support::{config, data_dir};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const KEYS: usize = 10;
const ROUNDS: usize = 30;

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_keeps_the_latest_value_of_each_key() {
    let dir = data_dir("compaction");
    let mut cfg = config(dir.path());
    cfg.topic_limits.segment_bytes_min = 0;
    cfg.cleaner_backoff_ms = 200;
    let server = ringtail_server::serve::start(cfg).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let topic = NewTopic::new("table", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "2048")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "0");
    let created = admin.create_topics([&topic], &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let described = admin
        .describe_configs([&rdkafka::admin::ResourceSpecifier::Topic("table")], &AdminOptions::new())
        .await
        .unwrap();
    let entries = &described[0].as_ref().unwrap().entries;
    let value = |name: &str| entries.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
    assert_eq!(value("cleanup.policy").as_deref(), Some("compact"));
    assert_eq!(value("min.cleanable.dirty.ratio").as_deref(), Some("0.01"));
    assert_eq!(value("delete.retention.ms").as_deref(), Some("0"));
    assert_eq!(value("max.compaction.lag.ms").as_deref(), Some(i64::MAX.to_string().as_str()));

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    // What each offset holds: (key, value; None for a tombstone).
    let mut written: BTreeMap<i64, (String, Option<String>)> = BTreeMap::new();
    let send = |key: String, value: Option<String>| {
        let producer = producer.clone();
        async move {
            let mut record = FutureRecord::to("table").partition(0).key(&key);
            if let Some(value) = &value {
                record = record.payload(value);
            }
            let delivered = producer.send(record, Duration::from_secs(20)).await.map_err(|(e, _)| e).unwrap();
            (delivered.offset, key, value)
        }
    };
    for round in 0..ROUNDS {
        for k in 0..KEYS {
            // Keys 0 and 1 are deleted half-way, then never written again.
            if k < 2 && round > ROUNDS / 2 {
                continue;
            }
            let value = if k < 2 && round == ROUNDS / 2 {
                None
            } else {
                Some(format!("k{k} round {round} {}", "x".repeat(60)))
            };
            let (offset, key, value) = send(format!("k{k}"), value).await;
            written.insert(offset, (key, value));
        }
    }
    let keyless = producer
        .send(FutureRecord::<(), _>::to("table").partition(0).payload("no key"), Duration::from_secs(20))
        .await;
    match keyless {
        Err((KafkaError::MessageProduction(code), _)) => assert_eq!(code, RDKafkaErrorCode::InvalidRecord),
        other => panic!("a keyless record on a compacted topic: {other:?}"),
    }

    let partition_dir = dir.path().join("table-0");
    let before = written.len() as u64 * 100;
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_bytes(&partition_dir) * 3 > before {
        assert!(
            Instant::now() < deadline,
            "not cleaned: {} bytes of about {before}",
            log_bytes(&partition_dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment.add_partition_offset("table", 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let last_offset = *written.keys().next_back().unwrap();
    let mut read: Vec<(i64, String, Option<String>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.last().is_none_or(|r| r.0 < last_offset) {
        assert!(Instant::now() < deadline, "read up to {:?} of {last_offset}", read.last());
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.unwrap();
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            let value = m.payload().map(|v| String::from_utf8(v.to_vec()).unwrap());
            read.push((m.offset(), key, value));
        }
    }
    assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    for (offset, key, value) in &read {
        assert_eq!(
            written.get(offset),
            Some(&(key.clone(), value.clone())),
            "offset {offset} holds what was written"
        );
    }
    let mut latest: BTreeMap<&str, (i64, &Option<String>)> = BTreeMap::new();
    for (offset, (key, value)) in &written {
        latest.insert(key, (*offset, value));
    }
    for (key, (offset, value)) in &latest {
        let found = read.iter().any(|r| r.0 == *offset);
        assert!(found || value.is_none(), "the latest value of {key} (offset {offset}) is gone");
        if value.is_none() {
            // Deleted: no value of the key may come back.
            assert!(read.iter().all(|r| &r.1 != key || r.2.is_none() || r.0 > *offset), "{key} came back");
        }
    }
    assert!(read.len() * 3 < written.len(), "{} of {} records read back", read.len(), written.len());
    drop((consumer, producer, admin));
    server.shutdown().await.unwrap();
}
