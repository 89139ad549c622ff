//! ElectLeaders against a single node, at the wire and through `ringtail
//! topic elect-leaders`: the node leads every partition it has, so each
//! known partition needs no election, unknown ones are answered as such,
//! and an unknown election type is refused.

mod server_api_support;
mod server_support;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::ResponseError;
use ringtail_server::cli::topic::{execute, Election, TopicArgs, TopicCommand};
use server_api_support::{create_topic, name};
use server_support::{data_dir, start, Client};

fn request(election_type: i8, topics: Option<Vec<(&str, Vec<i32>)>>) -> ElectLeadersRequest {
    let topics = topics.map(|topics| {
        topics
            .into_iter()
            .map(|(topic, partitions)| {
                TopicPartitions::default().with_topic(name(topic)).with_partitions(partitions)
            })
            .collect()
    });
    ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_topic_partitions(topics)
        .with_timeout_ms(5_000)
}

/// `(topic, partition, code)` of every partition answered, in order.
fn codes(response: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
    response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(move |p| (t.topic.0.to_string(), p.partition_id, p.error_code))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_needs_no_election_and_says_so() {
    let dir = data_dir("elect");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    create_topic(&mut client, "t", 2).await;
    let not_needed = ResponseError::ElectionNotNeeded.code();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let asked = || Some(vec![("t", vec![0, 1, 2]), ("absent", vec![0])]);
    let expected = vec![
        ("t".to_string(), 0, not_needed),
        ("t".to_string(), 1, not_needed),
        ("t".to_string(), 2, unknown),
        ("absent".to_string(), 0, unknown),
    ];
    for (version, election_type) in [(0, 0), (1, 0), (2, 0), (2, 1)] {
        let response = client.call(version, &request(election_type, asked())).await;
        assert_eq!(codes(&response), expected, "v{version} type {election_type}");
        assert_eq!(response.error_code, 0);
    }
    let all = client.call(2, &request(0, None)).await;
    assert!(codes(&all).is_empty(), "partitions needing no election are left out: {all:?}");

    let invalid = ResponseError::InvalidRequest.code();
    let refused = client.call(2, &request(7, Some(vec![("t", vec![0])]))).await;
    assert_eq!((refused.error_code, codes(&refused)), (invalid, vec![("t".to_string(), 0, invalid)]));
    let message = refused.replica_election_results[0].partition_result[0].error_message.clone();
    assert!(message.is_some_and(|m| m.contains("election type 7")));

    // The CLI prints each partition's outcome; none needed is no failure.
    let cli = |partition, election| {
        let command = TopicCommand::ElectLeaders { name: "t".into(), partition, election };
        let args = TopicArgs { command, bootstrap: server.kafka_addr.to_string(), command_config: None };
        async move {
            let mut out = Vec::new();
            let result = execute(args, &mut out).await.map_err(|e| e.to_string());
            (result, String::from_utf8(out).unwrap())
        }
    };
    let (result, out) = cli(None, Election::Preferred).await;
    assert_eq!(result, Ok(()));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("Partition 0 of t: ELECTION_NOT_NEEDED ("), "{out}");
    assert!(lines[1].starts_with("Partition 1 of t: ELECTION_NOT_NEEDED ("), "{out}");
    let (result, out) = cli(Some(1), Election::Unclean).await;
    assert_eq!(result, Ok(()));
    assert!(out.starts_with("Partition 1 of t: ELECTION_NOT_NEEDED") && out.lines().count() == 1, "{out}");
    let (result, out) = cli(Some(5), Election::Preferred).await;
    assert!(out.starts_with("Partition 5 of t: UNKNOWN_TOPIC_OR_PARTITION"), "{out}");
    assert_eq!(result, Err("1 partition(s) of t could not be elected".to_string()));
}
