//! The checks on every handled frame: the decoded header, the response's
//! encoding, shape and values, and what changed in storage.

use super::allowed::Allowed;
use super::asked::{shape, Asked};
use super::fixture::Snapshot;
use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Decodable;
use ringtail_engine::broker::metadata::METADATA_FILE;
use ringtail_engine::broker::metadata_journal::JOURNAL_FILE;
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::checkpoint::{LOG_START_FILE, RECOVERY_POINT_FILE};
use ringtail_engine::log::TopicPartition;
use ringtail_server::protocol::request::Request;
use ringtail_server::protocol::response;
use std::collections::BTreeSet;

/// The decoded header agrees with the prefix `parse` read by hand.
pub(super) fn check_header(request: &Request) {
    assert_eq!(request.header.request_api_key, request.api_key as i16, "header api key");
    assert!(
        ringtail_server::protocol::versions::is_supported(request.api_key, request.version()),
        "{:?} v{} was decoded, but is not implemented",
        request.api_key,
        request.version()
    );
}

/// The response encodes into a frame with the request's correlation id,
/// decodes back to its end, and re-encodes to the same bytes.
pub(super) fn check_encoding(api_key: ApiKey, version: i16, correlation_id: i32, body: &ResponseKind) {
    let frame = response::encode(api_key, version, correlation_id, body)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response does not encode: {e}\n{body:?}"));
    assert!(frame.len() >= 8, "{api_key:?} v{version} response frame of {} bytes", frame.len());
    // What the connection writes (a Fetch response in segments, its records
    // not copied) is the same bytes.
    let written = response::encode_frame(api_key, version, correlation_id, body)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response does not encode as written: {e}"));
    assert_eq!(written.len(), frame.len(), "{api_key:?} v{version} written frame length");
    assert_eq!(written.to_bytes(), frame, "{api_key:?} v{version} written frame differs");
    let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(len as usize, frame.len() - 4, "{api_key:?} v{version} response length prefix");
    assert_eq!(
        i32::from_be_bytes(frame[4..8].try_into().unwrap()),
        correlation_id,
        "{api_key:?} v{version} response carries another correlation id"
    );
    let mut buf = frame.slice(4..);
    let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(version))
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response header does not decode: {e}"));
    assert_eq!(header.correlation_id, correlation_id, "{api_key:?} v{version} decoded correlation id");
    let body_bytes = buf.clone();
    let decoded = ResponseKind::decode(api_key, &mut buf, version)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response does not decode: {e}\n{body:?}"));
    assert!(buf.is_empty(), "{api_key:?} v{version} response: {} bytes after the body", buf.len());
    let mut again = BytesMut::new();
    decoded.encode(&mut again, version).expect("a decoded response re-encodes");
    assert_eq!(&again[..], &body_bytes[..], "{api_key:?} v{version} response does not round-trip");
}

/// One answer per topic and partition asked for; fetched records are whole
/// valid batches below the high watermark.
pub(super) fn check_shape(asked: &Asked, body: &ResponseKind) {
    match (asked, body) {
        (Asked::Produce { shape: s, .. }, ResponseKind::Produce(r)) => {
            assert_eq!(&shape(&r.responses, |t| t.partition_responses.len()), s, "produce answer shape");
        }
        (Asked::Fetch { shape: s }, ResponseKind::Fetch(r)) => {
            if r.error_code != 0 {
                assert!(r.responses.is_empty(), "a failed fetch answered partitions");
                return;
            }
            assert_eq!(&shape(&r.responses, |t| t.partitions.len()), s, "fetch answer shape");
            for p in r.responses.iter().flat_map(|t| &t.partitions) {
                let records = p.records.as_deref().unwrap_or_default();
                if p.error_code != 0 {
                    assert!(records.is_empty(), "a failed fetch partition returned records");
                    continue;
                }
                for item in BatchScanner::new(records) {
                    let (at, h) =
                        item.unwrap_or_else(|(at, e)| panic!("fetched records invalid at {at}: {e}"));
                    assert!(
                        h.next_offset() as i64 <= p.high_watermark,
                        "fetched batch at {at} ends at {} past the high watermark {}",
                        h.next_offset(),
                        p.high_watermark
                    );
                }
            }
        }
        (Asked::ListOffsets { shape: s }, ResponseKind::ListOffsets(r)) => {
            assert_eq!(&shape(&r.topics, |t| t.partitions.len()), s, "list offsets answer shape");
        }
        (Asked::Metadata { topics, .. }, ResponseKind::Metadata(r)) => {
            if let Some(n) = topics {
                assert_eq!(r.topics.len(), *n, "metadata answers {} topics for {n} asked", r.topics.len());
            }
        }
        (Asked::CreateTopics { count, .. }, ResponseKind::CreateTopics(r)) => {
            assert_eq!(r.topics.len(), *count, "create topics answer count");
        }
        (Asked::DeleteTopics { count }, ResponseKind::DeleteTopics(r)) => {
            assert_eq!(r.responses.len(), *count, "delete topics answer count");
        }
        (Asked::DescribeConfigs { count }, ResponseKind::DescribeConfigs(r)) => {
            assert_eq!(r.results.len(), *count, "describe configs answer count");
        }
        (Asked::OffsetForLeaderEpoch { shape: s }, ResponseKind::OffsetForLeaderEpoch(r)) => {
            assert_eq!(&shape(&r.topics, |t| t.partitions.len()), s, "offset for leader epoch answer shape");
        }
        (Asked::Other, _) => {}
        (asked, body) => panic!("a {asked:?} request answered with {body:?}"),
    }
}

