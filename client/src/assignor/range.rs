//! Kafka's `RangeAssignor` ("range"), an eager assignor: for each topic,
//! its subscribers in a fixed order (static instance id, then member id)
//! each get a contiguous run of partitions, the first `partitions %
//! members` of them one more than the rest.

use std::collections::BTreeMap;

use super::{member_order, Assignment, MemberSubscription};

/// `partition_counts` has each subscribed topic's partition count (topics
/// missing from it, unknown to the cluster, are left unassigned). Every
/// member gets an entry, possibly empty.
pub fn range_assign(
    members: &[MemberSubscription],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        members.iter().map(|m| (m.member_id.clone(), Assignment::new())).collect();
    let mut ordered: Vec<&MemberSubscription> = members.iter().collect();
    ordered.sort_by(|a, b| member_order(a, b));
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
    use super::super::tests::{counts, member, parts};
    use super::*;

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
}
