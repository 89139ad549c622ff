//! What the leader checks and stamps on a producer's batches (Kafka's
//! LogValidator), and ListOffsets by time answering with the record, not
//! the batch around it.

mod common;

use bytes::Bytes;
use common::{batches, runtime};
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Acks, Broker, BrokerConfig, BrokerEndpoint, ErrorCode, Partition};
use ringtail_engine::clock::ManualClock;
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::batch::{BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES};
use ringtail_engine::log::records::{decode_records, BatchBuilder, Record};
use ringtail_engine::log::LogConfig;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 60 * 60 * 1000;

async fn open(clock: Arc<ManualClock>) -> Broker<MemDisk> {
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
    let disk = Arc::new(MemDisk::new());
    Broker::open(disk, PathBuf::from("/data"), config, clock, Arc::new(SeededEntropy::new(7)))
        .await
        .unwrap()
        .0
}

/// A one-partition topic with `configs`, and its partition.
async fn topic(broker: &Broker<MemDisk>, configs: &[(&str, &str)]) -> Arc<Partition<MemDisk>> {
    let request = CreateTopic {
        name: "t".into(),
        partitions: Some(1),
        replication_factor: None,
        configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    broker.create_topic(request, false).await.unwrap();
    broker.leader_partition("t", 0).unwrap()
}

/// One batch holding a record per timestamp, values "v0", "v1", ...
fn records(timestamps: &[i64]) -> BatchBuilder {
    let mut builder = BatchBuilder::new(0, timestamps[0]);
    for (i, &ts) in timestamps.iter().enumerate() {
        builder.push(None, Some(Bytes::from(format!("v{i}"))), ts);
    }
    builder
}

/// `batch` with its records section gzipped, as a compressing producer
/// sends it.
fn gzipped(batch: &[u8]) -> Bytes {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&batch[BATCH_HEADER_BYTES..]).unwrap();
    let mut out = batch[..BATCH_HEADER_BYTES].to_vec();
    out.extend_from_slice(&gzip.finish().unwrap());
    let length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
    out[LOG_OVERHEAD_BYTES - 4..LOG_OVERHEAD_BYTES].copy_from_slice(&length.to_be_bytes());
    out[CRC_START + 1] |= 1;
    reseal(out)
}

/// `batch` with bytes `at..` replaced by `bytes` and its CRC recomputed:
/// a header that lies, but passes the CRC.
fn patched(batch: &[u8], at: usize, bytes: &[u8]) -> Bytes {
    let mut out = batch.to_vec();
    out[at..at + bytes.len()].copy_from_slice(bytes);
    reseal(out)
}

