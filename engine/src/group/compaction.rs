//! Compaction of `__consumer_offsets`, by snapshot: each shard mirrors the
//! latest record per key of its partition's log (what Kafka's log cleaner
//! would keep), and when the log holds several times more records than the
//! mirror, the driver appends the mirror as a snapshot and moves the log
//! start to it. Replay from the snapshot rebuilds exactly the state replay
//! from the whole log did, so a coordinator's load time and the log's size
//! follow the live state, not the history.
//!
//! The mirror is updated when a record is *queued* on the log (log order),
//! not when it is durable: a snapshot taken while earlier records are in
//! flight then carries their values too, and lands after them in the log,
//! so it never rolls a key back to an older value.

use super::records::OffsetsRecord;
use std::collections::BTreeMap;

/// The compaction key of a record: Kafka's key (group, or group and
/// partition).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Group(String),
    Offset(String, String, i32),
}

/// The latest record per key, tombstones applied.
#[derive(Clone, Debug, Default)]
pub struct LogMirror {
    records: BTreeMap<Key, OffsetsRecord>,
}

impl LogMirror {
    /// Applies a record as replay does: a group's tombstone also drops the
    /// group's offsets (see `Shard::replay`).
    pub fn apply(&mut self, record: &OffsetsRecord) {
        match record {
            OffsetsRecord::Offset { group, topic, partition, value } => {
                let key = Key::Offset(group.clone(), topic.clone(), *partition);
                match value {
                    Some(_) => self.records.insert(key, record.clone()),
                    None => self.records.remove(&key),
                };
            }
            OffsetsRecord::Group { group, value: Some(_) } => {
                self.records.insert(Key::Group(group.clone()), record.clone());
            }
            OffsetsRecord::Group { group, value: None } => {
                self.records.retain(|k, _| match k {
                    Key::Group(g) | Key::Offset(g, _, _) => g != group,
                });
            }
        }
    }

    /// Live records (no tombstones: the snapshot replaces everything before
    /// it). Groups sort before offsets.
    pub fn snapshot(&self) -> Vec<OffsetsRecord> {
        self.records.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Whether a log of `log_records` records (log start to end) with `live`
/// of them live is worth compacting: at least `min_records`, and most of it
/// superseded, so that the snapshot's cost is small next to what it saves.
pub fn worth_compacting(log_records: u64, live: usize, min_records: u64) -> bool {
    log_records >= min_records && log_records > 4 * live as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::OffsetValue;

    fn offset(group: &str, partition: i32, value: Option<i64>) -> OffsetsRecord {
        OffsetsRecord::Offset {
            group: group.into(),
            topic: "t".into(),
            partition,
            value: value.map(|offset| OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 0,
            }),
        }
    }

    #[test]
    fn keeps_the_latest_value_per_key_and_applies_tombstones() {
        let mut m = LogMirror::default();
        for i in 0..10 {
            m.apply(&offset("g", 0, Some(i)));
            m.apply(&offset("g", 1, Some(100 + i)));
            m.apply(&offset("h", 0, Some(200 + i)));
        }
        assert_eq!(m.len(), 3);
        assert!(m.snapshot().contains(&offset("g", 0, Some(9))));
        m.apply(&offset("g", 1, None));
        assert_eq!(m.len(), 2);
        m.apply(&OffsetsRecord::Group { group: "g".into(), value: None });
        assert_eq!(m.snapshot(), vec![offset("h", 0, Some(209))]);
    }

    fn record(kind: u8, group: u8, partition: u8, n: i64) -> OffsetsRecord {
        let group = format!("g{group}");
        match kind % 4 {
            0 | 1 => offset(&group, i32::from(partition), Some(n)),
            2 => offset(&group, i32::from(partition), None),
            _ if n % 3 == 0 => OffsetsRecord::Group { group, value: None },
            _ => OffsetsRecord::Group {
                group,
                value: Some(crate::group::records::GroupValue {
                    protocol_type: "consumer".into(),
                    generation: n as i32 + 1,
                    protocol: None,
                    leader: None,
                    current_state_timestamp_ms: n,
                    members: Vec::new(),
                }),
            },
        }
    }

    /// What replay makes of a log: committed offsets and generations.
    fn replayed(records: &[OffsetsRecord]) -> Vec<String> {
        let mut shard = crate::group::Shard::new(crate::group::GroupConfig::default(), 1);
        for r in records {
            shard.replay(r.clone(), 0);
        }
        let mut out: Vec<String> = shard
            .offsets
            .iter()
            .flat_map(|(g, o)| o.iter().map(move |(tp, s)| format!("{g} {tp:?} {}", s.committed.offset)))
            .collect();
        // A group that only ever had offsets, all deleted since, is not
        // in the snapshot; as on Kafka, such an empty group is gone.
        let offsets_only_and_none_left = |g: &crate::group::Group| {
            g.generation == 0 && shard.offsets.get(&g.id).is_none_or(|o| o.is_empty())
        };
        out.extend(
            shard
                .groups()
                .filter(|g| !offsets_only_and_none_left(g))
                .map(|g| format!("{} generation {}", g.id, g.generation)),
        );
        out
    }

    proptest::proptest! {
        /// Replaying the snapshot rebuilds what replaying the whole log
        /// did, and the snapshot of the snapshot is itself.
        #[test]
        fn a_snapshot_replays_like_the_log_it_replaces(
            ops in proptest::collection::vec((0u8..4, 0u8..3, 0u8..3), 0..200),
        ) {
            let log: Vec<OffsetsRecord> =
                ops.iter().enumerate().map(|(n, &(k, g, p))| record(k, g, p, n as i64)).collect();
            let mut mirror = LogMirror::default();
            log.iter().for_each(|r| mirror.apply(r));
            let snapshot = mirror.snapshot();
            proptest::prop_assert_eq!(replayed(&snapshot), replayed(&log));
            let mut again = LogMirror::default();
            snapshot.iter().for_each(|r| again.apply(r));
            proptest::prop_assert_eq!(again.snapshot(), snapshot);
        }
    }

    #[test]
    fn compacts_only_a_mostly_superseded_log() {
        assert!(!worth_compacting(999, 1, 1000));
        assert!(worth_compacting(1000, 1, 1000));
        assert!(!worth_compacting(4000, 1000, 1000));
        assert!(worth_compacting(4001, 1000, 1000));
    }
}
