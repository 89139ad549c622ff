//! Produce and Fetch over a real socket, spoken with kafka-protocol's client
//! codec against an in-process server, with the offset lookups around them
//! (ListOffsets, OffsetForLeaderEpoch) and InitProducerId.

mod server_api_support;
mod server_support;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;
use server_api_support::{create_topic, name, s};
use server_support::{batch, compressed_batch, data_dir, start, Client};
use std::time::{Duration, Instant};

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records)),
        ]),
    ])
}

async fn produce(
    client: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let response = client.call(version, &produce_request(topic, partition, records, -1)).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(
            vec![fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)],
        )])
}

async fn fetch(client: &mut Client, version: i16, topic: &str, offset: i64) -> fetch_response::PartitionData {
    let response = client.call(version, &fetch_request(topic, 0, offset, 0, 0)).await;
    assert_eq!(response.error_code, 0);
    response.responses[0].partitions[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_produce_fetch_round_trips_batches_byte_for_byte() {
    let dir = data_dir("round-trip");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "events", 1).await;
    let plain = batch(3, "plain");
    let compressed = [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        .map(|c| compressed_batch(2, c));
    assert_eq!(produce(&mut client, 9, "events", 0, plain.clone()).await, (0, 0));
    let mut next = 3;
    for b in &compressed {
        assert_eq!(produce(&mut client, 9, "events", 0, b.clone()).await, (0, next));
        next += 2;
    }
    let p = fetch(&mut client, 12, "events", 0).await;
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 11);
    assert_eq!(p.last_stable_offset, 11);
    assert_eq!(p.log_start_offset, 0);
    let records = p.records.unwrap();
    // The stored batches are those sent, with only the base offset (outside
    // the CRC) rewritten.
    assert_eq!(&records[..plain.len()], &plain[..]);
    let mut at = plain.len();
    let mut base = 3i64;
    for b in &compressed {
        let stored = &records[at..at + b.len()];
        assert_eq!(&stored[..8], &base.to_be_bytes());
        assert_eq!(&stored[8..], &b[8..]);
        at += b.len();
        base += 2;
    }
    assert_eq!(at, records.len());
    // From the middle: whole batches from the one holding the offset.
    let p = fetch(&mut client, 4, "events", 4).await;
    let records = p.records.unwrap();
    assert_eq!(records.len(), at - plain.len());
    assert_eq!(&records[8..compressed[0].len()], &compressed[0][8..]);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_produce_and_fetch_version_round_trips() {
    let dir = data_dir("versions");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "v", 1).await;
    let mut offset = 0;
    for version in 3..=11 {
        let (error, base) = produce(&mut client, version, "v", 0, batch(1, &format!("v{version}"))).await;
        assert_eq!((error, base), (0, offset), "produce v{version}");
        offset += 1;
    }
    for version in 4..=12 {
        let p = fetch(&mut client, version, "v", 0).await;
        assert_eq!(p.error_code, 0, "fetch v{version}");
        assert_eq!(p.high_watermark, offset, "fetch v{version}");
        assert!(!p.records.unwrap().is_empty(), "fetch v{version}");
        if version >= 5 {
            assert_eq!(p.log_start_offset, 0);
        }
    }
    for version in 0..=12 {
        let request = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name("v"))),
        ]));
        let response = client.call(version, &request).await;
        assert_eq!(response.topics[0].error_code, 0, "metadata v{version}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_errors_are_per_partition() {
    let dir = data_dir("produce-errors");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "p", 1).await;
    assert_eq!(
        produce(&mut client, 9, "p", 5, batch(1, "x")).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce(&mut client, 9, "nope", 0, batch(1, "x")).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let mut corrupt = batch(1, "x").to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut client, 9, "p", 0, Bytes::from(corrupt)).await.0,
        ResponseError::CorruptMessage.code()
    );
    let bad_acks = client.call(9, &produce_request("p", 0, batch(1, "x"), 2)).await;
    assert_eq!(
        bad_acks.responses[0].partition_responses[0].error_code,
        ResponseError::InvalidRequiredAcks.code()
    );
    // Nothing of the above was stored.
    assert_eq!(fetch(&mut client, 12, "p", 0).await.high_watermark, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_gets_no_response_and_a_failure_closes_the_connection() {
    let dir = data_dir("acks-zero");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "fire", 1).await;
    client.send(9, &produce_request("fire", 0, batch(2, "a"), 0)).await;
    // The next response on the connection is the ApiVersions', not one for
    // the produce.
    let correlation_id = client.send(3, &ApiVersionsRequest::default()).await;
    let response = client.receive::<ApiVersionsRequest>(3, correlation_id).await;
    assert_eq!(response.error_code, 0);
    assert_eq!(fetch(&mut client, 12, "fire", 0).await.high_watermark, 2);
    client.send(9, &produce_request("missing", 0, batch(1, "a"), 0)).await;
    assert!(client.is_closed_by_server().await);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_produces_append_in_request_order() {
    let dir = data_dir("pipelined");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "ordered", 1).await;
    const REQUESTS: i64 = 64;
    let mut ids = Vec::new();
    for i in 0..REQUESTS {
        ids.push(client.send(9, &produce_request("ordered", 0, batch(1, &format!("m{i}")), -1)).await);
    }
    for (i, id) in ids.into_iter().enumerate() {
        let response = client.receive::<ProduceRequest>(9, id).await;
        let p = &response.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i as i64));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_long_polls_until_data_or_timeout() {
    let dir = data_dir("long-poll");
    let server = start(dir.path()).await;
    let mut consumer = Client::connect(server.kafka_addr).await;
    let mut producer = Client::connect(server.kafka_addr).await;
    create_topic(&mut producer, "poll", 1).await;
    // Nothing arrives: the fetch waits max_wait_ms, then answers empty.
    let started = Instant::now();
    let response = consumer.call(12, &fetch_request("poll", 0, 0, 300, 1)).await;
    assert!(started.elapsed() >= Duration::from_millis(280), "{:?}", started.elapsed());
    assert!(response.responses[0].partitions[0].records.as_ref().unwrap().is_empty());
    // Data arrives during the wait: the fetch answers before its timeout.
    let started = Instant::now();
    let id = consumer.send(12, &fetch_request("poll", 0, 0, 10_000, 1)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(produce(&mut producer, 9, "poll", 0, batch(1, "late")).await, (0, 0));
    let response = consumer.receive::<FetchRequest>(12, id).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(response.responses[0].partitions[0].high_watermark, 1);
    assert!(!response.responses[0].partitions[0].records.as_ref().unwrap().is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_out_of_range_and_byte_limits() {
    let dir = data_dir("fetch-range");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "r", 2).await;
    for i in 0..3 {
        produce(&mut client, 9, "r", 0, batch(10, &format!("b{i}"))).await;
        produce(&mut client, 9, "r", 1, batch(10, &format!("b{i}"))).await;
    }
    for offset in [-1, 31, 1000] {
        let p = fetch(&mut client, 12, "r", offset).await;
        assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code(), "offset {offset}");
    }
    // At the end: empty, no error.
    let p = fetch(&mut client, 12, "r", 30).await;
    assert_eq!((p.error_code, p.records.unwrap().len()), (0, 0));
    // A 1-byte partition limit still returns the first batch whole; a
    // second partition past the request's budget gets nothing.
    let one_batch = batch(10, "b0").len();
    let mut request = fetch_request("r", 0, 0, 0, 0).with_max_bytes(1);
    let partition = request.topics[0].partitions[0].clone().with_partition_max_bytes(1);
    request.topics[0].partitions = vec![partition.clone(), partition.with_partition(1)];
    let response = client.call(12, &request).await;
    let parts = &response.responses[0].partitions;
    assert_eq!(parts[0].records.as_ref().unwrap().len(), one_batch);
    assert_eq!(parts[1].records.as_ref().unwrap().len(), 0);
    assert_eq!(parts[1].high_watermark, 30);

    // Partition limits within the request's: the partitions are read
    // together, and answer what reading them in turn would. The first
    // batch of partition 0 overshoots its 1-byte limit; partition 1 keeps
    // the whole batches that fit in what is left.
    let two_limits = |first: usize, second: usize, max: usize| {
        let mut request = fetch_request("r", 0, 0, 0, 0).with_max_bytes(max as i32);
        let partition = request.topics[0].partitions[0].clone();
        request.topics[0].partitions = vec![
            partition.clone().with_partition_max_bytes(first as i32),
            partition.with_partition(1).with_partition_max_bytes(second as i32),
        ];
        request
    };
    let records = |response: &FetchResponse| -> Vec<usize> {
        response.responses[0].partitions.iter().map(|p| p.records.as_ref().map_or(0, |r| r.len())).collect()
    };
    let cases = [
        ((1, 1, 2), [one_batch, 0]),
        ((1, 2 * one_batch, 1 + 2 * one_batch), [one_batch, one_batch]),
        ((1, 3 * one_batch, 1 + 3 * one_batch), [one_batch, 2 * one_batch]),
        ((one_batch, one_batch, 2 * one_batch), [one_batch, one_batch]),
    ];
    for ((first, second, max), expected) in cases {
        let response = client.call(12, &two_limits(first, second, max)).await;
        assert_eq!(records(&response), expected, "limits {first}, {second} within {max}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_earliest_latest_and_by_time() {
    let dir = data_dir("list-offsets");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "l", 1).await;
    produce(&mut client, 9, "l", 0, batch(5, "a")).await;
    produce(&mut client, 9, "l", 0, batch(5, "b")).await;
    // Timestamps are 1_700_000_000_000 + the offset within each batch, so
    // this third batch (offsets 10-17) holds the largest, at +7.
    produce(&mut client, 9, "l", 0, batch(8, "c")).await;
    let list = |timestamp: i64| {
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default().with_name(name("l")).with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp),
            ]),
        ])
    };
    for version in 1..=9 {
        let answer = |r: ListOffsetsResponse| {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.offset)
        };
        assert_eq!(answer(client.call(version, &list(-2)).await), (0, 0), "v{version}");
        assert_eq!(answer(client.call(version, &list(-1)).await), (0, 18), "v{version}");
        // The first record at or after the time, inside its batch.
        assert_eq!(answer(client.call(version, &list(1_700_000_000_003)).await), (0, 3), "v{version}");
        assert_eq!(answer(client.call(version, &list(1_700_000_000_006)).await), (0, 16), "v{version}");
        assert_eq!(answer(client.call(version, &list(1_800_000_000_000)).await), (0, -1), "v{version}");
    }
    let largest = client.call(7, &list(-3)).await;
    let p = &largest.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.timestamp, p.leader_epoch), (0, 17, 1_700_000_000_007, 0));
    // Tiered storage's (v8, v9): all of the log is local, none is tiered.
    let local = client.call(8, &list(-4)).await;
    assert_eq!((local.topics[0].partitions[0].error_code, local.topics[0].partitions[0].offset), (0, 0));
    let tiered = client.call(9, &list(-5)).await;
    assert_eq!((tiered.topics[0].partitions[0].error_code, tiered.topics[0].partitions[0].offset), (0, -1));
    let unknown = client
        .call(
            7,
            &list(-1).with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(name("absent"))
                .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()])]),
        )
        .await;
    assert_eq!(unknown.topics[0].partitions[0].error_code, ResponseError::UnknownTopicOrPartition.code());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_ids_and_retries() {
    let dir = data_dir("idempotent");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "idem", 1).await;
    let mut ids = Vec::new();
    for version in 0..=4 {
        let response =
            client.call(version, &InitProducerIdRequest::default().with_transactional_id(None)).await;
        assert_eq!(response.error_code, 0);
        ids.push(response.producer_id.0);
    }
    let mut sorted = ids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "ids repeat: {ids:?}");
    let transactional = client
        .call(4, &InitProducerIdRequest::default().with_transactional_id(Some(TransactionalId(s("tx")))))
        .await;
    assert_ne!(transactional.error_code, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_for_leader_epoch_answers_the_current_epoch() {
    let dir = data_dir("leader-epoch");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "e", 1).await;
    produce(&mut client, 9, "e", 0, batch(4, "x")).await;
    let request = |epoch: i32, current: i32| {
        OffsetForLeaderEpochRequest::default().with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(name("e"))
                .with_partitions(vec![offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch)]),
        ])
    };
    for version in 2..=4 {
        let answer = |r: OffsetForLeaderEpochResponse| {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.leader_epoch, p.end_offset)
        };
        assert_eq!(answer(client.call(version, &request(0, -1)).await), (0, 0, 4));
        assert_eq!(answer(client.call(version, &request(5, -1)).await), (0, -1, -1));
        assert_eq!(
            answer(client.call(version, &request(0, 3)).await).0,
            ResponseError::UnknownLeaderEpoch.code()
        );
    }
    server.shutdown().await.unwrap();
}

/// A partition named several times in one fetch is read and answered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_named_twice_is_answered_once() {
    let dir = data_dir("fetch-twice");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "twice", 1).await;
    assert_eq!(produce(&mut client, 9, "twice", 0, batch(3, "x")).await.0, 0);
    let mut request = fetch_request("twice", 0, 0, 0, 0);
    let partition = request.topics[0].partitions[0].clone();
    request.topics[0].partitions = vec![partition.clone(); 50];
    request.topics.push(request.topics[0].clone());
    let response = client.call(12, &request).await;
    let answered: Vec<usize> = response.responses.iter().map(|t| t.partitions.len()).collect();
    assert_eq!(answered, [1], "{answered:?}");
    let records = response.responses[0].partitions[0].records.as_ref().expect("records");
    assert_eq!(records, &batch(3, "x"), "the records once, not 100 times");
    server.shutdown().await.unwrap();
}
