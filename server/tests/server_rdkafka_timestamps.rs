//! Timestamps as librdkafka sees them: a seek by time lands on the record,
//! not on the batch around it; LogAppendTime topics carry the broker's
//! time; CreateTime records too far in the future are refused.

mod server_support;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use server_support::data_dir;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn create_topics(bootstrap: &str, topics: &[(&str, &[(&str, &str)])]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, configs)| {
            configs.iter().fold(NewTopic::new(name, 1, TopicReplication::Fixed(1)), |t, (k, v)| t.set(k, v))
        })
        .collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await.unwrap() {
        result.unwrap();
    }
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "timestamps")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_timestamps_seek_and_log_append_time() {
    let dir = data_dir("rdkafka-timestamps");
    let server = server_support::start(dir.path()).await;
    let bootstrap = server.kafka_addr.to_string();
    create_topics(
        &bootstrap,
        &[("created", &[]), ("appended", &[("message.timestamp.type", "LogAppendTime")])],
    )
    .await;
    // A long linger, sent all at once: the 20 records go in one or two
    // batches, which a batch-granular seek would answer too early.
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("linger.ms", "200").create().unwrap();
    let base = now_ms() - 60_000;
    // `send_result` queues at once (`send` would wait for each delivery).
    let queued: Vec<_> = (0..20i64)
        .map(|i| {
            let value = format!("r{i}");
            let record = FutureRecord::<(), _>::to("created").payload(&value).timestamp(base + i * 1000);
            producer.send_result(record).map_err(|(e, _)| e).unwrap()
        })
        .collect();
    for (i, delivery) in queued.into_iter().enumerate() {
        assert_eq!(delivery.await.unwrap().map_err(|(e, _)| e).unwrap().offset, i as i64);
    }

    let c = consumer(&bootstrap);
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition_offset("created", 0, Offset::Offset(base + 7_500)).unwrap();
    let found = c.offsets_for_times(wanted, TIMEOUT).unwrap();
    let offset = found.find_partition("created", 0).unwrap().offset();
    assert_eq!(offset, Offset::Offset(8), "the first record at or after the time");

    // An hour past the broker's clock is message.timestamp.after.max.ms.
    let future = FutureRecord::<(), _>::to("created").payload("late").timestamp(now_ms() + 2 * 3_600_000);
    match producer.send(future, TIMEOUT).await {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp), _)) => {}
        other => panic!("a record two hours ahead: {other:?}"),
    }

    // LogAppendTime: whatever the producer says, consumers read the broker's time.
    let before = now_ms();
    let old = FutureRecord::<(), _>::to("appended").payload("old").timestamp(1_000);
    producer.send(old, TIMEOUT).await.map_err(|(e, _)| e).unwrap();
    let after = now_ms();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset("appended", 0, Offset::Beginning).unwrap();
    c.assign(&assignment).unwrap();
    let timestamp = tokio::task::spawn_blocking(move || loop {
        if let Some(message) = c.poll(Duration::from_millis(200)) {
            break message.unwrap().timestamp();
        }
    })
    .await
    .unwrap();
    match timestamp {
        Timestamp::LogAppendTime(t) => {
            assert!((before..=after).contains(&t), "{t} not in {before}..={after}")
        }
        other => panic!("expected the broker's append time, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}
