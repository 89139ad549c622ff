//! A full disk: appends fail with KAFKA_STORAGE_ERROR, the server stays up,
//! and once space is freed the maintenance task reopens the poisoned log so
//! that produce works again. Runs on a small tmpfs, which needs root (the
//! test skips itself where mounting is not allowed).

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
    let mut cfg = config(&disk.path.join("data"));
    // Small index files, so that the topic fits on the small disk.
    cfg.topic_defaults.segment_index_bytes = 64 * 1024;
    cfg.topic_defaults.segment_bytes = 256 * 1024;
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
