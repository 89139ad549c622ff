//! The quorum scenario's invariants, judged from what every voter reports
//! as it goes (whether or not its messages got anywhere):
//!
//! - Q1: at most one leader per term;
//! - Q2: a committed entry is never lost or changed: every voter applies,
//!   at each index, the same entry (term and data), restarts included, and
//!   an acknowledged proposal's entry is the one applied at its index;
//! - Q3: voters at the same applied index hold the same image, and so does
//!   every broker that fetched an image at that index (`Ask::Image`);
//! - QL: after healing, within a bound, one leader, every voter at the same
//!   applied index, every acknowledged topic in the image (and every
//!   acknowledged delete out of it), every
//!   heartbeating broker unfenced and every broker's image the voters'.

use crate::checker::{Invariant, Violation};
use ringtail_engine::controller::MetadataImage;
use ringtail_engine::security::acl::AclBinding;
use std::collections::BTreeMap;

/// Entries of history kept for a violation's slice.
const SLICE: usize = 60;

#[derive(Default)]
pub struct QuorumCheck {
    trace: bool,
    now_ms: u64,
    history: Vec<String>,
    violation: Option<Violation>,
    checks: u64,
    leaders: BTreeMap<u64, u64>,
    /// index -> (term, data crc, first voter to apply it).
    entries: BTreeMap<u64, (u64, u32, u64)>,
    /// applied index -> (image hash, first voter there).
    images: BTreeMap<u64, (u64, u64)>,
    /// Topic creates acknowledged (and not deleted since), with their
    /// entry's index.
    pub acked_topics: BTreeMap<String, u64>,
    /// Topic deletes acknowledged, with their entry's index.
    pub deleted_topics: BTreeMap<String, u64>,
    /// ACLs whose creation was acknowledged (and not deleted since), and
    /// ACLs whose deletion was, with their entry's index.
    pub acked_acls: BTreeMap<AclBinding, u64>,
    pub deleted_acls: BTreeMap<AclBinding, u64>,
    /// Per voter, its latest report: applied index, image, leading or not,
    /// and when.
    latest: BTreeMap<u64, (u64, MetadataImage, bool, u64)>,
    voters: u64,
    /// Per broker, the applied index of the last image it fetched.
    pub broker_applied: BTreeMap<i32, u64>,
}

/// An image's identity for comparisons: crc32c and length of its JSON.
pub fn image_hash(image: &MetadataImage) -> u64 {
    let json = serde_json::to_vec(image).expect("an image serializes");
    crc32c::crc32c(&json) as u64 | ((json.len() as u64) << 32)
}

impl QuorumCheck {
    pub fn new(trace: bool, voters: u64) -> QuorumCheck {
        QuorumCheck { trace, voters, ..QuorumCheck::default() }
    }

    /// A voter's state after a turn (the image only when `applied` moved).
    pub fn state(&mut self, voter: u64, applied: u64, image: Option<&MetadataImage>, leading: bool) {
        let now = self.now_ms;
        match (self.latest.get_mut(&voter), image) {
            (Some(entry), None) => {
                entry.2 = leading;
                entry.3 = now;
            }
            (_, Some(image)) => {
                self.latest.insert(voter, (applied, image.clone(), leading, now));
            }
            (None, None) => {}
        }
    }

    /// The image every voter holds, when all of them reported lately, at
    /// one applied index, with one leading; else what is missing.
    pub fn converged(&self) -> Result<(u64, &MetadataImage), String> {
        let fresh = |at: u64| self.now_ms.saturating_sub(at) <= 2_000;
        let mut states = Vec::new();
        for voter in 1..=self.voters {
            match self.latest.get(&voter) {
                Some((applied, image, leading, at)) if fresh(*at) => {
                    states.push((voter, *applied, image, *leading))
                }
                _ => return Err(format!("voter {voter} has not reported lately")),
            }
        }
        if !states.iter().any(|s| s.3) {
            return Err("no voter leads".into());
        }
        let (_, applied, image, _) = states[0];
        if let Some((voter, other, _, _)) = states.iter().find(|s| s.1 != applied) {
            return Err(format!("voter {voter} applied {other}, voter 1 applied {applied}"));
        }
        Ok((applied, image))
    }

    pub fn at(&mut self, now_ms: u64) -> &mut Self {
        self.now_ms = now_ms;
        self
    }

    pub fn note(&mut self, text: String) {
        let line = format!("[{:>9.3}s] {text}", self.now_ms as f64 / 1000.0);
        if self.trace {
            println!("{line}");
        }
        self.history.push(line);
    }

