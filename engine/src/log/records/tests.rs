//! Round trips, hostile input and the builder's sizing.

use super::build::{put_varint, put_varlong, unsigned_len, varint_len, zigzag64};
use super::decode::Reader;
use super::*;
use crate::log::batch::{
    set_base_offset, BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES, TIMESTAMP_LOG_APPEND_TIME,
};

fn varint_bytes(v: i32) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, v);
    out
}

fn varlong_bytes(v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    put_varlong(&mut out, v);
    out
}

// Vectors from Kafka's ByteUtilsTest (zigzag LEB128).
#[test]
fn varint_vectors() {
    let cases: &[(i32, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (63, &[0x7e]),
        (-64, &[0x7f]),
        (64, &[0x80, 0x01]),
        (-65, &[0x81, 0x01]),
        (8191, &[0xfe, 0x7f]),
        (-8192, &[0xff, 0x7f]),
        (8192, &[0x80, 0x80, 0x01]),
        (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
        (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for &(v, bytes) in cases {
        assert_eq!(varint_bytes(v), bytes, "encode {v}");
        let mut r = Reader { buf: bytes };
        assert_eq!(r.varint(), Ok(v), "decode {v}");
        assert!(r.buf.is_empty());
    }
}

#[test]
fn varlong_vectors() {
    let cases: &[(i64, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (i64::from(i32::MAX) + 1, &[0x80, 0x80, 0x80, 0x80, 0x10]),
        (i64::MAX, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        (i64::MIN, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ];
    for &(v, bytes) in cases {
        assert_eq!(varlong_bytes(v), bytes, "encode {v}");
        let mut r = Reader { buf: bytes };
        assert_eq!(r.varlong(), Ok(v), "decode {v}");
        assert!(r.buf.is_empty());
    }
}

#[test]
fn varints_reject_overlong_overflowing_and_truncated() {
    let bad_varints: &[&[u8]] = &[
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // six bytes
        &[0xff, 0xff, 0xff, 0xff, 0x1f],       // bit 32 set
        &[0x80],                               // truncated
        &[],
    ];
    for bytes in bad_varints {
        assert!(Reader { buf: bytes }.varint().is_err(), "{bytes:x?}");
    }
    let bad_varlongs: &[&[u8]] = &[
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03],
        &[0xff, 0xff],
    ];
    for bytes in bad_varlongs {
        assert!(Reader { buf: bytes }.varlong().is_err(), "{bytes:x?}");
    }
    // Non-canonical but in range: accepted, as Kafka does.
    assert_eq!(Reader { buf: &[0x82, 0x00] }.varint(), Ok(1));
}

#[test]
fn varint_round_trips_edges() {
    for v in [i32::MIN, i32::MIN + 1, -300, -1, 0, 1, 300, i32::MAX - 1, i32::MAX] {
        assert_eq!(Reader { buf: &varint_bytes(v) }.varint(), Ok(v));
    }
    for v in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
        assert_eq!(Reader { buf: &varlong_bytes(v) }.varlong(), Ok(v));
    }
}

/// `build` sizes a batch before writing it: the lengths must be the
/// bytes the encoders write.
#[test]
fn varint_lengths_match_the_encoding() {
    for v in [i32::MIN, -65, -64, -1, 0, 63, 64, 8191, 8192, i32::MAX] {
        assert_eq!(varint_len(v), varint_bytes(v).len(), "{v}");
    }
    for v in [i64::MIN, -1, 0, 63, 64, 1 << 34, i64::MAX] {
        assert_eq!(unsigned_len(zigzag64(v)), varlong_bytes(v).len(), "{v}");
    }
}

/// The batch in kafka-protocol's records.rs docs: one record, key
/// "hello", value "world", record attributes byte 1 (ignored).
#[test]
fn decodes_kafka_protocol_doc_batch() {
    const BATCH: [u8; 79] = [
        0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x43, 0x0, 0x0, 0x0, 0x0, 0x2, 0x73, 0x6d,
        0x29, 0x7b, 0x0, 0x0, 0x0, 0x0, 0x0, 0x3, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1, 0x0,
        0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
        0x0, 0x1, 0x22, 0x1, 0xd0, 0xf, 0x2, 0xa, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xa, 0x77, 0x6f, 0x72, 0x6c,
        0x64, 0x0,
    ];
    let (header, records) = decode_records(&BATCH).expect("valid batch");
    assert_eq!(header.record_count, 1);
    assert_eq!(header.crc, 0x736d_297b);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.offset_delta, 1);
    assert_eq!(r.timestamp_delta, 1000);
    assert_eq!(r.key.as_deref(), Some(&b"hello"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"world"[..]));
    assert!(r.headers.is_empty());
}

#[test]
fn compressed_and_unknown_codecs_are_refused() {
    for (attributes, want) in [
        (1, RecordsError::Compressed(1)),
        (4, RecordsError::Compressed(4)),
        (5, RecordsError::UnknownCodec(5)),
    ] {
        let mut b = BatchBuilder::new(0, 0);
        b.push(None, Some(Bytes::from_static(b"v")), 0);
        // build() clears compression bits, so set them afterwards.
        let mut bytes = b.build().to_vec();
        bytes[22] |= attributes;
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(decode_records(&bytes).unwrap_err(), want);
    }
}

/// Rebuilds a one-record batch around a hand-written record body.
fn batch_with_raw_records(record_count: i32, raw: &[u8]) -> Vec<u8> {
    let mut bytes = BatchBuilder::new(0, 0).build().to_vec();
    bytes.extend_from_slice(raw);
    let len = (bytes.len() - LOG_OVERHEAD_BYTES) as i32;
    bytes[8..12].copy_from_slice(&len.to_be_bytes());
    bytes[57..61].copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[CRC_START..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn malformed_records_are_named() {
    let malformed = |count, raw: &[u8]| decode_records(&batch_with_raw_records(count, raw)).unwrap_err();
    let at0 = |reason| RecordsError::Malformed { index: 0, reason };
    // A valid minimal record: length 6, attrs, ts 0, off 0, null key, null value, 0 headers.
    let ok = [0x0c, 0, 0, 0, 0x01, 0x01, 0];
    assert_eq!(decode_records(&batch_with_raw_records(1, &ok)).map(|(_, r)| r.len()), Ok(1));
    assert_eq!(malformed(2, &ok), RecordsError::Malformed { index: 1, reason: "truncated" });
    assert_eq!(malformed(0, &ok), RecordsError::TrailingBytes(7));
    assert_eq!(malformed(1, &[0x01]), at0("negative record length"));
    assert_eq!(malformed(1, &[0x0e, 0, 0, 0, 1, 1, 0]), at0("length exceeds the remaining bytes"));
    assert_eq!(malformed(1, &[0x0e, 0, 0, 0, 1, 1, 0, 0]), at0("record length exceeds its fields"));
    assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 0x03, 1, 0]), at0("length below -1"));
    assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 0x06, 1, 0]), at0("length exceeds the remaining bytes"));
    assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 1, 1, 0x01]), at0("negative header count"));
    // One header claimed, but none present; then a huge claimed count.
    assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 1, 1, 0x02]), at0("truncated"));
    assert_eq!(malformed(1, &[0x10, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f]), at0("truncated"));
    // Header key 0xff is not UTF-8.
    assert_eq!(malformed(1, &[0x12, 0, 0, 0, 1, 1, 0x02, 0x02, 0xff, 0x01]), at0("header key is not UTF-8"));
    // A huge record count with no bytes does not preallocate.
    assert_eq!(malformed(i32::MAX, &[]), at0("truncated"));
}

