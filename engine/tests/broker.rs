//! The broker layer: topics, produce/fetch with the high watermark,
//! idempotent producers, list offsets, persistence across restarts.

mod common;

use bytes::Bytes;
use common::{batches, clock, produced_batch, produced_id, runtime};
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Acks, Broker, BrokerConfig, BrokerEndpoint, ErrorCode};
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::{FlushPolicy, LogConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

fn config(auto_create: bool) -> BrokerConfig {
    BrokerConfig {
        node_id: 1,
        advertised: BrokerEndpoint { node_id: 1, host: "127.0.0.1".into(), port: 9092 },
        default_partitions: 2,
        default_replication_factor: None,
        auto_create_topics: auto_create,
        topic_defaults: LogConfig::default(),
        group: ringtail_engine::group::GroupConfig::default(),
        log_cache_bytes: 1 << 20,
        quorum: false,
        replication: ringtail_engine::replica::ReplicationConfig::default(),
        topic_limits: ringtail_engine::broker::TopicLimits::none(),
        cleaner: Default::default(),
    }
}

async fn open(disk: &Arc<MemDisk>, auto_create: bool) -> Broker<MemDisk> {
    Broker::open(
        disk.clone(),
        PathBuf::from("/data"),
        config(auto_create),
        clock(),
        Arc::new(SeededEntropy::new(7)),
    )
    .await
    .unwrap()
    .0
}

fn topic(name: &str, partitions: u32, configs: &[(&str, &str)]) -> CreateTopic {
    CreateTopic {
        name: name.into(),
        partitions: Some(partitions),
        replication_factor: None,
        configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }
}

fn idempotent(pid: i64, seq: i32, id: u64) -> Bytes {
    let mut b = produced_batch(1, id, T0, 50).to_vec();
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.into()
}

/// Topics are created, validated, survive a restart, and are deleted.
#[test]
fn topic_lifecycle() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, false).await;
        let t = broker.create_topic(topic("orders", 3, &[("retention.ms", "1000")]), false).await.unwrap();
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.partitions[0].replicas, vec![1]);
        let again = broker.create_topic(topic("orders", 1, &[]), false).await.unwrap_err();
        assert_eq!(again.code, ErrorCode::TopicAlreadyExists);
        let bad = |t| async { broker.create_topic(t, false).await.unwrap_err().code };
        assert_eq!(bad(topic("bad name", 1, &[])).await, ErrorCode::InvalidTopicException);
        assert_eq!(bad(topic("zero", 0, &[])).await, ErrorCode::InvalidPartitions);
        assert_eq!(bad(topic("cfg", 1, &[("retention.ms", "soon")])).await, ErrorCode::InvalidConfig);
        assert_eq!(bad(topic("cfg", 1, &[("no.such.key", "1")])).await, ErrorCode::InvalidConfig);
        let unclean = [("unclean.leader.election.enable", "yes")];
        assert_eq!(bad(topic("cfg", 1, &unclean)).await, ErrorCode::InvalidConfig);
        let mut rf = topic("rf", 1, &[]);
        rf.replication_factor = Some(3);
        assert_eq!(bad(rf).await, ErrorCode::InvalidReplicationFactor);
        let configs = broker.describe_topic_configs("orders").unwrap();
        let retention = configs.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!((retention.value.as_str(), retention.is_default), ("1000", false));
        let unclean = configs.iter().find(|c| c.name == "unclean.leader.election.enable").unwrap();
        assert_eq!((unclean.value.as_str(), unclean.is_default), ("false", true), "off unless set");
        assert_eq!(broker.partition("orders", 2).unwrap().log.config().retention_ms, Some(1000));
        broker.close().await.unwrap();
        drop(broker);

        let broker = open(&disk, false).await;
        assert_eq!(broker.topics().keys().collect::<Vec<_>>(), vec!["orders"]);
        assert_eq!(broker.partition("orders", 2).unwrap().log.config().retention_ms, Some(1000));
        broker.delete_topic("orders").await.unwrap();
        assert!(broker.partition("orders", 0).is_none());
        let gone = broker.leader_partition("orders", 0).err().map(|e| e.code);
        assert_eq!(gone, Some(ErrorCode::UnknownTopicOrPartition));
        let dirs = ringtail_engine::io::Disk::list_dirs(disk.as_ref(), "/data".as_ref()).await.unwrap();
        assert!(dirs.iter().all(|d| !d.starts_with("orders")), "{dirs:?}");
    });
}

