//! Every implemented version of every request, encoded by kafka-protocol
//! with every array non-empty and unknown tagged fields where the
//! version allows them, must walk to exactly its end; every strict
//! prefix must be refused.

use super::super::bounds::check;
use super::super::versions::SUPPORTED;
use super::*;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

fn s(value: &'static str) -> StrBytes {
    StrBytes::from_static_str(value)
}

fn tags() -> std::collections::BTreeMap<i32, Bytes> {
    [(7, Bytes::from_static(b"tagged!")), (300, Bytes::new())].into_iter().collect()
}

fn id() -> uuid::Uuid {
    uuid::Uuid::from_bytes([7; 16])
}

fn encode<T: Encodable>(request: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    request.encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
    buf.to_vec()
}

fn body(key: ApiKey, v: i16) -> Vec<u8> {
    let flexible = key.request_header_version(v) >= 2;
    let t = |m: std::collections::BTreeMap<i32, Bytes>| if flexible { m } else { Default::default() };
    match key {
        ApiKey::Metadata => {
            let topic = |name| {
                let mut t =
                    metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(name))));
                if v >= 10 {
                    t.topic_id = id();
                }
                t
            };
            let mut r = MetadataRequest::default()
                .with_topics(Some(vec![topic("a"), topic("bb")]))
                .with_unknown_tagged_fields(t(tags()));
            r.allow_auto_topic_creation = v >= 4 || r.allow_auto_topic_creation;
            r.include_cluster_authorized_operations = (8..=10).contains(&v);
            r.include_topic_authorized_operations = v >= 8;
            encode(&r, v)
        }
        ApiKey::Produce => {
            let partition = |i| {
                produce_request::PartitionProduceData::default()
                    .with_index(i)
                    .with_records(Some(Bytes::from_static(b"batch bytes")))
                    .with_unknown_tagged_fields(t(tags()))
            };
            let topic = produce_request::TopicProduceData::default()
                .with_name(TopicName(s("topic")))
                .with_partition_data(vec![partition(0), partition(1)]);
            let r = ProduceRequest::default()
                .with_transactional_id(Some(TransactionalId(s("tx"))))
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![topic.clone(), topic]);
            encode(&r, v)
        }
        ApiKey::Fetch => {
            let mut partition = fetch_request::FetchPartition::default()
                .with_partition(3)
                .with_fetch_offset(100)
                .with_partition_max_bytes(1 << 20)
                .with_unknown_tagged_fields(t(tags()));
            if v >= 9 {
                partition.current_leader_epoch = 2;
            }
            if v >= 12 {
                partition.last_fetched_epoch = 1;
            }
            if v >= 5 {
                partition.log_start_offset = 5;
            }
            let topic = fetch_request::FetchTopic::default()
                .with_topic(TopicName(s("events")))
                .with_partitions(vec![partition.clone(), partition]);
            let mut r = FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(1 << 24)
                .with_isolation_level(1)
                .with_topics(vec![topic])
                .with_unknown_tagged_fields(t(tags()));
            if v >= 7 {
                r.session_id = 9;
                r.session_epoch = 2;
                r.forgotten_topics_data = vec![fetch_request::ForgottenTopic::default()
                    .with_topic(TopicName(s("old")))
                    .with_partitions(vec![1, 2, 3])];
            }
            if v >= 11 {
                r.rack_id = s("rack-1");
            }
            if v >= 12 {
                r.cluster_id = Some(s("cluster"));
            }
            encode(&r, v)
        }
        ApiKey::ListOffsets => {
            let mut partition = list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(1)
                .with_timestamp(-2);
            if v >= 4 {
                partition.current_leader_epoch = 0;
            }
            let topic = list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![partition.clone(), partition]);
            let mut r = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![topic]);
            if v >= 2 {
                r.isolation_level = 1;
            }
            encode(&r.with_unknown_tagged_fields(t(tags())), v)
        }
        ApiKey::CreateTopics => {
            let topic = create_topics_request::CreatableTopic::default()
                .with_name(TopicName(s("new")))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![create_topics_request::CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)])])
                .with_configs(vec![
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000"))),
                    create_topics_request::CreatableTopicConfig::default().with_name(s("x")).with_value(None),
                ]);
            let r = CreateTopicsRequest::default()
                .with_topics(vec![topic])
                .with_timeout_ms(100)
                .with_validate_only(true)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::DeleteTopics => {
            let mut r =
                DeleteTopicsRequest::default().with_timeout_ms(100).with_unknown_tagged_fields(t(tags()));
            if v >= 6 {
                r.topics = vec![
                    delete_topics_request::DeleteTopicState::default().with_name(Some(TopicName(s("a")))),
                    delete_topics_request::DeleteTopicState::default().with_name(None).with_topic_id(id()),
                ];
            } else {
                r.topic_names = vec![TopicName(s("a")), TopicName(s("b"))];
            }
            encode(&r, v)
        }
        ApiKey::DeleteRecords => {
            let partition = delete_records_request::DeleteRecordsPartition::default()
                .with_partition_index(3)
                .with_offset(-1)
                .with_unknown_tagged_fields(t(tags()));
            let topic = delete_records_request::DeleteRecordsTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![partition.clone(), partition])
                .with_unknown_tagged_fields(t(tags()));
            let r = DeleteRecordsRequest::default()
                .with_topics(vec![topic.clone(), topic.with_partitions(Vec::new())])
                .with_timeout_ms(100)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::DescribeConfigs => {
            let resource = describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configuration_keys(Some(vec![s("retention.ms"), s("segment.bytes")]));
            let r = DescribeConfigsRequest::default()
                .with_resources(vec![resource.clone(), resource.with_configuration_keys(None)])
                .with_include_synonyms(true)
                .with_include_documentation(v >= 3)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("tx"))))
                .with_transaction_timeout_ms(60_000)
                .with_unknown_tagged_fields(t(tags()));
            if v >= 3 {
                r.producer_id = ProducerId(5);
                r.producer_epoch = 1;
            }
            encode(&r, v)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let partition = offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(3)
                .with_leader_epoch(2);
            let topic = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(TopicName(s("t")))
                .with_partitions(vec![partition.clone(), partition]);
            let mut r = OffsetForLeaderEpochRequest::default()
                .with_topics(vec![topic])
                .with_unknown_tagged_fields(t(tags()));
            if v >= 3 {
                r.replica_id = BrokerId(-1);
            }
            encode(&r, v)
        }
        ApiKey::ApiVersions => {
            let r = ApiVersionsRequest::default()
                .with_client_software_name(s("ringtail-test"))
                .with_client_software_version(s("0.1.0"))
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default().with_unknown_tagged_fields(t(tags()));
            if v <= 3 {
                r.key = s("group");
            } else {
                r.coordinator_keys = vec![s("g1"), s("group-2")];
            }
            if v >= 1 {
                r.key_type = 0;
            }
            encode(&r, v)
        }
        ApiKey::JoinGroup => {
            let protocol = |name| {
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(s(name))
                    .with_metadata(Bytes::from_static(b"subscription"))
                    .with_unknown_tagged_fields(t(tags()))
            };
            let mut r = JoinGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_session_timeout_ms(10_000)
                .with_member_id(s("member-1"))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![protocol("range"), protocol("cooperative-sticky")])
                .with_unknown_tagged_fields(t(tags()));
            if v >= 1 {
                r.rebalance_timeout_ms = 30_000;
            }
            if v >= 5 {
                r.group_instance_id = Some(s("instance"));
            }
            if v >= 8 {
                r.reason = Some(s("because"));
            }
            encode(&r, v)
        }
        ApiKey::SyncGroup => {
            let assignment = |member| {
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(s(member))
                    .with_assignment(Bytes::from_static(b"assignment"))
                    .with_unknown_tagged_fields(t(tags()))
            };
            let mut r = SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(3)
                .with_member_id(s("member-1"))
                .with_assignments(vec![assignment("a"), assignment("b")])
                .with_unknown_tagged_fields(t(tags()));
            if v >= 3 {
                r.group_instance_id = Some(s("instance"));
            }
            if v >= 5 {
                r.protocol_type = Some(s("consumer"));
                r.protocol_name = Some(s("range"));
            }
            encode(&r, v)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(3)
                .with_member_id(s("member-1"))
                .with_unknown_tagged_fields(t(tags()));
            if v >= 3 {
                r.group_instance_id = Some(s("instance"));
            }
            encode(&r, v)
        }
        ApiKey::LeaveGroup => {
            let mut r = LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_unknown_tagged_fields(t(tags()));
            if v <= 2 {
                r.member_id = s("member-1");
            } else {
                let member = |id, instance: Option<StrBytes>| {
                    let mut m = leave_group_request::MemberIdentity::default()
                        .with_member_id(s(id))
                        .with_group_instance_id(instance)
                        .with_unknown_tagged_fields(t(tags()));
                    if v >= 5 {
                        m.reason = Some(s("bye"));
                    }
                    m
                };
                r.members = vec![member("m1", None), member("", Some(s("instance")))];
            }
            encode(&r, v)
        }
        ApiKey::OffsetCommit => {
            let partition = |i| {
                let mut p = offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(i)
                    .with_committed_offset(100)
                    .with_committed_metadata(Some(s("meta")))
                    .with_unknown_tagged_fields(t(tags()));
                if v >= 6 {
                    p.committed_leader_epoch = 4;
                }
                p
            };
            let topic = offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![partition(0), partition(1)])
                .with_unknown_tagged_fields(t(tags()));
            let mut r = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id_or_member_epoch(2)
                .with_member_id(s("member-1"))
                .with_topics(vec![topic.clone(), topic])
                .with_unknown_tagged_fields(t(tags()));
            if v >= 7 {
                r.group_instance_id = Some(s("instance"));
            }
            if v <= 4 {
                r.retention_time_ms = 60_000;
            }
            encode(&r, v)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default().with_unknown_tagged_fields(t(tags()));
            if v <= 7 {
                let topic = offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0, 1, 2])
                    .with_unknown_tagged_fields(t(tags()));
                r.group_id = GroupId(s("g"));
                r.topics = Some(vec![topic.clone(), topic]);
            } else {
                let topics = offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0, 1])
                    .with_unknown_tagged_fields(t(tags()));
                let group = offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("g")))
                    .with_topics(Some(vec![topics]))
                    .with_unknown_tagged_fields(t(tags()));
                let all = group.clone().with_group_id(GroupId(s("all"))).with_topics(None);
                r.groups = vec![group, all];
            }
            if v >= 7 {
                r.require_stable = true;
            }
            encode(&r, v)
        }
        ApiKey::DescribeGroups => {
            let r = DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("g1")), GroupId(s("group-2"))])
                .with_include_authorized_operations(v >= 3)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsRequest::default().with_unknown_tagged_fields(t(tags()));
            if v >= 4 {
                r.states_filter = vec![s("Stable"), s("Empty")];
            }
            encode(&r, v)
        }
        ApiKey::DeleteGroups => {
            let r = DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(s("g1")), GroupId(s("group-2"))])
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::ElectLeaders => {
            let topic = elect_leaders_request::TopicPartitions::default()
                .with_topic(TopicName(s("t")))
                .with_partitions(vec![0, 7])
                .with_unknown_tagged_fields(t(tags()));
            let mut r = ElectLeadersRequest::default()
                .with_topic_partitions(Some(vec![topic.clone(), topic.with_partitions(Vec::new())]))
                .with_timeout_ms(100)
                .with_unknown_tagged_fields(t(tags()));
            if v >= 1 {
                r.election_type = 1;
            }
            encode(&r, v)
        }
        ApiKey::DescribeLogDirs => {
            let topic = describe_log_dirs_request::DescribableLogDirTopic::default()
                .with_topic(TopicName(s("t")))
                .with_partitions(vec![0, 7])
                .with_unknown_tagged_fields(t(tags()));
            let r = DescribeLogDirsRequest::default()
                .with_topics(Some(vec![topic.clone(), topic.with_partitions(Vec::new())]))
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::SaslHandshake => {
            encode(&SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-512")), v)
        }
        ApiKey::SaslAuthenticate => encode(
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(bytes::Bytes::from_static(b"n,,n=u,r=x"))
                .with_unknown_tagged_fields(t(tags())),
            v,
        ),
        ApiKey::DescribeProducers => {
            let topic = describe_producers_request::TopicRequest::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0, 7])
                .with_unknown_tagged_fields(t(tags()));
            let r = DescribeProducersRequest::default()
                .with_topics(vec![topic.clone(), topic.with_partition_indexes(Vec::new())])
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::OffsetDelete => {
            let partition =
                offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(3);
            let topic = offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![partition.clone(), partition]);
            let r = OffsetDeleteRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(vec![topic.clone(), topic.with_partitions(Vec::new())]);
            encode(&r, v)
        }
        ApiKey::DescribeUserScramCredentials => {
            let user = describe_user_scram_credentials_request::UserName::default()
                .with_name(s("alice"))
                .with_unknown_tagged_fields(t(tags()));
            let r = DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![user.clone(), user]))
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::DescribeClientQuotas => {
            let component = describe_client_quotas_request::ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(0)
                .with_match(Some(s("alice")))
                .with_unknown_tagged_fields(t(tags()));
            let r = DescribeClientQuotasRequest::default()
                .with_components(vec![component.clone(), component.with_match(None)])
                .with_strict(true)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::AlterClientQuotas => {
            let entity = alter_client_quotas_request::EntityData::default()
                .with_entity_type(s("user"))
                .with_entity_name(Some(s("alice")))
                .with_unknown_tagged_fields(t(tags()));
            let op = alter_client_quotas_request::OpData::default()
                .with_key(s("producer_byte_rate"))
                .with_value(1024.5)
                .with_remove(true)
                .with_unknown_tagged_fields(t(tags()));
            let entry = alter_client_quotas_request::EntryData::default()
                .with_entity(vec![entity.clone(), entity.with_entity_name(None)])
                .with_ops(vec![op.clone(), op])
                .with_unknown_tagged_fields(t(tags()));
            let r = AlterClientQuotasRequest::default()
                .with_entries(vec![entry.clone(), entry])
                .with_validate_only(true)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::CreateAcls => {
            let creation = create_acls_request::AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_resource_pattern_type(3)
                .with_principal(s("User:alice"))
                .with_host(s("*"))
                .with_operation(3)
                .with_permission_type(3)
                .with_unknown_tagged_fields(t(tags()));
            let r = CreateAclsRequest::default()
                .with_creations(vec![creation.clone(), creation])
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::DescribeAcls => {
            let r = DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(Some(s("orders")))
                .with_pattern_type_filter(2)
                .with_principal_filter(None)
                .with_host_filter(Some(s("*")))
                .with_operation(1)
                .with_permission_type(1)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::DeleteAcls => {
            let filter = delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(None)
                .with_pattern_type_filter(1)
                .with_principal_filter(Some(s("User:alice")))
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1)
                .with_unknown_tagged_fields(t(tags()));
            let r = DeleteAclsRequest::default()
                .with_filters(vec![filter.clone(), filter])
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::AlterUserScramCredentials => {
            let deletion = alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                .with_name(s("bob"))
                .with_mechanism(1)
                .with_unknown_tagged_fields(t(tags()));
            let upsertion = alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                .with_name(s("alice"))
                .with_mechanism(2)
                .with_iterations(4096)
                .with_salt(Bytes::from_static(b"salt"))
                .with_salted_password(Bytes::from_static(b"salted password"))
                .with_unknown_tagged_fields(t(tags()));
            let r = AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![deletion.clone(), deletion])
                .with_upsertions(vec![upsertion.clone(), upsertion])
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::DescribeCluster => {
            let mut r = DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(true)
                .with_unknown_tagged_fields(t(tags()));
            if v >= 1 {
                r.endpoint_type = 2;
            }
            r.include_fenced_brokers = v >= 2;
            encode(&r, v)
        }
        ApiKey::AlterConfigs => {
            let config = |name, value: Option<StrBytes>| {
                alter_configs_request::AlterableConfig::default()
                    .with_name(s(name))
                    .with_value(value)
                    .with_unknown_tagged_fields(t(tags()))
            };
            let resource = alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configs(vec![config("retention.ms", Some(s("1000"))), config("x", None)])
                .with_unknown_tagged_fields(t(tags()));
            let r = AlterConfigsRequest::default()
                .with_resources(vec![resource.clone(), resource.with_configs(Vec::new())])
                .with_validate_only(true)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::CreatePartitions => {
            let assignment = create_partitions_request::CreatePartitionsAssignment::default()
                .with_broker_ids(vec![BrokerId(1), BrokerId(2)])
                .with_unknown_tagged_fields(t(tags()));
            let topic = create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(s("t")))
                .with_count(4)
                .with_assignments(Some(vec![assignment.clone(), assignment]))
                .with_unknown_tagged_fields(t(tags()));
            let r = CreatePartitionsRequest::default()
                .with_topics(vec![topic.clone(), topic.with_assignments(None)])
                .with_timeout_ms(100)
                .with_validate_only(true)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        ApiKey::IncrementalAlterConfigs => {
            let config = |name, op, value: Option<StrBytes>| {
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s(name))
                    .with_config_operation(op)
                    .with_value(value)
                    .with_unknown_tagged_fields(t(tags()))
            };
            let resource = incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configs(vec![config("retention.ms", 0, Some(s("1000"))), config("x", 1, None)])
                .with_unknown_tagged_fields(t(tags()));
            let r = IncrementalAlterConfigsRequest::default()
                .with_resources(vec![resource.clone(), resource.with_configs(Vec::new())])
                .with_validate_only(true)
                .with_unknown_tagged_fields(t(tags()));
            encode(&r, v)
        }
        other => panic!("no sample request for {other:?}"),
    }
}

#[test]
fn every_implemented_request_walks_to_its_end() {
    for supported in SUPPORTED {
        let fields = request_fields(supported.key).unwrap();
        for v in supported.min..=supported.max {
            let flexible = supported.key.request_header_version(v) >= 2;
            let bytes = body(supported.key, v);
            assert_eq!(
                check(fields, v, flexible, &bytes, usize::MAX),
                Ok(bytes.len()),
                "{:?} v{v}",
                supported.key
            );
            for cut in 0..bytes.len() {
                assert!(
                    check(fields, v, flexible, &bytes[..cut], usize::MAX).is_err(),
                    "{:?} v{v} accepted a prefix of {cut} of {} bytes",
                    supported.key,
                    bytes.len()
                );
            }
        }
    }
}
