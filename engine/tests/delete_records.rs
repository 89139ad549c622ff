//! DeleteRecords on one broker: the log start moves, what is below it is
//! never served again (not after a restart either), and offsets outside
//! [0, high watermark] are refused.

mod common;

use common::{produced_batch, runtime};
use ringtail_engine::broker::delete_records::DELETE_TO_HIGH_WATERMARK;
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Acks, Broker, BrokerConfig, BrokerEndpoint, ErrorCode};
use ringtail_engine::clock::ManualClock;
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::LogConfig;
use std::path::PathBuf;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

async fn open(disk: &Arc<MemDisk>) -> Broker<MemDisk> {
    let config = BrokerConfig {
        node_id: 1,
        advertised: BrokerEndpoint { node_id: 1, host: "127.0.0.1".into(), port: 9092 },
        default_partitions: 1,
        default_replication_factor: None,
        auto_create_topics: false,
        // Small segments: deleting records deletes whole segments too.
        topic_defaults: LogConfig { segment_bytes: 1024, ..LogConfig::default() },
        group: ringtail_engine::group::GroupConfig::default(),
        log_cache_bytes: 1 << 20,
        quorum: false,
        replication: ringtail_engine::replica::ReplicationConfig::default(),
        topic_limits: ringtail_engine::broker::TopicLimits::none(),
        cleaner: Default::default(),
    };
    let clock = Arc::new(ManualClock::new(T0));
    let entropy = Arc::new(SeededEntropy::new(7));
    Broker::open(disk.clone(), PathBuf::from("/data"), config, clock, entropy).await.unwrap().0
}

#[test]
fn deleted_records_are_gone_for_good() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk).await;
        let request = CreateTopic {
            name: "t".into(),
            partitions: Some(1),
            replication_factor: None,
            configs: Default::default(),
        };
        broker.create_topic(request, false).await.unwrap();
        let p = broker.leader_partition("t", 0).unwrap();
        for i in 0..20 {
            p.produce(produced_batch(1, i, T0, 200), Acks::All).await.unwrap();
        }
        let segments = p.log.segment_base_offsets().len();
        assert!(segments > 3, "{segments} segments");

        let refused = |offset: i64| {
            let broker = &broker;
            async move { broker.delete_records("t", 0, offset).await.err().map(|e| e.code) }
        };
        assert_eq!(refused(21).await, Some(ErrorCode::OffsetOutOfRange), "past the high watermark");
        assert_eq!(refused(-2).await, Some(ErrorCode::OffsetOutOfRange));
        let internal = broker.delete_records("__consumer_offsets", 0, 0).await.err().map(|e| e.code);
        assert_eq!(internal, Some(ErrorCode::InvalidTopicException));
        let absent = broker.delete_records("absent", 0, 0).await.err().map(|e| e.code);
        assert_eq!(absent, Some(ErrorCode::UnknownTopicOrPartition));

        let (p, offset) = broker.delete_records("t", 0, 12).await.unwrap();
        assert_eq!(p.wait_low_watermark(offset).await.unwrap(), 12, "one replica: at once");
        assert_eq!(p.list_offset(-2).await.unwrap(), (12, -1));
        assert_eq!(p.fetch(11, 1 << 20).await.unwrap_err().code, ErrorCode::OffsetOutOfRange);
        assert!(!p.fetch(12, 1 << 20).await.unwrap().records.is_empty());
        assert!(p.log.segment_base_offsets().len() < segments, "whole segments below it are deleted");
        let (_, again) = broker.delete_records("t", 0, 3).await.unwrap();
        assert_eq!((again, p.log.log_start_offset()), (3, 12), "a start never moves back");
        broker.close().await.unwrap();
        drop((p, broker));

        let broker = open(&disk).await;
        let p = broker.leader_partition("t", 0).unwrap();
        assert_eq!(p.log.log_start_offset(), 12, "kept across a restart");
        let (p, offset) = broker.delete_records("t", 0, DELETE_TO_HIGH_WATERMARK).await.unwrap();
        assert_eq!(offset, 20);
        assert_eq!(p.list_offset(-2).await.unwrap(), (20, -1));
        assert!(p.fetch(20, 1 << 20).await.unwrap().records.is_empty());
        broker.close().await.unwrap();
    });
}
