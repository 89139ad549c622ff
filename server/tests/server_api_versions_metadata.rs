//! ApiVersions and Metadata over a real socket, spoken with kafka-protocol's
//! client codec against an in-process server.

mod server_api_support;
mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use ringtail_server::protocol::versions::SUPPORTED;
use server_api_support::{name, s};
use server_support::{data_dir, start, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_advertises_exactly_the_implemented_ranges() {
    let dir = data_dir("api-versions");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    for version in 0..=4 {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(s("ringtail-test"))
            .with_client_software_version(s("1.0"));
        let response = client.call(version, &request).await;
        assert_eq!(response.error_code, 0);
        let advertised: Vec<(i16, i16, i16)> =
            response.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        let expected: Vec<(i16, i16, i16)> = SUPPORTED.iter().map(|s| (s.key as i16, s.min, s.max)).collect();
        assert_eq!(advertised, expected, "v{version}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_new_api_versions_is_answered_at_v0_with_unsupported_version() {
    let dir = data_dir("api-versions-new");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    // Version 99, with a body no version has: only the first 8 bytes count.
    let mut frame = vec![0, 0, 0, 0, 0, 18, 0, 99, 0, 0, 0, 42];
    frame.extend_from_slice(b"\x00\x04futurestuff");
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    client.send_raw(&frame).await;
    let mut answer = client.read_frame().await.unwrap();
    let header = <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(&mut answer, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let response =
        <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut answer, 0).unwrap();
    assert_eq!(response.error_code, ResponseError::UnsupportedVersion.code());
    assert_eq!(response.api_keys.len(), SUPPORTED.len());
    // The connection stays usable: the client retries with a version we know.
    let retry = client.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(retry.error_code, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_auto_creates_topics_and_describes_them() {
    let dir = data_dir("metadata");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    for version in [0i16, 1, 4, 7, 9, 10, 12] {
        let topic = format!("auto-{version}");
        let request = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name(&topic))),
        ]));
        let response = client.call(version, &request).await;
        assert_eq!(response.brokers.len(), 1, "v{version}");
        assert_eq!(response.brokers[0].node_id, BrokerId(1));
        assert_eq!(response.brokers[0].port, i32::from(server.kafka_addr.port()));
        assert_eq!(response.brokers[0].host.as_str(), "127.0.0.1");
        let t = &response.topics[0];
        assert_eq!(t.error_code, 0, "v{version}: {t:?}");
        assert_eq!(t.name.as_ref().unwrap().as_str(), topic);
        assert_eq!(t.partitions.len(), 1);
        let p = &t.partitions[0];
        assert_eq!(
            (p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()),
            (BrokerId(1), vec![BrokerId(1)], vec![BrokerId(1)])
        );
        if version >= 1 {
            assert_eq!(response.controller_id, BrokerId(1));
        }
        if version >= 2 {
            assert!(response.cluster_id.as_ref().is_some_and(|id| !id.is_empty()));
        }
        if version >= 7 {
            assert_eq!(p.leader_epoch, 0);
        }
        if version >= 10 {
            assert!(!t.topic_id.is_nil());
        }
    }
    // All topics: null list (v1+), empty list at v0.
    let all = client.call(1, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(all.topics.len(), 7);
    let all_v0 = client.call(0, &MetadataRequest::default().with_topics(Some(vec![]))).await;
    assert_eq!(all_v0.topics.len(), 7);
    // An invalid name is refused per topic, the others still answered.
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name("bad name!"))),
        metadata_request::MetadataRequestTopic::default().with_name(Some(name("auto-0"))),
    ]));
    let response = client.call(9, &request).await;
    assert_eq!(response.topics[0].error_code, ResponseError::InvalidTopicException.code());
    assert_eq!(response.topics[1].error_code, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_without_auto_create_reports_unknown_topics() {
    let dir = data_dir("metadata-no-create");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name("absent")))
        ]))
        .with_allow_auto_topic_creation(false);
    let response = client.call(12, &request).await;
    assert_eq!(response.topics[0].error_code, ResponseError::UnknownTopicOrPartition.code());
    // By topic id (v12): unknown.
    let by_id =
        MetadataRequest::default().with_topics(Some(vec![metadata_request::MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(uuid::Uuid::from_bytes([9; 16]))]));
    let response = client.call(12, &by_id.with_allow_auto_topic_creation(false)).await;
    assert_eq!(response.topics[0].error_code, ResponseError::UnknownTopicId.code());
    server.shutdown().await.unwrap();
}
