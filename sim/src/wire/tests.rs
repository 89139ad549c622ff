use super::*;

/// Every request and response kind survives encoding, and damaged or
/// truncated messages are refused rather than misread.
#[test]
fn round_trip_and_refuse_damage() {
    let requests = [
        Request::CreateTopic { name: "t".into(), partitions: 3, configs: vec![("a".into(), "1".into())] },
        Request::DeleteTopic { name: "t".into() },
        Request::Produce { topic: "t".into(), partition: 2, acks: -1, records: Bytes::from_static(b"xyz") },
        Request::Fetch { topic: "t".into(), partition: 0, offset: 42, max_bytes: 7 },
        Request::ListOffsets { topic: "t".into(), partition: 1, timestamp: -2 },
        Request::FindCoordinator { group: "g".into() },
        Request::JoinGroup {
            group: "g".into(),
            member_id: String::new(),
            session_timeout_ms: 3000,
            rebalance_timeout_ms: -1,
            metadata: Bytes::from_static(b"t"),
        },
        Request::SyncGroup {
            group: "g".into(),
            generation: 4,
            member_id: "m".into(),
            assignments: vec![("m".into(), Bytes::from_static(b"\0\x01"))],
        },
        Request::Heartbeat { group: "g".into(), generation: 4, member_id: "m".into() },
        Request::LeaveGroup { group: "g".into(), member_id: "m".into() },
        Request::OffsetCommit {
            group: "g".into(),
            generation: 4,
            member_id: "m".into(),
            offsets: vec![("t".into(), 1, 77), ("t".into(), 2, -1)],
        },
        Request::OffsetFetch { group: "g".into(), partitions: vec![("t".into(), 0)] },
    ];
    for body in requests {
        let msg = Envelope { id: 9, epoch: 0, body };
        let bytes = encode_request(&msg);
        assert_eq!(decode_request(&bytes), Ok(msg));
        assert!(decode_request(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_request(&longer).is_err());
    }
    let responses = [
        Response::Created,
        Response::Deleted,
        Response::Produced { base_offset: 5, log_start_offset: 1 },
        Response::Fetched { records: Bytes::from_static(b"abc"), high_watermark: 9, log_start_offset: 0 },
        Response::Offset { offset: -1 },
        Response::Error { code: 1, message: "out".into(), log_range: Some((3, 8)) },
        Response::Error { code: 56, message: "io".into(), log_range: None },
        Response::Coordinator { node_id: 1 },
        Response::Joined {
            error: 79,
            generation: -1,
            leader: String::new(),
            member_id: "m-1".into(),
            members: vec![("m-1".into(), Bytes::from_static(b"t"))],
        },
        Response::Synced { error: 0, assignment: Bytes::from_static(b"a") },
        Response::GroupOk,
        Response::Committed { errors: vec![0, 22] },
        Response::Offsets { offsets: vec![("t".into(), 0, -1, 0), ("t".into(), 1, 9, 16)] },
    ];
    for body in responses {
        let msg = Envelope { id: u64::MAX, epoch: 3, body };
        let bytes = encode_response(&msg);
        assert_eq!(decode_response(&bytes), Ok(msg));
        assert!(decode_response(&bytes[..bytes.len() - 1]).is_err());
    }
    let mut huge = encode_request(&Envelope {
        id: 1,
        epoch: 0,
        body: Request::Produce { topic: "t".into(), partition: 0, acks: 1, records: Bytes::new() },
    });
    let n = huge.len();
    huge[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode_request(&huge), Err(DecodeError("blob longer than RECORDS_BYTES_MAX")));
}
