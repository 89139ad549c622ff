//! Groups as a whole: ListGroups, DescribeGroups, DeleteGroups, and
//! OffsetDelete for some of a group's offsets.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest, OffsetDeleteRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{group_id, opt_string};
use crate::cluster::Client;
use crate::error::{check, code, ClientError, Result};

/// One group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// From ListGroups v4; `None` from older brokers.
    pub state: Option<String>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's state names: Empty, PreparingRebalance, CompletingRebalance,
    /// Stable, Dead.
    pub state: String,
    pub protocol_type: String,
    /// The protocol (assignor) the group chose, e.g. `range`.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

impl Client {
    /// Every group on every broker of the cluster, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<ListedGroup>> {
        let metadata = self.fetch_metadata(Some(&[])).await?;
        let mut groups = BTreeMap::new();
        for broker in metadata.brokers.values() {
            let connection = self.connection_to(&broker.addr()).await?;
            let response = connection.request(|_version| ListGroupsRequest::default()).await?;
            check(response.error_code, None, || format!("list groups on broker {}", broker.node_id))?;
            for g in response.groups {
                let state = Some(g.group_state.as_str().to_owned()).filter(|s| !s.is_empty());
                let listed = ListedGroup {
                    group_id: g.group_id.0.as_str().to_owned(),
                    protocol_type: g.protocol_type.as_str().to_owned(),
                    state,
                };
                groups.insert(listed.group_id.clone(), listed);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes `group`. A group that does not exist is reported as
    /// GROUP_ID_NOT_FOUND (older brokers say state `Dead` instead; so
    /// does this).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let response = self
            .with_coordinator(group, |connection| async move {
                connection
                    .request(|_version| DescribeGroupsRequest::default().with_groups(vec![group_id(group)]))
                    .await
            })
            .await?;
        let described =
            response.groups.into_iter().find(|g| g.group_id.0.as_str() == group).ok_or_else(|| {
                ClientError::Protocol {
                    addr: "(coordinator)".to_owned(),
                    reason: format!("DescribeGroups response has no entry for group {group}"),
                }
            })?;
        check(described.error_code, described.error_message.as_ref().map(StrBytes::as_str), || {
            format!("describe group {group}")
        })?;
        if described.group_state.as_str() == "Dead" {
            return Err(ClientError::kafka(
                format!("describe group {group}"),
                code::GROUP_ID_NOT_FOUND,
                None,
            ));
        }
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: described.group_state.as_str().to_owned(),
            protocol_type: described.protocol_type.as_str().to_owned(),
            protocol: described.protocol_data.as_str().to_owned(),
            members: described
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.as_str().to_owned(),
                    group_instance_id: opt_string(&m.group_instance_id),
                    client_id: m.client_id.as_str().to_owned(),
                    client_host: m.client_host.as_str().to_owned(),
                    metadata: m.member_metadata,
                    assignment: m.member_assignment,
                })
                .collect(),
        })
    }

    /// Deletes an empty group and its committed offsets.
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let response = self
            .with_coordinator(group, |connection| async move {
                let response = connection
                    .request(|_version| {
                        DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)])
                    })
                    .await?;
                // The per-group error may itself say "not the coordinator".
                let result = response.results.iter().find(|r| r.group_id.0.as_str() == group);
                if let Some(r) = result {
                    check(r.error_code, None, || format!("delete group {group}"))?;
                }
                Ok(response)
            })
            .await?;
        if !response.results.iter().any(|r| r.group_id.0.as_str() == group) {
            return Err(ClientError::Protocol {
                addr: "(coordinator)".to_owned(),
                reason: format!("DeleteGroups response has no entry for group {group}"),
            });
        }
        Ok(())
    }

    /// Deletes `group`'s committed offsets of `partitions` (OffsetDelete).
    /// A group-wide refusal (an unknown group, say) is an error; otherwise
    /// each partition's error code, 0 where its offset is gone (or there
    /// was none), GROUP_SUBSCRIBED_TO_TOPIC where a live member reads it.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<((String, i32), i16)>> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            by_topic.entry(topic.as_str()).or_default().push(*partition);
        }
        let by_topic = &by_topic;
        let response = self
            .with_coordinator(group, |connection| async move {
                let response = connection
                    .request(|_version| {
                        let topics = by_topic
                            .iter()
                            .map(|(topic, partitions)| {
                                OffsetDeleteRequestTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                                    .with_partitions(
                                        partitions
                                            .iter()
                                            .map(|p| {
                                                OffsetDeleteRequestPartition::default()
                                                    .with_partition_index(*p)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect();
                        OffsetDeleteRequest::default().with_group_id(group_id(group)).with_topics(topics)
                    })
                    .await?;
                check(response.error_code, None, || format!("delete offsets of group {group}"))?;
                Ok(response)
            })
            .await?;
        Ok(response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ((t.name.0.as_str().to_owned(), p.partition_index), p.error_code))
            })
            .collect())
    }
}
