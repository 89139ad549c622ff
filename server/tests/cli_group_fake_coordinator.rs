//! Consumer groups against a fake coordinator (one member, scripted
//! answers): the member's side of the protocol, message by message, as
//! `ringtail consume --group` and the client's `GroupMember` speak it. The
//! command lines and runs against a real server are in
//! `cli_group_commands.rs`.

mod cli_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cli_support::{
    all_api_ranges, api_versions_body, encode, group_api_ranges, metadata_body, FakeBroker, Reply,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, FindCoordinatorResponse, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use ringtail_client::assignor::decode_assignment;
use ringtail_client::{Client, ClientConfig, GroupMember, MemberConfig};
use ringtail_engine::log::records::BatchBuilder;
use ringtail_server::cli::consume::{consume_into, ConsumeArgs, StartFrom};

// ---------------------------------------------------------------------------
// A fake coordinator: one broker, topic "t" with 2 partitions of 3 records
// each, a group coordinator for any number of groups with one member.

#[derive(Default)]
struct Fake {
    /// API names in the order requested (ApiVersions and Metadata left out).
    log: Vec<String>,
    generation: i32,
    member_id: String,
    assignment: Bytes,
    commits: BTreeMap<(String, i32), i64>,
    /// Answer the next heartbeat with REBALANCE_IN_PROGRESS.
    rebalance_next_heartbeat: bool,
    /// Answer the next JoinGroup with NOT_COORDINATOR.
    not_coordinator_next_join: bool,
}

const RECORDS_PER_PARTITION: i64 = 3;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn decode<M: Decodable>(header: &RequestHeader, mut body: Bytes) -> M {
    M::decode(&mut body, header.request_api_version).expect("decodable request")
}

async fn fake_coordinator() -> (FakeBroker, Arc<Mutex<Fake>>) {
    let state = Arc::new(Mutex::new(Fake::default()));
    let port = Arc::new(AtomicI32::new(0));
    let handler = {
        let (state, port) = (Arc::clone(&state), Arc::clone(&port));
        move |header: &RequestHeader, body: Bytes| {
            let v = header.request_api_version;
            let port = port.load(Ordering::SeqCst);
            let key = ApiKey::try_from(header.request_api_key).expect("known API");
            let mut s = state.lock().expect("fake state");
            if !matches!(key, ApiKey::ApiVersions | ApiKey::Metadata) {
                s.log.push(format!("{key:?}"));
            }
            let body = match key {
                ApiKey::ApiVersions => {
                    let mut ranges = all_api_ranges();
                    ranges.extend(group_api_ranges());
                    api_versions_body(v, &ranges)
                }
                ApiKey::Metadata => metadata_body(v, &[(1, port)], &[("t", &[(0, 1), (1, 1)])]),
                ApiKey::FindCoordinator => {
                    let host = StrBytes::from_static_str("127.0.0.1");
                    let response = if v >= 4 {
                        FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                            .with_key(StrBytes::from_static_str("g"))
                            .with_node_id(1.into())
                            .with_host(host)
                            .with_port(port)])
                    } else {
                        FindCoordinatorResponse::default()
                            .with_node_id(1.into())
                            .with_host(host)
                            .with_port(port)
                    };
                    encode(&response, v)
                }
                ApiKey::JoinGroup => {
                    let request: JoinGroupRequest = decode(header, body);
                    let response = if std::mem::take(&mut s.not_coordinator_next_join) {
                        JoinGroupResponse::default().with_error_code(16)
                    } else if request.member_id.is_empty() && v >= 4 {
                        s.member_id = "member-1".into();
                        JoinGroupResponse::default()
                            .with_error_code(79)
                            .with_member_id(StrBytes::from_static_str("member-1"))
                    } else {
                        assert_eq!(request.protocol_type.as_str(), "consumer");
                        assert_eq!(request.protocols[0].name.as_str(), "range");
                        s.generation += 1;
                        let id = StrBytes::from_string(s.member_id.clone());
                        JoinGroupResponse::default()
                            .with_generation_id(s.generation)
                            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                            .with_protocol_name(Some(StrBytes::from_static_str("range")))
                            .with_leader(id.clone())
                            .with_member_id(id.clone())
                            .with_members(vec![JoinGroupResponseMember::default()
                                .with_member_id(id)
                                .with_metadata(request.protocols[0].metadata.clone())])
                    };
                    encode(&response, v)
                }
                ApiKey::SyncGroup => {
                    let request: SyncGroupRequest = decode(header, body);
                    assert_eq!(request.generation_id, s.generation);
                    let mine = request.assignments.iter().find(|a| a.member_id.as_str() == s.member_id);
                    s.assignment = mine.expect("the leader assigns itself").assignment.clone();
                    encode(&SyncGroupResponse::default().with_assignment(s.assignment.clone()), v)
                }
                ApiKey::Heartbeat => {
                    let error = if std::mem::take(&mut s.rebalance_next_heartbeat) { 27 } else { 0 };
                    encode(&HeartbeatResponse::default().with_error_code(error), v)
                }
                ApiKey::OffsetFetch => {
                    let topics = ["t"]
                        .iter()
                        .map(|t| {
                            let partitions = (0..2)
                                .map(|p| {
                                    let offset = s.commits.get(&((*t).to_owned(), p)).copied().unwrap_or(-1);
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                })
                                .collect();
                            OffsetFetchResponseTopics::default()
                                .with_name(name(t))
                                .with_partitions(partitions)
                        })
                        .collect();
                    assert_eq!(v, 8, "the fake answers OffsetFetch v8 only");
                    let group = OffsetFetchResponseGroup::default()
                        .with_group_id(name("g").0.into())
                        .with_topics(topics);
                    encode(&OffsetFetchResponse::default().with_groups(vec![group]), v)
                }
                ApiKey::OffsetCommit => {
                    let request: OffsetCommitRequest = decode(header, body);
                    let error = if request.generation_id_or_member_epoch == s.generation { 0 } else { 22 };
                    let mut topics = Vec::new();
                    for t in &request.topics {
                        let mut partitions = Vec::new();
                        for p in &t.partitions {
                            if error == 0 {
                                s.commits.insert(
                                    (t.name.0.as_str().to_owned(), p.partition_index),
                                    p.committed_offset,
                                );
                            }
                            partitions.push(
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(error),
                            );
                        }
                        topics.push(
                            OffsetCommitResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(partitions),
                        );
                    }
                    encode(&OffsetCommitResponse::default().with_topics(topics), v)
                }
                ApiKey::ListOffsets => {
                    let request: ListOffsetsRequest = decode(header, body);
                    let topics = request
                        .topics
                        .iter()
                        .map(|t| {
                            let partitions = t
                                .partitions
                                .iter()
                                .map(|p| {
                                    let offset = if p.timestamp == -2 { 0 } else { RECORDS_PER_PARTITION };
                                    ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_offset(offset)
                                })
                                .collect();
                            ListOffsetsTopicResponse::default()
                                .with_name(t.name.clone())
                                .with_partitions(partitions)
                        })
                        .collect();
                    encode(&ListOffsetsResponse::default().with_topics(topics), v)
                }
                ApiKey::Fetch => {
                    let request: FetchRequest = decode(header, body);
                    drop(s);
                    // Slow down empty fetches as a broker's max wait would.
                    let mut topics = Vec::new();
                    for t in &request.topics {
                        let mut partitions = Vec::new();
                        for p in &t.partitions {
                            let mut data = kafka_protocol::messages::fetch_response::PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_high_watermark(RECORDS_PER_PARTITION);
                            if p.fetch_offset < RECORDS_PER_PARTITION {
                                let mut batch = BatchBuilder::new(0, 1000);
                                for i in 0..RECORDS_PER_PARTITION {
                                    let value = format!("p{}-{i}", p.partition);
                                    batch.push(None, Some(Bytes::from(value)), 1000);
                                }
                                data = data.with_records(Some(batch.build()));
                            } else {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            partitions.push(data);
                        }
                        topics.push(
                            kafka_protocol::messages::fetch_response::FetchableTopicResponse::default()
                                .with_topic(t.topic.clone())
                                .with_partitions(partitions),
                        );
                    }
                    encode(&FetchResponse::default().with_responses(topics), v)
                }
                ApiKey::LeaveGroup => encode(&LeaveGroupResponse::default(), v),
                other => panic!("the fake does not answer {other:?}"),
            };
            Reply::Body(body)
        }
    };
    let broker = FakeBroker::start(handler).await;
    port.store(broker.port, Ordering::SeqCst);
    (broker, state)
}

