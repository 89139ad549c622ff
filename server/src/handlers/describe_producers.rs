//! DescribeProducers: the idempotent producers with batches in each
//! partition's log, answered by the partition's leader (as
//! kafka-transactions.sh describe-producers and AdminClient ask).
//! Ringtail has no transactions, so no producer has an open one:
//! `current_txn_start_offset` is -1 and `coordinator_epoch` -1. Needs
//! READ on each topic.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let readable = access.topic(Operation::Read, &name);
            let partitions = t
                .partition_indexes
                .into_iter()
                .map(|index| {
                    let answer = PartitionResponse::default().with_partition_index(index);
                    if !readable {
                        return answer.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    match ctx.broker.leader_partition(&name, index) {
                        Ok(p) => answer.with_active_producers(
                            p.active_producers()
                                .into_iter()
                                .map(|a| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(a.producer_id))
                                        .with_producer_epoch(i32::from(a.epoch))
                                        .with_last_sequence(a.last_sequence)
                                        .with_last_timestamp(a.last_timestamp)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(-1)
                                })
                                .collect(),
                        ),
                        Err(e) => {
                            answer.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message)))
                        }
                    }
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
