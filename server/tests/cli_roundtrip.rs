//! The admin and quick-start commands against a real in-process server on
//! 127.0.0.1: create a topic, produce lines, consume them back identical
//! and in order, describe, list, delete. The commands run through the same
//! functions `ringtail topic|produce|consume` call, with in-memory stdin
//! and stdout.

mod cli_support;

use cli_support::TestServer;
use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use ringtail_client::{Acks, Client, ClientConfig, FetchOptions, FetchPosition, OffsetSpec, ProducerRecord};
use ringtail_server::cli::consume::{consume_into, ConsumeArgs, StartFrom};
use ringtail_server::cli::produce::{produce_from, ProduceArgs};
use ringtail_server::cli::topic::{execute, TopicArgs, TopicCommand};
use ringtail_server::cli::CliError;

impl TestServer {
    async fn topic(&self, command: TopicCommand) -> Result<String, CliError> {
        let mut out = Vec::new();
        execute(TopicArgs { command, bootstrap: self.bootstrap.clone(), command_config: None }, &mut out)
            .await?;
        Ok(String::from_utf8(out).expect("UTF-8 output"))
    }

    fn produce_args(&self, topic: &str) -> ProduceArgs {
        ProduceArgs {
            topic: topic.into(),
            key: None,
            acks: Acks::All,
            partition: None,
            batch_bytes: 16 * 1024,
            linger_ms: 100,
            bootstrap: self.bootstrap.clone(),
            command_config: None,
        }
    }

    fn consume_args(&self, topic: &str, count: u64) -> ConsumeArgs {
        ConsumeArgs {
            topic: topic.into(),
            group: None,
            from: StartFrom::Earliest,
            count: Some(count),
            partition: None,
            print_keys: false,
            bootstrap: self.bootstrap.clone(),
            command_config: None,
        }
    }

    /// Consumes `count` records, failing the test if that takes over 30 s.
    async fn consume(&self, args: ConsumeArgs) -> String {
        let mut out = Vec::new();
        let run = consume_into(args, &mut out, std::future::pending());
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("consumed in time")
            .expect("consumes");
        String::from_utf8(out).expect("UTF-8 output")
    }
}

fn create(name: &str, partitions: i32) -> TopicCommand {
    TopicCommand::Create {
        name: name.into(),
        partitions: Some(partitions),
        replication_factor: None,
        configs: vec![],
    }
}

fn lines(count: usize) -> String {
    (0..count).map(|i| format!("line {i} {}\n", "x".repeat(i % 50))).collect()
}

/// The quick start, end to end: every line produced comes back, once, in
/// order; describe shows the partition and its leader; delete removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_produce_consume_describe_delete() {
    let server = TestServer::start("roundtrip").await;
    let created = server
        .topic(TopicCommand::Create {
            name: "quick".into(),
            partitions: Some(1),
            replication_factor: Some(1),
            configs: vec![("retention.ms".into(), "3600000".into())],
        })
        .await
        .expect("topic create");
    assert_eq!(created, "Created topic quick.\n");

    let input = lines(1000);
    let summary = produce_from(server.produce_args("quick"), Cursor::new(input.clone().into_bytes()))
        .await
        .expect("produce");
    assert_eq!(summary.records, 1000);
    assert!(summary.batches >= 1);

    let output = server.consume(server.consume_args("quick", 1000)).await;
    assert_eq!(output, input, "consumed lines differ from produced lines");

    let described = server.topic(TopicCommand::Describe { name: "quick".into() }).await.expect("describe");
    assert!(described.starts_with("Topic: quick"), "{described}");
    assert!(described.contains("PartitionCount: 1"), "{described}");
    assert!(described.contains("\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"), "{described}");
    assert!(described.contains("retention.ms=3600000"), "{described}");

    let listed = server.topic(TopicCommand::List).await.expect("list");
    assert!(listed.lines().any(|l| l == "quick"), "{listed}");

    let deleted = server.topic(TopicCommand::Delete { name: "quick".into() }).await.expect("delete");
    assert_eq!(deleted, "Deleted topic quick.\n");
    let gone = server.topic(TopicCommand::Describe { name: "quick".into() }).await.unwrap_err();
    assert!(gone.message().contains("does not exist"), "{gone}");
    server.stop().await;
}

