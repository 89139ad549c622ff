//! Kafka's `CooperativeStickyAssignor` ("cooperative-sticky").
//!
//! Members of a cooperative group keep consuming what they own while the
//! group rebalances, and say in their subscription what that is. So a
//! partition must never be handed to one member while another still owns
//! it: the leader first computes a balanced assignment that moves as few
//! partitions as it can (sticky), then withholds every partition that
//! would change hands. Its owner finds it missing from its new assignment,
//! revokes it (commits, stops fetching) and rejoins; in that follow-up
//! rebalance nobody claims it and it goes to its new member. Two rounds
//! reach the balanced assignment, with never two owners at once.
//!
//! Claims are trusted as Kafka trusts them: a partition claimed by several
//! members stays with the one that claims it from the newest generation
//! (the others revoke it); two claims from one generation give neither a
//! say, and balance picks among the claimers. A partition claimed by some
//! member never goes to a member that does not claim it.

use std::collections::BTreeMap;

use super::{member_order, Assignment, MemberSubscription};

type Partition = (String, i32);

/// `partition_counts` as for `range_assign`. Every member gets an entry,
/// possibly empty.
pub fn cooperative_sticky_assign(
    members: &[MemberSubscription],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut ordered: Vec<&MemberSubscription> = members.iter().collect();
    ordered.sort_by(|a, b| member_order(a, b));
    let subscribes = |m: usize, topic: &str| ordered[m].subscription.topics.iter().any(|t| t == topic);

    // Every partition some member can take.
    let partitions: Vec<Partition> = partition_counts
        .iter()
        .filter(|(topic, _)| (0..ordered.len()).any(|m| subscribes(m, topic)))
        .flat_map(|(topic, &count)| (0..count.max(0)).map(move |p| (topic.clone(), p)))
        .collect();

    // Who claims what, and from which generation.
    let mut claims: BTreeMap<&Partition, Vec<(usize, i32)>> = BTreeMap::new();
    for partition in &partitions {
        for (m, member) in ordered.iter().enumerate() {
            let owned = member.subscription.owned.get(&partition.0);
            if owned.is_some_and(|list| list.contains(&partition.1)) {
                claims.entry(partition).or_default().push((m, member.subscription.generation));
            }
        }
    }

    // Sticky: a partition stays with its one newest claimer, if that member
    // still subscribes to its topic.
    let mut held: Vec<Vec<Partition>> = vec![Vec::new(); ordered.len()];
    let mut unowned = Vec::new();
    for partition in &partitions {
        match keeper(claims.get(partition).map_or(&[][..], Vec::as_slice)) {
            Some(m) if subscribes(m, &partition.0) => held[m].push(partition.clone()),
            _ => unowned.push(partition.clone()),
        }
    }

    // The rest to the least loaded member that can take each.
    for partition in unowned {
        let least =
            (0..ordered.len()).filter(|&m| subscribes(m, &partition.0)).min_by_key(|&m| held[m].len());
        if let Some(m) = least {
            held[m].push(partition);
        }
    }

    // Balance: move one partition at a time from a member with at least two
    // more than another that can take it. Each move lowers the sum of the
    // squared loads, so this ends.
    while let Some((from, to, index)) = best_move(&held, &subscribes) {
        let partition = held[from].remove(index);
        held[to].push(partition);
    }

    // Cooperative: withhold what would change hands.
    let mut result: BTreeMap<String, Assignment> =
        members.iter().map(|m| (m.member_id.clone(), Assignment::new())).collect();
    for (m, partitions) in held.into_iter().enumerate() {
        let assignment = result.entry(ordered[m].member_id.clone()).or_default();
        for (topic, p) in partitions {
            // A member that claims the partition already owns it: keeping it
            // hands nothing over (another claimer revokes it on seeing its
            // own assignment without it).
            let claimers = claims.get(&(topic.clone(), p)).map_or(&[][..], Vec::as_slice);
            let handover = !claimers.is_empty() && !claimers.iter().any(|(claimer, _)| *claimer == m);
            if !handover {
                super::merge_into(assignment, &topic, [p]);
            }
        }
    }
    result
}

/// The member that keeps a partition: its only claimer from the newest
/// generation claiming it.
fn keeper(claims: &[(usize, i32)]) -> Option<usize> {
    let newest = claims.iter().map(|(_, g)| *g).max()?;
    let mut at_newest = claims.iter().filter(|(_, g)| *g == newest);
    match (at_newest.next(), at_newest.next()) {
        (Some((m, _)), None) => Some(*m),
        _ => None,
    }
}

