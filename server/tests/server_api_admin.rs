//! The admin APIs (CreateTopics, DeleteTopics, DescribeConfigs) over a real
//! socket, spoken with kafka-protocol's client codec against an in-process
//! server.

mod server_api_support;
mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use server_api_support::{create_topic, name, s};
use server_support::{data_dir, start, Client};

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
