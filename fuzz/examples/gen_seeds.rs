//! Writes the seed corpora: `cargo run --example gen_seeds` (from fuzz/), or
//! those of some targets: `cargo run --example gen_seeds -- kafka_request`.
//!
//! - record_batch: batches built with `BatchBuilder` (empty, keys, values,
//!   headers, nulls), an opaque batch, two in a row, torn, bad CRC,
//!   compressed, control, and the kafka-protocol documentation batch.
//! - segment_bytes: segments written by the engine itself on a `MemDisk`
//!   (3 batches; two segments with their index files), then torn, zero-
//!   padded, bit-flipped, overlapping and index-damaged variants.
//! - log_recovery: `arbitrary` decodes bytes, so seeds are found by search:
//!   pseudo-random inputs whose scenarios show each feature (crash kinds,
//!   flips, faults, retention, truncation, group commit, the manager).
//! - kafka_request: requests encoded with kafka-protocol, one frame each
//!   (every implemented API, old and new versions) and a few streams, plus
//!   malformed frames (huge array counts, truncated, negative lengths).
//!
//! - produce_batches: requests built with `BatchBuilder` (and compressed
//!   with gzip, snappy and lz4), one per feature: several batches,
//!   idempotent sequences with a retry, a gap and a new epoch,
//!   LogAppendTime, tight timestamp bounds, a small max.message.bytes,
//!   rolling segments then a reopen, and batches the rules refuse.
//! - group_member_metadata: operation sequences, one per feature: a
//!   rebalance to Stable with commits, two members, MEMBER_ID_REQUIRED,
//!   static members rejoining, metadata and assignments at and past the
//!   1 MiB cap, a group record too large for the offsets log, offset
//!   metadata limits and deletes, session and offset expiry, a failover.
//!
//! Deterministic: the same files every run. Seeds are named `seed-*`; the
//! fuzzer's own additions (hash names) are left alone.

use bytes::Bytes;
use ringtail_engine::clock::ManualClock;
use ringtail_engine::io::{Disk, MemDisk};
use ringtail_engine::log::records::{BatchBuilder, Record};
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{Log, LogCache, LogConfig};
use ringtail_fuzz::exec::block_on;
use ringtail_fuzz::gen::opaque_batch;
use ringtail_fuzz::kafka_request::{
    request_frame, seed_batch, single, stream, MODE_FIX_CRC, MODE_NO_AUTO_CREATE,
};
use ringtail_fuzz::log_recovery::{CrashKind, FlushChoice, Op, Scenario};
use ringtail_fuzz::segment_bytes::{Input, SegmentFiles};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn out_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(target: &str, name: &str, data: &[u8]) {
    std::fs::write(out_dir(target).join(format!("seed-{name}")), data).unwrap();
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn record_batch_seeds() {
    let t = "record_batch";
    write(t, "empty", &BatchBuilder::new(0, 1_700_000_000_000).build());
    let mut b = BatchBuilder::new(5, 1_700_000_000_000);
    b.push(Some(Bytes::from_static(b"key")), Some(Bytes::from_static(b"value")), 1_700_000_000_007);
    let one = b.build();
    write(t, "one-record", &one);
    let mut b = BatchBuilder::new(0, 1_000);
    b.producer_id = 42;
    b.producer_epoch = 1;
    b.base_sequence = 7;
    b.push(None, Some(Bytes::from_static(b"v1")), 1_000).push(Some(Bytes::from_static(b"k")), None, 990);
    b.push_record(Record {
        offset_delta: 2,
        timestamp_delta: 5,
        key: Some(Bytes::from_static(b"")),
        value: Some(Bytes::from_static(b"with headers")),
        headers: vec![("h1".into(), Some(Bytes::from_static(b"x"))), ("h2".into(), None)],
    });
    let three = b.build();
    write(t, "headers-nulls", &three);
    write(t, "opaque", &opaque_batch(2, 9, 1_000, 24));
    write(t, "two-batches", &[&one[..], &three[..]].concat());
    write(t, "torn", &three[..three.len() - 5]);
    let mut bad = three.to_vec();
    bad[70] ^= 0x10;
    write(t, "bad-crc", &bad);
    let mut compressed = one.to_vec();
    compressed[22] |= 4; // zstd
    fix_crc(&mut compressed);
    write(t, "compressed", &compressed);
    let mut control = BatchBuilder::new(0, 0);
    control.attributes = 0x30; // transactional control batch
    control.push(Some(Bytes::from_static(&[0, 0, 0, 1])), Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])), 0);
    write(t, "control", &control.build());
    // The batch in kafka-protocol's records.rs docs (record attributes 1).
    const DOC: [u8; 79] = [
        0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x43, 0x0, 0x0, 0x0, 0x0, 0x2, 0x73, 0x6d,
        0x29, 0x7b, 0x0, 0x0, 0x0, 0x0, 0x0, 0x3, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1, 0x0,
        0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
        0x0, 0x1, 0x22, 0x1, 0xd0, 0xf, 0x2, 0xa, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xa, 0x77, 0x6f, 0x72, 0x6c,
        0x64, 0x0,
    ];
    write(t, "kafka-protocol-doc", &DOC);
}

