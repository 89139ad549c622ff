//! What the controller leader proposes: pure functions of the image, so a
//! decision can be tested without a quorum and replays exactly.

use super::image::MetadataImage;
use super::records::{IsrChange, MetadataRecord, PartitionRecord};
use crate::error::{BrokerError, ErrorCode};
use std::collections::BTreeMap;

// Leader elections, automatic and requested.
mod election;
pub use election::{
    elect_leaders, elect_unclean, prefer_leaders, preferred_election, unclean_election, ElectionType,
    PartitionElection, Wanted,
};

/// A new topic's records: `replication_factor` replicas per partition,
/// spread evenly over the live brokers (partition `p`'s replicas start one
/// broker after partition `p - 1`'s, and each topic starts one broker
/// after the previous topic, so leaders spread too). The ISR starts as the
/// leader alone: a follower joins it once it has caught up with the
/// leader's log (replication's AlterPartition), and until then leadership
/// must not move to it, or what the leader acknowledged would be lost.
pub fn create_topic(
    image: &MetadataImage,
    name: &str,
    topic_id: String,
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
) -> Result<MetadataRecord, BrokerError> {
    if image.topics.contains_key(name) {
        return Err(BrokerError::new(ErrorCode::TopicAlreadyExists, format!("topic {name} already exists")));
    }
    if partitions < 1 {
        return Err(BrokerError::new(ErrorCode::InvalidPartitions, format!("{partitions} partitions")));
    }
    let live = image.live_brokers();
    if replication_factor < 1 || replication_factor as usize > live.len() {
        return Err(BrokerError::new(
            ErrorCode::InvalidReplicationFactor,
            format!("replication factor {replication_factor} with {} live brokers", live.len()),
        ));
    }
    let start = (image.topics_created % live.len() as u64) as usize;
    let records = (0..partitions as usize).map(|p| place(&live, start + p, replication_factor)).collect();
    Ok(MetadataRecord::CreateTopic { name: name.to_string(), topic_id, partitions: records, configs })
}

/// A new partition whose replicas are `replication_factor` live brokers
/// from `live[at]` on, led by the first: its ISR is the leader alone.
fn place(live: &[i32], at: usize, replication_factor: i16) -> PartitionRecord {
    let replicas: Vec<i32> = (0..replication_factor as usize).map(|j| live[(at + j) % live.len()]).collect();
    PartitionRecord {
        leader: replicas[0],
        leader_epoch: 0,
        isr: vec![replicas[0]],
        replicas,
        partition_epoch: 0,
    }
}

/// Grows topic `name` to `count` partitions (Kafka's CreatePartitions):
/// the new ones get as many replicas as partition 0 has, placed as
/// `create_topic` places them, continuing its stripe: partition `p`'s
/// replicas start `p` brokers after partition 0's first replica (or the
/// first live broker after it, as Kafka's `addPartitions` picks, when that
/// one is fenced).
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    count: i32,
) -> Result<MetadataRecord, BrokerError> {
    let Some(topic) = image.topics.get(name) else {
        return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}")));
    };
    let current = topic.partitions.len();
    if count < 0 || (count as usize) < current {
        return Err(BrokerError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "The topic {name} currently has {current} partition(s); {count} would not be an increase."
            ),
        ));
    }
    if count as usize == current {
        let msg = format!("Topic already has {current} partition(s).");
        return Err(BrokerError::new(ErrorCode::InvalidPartitions, msg));
    }
    let max = crate::broker::topics::PARTITIONS_PER_TOPIC_MAX;
    if count as u32 > max {
        let msg = format!("partitions must be in 1..={max}, got {count}");
        return Err(BrokerError::new(ErrorCode::InvalidPartitions, msg));
    }
    let live = image.live_brokers();
    let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len() as i16);
    if live.len() < replication_factor as usize {
        return Err(BrokerError::new(
            ErrorCode::InvalidReplicationFactor,
            format!("replication factor {replication_factor} with {} live brokers", live.len()),
        ));
    }
    let first_replica = topic.partitions.first().and_then(|p| p.replicas.first()).copied().unwrap_or(0);
    let start = live.iter().position(|id| *id >= first_replica).unwrap_or(0);
    let partitions = (current..count as usize).map(|p| place(&live, start + p, replication_factor)).collect();
    Ok(MetadataRecord::CreatePartitions {
        topic_id: topic.topic_id.clone(),
        first: current as i32,
        partitions,
    })
}

