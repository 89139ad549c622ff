//! The admin APIs (CreateTopics, DeleteTopics, DescribeConfigs,
//! CreatePartitions, AlterConfigs, IncrementalAlterConfigs) over a real
//! socket against an in-process server, spoken with kafka-protocol's client
//! codec and with librdkafka's AdminClient.

mod server_api_support;
mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use server_api_support::{create_topic, name, s};
use server_support::{data_dir, start, Client};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_validates_and_delete_topics_removes() {
    let dir = data_dir("admin");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let creatable = |topic: &str, partitions: i32, rf: i16| {
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(rf)
    };
    let request = CreateTopicsRequest::default().with_topics(vec![
        creatable("three", 3, 1).with_configs(vec![create_topics_request::CreatableTopicConfig::default()
            .with_name(s("retention.ms"))
            .with_value(Some(s("60000")))]),
        creatable("bad-rf", 1, 3),
        creatable("bad-config", 1, -1).with_configs(vec![
            create_topics_request::CreatableTopicConfig::default()
                .with_name(s("no.such.config"))
                .with_value(Some(s("1"))),
        ]),
        creatable("twice", 1, -1),
        creatable("twice", 1, -1),
        creatable("zero", 0, -1),
    ]);
    for version in [2i16, 7] {
        let validate = client.call(version, &request.clone().with_validate_only(true)).await;
        assert_eq!(validate.topics[0].error_code, 0);
    }
    let response = client.call(7, &request).await;
    let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        vec![
            0,
            ResponseError::InvalidReplicationFactor.code(),
            ResponseError::InvalidConfig.code(),
            ResponseError::InvalidRequest.code(),
            ResponseError::InvalidRequest.code(),
            ResponseError::InvalidPartitions.code(),
        ]
    );
    assert_eq!(response.topics[0].num_partitions, 3);
    assert!(!response.topics[0].topic_id.is_nil());
    let configs = response.topics[0].configs.as_ref().unwrap();
    assert!(configs.iter().any(|c| c.name.as_str() == "retention.ms" && c.value.as_deref() == Some("60000")));
    let again =
        client.call(7, &CreateTopicsRequest::default().with_topics(vec![creatable("three", 1, -1)])).await;
    assert_eq!(again.topics[0].error_code, ResponseError::TopicAlreadyExists.code());

    let deleted = client
        .call(1, &DeleteTopicsRequest::default().with_topic_names(vec![name("three"), name("absent")]))
        .await;
    let codes: Vec<i16> = deleted.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, ResponseError::UnknownTopicOrPartition.code()]);
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert!(metadata.topics.is_empty(), "{metadata:?}");
    // v6 deletes by id.
    create_topic(&mut client, "by-id", 1).await;
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    let id = metadata.topics[0].topic_id;
    let request = DeleteTopicsRequest::default().with_topics(vec![
        delete_topics_request::DeleteTopicState::default().with_name(None).with_topic_id(id),
        delete_topics_request::DeleteTopicState::default()
            .with_name(None)
            .with_topic_id(uuid::Uuid::from_bytes([1; 16])),
    ]);
    let deleted = client.call(6, &request).await;
    assert_eq!(deleted.responses[0].error_code, 0);
    assert_eq!(deleted.responses[0].name.as_ref().unwrap().as_str(), "by-id");
    assert_eq!(deleted.responses[1].error_code, ResponseError::UnknownTopicId.code());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_reports_overrides_and_defaults() {
    let dir = data_dir("describe-configs");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let request =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name("c"))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(s("segment.bytes"))
                .with_value(Some(s("1048576")))])]);
    assert_eq!(client.call(5, &request).await.topics[0].error_code, 0);
    let resource = |kind: i8, resource: &str, keys: Option<Vec<StrBytes>>| {
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(resource))
            .with_configuration_keys(keys)
    };
    for version in 1..=4 {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            resource(2, "c", None),
            resource(2, "c", Some(vec![s("retention.ms")])),
            resource(2, "absent", None),
            resource(4, "1", None),
        ]);
        let response = client.call(version, &request).await;
        let all = &response.results[0];
        assert_eq!(all.error_code, 0);
        let segment = all.configs.iter().find(|c| c.name.as_str() == "segment.bytes").unwrap();
        assert_eq!(segment.value.as_deref(), Some("1048576"));
        assert_eq!(segment.config_source, 1);
        let retention = all.configs.iter().find(|c| c.name.as_str() == "retention.ms").unwrap();
        assert_eq!(retention.value.as_deref(), Some("604800000"));
        assert_eq!(retention.config_source, 5);
        assert_eq!(response.results[1].configs.len(), 1);
        assert_eq!(response.results[2].error_code, ResponseError::UnknownTopicOrPartition.code());
        assert_eq!((response.results[3].error_code, response.results[3].configs.len()), (0, 0));
    }
    server.shutdown().await.unwrap();
}

