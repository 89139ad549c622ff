//! Growing a topic (Kafka's CreatePartitions): more partitions, never
//! fewer. New partitions are placed as a new topic's are, with as many
//! replicas as partition 0 has; their logs open where they are placed
//! (`sync_partitions_with_metadata`, or following the image in a cluster).

use super::metadata::TopicState;
use super::topics::{place, PARTITIONS_PER_TOPIC_MAX};
use super::Broker;
use crate::error::{BrokerError, ErrorCode};
use crate::group::is_internal_topic;
use crate::io::Disk;

impl<D: Disk> Broker<D> {
    /// Grows topic `name` to `count` partitions; with `validate_only`, only
    /// says whether it would. Returns the topic as it is (or would be).
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<TopicState, BrokerError> {
        if is_internal_topic(name) {
            // Its partition count is where every group's offsets live: a
            // new count would move groups away from their committed offsets.
            let msg = format!(
                "{name} is internal: its partition count places every group's offsets and is fixed \
                 when it is created (--offsets-topic-partitions)"
            );
            return Err(BrokerError::new(ErrorCode::InvalidRequest, msg));
        }
        if self.config.quorum && !validate_only {
            self.check_new_partitions(name, count)?;
            // The controller places them, from its image.
            self.link()?.create_partitions(name.to_string(), count).await?;
            tracing::info!(topic = name, partitions = count, "created partitions");
            return self.metadata().topics.get(name).cloned().ok_or_else(|| {
                BrokerError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic {name} was deleted again"),
                )
            });
        }
        // The check and the change under one lock: two growths of a topic
        // cannot both pass it.
        let _one = self.metadata_changes.lock().await;
        let (mut topic, replication_factor) = self.check_new_partitions(name, count)?;
        let brokers = self.brokers();
        let first = topic.partitions.len() as u32;
        topic.partitions.extend((first..count as u32).map(|p| place(p, replication_factor, &brokers)));
        if validate_only {
            return Ok(topic);
        }
        self.put_topic(name, topic.clone()).await?;
        tracing::info!(topic = name, partitions = count, "created partitions");
        Ok(topic)
    }

    /// Checks a growth against this broker's metadata, with Kafka's
    /// messages: the topic and its replication factor.
    fn check_new_partitions(&self, name: &str, count: i32) -> Result<(TopicState, i16), BrokerError> {
        let Some(topic) = self.metadata().topics.get(name).cloned() else {
            return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}")));
        };
        let current = topic.partitions.len();
        if count < 0 || (count as usize) < current {
            return Err(BrokerError::new(
                ErrorCode::InvalidPartitions,
                format!("The topic {name} currently has {current} partition(s); {count} would not be an increase."),
            ));
        }
        if count as usize == current {
            let msg = format!("Topic already has {current} partition(s).");
            return Err(BrokerError::new(ErrorCode::InvalidPartitions, msg));
        }
        if count as u32 > PARTITIONS_PER_TOPIC_MAX {
            let msg = format!("partitions must be in 1..={PARTITIONS_PER_TOPIC_MAX}, got {count}");
            return Err(BrokerError::new(ErrorCode::InvalidPartitions, msg));
        }
        self.check_partitions_max(count as u32 - current as u32)?;
        let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len() as i16);
        let live = self.brokers().len();
        if replication_factor as usize > live {
            return Err(BrokerError::new(
                ErrorCode::InvalidReplicationFactor,
                format!("replication factor {replication_factor} needs {replication_factor} live brokers, {live} available"),
            ));
        }
        Ok((topic, replication_factor))
    }
}
