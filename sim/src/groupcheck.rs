//! The consumer-group invariants, as part of the `Checker`.
//!
//! The broker node reports what the coordinator answered (every JoinGroup,
//! SyncGroup and OffsetCommit outcome, in the order the engine produced
//! them, whether or not the answer survives the network), the members
//! report what they consumed, and the harness reports what a restarted
//! coordinator recovered:
//!
//! - G1: one owner per partition per generation: the SyncGroup answers of
//!   a generation give each partition to at most one member, and a member
//!   one assignment;
//! - G2: an acknowledged commit survives the broker's crash: after a
//!   restart each partition's committed offset is at least the last
//!   acknowledged one, unless a commit that may have been applied after it
//!   (one not answered before it started) lowered it;
//! - G3: every record below the high watermark is consumed by the group at
//!   least once by the end (the quiet phase drains);
//! - G4: a commit from a stale generation (or from a member no longer in
//!   the group) when it reaches the coordinator is never acknowledged;
//! - G5: generations never go backwards, across restarts included: a
//!   JoinGroup answer carries at least the highest generation already
//!   answered, or synced before a restart;
//! - G6: no partition is handed over while its owner still has it: the
//!   SyncGroup answers of a generation never give a member a partition
//!   that another member of that generation claimed (as owned) in the
//!   subscription the coordinator passed to the leader, unless it claimed
//!   it too. Cooperative members keep consuming what they claim until
//!   they learn their new assignment; eager ones claim nothing;
//! - G7: the assignor the coordinator chose is one the member offered.
//!
//! G1's and G5's cross-restart parts and G2 hold only when what the
//! coordinator wrote to `__consumer_offsets` had to be durable: flush=always
//! and no beyond-budget damage to the group's offsets partition.

use crate::checker::{Checker, Invariant, Tp};
use crate::values::RecordKey;
use bytes::Bytes;
use ringtail_client::assignor::decode_assignment;
use std::collections::{BTreeMap, BTreeSet};

/// One committed offset as the coordinator handled it.
#[derive(Clone, Debug)]
struct Commit {
    partition: i32,
    offset: i64,
    member: String,
    generation: i32,
    /// Event counter when the request reached the coordinator / was answered.
    start: u64,
    end: Option<u64>,
    acked: bool,
}

/// What the checker tracks of the run's group.
#[derive(Default)]
pub struct GroupBook {
    group: String,
    topic: String,
    offsets_tp: Option<Tp>,
    /// Counts broker starts: group state observed per lifetime.
    lifetime: u64,
    /// Orders commit starts and ends.
    clock: u64,
    max_joined: i32,
    /// Highest generation a successful SyncGroup answered, this lifetime
    /// and over the run.
    max_synced_lifetime: i32,
    max_synced: i32,
    /// `(lifetime or 0, generation)` -> partition -> owner.
    owners: BTreeMap<(u64, i32), BTreeMap<i32, String>>,
    /// `(lifetime or 0, generation)` -> member -> the partitions it claimed
    /// in the subscription the leader was given, from its latest answer.
    claims: BTreeMap<(u64, i32), BTreeMap<String, Vec<i32>>>,
    assignments: BTreeMap<(u64, i32, String), Vec<i32>>,
    commits: Vec<Commit>,
    consumed: BTreeMap<i32, BTreeSet<RecordKey>>,
    /// Acknowledged commits (for the hash and the summary).
    acked: u64,
    recoveries_checked: u64,
}

impl Checker {
    /// Declares the run's group, its topic and its offsets partition.
    pub fn group_planned(&mut self, group: &str, topic: &str, offsets_tp: Tp) {
        self.groups.group = group.to_string();
        self.groups.topic = topic.to_string();
        self.groups.offsets_tp = Some(offsets_tp);
    }

    /// Whether what the coordinator wrote had to be durable.
    fn group_strict(&self) -> bool {
        let tainted = self.groups.offsets_tp.as_ref().is_some_and(|(t, p)| self.tainted_tp(t, *p));
        self.flush_always() && !tainted
    }

    fn group_violate(&mut self, invariant: Invariant, detail: String) {
        self.violate(invariant, None, None, detail);
    }

