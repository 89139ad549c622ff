//! What the controller leader proposes: pure functions of the image, so a
//! decision can be tested without a quorum and replays exactly.

use super::image::MetadataImage;
use super::records::{IsrChange, MetadataRecord, PartitionRecord};
use crate::error::{BrokerError, ErrorCode};
use std::collections::BTreeMap;

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
    let records = (0..partitions as usize)
        .map(|p| {
            let replicas: Vec<i32> =
                (0..replication_factor as usize).map(|j| live[(start + p + j) % live.len()]).collect();
            PartitionRecord {
                leader: replicas[0],
                leader_epoch: 0,
                isr: vec![replicas[0]],
                replicas,
                partition_epoch: 0,
            }
        })
        .collect();
    Ok(MetadataRecord::CreateTopic { name: name.to_string(), topic_id, partitions: records, configs })
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

/// Preferred-leader election (Kafka's auto.leader.rebalance): every
/// partition whose first replica is live and in the ISR, but does not lead,
/// gets it back as leader (a new leader epoch), so leadership spreads over
/// the brokers as placement meant it to once failed ones have returned.
/// Only ISR members qualify, so no acknowledged record is at stake.
pub fn prefer_leaders(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (index, p) in topic.partitions.iter().enumerate() {
            let Some(&preferred) = p.replicas.first() else { continue };
            if p.leader != preferred && p.isr.contains(&preferred) && image.is_live(preferred) {
                let next = PartitionRecord { leader: preferred, ..p.clone() };
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
mod tests {
    use super::*;

    fn cluster(live: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for &id in live {
            image.apply(&MetadataRecord::RegisterBroker {
                node_id: id,
                incarnation: 1,
                endpoints: Vec::new(),
            });
            image.apply(&MetadataRecord::UnfenceBroker { node_id: id, incarnation: 1 });
        }
        image
    }

    /// Every replica caught up and in the ISR, as replication would report.
    fn all_in_sync(image: &mut MetadataImage) {
        let mut records = Vec::new();
        for topic in image.topics.values() {
            for (index, p) in topic.partitions.iter().enumerate() {
                let next = PartitionRecord { isr: p.replicas.clone(), ..p.clone() };
                push_change(&mut records, &topic.topic_id, index, p, next);
            }
        }
        apply_all(image, &records);
    }

    fn apply_all(image: &mut MetadataImage, records: &[MetadataRecord]) {
        for r in records {
            image.apply(r);
        }
        image.check().unwrap();
    }

    #[test]
    fn replicas_spread_evenly_and_the_factor_is_bounded_by_live_brokers() {
        let mut image = cluster(&[1, 2, 3]);
        let record = create_topic(&image, "t", "id".into(), 6, 2, BTreeMap::new()).unwrap();
        apply_all(&mut image, std::slice::from_ref(&record));
        let t = &image.topics["t"];
        let mut leaders = BTreeMap::new();
        let mut hosted = BTreeMap::new();
        for p in &t.partitions {
            assert_eq!(p.replicas.len(), 2);
            assert_ne!(p.replicas[0], p.replicas[1]);
            assert_eq!(p.isr, [p.leader], "followers join the ISR once they caught up");
            *leaders.entry(p.leader).or_insert(0) += 1;
            for r in &p.replicas {
                *hosted.entry(*r).or_insert(0) += 1;
            }
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
        assert_eq!(hosted.values().copied().collect::<Vec<_>>(), [4, 4, 4]);
        let err = create_topic(&image, "u", "id2".into(), 1, 4, BTreeMap::new()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidReplicationFactor);
        let err = create_topic(&image, "t", "id3".into(), 1, 1, BTreeMap::new()).unwrap_err();
        assert_eq!(err.code, ErrorCode::TopicAlreadyExists);
    }

    #[test]
    fn only_the_leader_at_its_epochs_alters_the_isr_and_a_stale_change_is_overtaken() {
        let mut image = cluster(&[1, 2, 3]);
        let record = create_topic(&image, "t", "id".into(), 1, 3, BTreeMap::new()).unwrap();
        apply_all(&mut image, &[record]);
        let p = image.topics["t"].partitions[0].clone();
        let (leader, follower) = (p.leader, p.replicas[1]);
        let alter = |image: &MetadataImage, node, le, pe, isr: Vec<i32>| {
            let change =
                IsrChange { topic_id: "id".into(), partition: 0, leader_epoch: le, partition_epoch: pe, isr };
            alter_isr(image, node, &change).map_err(|e| e.code)
        };
        assert_eq!(
            alter(&image, follower, 0, 0, vec![leader, follower]),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(alter(&image, leader, 1, 0, vec![leader, follower]), Err(ErrorCode::FencedLeaderEpoch));
        assert_eq!(alter(&image, leader, 0, 1, vec![leader, follower]), Err(ErrorCode::InvalidUpdateVersion));
        assert_eq!(alter(&image, leader, 0, 0, vec![follower]), Err(ErrorCode::InvalidRequest));
        assert_eq!(alter(&image, leader, 0, 0, vec![leader, 9]), Err(ErrorCode::InvalidRequest));
        assert_eq!(alter(&image, leader, 0, 0, vec![leader]), Ok(None), "no change, no record");
        // Granted: the ISR grows in replica order, the partition epoch moves,
        // the leader epoch does not.
        let third = p.replicas[2];
        let grow = alter(&image, leader, 0, 0, vec![follower, leader, follower]).unwrap().unwrap();
        let racing = alter(&image, leader, 0, 0, vec![leader, third]).unwrap().unwrap();
        apply_all(&mut image, &[grow]);
        let grown = image.topics["t"].partitions[0].clone();
        assert_eq!(grown.isr, [leader, follower]);
        assert_eq!((grown.leader_epoch, grown.partition_epoch), (0, 1));
        // A change decided on the same state as the applied one is overtaken.
        assert!(!image.apply(&racing), "a change decided on an older partition epoch");
        assert_eq!(image.topics["t"].partitions[0], grown);
        // A fenced broker leaves the ISR and is not let back in.
        let fencing = fence(&image, follower, 1);
        apply_all(&mut image, &fencing);
        let fenced = image.topics["t"].partitions[0].clone();
        assert_eq!((fenced.isr.clone(), fenced.partition_epoch), (vec![leader], 2));
        assert_eq!(alter(&image, leader, 0, 2, vec![leader, follower]), Err(ErrorCode::IneligibleReplica));
        let grow = alter(&image, leader, 0, 2, vec![leader, third]).unwrap().unwrap();
        apply_all(&mut image, &[grow]);
        assert_eq!(image.topics["t"].partitions[0].isr, [leader, third]);
    }

    #[test]
    fn fencing_moves_leadership_within_the_isr_and_the_last_member_keeps_its_place() {
        let mut image = cluster(&[1, 2, 3]);
        let record = create_topic(&image, "t", "id".into(), 3, 2, BTreeMap::new()).unwrap();
        apply_all(&mut image, &[record]);
        all_in_sync(&mut image);
        let before = image.topics["t"].partitions.clone();
        let records = fence(&image, 1, 1);
        apply_all(&mut image, &records);
        for (p, old) in image.topics["t"].partitions.iter().zip(&before) {
            assert!(!p.isr.contains(&1) && p.leader != 1, "{p:?}");
            if old.leader == 1 {
                assert_eq!(p.leader_epoch, old.leader_epoch + 1);
            }
            if old.isr.contains(&1) {
                assert_eq!(p.partition_epoch, old.partition_epoch + 1);
            } else {
                assert_eq!(p, old);
            }
        }
        // Fence the rest: partitions whose last ISR member goes have no leader.
        let records = fence(&image, 2, 1);
        apply_all(&mut image, &records);
        let records = fence(&image, 3, 1);
        apply_all(&mut image, &records);
        assert!(image.topics["t"].partitions.iter().all(|p| p.leader == -1 && p.isr.len() == 1));
        // The last ISR member back leads again, with a new epoch.
        let orphan = image.topics["t"].partitions[0].clone();
        let back = orphan.isr[0];
        let records = unfence(&image, back, 1);
        apply_all(&mut image, &records);
        let p = &image.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (back, orphan.leader_epoch + 1));
    }

    #[test]
    fn unclean_election_only_where_the_topic_allows_it() {
        for allowed in [false, true] {
            let mut image = cluster(&[1, 2]);
            let configs: BTreeMap<String, String> =
                [("unclean.leader.election.enable".to_string(), allowed.to_string())].into();
            let record = create_topic(&image, "t", "id".into(), 1, 2, configs).unwrap();
            apply_all(&mut image, &[record]);
            let p = image.topics["t"].partitions[0].clone();
            assert_eq!(p.isr, [p.leader], "the follower never caught up");
            let follower = p.replicas.iter().copied().find(|r| *r != p.leader).unwrap();
            let fencing = fence(&image, p.leader, 1);
            apply_all(&mut image, &fencing);
            let after = &image.topics["t"].partitions[0];
            if allowed {
                assert_eq!((after.leader, after.isr.clone()), (follower, vec![follower]), "{after:?}");
                assert_eq!(after.leader_epoch, p.leader_epoch + 1);
            } else {
                assert_eq!((after.leader, after.isr.clone()), (-1, vec![p.leader]), "it waits for its ISR");
            }
        }
        // All fenced: the first replica back leads, in the ISR or not.
        let mut image = cluster(&[1, 2]);
        let configs: BTreeMap<String, String> =
            [("unclean.leader.election.enable".into(), "true".into())].into();
        let record = create_topic(&image, "t", "id".into(), 1, 2, configs).unwrap();
        apply_all(&mut image, &[record]);
        let p = image.topics["t"].partitions[0].clone();
        let follower = p.replicas.iter().copied().find(|r| *r != p.leader).unwrap();
        for id in [follower, p.leader] {
            let fencing = fence(&image, id, 1);
            apply_all(&mut image, &fencing);
        }
        assert_eq!(image.topics["t"].partitions[0].leader, -1);
        let unfencing = unfence(&image, follower, 1);
        apply_all(&mut image, &unfencing);
        let after = &image.topics["t"].partitions[0];
        assert_eq!((after.leader, after.isr.clone()), (follower, vec![follower]));
    }

    #[test]
    fn leadership_goes_back_to_the_preferred_replica_once_it_is_live_and_in_sync() {
        let mut image = cluster(&[1, 2, 3]);
        let record = create_topic(&image, "t", "id".into(), 3, 3, BTreeMap::new()).unwrap();
        apply_all(&mut image, &[record]);
        all_in_sync(&mut image);
        assert!(prefer_leaders(&image).is_empty(), "every partition led by its first replica");
        let led_by_1: Vec<usize> =
            (0..3).filter(|i| image.topics["t"].partitions[*i].replicas[0] == 1).collect();
        assert!(!led_by_1.is_empty());
        let fencing = fence(&image, 1, 1);
        apply_all(&mut image, &fencing);
        assert!(prefer_leaders(&image).is_empty(), "the preferred replica is fenced and out of the ISR");
        let unfencing = unfence(&image, 1, 1);
        apply_all(&mut image, &unfencing);
        assert!(prefer_leaders(&image).is_empty(), "live, but not back in the ISR yet");
        let before = image.topics["t"].partitions.clone();
        all_in_sync(&mut image);
        let moves = prefer_leaders(&image);
        assert_eq!(moves.len(), led_by_1.len());
        apply_all(&mut image, &moves);
        for (i, p) in image.topics["t"].partitions.iter().enumerate() {
            assert_eq!(p.leader, p.replicas[0], "{p:?}");
            if led_by_1.contains(&i) {
                assert_eq!(p.leader_epoch, before[i].leader_epoch + 1, "a new leader, a new epoch");
            }
        }
        assert!(prefer_leaders(&image).is_empty());
    }
}
