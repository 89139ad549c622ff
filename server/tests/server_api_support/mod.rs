//! Shared by the `server_api_*` tests: short names for kafka-protocol's
//! string types, and creating a topic through the raw client.

#![allow(dead_code)] // each test file uses a different part

use crate::server_support::Client;
use kafka_protocol::messages::{create_topics_request, CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

pub fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub fn name(value: &str) -> TopicName {
    TopicName(s(value))
}

pub async fn create_topic(client: &mut Client, topic: &str, partitions: i32) {
    let request =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)]);
    let response = client.call(7, &request).await;
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}
