//! When to try again to reopen a poisoned log. A reopen re-validates the
//! log from its recovery point, a full rescan when the damage is early; a
//! disk that keeps failing would have it rescanned every upkeep (each
//! second). After each failure the wait doubles, from 1 s to at most 16 s
//! (short enough that a disk that recovered is in use again soon: the
//! simulator's liveness bound after healing is 60 s); a success forgets the
//! partition. Times are the broker's clock.

use crate::log::TopicPartition;
use std::collections::BTreeMap;

const FIRST_WAIT_MS: i64 = 1_000;
const WAIT_MS_MAX: i64 = 16_000;

#[derive(Debug, Default)]
pub struct ReopenBackoff {
    /// Failures in a row, and when the next attempt is due.
    failing: BTreeMap<TopicPartition, (u32, i64)>,
}

impl ReopenBackoff {
    pub fn due(&self, tp: &TopicPartition, now_ms: i64) -> bool {
        self.failing.get(tp).is_none_or(|(_, next)| now_ms >= *next)
    }

    pub fn failed(&mut self, tp: &TopicPartition, now_ms: i64) -> i64 {
        let failures = self.failing.get(tp).map_or(0, |(n, _)| *n);
        let wait = FIRST_WAIT_MS.saturating_mul(1 << failures.min(16)).min(WAIT_MS_MAX);
        self.failing.insert(tp.clone(), (failures + 1, now_ms.saturating_add(wait)));
        wait
    }

    pub fn succeeded(&mut self, tp: &TopicPartition) {
        self.failing.remove(tp);
    }

    /// Forgets partitions no longer hosted.
    pub fn retain(&mut self, hosted: impl Fn(&TopicPartition) -> bool) {
        self.failing.retain(|tp, _| hosted(tp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_16_s_and_a_success_forgets() {
        let tp = TopicPartition::new("t", 0);
        let mut b = ReopenBackoff::default();
        assert!(b.due(&tp, 0));
        let waits: Vec<i64> = (0..8).map(|_| b.failed(&tp, 0)).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 16_000, 16_000, 16_000]);
        assert!(!b.due(&tp, 15_999) && b.due(&tp, 16_000));
        b.succeeded(&tp);
        assert!(b.due(&tp, 0));
        b.failed(&tp, 100);
        b.retain(|_| false);
        assert!(b.due(&tp, 100), "a partition no longer hosted is forgotten");
    }
}