/// Creating a topic twice and deleting a missing one are runtime errors
/// (exit code 1) that name the Kafka error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors_name_the_kafka_error() {
    let server = TestServer::start("admin-errors").await;
    server.topic(create("twice", 1)).await.expect("first create");
    let again = server.topic(create("twice", 1)).await.unwrap_err();
    assert!(matches!(again, CliError::Runtime(_)));
    assert!(again.message().contains("TOPIC_ALREADY_EXISTS"), "{again}");
    let missing = server.topic(TopicCommand::Delete { name: "never-was".into() }).await.unwrap_err();
    assert!(missing.message().contains("does not exist"), "{missing}");
    server.stop().await;
}

/// Keyed lines all go to the key's partition, unkeyed ones are spread over
/// every partition, and each partition keeps its records in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_and_spread_records_over_partitions() {
    let server = TestServer::start("partitions").await;
    server.topic(create("spread", 3)).await.expect("create");
    // Small batches, so the unkeyed lines rotate over the partitions.
    let spread = ProduceArgs { batch_bytes: 64, ..server.produce_args("spread") };
    produce_from(spread, Cursor::new(lines(300).into_bytes())).await.expect("produce unkeyed");
    let keyed = ProduceArgs { key: Some("k".into()), acks: Acks::Leader, ..server.produce_args("spread") };
    produce_from(keyed, Cursor::new(b"a\nb\nc\n".to_vec())).await.expect("produce keyed");

    let client = Client::connect(&server.bootstrap, ClientConfig::default()).await.expect("client");
    let mut total = 0;
    for partition in 0..3 {
        let end = client.list_offset("spread", partition, OffsetSpec::Latest).await.expect("end offset");
        assert!(end > 0, "partition {partition} got no records");
        total += end;
        let args = ConsumeArgs { partition: Some(partition), ..server.consume_args("spread", end as u64) };
        let out = server.consume(args).await;
        let numbers: Vec<u64> = out
            .lines()
            .filter_map(|l| l.strip_prefix("line "))
            .map(|l| l.split(' ').next().and_then(|n| n.parse().ok()).expect("line number"))
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "partition {partition} out of order: {numbers:?}");
    }
    assert_eq!(total, 303);
    server.stop().await;
}

/// acks=0 and acks=1 produce through the client library, several requests
/// pipelined on one connection, and everything is fetched back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_produce_with_every_acks_setting() {
    let server = TestServer::start("pipelined").await;
    server.topic(create("acks", 1)).await.expect("create");
    let client = std::sync::Arc::new(
        Client::connect(&server.bootstrap, ClientConfig::default()).await.expect("client"),
    );
    let mut tasks = Vec::new();
    for (i, acks) in [Acks::None, Acks::Leader, Acks::All, Acks::Leader, Acks::All].into_iter().enumerate() {
        let client = std::sync::Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let records: Vec<ProducerRecord> = (0..10)
                .map(|j| ProducerRecord { key: None, value: Some(Bytes::from(format!("{i}-{j}"))) })
                .collect();
            client.produce("acks", 0, &records, acks).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("produced");
    }
    let mut offset = 0;
    let mut values = Vec::new();
    while values.len() < 50 {
        let fetched = client
            .fetch("acks", &[FetchPosition { partition: 0, offset }], &FetchOptions::default())
            .await
            .expect("fetch");
        for record in &fetched[0].records {
            values.push(record.value.clone().expect("value"));
        }
        offset = fetched[0].next_offset;
    }
    assert_eq!(values.len(), 50);
    server.stop().await;
}

