//! A group's committed offsets: OffsetCommit and OffsetFetch.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{group_id, str_bytes, Membership};
use crate::cluster::Client;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};

/// Committed offsets by (topic, partition); partitions with no committed
/// offset are left out.
pub type CommittedOffsets = BTreeMap<(String, i32), i64>;

impl Client {
    /// The group's committed offsets: for `partitions` (topic, partitions),
    /// or for everything it committed if `None`.
    pub async fn fetch_committed(
        &self,
        group: &str,
        partitions: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<CommittedOffsets> {
        self.with_coordinator(group, |connection| async move {
            offset_fetch(&connection, group, partitions).await
        })
        .await
    }

    /// Commits `offsets` (the next offset to read, per partition) for a
    /// member of `membership`'s generation; an empty membership (member
    /// id "", generation -1) commits for a group with no active members.
    pub async fn commit_offsets(&self, membership: &Membership, offsets: &CommittedOffsets) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        self.with_coordinator(&membership.group, |connection| async move {
            offset_commit(&connection, membership, offsets).await
        })
        .await
    }
}

async fn offset_commit(
    connection: &Connection,
    membership: &Membership,
    offsets: &CommittedOffsets,
) -> Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        by_topic.entry(topic.as_str()).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str(""))),
        );
    }
    let response = connection
        .request(|version| {
            let topics = by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partitions(partitions)
                })
                .collect();
            let mut request = OffsetCommitRequest::default()
                .with_group_id(group_id(&membership.group))
                .with_generation_id_or_member_epoch(membership.generation)
                .with_member_id(str_bytes(&membership.member_id))
                .with_topics(topics);
            if version <= 4 {
                request = request.with_retention_time_ms(-1);
            }
            if version >= 7 {
                request =
                    request.with_group_instance_id(membership.group_instance_id.as_deref().map(str_bytes));
            }
            request
        })
        .await?;
    // Report the first partition error; they are all the same in practice
    // (a stale generation, a moved coordinator).
    for topic in &response.topics {
        for p in &topic.partitions {
            check(p.error_code, None, || {
                format!(
                    "commit offsets of group {} for {}-{}",
                    membership.group,
                    topic.name.0.as_str(),
                    p.partition_index
                )
            })?;
        }
    }
    Ok(())
}

async fn offset_fetch(
    connection: &Connection,
    group: &str,
    partitions: Option<&BTreeMap<String, Vec<i32>>>,
) -> Result<CommittedOffsets> {
    let context = || format!("fetch committed offsets of group {group}");
    let version = connection.version_for::<OffsetFetchRequest>()?;
    let request = if version >= 8 {
        let topics = partitions.map(|p| {
            p.iter()
                .map(|(topic, indexes)| {
                    kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partition_indexes(indexes.clone())
                })
                .collect()
        });
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(topics)])
    } else {
        let topics: Option<Vec<OffsetFetchRequestTopic>> = partitions.map(|p| {
            p.iter()
                .map(|(topic, indexes)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partition_indexes(indexes.clone())
                })
                .collect()
        });
        // "All topics" (null) exists from v2; v1 can only name them.
        let topics = if version < 2 { Some(topics.unwrap_or_default()) } else { topics };
        OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(topics)
    };
    let response = connection.send(&request, version).await?;
    let mut committed = CommittedOffsets::new();
    let mut record = |topic: &str, partition: i32, offset: i64, error_code: i16| -> Result<()> {
        check(error_code, None, || format!("{} ({topic}-{partition})", context()))?;
        if offset >= 0 {
            committed.insert((topic.to_owned(), partition), offset);
        }
        Ok(())
    };
    if version >= 8 {
        let answer = response.groups.iter().find(|g| g.group_id.0.as_str() == group).ok_or_else(|| {
            ClientError::Protocol {
                addr: connection.addr().to_owned(),
                reason: format!("OffsetFetch response has no entry for group {group}"),
            }
        })?;
        check(answer.error_code, None, context)?;
        for topic in &answer.topics {
            for p in &topic.partitions {
                record(topic.name.0.as_str(), p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    } else {
        check(response.error_code, None, context)?;
        for topic in &response.topics {
            for p in &topic.partitions {
                record(topic.name.0.as_str(), p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    }
    Ok(committed)
}