    /// The key group state of this lifetime is filed under: one for the
    /// whole run when the coordinator's writes had to be durable.
    fn group_key(&self) -> u64 {
        if self.group_strict() {
            0
        } else {
            self.groups.lifetime
        }
    }

    /// A successful JoinGroup answer. `members` (for the leader only):
    /// each member (by instance id if static) with the partitions of the
    /// group's topic its subscription claims.
    pub fn group_joined(
        &mut self,
        member: &str,
        generation: i32,
        leader: &str,
        members: &[(String, Vec<i32>)],
    ) {
        self.bump_checks();
        let strict = self.group_strict();
        let g = &self.groups;
        let floor = g.max_joined.max(if strict { g.max_synced } else { g.max_synced_lifetime });
        let restarted = g.lifetime > 1;
        let text = if members.is_empty() {
            format!("group: {member} joined generation {generation} (leader {leader})")
        } else {
            format!("group: {member} joined generation {generation} as leader of {members:?}")
        };
        self.note(None, None, text);
        if generation < floor {
            self.group_violate(
                Invariant::GroupGenerations,
                format!(
                    "a JoinGroup answered generation {generation} to {member} after generation {floor} was \
                     answered or synced{}",
                    if restarted { " (restarts included)" } else { "" }
                ),
            );
        }
        self.groups.max_joined = self.groups.max_joined.max(generation);
        if !members.is_empty() {
            let key = self.group_key();
            self.groups.claims.insert((key, generation), members.iter().cloned().collect());
        }
    }

    /// A member was told its group runs an assignor it did not offer (G7).
    pub fn group_bad_protocol(&mut self, member: &str, chosen: &str, offered: &[&str]) {
        self.group_violate(
            Invariant::GroupProtocol,
            format!("JoinGroup answered {member} with assignor {chosen:?}; it offered {offered:?}"),
        );
    }

    /// A successful SyncGroup answer for `generation`.
    pub fn group_synced(&mut self, member: &str, generation: i32, assignment: &Bytes) {
        self.bump_checks();
        let partitions = match decode_assignment(assignment) {
            Ok(mut a) => a.remove(&self.groups.topic).unwrap_or_default(),
            Err(e) => {
                self.group_violate(
                    Invariant::GroupOneOwner,
                    format!("SyncGroup gave {member} (generation {generation}) an assignment no leader wrote: {e}"),
                );
                return;
            }
        };
        self.note(
            None,
            None,
            format!("group: {member} synced generation {generation}: partitions {partitions:?}"),
        );
        let key = self.group_key();
        self.group_check_handover(key, member, generation, &partitions);
        let before =
            self.groups.assignments.insert((key, generation, member.to_string()), partitions.clone());
        if let Some(before) = before.filter(|b| *b != partitions) {
            self.group_violate(
                Invariant::GroupOneOwner,
                format!("{member} was given {before:?}, then {partitions:?}, in generation {generation}"),
            );
            return;
        }
        let owners = self.groups.owners.entry((key, generation)).or_default();
        let mut clash = None;
        for p in &partitions {
            match owners.get(p) {
                Some(other) if other != member => clash = Some((*p, other.clone())),
                _ => {
                    owners.insert(*p, member.to_string());
                }
            }
        }
        if let Some((p, other)) = clash {
            let topic = self.groups.topic.clone();
            self.group_violate(
                Invariant::GroupOneOwner,
                format!("{topic}-{p} is owned by both {other} and {member} in generation {generation}"),
            );
        }
        let g = &mut self.groups;
        g.max_synced = g.max_synced.max(generation);
        g.max_synced_lifetime = g.max_synced_lifetime.max(generation);
    }