/// A topic's configs as DescribeConfigs v4 reports them: `(value, source)`.
async fn described(client: &mut Client, topic: &str) -> std::collections::BTreeMap<String, (String, i8)> {
    let resource = describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s(topic))
        .with_configuration_keys(None);
    let response = client.call(4, &DescribeConfigsRequest::default().with_resources(vec![resource])).await;
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
    response.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), (c.value.as_deref().unwrap_or_default().to_string(), c.config_source)))
        .collect()
}

/// librdkafka's AdminClient grows a topic: a producer then writes to the
/// new partition and a consumer reads it back; a shrink and the same count
/// are refused, validate_only changes nothing. Its (legacy) AlterConfigs
/// replaces a topic's overrides, which DescribeConfigs then shows; a bad
/// value is refused and changes nothing; a broker resource is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_grows_a_topic_and_alters_its_configs() {
    let dir = data_dir("admin-rdkafka");
    let server = start(dir.path()).await;
    let bootstrap = server.kafka_addr.to_string();
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "rd-grow", 1).await;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let options = AdminOptions::new();
    let grow = |count| NewPartitions::new("rd-grow", count);
    let validate_only = AdminOptions::new().validate_only(true);
    let results = admin.create_partitions([&grow(4)], &validate_only).await.unwrap();
    assert_eq!(results, [Ok("rd-grow".to_string())]);
    let metadata = client.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(metadata.topics[0].partitions.len(), 1, "validate_only changes nothing");
    let results = admin.create_partitions([&grow(3)], &options).await.unwrap();
    assert_eq!(results, [Ok("rd-grow".to_string())]);
    let shrink = admin.create_partitions([&grow(2)], &options).await.unwrap();
    assert_eq!(shrink, [Err(("rd-grow".to_string(), RDKafkaErrorCode::InvalidPartitions))]);
    let same = admin.create_partitions([&grow(3)], &options).await.unwrap();
    assert_eq!(same, [Err(("rd-grow".to_string(), RDKafkaErrorCode::InvalidPartitions))]);

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let record = FutureRecord::<(), _>::to("rd-grow").payload("in partition 2").partition(2);
    let delivery = producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
    assert_eq!((delivery.partition, delivery.offset), (2, 0));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "ringtail-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset("rd-grow", 2, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let value = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                return message.unwrap().payload().map(|p| p.to_vec());
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(value.as_deref(), Some(&b"in partition 2"[..]));

    let topic = ResourceSpecifier::Topic("rd-grow");
    let set = AlterConfig::new(topic).set("retention.ms", "5000").set("segment.ms", "60000");
    let altered = admin.alter_configs([&set], &options).await.unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    let configs = described(&mut client, "rd-grow").await;
    assert_eq!(configs["retention.ms"], ("5000".to_string(), 1));
    assert_eq!(configs["segment.ms"], ("60000".to_string(), 1));
    // rust-rdkafka 0.39 answers Ok for every resource of AlterConfigs (its
    // future drops their error codes), so refusals are checked by their
    // effect here and by their codes in the wire test below.
    let bad = AlterConfig::new(topic).set("retention.ms", "soon");
    admin.alter_configs([&bad], &options).await.unwrap();
    assert_eq!(described(&mut client, "rd-grow").await, configs, "a refusal changes nothing");
    // AlterConfigs replaces the whole set: retention.ms is back to its default.
    let only_segment = AlterConfig::new(topic).set("segment.ms", "120000");
    assert!(admin.alter_configs([&only_segment], &options).await.unwrap()[0].is_ok());
    // librdkafka's DescribeConfigs reads the change back too.
    let described_by_librdkafka = admin.describe_configs([&topic], &options).await.unwrap();
    let resource = described_by_librdkafka[0].as_ref().unwrap();
    let retention = resource.get("retention.ms").unwrap();
    assert_eq!((retention.value.as_deref(), retention.is_default), (Some("604800000"), true));
    let segment = resource.get("segment.ms").unwrap();
    assert_eq!((segment.value.as_deref(), segment.is_default), (Some("120000"), false));
    server.shutdown().await.unwrap();
}