/// Segments as the engine writes them: `first` batches, a roll, then
/// `second` batches, closed cleanly (index files written).
fn engine_segments(first: u64, second: u64) -> Vec<SegmentFiles> {
    let disk = Arc::new(MemDisk::new());
    let dir = PathBuf::from("/g/t-0");
    let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    block_on(async {
        let (log, _) =
            Log::open(disk.clone(), dir.clone(), config, clock, LogCheckpoint::default(), &LogCache::new(0))
                .await
                .unwrap();
        for i in 0..first + second {
            if i == first {
                log.roll().await.unwrap();
            }
            log.append(opaque_batch(1 + i as u32 % 3, i, 1_700_000_000_000 + i as i64, 16), 1).await.unwrap();
        }
        log.close().await.unwrap();
        let mut segments = Vec::new();
        for name in disk.list(&dir).await.unwrap() {
            let Some(stem) = name.strip_suffix(".log") else { continue };
            let base: u64 = stem.parse().unwrap();
            let read = |suffix: &str| disk.contents(&dir.join(format!("{stem}{suffix}"))).unwrap_or_default();
            segments.push(SegmentFiles {
                base,
                log: read(".log"),
                indexes: Some((read(".index"), read(".timeindex"))),
            });
        }
        segments
    })
}

fn segment_bytes_seeds() {
    let t = "segment_bytes";
    let single = engine_segments(3, 0).remove(0);
    let plain = |log: Vec<u8>, rp: u64| Input {
        index_interval_bytes: 4096,
        recovery_point: rp,
        a: SegmentFiles { base: 0, log, indexes: None },
        b: None,
    };
    write(t, "three-batches", &plain(single.log.clone(), 0).encode());
    let log = &single.log;
    write(t, "torn-last", &plain(log[..log.len() - 7].to_vec(), 0).encode());
    write(t, "torn-header", &plain(log[..log.len() - 100].to_vec(), 0).encode());
    write(t, "zero-tail", &plain([&log[..], &[0u8; 300][..]].concat(), 0).encode());
    let mut flipped = log.clone();
    flipped[90] ^= 0x04; // inside the first batch's CRC-covered bytes
    write(t, "flip-first", &plain(flipped, 0).encode());
    let mut offset_gap = log.clone();
    let second_at = 61 + 16;
    offset_gap[second_at + 7] ^= 0x08; // the second batch's base offset
    write(t, "offset-gap", &plain(offset_gap, 0).encode());

    let two = engine_segments(3, 2);
    let (a, b) = (two[0].clone(), two[1].clone());
    let sealed = |a: SegmentFiles, b: SegmentFiles, rp: u64| Input {
        index_interval_bytes: 1,
        recovery_point: rp,
        a,
        b: Some(b),
    };
    write(t, "two-sealed", &sealed(a.clone(), b.clone(), 255).encode());
    write(t, "two-scanned", &sealed(a.clone(), b.clone(), 0).encode());
    let mut torn_b = b.clone();
    torn_b.log.truncate(b.log.len() - 3);
    write(t, "two-torn-active", &sealed(a.clone(), torn_b, 255).encode());
    let mut damaged_a = a.clone();
    damaged_a.log[100] ^= 0x80;
    write(t, "two-damaged-sealed", &sealed(damaged_a.clone(), b.clone(), 255).encode());
    write(t, "two-damaged-scanned", &sealed(damaged_a, b.clone(), 0).encode());
    let mut bad_index = a.clone();
    if let Some((index, _)) = &mut bad_index.indexes {
        if index.len() >= 8 {
            index[7] ^= 0x01; // an entry's position, off by one
        }
    }
    // A known bug (index-trusted): kept in regressions/segment_bytes/ as
    // bad-index-entry-hides-intact-batch, not written as a seed.
    let _ = sealed(bad_index, b.clone(), 255);
    // Overlapping segments (B starts inside A) reproduce a known bug: the
    // input lives in regressions/segment_bytes/overlap-keeps-empty-segment.
    let mut no_index = a;
    no_index.indexes = None;
    write(t, "two-sealed-no-index", &sealed(no_index, b, 255).encode());
}