    pub fn violate(&mut self, invariant: Invariant, detail: String) {
        if self.violation.is_some() {
            return;
        }
        self.note(format!("VIOLATION of {invariant}: {detail}"));
        let start = self.history.len().saturating_sub(SLICE);
        self.violation = Some(Violation {
            invariant,
            tp: None,
            offset: None,
            at_ms: self.now_ms,
            detail,
            slice: self.history[start..].to_vec(),
        });
    }

    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// A voter leads `term`.
    pub fn leader(&mut self, voter: u64, term: u64) {
        self.checks += 1;
        let first = *self.leaders.entry(term).or_insert(voter);
        if first == voter {
            return;
        }
        self.violate(Invariant::QuorumOneLeader, format!("voters {first} and {voter} both led term {term}"));
    }

    /// A voter applied the entry at `index`.
    pub fn applied(&mut self, voter: u64, index: u64, term: u64, crc: u32) {
        self.checks += 1;
        let (t, c, first) = *self.entries.entry(index).or_insert((term, crc, voter));
        if (t, c) != (term, crc) {
            self.violate(
                Invariant::QuorumCommitted,
                format!(
                    "voter {voter} applied term {term} data {crc:08x} at index {index}; voter {first} applied term {t} \
                     data {c:08x} there"
                ),
            );
        }
    }

    /// A voter's image at its applied index.
    pub fn image(&mut self, voter: u64, applied: u64, hash: u64) {
        self.checks += 1;
        let (h, first) = *self.images.entry(applied).or_insert((hash, voter));
        if h != hash {
            self.violate(
                Invariant::QuorumImages,
                format!("voters {first} and {voter} hold different images at applied index {applied}"),
            );
        }
    }

    /// A broker fetched the image at `applied`: it must be the one the
    /// voters hold there.
    pub fn broker_image(&mut self, broker: i32, applied: u64, hash: u64) {
        self.checks += 1;
        self.broker_applied.insert(broker, applied);
        let Some((h, voter)) = self.images.get(&applied).copied() else { return };
        if h != hash {
            self.violate(
                Invariant::QuorumImages,
                format!("broker {broker}'s image at applied index {applied} differs from voter {voter}'s"),
            );
        }
    }

    /// A proposal was acknowledged at `index`: the entry there is committed
    /// (some voter applies it, or already did).
    pub fn acked(&mut self, topic: &str, index: u64) {
        self.note(format!("client: topic {topic} acknowledged at index {index}"));
        self.acked_topics.insert(topic.to_string(), index);
    }

    /// A delete was acknowledged at `index`.
    pub fn deleted(&mut self, topic: &str, index: u64) {
        self.note(format!("client: delete of topic {topic} acknowledged at index {index}"));
        self.acked_topics.remove(topic);
        self.deleted_topics.insert(topic.to_string(), index);
    }

    /// An ACL's creation was acknowledged at `index`.
    pub fn granted(&mut self, acl: &AclBinding, index: u64) {
        self.note(format!("client: ACL for {} acknowledged at index {index}", acl.principal));
        self.deleted_acls.remove(acl);
        self.acked_acls.insert(acl.clone(), index);
    }

    /// An ACL's deletion was acknowledged at `index`.
    pub fn revoked(&mut self, acl: &AclBinding, index: u64) {
        self.note(format!("client: deletion of the ACL for {} acknowledged at index {index}", acl.principal));
        self.acked_acls.remove(acl);
        self.deleted_acls.insert(acl.clone(), index);
    }

    /// For the run's hash.
    pub fn state_hash(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut mix = |v: u64| {
            h ^= v;
            h = h.wrapping_mul(0x100_0000_01b3);
        };
        for (term, voter) in &self.leaders {
            mix(*term);
            mix(*voter);
        }
        for (index, (term, crc, _)) in &self.entries {
            mix(*index);
            mix(*term);
            mix(u64::from(*crc));
        }
        mix(self.checks);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_a_term_or_two_entries_at_an_index_are_caught() {
        let mut c = QuorumCheck::new(false, 3);
        c.leader(1, 3);
        c.leader(1, 3);
        c.leader(2, 4);
        c.applied(1, 1, 3, 0xaa);
        c.applied(2, 1, 3, 0xaa);
        c.image(1, 1, 77);
        c.image(2, 1, 77);
        assert!(c.violation().is_none());
        c.applied(3, 1, 4, 0xbb);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::QuorumCommitted));
        let mut c = QuorumCheck::new(false, 3);
        c.leader(1, 3);
        c.leader(2, 3);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::QuorumOneLeader));
        let mut c = QuorumCheck::new(false, 3);
        c.image(1, 5, 1);
        c.image(2, 5, 2);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::QuorumImages));
        let mut c = QuorumCheck::new(false, 3);
        c.image(1, 5, 1);
        c.broker_image(7, 4, 9);
        c.broker_image(7, 5, 1);
        assert!(c.violation().is_none());
        c.broker_image(8, 5, 2);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::QuorumImages));
    }
}
