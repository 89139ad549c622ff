//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

pub mod quorum;

use bytes::{BufMut, Bytes, BytesMut};
use ringtail_engine::clock::ManualClock;
use ringtail_engine::log::batch::{BatchHeader, BatchScanner};
use ringtail_engine::log::records::{decode_records, BatchBuilder};
use std::sync::Arc;

/// A valid v2 batch of `records` records whose opaque payload starts with
/// `id`, so tests can tell batches apart after a read. The log treats the
/// records section as opaque, so its contents need not be real records.
pub fn batch(records: u32, id: u64, timestamp: i64, payload_bytes: usize) -> Bytes {
    assert!(records >= 1 && payload_bytes >= 8);
    let mut b = BytesMut::with_capacity(61 + payload_bytes);
    b.put_i64(0); // base offset: the log assigns it
    b.put_i32((49 + payload_bytes) as i32);
    b.put_i32(-1); // partition leader epoch
    b.put_i8(2);
    b.put_u32(0); // crc, filled below
    b.put_i16(0);
    b.put_i32(records as i32 - 1);
    b.put_i64(timestamp);
    b.put_i64(timestamp);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(records as i32);
    b.put_u64(id);
    b.put_bytes((id % 251) as u8, payload_bytes - 8);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// A batch of `records` real records, as a producer sends them (the leader
/// reads each record of a produced batch), whose first record's value
/// starts with `id` and is `payload_bytes` long; `produced_id` reads it back.
pub fn produced_batch(records: u32, id: u64, timestamp: i64, payload_bytes: usize) -> Bytes {
    assert!(records >= 1 && payload_bytes >= 8);
    let mut builder = BatchBuilder::new(0, timestamp);
    let mut value = id.to_be_bytes().to_vec();
    value.resize(payload_bytes, (id % 251) as u8);
    builder.push(None, Some(Bytes::from(value)), timestamp);
    for _ in 1..records {
        builder.push(None, Some(Bytes::from_static(b"more")), timestamp);
    }
    builder.build()
}

/// The id `produced_batch` put into a batch.
pub fn produced_id(batch: &[u8]) -> u64 {
    let (_, records) = decode_records(batch).expect("a batch of real records");
    let value = records[0].value.as_ref().expect("a value");
    u64::from_be_bytes(value[..8].try_into().unwrap())
}

/// The id `batch` put into a batch.
pub fn id_of(batch: &[u8]) -> u64 {
    u64::from_be_bytes(batch[61..69].try_into().unwrap())
}

/// Splits a read result into its batches, asserting each is valid.
pub fn batches(bytes: &Bytes) -> Vec<(BatchHeader, Bytes)> {
    BatchScanner::new(bytes)
        .map(|item| {
            let (at, header) = item.expect("a read returns only valid batches");
            (header, bytes.slice(at..at + header.size_bytes()))
        })
        .collect()
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A single node's broker config, at 127.0.0.1:9092, auto-creation off,
/// no limits; `quorum` makes it a cluster member.
pub fn broker_config(quorum: bool) -> ringtail_engine::broker::BrokerConfig {
    use ringtail_engine::broker::{BrokerConfig, BrokerEndpoint};
    BrokerConfig {
        node_id: 1,
        advertised: BrokerEndpoint { node_id: 1, host: "127.0.0.1".into(), port: 9092 },
        default_partitions: 1,
        default_replication_factor: None,
        auto_create_topics: false,
        topic_defaults: ringtail_engine::log::LogConfig::default(),
        group: ringtail_engine::group::GroupConfig::default(),
        log_cache_bytes: 1 << 20,
        quorum,
        replication: ringtail_engine::replica::ReplicationConfig::default(),
        topic_limits: ringtail_engine::broker::TopicLimits::none(),
        cleaner: Default::default(),
    }
}

/// A broker with `broker_config(quorum)` on `disk`'s `/data`.
pub async fn open_broker(
    disk: &Arc<ringtail_engine::io::MemDisk>,
    quorum: bool,
) -> ringtail_engine::broker::Broker<ringtail_engine::io::MemDisk> {
    let entropy = Arc::new(ringtail_engine::entropy::SeededEntropy::new(7));
    let dir = std::path::PathBuf::from("/data");
    ringtail_engine::broker::Broker::open(disk.clone(), dir, broker_config(quorum), clock(), entropy)
        .await
        .unwrap()
        .0
}