/// Produce assigns offsets; fetch reads below the high watermark, which
/// under flush=always only covers fsynced data; list offsets answers
/// earliest, latest and by time.
#[test]
fn produce_fetch_list_offsets() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, true).await;
        assert!(broker.ensure_topic("events").await.unwrap());
        assert_eq!(broker.topics()["events"].partitions.len(), 2, "auto-created with the default partitions");
        let p = broker.leader_partition("events", 1).unwrap();
        let mut hw = p.high_watermark_watch();
        for i in 0..5u64 {
            let out = p.produce(produced_batch(2, i, T0 + i as i64 * 10, 60), Acks::All).await.unwrap();
            assert_eq!(out.base_offset, i * 2);
        }
        assert!(hw.has_changed().unwrap());
        assert_eq!(*hw.borrow_and_update(), 10);
        let f = p.fetch(4, 1 << 20).await.unwrap();
        assert_eq!(f.high_watermark, 10);
        let got: Vec<u64> = batches(&f.records).iter().map(|(_, b)| produced_id(b)).collect();
        assert_eq!(got, vec![2, 3, 4]);
        assert!(p.fetch(10, 100).await.unwrap().records.is_empty());
        assert_eq!(p.fetch(11, 100).await.unwrap_err().code, ErrorCode::OffsetOutOfRange);
        assert_eq!(p.fetch(-1, 100).await.unwrap_err().code, ErrorCode::OffsetOutOfRange);
        assert_eq!(p.list_offset(-2).await.unwrap(), (0, -1));
        assert_eq!(p.list_offset(-1).await.unwrap(), (10, -1));
        assert_eq!(p.list_offset(T0 + 25).await.unwrap(), (6, T0 + 30));
        assert_eq!(p.list_offset(T0 + 1000).await.unwrap(), (-1, -1));
        let corrupt = Bytes::from_static(b"not a batch at all, not at all");
        assert_eq!(p.produce(corrupt, Acks::All).await.unwrap_err().code, ErrorCode::CorruptMessage);
    });
}

/// Under flush=never the high watermark follows the log end.
#[test]
fn high_watermark_without_fsync() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let mut c = config(false);
        c.topic_defaults = LogConfig { flush: FlushPolicy::Never, ..LogConfig::default() };
        let broker = Broker::open(disk.clone(), "/data".into(), c, clock(), Arc::new(SeededEntropy::new(1)))
            .await
            .unwrap()
            .0;
        broker.create_topic(topic("t", 1, &[]), false).await.unwrap();
        let p = broker.leader_partition("t", 0).unwrap();
        p.produce(produced_batch(3, 1, T0, 50), Acks::Leader).await.unwrap();
        assert_eq!((p.high_watermark(), p.log.flushed_offset()), (3, 0));
    });
}

/// Idempotent producers: a retried batch gets its original offset, a gap is
/// refused, and the state survives a restart; producer ids are never reused.
#[test]
fn idempotent_producers() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, false).await;
        broker.create_topic(topic("t", 1, &[]), false).await.unwrap();
        let (pid, epoch) = broker.init_producer_id().await.unwrap();
        assert_eq!(epoch, 0);
        let p = broker.leader_partition("t", 0).unwrap();
        assert_eq!(p.produce(idempotent(pid, 0, 1), Acks::All).await.unwrap().base_offset, 0);
        assert_eq!(p.produce(idempotent(pid, 1, 2), Acks::All).await.unwrap().base_offset, 1);
        assert_eq!(
            p.produce(idempotent(pid, 0, 1), Acks::All).await.unwrap().base_offset,
            0,
            "retry answered"
        );
        let gap = p.produce(idempotent(pid, 5, 3), Acks::All).await.unwrap_err();
        assert_eq!(gap.code, ErrorCode::OutOfOrderSequenceNumber);
        assert_eq!(p.log.log_end_offset(), 2, "nothing appended for a retry or a gap");
        broker.close().await.unwrap();
        drop((p, broker));

        let broker = open(&disk, false).await;
        let p = broker.leader_partition("t", 0).unwrap();
        assert_eq!(
            p.produce(idempotent(pid, 1, 2), Acks::All).await.unwrap().base_offset,
            1,
            "retry after restart"
        );
        assert_eq!(p.produce(idempotent(pid, 2, 4), Acks::All).await.unwrap().base_offset, 2);
        let (next, _) = broker.init_producer_id().await.unwrap();
        assert!(next > pid, "producer ids are not reused after a restart");
    });
}

