//! `ringtail topic trim` (DeleteRecords) against a real in-process server:
//! records below the offset are never served again, in every partition or
//! in one; -1 trims to the high watermark; an offset past it is refused.

mod cli_support;

use bytes::Bytes;
use cli_support::TestServer;
use ringtail_client::{Acks, Client, ClientConfig, NewTopic, OffsetSpec, ProducerRecord};
use ringtail_server::cli::topic::{execute, TopicArgs, TopicCommand};

async fn trim(server: &TestServer, before: i64, partition: Option<i32>) -> Result<String, String> {
    let mut out = Vec::new();
    let command = TopicCommand::Trim { name: "t".into(), before, partition };
    match execute(TopicArgs { command, bootstrap: server.bootstrap.clone(), command_config: None }, &mut out)
        .await
    {
        Ok(()) => Ok(String::from_utf8(out).expect("UTF-8 output")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_deletes_records_below_an_offset() {
    let server = TestServer::start("trim").await;
    let client = Client::connect(&server.bootstrap, ClientConfig::default()).await.expect("client");
    let topic = NewTopic { name: "t".into(), partitions: Some(2), replication_factor: None, configs: vec![] };
    client.create_topic(&topic).await.expect("created");
    for partition in 0..2 {
        let records: Vec<ProducerRecord> =
            (0..10).map(|i| ProducerRecord { key: None, value: Some(Bytes::from(format!("{i}"))) }).collect();
        client.produce("t", partition, &records, Acks::All).await.expect("produced");
    }

    let out = trim(&server, 4, None).await.expect("trimmed");
    assert_eq!(out, "Partition 0 of t now starts at offset 4.\nPartition 1 of t now starts at offset 4.\n");
    for partition in 0..2 {
        assert_eq!(client.list_offset("t", partition, OffsetSpec::Earliest).await.unwrap(), 4);
    }
    let out = trim(&server, -1, Some(1)).await.expect("trimmed to the high watermark");
    assert_eq!(out, "Partition 1 of t now starts at offset 10.\n");
    assert_eq!(client.list_offset("t", 0, OffsetSpec::Earliest).await.unwrap(), 4, "partition 0 untouched");
    assert_eq!(client.list_offset("t", 1, OffsetSpec::Earliest).await.unwrap(), 10);

    let refused = trim(&server, 11, Some(0)).await.expect_err("past the high watermark");
    assert!(refused.contains("OFFSET_OUT_OF_RANGE"), "{refused}");
    assert_eq!(client.list_offset("t", 0, OffsetSpec::Earliest).await.unwrap(), 4, "nothing moved");
    let unknown = trim(&server, 1, Some(7)).await.expect_err("no such partition");
    assert!(!unknown.is_empty());
}
