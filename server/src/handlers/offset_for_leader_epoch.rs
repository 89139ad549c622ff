//! OffsetForLeaderEpoch: where a leader epoch ended, from the leader's
//! epoch checkpoint (`log::epochs`): the largest epoch it knows at or
//! below the one asked for, and where that ended (the next epoch's start,
//! or the log end). Followers truncate to it after a leader change;
//! consumers use it to detect truncation. An epoch older than any known is
//! answered as undefined (-1, -1), as Kafka does. A consumer needs
//! DESCRIBE on each topic, a follower (v3+ replica id) CLUSTER_ACTION.

use super::{check_leader_epoch, code, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // -1 is a consumer (and every request before v3); -2 a debugging one.
    let follower = request.replica_id.0 >= 0;
    let cluster_denied = follower && !access.cluster(Operation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.as_str();
            let denied = if cluster_denied {
                Some(ResponseError::ClusterAuthorizationFailed.code())
            } else if !follower && !access.topic(Operation::Describe, name) {
                Some(ResponseError::TopicAuthorizationFailed.code())
            } else {
                None
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = EpochEndOffset::default().with_partition(p.partition);
                    let answer = match denied {
                        Some(error_code) => Err(error_code),
                        None => end_offset(ctx, name, p.partition, p.current_leader_epoch, p.leader_epoch),
                    };
                    match answer {
                        Ok((epoch, offset)) => response.with_leader_epoch(epoch).with_end_offset(offset),
                        Err(error_code) => {
                            response.with_error_code(error_code).with_leader_epoch(-1).with_end_offset(-1)
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// (epoch, end offset) of `leader_epoch` in the partition.
fn end_offset(
    ctx: &Context,
    topic: &str,
    index: i32,
    current: i32,
    leader_epoch: i32,
) -> Result<(i32, i64), i16> {
    let partition = ctx.broker.leader_partition(topic, index).map_err(|e| code(&e))?;
    let epoch = partition.leader_epoch();
    check_leader_epoch(current, epoch)?;
    match partition.log.end_of_epoch(leader_epoch) {
        Some((found, end)) => Ok((found, end as i64)),
        // A log written before epochs were kept has none for its current one.
        None if leader_epoch == epoch => Ok((epoch, partition.log.log_end_offset() as i64)),
        None => Ok((-1, -1)),
    }
}
