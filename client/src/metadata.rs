//! The cluster as a Metadata response describes it: brokers, topics,
//! partitions and their leaders, in plain types.

use std::collections::BTreeMap;

use kafka_protocol::messages::MetadataResponse;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, with an IPv6 host in brackets.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    /// Kafka error code for this partition (e.g. LEADER_NOT_AVAILABLE); 0 if none.
    pub error_code: i16,
    /// Node id of the leader, -1 while there is none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    /// Kafka error code for the topic (e.g. UNKNOWN_TOPIC_OR_PARTITION); 0 if none.
    pub error_code: i16,
    /// The topic id, if the broker assigns them (Metadata v10 and later).
    pub topic_id: Option<String>,
    pub is_internal: bool,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    pub fn partition(&self, partition: i32) -> Option<&PartitionInfo> {
        let at = self.partitions.binary_search_by_key(&partition, |p| p.partition).ok()?;
        Some(&self.partitions[at])
    }

    /// The replication factor as kafka-topics reports it: the replica count
    /// of the first partition.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    pub topics: BTreeMap<String, TopicInfo>,
}

impl ClusterMetadata {
    pub fn from_response(response: &MetadataResponse) -> ClusterMetadata {
        let brokers = response
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    node_id: b.node_id.0,
                    host: b.host.as_str().to_owned(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.as_str().to_owned()),
                };
                (info.node_id, info)
            })
            .collect();
        let topics = response
            .topics
            .iter()
            // A topic without a name can only come from a lookup by id,
            // which this client never makes.
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.as_str().to_owned();
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        error_code: p.error_code,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                        isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                        offline_replicas: p.offline_replicas.iter().map(|n| n.0).collect(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                let topic_id = (!t.topic_id.is_nil()).then(|| t.topic_id.to_string());
                let info = TopicInfo {
                    name: name.clone(),
                    error_code: t.error_code,
                    topic_id,
                    is_internal: t.is_internal,
                    partitions,
                };
                Some((name, info))
            })
            .collect();
        ClusterMetadata {
            cluster_id: response.cluster_id.as_ref().map(|c| c.as_str().to_owned()),
            controller_id: response.controller_id.0,
            brokers,
            topics,
        }
    }

    /// Takes the brokers of `newer` and its topics, keeping topics it did
    /// not mention (a refresh for one topic says nothing about the others).
    /// A partition whose cached leader epoch is newer than the one `newer`
    /// gives keeps the cached entry (KIP-320): a broker that has not yet
    /// followed a leader change must not send the client back to the old
    /// leader.
    pub fn merge(&mut self, newer: ClusterMetadata) {
        self.cluster_id = newer.cluster_id;
        self.controller_id = newer.controller_id;
        self.brokers = newer.brokers;
        for (name, mut topic) in newer.topics {
            if let Some(cached) = self.topics.get(&name).filter(|c| c.topic_id == topic.topic_id) {
                for p in &mut topic.partitions {
                    if let Some(known) =
                        cached.partition(p.partition).filter(|k| k.leader_epoch > p.leader_epoch)
                    {
                        *p = known.clone();
                    }
                }
            }
            self.topics.insert(name, topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(leader: i32, leader_epoch: i32) -> ClusterMetadata {
        let partition = PartitionInfo {
            partition: 0,
            error_code: 0,
            leader,
            leader_epoch,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            offline_replicas: vec![],
        };
        let info = TopicInfo {
            name: "t".into(),
            error_code: 0,
            topic_id: Some("id".into()),
            is_internal: false,
            partitions: vec![partition],
        };
        ClusterMetadata { topics: BTreeMap::from([("t".to_owned(), info)]), ..ClusterMetadata::default() }
    }

    #[test]
    fn a_broker_behind_on_leader_changes_does_not_send_the_client_back_to_the_old_leader() {
        let mut cached = topic(2, 5);
        cached.merge(topic(1, 4));
        assert_eq!(cached.topics["t"].partitions[0].leader, 2, "the older epoch is ignored");
        cached.merge(topic(1, 6));
        assert_eq!(cached.topics["t"].partitions[0].leader, 1, "a newer epoch is taken");
        let mut recreated = topic(3, 0);
        recreated.topics.get_mut("t").unwrap().topic_id = Some("other".into());
        cached.merge(recreated);
        assert_eq!(cached.topics["t"].partitions[0].leader, 3, "a new topic of the same name starts over");
    }
}
