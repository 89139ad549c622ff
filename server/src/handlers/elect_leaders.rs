//! ElectLeaders: an operator's preferred or unclean leader election
//! (kafka-leader-election.sh, AdminClient.electLeaders). Each partition is
//! answered with its own code (NONE when a leader was elected); a failure
//! of the whole request (an unknown election type, no controller) answers
//! every partition asked for and, from version 1, the top-level code, as
//! Kafka's error response does. Needs ALTER on the cluster.

use super::{code, str_bytes, topic_name, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use ringtail_engine::broker::{BrokerError, ElectionType, ErrorCode, PartitionElection, Wanted};
use ringtail_engine::security::acl::Operation;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let wanted: Wanted = request
        .topic_partitions
        .map(|topics| topics.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect());
    let outcome = match ElectionType::from_wire(request.election_type) {
        _ if !access.cluster(Operation::Alter) => {
            Err(BrokerError::new(ErrorCode::ClusterAuthorizationFailed, "Not authorized to elect leaders"))
        }
        Some(election) => ctx.broker.elect_leaders(election, wanted.clone()).await,
        None => Err(BrokerError::new(
            ErrorCode::InvalidRequest,
            format!("unknown election type {} (0 is preferred, 1 unclean)", request.election_type),
        )),
    };
    match outcome {
        Ok(outcomes) => ElectLeadersResponse::default().with_replica_election_results(by_topic(outcomes)),
        Err(e) => {
            tracing::debug!(error = %e, "leader election refused");
            let every = wanted.iter().flatten().flat_map(|(topic, partitions)| {
                let e = &e;
                partitions
                    .iter()
                    .map(move |p| PartitionElection::new(topic, *p, e.code, Some(e.message.clone())))
            });
            let response = ElectLeadersResponse::default().with_replica_election_results(by_topic(every));
            // Version 0 has no top-level code.
            if version >= 1 {
                response.with_error_code(code(&e))
            } else {
                response
            }
        }
    }
}

/// The outcomes, in order, with consecutive ones of a topic under one entry.
fn by_topic(outcomes: impl IntoIterator<Item = PartitionElection>) -> Vec<ReplicaElectionResult> {
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for o in outcomes {
        let partition = PartitionResult::default()
            .with_partition_id(o.partition)
            .with_error_code(o.error_code)
            .with_error_message(o.message.map(str_bytes));
        match results.last_mut() {
            Some(last) if last.topic.0.as_str() == o.topic => last.partition_result.push(partition),
            _ => results.push(
                ReplicaElectionResult::default()
                    .with_topic(topic_name(o.topic))
                    .with_partition_result(vec![partition]),
            ),
        }
    }
    results
}