    /// G6: `member` is given `partitions` in `generation`; none may be one
    /// another member of the generation still claims, unless it claims it too.
    fn group_check_handover(&mut self, key: u64, member: &str, generation: i32, partitions: &[i32]) {
        let Some(claims) = self.groups.claims.get(&(key, generation)) else { return };
        let own: &[i32] = claims.get(member).map_or(&[], Vec::as_slice);
        let handed = partitions.iter().filter(|p| !own.contains(p)).find_map(|p| {
            claims
                .iter()
                .find(|(other, claimed)| *other != member && claimed.contains(p))
                .map(|(o, _)| (*p, o))
        });
        if let Some((p, other)) = handed {
            let topic = &self.groups.topic;
            let detail = format!(
                "{topic}-{p} was given to {member} in generation {generation} while {other}, a member of that \
                 generation, still claimed it"
            );
            self.group_violate(Invariant::GroupHandover, detail);
        }
    }

    /// An OffsetCommit reached the coordinator. `arrival`: the group's
    /// generation and whether the member belonged to it, as the coordinator
    /// described the group at that moment. Returns the ids to end with.
    pub fn group_commit_started(
        &mut self,
        member: &str,
        generation: i32,
        offsets: &[(String, i32, i64)],
        arrival: Option<(i32, bool)>,
    ) -> (Vec<usize>, Option<(i32, bool)>) {
        self.groups.clock += 1;
        let start = self.groups.clock;
        let mut ids = Vec::new();
        for (_, partition, offset) in offsets {
            ids.push(self.groups.commits.len());
            self.groups.commits.push(Commit {
                partition: *partition,
                offset: *offset,
                member: member.to_string(),
                generation,
                start,
                end: None,
                acked: false,
            });
        }
        (ids, arrival)
    }

