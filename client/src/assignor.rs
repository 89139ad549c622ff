//! The "consumer" protocol type's embedded formats, and the range assignor.
//!
//! Members of a group with protocol type `consumer` put a
//! ConsumerProtocolSubscription in their JoinGroup metadata, and the leader
//! hands each member a ConsumerProtocolAssignment through SyncGroup. Both
//! are a version (i16) followed by the message at that version, exactly as
//! Kafka's Java client (`ConsumerProtocol`) and librdkafka write them, so
//! this client can share a group with theirs. A reader meeting a newer
//! version decodes it at the newest it knows: later versions only append
//! fields.
//!
//! The range assignor is Kafka's `RangeAssignor` ("range"): for each topic,
//! its subscribers in a fixed order (static instance id, then member id)
//! each get a contiguous run of partitions, the first `partitions %
//! members` of them one more than the rest.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The protocol type of consumer groups.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The assignor's name, as Java's `RangeAssignor` and librdkafka call it.
pub const RANGE_ASSIGNOR: &str = "range";
/// The versions written: the newest of both messages, as Kafka 3.x writes.
const SUBSCRIPTION_VERSION: i16 = 3;
const ASSIGNMENT_VERSION: i16 = 3;
const EMBEDDED_VERSION_MAX: i16 = 3;

/// A member's subscription: the topics it wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub topics: Vec<String>,
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

pub fn encode_subscription(subscription: &Subscription) -> Result<Bytes, String> {
    let topics = subscription.topics.iter().map(|t| StrBytes::from_string(t.clone())).collect();
    let message = ConsumerProtocolSubscription::default().with_topics(topics);
    version_prefixed(SUBSCRIPTION_VERSION, &message)
}

pub fn decode_subscription(bytes: &Bytes) -> Result<Subscription, String> {
    let mut buf = bytes.clone();
    let version = read_version(&mut buf, "subscription")?;
    let message = ConsumerProtocolSubscription::decode(&mut buf, version)
        .map_err(|e| format!("bad subscription v{version}: {e}"))?;
    Ok(Subscription { topics: message.topics.iter().map(|t| t.as_str().to_owned()).collect() })
}

pub fn encode_assignment(assignment: &Assignment) -> Result<Bytes, String> {
    let topics = assignment
        .iter()
        .map(|(topic, partitions)| {
            AssignedTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(partitions.clone())
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
        let partitions = assignment.entry(topic.topic.0.as_str().to_owned()).or_default();
        partitions.extend(topic.partitions);
        partitions.sort_unstable();
        partitions.dedup();
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

/// Kafka's RangeAssignor. `partition_counts` has each subscribed topic's
/// partition count (topics missing from it, unknown to the cluster, are
/// left unassigned). Every member gets an entry, possibly empty.
pub fn range_assign(
    members: &[MemberSubscription],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        members.iter().map(|m| (m.member_id.clone(), Assignment::new())).collect();
    // Java's MemberInfo order: members with an instance id first, by it;
    // then the rest by member id.
    let mut ordered: Vec<&MemberSubscription> = members.iter().collect();
    ordered.sort_by(|a, b| match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    for (topic, &count) in partition_counts {
        let subscribers: Vec<&&MemberSubscription> =
            ordered.iter().filter(|m| m.subscription.topics.iter().any(|t| t == topic)).collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (per_member, extra) = (count / n, count % n);
        for (i, member) in subscribers.iter().enumerate() {
            let i = i as i32;
            let start = per_member * i + i.min(extra);
            let length = per_member + i32::from(i < extra);
            if length == 0 {
                continue;
            }
            let assignment = result.entry(member.member_id.clone()).or_default();
            assignment.insert(topic.clone(), (start..start + length).collect());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, instance: Option<&str>, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            group_instance_id: instance.map(str::to_owned),
            subscription: Subscription { topics: topics.iter().map(|t| (*t).to_owned()).collect() },
        }
    }

    fn counts(topics: &[(&str, i32)]) -> BTreeMap<String, i32> {
        topics.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn parts(assignment: &Assignment, topic: &str) -> Vec<i32> {
        assignment.get(topic).cloned().unwrap_or_default()
    }

    /// Kafka's RangeAssignorTest: 3 partitions over 2 members gives the
    /// first member two; per topic, independently.
    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        let members = [member("c1", None, &["t1", "t2"]), member("c0", None, &["t1", "t2"])];
        let result = range_assign(&members, &counts(&[("t1", 3), ("t2", 3)]));
        assert_eq!(parts(&result["c0"], "t1"), [0, 1]);
        assert_eq!(parts(&result["c1"], "t1"), [2]);
        assert_eq!(parts(&result["c0"], "t2"), [0, 1]);
        assert_eq!(parts(&result["c1"], "t2"), [2]);
    }

    #[test]
    fn range_covers_every_partition_exactly_once() {
        for partitions in 0..13 {
            for member_count in 1..6 {
                let members: Vec<_> =
                    (0..member_count).map(|i| member(&format!("m{i}"), None, &["t"])).collect();
                let result = range_assign(&members, &counts(&[("t", partitions)]));
                assert_eq!(result.len(), member_count);
                let mut all: Vec<i32> = result.values().flat_map(|a| parts(a, "t")).collect();
                all.sort_unstable();
                assert_eq!(all, (0..partitions).collect::<Vec<_>>(), "{partitions} over {member_count}");
                let sizes: Vec<usize> = result.values().map(|a| parts(a, "t").len()).collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{sizes:?}");
            }
        }
    }

    #[test]
    fn range_only_assigns_subscribed_known_topics_and_orders_static_members_first() {
        let members = [
            member("a", None, &["t"]),
            member("z", Some("instance-1"), &["t", "other"]),
            member("b", None, &["unknown"]),
        ];
        let result = range_assign(&members, &counts(&[("t", 2), ("other", 1)]));
        assert_eq!(parts(&result["z"], "t"), [0], "static members sort first");
        assert_eq!(parts(&result["a"], "t"), [1]);
        assert_eq!(parts(&result["z"], "other"), [0]);
        assert!(result["b"].is_empty(), "a member with no known topic gets an empty assignment");
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let subscription = Subscription { topics: vec!["a".into(), "b".into()] };
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

    /// A newer version than this client knows decodes at the newest it
    /// knows, ignoring the fields appended after.
    #[test]
    fn newer_versions_decode_as_the_newest_known() {
        let subscription = Subscription { topics: vec!["x".into()] };
        let mut bytes = BytesMut::from(&encode_subscription(&subscription).expect("encodes")[..]);
        bytes[..2].copy_from_slice(&7i16.to_be_bytes());
        bytes.put_i32(12345); // a field from the future
        assert_eq!(decode_subscription(&bytes.freeze()).expect("decodes"), subscription);
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0xff, 0xff, 0, 0])).is_err());
        assert!(decode_subscription(&Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }
}
