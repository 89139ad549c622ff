//! Client quotas against a running server: set and described with Kafka's
//! AlterClientQuotas and DescribeClientQuotas, and a user over its produce
//! or fetch byte rate is answered with `throttle_time_ms` after at least
//! that long, while a user without a quota is not held back.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use server_support::{batch, data_dir, http, start, Client};
use std::time::{Duration, Instant};

const INVALID_REQUEST: i16 = 42;
/// Bytes per second for ANONYMOUS, the plaintext listener's user.
const RATE: f64 = 10_000.0;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn set_quota(user: Option<&str>, key: &str, value: f64) -> alter_client_quotas_request::EntryData {
    alter_client_quotas_request::EntryData::default()
        .with_entity(vec![alter_client_quotas_request::EntityData::default()
            .with_entity_type(s("user"))
            .with_entity_name(user.map(s))])
        .with_ops(vec![alter_client_quotas_request::OpData::default().with_key(s(key)).with_value(value)])
}

fn produce(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(TopicName(s(topic))).with_partition_data(
            vec![produce_request::PartitionProduceData::default().with_index(0).with_records(Some(records))],
        ),
    ])
}

use bytes::Bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_its_quota_is_held_back_and_others_are_not() {
    let dir = data_dir("quotas");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("metered")))
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);

    // Without a quota: never held back.
    let big = batch(10, &"x".repeat(1000));
    for _ in 0..15 {
        assert_eq!(client.call(9, &produce("metered", big.clone())).await.throttle_time_ms, 0);
    }

    let quotas = AlterClientQuotasRequest::default().with_entries(vec![
        set_quota(Some("ANONYMOUS"), "producer_byte_rate", RATE),
        set_quota(Some("ANONYMOUS"), "consumer_byte_rate", RATE),
        set_quota(None, "producer_byte_rate", 1e9),
    ]);
    let altered = client.call(1, &quotas).await;
    assert!(altered.entries.iter().all(|e| e.error_code == 0), "{altered:?}");
    let client_id = alter_client_quotas_request::EntryData::default()
        .with_entity(vec![alter_client_quotas_request::EntityData::default()
            .with_entity_type(s("client-id"))
            .with_entity_name(Some(s("app")))])
        .with_ops(vec![alter_client_quotas_request::OpData::default()
            .with_key(s("producer_byte_rate"))
            .with_value(1.0)]);
    let refused = client.call(1, &AlterClientQuotasRequest::default().with_entries(vec![client_id])).await;
    assert_eq!(refused.entries[0].error_code, INVALID_REQUEST);
    let described = client.call(1, &DescribeClientQuotasRequest::default()).await;
    let entries = described.entries.unwrap();
    let anonymous = entries
        .iter()
        .find(|e| e.entity[0].entity_name.as_deref() == Some("ANONYMOUS"))
        .expect("ANONYMOUS has quotas");
    assert_eq!(anonymous.values.len(), 2);
    assert!(entries.iter().any(|e| e.entity[0].entity_name.is_none()), "the default is listed");

    // Produce past the quota (the rate is over Kafka's padded 10 s
    // window): the first answer over it says how long it was held, and was.
    let mut throttled = None;
    for sent in 0..40 {
        let started = Instant::now();
        let answer = client.call(9, &produce("metered", big.clone())).await;
        assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
        if answer.throttle_time_ms > 0 {
            throttled = Some((sent, answer.throttle_time_ms, started.elapsed()));
            break;
        }
    }
    let (sent, throttle_ms, took) = throttled.expect("a quota of 10 KB/s is exceeded by 400 KB");
    assert!(sent >= 8, "nothing is held back within the first 100 KB, held at {sent}");
    assert!(throttle_ms <= 11_000, "at most the window: {throttle_ms}");
    assert!(took >= Duration::from_millis(throttle_ms as u64), "held {took:?} for {throttle_ms} ms");

    // Fetching it all back is over the fetch quota too.
    let fetch = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(4 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(TopicName(s("metered"))).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(4 << 20),
        ]),
    ]);
    let mut fetched_bytes = 0;
    let (throttle_ms, took) = loop {
        let started = Instant::now();
        let fetched = client.call(11, &fetch).await;
        fetched_bytes += fetched.responses[0].partitions[0].records.as_ref().map_or(0, |r| r.len());
        if fetched.throttle_time_ms > 0 {
            break (fetched.throttle_time_ms, started.elapsed());
        }
        assert!(fetched_bytes < 400_000, "fetched {fetched_bytes} bytes unthrottled");
    };
    assert!(fetched_bytes > 100_000, "nothing is held back within the first 100 KB: {fetched_bytes}");
    assert!(took >= Duration::from_millis(throttle_ms as u64), "held {took:?} for {throttle_ms} ms");

    let metrics = http(server.metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(metrics.contains("ringtail_quota_throttled_requests_total 2\n"), "{metrics}");
    server.shutdown().await.unwrap();
}
