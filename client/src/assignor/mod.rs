//! The "consumer" protocol type's embedded formats, and the assignors a
//! group leader runs: `range` (eager) and `cooperative-sticky`.
//!
//! Members of a group with protocol type `consumer` put a
//! ConsumerProtocolSubscription in their JoinGroup metadata, and the leader
//! hands each member a ConsumerProtocolAssignment through SyncGroup. Both
//! are a version (i16) followed by the message at that version, exactly as
//! Kafka's Java client (`ConsumerProtocol`) and librdkafka write them, so
//! this client can share a group with theirs. A reader meeting a newer
//! version decodes it at the newest it knows: later versions only append
//! fields.

mod cooperative_sticky;
mod range;

pub use cooperative_sticky::cooperative_sticky_assign;
pub use range::range_assign;

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The protocol type of consumer groups.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The assignors' names, as Java's consumer and librdkafka call them.
pub const RANGE_ASSIGNOR: &str = "range";
pub const COOPERATIVE_STICKY_ASSIGNOR: &str = "cooperative-sticky";
/// The versions written: the newest of both messages, as Kafka 3.x writes.
const SUBSCRIPTION_VERSION: i16 = 3;
const ASSIGNMENT_VERSION: i16 = 3;
const EMBEDDED_VERSION_MAX: i16 = 3;

/// A member's subscription: the topics it wants and, for the cooperative
/// protocol, the partitions it still owns and the generation it got them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Empty from an eager member, which gives up everything before joining.
    pub owned: Assignment,
    /// -1 when the member never synced a generation.
    pub generation: i32,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription { topics: Vec::new(), owned: Assignment::new(), generation: -1 }
    }
}

impl Subscription {
    pub fn to(topics: Vec<String>) -> Subscription {
        Subscription { topics, ..Subscription::default() }
    }
}

/// The partitions a member was given, by topic, each list sorted.
pub type Assignment = BTreeMap<String, Vec<i32>>;

fn version_prefixed(version: i16, message: &impl Encodable) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message.encode(&mut buf, version).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// Reads the version prefix; the version to decode the rest at.
fn read_version(buf: &mut Bytes, what: &str) -> Result<i16, String> {
    if buf.remaining() < 2 {
        return Err(format!("{what} of {} bytes has no version", buf.remaining()));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("{what} has negative version {version}"));
    }
    Ok(version.min(EMBEDDED_VERSION_MAX))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// Adds `partitions` of `topic`, keeping each list sorted and unique.
fn merge_into(assignment: &mut Assignment, topic: &str, partitions: impl IntoIterator<Item = i32>) {
    let list = assignment.entry(topic.to_owned()).or_default();
    list.extend(partitions);
    list.sort_unstable();
    list.dedup();
}

pub fn encode_subscription(subscription: &Subscription) -> Result<Bytes, String> {
    let topics = subscription.topics.iter().map(|t| StrBytes::from_string(t.clone())).collect();
    let owned = subscription
        .owned
        .iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .map(|(topic, partitions)| {
            OwnedTopic::default().with_topic(topic_name(topic)).with_partitions(partitions.clone())
        })
        .collect();
    let message = ConsumerProtocolSubscription::default()
        .with_topics(topics)
        .with_owned_partitions(owned)
        .with_generation_id(subscription.generation);
    version_prefixed(SUBSCRIPTION_VERSION, &message)
}

pub fn decode_subscription(bytes: &Bytes) -> Result<Subscription, String> {
    let mut buf = bytes.clone();
    let version = read_version(&mut buf, "subscription")?;
    let message = ConsumerProtocolSubscription::decode(&mut buf, version)
        .map_err(|e| format!("bad subscription v{version}: {e}"))?;
    let mut owned = Assignment::new();
    for topic in message.owned_partitions {
        merge_into(&mut owned, topic.topic.0.as_str(), topic.partitions);
    }
    Ok(Subscription {
        topics: message.topics.iter().map(|t| t.as_str().to_owned()).collect(),
        owned,
        generation: message.generation_id,
    })
}