/// Feature tests for search-found log_recovery seeds.
/// A seed's name and the test its scenario must pass.
type Feature = (&'static str, fn(&Scenario) -> bool);

fn features() -> Vec<Feature> {
    fn has(s: &Scenario, f: impl Fn(&Op) -> bool) -> bool {
        s.ops.iter().take(64).any(f)
    }
    fn appends(s: &Scenario) -> usize {
        s.ops.iter().take(64).filter(|o| matches!(o, Op::Append { .. })).count()
    }
    vec![
        ("always-drop", |s| {
            matches!(s.config.flush, FlushChoice::Always)
                && s.crash.kind == CrashKind::DropUnsynced
                && appends(s) >= 4
        }),
        ("never-tear", |s| {
            matches!(s.config.flush, FlushChoice::Never) && s.crash.kind == CrashKind::Tear && appends(s) >= 4
        }),
        ("interval-keep", |s| {
            matches!(s.config.flush, FlushChoice::Interval(_))
                && s.crash.kind == CrashKind::KeepAll
                && appends(s) >= 3
        }),
        ("roll-retention", |s| {
            has(s, |o| matches!(o, Op::Roll)) && has(s, |o| matches!(o, Op::Retention)) && appends(s) >= 3
        }),
        ("truncate-delete", |s| {
            has(s, |o| matches!(o, Op::Truncate { .. }))
                && has(s, |o| matches!(o, Op::DeleteRecordsBefore { .. }))
                && appends(s) >= 3
        }),
        ("flips", |s| !s.crash.flips().is_empty() && appends(s) >= 4),
        ("mid-crash-flips", |s| {
            has(s, |o| matches!(o, Op::Crash(c) if !c.flips().is_empty())) && appends(s) >= 3
        }),
        ("manager-reopen", |s| s.via_manager && has(s, |o| matches!(o, Op::Reopen)) && appends(s) >= 3),
        ("failed-sync", |s| has(s, |o| matches!(o, Op::FailNextSyncs { .. })) && appends(s) >= 3),
        ("disk-full", |s| has(s, |o| matches!(o, Op::DiskFull { .. })) && appends(s) >= 3),
        ("group-commit", |s| {
            s.sync_yields % 3 > 0 && has(s, |o| matches!(o, Op::Concurrent { .. })) && appends(s) >= 2
        }),
    ]
}

fn log_recovery_seeds() {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    for (name, wanted) in features() {
        let mut found = false;
        for _ in 0..200_000 {
            let len = 60 + usize::from(next()) / 2 + usize::from(next()) / 2;
            let data: Vec<u8> = (0..len).map(|_| next()).collect();
            let Some(s) = Scenario::decode(&data) else { continue };
            if s.ops.len() > 40 || !wanted(&s) {
                continue;
            }
            let passes = std::panic::catch_unwind(|| ringtail_fuzz::log_recovery::run(&data)).is_ok();
            if !passes {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/gen_seeds");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("failing-{name}")), &data).unwrap();
                eprintln!("log_recovery seed candidate {name} fails: kept in artifacts/gen_seeds/");
                continue;
            }
            write("log_recovery", name, &data);
            found = true;
            break;
        }
        if !found {
            eprintln!("no log_recovery seed found for {name}");
        }
    }
}

mod kafka {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    fn s(value: &'static str) -> StrBytes {
        StrBytes::from_static_str(value)
    }

    fn topic(name: &'static str) -> TopicName {
        TopicName(s(name))
    }

    pub fn api_versions(v: i16) -> Vec<u8> {
        let mut r = ApiVersionsRequest::default();
        if v >= 3 {
            r = r.with_client_software_name(s("ringtail-fuzz")).with_client_software_version(s("0.0.0"));
        }
        request_frame(ApiKey::ApiVersions, v, 1, &r)
    }

    pub fn metadata(v: i16, names: &[&'static str], auto_create: bool) -> Vec<u8> {
        let topics = names
            .iter()
            .map(|n| metadata_request::MetadataRequestTopic::default().with_name(Some(topic(n))))
            .collect();
        let mut r = MetadataRequest::default().with_topics(Some(topics));
        if v >= 4 {
            r.allow_auto_topic_creation = auto_create;
        }
        request_frame(ApiKey::Metadata, v, 2, &r)
    }

    pub fn metadata_all(v: i16) -> Vec<u8> {
        let r = MetadataRequest::default().with_topics(if v == 0 { Some(vec![]) } else { None });
        request_frame(ApiKey::Metadata, v, 3, &r)
    }

    pub fn create_topics(v: i16, name: &'static str, partitions: i32, validate_only: bool) -> Vec<u8> {
        let t = create_topics_request::CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("3600000")))]);
        let mut r = CreateTopicsRequest::default().with_topics(vec![t]).with_timeout_ms(1000);
        if v >= 1 {
            r.validate_only = validate_only;
        }
        request_frame(ApiKey::CreateTopics, v, 4, &r)
    }

    pub fn produce(v: i16, name: &'static str, partition: i32, acks: i16, records: Bytes) -> Vec<u8> {
        let p = produce_request::PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records));
        let t =
            produce_request::TopicProduceData::default().with_name(topic(name)).with_partition_data(vec![p]);
        let r = ProduceRequest::default().with_acks(acks).with_timeout_ms(1000).with_topic_data(vec![t]);
        request_frame(ApiKey::Produce, v, 5, &r)
    }

    /// A fetch of partitions 0, 1, ... from `offsets`.
    pub fn fetch(v: i16, name: &'static str, offsets: &[i64], min_bytes: i32) -> Vec<u8> {
        let partitions = (0..)
            .zip(offsets)
            .map(|(i, &offset)| {
                fetch_request::FetchPartition::default()
                    .with_partition(i)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset)
                    .with_log_start_offset(-1)
                    .with_last_fetched_epoch(-1)
                    .with_partition_max_bytes(1 << 20)
            })
            .collect();
        let t = fetch_request::FetchTopic::default().with_topic(topic(name)).with_partitions(partitions);
        let mut r = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(min_bytes)
            .with_max_bytes(1 << 24)
            .with_topics(vec![t]);
        if v >= 7 {
            r.session_epoch = -1;
        }
        request_frame(ApiKey::Fetch, v, 6, &r)
    }

    pub fn list_offsets(v: i16, name: &'static str) -> Vec<u8> {
        // The fixture's t-0 has batches at T0 - 10 s, - 9 s, - 8 s.
        let timestamps: &[i64] =
            if v >= 7 { &[-1, -2, -3, 1_699_999_990_500] } else { &[-1, -2, 1_699_999_990_500] };
        let partitions = timestamps
            .iter()
            .map(|&ts| {
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(ts)
            })
            .collect();
        let t = list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic(name))
            .with_partitions(partitions);
        let r = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![t]);
        request_frame(ApiKey::ListOffsets, v, 7, &r)
    }

    pub fn delete_topics(v: i16, name: &'static str) -> Vec<u8> {
        let mut r = DeleteTopicsRequest::default().with_timeout_ms(1000);
        if v >= 6 {
            r.topics = vec![delete_topics_request::DeleteTopicState::default().with_name(Some(topic(name)))];
        } else {
            r.topic_names = vec![topic(name)];
        }
        request_frame(ApiKey::DeleteTopics, v, 8, &r)
    }

    pub fn describe_configs(v: i16) -> Vec<u8> {
        let resources = vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("u"))
                .with_configuration_keys(None),
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("1"))
                .with_configuration_keys(Some(vec![s("x")])),
        ];
        let r =
            DescribeConfigsRequest::default().with_resources(resources).with_include_documentation(v >= 3);
        request_frame(ApiKey::DescribeConfigs, v, 9, &r)
    }

    pub fn init_producer_id(v: i16) -> Vec<u8> {
        let mut r =
            InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
        if v >= 3 {
            r.producer_id = ProducerId(-1);
            r.producer_epoch = -1;
        }
        request_frame(ApiKey::InitProducerId, v, 10, &r)
    }

    pub fn offset_for_leader_epoch(v: i16) -> Vec<u8> {
        let p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
            .with_partition(0)
            .with_current_leader_epoch(-1)
            .with_leader_epoch(0);
        let t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(topic("t"))
            .with_partitions(vec![p]);
        let mut r = OffsetForLeaderEpochRequest::default().with_topics(vec![t]);
        if v >= 3 {
            r.replica_id = BrokerId(-1);
        }
        request_frame(ApiKey::OffsetForLeaderEpoch, v, 11, &r)
    }

    /// An idempotent batch (producer 0, epoch 0, sequence 0).
    pub fn idempotent_batch() -> Bytes {
        let mut b = BatchBuilder::new(0, 1_700_000_000_000);
        b.producer_id = 0;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        b.push(None, Some(Bytes::from_static(b"idempotent")), 1_700_000_000_000);
        b.build()
    }
}

