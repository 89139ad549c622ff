//! Lifecycle: data survives a restart, a data directory has one owner, and
//! shutdown answers in-flight requests before it closes the broker.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use ringtail_engine::log::OpenError;
use ringtail_server::serve::{self, ServeError};
use server_support::{batch, config, data_dir, start, Client};
use std::time::{Duration, Instant};

fn name(value: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(value))
}

fn produce_request(partition: i32, records: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name("durable")).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records)),
        ]),
    ])
}

fn fetch_request(partition: i32, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default().with_topic(name("durable")).with_partitions(
            vec![fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_partition_max_bytes(1 << 20)],
        )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_topics_ids_and_records() {
    let dir = data_dir("restart");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name("durable"))
            .with_num_partitions(3)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
    let mut sent = Vec::new();
    for partition in 0..3 {
        let records = batch(4 + i64::from(partition), "before");
        let response = client.call(9, &produce_request(partition, records.clone())).await;
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        sent.push(records);
    }
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    let topic_id = metadata.topics[0].topic_id;
    drop(client);
    server.shutdown().await.unwrap();

    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(metadata.topics.len(), 1);
    assert_eq!(metadata.topics[0].topic_id, topic_id);
    assert_eq!(metadata.topics[0].partitions.len(), 3);
    for partition in 0..3 {
        let response = client.call(12, &fetch_request(partition, 0)).await;
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.high_watermark, 4 + i64::from(partition));
        assert_eq!(p.records.as_ref().unwrap(), &sent[partition as usize]);
    }
    let response = client.call(9, &produce_request(0, batch(1, "after"))).await;
    assert_eq!(response.responses[0].partition_responses[0].base_offset, 4);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = data_dir("locked");
    let server = start(dir.path()).await;
    let second = serve::start(config(dir.path())).await;
    match second {
        Err(ServeError::Open(OpenError::Locked(path))) => assert_eq!(path, dir.path()),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a second server opened a locked data directory"),
    }
    server.shutdown().await.unwrap();
    // Once the first is gone, the directory can be opened again.
    serve::start(config(dir.path())).await.unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_a_waiting_long_poll_then_closes() {
    let dir = data_dir("shutdown");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name("durable"))
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
    let started = Instant::now();
    let id = client.send(12, &fetch_request(0, 20_000)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(server.shutdown());
    let response = client.receive::<FetchRequest>(12, id).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    stopping.await.unwrap().unwrap();
    // The connection ends with the server.
    assert!(client.read_frame().await.is_none());
}
