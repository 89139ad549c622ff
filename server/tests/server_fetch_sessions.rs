//! Incremental fetch sessions (KIP-227) and Fetch by topic id (v13+), over
//! a real socket with kafka-protocol's client codec: a session answers only
//! partitions with news, keeps what the client forgot out, refuses a stale
//! epoch or an unknown session, and closes at epoch -1.

mod server_api_support;
mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use server_api_support::{create_topic, name};
use server_support::{batch, data_dir, start, Client};

async fn produce(client: &mut Client, partition: i32, count: i64) {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name("s")).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(count, "v"))),
        ]),
    ]);
    let response = client.call(9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

fn partition(index: i32, offset: i64) -> fetch_request::FetchPartition {
    fetch_request::FetchPartition::default()
        .with_partition(index)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)
}

/// A v12 fetch in session `id` at `epoch` naming `partitions` of "s" and
/// forgetting `forget`, answered at once.
fn fetch(id: i32, epoch: i32, partitions: &[(i32, i64)], forget: &[i32]) -> FetchRequest {
    let mut request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_id(id)
        .with_session_epoch(epoch);
    if !partitions.is_empty() {
        request.topics = vec![fetch_request::FetchTopic::default()
            .with_topic(name("s"))
            .with_partitions(partitions.iter().map(|&(p, o)| partition(p, o)).collect())];
    }
    if !forget.is_empty() {
        request.forgotten_topics_data = vec![fetch_request::ForgottenTopic::default()
            .with_topic(name("s"))
            .with_partitions(forget.to_vec())];
    }
    request
}

/// The partitions an answer mentions, with whether each carried records.
fn answered(response: &FetchResponse) -> Vec<(i32, bool)> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.records.as_ref().is_some_and(|r| !r.is_empty())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_session_answers_only_partitions_with_news() {
    let dir = data_dir("fetch-sessions");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "s", 3).await;
    produce(&mut client, 0, 2).await;
    produce(&mut client, 1, 3).await;

    // Epoch 0 opens a session: a full answer, with the session's id.
    let full = client.call(12, &fetch(0, 0, &[(0, 0), (1, 0), (2, 0)], &[])).await;
    assert_eq!(full.error_code, 0);
    let id = full.session_id;
    assert_ne!(id, 0, "a session was opened");
    assert_eq!(answered(&full), [(0, true), (1, true), (2, false)]);

    // Nothing new, and the client moved past what it read: an empty answer.
    let quiet = client.call(12, &fetch(id, 1, &[(0, 2), (1, 3)], &[])).await;
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert_eq!(answered(&quiet), []);

    // Records on partition 2 only: it alone is answered, from the offset
    // the session kept for it.
    produce(&mut client, 2, 4).await;
    let news = client.call(12, &fetch(id, 2, &[], &[])).await;
    assert_eq!(answered(&news), [(2, true)]);
    assert_eq!(news.responses[0].partitions[0].high_watermark, 4);

    // A stale epoch, an unknown session.
    let stale = client.call(12, &fetch(id, 2, &[], &[])).await;
    assert_eq!(stale.error_code, ResponseError::InvalidFetchSessionEpoch.code());
    let unknown = client.call(12, &fetch(id + 1000, 1, &[], &[])).await;
    assert_eq!(unknown.error_code, ResponseError::FetchSessionIdNotFound.code());

    // Forgotten partitions are not answered, whatever happens to them.
    let forgot = client.call(12, &fetch(id, 3, &[(2, 4)], &[1])).await;
    assert_eq!(answered(&forgot), []);
    produce(&mut client, 1, 1).await;
    produce(&mut client, 0, 1).await;
    let after = client.call(12, &fetch(id, 4, &[], &[])).await;
    assert_eq!(answered(&after), [(0, true)]);

    // Epoch -1 closes it: a full answer without a session, and the session
    // is gone.
    let closed = client.call(12, &fetch(id, -1, &[(0, 0)], &[])).await;
    assert_eq!((closed.error_code, closed.session_id), (0, 0));
    assert_eq!(answered(&closed), [(0, true)]);
    let gone = client.call(12, &fetch(id, 5, &[], &[])).await;
    assert_eq!(gone.error_code, ResponseError::FetchSessionIdNotFound.code());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_version_13_names_topics_by_id() {
    let dir = data_dir("fetch-by-id");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "s", 1).await;
    produce(&mut client, 0, 5).await;
    let metadata = client
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(name("s"))),
            ])),
        )
        .await;
    let id = metadata.topics[0].topic_id;
    assert!(!id.is_nil());
    let unknown = uuid::Uuid::from_u128(42);
    for version in 13..=16 {
        let topic = |topic_id| {
            fetch_request::FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![partition(0, 1)])
        };
        let mut request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![topic(id), topic(unknown)]);
        if version < 15 {
            request.replica_id = BrokerId(-1);
        }
        let response = client.call(version, &request).await;
        assert_eq!(response.error_code, 0, "v{version}");
        let (known, missing) = (&response.responses[0], &response.responses[1]);
        assert_eq!(known.topic_id, id, "v{version}");
        assert_eq!(known.partitions[0].error_code, 0, "v{version}");
        assert_eq!(known.partitions[0].high_watermark, 5, "v{version}");
        assert!(known.partitions[0].records.as_ref().is_some_and(|r| !r.is_empty()), "v{version}");
        assert_eq!(missing.topic_id, unknown, "v{version}");
        assert_eq!(missing.partitions[0].error_code, ResponseError::UnknownTopicId.code(), "v{version}");
    }
    server.shutdown().await.unwrap();
}
