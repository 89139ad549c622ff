//! The group APIs' error paths on the wire, with raw requests: an empty
//! group id, an unknown member, a commit from a stale generation, the
//! join handshake of KIP-394 (MEMBER_ID_REQUIRED), transaction
//! coordinators, and `__consumer_offsets` guarded as an internal topic.

mod server_support;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use server_support::{batch, data_dir, group_config, Client};

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn join_request(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

fn commit_request(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("m")))])])
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_error_paths() {
    let dir = data_dir("groups-errors");
    let server = ringtail_server::serve::start(group_config(dir.path())).await.unwrap();
    let mut client = Client::connect(server.kafka_addr).await;
    let topic = "errors-topic";
    // A topic to commit offsets of (auto-created by Metadata).
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(topic))))
        ]))
        .with_allow_auto_topic_creation(true);
    let created = client.call(9, &metadata).await;
    assert_eq!(created.topics[0].error_code, 0);

    // The coordinator: this broker.
    let found = client.call(3, &FindCoordinatorRequest::default().with_key(s("g1"))).await;
    assert_eq!(found.error_code, 0, "{found:?}");
    assert_eq!(found.port, i32::from(server.kafka_addr.port()));
    let batched = client
        .call(4, &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2")]))
        .await;
    assert_eq!(batched.coordinators.len(), 2);
    assert!(batched.coordinators.iter().all(|c| c.error_code == 0), "{batched:?}");
    let transactions =
        client.call(3, &FindCoordinatorRequest::default().with_key(s("tx")).with_key_type(1)).await;
    assert_eq!(transactions.error_code, code(ResponseError::CoordinatorNotAvailable));
    assert!(transactions.error_message.is_some());

    // An empty group id.
    let empty = client.call(5, &join_request("", "")).await;
    assert_eq!(empty.error_code, code(ResponseError::InvalidGroupId), "{empty:?}");

    // A heartbeat from a member the group does not know.
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g1")))
        .with_generation_id(1)
        .with_member_id(s("nobody"));
    let unknown = client.call(4, &heartbeat).await;
    assert_eq!(unknown.error_code, code(ResponseError::UnknownMemberId), "{unknown:?}");

    // KIP-394: v4+ first joins get an id to come back with.
    let first = client.call(5, &join_request("g1", "")).await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired), "{first:?}");
    let member = first.member_id.to_string();
    assert!(!member.is_empty());
    let joined = client.call(7, &join_request("g1", &member)).await;
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert_eq!(joined.leader.as_str(), member, "the only member leads");
    assert_eq!(joined.protocol_type.as_ref().map(|p| p.as_str()), Some("consumer"));
    assert_eq!(joined.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    assert_eq!(joined.members.len(), 1);
    let generation = joined.generation_id;
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("g1")))
        .with_generation_id(generation)
        .with_member_id(s(&member))
        .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"everything"))]);
    let synced = client.call(5, &sync).await;
    assert_eq!(synced.error_code, 0, "{synced:?}");
    assert_eq!(&synced.assignment[..], b"everything");
    let alive =
        client.call(4, &heartbeat.clone().with_generation_id(generation).with_member_id(s(&member))).await;
    assert_eq!(alive.error_code, 0);

    // Commits: a stale (or future) generation is refused, the current one
    // is taken and read back.
    let stale = client.call(8, &commit_request("g1", generation + 1, &member, topic, 5)).await;
    assert_eq!(stale.topics[0].partitions[0].error_code, code(ResponseError::IllegalGeneration), "{stale:?}");
    let stranger = client.call(8, &commit_request("g1", generation, "nobody", topic, 5)).await;
    assert_eq!(stranger.topics[0].partitions[0].error_code, code(ResponseError::UnknownMemberId));
    let good = client.call(8, &commit_request("g1", generation, &member, topic, 7)).await;
    assert_eq!(good.topics[0].partitions[0].error_code, 0, "{good:?}");
    let unknown_topic = client.call(8, &commit_request("g1", generation, &member, "no-such-topic", 7)).await;
    assert_eq!(
        unknown_topic.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    let fetch = OffsetFetchRequest::default().with_group_id(GroupId(s("g1"))).with_topics(Some(vec![
        offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![0]),
    ]));
    let fetched = client.call(5, &fetch).await;
    assert_eq!(fetched.error_code, 0);
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 7, "{fetched:?}");
    // v8: several groups, null topics = everything committed.
    let batched = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("g1")))
            .with_topics(None),
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("never")))
            .with_topics(None),
    ]);
    let fetched = client.call(8, &batched).await;
    assert_eq!(fetched.groups.len(), 2);
    assert_eq!(fetched.groups[0].topics[0].partitions[0].committed_offset, 7, "{fetched:?}");
    assert!(fetched.groups[1].topics.is_empty(), "{fetched:?}");

    // Describe, list, then leave and delete.
    let described =
        client.call(5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g1"))])).await;
    let g = &described.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str(), g.members.len()), (0, "Stable", 1), "{g:?}");
    assert!(g.members[0].client_host.starts_with("/127.0.0.1"), "{g:?}");
    assert_eq!(g.members[0].client_id.as_str(), "ringtail-test");
    let listed = client.call(4, &ListGroupsRequest::default().with_states_filter(vec![s("Stable")])).await;
    assert!(listed.groups.iter().any(|l| l.group_id.as_str() == "g1"), "{listed:?}");
    let none = client.call(4, &ListGroupsRequest::default().with_states_filter(vec![s("NoSuchState")])).await;
    assert!(none.groups.is_empty());
    let busy =
        client.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g1"))])).await;
    assert_eq!(busy.results[0].error_code, code(ResponseError::NonEmptyGroup));
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g1")))
        .with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(s(&member))]);
    let left = client.call(3, &leave).await;
    assert_eq!((left.error_code, left.members[0].error_code), (0, 0), "{left:?}");
    let deleted =
        client.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g1"))])).await;
    assert_eq!(deleted.results[0].error_code, 0, "{deleted:?}");
    let gone = client.call(5, &fetch).await;
    assert_eq!(gone.topics.first().map_or(-1, |t| t.partitions[0].committed_offset), -1, "{gone:?}");

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offsets_topic_is_internal() {
    let dir = data_dir("groups-internal");
    let server = ringtail_server::serve::start(group_config(dir.path())).await.unwrap();
    let mut client = Client::connect(server.kafka_addr).await;
    let found = client.call(1, &FindCoordinatorRequest::default().with_key(s("any"))).await;
    assert_eq!(found.error_code, 0, "{found:?}");
    let offsets = TopicName(s("__consumer_offsets"));
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(offsets.clone())),
    ]));
    let described = client.call(9, &metadata).await;
    assert_eq!(described.topics[0].error_code, 0);
    assert!(described.topics[0].is_internal);
    assert_eq!(described.topics[0].partitions.len(), 4, "--offsets-topic-partitions");

    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(offsets.clone()).with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_index(0).with_records(Some(batch(1, "x"))),
        ]),
    ]);
    let produced = client.call(8, &produce).await;
    let p = &produced.responses[0].partition_responses[0];
    assert_eq!(p.error_code, code(ResponseError::InvalidTopicException), "{p:?}");

    let delete = DeleteTopicsRequest::default().with_topic_names(vec![offsets]).with_timeout_ms(5000);
    let refused = client.call(5, &delete).await;
    assert_ne!(refused.responses[0].error_code, 0, "{refused:?}");
    let still = client.call(9, &metadata).await;
    assert_eq!(still.topics[0].error_code, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_a_parked_join_at_once() {
    let dir = data_dir("groups-shutdown");
    let mut config = group_config(dir.path());
    // The first rebalance of the group would wait a minute for more members.
    config.group.initial_rebalance_delay_ms = 60_000;
    let server = ringtail_server::serve::start(config).await.unwrap();
    let mut client = Client::connect(server.kafka_addr).await;
    let found = client.call(3, &FindCoordinatorRequest::default().with_key(s("parked"))).await;
    assert_eq!(found.error_code, 0, "{found:?}");
    let first = client.call(5, &join_request("parked", "")).await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    let correlation_id = client.send(5, &join_request("parked", first.member_id.as_str())).await;
    // Let the join reach the coordinator and park there.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    let answer = client.receive::<JoinGroupRequest>(5, correlation_id).await;
    assert_eq!(answer.error_code, code(ResponseError::NotCoordinator), "{answer:?}");
    stopping.await.unwrap().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
}

/// What a member may make the coordinator hold is bounded: metadata above
/// 1 MiB is refused (as an assignment above it would be), the group is
/// capped at --group-max-size members, and the broker goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_bounded_in_size_and_number() {
    let dir = data_dir("groups-bounds");
    let mut config = group_config(dir.path());
    config.group.max_group_size = 1;
    let server = ringtail_server::serve::start(config).await.unwrap();
    let mut client = Client::connect(server.kafka_addr).await;
    let found = client.call(3, &FindCoordinatorRequest::default().with_key(s("bounded"))).await;
    assert_eq!(found.error_code, 0, "{found:?}");
    let huge = join_request("bounded", "").with_protocols(vec![
        join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from(vec![0u8; ringtail_engine::group::MEMBER_BYTES_MAX + 1])),
    ]);
    let refused = client.call(3, &huge).await;
    assert_eq!(refused.error_code, code(ResponseError::InvalidRequest));
    // Version 3 takes a member without the MEMBER_ID_REQUIRED round trip.
    let first = client.call(3, &join_request("bounded", "")).await;
    assert_eq!(first.error_code, 0, "{first:?}");
    let second = client.call(3, &join_request("bounded", "")).await;
    assert_eq!(second.error_code, code(ResponseError::GroupMaxSizeReached));
    assert_eq!(client.call(3, &ApiVersionsRequest::default()).await.error_code, 0);
    server.shutdown().await.unwrap();
}