/// IncrementalAlterConfigs (v0 and v1) and CreatePartitions (v0 and v3) at
/// the wire: SET and DELETE, APPEND only to a list config, Kafka's shape
/// checks (a key twice, a null SET, an unknown operation, a resource
/// twice), unknown topics and resource types, validate_only, manual
/// assignments and the internal topic refused; the changes survive a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_and_create_partitions_at_the_wire() {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let dir = data_dir("admin-incremental");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "inc", 1).await;
    let op = |key: &str, operation: i8, value: Option<&str>| {
        AlterableConfig::default().with_name(s(key)).with_config_operation(operation).with_value(value.map(s))
    };
    let resource = |kind: i8, name: &str, configs: Vec<AlterableConfig>| {
        AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(name))
            .with_configs(configs)
    };
    let invalid_request = ResponseError::InvalidRequest.code();
    for version in [0i16, 1] {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            resource(2, "inc", vec![op("retention.ms", 0, Some("5000")), op("segment.ms", 1, None)]),
            resource(2, "absent", vec![op("retention.ms", 0, Some("1"))]),
            resource(99, "x", vec![]),
        ]);
        let response = client.call(version, &request).await;
        let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, [0, ResponseError::UnknownTopicOrPartition.code(), invalid_request], "v{version}");
        assert_eq!(described(&mut client, "inc").await["retention.ms"], ("5000".to_string(), 1));
    }
    let refusals = [
        (vec![op("retention.ms", 2, Some("1"))], ResponseError::InvalidConfig.code(), "is not LIST"),
        (
            vec![op("cleanup.policy", 3, Some("delete"))],
            ResponseError::InvalidConfig.code(),
            "cleanup.policy",
        ),
        (vec![op("retention.ms", 0, Some("soon"))], ResponseError::InvalidConfig.code(), "retention.ms"),
        (vec![op("retention.ms", 0, Some("1")), op("retention.ms", 1, None)], invalid_request, "duplicate"),
        (vec![op("retention.ms", 0, None)], invalid_request, "Null value"),
        (vec![op("retention.ms", 7, Some("1"))], invalid_request, "Unknown operation type 7"),
    ];
    for (configs, code, says) in refusals {
        let request =
            IncrementalAlterConfigsRequest::default().with_resources(vec![resource(2, "inc", configs)]);
        let response = client.call(1, &request).await;
        let r = &response.responses[0];
        assert_eq!(r.error_code, code, "{r:?}");
        assert!(r.error_message.as_deref().unwrap_or_default().contains(says), "{r:?}");
    }
    let twice = IncrementalAlterConfigsRequest::default().with_resources(vec![
        resource(2, "inc", vec![]),
        resource(2, "inc", vec![op("retention.ms", 1, None)]),
    ]);
    let response = client.call(1, &twice).await;
    assert!(response.responses.iter().all(|r| r.error_code == invalid_request), "{response:?}");
    let validate = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![resource(2, "inc", vec![op("retention.ms", 1, None)])])
        .with_validate_only(true);
    assert_eq!(client.call(1, &validate).await.responses[0].error_code, 0);
    let configs = described(&mut client, "inc").await;
    assert_eq!(configs["retention.ms"], ("5000".to_string(), 1), "refusals and validate_only change nothing");
    // AlterConfigs, the legacy API, at the wire: its refusals' codes.
    let legacy = |kind: i8, resource: &str, entries: &[(&str, Option<&str>)]| {
        let configs = entries
            .iter()
            .map(|(k, v)| {
                alter_configs_request::AlterableConfig::default().with_name(s(k)).with_value(v.map(s))
            })
            .collect();
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(resource))
            .with_configs(configs)
    };
    let request = AlterConfigsRequest::default().with_resources(vec![
        legacy(2, "inc", &[("retention.ms", Some("soon"))]),
        legacy(2, "absent", &[]),
        legacy(4, "1", &[("log.retention.ms", Some("1"))]),
        legacy(4, "", &[]),
        legacy(4, "7", &[]),
    ]);
    for version in [0i16, 2] {
        let response = client.call(version, &request).await;
        let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
        let expected = [
            ResponseError::InvalidConfig.code(),
            ResponseError::UnknownTopicOrPartition.code(),
            invalid_request,
            0,
            invalid_request,
        ];
        assert_eq!(codes, expected, "v{version}: {response:?}");
        let broker = response.responses[2].error_message.as_deref().unwrap_or_default();
        assert!(broker.contains("log.retention.ms") && broker.contains("restart"), "{broker}");
    }
    let null =
        AlterConfigsRequest::default().with_resources(vec![legacy(2, "inc", &[("retention.ms", None)])]);
    assert_eq!(client.call(2, &null).await.responses[0].error_code, invalid_request);
    assert_eq!(described(&mut client, "inc").await["retention.ms"], ("5000".to_string(), 1));
    let append = IncrementalAlterConfigsRequest::default().with_resources(vec![resource(
        2,
        "inc",
        vec![op("cleanup.policy", 2, Some("delete"))],
    )]);
    assert_eq!(client.call(1, &append).await.responses[0].error_code, 0);
    assert_eq!(described(&mut client, "inc").await["cleanup.policy"], ("delete".to_string(), 1));

    let topic = |name: &str, count: i32| {
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(self::name(name))
            .with_count(count)
    };
    let manual =
        create_partitions_request::CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)]);
    let request = CreatePartitionsRequest::default().with_topics(vec![
        topic("inc", 2),
        topic("dup", 2),
        topic("dup", 3),
        topic("absent", 2),
        topic("__consumer_offsets", 60),
        topic("inc", 3).with_name(name("inc-manual")).with_assignments(Some(vec![manual])),
    ]);
    create_topic(&mut client, "inc-manual", 1).await;
    for (version, validate_only) in [(0i16, true), (3, false)] {
        let response = client.call(version, &request.clone().with_validate_only(validate_only)).await;
        let results: Vec<(String, i16)> =
            response.results.iter().map(|r| (r.name.to_string(), r.error_code)).collect();
        assert_eq!(
            results,
            [
                ("dup".to_string(), invalid_request),
                ("inc".to_string(), 0),
                ("absent".to_string(), ResponseError::UnknownTopicOrPartition.code()),
                ("__consumer_offsets".to_string(), invalid_request),
                ("inc-manual".to_string(), invalid_request),
            ],
            "v{version}"
        );
        let manual = response.results[4].error_message.as_deref().unwrap_or_default();
        assert!(manual.contains("not supported"), "{manual}");
    }
    server.shutdown().await.unwrap();

    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let metadata = client
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(name("inc"))),
            ])),
        )
        .await;
    assert_eq!(metadata.topics[0].partitions.len(), 2, "the growth survives a restart");
    let configs = described(&mut client, "inc").await;
    assert_eq!(configs["retention.ms"], ("5000".to_string(), 1), "the configs survive a restart");
    server.shutdown().await.unwrap();
}
