//! The APIs operators' tools call to look inside a broker: DescribeLogDirs
//! (partition sizes), DescribeProducers (idempotent producers) and
//! OffsetDelete (a group's offsets for some partitions), against an
//! in-process server with librdkafka producing and consuming.

mod server_api_support;
mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use server_api_support::{create_topic, name, s};
use server_support::{data_dir, group_config, Client};
use std::time::{Duration, Instant};

async fn produce_idempotent(bootstrap: &str, topic: &str, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for i in 0..count {
        let value = format!("value-{i}");
        let record = FutureRecord::to(topic).partition(0).key("k").payload(&value);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_dirs_show_partition_sizes_and_producers_show_their_sequences() {
    let dir = data_dir("describe");
    let server = serve(dir.path()).await;
    let bootstrap = server.kafka_addr.to_string();
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "sized", 2).await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    produce_idempotent(&bootstrap, "sized", 5).await;

    for version in [1i16, 4] {
        let all = client.call(version, &DescribeLogDirsRequest::default().with_topics(None)).await;
        assert_eq!(all.results.len(), 1, "{all:?}");
        let result = &all.results[0];
        assert_eq!(result.error_code, 0);
        assert_eq!(
            std::path::Path::new(result.log_dir.as_str()),
            std::path::absolute(dir.path()).unwrap(),
            "the data directory is the log directory"
        );
        let sized = result.topics.iter().find(|t| t.name.0.as_str() == "sized").expect("sized listed");
        let sizes: Vec<(i32, i64)> =
            sized.partitions.iter().map(|p| (p.partition_index, p.partition_size)).collect();
        assert_eq!(sizes.len(), 2);
        assert_eq!(sizes[1], (1, 0), "nothing was written to partition 1");
        assert!(sizes[0].1 > 5 * "value-0".len() as i64, "partition 0 holds five records: {sizes:?}");
        if version >= 4 {
            assert!(result.total_bytes > 0 && result.usable_bytes > 0, "{result:?}");
            assert!(result.usable_bytes <= result.total_bytes);
        }
    }
    // Only what was asked for; a partition not hosted is left out.
    let one = DescribeLogDirsRequest::default().with_topics(Some(vec![
        describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(name("sized"))
            .with_partitions(vec![1, 9]),
    ]));
    let one = client.call(2, &one).await;
    let topics: Vec<(&str, Vec<i32>)> = one.results[0]
        .topics
        .iter()
        .map(|t| (t.name.0.as_str(), t.partitions.iter().map(|p| p.partition_index).collect()))
        .collect();
    assert_eq!(topics, [("sized", vec![1])]);

    let request = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(name("sized"))
            .with_partition_indexes(vec![0, 1, 7]),
        describe_producers_request::TopicRequest::default()
            .with_name(name("absent"))
            .with_partition_indexes(vec![0]),
    ]);
    let producers = client.call(0, &request).await;
    let partitions = &producers.topics[0].partitions;
    assert_eq!(
        partitions.iter().map(|p| p.error_code).collect::<Vec<_>>(),
        [0, 0, ResponseError::UnknownTopicOrPartition.code()]
    );
    let active = &partitions[0].active_producers;
    assert_eq!(active.len(), 1, "one idempotent producer: {active:?}");
    assert!(active[0].producer_id.0 >= 0);
    assert_eq!(active[0].last_sequence, 4, "five records, sequences 0-4");
    assert!(active[0].last_timestamp >= before.as_millis() as i64, "{active:?}");
    assert_eq!(active[0].current_txn_start_offset, -1);
    assert!(partitions[1].active_producers.is_empty());
    assert_eq!(producers.topics[1].partitions[0].error_code, ResponseError::UnknownTopicOrPartition.code());
    server.shutdown().await.unwrap();
}

async fn serve(dir: &std::path::Path) -> ringtail_server::serve::RunningServer {
    ringtail_server::serve::start(group_config(dir)).await.unwrap()
}

fn offset_delete(group: &str, topics: &[&str]) -> OffsetDeleteRequest {
    OffsetDeleteRequest::default().with_group_id(GroupId(s(group))).with_topics(
        topics
            .iter()
            .map(|t| {
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(name(t))
                    .with_partitions(vec![offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(0)])
            })
            .collect(),
    )
}

async fn committed(client: &mut Client, group: &str) -> Vec<String> {
    let request = OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(None);
    let response = client.call(7, &request).await;
    assert_eq!(response.error_code, 0, "{response:?}");
    response.topics.iter().map(|t| t.name.0.to_string()).collect()
}

/// A librdkafka consumer subscribed to `read` keeps its offsets there;
/// the offsets it committed for `other` can be deleted while it runs; once
/// it left, any can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_delete_spares_what_a_live_consumer_reads() {
    let dir = data_dir("offset-delete");
    let server = serve(dir.path()).await;
    let bootstrap = server.kafka_addr.to_string();
    let mut client = Client::connect(server.kafka_addr).await;
    for topic in ["read", "other"] {
        create_topic(&mut client, topic, 1).await;
    }
    let group = "deleting";
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&["read"]).unwrap();
    // librdkafka's calls block: off the runtime's async workers, which the
    // in-process server needs.
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer.assignment().unwrap().count() == 0 {
            assert!(Instant::now() < deadline, "never assigned");
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("read", 0, Offset::Offset(3)).unwrap();
        offsets.add_partition_offset("other", 0, Offset::Offset(4)).unwrap();
        consumer.commit(&offsets, CommitMode::Sync).unwrap();
    });
    assert_eq!(committed(&mut client, group).await, ["other", "read"]);

    let response = client.call(0, &offset_delete(group, &["read", "other"])).await;
    assert_eq!(response.error_code, 0);
    let codes: Vec<i16> = response.topics.iter().map(|t| t.partitions[0].error_code).collect();
    assert_eq!(codes, [ResponseError::GroupSubscribedToTopic.code(), 0]);
    assert_eq!(committed(&mut client, group).await, ["read"]);

    tokio::task::block_in_place(|| {
        consumer.unsubscribe();
        drop(consumer); // leaves the group
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = client.call(0, &offset_delete(group, &["read"])).await;
        if response.topics[0].partitions[0].error_code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the group never emptied: {response:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(committed(&mut client, group).await.is_empty());
    let unknown = client.call(0, &offset_delete("nobody", &["read"])).await;
    assert_eq!(unknown.error_code, ResponseError::GroupIdNotFound.code());
    server.shutdown().await.unwrap();
}
