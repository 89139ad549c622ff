//! Changing a topic while it runs, on a single node: CreatePartitions
//! grows it, AlterConfigs and IncrementalAlterConfigs change its configs;
//! both reach the running partitions at once and survive a restart.

mod common;

use common::{batches, clock, produced_batch, produced_id, runtime};
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Acks, Broker, BrokerConfig, BrokerEndpoint, ErrorCode};
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::LogConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The test clock's start: records stamped now.
const T0: i64 = 1_700_000_000_000;

async fn open(disk: &Arc<MemDisk>) -> Broker<MemDisk> {
    let config = BrokerConfig {
        node_id: 1,
        advertised: BrokerEndpoint { node_id: 1, host: "127.0.0.1".into(), port: 9092 },
        default_partitions: 1,
        default_replication_factor: None,
        auto_create_topics: false,
        topic_defaults: LogConfig::default(),
        group: ringtail_engine::group::GroupConfig::default(),
        log_cache_bytes: 1 << 20,
        quorum: false,
        replication: ringtail_engine::replica::ReplicationConfig::default(),
        topic_limits: ringtail_engine::broker::TopicLimits::none(),
        cleaner: Default::default(),
    };
    let entropy = Arc::new(SeededEntropy::new(7));
    Broker::open(disk.clone(), PathBuf::from("/data"), config, clock(), entropy).await.unwrap().0
}

fn topic(name: &str, partitions: u32, configs: &[(&str, &str)]) -> CreateTopic {
    CreateTopic {
        name: name.into(),
        partitions: Some(partitions),
        replication_factor: None,
        configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// CreatePartitions on a single node: a topic grows (validate_only
/// changes nothing), the new partitions take records and read them back,
/// a shrink, the same count, too many, an unknown topic and the internal
/// topic are refused with Kafka's codes, and the growth survives a restart.
#[test]
fn partitions_grow_take_records_and_survive_a_restart() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk).await;
        broker.create_topic(topic("grow", 2, &[]), false).await.unwrap();
        let would = broker.create_partitions("grow", 4, true).await.unwrap();
        assert_eq!(would.partitions.len(), 4);
        assert_eq!(broker.topics()["grow"].partitions.len(), 2, "validate_only changes nothing");
        assert!(broker.partition("grow", 2).is_none());

        let grown = broker.create_partitions("grow", 4, false).await.unwrap();
        assert_eq!(grown.partitions.len(), 4);
        assert!(grown.partitions.iter().all(|p| p.replicas == [1] && p.leader == 1));
        for p in [2, 3] {
            let partition = broker.leader_partition("grow", p).unwrap();
            let out = partition.produce(produced_batch(2, 40 + p as u64, T0, 50), Acks::All).await.unwrap();
            assert_eq!(out.base_offset, 0, "a new partition starts at offset 0");
            let read = partition.fetch(0, 1 << 20).await.unwrap();
            let ids: Vec<u64> = batches(&read.records).iter().map(|(_, b)| produced_id(b)).collect();
            assert_eq!(ids, [40 + p as u64]);
        }

        let refused = |name: &'static str, count: i32| {
            let broker = &broker;
            async move { broker.create_partitions(name, count, false).await.unwrap_err() }
        };
        let fewer = refused("grow", 3).await;
        assert_eq!(fewer.code, ErrorCode::InvalidPartitions);
        assert_eq!(fewer.message, "The topic grow currently has 4 partition(s); 3 would not be an increase.");
        let same = refused("grow", 4).await;
        assert_eq!(
            (same.code, same.message.as_str()),
            (ErrorCode::InvalidPartitions, "Topic already has 4 partition(s).")
        );
        assert_eq!(refused("grow", 10_001).await.code, ErrorCode::InvalidPartitions);
        assert_eq!(refused("grow", -1).await.code, ErrorCode::InvalidPartitions);
        assert_eq!(refused("absent", 2).await.code, ErrorCode::UnknownTopicOrPartition);
        assert_eq!(refused("__consumer_offsets", 99).await.code, ErrorCode::InvalidRequest);
        assert_eq!(broker.topics()["grow"].partitions.len(), 4, "no refusal changed anything");
        broker.close().await.unwrap();
        drop(broker);

        let broker = open(&disk).await;
        assert_eq!(broker.topics()["grow"].partitions.len(), 4);
        let p3 = broker.leader_partition("grow", 3).unwrap();
        assert_eq!(p3.log.log_end_offset(), 2, "the new partition's records survive the restart");
    });
}

