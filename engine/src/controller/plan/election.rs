//! Leader elections: the controller's own (preferred leaders back after a
//! broker returns, unclean election where a topic allows it) and those an
//! operator asks for (Kafka's ElectLeaders). Both decide each partition
//! with the same two functions, so a requested election never elects a
//! leader the automatic one would not, and the other way round.

use super::{push_change, unclean, MetadataImage, MetadataRecord, PartitionRecord};
use crate::error::ErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kafka's election types, by their numbers on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// The first replica leads again, if it is live and in the ISR.
    Preferred,
    /// A leaderless partition gets a leader: an ISR member if one is live,
    /// else any live replica, with what it has (records may be lost).
    Unclean,
}

impl ElectionType {
    pub fn from_wire(value: i8) -> Option<ElectionType> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// One partition's answer to an ElectLeaders request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionElection {
    pub topic: String,
    pub partition: i32,
    /// Kafka's error code: 0 when a new leader was elected.
    pub error_code: i16,
    pub message: Option<String>,
}

impl PartitionElection {
    pub fn new(topic: &str, partition: i32, code: ErrorCode, message: Option<String>) -> PartitionElection {
        PartitionElection { topic: topic.to_string(), partition, error_code: code.code(), message }
    }
}

/// Partitions asked for by topic name; `None` asks for every partition.
pub type Wanted = Option<Vec<(String, Vec<i32>)>>;

/// The partition led by its first replica, when that replica is live and
/// in the ISR but does not lead. Only ISR members qualify, so no
/// acknowledged record is at stake.
pub fn preferred_election(image: &MetadataImage, p: &PartitionRecord) -> Result<PartitionRecord, ErrorCode> {
    let Some(&preferred) = p.replicas.first() else { return Err(ErrorCode::PreferredLeaderNotAvailable) };
    if p.leader == preferred {
        return Err(ErrorCode::ElectionNotNeeded);
    }
    if !p.isr.contains(&preferred) || !image.is_live(preferred) {
        return Err(ErrorCode::PreferredLeaderNotAvailable);
    }
    Ok(PartitionRecord { leader: preferred, ..p.clone() })
}

/// A leaderless partition led again: by the first live ISR member (Kafka
/// tries a clean election first), else by the first live replica, which
/// becomes the whole ISR.
pub fn unclean_election(image: &MetadataImage, p: &PartitionRecord) -> Result<PartitionRecord, ErrorCode> {
    if p.leader >= 0 {
        return Err(ErrorCode::ElectionNotNeeded);
    }
    if let Some(r) = p.isr.iter().copied().find(|r| image.is_live(*r)) {
        return Ok(PartitionRecord { leader: r, ..p.clone() });
    }
    let r = p.replicas.iter().copied().find(|r| image.is_live(*r));
    let r = r.ok_or(ErrorCode::EligibleLeadersNotAvailable)?;
    Ok(PartitionRecord { leader: r, isr: vec![r], ..p.clone() })
}

fn elect(
    election: ElectionType,
    image: &MetadataImage,
    p: &PartitionRecord,
) -> Result<PartitionRecord, ErrorCode> {
    match election {
        ElectionType::Preferred => preferred_election(image, p),
        ElectionType::Unclean => unclean_election(image, p),
    }
}

/// An election that left the ISR is worth an operator's attention: the
/// records only the old ISR had are gone.
fn note_unclean(topic_id: &str, index: usize, before: &PartitionRecord, next: &PartitionRecord) {
    if !before.isr.contains(&next.leader) {
        tracing::warn!(topic = %topic_id, partition = index, leader = next.leader, "unclean leader election: no in-sync replica is live");
    }
}

/// Partitions without a leader, of topics that allow unclean election, get
/// one (`unclean_election`). `evict` and `unfence` do the same as brokers
/// come and go; this catches the partitions that were offline already when
/// the topic's `unclean.leader.election.enable` was turned on (Kafka's
/// controller elects them then too).
pub fn elect_unclean(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values().filter(|t| unclean(t)) {
        for (index, p) in topic.partitions.iter().enumerate() {
            if let Ok(next) = unclean_election(image, p) {
                note_unclean(&topic.topic_id, index, p, &next);
                push_change(&mut records, &topic.topic_id, index, p, next);
            }
        }
    }
    records
}

