//! The v2 batch codec (`log::batch` + `log::records`) against itself, against
//! corruption, and against the kafka-protocol crate in both directions.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use ringtail_engine::log::batch::{validate_batch, BatchError, BatchHeader, BatchScanner};
use ringtail_engine::log::records::{decode_records, BatchBuilder, Record, RecordsError};

type Headers = Vec<(String, Option<Bytes>)>;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn opt_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(bytes(max))
}

/// Header keys are arbitrary Unicode; duplicates allowed, as in Kafka.
fn headers() -> impl Strategy<Value = Headers> {
    vec(("\\PC{0,8}", opt_bytes(16)), 0..4)
}

/// Distinct keys only: kafka-protocol keeps headers in an IndexMap.
fn unique_headers() -> impl Strategy<Value = Headers> {
    btree_map("\\PC{0,8}", opt_bytes(16), 0..4).prop_map(|m| m.into_iter().collect())
}

/// Records with increasing offset deltas (gaps as compaction leaves them)
/// and timestamp deltas of any size.
fn records(
    max_records: usize,
    max_field: usize,
    hdrs: BoxedStrategy<Headers>,
) -> impl Strategy<Value = Vec<Record>> {
    vec((0..3i32, any::<i64>(), opt_bytes(max_field), opt_bytes(max_field), hdrs), 0..max_records).prop_map(
        |rs| {
            let mut next = 0i32;
            rs.into_iter()
                .map(|(gap, timestamp_delta, key, value, headers)| {
                    let offset_delta = next + gap;
                    next = offset_delta + 1;
                    Record { offset_delta, timestamp_delta, key, value, headers }
                })
                .collect()
        },
    )
}

#[derive(Debug, Clone)]
struct Fields {
    base_offset: i64,
    partition_leader_epoch: i32,
    base_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
}

fn fields() -> impl Strategy<Value = Fields> {
    (0..=i64::MAX, any::<i32>(), any::<i64>(), any::<i64>(), any::<i16>(), any::<i32>(), any::<i16>())
        .prop_map(
            |(
                base_offset,
                partition_leader_epoch,
                base_timestamp,
                producer_id,
                producer_epoch,
                base_sequence,
                attributes,
            )| {
                Fields {
                    base_offset,
                    partition_leader_epoch,
                    base_timestamp,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    attributes,
                }
            },
        )
}

fn build(f: &Fields, records: &[Record]) -> Bytes {
    let mut b = BatchBuilder::new(f.base_offset, f.base_timestamp);
    b.partition_leader_epoch = f.partition_leader_epoch;
    b.producer_id = f.producer_id;
    b.producer_epoch = f.producer_epoch;
    b.base_sequence = f.base_sequence;
    b.attributes = f.attributes;
    for r in records {
        b.push_record(r.clone());
    }
    b.build()
}

fn check_header(h: &BatchHeader, f: &Fields, records: &[Record], size: usize) {
    assert_eq!(h.base_offset, f.base_offset);
    assert_eq!(h.partition_leader_epoch, f.partition_leader_epoch);
    assert_eq!(h.magic, 2);
    assert_eq!(h.attributes, f.attributes & !0x07);
    assert_eq!(h.base_timestamp, f.base_timestamp);
    let max_ts = records.iter().map(|r| f.base_timestamp.wrapping_add(r.timestamp_delta)).max();
    assert_eq!(h.max_timestamp, max_ts.unwrap_or(f.base_timestamp));
    assert_eq!(h.producer_id, f.producer_id);
    assert_eq!(h.producer_epoch, f.producer_epoch);
    assert_eq!(h.base_sequence, f.base_sequence);
    assert_eq!(h.record_count as usize, records.len());
    assert_eq!(h.last_offset_delta, records.last().map_or(0, |r| r.offset_delta));
    assert_eq!(h.size_bytes(), size);
}