    /// The coordinator's answer to a commit: `results[i]` for offset `i`
    /// (`None` for a group-level error).
    pub fn group_commit_ended(
        &mut self,
        started: &(Vec<usize>, Option<(i32, bool)>),
        results: Option<&[bool]>,
    ) {
        self.groups.clock += 1;
        let end = self.groups.clock;
        let (ids, arrival) = started;
        let mut acked = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let ok = results.is_some_and(|r| r.get(i).copied().unwrap_or(false));
            let c = &mut self.groups.commits[*id];
            c.end = Some(end);
            c.acked = ok;
            if ok {
                acked.push((c.partition, c.offset));
            }
        }
        let Some(first) = ids.first().map(|id| self.groups.commits[*id].clone()) else { return };
        let topic = self.groups.topic.clone();
        self.bump_checks();
        if acked.is_empty() {
            self.note(
                None,
                None,
                format!("group: commit by {} (generation {}) refused", first.member, first.generation),
            );
            return;
        }
        self.groups.acked += acked.len() as u64;
        let list: Vec<String> = acked.iter().map(|(p, o)| format!("{topic}-{p}@{o}")).collect();
        self.note(
            None,
            None,
            format!(
                "group: commit by {} (generation {}) acked: {}",
                first.member,
                first.generation,
                list.join(" ")
            ),
        );
        if let Some((current, is_member)) = arrival {
            if *current != first.generation || !is_member {
                self.group_violate(
                    Invariant::GroupStaleCommit,
                    format!(
                        "a commit by {} with generation {} was acknowledged although the group was at \
                         generation {current}{} when it arrived",
                        first.member,
                        first.generation,
                        if *is_member { "" } else { " without that member" }
                    ),
                );
            }
        }
    }

    /// The broker restarted: what its coordinator recovered. `committed`:
    /// per partition of the group's topic, the committed offset (`None`:
    /// nothing), or why the offsets could not be read; `generation`: the
    /// group's generation as described, if it could be.
    pub fn group_recovered(
        &mut self,
        committed: Result<Vec<(i32, Option<i64>)>, String>,
        generation: Option<i32>,
    ) {
        let strict = self.group_strict();
        let g = &mut self.groups;
        g.lifetime += 1;
        g.max_joined = 0;
        g.max_synced_lifetime = 0;
        g.recoveries_checked += 1;
        // Every commit in flight at the crash may still be applied (or not).
        let topic = g.topic.clone();
        let acked_any = g.commits.iter().any(|c| c.acked);
        self.note(None, None, format!("group: recovered {committed:?}, generation {generation:?}"));
        if !strict {
            return;
        }
        self.bump_checks();
        if let Some(generation) = generation {
            let synced = self.groups.max_synced;
            if synced > 0 && generation < synced {
                self.group_violate(
                    Invariant::GroupGenerations,
                    format!("after a restart the group is at generation {generation}, below {synced} synced before"),
                );
                return;
            }
        }
        let committed = match committed {
            Ok(c) => c,
            Err(e) if acked_any => {
                self.group_violate(
                    Invariant::GroupCommitsSurvive,
                    format!("after a restart the committed offsets cannot be read: {e}"),
                );
                return;
            }
            Err(_) => return,
        };
        for (partition, recovered) in committed {
            self.bump_checks();
            let commits: Vec<&Commit> =
                self.groups.commits.iter().filter(|c| c.partition == partition).collect();
            // When the last commit that wrote the recovered value may have
            // been applied: a commit that started after that was applied
            // after it.
            let applied_by = |v: i64| -> Option<u64> {
                commits.iter().filter(|c| c.offset == v).map(|c| c.end.unwrap_or(u64::MAX)).max()
            };
            let lost = match recovered {
                None => commits.iter().filter(|c| c.acked).max_by_key(|c| c.offset).copied(),
                Some(v) => {
                    let Some(by) = applied_by(v) else {
                        let detail = format!("after a restart {topic}-{partition} has committed offset {v}, which no member committed");
                        self.group_violate(Invariant::GroupCommitsSurvive, detail);
                        return;
                    };
                    commits
                        .iter()
                        .filter(|c| c.acked && c.offset > v && c.start >= by)
                        .max_by_key(|c| c.offset)
                        .copied()
                }
            };
            if let Some(c) = lost {
                let now = recovered.map_or("nothing".to_string(), |v| format!("offset {v}"));
                let detail = format!(
                    "{topic}-{partition}: the commit of offset {} by {} (generation {}) was acknowledged; after a \
                     restart the group has {now} committed, and no later commit wrote that",
                    c.offset, c.member, c.generation
                );
                self.group_violate(Invariant::GroupCommitsSurvive, detail);
                return;
            }
        }
    }

    /// Whether G3 holds for partition `p` of the group's topic: what was
    /// below its high watermark had to be durable, and so did the
    /// coordinator's records (beyond the budget a damaged offsets partition
    /// may refuse every write: no generation can be synced, loudly).
    pub fn group_partition_strict(&self, p: i32) -> bool {
        self.group_strict() && !self.tainted_tp(&self.groups.topic, p)
    }

    /// Records a member consumed from the group's topic.
    pub fn group_consumed(&mut self, partition: i32, keys: impl IntoIterator<Item = RecordKey>) {
        self.groups.consumed.entry(partition).or_default().extend(keys);
    }

    /// Whether the group consumed the record `key` of `partition`.
    pub fn group_has_consumed(&mut self, partition: i32, key: RecordKey) -> bool {
        self.bump_checks();
        self.groups.consumed.get(&partition).is_some_and(|s| s.contains(&key))
    }

    /// Reports that the quiet phase did not drain.
    pub fn group_not_drained(&mut self, detail: String) {
        self.group_violate(Invariant::GroupConsumedAll, detail);
    }

    /// For the run's hash.
    pub(crate) fn group_hash_parts(&self) -> Vec<u64> {
        let g = &self.groups;
        if g.group.is_empty() {
            return Vec::new();
        }
        let consumed: usize = g.consumed.values().map(BTreeSet::len).sum();
        vec![g.max_synced as u64, g.commits.len() as u64, g.acked, consumed as u64, g.recoveries_checked]
    }

    pub fn group_topic(&self) -> &str {
        &self.groups.topic
    }

    /// Member ids per partition in the latest generation synced (for reports).
    pub fn group_latest_owners(&self) -> String {
        match self.groups.owners.iter().next_back() {
            Some(((_, generation), owners)) => format!("generation {generation}: {owners:?}"),
            None => "no generation synced".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taint::Taints;
    use std::sync::{Arc, Mutex};

    fn checker() -> Checker {
        let taints = Arc::new(Mutex::new(Taints::default()));
        let mut c = Checker::new(true, taints, false, Box::new(|| 0));
        c.group_planned("grp", "g0", ("__consumer_offsets".into(), 0));
        c
    }

    /// An assignment of the group's topic, as a leader writes it.
    fn encode_assignment(partitions: &[i32]) -> Bytes {
        let assignment = [("g0".to_string(), partitions.to_vec())].into();
        ringtail_client::assignor::encode_assignment(&assignment).expect("encodes")
    }

    #[test]
    fn an_assignment_no_leader_wrote() {
        let mut c = checker();
        c.group_synced("m1", 3, &Bytes::from_static(&[0, 3, 0]));
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::GroupOneOwner));
    }

    #[test]
    fn a_claimed_partition_handed_to_another_member() {
        let mut c = checker();
        let claims =
            [("m1".to_string(), vec![0, 1]), ("m2".to_string(), vec![2]), ("m3".to_string(), vec![])];
        c.group_joined("m1", 5, "m1", &claims);
        c.group_synced("m1", 5, &encode_assignment(&[0]));
        c.group_synced("m2", 5, &encode_assignment(&[2, 3]));
        c.group_synced("m3", 6, &encode_assignment(&[1]));
        assert!(c.violation().is_none(), "kept, new, or in a generation without claims: {:?}", c.violation());
        c.group_synced("m3", 5, &encode_assignment(&[1]));
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::GroupHandover));
    }

    #[test]
    fn two_owners_in_one_generation() {
        let mut c = checker();
        c.group_synced("m1", 3, &encode_assignment(&[0, 1]));
        c.group_synced("m2", 3, &encode_assignment(&[2]));
        c.group_synced("m2", 4, &encode_assignment(&[0]));
        assert!(c.violation().is_none());
        c.group_synced("m2", 3, &encode_assignment(&[2]));
        assert!(c.violation().is_none(), "a duplicate answer is the same assignment");
        c.group_synced("m3", 3, &encode_assignment(&[1]));
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::GroupOneOwner));
    }

    #[test]
    fn stale_commit_acked() {
        let mut c = checker();
        let s = c.group_commit_started("m1", 3, &[("g0".into(), 0, 5)], Some((3, true)));
        c.group_commit_ended(&s, Some(&[true]));
        let s = c.group_commit_started("m1", 3, &[("g0".into(), 0, 6)], Some((4, true)));
        c.group_commit_ended(&s, Some(&[false]));
        assert!(c.violation().is_none());
        let s = c.group_commit_started("m1", 3, &[("g0".into(), 0, 6)], Some((3, false)));
        c.group_commit_ended(&s, Some(&[true]));
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::GroupStaleCommit));
    }

    #[test]
    fn acked_commit_lost_at_restart() {
        let mut c = checker();
        let a = c.group_commit_started("m1", 1, &[("g0".into(), 0, 5)], None);
        c.group_commit_ended(&a, Some(&[true]));
        let b = c.group_commit_started("m1", 1, &[("g0".into(), 0, 9)], None);
        c.group_commit_ended(&b, Some(&[true]));
        c.group_recovered(Ok(vec![(0, Some(9))]), Some(1));
        assert!(c.violation().is_none());
        // A commit of 7 still in flight when 9 was acked may land after it.
        let d = c.group_commit_started("m1", 1, &[("g0".into(), 0, 7)], None);
        let e = c.group_commit_started("m1", 1, &[("g0".into(), 0, 12)], None);
        c.group_commit_ended(&e, Some(&[true]));
        c.group_commit_ended(&d, Some(&[true]));
        c.group_recovered(Ok(vec![(0, Some(7))]), Some(1));
        assert!(c.violation().is_none());
        // But 5 was answered before 12 started.
        c.group_recovered(Ok(vec![(0, Some(5))]), Some(1));
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::GroupCommitsSurvive));
    }

    #[test]
    fn generation_back_after_restart() {
        let mut c = checker();
        c.group_joined("m1", 2, "m1", &[]);
        c.group_synced("m1", 2, &encode_assignment(&[0]));
        c.group_recovered(Ok(vec![]), Some(2));
        c.group_joined("m1", 3, "m1", &[]);
        assert!(c.violation().is_none());
        c.group_recovered(Ok(vec![]), Some(0));
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::GroupGenerations));
    }
}
