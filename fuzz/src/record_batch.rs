//! `record_batch`: arbitrary bytes into `validate_batch`, `BatchScanner` and
//! `decode_records`, checked against the reference parser; decoded batches
//! are re-encoded with `BatchBuilder` and must decode to the same records.

use crate::reference;
use bytes::Bytes;
use ringtail_engine::log::batch::{validate_batch, BatchHeader, BatchScanner};
use ringtail_engine::log::records::{decode_records, iter_records, BatchBuilder, Record};

pub fn run(data: &[u8]) {
    check_validate(data);
    check_scanner(data);
    check_records(data);
}

fn check_validate(data: &[u8]) {
    let reference = reference::parse_one(data).filter(|b| b.size == data.len());
    match (validate_batch(data), reference) {
        (Ok(h), Some(r)) => {
            assert_eq!(h.size_bytes(), data.len(), "validated header size != input size");
            assert_eq!(h.base_offset as u64, r.base_offset);
            assert_eq!(h.next_offset(), r.next_offset);
            assert_eq!(h.max_timestamp, r.max_timestamp);
            assert_eq!(BatchHeader::parse(data), Ok(h), "parse and validate disagree");
        }
        (Err(_), None) => {}
        (got, want) => panic!("validate_batch says {got:?}, the reference parser {want:?}"),
    }
}

fn check_scanner(data: &[u8]) {
    let (want, bad_at) = reference::split_batches(data);
    let mut scanner = BatchScanner::new(data);
    let mut got = Vec::new();
    let mut error_at = None;
    for item in scanner.by_ref() {
        match item {
            Ok((at, h)) => {
                assert!(error_at.is_none(), "the scanner yielded a batch after an error");
                assert_eq!(validate_batch(&data[at..at + h.size_bytes()]), Ok(h), "scanned batch invalid");
                got.push((at, h.size_bytes()));
            }
            Err((at, _)) => {
                assert!(error_at.is_none(), "the scanner yielded two errors");
                error_at = Some(at);
            }
        }
    }
    let want_batches: Vec<(usize, usize)> = want.iter().map(|b| (b.position, b.size)).collect();
    assert_eq!(got, want_batches, "scanner and reference split the buffer differently");
    assert_eq!(error_at, bad_at, "scanner and reference disagree where invalid bytes start");
    assert!(scanner.next().is_none(), "the scanner is not fused");
}

fn check_records(data: &[u8]) {
    let decoded = decode_records(data);
    let iterated = iter_records(data)
        .map(|(h, it)| (h, it.map(|r| r.map(|r| r.to_record())).collect::<Result<Vec<Record>, _>>()));
    match (&decoded, iterated) {
        (Ok((h, records)), Ok((h2, Ok(records2)))) => {
            assert_eq!(*h, h2);
            assert_eq!(records, &records2, "decode_records and iter_records disagree");
            assert_eq!(records.len(), h.record_count as usize, "decoded count != record_count");
            round_trip(h, records);
        }
        (Err(e), Err(e2)) => assert_eq!(e, &e2, "decode_records and iter_records fail differently"),
        (Err(e), Ok((_, Err(e2)))) => assert_eq!(e, &e2, "decode_records and iter_records fail differently"),
        (d, i) => panic!("decode_records gave {d:?}, iter_records {i:?}"),
    }
}

fn encode(h: &BatchHeader, records: &[Record]) -> Bytes {
    let mut b = BatchBuilder::new(h.base_offset, h.base_timestamp);
    b.partition_leader_epoch = h.partition_leader_epoch;
    b.producer_id = h.producer_id;
    b.producer_epoch = h.producer_epoch;
    b.base_sequence = h.base_sequence;
    b.attributes = h.attributes;
    for r in records {
        b.push_record(r.clone());
    }
    b.build()
}

/// decode(encode(decode(x))) == decode(x), and encoding is then stable.
fn round_trip(h: &BatchHeader, records: &[Record]) {
    assert_eq!(h.compression(), 0, "decode_records returned a compressed batch");
    let encoded = encode(h, records);
    let (h2, records2) = decode_records(&encoded).expect("a re-encoded batch decodes");
    assert_eq!(records2, records, "records changed in a decode/encode round trip");
    let same = |a: &BatchHeader, b: &BatchHeader| {
        (a.base_offset, a.partition_leader_epoch, a.attributes, a.base_timestamp)
            == (b.base_offset, b.partition_leader_epoch, b.attributes, b.base_timestamp)
            && (a.producer_id, a.producer_epoch, a.base_sequence, a.record_count)
                == (b.producer_id, b.producer_epoch, b.base_sequence, b.record_count)
    };
    assert!(same(h, &h2), "header fields changed in a round trip: {h:?} -> {h2:?}");
    // Fields the builder derives from the records: equal when the input's
    // were derived the same way (what a plain producer sends).
    let max_delta = records.iter().map(|r| r.offset_delta).max().unwrap_or(0).max(0);
    let max_ts = records
        .iter()
        .map(|r| h.base_timestamp.wrapping_add(r.timestamp_delta))
        .max()
        .unwrap_or(h.base_timestamp);
    if !h.is_control() && h.last_offset_delta == max_delta && h.max_timestamp == max_ts {
        assert_eq!(h2.last_offset_delta, h.last_offset_delta);
        assert_eq!(h2.max_timestamp, h.max_timestamp);
    }
    // A second round trip is byte-for-byte stable.
    let again = encode(&h2, &records2);
    assert_eq!(again, encoded, "encoding is not stable");
}