#[test]
fn absolute_offset_and_timestamp() {
    let mut b = BatchBuilder::new(100, 5_000);
    b.push(None, None, 5_007).push(None, None, 4_990);
    let (header, records) = decode_records(&b.build()).expect("valid");
    assert_eq!(header.max_timestamp, 5_007);
    assert_eq!(header.last_offset_delta, 1);
    assert_eq!(records[1].offset(&header), 101);
    assert_eq!(records[1].timestamp(&header), 4_990);
    let log_append = BatchHeader { attributes: TIMESTAMP_LOG_APPEND_TIME, ..header };
    assert_eq!(records[1].timestamp(&log_append), 5_007);
}

fn record_with_headers(delta: i32, key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> Record {
    Record {
        offset_delta: delta,
        timestamp_delta: i64::from(delta) * 3,
        key: key.map(Bytes::from_static),
        value: value.map(Bytes::from_static),
        headers: vec![("h".to_owned(), Some(Bytes::from_static(b"x"))), ("n".to_owned(), None)],
    }
}

/// Read in place, a record has the offset, timestamp, key, value and
/// headers that its owned copy has, and its bytes are slices of the batch.
#[test]
fn reads_in_place_what_decode_records_copies() {
    for attributes in [0, TIMESTAMP_LOG_APPEND_TIME] {
        let mut b = BatchBuilder::new(0, 1000);
        b.attributes = attributes;
        b.push_record(record_with_headers(0, None, Some(b"a")));
        b.push_record(record_with_headers(1, Some(b"k"), None));
        b.push_record(record_with_headers(2, None, Some(b"")));
        let mut bytes = b.build().to_vec();
        set_base_offset(&mut bytes, 40);
        let (header, owned) = decode_records(&bytes).expect("valid");
        let (header2, in_place) = iter_records(&bytes).expect("valid");
        assert_eq!(header, header2);
        let in_place: Vec<RecordRef<'_>> = in_place.collect::<Result<_, _>>().expect("records");
        assert_eq!(in_place.len(), owned.len());
        for (got, want) in in_place.iter().zip(&owned) {
            assert_eq!(got.offset, want.offset(&header));
            assert_eq!(got.timestamp_ms, want.timestamp(&header));
            assert_eq!(got.key, want.key.as_deref());
            assert_eq!(got.value, want.value.as_deref());
            let headers: Vec<_> =
                got.headers().map(|(k, v)| (k.to_owned(), v.map(Bytes::copy_from_slice))).collect();
            assert_eq!(headers, want.headers);
            assert_eq!(&got.to_record(), want);
            for slice in [got.key, got.value].into_iter().flatten().filter(|s| !s.is_empty()) {
                assert!(bytes.as_ptr_range().contains(&slice.as_ptr()), "copied, not borrowed");
            }
        }
        assert_eq!(in_place[2].offset, 42);
    }
}

/// No input panics the in-place reader: every prefix of a valid batch and
/// every single-byte change, with the CRC made to match, is either read
/// (headers included) or refused.
#[test]
fn hostile_input_never_panics_in_place() {
    let mut b = BatchBuilder::new(5, 0);
    b.push_record(record_with_headers(0, Some(b"key"), Some(b"value")));
    b.push_record(Record { offset_delta: 1, ..Record::default() });
    let bytes = b.build().to_vec();
    for cut in 0..bytes.len() {
        assert!(iter_records(&bytes[..cut]).is_err());
    }
    let mut refused = 0;
    for at in BATCH_HEADER_BYTES..bytes.len() {
        for delta in [1u8, 0x40, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[at] = bad[at].wrapping_add(delta);
            let crc = crc32c::crc32c(&bad[CRC_START..]);
            bad[17..21].copy_from_slice(&crc.to_be_bytes());
            let (_, records) = iter_records(&bad).expect("the CRC matches");
            for record in records {
                match record {
                    Ok(record) => assert!(record.headers().count() <= 2),
                    Err(_) => refused += 1,
                }
            }
        }
    }
    assert!(refused > 0);
}