fn reseal(mut batch: Vec<u8>) -> Bytes {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

/// Offsets 0-4 at T0..T0+4 uncompressed, 5-9 at T0+10..T0+14 gzipped,
/// 10-12 at T0+20, T0+30, T0+25 (out of time order, as producers may).
async fn three_batches(p: &Partition<MemDisk>) {
    let plain = records(&[T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]).build();
    p.produce(plain, Acks::All).await.unwrap();
    let compressed = gzipped(&records(&[T0 + 10, T0 + 11, T0 + 12, T0 + 13, T0 + 14]).build());
    p.produce(compressed, Acks::All).await.unwrap();
    p.produce(records(&[T0 + 20, T0 + 30, T0 + 25]).build(), Acks::All).await.unwrap();
}

/// ListOffsets by time answers with the first record at or after the
/// time, inside compressed batches too; MAX_TIMESTAMP with the first
/// record holding the largest timestamp.
#[test]
fn time_lookups_answer_the_record_not_the_batch() {
    runtime().block_on(async {
        let broker = open(Arc::new(ManualClock::new(T0))).await;
        let p = topic(&broker, &[]).await;
        three_batches(&p).await;
        assert_eq!(p.list_offset(T0 + 2).await.unwrap(), (2, T0 + 2));
        assert_eq!(p.list_offset(T0 + 5).await.unwrap(), (5, T0 + 10), "the next batch's first");
        assert_eq!(p.list_offset(T0 + 12).await.unwrap(), (7, T0 + 12), "inside a gzipped batch");
        assert_eq!(
            p.list_offset(T0 + 26).await.unwrap(),
            (11, T0 + 30),
            "the first at or after, not the nearest"
        );
        assert_eq!(p.list_offset(T0 + 31).await.unwrap(), (-1, -1));
        assert_eq!(p.list_offset(-3).await.unwrap(), (11, T0 + 30), "MAX_TIMESTAMP");
        assert_eq!(p.list_offset(-4).await.unwrap(), (0, -1), "EARLIEST_LOCAL: all of it is local");
        assert_eq!(p.list_offset(-5).await.unwrap(), (-1, -1), "LATEST_TIERED: nothing is tiered");
        assert_eq!(p.list_offset(-6).await.unwrap_err().code, ErrorCode::InvalidRequest);
        broker.close().await.unwrap();
    });
}

/// Under LogAppendTime the leader stamps its clock as the batch's max
/// timestamp, which every record then reads as its own, and answers with it.
#[test]
fn log_append_time_is_stamped_by_the_leader() {
    runtime().block_on(async {
        let clock = Arc::new(ManualClock::new(T0 + 500));
        let broker = open(clock.clone()).await;
        let p = topic(&broker, &[("message.timestamp.type", "LogAppendTime")]).await;
        let old = gzipped(&records(&[5, 6, 7]).build());
        let out = p.produce(old, Acks::All).await.unwrap();
        assert_eq!(out.log_append_time, T0 + 500);
        clock.advance_ms(100);
        let out = p.produce(records(&[T0 + 10 * HOUR]).build(), Acks::All).await.unwrap();
        assert_eq!(out.log_append_time, T0 + 600, "no bounds on what the leader overwrites");

        let read = p.fetch(0, 1 << 20).await.unwrap().records;
        let stored = batches(&read);
        assert_eq!(stored.len(), 2);
        for ((header, _), stamp) in stored.iter().zip([T0 + 500, T0 + 600]) {
            assert!(header.is_log_append_time());
            assert_eq!(header.max_timestamp, stamp);
        }
        let (header, decoded) = decode_records(&stored[1].1).unwrap();
        assert!(decoded.iter().all(|r| r.timestamp(&header) == T0 + 600));
        assert_eq!(p.list_offset(T0 + 501).await.unwrap(), (3, T0 + 600));
        let configs = broker.describe_topic_configs("t").unwrap();
        let kind = configs.iter().find(|c| c.name == "message.timestamp.type").unwrap();
        assert_eq!(kind.value, "LogAppendTime");
        broker.close().await.unwrap();
    });
}

/// CreateTime records must lie within the configured window around the
/// broker's clock; a batch with one record outside it is refused whole.
#[test]
fn create_time_timestamps_are_bounded() {
    runtime().block_on(async {
        let broker = open(Arc::new(ManualClock::new(T0))).await;
        let p = topic(&broker, &[("message.timestamp.before.max.ms", "1000")]).await;
        let refused = |timestamps: &'static [i64]| {
            let p = p.clone();
            async move { p.produce(records(timestamps).build(), Acks::All).await.unwrap_err() }
        };
        let e = refused(&[T0, T0 + 2 * HOUR]).await;
        assert_eq!(e.code, ErrorCode::InvalidTimestamp, "{e}");
        assert!(e.message.contains("message.timestamp.after.max.ms"), "{e}");
        let e = refused(&[T0 - 5_000]).await;
        assert_eq!(e.code, ErrorCode::InvalidTimestamp, "{e}");
        assert!(e.message.contains("message.timestamp.before.max.ms"), "{e}");
        assert_eq!(p.log.log_end_offset(), 0, "nothing of a refused batch is written");

        // Inside the window, and Kafka's "no timestamp" (-1), are taken.
        p.produce(records(&[T0 - 500, T0 + HOUR / 2]).build(), Acks::All).await.unwrap();
        p.produce(records(&[-1]).build(), Acks::All).await.unwrap();
        // A producer may not claim the leader's timestamp type.
        let mut claims = records(&[T0]);
        claims.attributes = 0x08;
        let e = p.produce(claims.build(), Acks::All).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTimestamp, "{e}");
        assert_eq!(p.log.log_end_offset(), 3);
        broker.close().await.unwrap();
    });
}

/// A batch's header must describe the records it holds; what only the
/// broker may write is refused; a wrong max timestamp is corrected.
#[test]
fn records_must_match_their_header() {
    runtime().block_on(async {
        let broker = open(Arc::new(ManualClock::new(T0))).await;
        let p = topic(&broker, &[]).await;
        let refused = |batch: Bytes| {
            let p = p.clone();
            async move { p.produce(batch, Acks::All).await.unwrap_err() }
        };
        let two = records(&[T0, T0]).build();
        // Header fields: last_offset_delta at 23, record_count at 57.
        let claims_three = patched(&patched(&two, 23, &2i32.to_be_bytes()), 57, &3i32.to_be_bytes());
        let three = records(&[T0, T0, T0]).build();
        let claims_two = patched(&patched(&three, 23, &1i32.to_be_bytes()), 57, &2i32.to_be_bytes());
        let swapped = {
            // Offset deltas 1, 0: the count and the last delta agree, the
            // records do not.
            let mut b = BatchBuilder::new(0, T0);
            b.push_record(Record { offset_delta: 1, ..Record::default() });
            b.push_record(Record { offset_delta: 0, ..Record::default() });
            b.build()
        };
        let mut control = records(&[T0]);
        control.attributes = 0x20;
        let mut transactional = records(&[T0]);
        transactional.attributes = 0x10;
        let unknown_codec = patched(&two, CRC_START, &7i16.to_be_bytes());
        for (what, batch) in [
            ("a missing record", claims_three),
            ("a record past the count", claims_two),
            ("offsets out of order", swapped),
            ("a control batch", control.build()),
            ("a transactional batch", transactional.build()),
            ("codec 7", unknown_codec),
        ] {
            let e = refused(batch).await;
            assert_eq!(e.code, ErrorCode::InvalidRecord, "{what}: {e}");
        }
        assert_eq!(p.log.log_end_offset(), 0, "nothing refused was written");

        // max_timestamp at 35 says T0, a record says T0 + 7: stored as T0 + 7.
        let lies = patched(&records(&[T0, T0 + 7]).build(), 35, &T0.to_be_bytes());
        p.produce(lies, Acks::All).await.unwrap();
        let read = p.fetch(0, 1 << 20).await.unwrap().records;
        assert_eq!(batches(&read)[0].0.max_timestamp, T0 + 7);
        assert_eq!(p.list_offset(T0 + 5).await.unwrap(), (1, T0 + 7));
        broker.close().await.unwrap();
    });
}