/// Config changes reach the running log at once: retention.ms set low
/// deletes the old segments at the next upkeep, min.insync.replicas above
/// the ISR refuses acks=all until it is deleted again. Bad values, unknown
/// keys and APPEND to a non-list key are refused and change nothing;
/// validate_only changes nothing; AlterConfigs replaces the whole set; the
/// overrides survive a restart.
#[test]
fn config_changes_apply_to_the_running_log_and_survive_a_restart() {
    use ringtail_engine::broker::topic_configs::{ConfigChange, ConfigOp};
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk).await;
        broker.create_topic(topic("cfg", 1, &[("segment.bytes", "300")]), false).await.unwrap();
        let p = broker.leader_partition("cfg", 0).unwrap();
        let hour_ago = T0 - 3_600_000;
        for i in 0..8 {
            p.produce(produced_batch(1, i, hour_ago, 50), Acks::All).await.unwrap();
        }
        broker.maintain().await;
        assert_eq!(p.log.log_start_offset(), 0, "kept for the default 7 days");
        let set = |key: &str, value: &str| ConfigOp::Set { key: key.into(), value: value.into() };
        let alter = |ops: Vec<ConfigOp>, validate_only: bool| {
            let broker = &broker;
            async move { broker.alter_topic_configs("cfg", &ConfigChange::Incremental(ops), validate_only).await }
        };
        let described = |key: &str| {
            let entry = broker.describe_topic_configs("cfg").unwrap().into_iter().find(|e| e.name == key).unwrap();
            (entry.value, entry.is_default)
        };

        alter(vec![set("retention.ms", "1000")], true).await.unwrap();
        assert_eq!(described("retention.ms"), ("604800000".into(), true), "validate_only changes nothing");
        let now = alter(vec![set("retention.ms", "1000")], false).await.unwrap();
        assert_eq!(now.get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(p.log.config().retention_ms, Some(1000), "the running log has it");
        assert_eq!(described("retention.ms"), ("1000".into(), false));
        broker.maintain().await;
        assert!(p.log.log_start_offset() > 0, "the expired segments went at the next upkeep");

        for bad in [
            vec![set("retention.ms", "soon")],
            vec![set("no.such.config", "1")],
            vec![set("segment.bytes", "1")],
            vec![ConfigOp::Append { key: "retention.ms".into(), value: "1".into() }],
            vec![ConfigOp::Subtract { key: "cleanup.policy".into(), value: "delete".into() }],
            vec![set("segment.ms", "5"), set("min.insync.replicas", "0")],
        ] {
            let e = alter(bad.clone(), false).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidConfig, "{bad:?}: {e}");
        }
        assert_eq!(described("retention.ms"), ("1000".into(), false), "refusals changed nothing");
        assert!(described("segment.ms").1);
        let appended = alter(vec![ConfigOp::Append { key: "cleanup.policy".into(), value: "delete".into() }], false);
        assert_eq!(appended.await.unwrap().get("cleanup.policy").map(String::as_str), Some("delete"));

        alter(vec![set("min.insync.replicas", "2")], false).await.unwrap();
        let short = p.produce(produced_batch(1, 50, T0, 50), Acks::All).await.unwrap_err();
        assert_eq!(short.code, ErrorCode::NotEnoughReplicas, "the running partition reads the new minimum");
        alter(vec![ConfigOp::Delete { key: "min.insync.replicas".into() }], false).await.unwrap();
        p.produce(produced_batch(1, 51, T0, 50), Acks::All).await.unwrap();

        let replace: BTreeMap<String, String> = [("segment.bytes".to_string(), "1000".to_string())].into();
        broker.alter_topic_configs("cfg", &ConfigChange::Replace(replace.clone()), false).await.unwrap();
        assert_eq!(broker.topics()["cfg"].configs, replace, "AlterConfigs replaces every override");
        assert_eq!(p.log.config().retention_ms, LogConfig::default().retention_ms);
        assert_eq!(p.log.config().segment_bytes, 1000);
        let nothing = ConfigChange::Replace(BTreeMap::new());
        let unknown = broker.alter_topic_configs("absent", &nothing, false).await.unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UnknownTopicOrPartition);
        let internal = broker.alter_topic_configs("__consumer_offsets", &nothing, false).await.unwrap_err();
        assert_eq!(internal.code, ErrorCode::InvalidRequest);
        broker.close().await.unwrap();
        drop((p, broker));

        let broker = open(&disk).await;
        assert_eq!(broker.topics()["cfg"].configs, replace);
        assert_eq!(broker.partition("cfg", 0).unwrap().log.config().segment_bytes, 1000);
    });
}