/// Damage to acknowledged data in one partition's active segment (below
/// its recovery point, where recovery may not cut) takes that partition
/// offline, not the broker: every other partition is served, the damaged
/// one refuses with KAFKA_STORAGE_ERROR, and it stays offline across
/// restarts (its recovery point is kept, so the damage is never taken for
/// a torn tail and cut) until its topic is deleted.
#[test]
fn damaged_active_segment_takes_only_its_partition_offline() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, false).await;
        for name in ["bad", "good"] {
            broker.create_topic(topic(name, 1, &[]), false).await.unwrap();
            let p = broker.leader_partition(name, 0).unwrap();
            for i in 0..3 {
                p.produce(produced_batch(2, i, T0, 60), Acks::All).await.unwrap();
            }
        }
        broker.close().await.unwrap();
        drop(broker);
        let segment = PathBuf::from("/data/bad-0/00000000000000000000.log");
        disk.corrupt(&segment, 70, 0xff).unwrap();
        let damaged = disk.contents(&segment).unwrap();

        for restart in 0..2 {
            let broker = open(&disk, false).await;
            let offline = broker.offline_partitions();
            assert_eq!(
                offline.keys().map(|tp| tp.to_string()).collect::<Vec<_>>(),
                ["bad-0"],
                "restart {restart}"
            );
            let refused = broker.leader_partition("bad", 0).err().expect("the damaged partition refuses");
            assert_eq!(refused.code, ErrorCode::KafkaStorageError, "restart {restart}");
            let good = broker.leader_partition("good", 0).unwrap();
            let read = good.fetch(0, 1 << 20).await.unwrap();
            assert_eq!(batches(&read.records).len(), 3 + restart as usize, "restart {restart}");
            let out = good.produce(produced_batch(1, 9, T0, 60), Acks::All).await.unwrap();
            assert_eq!(out.base_offset, 6 + restart);
            broker.close().await.unwrap();
            assert_eq!(disk.contents(&segment).unwrap(), damaged, "the damaged log is left as it was");
        }

        let broker = open(&disk, false).await;
        broker.delete_topic("bad").await.unwrap();
        assert!(broker.offline_partitions().is_empty());
        assert!(disk.contents(&segment).is_err(), "the damaged log's files are gone with its topic");
        broker.create_topic(topic("bad", 1, &[]), false).await.unwrap();
        let fresh = broker.leader_partition("bad", 0).unwrap();
        assert_eq!(fresh.produce(produced_batch(1, 1, T0, 60), Acks::All).await.unwrap().base_offset, 0);
    });
}

/// Topics are found by id as by name, through creates, deletes and a
/// restart (which reads the metadata back from its snapshot and journal).
#[test]
fn topics_are_found_by_id_across_changes_and_restarts() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open(&disk, false).await;
        let mut ids = BTreeMap::new();
        for name in ["a", "b", "c"] {
            let t = broker.create_topic(topic(name, 1, &[]), false).await.unwrap();
            ids.insert(name, t.topic_id_bytes());
        }
        broker.delete_topic("b").await.unwrap();
        broker.create_topic(topic("b", 2, &[]), false).await.unwrap();
        let new_b = broker.topic("b").unwrap().topic_id_bytes();
        assert_ne!(new_b, ids["b"], "a re-created topic has a new id");
        let expect = |broker: &Broker<MemDisk>| {
            assert_eq!(broker.topic_name_by_id(ids["a"]).as_deref(), Some("a"));
            assert_eq!(broker.topic_name_by_id(ids["c"]).as_deref(), Some("c"));
            assert_eq!(broker.topic_name_by_id(new_b).as_deref(), Some("b"));
            assert_eq!(broker.topic_name_by_id(ids["b"]), None, "the deleted topic's id is gone");
            assert_eq!(broker.partition_count("b"), Some(2));
        };
        expect(&broker);
        broker.close().await.unwrap();
        drop(broker);
        let broker = open(&disk, false).await;
        expect(&broker);
    });
}

/// The broker's topic limits: partitions beyond `partitions_max` are
/// refused however they are asked for (CreateTopics, CreatePartitions,
/// auto-creation), and segment.bytes / segment.ms below their floors are
/// refused at creation and on a config change.
#[test]
fn topic_limits_bound_partitions_and_segment_sizes() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let mut c = config(true);
        c.topic_limits = ringtail_engine::broker::TopicLimits {
            partitions_max: 5,
            segment_bytes_min: 1 << 20,
            segment_ms_min: 1000,
            ..Default::default()
        };
        let broker =
            Broker::open(disk, "/data".into(), c, clock(), Arc::new(SeededEntropy::new(5))).await.unwrap().0;
        broker.create_topic(topic("a", 3, &[]), false).await.unwrap();
        let refused = broker.create_topic(topic("b", 3, &[]), false).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::PolicyViolation, "{refused:?}");
        assert_eq!(
            broker.create_partitions("a", 6, false).await.unwrap_err().code,
            ErrorCode::PolicyViolation
        );
        // Auto-creation takes the default (2 partitions): to 5, then no more.
        assert!(broker.ensure_topic("auto").await.unwrap());
        assert_eq!(broker.ensure_topic("more").await.unwrap_err().code, ErrorCode::PolicyViolation);
        assert!(broker.topic("b").is_none() && broker.topic("more").is_none());

        broker.delete_topic("auto").await.unwrap();
        for configs in [[("segment.bytes", "1048575")], [("segment.ms", "999")]] {
            let refused = broker.create_topic(topic("small", 1, &configs), false).await.unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidConfig, "{configs:?}");
        }
        let at_floor = [("segment.bytes", "1048576"), ("segment.ms", "1000")];
        broker.create_topic(topic("floor", 1, &at_floor), false).await.unwrap();
        let replace: BTreeMap<String, String> = [("segment.bytes".to_string(), "4096".to_string())].into();
        let change = ringtail_engine::broker::topic_configs::ConfigChange::Replace(replace);
        assert_eq!(
            broker.alter_topic_configs("floor", &change, false).await.unwrap_err().code,
            ErrorCode::InvalidConfig
        );
    });
}