/// Topic `name`'s overrides become `configs` (validated by the broker that
/// asks), if they still are `expected`: the broker computed the change from
/// its own image, which may be behind the quorum's.
pub fn alter_topic_configs(
    image: &MetadataImage,
    name: &str,
    expected: BTreeMap<String, String>,
    configs: BTreeMap<String, String>,
) -> Result<MetadataRecord, BrokerError> {
    let Some(topic) = image.topics.get(name) else {
        return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}")));
    };
    if topic.configs != expected {
        return Err(BrokerError::new(
            ErrorCode::InvalidUpdateVersion,
            format!("the configs of topic {name} changed since the broker read them (another change came first); try again"),
        ));
    }
    Ok(MetadataRecord::TopicConfigs { topic_id: topic.topic_id.clone(), expected, configs })
}

/// Fencing `node_id`: it leaves every ISR; partitions it led move to the
/// first live member left in their ISR, or have no leader when it was the
/// last (it stays in the ISR then, so it can lead again: unclean election
/// is off).
pub fn fence(image: &MetadataImage, node_id: i32, incarnation: u64) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::FenceBroker { node_id, incarnation }];
    records.extend(evict(image, node_id));
    records
}

/// The partition changes that take a fenced `node_id` out of every ISR
/// and leadership (see `fence`). Empty once the image has none left: the
/// leader re-checks after every change, so a topic placed on a broker
/// while it was being fenced is fixed too.
pub fn evict(image: &MetadataImage, node_id: i32) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (index, p) in topic.partitions.iter().enumerate() {
            if !p.isr.contains(&node_id) {
                continue;
            }
            let rest: Vec<i32> = p.isr.iter().copied().filter(|r| *r != node_id).collect();
            let mut next = p.clone();
            if crate::canary::Canary::ReplicationLeaderOutsideIsr.on() && p.leader == node_id {
                // Planted bug (sim/canaries): any live replica leads, and is
                // written into the ISR as if it had been there.
                if let Some(any) = p.replicas.iter().copied().find(|r| *r != node_id && image.is_live(*r)) {
                    next.leader = any;
                    next.isr = rest.iter().copied().chain(std::iter::once(any)).collect();
                    next.isr.sort_unstable();
                    next.isr.dedup();
                    push_change(&mut records, &topic.topic_id, index, p, next);
                    continue;
                }
            }
            if rest.is_empty() {
                if p.leader < 0 {
                    continue;
                }
                next.leader = -1;
            } else {
                next.isr = rest;
                if p.leader == node_id || p.leader < 0 {
                    next.leader = next.isr.iter().copied().find(|r| image.is_live(*r)).unwrap_or(-1);
                }
            }
            if next.leader < 0 && unclean(topic) {
                if let Some(r) = p.replicas.iter().copied().find(|r| *r != node_id && image.is_live(*r)) {
                    tracing::warn!(topic = %topic.topic_id, partition = index, leader = r, "unclean leader election: no in-sync replica is live");
                    next.leader = r;
                    next.isr = vec![r];
                }
            }
            push_change(&mut records, &topic.topic_id, index, p, next);
        }
    }
    records
}

/// Unfencing `node_id`: partitions without a leader whose ISR holds it get
/// it as leader. (Rejoining ISRs it left is the replication layer's, once
/// it has caught up.)
pub fn unfence(image: &MetadataImage, node_id: i32, incarnation: u64) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::UnfenceBroker { node_id, incarnation }];
    for topic in image.topics.values() {
        for (index, p) in topic.partitions.iter().enumerate() {
            if p.leader < 0 && p.isr.contains(&node_id) {
                let next = PartitionRecord { leader: node_id, ..p.clone() };
                push_change(&mut records, &topic.topic_id, index, p, next);
            } else if p.leader < 0 && p.replicas.contains(&node_id) && unclean(topic) {
                // Every ISR member is still fenced: the first replica back
                // leads with what it has.
                tracing::warn!(topic = %topic.topic_id, partition = index, leader = node_id, "unclean leader election: no in-sync replica is live");
                let next = PartitionRecord { leader: node_id, isr: vec![node_id], ..p.clone() };
                push_change(&mut records, &topic.topic_id, index, p, next);
            }
        }
    }
    records
}

