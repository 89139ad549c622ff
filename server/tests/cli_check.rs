//! `ringtail check`: a data directory written by a real server, checked by
//! the binary while the server runs (refused), clean, with a torn tail
//! (reported, nothing written; then repaired), and with damage below the
//! recovery point (offline, left as it is); text and JSON.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;
use server_support::{batch, data_dir, start, Client};
use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");
const SEGMENT: &str = "00000000000000000000.log";

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// Runs `ringtail check ARGS --data-dir DIR`: (exit code, stdout, stderr).
fn check(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY).arg("check").arg("--data-dir").arg(dir).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

fn line<'a>(stdout: &'a str, partition: &str) -> &'a str {
    let prefix = format!("{partition}: ");
    stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {partition}:\n{stdout}"))
}

async fn produce(client: &mut Client, partition: i32, batches: i64) {
    for i in 0..batches {
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(s("orders")))
                .with_partition_data(vec![produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch(3, &format!("p{partition}-{i}"))))]),
        ]);
        let response = client.call(9, &request).await;
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
}

#[test]
fn check_reports_repairs_and_refuses_a_running_broker() {
    let dir = data_dir("check");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = start(dir.path()).await;
        let mut client = Client::connect(server.kafka_addr).await;
        let topic = create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("orders")))
            .with_num_partitions(2)
            .with_replication_factor(-1);
        let response = client.call(7, &CreateTopicsRequest::default().with_topics(vec![topic])).await;
        assert_eq!(response.topics[0].error_code, 0);
        produce(&mut client, 0, 3).await;
        produce(&mut client, 1, 4).await;

        let (code, _, stderr) = check(dir.path(), &[]);
        assert_eq!(code, 2, "a running broker's directory is refused: {stderr}");
        assert!(stderr.contains("locked by a running broker"), "{stderr}");

        drop(client);
        server.shutdown().await.unwrap();
    });

    let (code, stdout, stderr) = check(dir.path(), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(line(&stdout, "orders-0").contains("clean; offsets [0, 9)"), "{stdout}");
    assert!(line(&stdout, "orders-1").contains("clean; offsets [0, 12)"), "{stdout}");
    assert!(stdout.contains("2 logs in"), "{stdout}");

    // A torn tail on orders-1: reported, not cut, until --repair.
    let segment = dir.path().join("orders-1").join(SEGMENT);
    let valid_len = std::fs::metadata(&segment).unwrap().len();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[0x5a; 100]);
    std::fs::write(&segment, &bytes).unwrap();
    let (code, stdout, _) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    let torn = line(&stdout, "orders-1");
    assert!(
        torn.contains("DAMAGED")
            && torn.contains(&format!("would cut 100 bytes at segment 0 byte {valid_len}")),
        "{torn}"
    );
    assert!(line(&stdout, "orders-0").contains("clean"), "{stdout}");
    assert!(stdout.contains("nothing changed"), "{stdout}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "a check without --repair wrote to the log");

    let (code, lines, _) = check_json(dir.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 3, "a line per log and a summary");
    let orders1 = lines.iter().find(|l| l["partition"] == "orders-1").unwrap();
    assert_eq!(orders1["status"], "damaged");
    assert_eq!(orders1["cut"]["bytes"], 100);
    assert_eq!(orders1["cut"]["position"], valid_len);
    assert_eq!(orders1["log_end_offset"], 12);
    let summary = &lines[2]["summary"];
    assert_eq!((summary["clean"].as_u64(), summary["damaged"].as_u64()), (Some(1), Some(1)));

    let (code, stdout, _) = check(dir.path(), &["--repair"]);
    assert_eq!(code, 1, "damage was found: {stdout}");
    assert!(line(&stdout, "orders-1").contains("; cut 100 bytes"), "{stdout}");
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), valid_len, "--repair cut the tail");
    let (code, stdout, _) = check(dir.path(), &[]);
    assert_eq!(code, 0, "clean after the repair: {stdout}");

    // A flipped byte inside orders-0's first batch, below its recovery
    // point: acknowledged data, so the log goes offline and nothing is cut,
    // with or without --repair.
    let segment = dir.path().join("orders-0").join(SEGMENT);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[70] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    for args in [&[][..], &["--repair"][..]] {
        let (code, stdout, _) = check(dir.path(), args);
        assert_eq!(code, 1, "{stdout}");
        assert!(line(&stdout, "orders-0").contains("OFFLINE"), "{stdout}");
        assert_eq!(std::fs::read(&segment).unwrap(), bytes, "damaged acknowledged data was changed");
    }

    let missing = dir.path().join("no-such-dir");
    let (code, _, stderr) = check(&missing, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with("ringtail check: "), "{stderr}");
}

/// `check(--json ARGS)`, each line parsed.
fn check_json(dir: &Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let (code, stdout, stderr) = check(dir, &[&["--json"], args].concat());
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{stderr}")))
        .collect();
    (code, lines, stderr)
}