/// Offsets answered agree with the partitions' state after the request.
pub(super) fn check_values(body: &ResponseKind, version: i16, after: &Snapshot) {
    let state = |topic: &str, index: i32| {
        let tp = TopicPartition::new(topic, index);
        match after.partitions.get(&tp) {
            Some(&offsets) => (tp, offsets),
            None => panic!("{tp} answered without an error, but no such partition is hosted"),
        }
    };
    match body {
        ResponseKind::Produce(r) => {
            for t in &r.responses {
                for p in t.partition_responses.iter().filter(|p| p.error_code == 0) {
                    let (tp, (start, end, _)) = state(t.name.as_str(), p.index);
                    assert!(
                        p.base_offset >= 0 && (p.base_offset as u64) < end,
                        "produce to {tp} answered base offset {} with the log end at {end}",
                        p.base_offset
                    );
                    if version >= 5 {
                        assert_eq!(p.log_start_offset, start as i64, "produce to {tp}: log start offset");
                    }
                }
            }
        }
        ResponseKind::ListOffsets(r) => {
            for t in &r.topics {
                for p in t.partitions.iter().filter(|p| p.error_code == 0) {
                    let (tp, (start, _, hw)) = state(t.name.as_str(), p.partition_index);
                    assert!(
                        p.offset == -1 || (start as i64..=hw as i64).contains(&p.offset),
                        "list offsets of {tp} answered {} outside [{start}, {hw}]",
                        p.offset
                    );
                }
            }
        }
        _ => {}
    }
}

/// Nothing stored changed but what `allowed` allows.
pub(super) fn check_changes(asked: &Asked, allowed: &Allowed, before: &Snapshot, after: &Snapshot) {
    let context = || format!("request {asked:?}, allowed changes {allowed:?}");
    // Topics: exactly those created appear, those deleted go.
    for name in before.topics.keys().chain(after.topics.keys()) {
        let (was, is) = (before.topics.get(name), after.topics.get(name));
        if allowed.created.contains(name) {
            assert!(was.is_none() && is.is_some(), "topic {name} reported created; {}", context());
        } else if allowed.deleted.contains(name) {
            assert!(was.is_some() && is.is_none(), "topic {name} reported deleted; {}", context());
        } else {
            assert_eq!(was, is, "topic {name} changed; {}", context());
        }
    }
    // The persisted metadata is what the broker shows.
    let persisted = after.persisted.as_ref().expect("the metadata file exists");
    assert_eq!(persisted.topics, after.topics, "persisted topics differ from the broker's; {}", context());
    let was = before.persisted.as_ref().expect("the metadata file exists");
    assert_eq!(persisted.cluster_id, was.cluster_id, "the cluster id changed");
    if allowed.producer_ids {
        assert!(persisted.next_producer_id >= was.next_producer_id, "the producer id reservation went back");
    } else {
        assert_eq!(persisted.next_producer_id, was.next_producer_id, "producer ids reserved; {}", context());
    }
    // Hosted partitions: those of the topics, offsets moved by produce only.
    let hosted: BTreeSet<&TopicPartition> = after.partitions.keys().collect();
    let assigned: Vec<TopicPartition> = after
        .topics
        .iter()
        .flat_map(|(name, t)| (0..t.partitions.len()).map(move |i| TopicPartition::new(name, i as i32)))
        .collect();
    assert_eq!(hosted, assigned.iter().collect(), "hosted partitions differ from the topics'; {}", context());
    for (tp, &now) in &after.partitions {
        match before.partitions.get(tp) {
            None => assert!(allowed.created.contains(&tp.topic), "partition {tp} appeared; {}", context()),
            Some(&was) if allowed.produced.contains(tp) => {
                assert_eq!(now.0, was.0, "produce moved the log start of {tp}");
                assert!(now.1 >= was.1 && now.2 >= was.2, "{tp} went back from {was:?} to {now:?}");
            }
            Some(&was) if !allowed.created.contains(&tp.topic) => {
                assert_eq!(now, was, "{tp} (log start, end, high watermark) changed; {}", context());
            }
            Some(_) => {}
        }
    }
    // Files: each change is explained.
    let paths: BTreeSet<&String> = before.files.keys().chain(after.files.keys()).collect();
    for path in paths {
        if before.files.get(path) == after.files.get(path) {
            continue;
        }
        let first = path.split('/').next().unwrap();
        let explained = if first == METADATA_FILE || first == JOURNAL_FILE {
            // Its contents were compared above.
            !allowed.created.is_empty() || !allowed.deleted.is_empty() || allowed.producer_ids
        } else if first == RECOVERY_POINT_FILE || first == LOG_START_FILE {
            // Deleting a log writes the checkpoints of all.
            !allowed.deleted.is_empty()
        } else if let Some(tp) = TopicPartition::from_dir_name(first) {
            allowed.produced.contains(&tp)
                || allowed.created.contains(&tp.topic)
                || allowed.deleted.contains(&tp.topic)
        } else {
            false
        };
        let how = match (before.files.get(path), after.files.get(path)) {
            (None, _) => "appeared",
            (_, None) => "disappeared",
            _ => "changed",
        };
        assert!(explained, "{path} {how}; {}", context());
    }
}