proptest! {
    #[test]
    fn build_decode_round_trip(f in fields(), rs in records(50, 64, headers().boxed())) {
        let batch = build(&f, &rs);
        let validated = validate_batch(&batch).expect("built batch validates");
        check_header(&validated, &f, &rs, batch.len());
        let (header, decoded) = decode_records(&batch).expect("built batch decodes");
        prop_assert_eq!(header, validated);
        prop_assert_eq!(&decoded, &rs);

        // Two batches back to back split where they should.
        let two = [&batch[..], &batch[..]].concat();
        let scanned: Vec<_> = BatchScanner::new(&two).collect();
        prop_assert_eq!(scanned, vec![Ok((0, header)), Ok((batch.len(), header))]);
    }

    /// Exhaustive single-bit flips. Only base_offset (bytes 0..8) and the
    /// leader epoch (12..16) lie outside the CRC; a flip there is accepted
    /// with just that field changed (unless it makes base_offset negative).
    #[test]
    fn every_bit_flip_outside_offset_and_epoch_is_rejected(
        f in fields(), rs in records(10, 24, headers().boxed())
    ) {
        let batch = build(&f, &rs);
        let mut buf = batch.to_vec();
        for bit in 0..buf.len() * 8 {
            let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
            buf[byte] ^= mask;
            let result = validate_batch(&buf);
            match byte {
                0..=7 => {
                    let flipped = f.base_offset ^ (i64::from(mask) << (8 * (7 - byte)));
                    if flipped < 0 {
                        prop_assert_eq!(result, Err(BatchError::BadHeader("negative base offset")));
                    } else {
                        let h = result.expect("base offset is outside the CRC");
                        prop_assert_eq!(h.base_offset, flipped);
                        let (_, decoded) = decode_records(&buf).expect("decodes");
                        prop_assert_eq!(&decoded, &rs);
                    }
                }
                12..=15 => {
                    let h = result.expect("leader epoch is outside the CRC");
                    let flipped = f.partition_leader_epoch ^ (i32::from(mask) << (8 * (15 - byte)));
                    prop_assert_eq!(h.partition_leader_epoch, flipped);
                    let (_, decoded) = decode_records(&buf).expect("decodes");
                    prop_assert_eq!(&decoded, &rs);
                }
                _ => {
                    prop_assert!(result.is_err(), "flip of bit {} in byte {} accepted", bit % 8, byte);
                    prop_assert!(decode_records(&buf).is_err());
                }
            }
            buf[byte] ^= mask;
        }
    }

    #[test]
    fn every_truncation_is_incomplete(f in fields(), rs in records(10, 24, headers().boxed())) {
        let batch = build(&f, &rs);
        for len in 0..batch.len() {
            let need = if len < 12 { 12 } else if len < 61 { 61 } else { batch.len() };
            let want = BatchError::Incomplete { have: len, need };
            prop_assert_eq!(validate_batch(&batch[..len]), Err(want.clone()));
            prop_assert_eq!(decode_records(&batch[..len]).unwrap_err(), RecordsError::Batch(want));
            if len > 0 {
                let scanned: Vec<_> = BatchScanner::new(&batch[..len]).collect();
                prop_assert_eq!(scanned.len(), 1);
                prop_assert!(scanned[0].is_err());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..600)) {
        let _ = decode_records(&data);
    }

    /// Random record bytes behind a valid header and CRC, so the fuzzing
    /// reaches the record parser rather than stopping at the CRC.
    #[test]
    fn arbitrary_records_behind_a_valid_crc_never_panic(
        body in vec(any::<u8>(), 0..600), count in prop_oneof![0..20i32, any::<i32>()]
    ) {
        let count = count.max(0);
        let batch = with_raw_records(count, &body);
        prop_assert!(validate_batch(&batch).is_ok());
        if let Ok((_, records)) = decode_records(&batch) {
            prop_assert_eq!(records.len(), count as usize);
        }
    }

    /// Corruption inside records of a real batch, CRC recomputed: decoding
    /// either fails or still yields exactly `record_count` records.
    #[test]
    fn corrupted_records_with_fixed_crc_never_panic(
        rs in records(10, 24, headers().boxed()).prop_filter("has records", |r| !r.is_empty()),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let batch = BatchBuilder::new(0, 0).push_records(&rs);
        let mut body = batch[61..].to_vec();
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let batch = with_raw_records(rs.len() as i32, &body);
        if let Ok((_, records)) = decode_records(&batch) {
            prop_assert_eq!(records.len(), rs.len());
        }
    }
}

trait PushAll {
    fn push_records(self, rs: &[Record]) -> Bytes;
}

impl PushAll for BatchBuilder {
    fn push_records(mut self, rs: &[Record]) -> Bytes {
        for r in rs {
            self.push_record(r.clone());
        }
        self.build()
    }
}

/// An empty built batch with `raw` appended as its records, and the length,
/// record count and CRC fixed up.
fn with_raw_records(record_count: i32, raw: &[u8]) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, 0).build().to_vec();
    b.extend_from_slice(raw);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[57..61].copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Timestamps kafka-protocol can handle: its decoder adds deltas without