/// What a partition leader asks of the controller (Kafka's AlterPartition):
/// the partition's ISR becomes `isr`. Granted only to the current leader,
/// at the leader and partition epochs it last saw, for an ISR of replicas
/// that holds the leader and adds no fenced broker (a fenced broker may
/// lead nothing, so it must not become eligible to).
pub fn alter_isr(
    image: &MetadataImage,
    node_id: i32,
    change: &IsrChange,
) -> Result<Option<MetadataRecord>, BrokerError> {
    let IsrChange { topic_id, partition, leader_epoch, partition_epoch, isr } = change;
    let (partition, leader_epoch, partition_epoch) = (*partition, *leader_epoch, *partition_epoch);
    let unknown = || {
        BrokerError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("no partition {partition} of topic id {topic_id}"),
        )
    };
    let (_, topic) = image.topic_by_id(topic_id).ok_or_else(unknown)?;
    let index = usize::try_from(partition).map_err(|_| unknown())?;
    let p = topic.partitions.get(index).ok_or_else(unknown)?;
    if p.leader != node_id {
        return Err(BrokerError::new(
            ErrorCode::NotLeaderOrFollower,
            format!("broker {node_id} does not lead it; {} does", p.leader),
        ));
    }
    if leader_epoch != p.leader_epoch {
        return Err(BrokerError::new(
            ErrorCode::FencedLeaderEpoch,
            format!("leader epoch {leader_epoch}, the partition is at {}", p.leader_epoch),
        ));
    }
    if partition_epoch != p.partition_epoch {
        return Err(BrokerError::new(
            ErrorCode::InvalidUpdateVersion,
            format!("partition epoch {partition_epoch}, the partition is at {}", p.partition_epoch),
        ));
    }
    let mut wanted = isr.clone();
    wanted.sort_unstable();
    wanted.dedup();
    if !wanted.contains(&node_id) || wanted.iter().any(|r| !p.replicas.contains(r)) {
        return Err(BrokerError::new(
            ErrorCode::InvalidRequest,
            format!("ISR {wanted:?} must hold the leader {node_id} and only replicas {:?}", p.replicas),
        ));
    }
    if let Some(r) = wanted.iter().find(|r| !p.isr.contains(r) && !image.is_live(**r)) {
        return Err(BrokerError::new(ErrorCode::IneligibleReplica, format!("broker {r} is fenced")));
    }
    // Kept in replica order, so the first ISR member is the preferred one.
    let isr: Vec<i32> = p.replicas.iter().copied().filter(|r| wanted.contains(r)).collect();
    let mut records = Vec::new();
    push_change(&mut records, topic_id, index, p, PartitionRecord { isr, ..p.clone() });
    Ok(records.pop())
}

/// Whether the topic lets a replica outside the ISR lead (Kafka's
/// `unclean.leader.election.enable`, off by default).
fn unclean(topic: &super::image::TopicImage) -> bool {
    topic.configs.get(crate::broker::topics::UNCLEAN_LEADER_ELECTION).is_some_and(|v| v == "true")
}

/// Adds a PartitionChange for `before -> next`, bumping the partition
/// epoch and, when the leader changed, the leader epoch.
fn push_change(
    records: &mut Vec<MetadataRecord>,
    topic_id: &str,
    index: usize,
    before: &PartitionRecord,
    mut next: PartitionRecord,
) {
    if next == *before {
        return;
    }
    next.partition_epoch = before.partition_epoch + 1;
    if next.leader != before.leader && !crate::canary::Canary::ReplicationEpochNotBumped.on() {
        next.leader_epoch = before.leader_epoch + 1;
    }
    records.push(MetadataRecord::PartitionChange {
        topic_id: topic_id.to_string(),
        partition: index as i32,
        state: next,
    });
}

#[cfg(test)]
mod tests;
