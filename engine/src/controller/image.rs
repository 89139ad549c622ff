//! The metadata image: what applying the committed metadata log, in order,
//! builds. Every voter and every broker that applies the same entries holds
//! the same image (`apply` reads nothing but the image and the record).

use super::records::{Endpoint, MetadataRecord, PartitionRecord};
use crate::security::state::SecurityState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrokerImage {
    pub incarnation: u64,
    pub endpoints: Vec<Endpoint>,
    /// A fenced broker leads nothing and is in no ISR.
    pub fenced: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicImage {
    /// 32 lowercase hex digits (Kafka's topic UUID).
    pub topic_id: String,
    pub partitions: Vec<PartitionRecord>,
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerImage>,
    pub topics: BTreeMap<String, TopicImage>,
    /// Topics created so far: spreads the first replica of new topics.
    pub topics_created: u64,
    /// Where the next block of producer ids starts.
    #[serde(default)]
    pub next_producer_id: i64,
    /// Users' credentials, ACLs and client quotas.
    #[serde(default)]
    pub security: SecurityState,
}

impl MetadataImage {
    /// Applies one record; whether it took effect. A record that does not
    /// fit the image (a fence of an incarnation since replaced, a create of
    /// a name that exists, a change to a deleted topic) was overtaken by an
    /// earlier entry of the log and changes nothing: every node skips it
    /// alike.
    pub fn apply(&mut self, record: &MetadataRecord) -> bool {
        match record {
            MetadataRecord::ClusterId { cluster_id } => {
                let took = self.cluster_id.is_none();
                self.cluster_id.get_or_insert_with(|| cluster_id.clone());
                took
            }
            MetadataRecord::RegisterBroker { node_id, incarnation, endpoints } => {
                let broker =
                    BrokerImage { incarnation: *incarnation, endpoints: endpoints.clone(), fenced: true };
                self.brokers.insert(*node_id, broker);
                true
            }
            MetadataRecord::FenceBroker { node_id, incarnation } => {
                self.broker_mut(*node_id, *incarnation).map(|b| b.fenced = true).is_some()
            }
            MetadataRecord::UnfenceBroker { node_id, incarnation } => {
                self.broker_mut(*node_id, *incarnation).map(|b| b.fenced = false).is_some()
            }
            MetadataRecord::CreateTopic { name, topic_id, partitions, configs } => {
                if self.topics.contains_key(name) {
                    return false;
                }
                let topic = TopicImage {
                    topic_id: topic_id.clone(),
                    partitions: partitions.clone(),
                    configs: configs.clone(),
                };
                self.topics.insert(name.clone(), topic);
                self.topics_created += 1;
                true
            }
            MetadataRecord::DeleteTopic { name, topic_id } => {
                let took = self.topics.get(name).is_some_and(|t| t.topic_id == *topic_id);
                if took {
                    self.topics.remove(name);
                }
                took
            }
            MetadataRecord::ProducerIds { first, count, .. } => {
                let took = *first == self.next_producer_id && *count > 0;
                if took {
                    self.next_producer_id = first.saturating_add(*count);
                }
                took
            }
            // A compare-and-set on the partition epoch: a change decided on
            // an older state of the partition (a leader's ISR change racing
            // a fencing) is overtaken, never applied over the newer one.
            MetadataRecord::PartitionChange { topic_id, partition, state } => {
                let topic = self.topics.values_mut().find(|t| t.topic_id == *topic_id);
                match topic.and_then(|t| t.partitions.get_mut(*partition as usize)) {
                    Some(p) if p.partition_epoch + 1 == state.partition_epoch => {
                        *p = state.clone();
                        true
                    }
                    _ => false,
                }
            }
            MetadataRecord::CreatePartitions { topic_id, first, partitions } => {
                let topic = self.topics.values_mut().find(|t| t.topic_id == *topic_id);
                match topic {
                    Some(t) if usize::try_from(*first).is_ok_and(|f| f == t.partitions.len()) => {
                        t.partitions.extend(partitions.iter().cloned());
                        true
                    }
                    _ => false,
                }
            }
            MetadataRecord::TopicConfigs { topic_id, expected, configs } => {
                let topic = self.topics.values_mut().find(|t| t.topic_id == *topic_id);
                match topic {
                    Some(t) if t.configs == *expected => {
                        t.configs = configs.clone();
                        true
                    }
                    _ => false,
                }
            }
            MetadataRecord::Security(change) => self.security.apply(change),
        }
    }

    fn broker_mut(&mut self, node_id: i32, incarnation: u64) -> Option<&mut BrokerImage> {
        self.brokers.get_mut(&node_id).filter(|b| b.incarnation == incarnation)
    }

    /// Brokers that may lead and host new replicas, by id.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers.iter().filter(|(_, b)| !b.fenced).map(|(id, _)| *id).collect()
    }

    pub fn is_live(&self, node_id: i32) -> bool {
        self.brokers.get(&node_id).is_some_and(|b| !b.fenced)
    }

    pub fn topic_by_id(&self, topic_id: &str) -> Option<(&String, &TopicImage)> {
        self.topics.iter().find(|(_, t)| t.topic_id == topic_id)
    }

    /// Debug-checks what every image must satisfy.
    pub fn check(&self) -> Result<(), String> {
        for (name, topic) in &self.topics {
            for (i, p) in topic.partitions.iter().enumerate() {
                if p.leader >= 0 && !p.isr.contains(&p.leader) {
                    return Err(format!("{name}-{i}: leader {} is not in its ISR {:?}", p.leader, p.isr));
                }
                if let Some(r) = p.isr.iter().find(|r| !p.replicas.contains(r)) {
                    return Err(format!("{name}-{i}: ISR member {r} is not a replica {:?}", p.replicas));
                }
                if p.isr.is_empty() {
                    return Err(format!("{name}-{i}: empty ISR"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(node_id: i32, incarnation: u64) -> MetadataRecord {
        MetadataRecord::RegisterBroker { node_id, incarnation, endpoints: Vec::new() }
    }

    #[test]
    fn a_registered_broker_starts_fenced_and_old_incarnations_change_nothing() {
        let mut image = MetadataImage::default();
        image.apply(&register(1, 10));
        assert_eq!(image.live_brokers(), Vec::<i32>::new());
        image.apply(&MetadataRecord::UnfenceBroker { node_id: 1, incarnation: 10 });
        assert_eq!(image.live_brokers(), [1]);
        image.apply(&register(1, 11));
        image.apply(&MetadataRecord::UnfenceBroker { node_id: 1, incarnation: 10 });
        assert!(!image.is_live(1), "an unfence for the previous incarnation");
        image.apply(&MetadataRecord::UnfenceBroker { node_id: 1, incarnation: 11 });
        image.apply(&MetadataRecord::FenceBroker { node_id: 1, incarnation: 10 });
        assert!(image.is_live(1), "a fence for the previous incarnation");
    }

    #[test]
    fn delete_names_the_topic_id_so_a_recreated_topic_survives_a_stale_delete() {
        let mut image = MetadataImage::default();
        let create = |id: &str| MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id: id.into(),
            partitions: Vec::new(),
            configs: BTreeMap::new(),
        };
        image.apply(&create("a"));
        image.apply(&create("b"));
        assert_eq!(image.topics["t"].topic_id, "a", "a create of an existing name changes nothing");
        image.apply(&MetadataRecord::DeleteTopic { name: "t".into(), topic_id: "a".into() });
        image.apply(&create("b"));
        image.apply(&MetadataRecord::DeleteTopic { name: "t".into(), topic_id: "a".into() });
        assert_eq!(image.topics["t"].topic_id, "b");
        assert_eq!(image.topics_created, 2);
    }

    /// Growth and config changes are compare-and-set: one planned from an
    /// image the log has since moved past changes nothing.
    #[test]
    fn partitions_and_configs_change_only_from_the_state_they_were_planned_on() {
        let mut image = MetadataImage::default();
        let partition = PartitionRecord {
            replicas: vec![1],
            leader: 1,
            leader_epoch: 0,
            isr: vec![1],
            partition_epoch: 0,
        };
        image.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id: "a".into(),
            partitions: vec![partition.clone()],
            configs: BTreeMap::new(),
        });
        let grow = |first: i32, n: usize| MetadataRecord::CreatePartitions {
            topic_id: "a".into(),
            first,
            partitions: vec![partition.clone(); n],
        };
        assert!(image.apply(&grow(1, 2)));
        assert!(!image.apply(&grow(1, 2)), "a second growth planned from one partition");
        assert!(!image.apply(&grow(-1, 1)));
        assert_eq!(image.topics["t"].partitions.len(), 3);
        let set = |expected: &[(&str, &str)], configs: &[(&str, &str)]| {
            let map = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            MetadataRecord::TopicConfigs {
                topic_id: "a".into(),
                expected: map(expected),
                configs: map(configs),
            }
        };
        assert!(image.apply(&set(&[], &[("retention.ms", "1")])));
        assert!(!image.apply(&set(&[], &[("segment.ms", "2")])), "planned before the first change");
        assert!(image.apply(&set(&[("retention.ms", "1")], &[])));
        assert!(image.topics["t"].configs.is_empty());
        let unknown =
            MetadataRecord::CreatePartitions { topic_id: "zz".into(), first: 3, partitions: Vec::new() };
        assert!(!image.apply(&unknown));
    }
}
