//! A full disk. With the guard (`--disk-min-free-bytes`), produce is
//! refused before the disk fills, the reserve is given back, and fetches,
//! offset commits, DeleteRecords and DeleteTopics keep working; produce
//! resumes by itself once space is freed. Without it, appends fail with
//! KAFKA_STORAGE_ERROR, the server stays up, and once space is freed the
//! maintenance task reopens the poisoned log so that produce works again.
//! Runs on a small tmpfs, which needs root (the tests skip themselves where
//! mounting is not allowed).

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use server_support::{batch, config, data_dir, Client};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Size of the test filesystem.
const FILESYSTEM_BYTES: usize = 4 * 1024 * 1024;
/// Produces tried before the disk must have filled.
const PRODUCES_MAX: usize = 2_000;

/// A tmpfs mounted for the test's lifetime.
struct SmallDisk {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let parent = data_dir("full-disk");
        let path = parent.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let size = format!("size={FILESYSTEM_BYTES}");
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(&path).status();
        match mounted {
            Ok(status) if status.success() => Some(SmallDisk { path, _parent: parent }),
            _ => None,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn produce_request(records: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("fill")))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))]),
    ])
}

async fn produce(client: &mut Client, records: bytes::Bytes) -> i16 {
    client.call(9, &produce_request(records)).await.responses[0].partition_responses[0].error_code
}

/// Small index files and segments, so that topics fit on the small disk.
fn small_disk_config(disk: &SmallDisk) -> ringtail_server::config::ServeConfig {
    let mut cfg = config(&disk.path.join("data"));
    cfg.topic_defaults.segment_index_bytes = 64 * 1024;
    cfg.topic_defaults.segment_bytes = 256 * 1024;
    cfg
}

fn fill(path: &Path) -> PathBuf {
    // Whatever room is left, taken by one file (tmpfs allocates on write).
    let ballast = path.join("ballast");
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut file = std::fs::File::create(&ballast).unwrap();
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    ballast
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_appends_and_the_server_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let mut cfg = small_disk_config(&disk);
    // No guard: the disk really fills under the appends.
    cfg.disk_min_free_bytes = 0;
    cfg.disk_reserve_bytes = 0;
    let server = ringtail_server::serve::start(cfg).await.unwrap();
    let mut client = Client::connect(server.kafka_addr).await;
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("fill")))
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
    assert_eq!(produce(&mut client, batch(10, "before")).await, 0);
    let ballast = fill(&disk.path);
    let mut failed = false;
    for _ in 0..PRODUCES_MAX {
        match produce(&mut client, batch(50, "filler")).await {
            0 => {}
            code => {
                assert_eq!(code, ResponseError::KafkaStorageError.code());
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the disk never filled");
    // Still serving: reads work, writes keep failing while the disk is full.
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(metadata.topics.len(), 1);
    std::fs::remove_file(&ballast).unwrap();
    // The maintenance task reopens the poisoned log within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match produce(&mut client, batch(1, "after")).await {
            0 => break,
            code => assert_eq!(code, ResponseError::KafkaStorageError.code()),
        }
        assert!(Instant::now() < deadline, "produce never recovered after space was freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(client);
    server.shutdown().await.unwrap();
}

async fn create_topic(client: &mut Client, name: &'static str) {
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
}

/// Asks for group "g"'s coordinator until it is ready (the first ask
/// creates `__consumer_offsets`).
async fn await_coordinator(client: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
        if client.call(2, &request).await.error_code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no group coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn commit(client: &mut Client, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("fill")))
            .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    client.call(8, &request).await.topics[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_produce_and_keeps_reads_commits_and_deletes_working() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let mut cfg = small_disk_config(&disk);
    cfg.group.offsets_topic_partitions = 1;
    cfg.disk_min_free_bytes = 1 << 20;
    cfg.disk_reserve_bytes = 512 * 1024;
    let reserve = cfg.data_dir.join(ringtail_server::disk_space::RESERVE_FILE);
    let server = ringtail_server::serve::start(cfg).await.unwrap();
    assert!(reserve.exists(), "the reserve is made at start-up");
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "fill").await;
    create_topic(&mut client, "doomed").await;
    assert_eq!(produce(&mut client, batch(10, "before")).await, 0);
    await_coordinator(&mut client).await;
    assert_eq!(commit(&mut client, 3).await, 0);

    let ballast = fill(&disk.path);
    let refused = client.call(9, &produce_request(batch(1, "full"))).await;
    let refused = &refused.responses[0].partition_responses[0];
    assert_eq!(refused.error_code, ResponseError::KafkaStorageError.code());
    let message = refused.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("disk-min-free-bytes"), "{message}");
    assert!(!reserve.exists(), "the reserve is given back once produce is refused");

    // Reads, commits and deletes still work on the full disk.
    let fetch = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("fill")))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)]),
    ]);
    let fetched = client.call(11, &fetch).await;
    let fetched = &fetched.responses[0].partitions[0];
    assert_eq!((fetched.error_code, fetched.high_watermark), (0, 10));
    assert!(fetched.records.as_ref().is_some_and(|r| !r.is_empty()));
    assert_eq!(commit(&mut client, 7).await, 0, "an offset commit on a full disk");
    let delete_records = DeleteRecordsRequest::default().with_timeout_ms(5000).with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("fill")))
            .with_partitions(vec![delete_records_request::DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(5)]),
    ]);
    let trimmed = client.call(2, &delete_records).await;
    let trimmed = &trimmed.topics[0].partitions[0];
    assert_eq!((trimmed.error_code, trimmed.low_watermark), (0, 5));
    let delete = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topic_names(vec![TopicName(StrBytes::from_static_str("doomed"))]);
    assert_eq!(client.call(4, &delete).await.responses[0].error_code, 0, "DeleteTopics on a full disk");
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(metadata.topics.len(), 1 + 1, "fill and __consumer_offsets");

    // Space freed: produce is taken again, with no restart, and the
    // reserve comes back.
    std::fs::remove_file(&ballast).unwrap();
    assert_eq!(produce(&mut client, batch(1, "after")).await, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reserve.exists() {
        assert!(Instant::now() < deadline, "the reserve never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(client);
    server.shutdown().await.unwrap();
}