fn fake_consume_args(bootstrap: &str, count: Option<u64>) -> ConsumeArgs {
    ConsumeArgs {
        topic: "t".into(),
        group: Some("g".into()),
        from: StartFrom::Earliest,
        count,
        partition: None,
        print_keys: false,
        bootstrap: bootstrap.to_owned(),
        command_config: None,
    }
}

/// The whole member's round against the fake: MEMBER_ID_REQUIRED, then a
/// join as leader, the range assignment of both partitions to itself,
/// committed offsets read, records printed, committed, and a LeaveGroup.
/// Run again, it starts from the commits and prints nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_group_against_a_fake_coordinator() {
    let (broker, state) = fake_coordinator().await;
    let mut out = Vec::new();
    let run = consume_into(fake_consume_args(&broker.addr, Some(6)), &mut out, std::future::pending());
    let written =
        tokio::time::timeout(Duration::from_secs(20), run).await.expect("in time").expect("consumes");
    assert_eq!(written, 6);
    let mut lines: Vec<&str> = std::str::from_utf8(&out).expect("UTF-8").lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["p0-0", "p0-1", "p0-2", "p1-0", "p1-1", "p1-2"]);
    {
        let s = state.lock().expect("state");
        let assignment = decode_assignment(&s.assignment).expect("assignment decodes");
        assert_eq!(assignment, [("t".to_owned(), vec![0, 1])].into());
        assert_eq!(s.commits, [(("t".to_owned(), 0), 3), (("t".to_owned(), 1), 3)].into());
        let log: Vec<&str> = s.log.iter().map(String::as_str).filter(|a| *a != "Fetch").collect();
        assert_eq!(
            &log[..5],
            ["FindCoordinator", "JoinGroup", "JoinGroup", "SyncGroup", "OffsetFetch"],
            "{log:?}"
        );
        assert_eq!(log.last(), Some(&"LeaveGroup"), "{log:?}");
        assert!(log.contains(&"OffsetCommit"), "{log:?}");
    }

    // Again: everything is committed, so nothing comes until stopped.
    state.lock().expect("state").log.clear();
    let mut out = Vec::new();
    let stop = tokio::time::sleep(Duration::from_millis(1500));
    let run = consume_into(fake_consume_args(&broker.addr, Some(1)), &mut out, stop);
    let written =
        tokio::time::timeout(Duration::from_secs(20), run).await.expect("in time").expect("consumes");
    assert_eq!((written, out.len()), (0, 0));
    let s = state.lock().expect("state");
    // A fetch written just before the stop travels on its own connection, so
    // the fake may log it after the LeaveGroup; only group calls are ordered.
    let log: Vec<&str> = s.log.iter().map(String::as_str).filter(|a| *a != "Fetch").collect();
    assert_eq!(log.last(), Some(&"LeaveGroup"), "{log:?}");
    assert!(!log.contains(&"OffsetCommit"), "nothing new to commit: {log:?}");
}