/// wrapping, so stay far from i64's ends (the real range is epoch millis).
const TS_MAX: i64 = 1 << 50;

#[derive(Debug, Clone)]
struct KpBatch {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    records: Vec<KpRecordSpec>,
}

/// (gap before this record's offset, timestamp, key, value, headers)
type KpRecordSpec = (i64, i64, Option<Bytes>, Option<Bytes>, Headers);

fn kp_batch(min_records: usize) -> impl Strategy<Value = KpBatch> {
    let record = (0..3i64, -1..TS_MAX, opt_bytes(64), opt_bytes(64), unique_headers());
    (
        0..(1i64 << 62),
        any::<i32>(),
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
        any::<bool>(),
        vec(record, min_records..50),
    )
        .prop_map(
            |(
                base_offset,
                partition_leader_epoch,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
                control,
                records,
            )| {
                KpBatch {
                    base_offset,
                    partition_leader_epoch,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    transactional,
                    control,
                    records,
                }
            },
        )
}

fn kp_headers(h: &Headers) -> IndexMap<StrBytes, Option<Bytes>> {
    h.iter().map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone())).collect()
}

fn our_headers(h: &IndexMap<StrBytes, Option<Bytes>>) -> Headers {
    h.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect()
}

proptest! {
    /// kafka-protocol's encoder → our validate_batch and decode_records.
    #[test]
    fn kafka_protocol_encoded_batches_decode(b in kp_batch(1)) {
        let mut offset = b.base_offset;
        let kp: Vec<KpRecord> = b
            .records
            .iter()
            .enumerate()
            .map(|(i, (gap, timestamp, key, value, headers))| {
                if i > 0 {
                    offset += gap + 1;
                }
                KpRecord {
                    transactional: b.transactional,
                    control: b.control,
                    delete_horizon: false,
                    partition_leader_epoch: b.partition_leader_epoch,
                    producer_id: b.producer_id,
                    producer_epoch: b.producer_epoch,
                    timestamp_type: TimestampType::Creation,
                    offset,
                    // Sequence tracks offset, or the encoder splits the batch.
                    sequence: b.base_sequence.wrapping_add((offset - b.base_offset) as i32),
                    timestamp: *timestamp,
                    key: key.clone(),
                    value: value.clone(),
                    headers: kp_headers(headers),
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, &kp, &options).expect("kafka-protocol encodes");

        let validated = validate_batch(&buf).expect("one valid batch");
        let (header, records) = decode_records(&buf).expect("decodes");
        prop_assert_eq!(header, validated);
        prop_assert_eq!(header.base_offset, b.base_offset);
        prop_assert_eq!(header.partition_leader_epoch, b.partition_leader_epoch);
        prop_assert_eq!(header.producer_id, b.producer_id);
        prop_assert_eq!(header.producer_epoch, b.producer_epoch);
        prop_assert_eq!(header.base_sequence, b.base_sequence);
        prop_assert_eq!(header.is_transactional(), b.transactional);
        prop_assert_eq!(header.is_control(), b.control);
        prop_assert_eq!(header.compression(), 0);
        prop_assert_eq!(header.last_offset(), offset as u64);
        prop_assert_eq!(header.max_timestamp, kp.iter().map(|r| r.timestamp).max().unwrap_or(-1));
        prop_assert_eq!(records.len(), kp.len());
        for (ours, theirs) in records.iter().zip(&kp) {
            prop_assert_eq!(ours.offset(&header), theirs.offset);
            prop_assert_eq!(ours.timestamp(&header), theirs.timestamp);
            prop_assert_eq!(&ours.key, &theirs.key);
            prop_assert_eq!(&ours.value, &theirs.value);
            prop_assert_eq!(&ours.headers, &our_headers(&theirs.headers));
        }
    }

    /// Our BatchBuilder → kafka-protocol's decoder (which checks the CRC).
    #[test]
    fn built_batches_decode_with_kafka_protocol(
        b in kp_batch(0), base_timestamp in -1..TS_MAX, log_append_time in any::<bool>()
    ) {
        let mut builder = BatchBuilder::new(b.base_offset, base_timestamp);
        builder.partition_leader_epoch = b.partition_leader_epoch;
        builder.producer_id = b.producer_id;
        builder.producer_epoch = b.producer_epoch;
        builder.base_sequence = b.base_sequence;
        builder.attributes = i16::from(b.transactional) << 4
            | i16::from(b.control) << 5
            | i16::from(log_append_time) << 3;
        let mut offset_delta = 0;
        for (i, (gap, timestamp, key, value, headers)) in b.records.iter().enumerate() {
            if i > 0 {
                offset_delta += *gap as i32 + 1;
            }
            builder.push_record(Record {
                offset_delta,
                timestamp_delta: timestamp - base_timestamp,
                key: key.clone(),
                value: value.clone(),
                headers: headers.clone(),
            });
        }
        let mut batch = builder.build();
        let set = RecordBatchDecoder::decode(&mut batch).expect("kafka-protocol decodes, CRC ok");
        prop_assert!(batch.is_empty(), "kafka-protocol consumed the whole batch");
        prop_assert_eq!(set.version, 2);
        prop_assert_eq!(set.compression, Compression::None);
        prop_assert_eq!(set.records.len(), b.records.len());
        let mut offset_delta = 0;
        for (i, (theirs, (gap, timestamp, key, value, headers))) in set.records.iter().zip(&b.records).enumerate() {
            if i > 0 {
                offset_delta += *gap as i32 + 1;
            }
            prop_assert_eq!(theirs.offset, b.base_offset + i64::from(offset_delta));
            prop_assert_eq!(theirs.sequence, b.base_sequence.wrapping_add(offset_delta));
            // kafka-protocol reports base + delta even under LogAppendTime.
            prop_assert_eq!(theirs.timestamp, *timestamp);
            let ts_type = if log_append_time { TimestampType::LogAppend } else { TimestampType::Creation };
            prop_assert_eq!(theirs.timestamp_type, ts_type);
            prop_assert_eq!(theirs.transactional, b.transactional);
            prop_assert_eq!(theirs.control, b.control);
            prop_assert_eq!(theirs.partition_leader_epoch, b.partition_leader_epoch);
            prop_assert_eq!(theirs.producer_id, b.producer_id);
            prop_assert_eq!(theirs.producer_epoch, b.producer_epoch);
            prop_assert_eq!(&theirs.key, key);
            prop_assert_eq!(&theirs.value, value);
            prop_assert_eq!(&our_headers(&theirs.headers), headers);
        }
    }
}

/// A batch with no records is valid (compaction leaves them) and decodes empty.
#[test]
fn empty_batch() {
    let batch = BatchBuilder::new(42, 7).build();
    assert_eq!(batch.len(), 61);
    let (header, records) = decode_records(&batch).expect("valid");
    assert!(records.is_empty());
    assert_eq!((header.base_offset, header.record_count, header.last_offset_delta), (42, 0, 0));
    assert_eq!((header.base_timestamp, header.max_timestamp), (7, 7));
}

/// `push` numbers records consecutively after the last one, and the builder
/// never writes compression bits.
#[test]
fn push_assigns_next_offset_delta() {
    let mut b = BatchBuilder::new(0, 1_000);
    b.attributes = 0x13; // transactional + gzip bits
    b.push(Some(Bytes::from_static(b"k")), None, 1_000);
    b.push_record(Record { offset_delta: 5, ..Record::default() });
    b.push(None, Some(Bytes::from_static(b"v")), 999);
    assert_eq!(b.len(), 3);
    let (header, records) = decode_records(&b.build()).expect("valid");
    assert_eq!(header.attributes, 0x10);
    let deltas: Vec<_> = records.iter().map(|r| r.offset_delta).collect();
    assert_eq!(deltas, [0, 5, 6]);
    assert_eq!(records[2].timestamp(&header), 999);
    assert_eq!(header.max_timestamp, 1_000);
}