/// Consuming from `latest` sees only what is produced afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_latest_skips_earlier_records() {
    let server = TestServer::start("latest").await;
    server.topic(create("later", 1)).await.expect("create");
    produce_from(server.produce_args("later"), Cursor::new(b"old\n".to_vec())).await.expect("produce old");
    let args = ConsumeArgs { from: StartFrom::Latest, ..server.consume_args("later", 1) };
    let consumer = {
        let bootstrap = server.bootstrap.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let args = ConsumeArgs { bootstrap, ..args };
            consume_into(args, &mut out, std::future::pending()).await.map(|_| out)
        })
    };
    // The consumer finds the end at some moment; keep producing "new"
    // until it has read one, so the test does not guess how long that takes.
    let mut consumer = consumer;
    let mut out = None;
    for _ in 0..60 {
        produce_from(server.produce_args("later"), Cursor::new(b"new\n".to_vec()))
            .await
            .expect("produce new");
        if let Ok(done) = tokio::time::timeout(Duration::from_millis(500), &mut consumer).await {
            out = Some(done.expect("task").expect("consume"));
            break;
        }
    }
    let out = out.expect("consumer read a record within 30 s");
    assert_eq!(out, b"new\n");
    server.stop().await;
}

/// `topic create-partitions` grows a topic whose new partition then takes
/// lines and gives them back; `topic alter-config` sets and deletes
/// configs, which `topic describe` shows; a shrink, a bad value and an
/// unknown topic are runtime errors that name the Kafka error and change
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_and_alter_config() {
    let server = TestServer::start("topic-changes").await;
    server.topic(create("grows", 1)).await.expect("create");
    let grow = |count| TopicCommand::CreatePartitions { name: "grows".into(), count };
    let grown = server.topic(grow(3)).await.expect("create-partitions");
    assert_eq!(grown, "Topic grows now has 3 partitions.\n");
    let described = server.topic(TopicCommand::Describe { name: "grows".into() }).await.expect("describe");
    assert!(described.contains("PartitionCount: 3"), "{described}");
    assert!(described.contains("\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1"), "{described}");
    let to_new = ProduceArgs { partition: Some(2), ..server.produce_args("grows") };
    produce_from(to_new, Cursor::new(b"into the new partition\n".to_vec())).await.expect("produce");
    let args = ConsumeArgs { partition: Some(2), ..server.consume_args("grows", 1) };
    assert_eq!(server.consume(args).await, "into the new partition\n");
    let shrink = server.topic(grow(2)).await.unwrap_err();
    assert!(shrink.message().contains("INVALID_PARTITIONS"), "{shrink}");
    let missing = server.topic(TopicCommand::CreatePartitions { name: "nope".into(), count: 2 }).await;
    assert!(missing.unwrap_err().message().contains("does not exist"));

    let alter = |set: &[(&str, &str)], delete: &[&str]| TopicCommand::AlterConfig {
        name: "grows".into(),
        set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        delete: delete.iter().map(|k| k.to_string()).collect(),
    };
    let describe = || server.topic(TopicCommand::Describe { name: "grows".into() });
    let altered = server.topic(alter(&[("retention.ms", "5000"), ("segment.ms", "60000")], &[])).await;
    assert_eq!(altered.expect("alter-config"), "Altered configs of topic grows.\n");
    let described = describe().await.expect("describe");
    assert!(described.contains("retention.ms=5000") && described.contains("segment.ms=60000"), "{described}");
    let bad = server.topic(alter(&[("retention.ms", "soon")], &[])).await.unwrap_err();
    assert!(bad.message().contains("INVALID_CONFIG"), "{bad}");
    assert!(describe().await.expect("describe").contains("retention.ms=5000"), "a refusal changes nothing");
    server.topic(alter(&[], &["retention.ms"])).await.expect("delete a config");
    let described = describe().await.expect("describe");
    assert!(described.contains("retention.ms=604800000"), "back to the default: {described}");
    assert!(described.contains("segment.ms=60000"), "the other config kept: {described}");
    server.stop().await;
}
