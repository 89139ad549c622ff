//! librdkafka (through the rdkafka crate) against the server: a real client
//! produces with every compression codec and with idempotence, and reads
//! everything back by assignment, as does `ringtail consume` (which
//! decompresses what librdkafka compressed);
//! and reads large batches from several partitions at once, which the
//! server sends without copying them into the response (each partition's
//! records a segment of the frame of its own).

mod server_support;

use kafka_protocol::messages::{fetch_request, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use ringtail_client::records::Batches;
use ringtail_server::cli::consume::{consume_into, ConsumeArgs, StartFrom};
use server_support::data_dir;
use std::collections::{BTreeMap, BTreeSet};
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
            // Repetitive, so that compressing pays: librdkafka sends a batch
            // uncompressed when compression would not make it smaller.
            let value = format!("value {p}/{i} {extra:?} ").repeat(20);
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

    // The batches are stored as librdkafka sent them: compressed with each
    // codec in turn.
    let mut raw = server_support::Client::connect(server.kafka_addr).await;
    let fetch = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("rd-events")))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)]),
    ]);
    let response = raw.call(11, &fetch).await;
    let stored = response.responses[0].partitions[0].records.clone().expect("records");
    let codecs: BTreeSet<u8> =
        Batches::new(&stored).map(|batch| batch.expect("whole batches").header.compression()).collect();
    assert_eq!(codecs, BTreeSet::from([0, 1, 2, 3, 4]), "codecs of the stored batches");

    // `ringtail consume --print-keys` prints the same, key TAB value.
    let args = ConsumeArgs {
        topic: "rd-events".into(),
        group: None,
        from: StartFrom::Earliest,
        count: Some(expected.len() as u64),
        partition: None,
        print_keys: true,
        bootstrap: bootstrap.clone(),
        command_config: None,
    };
    let mut out = Vec::new();
    let run = consume_into(args, &mut out, std::future::pending());
    tokio::time::timeout(DEADLINE, run).await.expect("consumed in time").expect("ringtail consume");
    let printed: Vec<(String, String)> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, value) = line.split_once('\t').expect("key TAB value");
            (key.to_owned(), value.to_owned())
        })
        .collect();
    assert_eq!(printed, expected);
    server.shutdown().await.unwrap();
}

/// A value of `len` bytes that says where it belongs, so that a byte out of
/// place anywhere in a frame shows.
fn large_value(partition: i32, i: usize, len: usize) -> Vec<u8> {
    let stamp = format!("{partition}/{i}:");
    stamp.bytes().chain((0..len).map(|n| (n * 31 + i) as u8)).take(len).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_reads_large_batches_from_several_partitions() {
    const PARTITIONS: i32 = 3;
    const PER_PARTITION: usize = 60;
    const VALUE_BYTES: usize = 20_000;
    let dir = data_dir("rdkafka-large");
    let server = server_support::start(dir.path()).await;
    let bootstrap = server.kafka_addr.to_string();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let topic = NewTopic::new("rd-large", PARTITIONS, TopicReplication::Fixed(1));
    for result in admin.create_topics([&topic], &AdminOptions::new()).await.unwrap() {
        result.unwrap_or_else(|(name, e)| panic!("creating {name}: {e}"));
    }
    // Batches of many records, so that each partition answers with far
    // more than the encoder copies inline.
    let producer = producer(&bootstrap, &[("linger.ms", "20"), ("batch.size", "1000000")]);
    let mut pending = Vec::new();
    for i in 0..PER_PARTITION {
        for partition in 0..PARTITIONS {
            let value = large_value(partition, i, VALUE_BYTES);
            let record = FutureRecord::<(), _>::to("rd-large").payload(&value).partition(partition);
            pending.push(producer.send_result(record).unwrap());
        }
    }
    for delivery in pending {
        delivery.await.unwrap().unwrap_or_else(|(e, _)| panic!("produce failed: {e}"));
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "ringtail-test-large")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        // librdkafka checks each batch's CRC only when asked.
        .set("check.crcs", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset("rd-large", partition, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let received = tokio::task::spawn_blocking(move || {
        let mut received: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
        let started = Instant::now();
        while received.values().map(Vec::len).sum::<usize>() < PER_PARTITION * PARTITIONS as usize
            && started.elapsed() < DEADLINE
        {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let values = received.entry(message.partition()).or_default();
                    assert_eq!(message.offset(), values.len() as i64);
                    values.push(message.payload().unwrap().to_vec());
                }
                Some(Err(e)) => panic!("consume failed: {e}"),
                None => {}
            }
        }
        received
    })
    .await
    .unwrap();
    for partition in 0..PARTITIONS {
        let values = received.get(&partition).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(values.len(), PER_PARTITION, "partition {partition}");
        for (i, value) in values.iter().enumerate() {
            assert!(*value == large_value(partition, i, VALUE_BYTES), "partition {partition} record {i}");
        }
    }
    server.shutdown().await.unwrap();
}
