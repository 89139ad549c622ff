//! The hand-written encoder against kafka-protocol's, byte for byte.

use super::*;
use crate::protocol::response;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, LeaderIdAndEpoch};
use kafka_protocol::messages::{BrokerId, ProducerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use proptest::collection::vec;
use proptest::prelude::*;

/// kafka-protocol's encoding, the reference.
fn reference(version: i16, body: &FetchResponse) -> Result<Bytes, EncodeError> {
    response::encode(ApiKey::Fetch, version, 7, &ResponseKind::Fetch(body.clone()))
}

fn partition(index: i32, records: Option<Bytes>) -> PartitionData {
    PartitionData::default().with_partition_index(index).with_high_watermark(42).with_records(records)
}

fn response(partitions: Vec<PartitionData>) -> FetchResponse {
    let topic = FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("orders")))
        .with_partitions(partitions);
    FetchResponse::default().with_responses(vec![topic])
}

/// `body` as a version that names topics by id (13+) carries it.
fn by_id(mut body: FetchResponse) -> FetchResponse {
    for (i, topic) in body.responses.iter_mut().enumerate() {
        topic.topic = TopicName::default();
        topic.topic_id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0 + i as u128);
    }
    body
}

/// `body` as `version` carries it: by name before 13, by id from 13.
fn for_version(version: i16, body: &FetchResponse) -> FetchResponse {
    if version >= TOPIC_IDS_FROM {
        by_id(body.clone())
    } else {
        body.clone()
    }
}

fn arb_records() -> impl Strategy<Value = Option<Bytes>> {
    // Both sides of the inline threshold, and null.
    let bytes = prop_oneof![
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), INLINE_RECORDS_BYTES_MAX - 1..INLINE_RECORDS_BYTES_MAX + 1),
        vec(any::<u8>(), 5000..9000),
    ];
    proptest::option::weighted(0.8, bytes.prop_map(Bytes::from))
}

fn arb_partition() -> impl Strategy<Value = PartitionData> {
    let aborted = (any::<i64>(), any::<i64>()).prop_map(|(producer, first)| {
        AbortedTransaction::default().with_producer_id(ProducerId(producer)).with_first_offset(first)
    });
    (
        (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>()),
        proptest::option::of(vec(aborted, 0..3)),
        // Versions before 11 cannot carry a preferred replica.
        prop_oneof![4 => Just(-1), 1 => any::<i32>()],
        // A tagged field, which only kafka-protocol's encoder writes.
        proptest::bool::weighted(0.05),
        arb_records(),
    )
        .prop_map(|((index, error, high, stable, start), aborted, replica, leader, records)| {
            let mut p = PartitionData::default()
                .with_partition_index(index)
                .with_error_code(error)
                .with_high_watermark(high)
                .with_last_stable_offset(stable)
                .with_log_start_offset(start)
                .with_aborted_transactions(aborted)
                .with_preferred_read_replica(BrokerId(replica))
                .with_records(records);
            if leader {
                p.current_leader =
                    LeaderIdAndEpoch::default().with_leader_id(BrokerId(3)).with_leader_epoch(9);
            }
            p
        })
}

fn arb_response() -> impl Strategy<Value = FetchResponse> {
    // Named, or (what versions from 13 carry) with an id instead.
    let topic = ("[a-z0-9._-]{0,24}", any::<bool>(), any::<u128>(), vec(arb_partition(), 0..4)).prop_map(
        |(name, by_id, id, partitions)| {
            let topic = FetchableTopicResponse::default().with_partitions(partitions);
            if by_id {
                topic.with_topic_id(uuid::Uuid::from_u128(id))
            } else {
                topic.with_topic(TopicName(StrBytes::from_string(name)))
            }
        },
    );
    (any::<i32>(), any::<i16>(), prop_oneof![4 => Just(0), 1 => any::<i32>()], vec(topic, 0..4)).prop_map(
        |(throttle, error, session, topics)| {
            FetchResponse::default()
                .with_throttle_time_ms(throttle)
                .with_error_code(error)
                .with_session_id(session)
                .with_responses(topics)
        },
    )
}

proptest! {
    /// Every version writes exactly kafka-protocol's bytes, or fails
    /// where it fails.
    #[test]
    fn segments_concatenate_to_the_reference_encoding(body in arb_response()) {
        for version in VERSION_MIN..=VERSION_MAX {
            let expected = reference(version, &body);
            let got = response::encode_frame(ApiKey::Fetch, version, 7, &ResponseKind::Fetch(body.clone()));
            match (expected, got) {
                (Ok(expected), Ok(frame)) => {
                    prop_assert_eq!(frame.len(), expected.len());
                    prop_assert_eq!(frame.to_bytes(), expected, "version {}", version);
                }
                (Err(_), Err(_)) => {}
                (expected, got) => prop_assert!(false, "v{}: {:?} vs {:?}", version, expected, got),
            }
        }
    }
}

/// Large records go out as the very buffer the response held.
#[test]
fn large_records_are_segments_not_copies() {
    let records = Bytes::from(vec![7u8; 100_000]);
    let small = Bytes::from_static(b"tiny");
    let body = response(vec![partition(0, Some(records.clone())), partition(1, Some(small))]);
    for version in VERSION_MIN..=VERSION_MAX {
        let body = for_version(version, &body);
        let frame = encode(version, 7, &body).unwrap().expect("handled");
        let shared = frame.segments().iter().filter(|s| s.as_ptr() == records.as_ptr()).count();
        assert_eq!(shared, 1, "v{version}");
        // Fields, records, the next partition with its records inline.
        assert_eq!(frame.segments().len(), 3, "v{version}");
        assert_eq!(frame.to_bytes(), reference(version, &body).unwrap(), "v{version}");
    }
}

/// What kafka-protocol refuses is refused, not written some other way.
#[test]
fn what_a_version_cannot_carry_falls_back() {
    let long_name = "t".repeat(i16::MAX as usize + 1);
    let mut body = response(vec![partition(0, None)]);
    body.responses[0].topic = TopicName(StrBytes::from_string(long_name));
    assert_eq!(encode(11, 7, &body).unwrap(), None);
    assert!(response::encode_frame(ApiKey::Fetch, 11, 7, &ResponseKind::Fetch(body.clone())).is_err());
    // Flexible versions have room for it.
    assert!(encode(12, 7, &body).unwrap().is_some());

    let body = response(vec![partition(0, None)]).with_session_id(5);
    assert_eq!(encode(6, 7, &body).unwrap(), None);
    assert!(encode(7, 7, &body).unwrap().is_some());
    // A name where an id belongs, and the other way round.
    assert_eq!(encode(13, 7, &response(Vec::new())).unwrap(), None);
    assert!(encode(13, 7, &by_id(response(Vec::new()))).unwrap().is_some());
    assert_eq!(encode(12, 7, &by_id(response(Vec::new()))).unwrap(), None);
}

#[test]
fn varints() {
    for (value, bytes) in [
        (0u32, &[0u8][..]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ] {
        let mut sink = Segments { buf: BytesMut::new(), segments: Vec::new() };
        put_unsigned_varint(&mut sink, value);
        assert_eq!(&sink.buf[..], bytes, "{value}");
    }
}