/// A heartbeat answered REBALANCE_IN_PROGRESS marks the member for
/// rejoining; the next join goes through a NOT_COORDINATOR answer by
/// finding the coordinator again, and yields the next generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_seen_by_heartbeat_makes_the_member_rejoin() {
    let (broker, state) = fake_coordinator().await;
    let client = Arc::new(Client::connect(&broker.addr, ClientConfig::default()).await.expect("client"));
    let config = MemberConfig { session_timeout: Duration::from_millis(300), ..MemberConfig::default() };
    let mut member = GroupMember::new(client, "g", vec!["t".into()], config);
    member.join().await.expect("joins");
    assert_eq!((member.generation(), member.member_id()), (Some(1), "member-1"));
    assert!(!member.rejoin_needed());
    state.lock().expect("state").rebalance_next_heartbeat = true;
    tokio::time::timeout(Duration::from_secs(5), member.wait_rejoin_needed())
        .await
        .expect("rejoin signalled");
    assert!(member.rejoin_needed());

    state.lock().expect("state").not_coordinator_next_join = true;
    state.lock().expect("state").log.clear();
    member.join().await.expect("rejoins");
    assert_eq!(member.generation(), Some(2));
    assert_eq!(member.assignment(), &[("t".to_owned(), vec![0, 1])].into());
    let log = state.lock().expect("state").log.clone();
    assert_eq!(&log[..4], ["JoinGroup", "FindCoordinator", "JoinGroup", "SyncGroup"], "{log:?}");

    // A commit from a generation that is over is refused and marks the
    // member for rejoining instead of failing.
    state.lock().expect("state").generation += 1;
    let committed = member.commit(&[(("t".to_owned(), 0), 1)].into()).await.expect("commit answered");
    assert!(!committed);
    assert!(member.rejoin_needed());
    member.leave().await.expect("leaves");
    assert_eq!(state.lock().expect("state").log.last().map(String::as_str), Some("LeaveGroup"));
}