/// Preferred-leader election (Kafka's auto.leader.rebalance): every
/// partition whose first replica may lead again gets it back as leader (a
/// new leader epoch), so leadership spreads over the brokers as placement
/// meant it to once failed ones have returned.
pub fn prefer_leaders(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (index, p) in topic.partitions.iter().enumerate() {
            if let Ok(next) = preferred_election(image, p) {
                push_change(&mut records, &topic.topic_id, index, p, next);
            }
        }
    }
    records
}

/// An operator's election (Kafka's ElectLeaders): the changes to propose,
/// and each partition's outcome in the order asked. Unclean election is
/// done whatever the topic's `unclean.leader.election.enable`: the request
/// is the operator's choice to lose records rather than stay offline. For
/// every partition (`wanted` is `None`), those that need no election are
/// left out of the answer, as Kafka leaves them out.
pub fn elect_leaders(
    image: &MetadataImage,
    election: ElectionType,
    wanted: &Wanted,
) -> (Vec<MetadataRecord>, Vec<PartitionElection>) {
    let mut records = Vec::new();
    // A partition named twice is elected once: two changes decided on the
    // same partition epoch would overtake each other.
    let mut decided: BTreeMap<(String, i32), PartitionElection> = BTreeMap::new();
    let mut decide = |topic: &str, partition: i32| {
        let key = (topic.to_string(), partition);
        let answer =
            decided.entry(key).or_insert_with(|| elect_one(image, election, topic, partition, &mut records));
        answer.clone()
    };
    let mut answers = Vec::new();
    match wanted {
        Some(topics) => {
            for (topic, partitions) in topics {
                for &partition in partitions {
                    answers.push(decide(topic, partition));
                }
            }
        }
        None => {
            for (name, topic) in &image.topics {
                for partition in 0..topic.partitions.len() as i32 {
                    let answer = decide(name, partition);
                    if answer.error_code != ErrorCode::ElectionNotNeeded.code() {
                        answers.push(answer);
                    }
                }
            }
        }
    }
    (records, answers)
}

fn elect_one(
    image: &MetadataImage,
    election: ElectionType,
    name: &str,
    partition: i32,
    records: &mut Vec<MetadataRecord>,
) -> PartitionElection {
    let Some(topic) = image.topics.get(name) else {
        let message = format!("no topic {name}");
        return PartitionElection::new(name, partition, ErrorCode::UnknownTopicOrPartition, Some(message));
    };
    let Some((index, p)) = usize::try_from(partition).ok().and_then(|i| Some((i, topic.partitions.get(i)?)))
    else {
        let message = format!("no partition {partition} of topic {name}");
        return PartitionElection::new(name, partition, ErrorCode::UnknownTopicOrPartition, Some(message));
    };
    match elect(election, image, p) {
        Ok(next) => {
            tracing::info!(
                topic = name,
                partition,
                leader = next.leader,
                ?election,
                "electing a leader by request"
            );
            note_unclean(&topic.topic_id, index, p, &next);
            push_change(records, &topic.topic_id, index, p, next);
            PartitionElection::new(name, partition, ErrorCode::None, None)
        }
        Err(code) => PartitionElection::new(name, partition, code, Some(why(code, p))),
    }
}

/// What an operator reads when no leader was elected.
fn why(code: ErrorCode, p: &PartitionRecord) -> String {
    let (replicas, isr) = (&p.replicas, &p.isr);
    match code {
        ErrorCode::ElectionNotNeeded => format!("broker {} leads it already", p.leader),
        ErrorCode::PreferredLeaderNotAvailable => {
            format!("its preferred replica (the first of {replicas:?}) is not live or not in the ISR {isr:?}")
        }
        ErrorCode::EligibleLeadersNotAvailable => format!("none of its replicas {replicas:?} is live"),
        _ => code.to_string(),
    }
}