fn kafka_request_seeds() {
    use kafka::*;
    let t = "kafka_request";
    let one = |name: &str, frame: &[u8]| write(t, name, &single(frame, 0));
    one("api-versions-v0", &api_versions(0));
    one("api-versions-v3", &api_versions(3));
    // A version newer than ours: the v0 fallback answer.
    let mut future = api_versions(3);
    future[3] = 9;
    one("api-versions-future", &future);
    one("metadata-v0-all", &metadata_all(0));
    one("metadata-v12-auto-create", &metadata(12, &["t", "fresh"], true));
    one("metadata-v4-no-auto-create", &metadata(4, &["t", "absent"], false));
    write(
        t,
        "metadata-v1-broker-no-auto-create",
        &single(&metadata(1, &["absent"], true), MODE_NO_AUTO_CREATE),
    );
    one("create-topics-v7", &create_topics(7, "created", 3, false));
    one("create-topics-v2-validate-only", &create_topics(2, "checked", 2, true));
    one("produce-v9", &produce(9, "t", 1, -1, seed_batch(3)));
    one("produce-v3-acks-0", &produce(3, "t", 0, 0, seed_batch(1)));
    one("produce-v11-idempotent", &produce(11, "t", 1, 1, idempotent_batch()));
    one("fetch-v12", &fetch(12, "t", &[0, 0], 1));
    // At the end of t-0 (offset 4), wanting more than there will be.
    one("fetch-v4-long-poll", &fetch(4, "t", &[4], 1 << 20));
    one("list-offsets-v7", &list_offsets(7, "t"));
    one("list-offsets-v1", &list_offsets(1, "t"));
    one("delete-topics-v6", &delete_topics(6, "u"));
    one("delete-topics-v1", &delete_topics(1, "t"));
    one("describe-configs-v4", &describe_configs(4));
    one("init-producer-id-v4", &init_producer_id(4));
    one("offset-for-leader-epoch-v4", &offset_for_leader_epoch(4));
    // Streams: a client's session.
    write(
        t,
        "stream-create-produce-fetch-delete",
        &stream(
            &[
                api_versions(3),
                create_topics(5, "s", 2, false),
                produce(7, "s", 0, -1, seed_batch(2)),
                produce(7, "s", 1, 1, seed_batch(1)),
                fetch(11, "s", &[0, 0], 1),
                list_offsets(5, "s"),
                delete_topics(4, "s"),
                metadata_all(9),
            ],
            0,
        ),
    );
    write(
        t,
        "stream-idempotent-producer",
        &stream(
            &[
                init_producer_id(2),
                produce(8, "u", 0, -1, idempotent_batch()),
                produce(8, "u", 0, -1, idempotent_batch()),
                fetch(10, "u", &[0], 1),
            ],
            0,
        ),
    );
    // Malformed.
    let mut huge = metadata(1, &["t"], true);
    let at = huge.len() - 7; // the topics array count (i32) before "t"
    huge[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    one("malformed-huge-array-count", &huge);
    let mut huge_compact = metadata(9, &["t"], true);
    // Header v2: key, version, correlation id, client id (2+4), no tags (1).
    let body = 8 + 2 + 4 + 1;
    assert_eq!(huge_compact[body], 2, "compact count of one topic");
    huge_compact.splice(body..body + 1, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    one("malformed-huge-compact-array-count", &huge_compact);
    let valid = produce(9, "t", 0, -1, seed_batch(2));
    one("malformed-truncated-produce", &valid[..valid.len() - 9]);
    let mut negative = metadata(1, &["t"], true);
    let at = negative.len() - 3; // the name's i16 length
    negative[at..at + 2].copy_from_slice(&(-2i16).to_be_bytes());
    one("malformed-negative-string-length", &negative);
    let mut bad_crc = valid.clone();
    let at = bad_crc.len() - 4; // in the last record (then tags of the partition, topic, request)
    bad_crc[at] ^= 0x55;
    one("malformed-batch-crc", &bad_crc);
    let mut negative_frame = stream(&[api_versions(0)], 0);
    negative_frame.extend_from_slice(&(-5i32).to_be_bytes());
    negative_frame.extend_from_slice(&api_versions(0));
    write(t, "malformed-negative-frame-length", &negative_frame);
    let mut overlong = stream(&[metadata_all(1)], 0);
    overlong.extend_from_slice(&(100 * 1024 * 1024i32).to_be_bytes());
    overlong.extend_from_slice(&api_versions(0));
    write(t, "malformed-frame-past-the-stream", &overlong);
    one("malformed-short-header", &[0, 18, 0]);
    // Batches with valid CRCs (mode bit 2) but unusual contents: a negative
    // timestamp, then the largest-timestamp lookup; a compressed flag with
    // records that do not decompress; a control batch; a producer that
    // skips a sequence number.
    let mut negative_ts = BatchBuilder::new(0, -5_000);
    negative_ts.push(None, Some(Bytes::from_static(b"old")), -5_000);
    let mut compressed = seed_batch(1).to_vec();
    compressed[22] |= 1; // gzip
    let mut control = BatchBuilder::new(0, 0);
    control.attributes = 0x30;
    control.push(Some(Bytes::from_static(&[0, 0, 0, 1])), Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])), 0);
    let mut gap = idempotent_batch().to_vec();
    gap[53..57].copy_from_slice(&5i32.to_be_bytes()); // base sequence
    write(
        t,
        "fix-crc-odd-batches",
        &stream(
            &[
                produce(9, "t", 1, -1, negative_ts.build()),
                list_offsets(7, "t"),
                produce(9, "u", 0, 1, Bytes::from(compressed)),
                produce(9, "u", 0, 1, control.build()),
                produce(9, "u", 0, -1, Bytes::from(gap)),
                fetch(12, "u", &[0], 1),
            ],
            MODE_FIX_CRC,
        ),
    );
}

