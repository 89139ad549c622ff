//! OffsetForLeaderEpoch: where a leader epoch ended, from the leader's
//! epoch checkpoint (`log::epochs`): the largest epoch it knows at or
//! below the one asked for, and where that ended (the next epoch's start,
//! or the log end). Followers truncate to it after a leader change;
//! consumers use it to detect truncation. An epoch older than any known is
//! answered as undefined (-1, -1), as Kafka does.

use super::{check_leader_epoch, code, Context};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

pub fn handle(ctx: &Context, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = EpochEndOffset::default().with_partition(p.partition);
                    match end_offset(ctx, name, p.partition, p.current_leader_epoch, p.leader_epoch) {
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