pub fn encode_assignment(assignment: &Assignment) -> Result<Bytes, String> {
    let topics = assignment
        .iter()
        .map(|(topic, partitions)| {
            AssignedTopic::default().with_topic(topic_name(topic)).with_partitions(partitions.clone())
        })
        .collect();
    let message = ConsumerProtocolAssignment::default().with_assigned_partitions(topics);
    version_prefixed(ASSIGNMENT_VERSION, &message)
}

/// Decodes an assignment; empty bytes (what a coordinator gives a member
/// the leader left out) are an empty assignment.
pub fn decode_assignment(bytes: &Bytes) -> Result<Assignment, String> {
    if bytes.is_empty() {
        return Ok(Assignment::new());
    }
    let mut buf = bytes.clone();
    let version = read_version(&mut buf, "assignment")?;
    let message = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| format!("bad assignment v{version}: {e}"))?;
    let mut assignment = Assignment::new();
    for topic in message.assigned_partitions {
        merge_into(&mut assignment, topic.topic.0.as_str(), topic.partitions);
    }
    Ok(assignment)
}

/// A member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub subscription: Subscription,
}

/// Java's MemberInfo order, which both assignors walk members in: members
/// with an instance id first, by it; then the rest by member id.
fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> std::cmp::Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn member(id: &str, instance: Option<&str>, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            group_instance_id: instance.map(str::to_owned),
            subscription: Subscription::to(topics.iter().map(|t| (*t).to_owned()).collect()),
        }
    }

    pub(crate) fn counts(topics: &[(&str, i32)]) -> BTreeMap<String, i32> {
        topics.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    pub(crate) fn parts(assignment: &Assignment, topic: &str) -> Vec<i32> {
        assignment.get(topic).cloned().unwrap_or_default()
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let subscription = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned: [("a".to_owned(), vec![1, 3])].into(),
            generation: 7,
        };
        let bytes = encode_subscription(&subscription).expect("encodes");
        assert_eq!(&bytes[..2], &[0, 3], "version prefix");
        assert_eq!(decode_subscription(&bytes).expect("decodes"), subscription);

        let assignment: Assignment = [("a".to_owned(), vec![0, 2]), ("b".to_owned(), vec![1])].into();
        let bytes = encode_assignment(&assignment).expect("encodes");
        assert_eq!(decode_assignment(&bytes).expect("decodes"), assignment);
        assert_eq!(decode_assignment(&Bytes::new()).expect("empty"), Assignment::new());
    }

    /// What Java's ConsumerProtocol writes at version 0 for an assignment
    /// of t-[0, 1]: version, array of (topic, partitions), null user data.
    #[test]
    fn decodes_a_version_0_assignment_written_by_hand() {
        let mut b = BytesMut::new();
        b.put_i16(0); // version
        b.put_i32(1); // one topic
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(2);
        b.put_i32(1);
        b.put_i32(0); // partitions, unsorted
        b.put_i32(-1); // null user data
        let assignment = decode_assignment(&b.freeze()).expect("decodes");
        assert_eq!(assignment, [("t".to_owned(), vec![0, 1])].into());
    }

    /// A version 0 subscription (an old client's) has no owned partitions
    /// and no generation.
    #[test]
    fn decodes_a_version_0_subscription_as_owning_nothing() {
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(-1); // null user data
        let subscription = decode_subscription(&b.freeze()).expect("decodes");
        assert_eq!(subscription, Subscription::to(vec!["t".into()]));
    }

    /// A newer version than this client knows decodes at the newest it
    /// knows, ignoring the fields appended after.
    #[test]
    fn newer_versions_decode_as_the_newest_known() {
        let subscription = Subscription::to(vec!["x".into()]);
        let mut bytes = BytesMut::from(&encode_subscription(&subscription).expect("encodes")[..]);
        bytes[..2].copy_from_slice(&7i16.to_be_bytes());
        bytes.put_i32(12345); // a field from the future
        assert_eq!(decode_subscription(&bytes.freeze()).expect("decodes"), subscription);
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0xff, 0xff, 0, 0])).is_err());
        assert!(decode_subscription(&Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }
}
