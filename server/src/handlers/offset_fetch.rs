//! OffsetFetch: a group's committed offsets, for the given partitions or
//! (null topics) every partition it has committed. v1-7 ask about one
//! group, v8 about several. Nothing committed reads as offset -1.
//!
//! Needs DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) and on each
//! topic: one asked for is answered TOPIC_AUTHORIZATION_FAILED, and one the
//! caller may not describe is left out of "every partition".

use super::{code, str_bytes, topic_name, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::{BrokerError, ErrorCode};
use ringtail_engine::group::FetchedOffset;
use ringtail_engine::security::acl::{Operation, ResourceType};

/// One partition's answer: (index, offset, leader epoch, metadata, error).
type Row = (i32, i64, i32, String, i16);

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let asked = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect::<Vec<(TopicName, Vec<i32>)>>()
            });
            let id = group.group_id.0.to_string();
            let response = OffsetFetchResponseGroup::default().with_group_id(group.group_id);
            let response = match fetch(ctx, access, &id, asked).await {
                Ok(topics) => response.with_topics(
                    topics
                        .into_iter()
                        .map(|(name, rows)| {
                            let partitions = rows
                                .into_iter()
                                .map(|(index, offset, epoch, metadata, error_code)| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(str_bytes(metadata)))
                                        .with_error_code(error_code)
                                })
                                .collect();
                            OffsetFetchResponseTopics::default().with_name(name).with_partitions(partitions)
                        })
                        .collect(),
                ),
                Err(e) => response.with_error_code(code(&e)),
            };
            groups.push(response);
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let asked = request.topics.map(|topics| {
        topics.into_iter().map(|t| (t.name, t.partition_indexes)).collect::<Vec<(TopicName, Vec<i32>)>>()
    });
    let group = request.group_id.0.to_string();
    let (topics, error_code) = match fetch(ctx, access, &group, asked.clone()).await {
        Ok(topics) => (topics, 0),
        // v2+ report a group's error once; v1 has only per-partition codes,
        // so each asked-for partition carries it.
        Err(e) if version >= 2 => (Vec::new(), code(&e)),
        Err(e) => {
            let error_code = code(&e);
            let topics = asked
                .unwrap_or_default()
                .into_iter()
                .map(|(name, partitions)| {
                    (name, partitions.into_iter().map(|p| (p, -1, -1, String::new(), error_code)).collect())
                })
                .collect();
            (topics, 0)
        }
    };
    let topics = topics
        .into_iter()
        .map(|(name, rows)| {
            let partitions = rows
                .into_iter()
                .map(|(index, offset, epoch, metadata, error_code)| {
                    let partition = OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_metadata(Some(str_bytes(metadata)))
                        .with_error_code(error_code);
                    if version >= 5 {
                        partition.with_committed_leader_epoch(epoch)
                    } else {
                        partition
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(error_code)
    } else {
        response
    }
}

/// The group's offsets for `asked` (or all it committed), grouped by topic
/// in the order asked (or the engine's order).
async fn fetch(
    ctx: &Context,
    access: Access<'_>,
    group: &str,
    asked: Option<Vec<(TopicName, Vec<i32>)>>,
) -> Result<Vec<(TopicName, Vec<Row>)>, BrokerError> {
    if !access.group(Operation::Describe, group) {
        let message = format!("Not authorized to access group {group}");
        return Err(BrokerError::new(ErrorCode::GroupAuthorizationFailed, message));
    }
    let Some(asked) = asked else {
        let fetched = ctx.broker.fetch_offsets(group, None).await.inspect_err(|e| {
            tracing::debug!(group, error = %e, "offset fetch refused");
        })?;
        let visible = fetched
            .into_iter()
            .filter(|f| access.quietly(Operation::Describe, ResourceType::Topic, &f.topic));
        return Ok(group_by_topic(visible.collect()));
    };
    let (allowed, denied): (Vec<_>, Vec<_>) =
        asked.into_iter().partition(|(name, _)| access.topic(Operation::Describe, name.0.as_str()));
    let partitions: Vec<(String, i32)> = allowed
        .iter()
        .flat_map(|(name, partitions)| partitions.iter().map(move |p| (name.0.to_string(), *p)))
        .collect();
    let mut topics = if partitions.is_empty() && !denied.is_empty() {
        Vec::new()
    } else {
        let fetched = ctx.broker.fetch_offsets(group, Some(partitions)).await.inspect_err(|e| {
            tracing::debug!(group, error = %e, "offset fetch refused");
        })?;
        group_by_topic(fetched)
    };
    let refused = ResponseError::TopicAuthorizationFailed.code();
    topics.extend(denied.into_iter().map(|(name, partitions)| {
        (name, partitions.into_iter().map(|p| (p, -1, -1, String::new(), refused)).collect())
    }));
    Ok(topics)
}

/// Consecutive answers for one topic become one entry; a topic seen again
/// later gets another (the wire allows it; the engine answers in order).
fn group_by_topic(fetched: Vec<FetchedOffset>) -> Vec<(TopicName, Vec<Row>)> {
    let mut topics: Vec<(TopicName, Vec<Row>)> = Vec::new();
    for f in fetched {
        let row = match &f.committed {
            Some(c) => (
                f.partition,
                c.offset,
                c.leader_epoch,
                c.metadata.clone().unwrap_or_default(),
                f.error.code(),
            ),
            None => (f.partition, -1, -1, String::new(), f.error.code()),
        };
        match topics.last_mut() {
            Some((name, rows)) if name.0.as_str() == f.topic => rows.push(row),
            _ => topics.push((topic_name(f.topic), vec![row])),
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringtail_engine::broker::ErrorCode;
    use ringtail_engine::group::CommittedOffset;

    #[test]
    fn answers_are_grouped_by_consecutive_topic() {
        let f = |topic: &str, partition, offset: Option<i64>| FetchedOffset {
            topic: topic.into(),
            partition,
            committed: offset.map(|offset| CommittedOffset {
                offset,
                leader_epoch: 3,
                metadata: None,
                commit_timestamp_ms: 0,
            }),
            error: ErrorCode::None,
        };
        let grouped = group_by_topic(vec![f("a", 0, Some(5)), f("a", 1, None), f("b", 0, Some(7))]);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].0 .0.as_str(), "a");
        assert_eq!(grouped[0].1, vec![(0, 5, 3, String::new(), 0), (1, -1, -1, String::new(), 0)]);
        assert_eq!(grouped[1].1, vec![(0, 7, 3, String::new(), 0)]);
    }
}
