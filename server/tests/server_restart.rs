//! Lifecycle: data survives a restart, a data directory has one owner, and
//! shutdown answers in-flight requests before it closes the broker.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use ringtail_engine::log::OpenError;
use ringtail_server::cli::topic::{execute, TopicArgs, TopicCommand};
use ringtail_server::serve::{self, ServeError};
use server_support::{batch, config, data_dir, start, Client};
use std::time::{Duration, Instant};

fn name(value: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(value))
}

/// Creates topic "durable" with `partitions` partitions.
async fn create_durable(client: &mut Client, partitions: i32) {
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name("durable"))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
}

/// Flips every bit of byte 70 of `segment` (inside its first batch, under
/// the CRC); returns the damaged contents.
fn damage(segment: &std::path::Path) -> Vec<u8> {
    let mut bytes = std::fs::read(segment).unwrap();
    bytes[70] ^= 0xff;
    std::fs::write(segment, &bytes).unwrap();
    bytes
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
    create_durable(&mut client, 3).await;
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
    create_durable(&mut client, 1).await;
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

/// A partition whose active segment is damaged below its recovery point
/// (acknowledged data that recovery may not cut) is taken offline at
/// start-up instead of keeping the whole broker down: Metadata shows it
/// leaderless with this broker as an offline replica (as `topic describe`
/// prints), requests sent to it anyway get KAFKA_STORAGE_ERROR, and the
/// other partitions serve a librdkafka producer as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_damaged_log_takes_only_its_partition_offline() {
    let dir = data_dir("offline");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_durable(&mut client, 2).await;
    for partition in 0..2 {
        let response = client.call(9, &produce_request(partition, batch(4, "before"))).await;
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    drop(client);
    server.shutdown().await.unwrap();
    let segment = dir.path().join("durable-0").join("00000000000000000000.log");
    let bytes = damage(&segment);

    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    let partitions = &metadata.topics[0].partitions;
    assert_eq!(partitions[0].error_code, ResponseError::LeaderNotAvailable.code());
    assert_eq!(partitions[0].leader_id, BrokerId(-1));
    assert_eq!(partitions[0].offline_replicas, vec![BrokerId(1)]);
    assert_eq!((partitions[1].error_code, partitions[1].leader_id), (0, BrokerId(1)));
    assert!(partitions[1].offline_replicas.is_empty());
    let refused = client.call(9, &produce_request(0, batch(1, "refused"))).await;
    assert_eq!(
        refused.responses[0].partition_responses[0].error_code,
        ResponseError::KafkaStorageError.code()
    );
    let fetched = client.call(12, &fetch_request(0, 0)).await;
    assert_eq!(fetched.responses[0].partitions[0].error_code, ResponseError::KafkaStorageError.code());

    let mut described = Vec::new();
    let args = TopicArgs {
        command: TopicCommand::Describe { name: "durable".into() },
        bootstrap: server.kafka_addr.to_string(),
        command_config: None,
    };
    execute(args, &mut described).await.unwrap();
    let described = String::from_utf8(described).unwrap();
    assert!(
        described.contains("Partition: 0\tLeader: none") && described.contains("Offline: 1"),
        "{described}"
    );

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", server.kafka_addr.to_string())
        .set("acks", "all")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let started = Instant::now();
    for i in 0..20 {
        let value = format!("after {i}");
        let record = FutureRecord::<(), _>::to("durable").partition(1).payload(&value);
        let delivery = producer.send(record, Duration::from_secs(20)).await.map_err(|(e, _)| e).unwrap();
        assert_eq!((delivery.partition, delivery.offset), (1, 4 + i));
    }
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let metrics = server_support::http(server.metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(metrics.contains("\nringtail_offline_partitions 1\n"), "{metrics}");
    drop(producer);
    server.shutdown().await.unwrap();
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "the damaged segment is left as it was");

    // The operator accepts the loss: the partition's directory moved aside,
    // it comes back empty and takes writes again.
    std::fs::rename(dir.path().join("durable-0"), dir.path().join("aside")).unwrap();
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let response = client.call(9, &produce_request(0, batch(2, "again"))).await;
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    server.shutdown().await.unwrap();
}

/// A damaged `__consumer_offsets` partition takes only its groups offline:
/// FindCoordinator answers COORDINATOR_NOT_AVAILABLE for them (rather than
/// naming this broker, whose answer would send the client back here), and
/// groups on the other partitions commit as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_offsets_partition_takes_only_its_groups_offline() {
    let dir = data_dir("offline-groups");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_durable(&mut client, 1).await;
    let find = |group: &'static str| {
        FindCoordinatorRequest::default().with_key(StrBytes::from_static_str(group)).with_key_type(0)
    };
    let commit = |group: &'static str| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name("durable"))
                .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(3)])])
    };
    assert_eq!(client.call(2, &find("damaged")).await.error_code, 0);
    assert_eq!(client.call(2, &commit("damaged")).await.topics[0].partitions[0].error_code, 0);
    drop(client);
    server.shutdown().await.unwrap();
    // The one offsets partition holding data is the damaged group's.
    let segments: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("__consumer_offsets-"))
        .map(|p| p.join("00000000000000000000.log"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    damage(&segments[0]);

    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let refused = client.call(2, &find("damaged")).await;
    assert_eq!(refused.error_code, ResponseError::CoordinatorNotAvailable.code(), "{refused:?}");
    let other = (0..100)
        .map(|i| Box::leak(format!("other-{i}").into_boxed_str()) as &'static str)
        .find(|g| {
            let hash = g.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
            let damaged =
                "damaged".encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
            (hash & 0x7fff_ffff) % 50 != (damaged & 0x7fff_ffff) % 50
        })
        .unwrap();
    assert_eq!(client.call(2, &find(other)).await.error_code, 0);
    assert_eq!(client.call(2, &commit(other)).await.topics[0].partitions[0].error_code, 0);
    server.shutdown().await.unwrap();
}
