//! librdkafka (through the rdkafka crate) against the server: a real client
//! produces with every compression codec and with idempotence, and reads
//! everything back by assignment (consumer groups are not implemented yet).

mod server_support;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use server_support::data_dir;
use std::time::{Duration, Instant};

const MESSAGES_PER_PRODUCER: usize = 50;
const DEADLINE: Duration = Duration::from_secs(60);

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("acks", "all").set("message.timeout.ms", "30000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_produces_and_consumes_with_every_codec() {
    let dir = data_dir("rdkafka");
    let server = server_support::start(dir.path()).await;
    let bootstrap = server.kafka_addr.to_string();
    let settings: [&[(&str, &str)]; 6] = [
        &[("compression.type", "none")],
        &[("compression.type", "gzip")],
        &[("compression.type", "snappy")],
        &[("compression.type", "lz4")],
        &[("compression.type", "zstd")],
        &[("enable.idempotence", "true"), ("compression.type", "zstd")],
    ];
    let mut expected = Vec::new();
    for (p, extra) in settings.iter().enumerate() {
        let producer = producer(&bootstrap, extra);
        for i in 0..MESSAGES_PER_PRODUCER {
            let key = format!("key-{p}-{i}");
            let value = format!("value {p}/{i} {extra:?}");
            let record = FutureRecord::to("rd-events").key(&key).payload(&value).partition(0);
            let delivered = producer.send(record, Duration::from_secs(30)).await;
            let (partition, offset) = match delivered {
                Ok(delivery) => (delivery.partition, delivery.offset),
                Err((e, _)) => panic!("produce with {extra:?} failed: {e}"),
            };
            assert_eq!(partition, 0);
            assert_eq!(offset, expected.len() as i64, "{extra:?}");
            expected.push((key, value));
        }
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        // librdkafka refuses assign() without a group id; with an explicit
        // start offset nothing is asked of the (unimplemented) coordinator.
        .set("group.id", "ringtail-test")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset("rd-events", 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let received = tokio::task::spawn_blocking(move || {
        let mut received = Vec::new();
        let started = Instant::now();
        while received.len() < MESSAGES_PER_PRODUCER * settings.len() && started.elapsed() < DEADLINE {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
                    let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                    assert_eq!(message.offset(), received.len() as i64);
                    received.push((key, value));
                }
                Some(Err(e)) => panic!("consume failed: {e}"),
                None => {}
            }
        }
        received
    })
    .await
    .unwrap();
    assert_eq!(received, expected);
    server.shutdown().await.unwrap();
}