fn produce_batches_seeds() {
    use ringtail_fuzz::produce_batches::*;
    let t = "produce_batches";
    let input = |cfg: u8, requests: &[Vec<u8>]| [vec![cfg], requests.concat()].concat();
    let plain = batch(&[b"a", b"bb", b"ccc"], T0, -1, -1);
    write(t, "plain", &input(0, &[request(0, &plain)]));
    let two = [&plain[..], &batch(&[b"d"], T0 + 5, -1, -1)[..]].concat();
    write(t, "two-batches", &input(CFG_DENSE_INDEX, &[request(0, &two), request(clock_step(1), &plain)]));
    let seq = |records: &[&[u8]], s: i32| batch(records, T0, 7, s);
    let mut new_epoch = seq(&[b"e1"], 0).to_vec();
    new_epoch[51..53].copy_from_slice(&1i16.to_be_bytes()); // producer epoch
    write(
        t,
        "idempotent-sequences",
        &input(
            0,
            &[
                request(0, &seq(&[b"s0", b"s1"], 0)),
                request(0, &seq(&[b"s2"], 2)),
                request(0, &seq(&[b"s0", b"s1"], 0)), // a retry
                request(0, &seq(&[b"gap"], 9)),
                request(OP_NEW_EPOCH, &new_epoch),
                request(0, &[&seq(&[b"x"], 1)[..], &plain[..]].concat()), // two batches, one idempotent
            ],
        ),
    );
    let mut lat = plain.to_vec();
    lat[22] |= 0x08;
    write(
        t,
        "log-append-time",
        &input(CFG_LOG_APPEND_TIME | CFG_REOPEN, &[request(clock_step(2), &plain), request(0, &lat)]),
    );
    write(
        t,
        "tight-timestamps",
        &input(
            CFG_TIGHT_TIMESTAMPS,
            &[
                request(0, &batch(&[b"now"], T0, -1, -1)),
                request(0, &batch(&[b"old"], T0 - 120_000, -1, -1)),
                request(0, &batch(&[b"none"], -1, -1, -1)),
                request(clock_step(5), &plain),
            ],
        ),
    );
    let big = batch(&[&[7u8; 300][..], &[8u8; 300][..]], T0, -1, -1);
    write(t, "small-max-message", &input(CFG_SMALL_MAX_MESSAGE, &[request(0, &big), request(0, &plain)]));
    let rolls: Vec<Vec<u8>> = (0..8u8)
        .map(|i| {
            request(
                if i == 4 { OP_NEW_EPOCH } else { clock_step(i % 4) },
                &batch(&[&[i; 150][..]], T0, -1, -1),
            )
        })
        .collect();
    write(
        t,
        "rolls-then-reopen",
        &input(CFG_SMALL_SEGMENTS | CFG_DENSE_INDEX | CFG_REOPEN | CFG_FLUSH_NEVER, &rolls),
    );
    let gzip = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let snappy = |b: &[u8]| snap::raw::Encoder::new().compress_vec(b).unwrap();
    let lz4 = |b: &[u8]| {
        use std::io::Write;
        let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    write(
        t,
        "compressed",
        &input(
            CFG_REOPEN,
            &[
                request(0, &compressed(&plain, 1, gzip)),
                request(0, &compressed(&plain, 2, snappy)),
                request(0, &compressed(&batch(&[b"lz", b"4"], T0, 3, 0), 3, lz4)),
            ],
        ),
    );
    let mut control = plain.to_vec();
    control[22] |= 0x20;
    let mut transactional = plain.to_vec();
    transactional[22] |= 0x10;
    let mut count = plain.to_vec();
    count[57..61].copy_from_slice(&2i32.to_be_bytes());
    let mut delta = plain.to_vec();
    delta[23..27].copy_from_slice(&1i32.to_be_bytes());
    let mut bad_crc = plain.to_vec();
    bad_crc[70] ^= 1;
    write(
        t,
        "refused",
        &input(
            0,
            &[
                request(0, &control),
                request(0, &transactional),
                request(0, &count),
                request(0, &delta),
                request(OP_KEEP_CRC, &bad_crc),
                request(0, &[]),
                request(0, &plain[..40]),
            ],
        ),
    );
}

fn group_member_metadata_seeds() {
    use ringtail_fuzz::group_member_metadata::*;
    let t = "group_member_metadata";
    let input = |cfg: u8, ops: &[Op]| [vec![cfg], ops.iter().flat_map(|o| o.encode()).collect()].concat();
    // JoinGroup: slot, group, static, size (0-7), consumer metadata,
    // session choice (0: 10 s), flags (bit 0: no member id).
    let join = |slot: u8, group: u8, stat: bool, size: u8, flags: u8| {
        Op::new(OpKind::Join, flags, slot | group << 2 | u8::from(stat) << 3, size | 1 << 3 | 2 << 4, 0)
    };
    let sync = |slot: u8, size: u8| Op::new(OpKind::Sync, 0, slot, size | size << 3, 0x5a);
    let commit = |slot: u8, simple: bool, metadata: u8| {
        Op::new(OpKind::Commit, 0, slot | u8::from(simple) << 3, 1 | metadata << 2, 42)
    };
    let tick = |choice: u8| Op::new(OpKind::Tick, 0, choice, 0, 0);
    let heartbeat = |slot: u8| Op::new(OpKind::Heartbeat, 0, slot, 0, 0);
    let leave = |slot: u8| Op::new(OpKind::Leave, 0, slot, 0, 0);
    let reload = |take_over: bool| Op::new(OpKind::Reload, u8::from(take_over), 0, 0, 0);
    write(
        t,
        "one-member-stable",
        &input(
            0,
            &[
                join(0, 0, false, 2, 0),
                sync(0, 1),
                heartbeat(0),
                commit(0, false, 3),
                reload(false),
                leave(0),
            ],
        ),
    );
    write(
        t,
        "two-members-failover",
        &input(
            0,
            &[
                join(0, 0, false, 2, 0),
                join(1, 0, false, 3, 0),
                join(0, 0, false, 2, 0),
                sync(0, 2),
                sync(1, 0),
                commit(1, false, 1),
                reload(true),
                heartbeat(0),
                heartbeat(1),
                commit(0, false, 2),
                leave(1),
                join(0, 0, false, 2, 0),
            ],
        ),
    );
    let require = Op::new(OpKind::Join, 0, 1 << 6, 2 | 1 << 3, 0);
    write(
        t,
        "member-id-required",
        &input(CFG_INITIAL_DELAY, &[require, require, tick(2), sync(0, 1), reload(false)]),
    );
    write(
        t,
        "static-rejoin",
        &input(
            0,
            &[
                join(2, 1, true, 2, 0),
                Op::new(OpKind::Sync, 0, 2 | 1 << 2, 1 | 1 << 3, 0),
                join(2, 1, true, 2, 1),
                reload(false),
                Op::new(OpKind::Leave, 0, 2 | 1 << 2 | 1 << 3, 0, 0),
            ],
        ),
    );
    write(
        t,
        "metadata-caps",
        &input(
            0,
            &[
                join(0, 0, false, 7, 0),
                join(0, 0, false, 6, 0),
                sync(0, 7),
                sync(0, 6),
                join(0, 0, false, 6, 0),
                sync(0, 1),
                reload(false),
            ],
        ),
    );
    write(
        t,
        "record-too-large",
        &input(0, &[join(0, 0, false, 5, 0), sync(0, 4), join(0, 0, false, 4, 0), sync(0, 3), reload(false)]),
    );
    // (A static rejoin whose record is too large for the log is kept as
    // regressions/group_member_metadata/static-rejoin-persist-failure-kept.)
    write(
        t,
        "offsets-and-deletes",
        &input(
            0,
            &[
                commit(0, true, 4),
                commit(0, true, 5),
                commit(0, true, 7),
                Op::new(OpKind::Commit, 2, 1 << 3, 3 | 1 << 2, 9),
                Op::new(OpKind::Delete, 1, 0, 0, 0),
                reload(false),
                Op::new(OpKind::Delete, 0, 0, 0, 0),
                commit(0, false, 1),
            ],
        ),
    );
    write(
        t,
        "expiry",
        &input(
            CFG_SMALL_GROUPS,
            &[
                join(0, 0, false, 1, 0),
                sync(0, 1),
                commit(0, false, 1),
                join(1, 0, false, 1, 0),
                join(2, 0, false, 1, 0),
                tick(3),
                tick(4),
                tick(5),
                reload(false),
                tick(7),
                reload(false),
            ],
        ),
    );
    let connect = Op::new(OpKind::Join, 0, 1 | 1 << 5 | 1 << 7, 2, 0);
    write(
        t,
        "protocol-mismatch",
        &input(CFG_RELOAD_EVERY_OP, &[join(0, 0, false, 2, 0), connect, sync(0, 1)]),
    );
}

/// `cargo run --example gen_seeds [TARGET...]`: the seeds of the targets
/// named, or of all.
fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let generators: [(&str, fn()); 6] = [
        ("record_batch", record_batch_seeds),
        ("segment_bytes", segment_bytes_seeds),
        ("log_recovery", log_recovery_seeds),
        ("kafka_request", kafka_request_seeds),
        ("produce_batches", produce_batches_seeds),
        ("group_member_metadata", group_member_metadata_seeds),
    ];
    for (name, generate) in generators {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            generate();
        }
    }
    for (t, _) in generators {
        eprintln!("{t}: {} files", std::fs::read_dir(out_dir(t)).unwrap().count());
    }
}