/// `(from, to, index in from)`: the most loaded member giving its most
/// recently added movable partition to the least loaded that can take it.
fn best_move(
    held: &[Vec<Partition>],
    subscribes: &impl Fn(usize, &str) -> bool,
) -> Option<(usize, usize, usize)> {
    let mut by_load: Vec<usize> = (0..held.len()).collect();
    by_load.sort_by_key(|&m| std::cmp::Reverse(held[m].len()));
    for &from in &by_load {
        for (index, partition) in held[from].iter().enumerate().rev() {
            let to = (0..held.len())
                .filter(|&m| m != from && subscribes(m, &partition.0))
                .filter(|&m| held[m].len() + 2 <= held[from].len())
                .min_by_key(|&m| held[m].len());
            if let Some(to) = to {
                return Some((from, to, index));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tests::{counts, member, parts};
    use super::super::Subscription;
    use super::*;

    fn owning(id: &str, topics: &[&str], owned: &[(&str, &[i32])], generation: i32) -> MemberSubscription {
        let mut m = member(id, None, topics);
        m.subscription = Subscription {
            owned: owned.iter().map(|(t, ps)| ((*t).to_owned(), ps.to_vec())).collect(),
            generation,
            ..m.subscription
        };
        m
    }

    fn loads(result: &BTreeMap<String, Assignment>) -> Vec<usize> {
        result.values().map(|a| a.values().map(Vec::len).sum()).collect()
    }

    #[test]
    fn a_new_group_gets_every_partition_once_and_balanced() {
        for partitions in 0..11 {
            for count in 1..5 {
                let members: Vec<_> = (0..count).map(|i| member(&format!("m{i}"), None, &["t"])).collect();
                let result = cooperative_sticky_assign(&members, &counts(&[("t", partitions)]));
                let mut all: Vec<i32> = result.values().flat_map(|a| parts(a, "t")).collect();
                all.sort_unstable();
                assert_eq!(all, (0..partitions).collect::<Vec<_>>(), "{partitions} over {count}");
                let loads = loads(&result);
                assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1, "{loads:?}");
            }
        }
    }

    #[test]
    fn balanced_owners_keep_what_they_own() {
        let members = [
            owning("a", &["t"], &[("t", &[0, 3, 4])], 5),
            owning("b", &["t"], &[("t", &[1, 2])], 5),
            owning("c", &["t"], &[("t", &[5])], 5),
        ];
        let result = cooperative_sticky_assign(&members, &counts(&[("t", 7)]));
        assert_eq!(parts(&result["a"], "t"), [0, 3, 4]);
        assert_eq!(parts(&result["b"], "t"), [1, 2]);
        assert_eq!(parts(&result["c"], "t"), [5, 6], "the unowned partition goes to the least loaded");
    }

    /// A member joins a group whose only member owns everything: the first
    /// round withholds what moves, the second (after the owner revoked it)
    /// hands it over.
    #[test]
    fn moving_partitions_are_withheld_until_revoked() {
        let members = [owning("a", &["t"], &[("t", &[0, 1, 2, 3])], 3), member("b", None, &["t"])];
        let first = cooperative_sticky_assign(&members, &counts(&[("t", 4)]));
        let kept = parts(&first["a"], "t");
        assert_eq!(kept.len(), 2);
        assert!(first["b"].is_empty(), "b must wait for a to revoke: {first:?}");

        let members = [owning("a", &["t"], &[("t", &kept)], 4), member("b", None, &["t"])];
        let second = cooperative_sticky_assign(&members, &counts(&[("t", 4)]));
        assert_eq!(parts(&second["a"], "t"), kept);
        let mut all = [parts(&second["a"], "t"), parts(&second["b"], "t")].concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3]);
    }

    #[test]
    fn the_newest_claim_wins_and_equal_claims_cancel() {
        let members = [
            owning("a", &["t"], &[("t", &[0, 1])], 6),
            owning("b", &["t"], &[("t", &[0])], 5),
            owning("c", &["t"], &[("t", &[1])], 6),
        ];
        let result = cooperative_sticky_assign(&members, &counts(&[("t", 3)]));
        assert_eq!(parts(&result["a"], "t"), [0], "a's newer claim on 0 beats b's");
        assert!(parts(&result["b"], "t").iter().all(|p| *p == 2), "b claims neither 0 nor 1: {result:?}");
        let holders = result.values().filter(|a| parts(a, "t").contains(&1)).count();
        assert!(holders <= 1, "{result:?}");
    }

    #[test]
    fn a_claim_on_a_topic_no_longer_subscribed_is_revoked_first() {
        let members = [owning("a", &["t"], &[("t", &[0]), ("u", &[0])], 2), member("b", None, &["t", "u"])];
        let result = cooperative_sticky_assign(&members, &counts(&[("t", 1), ("u", 1)]));
        assert_eq!(parts(&result["a"], "t"), [0]);
        assert!(parts(&result["b"], "u").is_empty(), "a still owns u-0");
        assert!(parts(&result["a"], "u").is_empty(), "a no longer subscribes to u");
    }

    /// Members come and go; after each rebalance every member revokes what
    /// it lost and keeps the rest. No partition ever has two owners, and
    /// the group settles balanced within two rounds of a change.
    #[test]
    fn rounds_never_hand_over_an_owned_partition_and_settle() {
        let topic_counts = counts(&[("t", 7)]);
        let mut owned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        let mut generation = 0;
        for present in [&["a"][..], &["a", "b"], &["a", "b", "c", "d"], &["b", "d"], &["b", "c", "d", "e"]] {
            owned.retain(|m, _| present.contains(&m.as_str()));
            for round in 0..3 {
                generation += 1;
                let members: Vec<_> = present
                    .iter()
                    .map(|m| {
                        let mine = owned.get(*m).cloned().unwrap_or_default();
                        owning(m, &["t"], &[("t", &mine)], generation - 1)
                    })
                    .collect();
                let result = cooperative_sticky_assign(&members, &topic_counts);
                for (m, assignment) in &result {
                    for p in parts(assignment, "t") {
                        let others = owned.iter().filter(|(o, ps)| *o != m && ps.contains(&p)).count();
                        assert_eq!(others, 0, "{m} given {p} owned by another, round {round} of {present:?}");
                    }
                    owned.insert(m.clone(), parts(assignment, "t"));
                }
                let l = loads(&result);
                let settled =
                    l.iter().sum::<usize>() == 7 && l.iter().max().unwrap() - l.iter().min().unwrap() <= 1;
                assert!(round < 1 || settled, "not settled after round {round} of {present:?}: {result:?}");
            }
        }
    }
}
