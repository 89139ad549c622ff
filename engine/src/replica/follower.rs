//! What a follower decides before it fetches from a new leader: where its
//! log diverged from the leader's. It asks the leader where its own latest
//! epoch ends there (OffsetForLeaderEpoch) and cuts only what lies past
//! that (KIP-101, KIP-279): records of an epoch the leader never had, or
//! past where the leader's copy of an epoch ends.

use crate::log::epochs::LeaderEpochs;

/// The follower's next step after the leader's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truncation {
    /// Cut the log at `offset` (nothing if it is the log end), then fetch.
    To(u64),
    /// Cut at `offset`, then ask again: the leader named an epoch this log
    /// does not hold, so where they agree is not known yet.
    ToThenAskAgain(u64),
}

/// `own` and `log_end` describe the follower's log, `asked` is the epoch
/// it asked about (its latest), `answer` the leader's (epoch, end offset),
/// `None` when the leader knows no epoch that old; `high_watermark` is the
/// follower's, below which nothing can have diverged (it is committed).
pub fn truncation(
    own: &LeaderEpochs,
    log_end: u64,
    asked: i32,
    answer: Option<(i32, u64)>,
    high_watermark: u64,
) -> Truncation {
    let Some((epoch, leader_end)) = answer else {
        // No common epoch is known: only the committed prefix is sure.
        return Truncation::To(high_watermark.min(log_end));
    };
    if epoch == asked {
        return Truncation::To(leader_end.min(log_end));
    }
    // The leader's latest epoch at or below ours is older than ours: where
    // does that epoch end here?
    match own.end_of(epoch, log_end) {
        Some((found, own_end)) if found == epoch => Truncation::To(own_end.min(leader_end)),
        // This log never had that epoch: cut back to the end of the one
        // before it here, and ask about that one.
        Some((_, own_end)) => Truncation::ToThenAskAgain(own_end.min(log_end)),
        None => Truncation::To(high_watermark.min(log_end).min(leader_end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(entries: &[(i32, u64)]) -> LeaderEpochs {
        let mut e = LeaderEpochs::default();
        for &(epoch, start) in entries {
            e.assign(epoch, start);
        }
        e
    }

    #[test]
    fn the_same_epoch_cut_where_the_leader_ends_it() {
        // Follower: epoch 1 from 0, epoch 2 from 50, log end 80. The leader
        // had epoch 2 too, but it ends at 70 there (the follower's 70..80 was
        // written by the old leader and never committed).
        let own = epochs(&[(1, 0), (2, 50)]);
        assert_eq!(truncation(&own, 80, 2, Some((2, 70)), 40), Truncation::To(70));
        assert_eq!(truncation(&own, 80, 2, Some((2, 95)), 40), Truncation::To(80), "nothing to cut");
    }

    #[test]
    fn an_epoch_the_leader_never_had_goes_back_to_the_older_ones_end() {
        // Follower led epoch 3 briefly (60..80) without replicating it; the
        // leader's latest at or below 3 is 2, which ends at 60 there.
        let own = epochs(&[(1, 0), (2, 40), (3, 60)]);
        assert_eq!(truncation(&own, 80, 3, Some((2, 60)), 30), Truncation::To(60));
        // The leader's epoch 2 ended earlier than the follower's.
        assert_eq!(truncation(&own, 80, 3, Some((2, 55)), 30), Truncation::To(55));
        // The leader's epoch 2 runs past this log's end: still only what
        // epoch 3 wrote here diverged (seed 427 of the replication scenario
        // found the early "the leader is longer, keep everything" wrong).
        assert_eq!(truncation(&own, 80, 3, Some((2, 95)), 30), Truncation::To(60));
        // Epoch 3 led with nothing appended: the cut is at the log end, where
        // it drops only the empty epoch's entry.
        let led_empty = epochs(&[(1, 0), (2, 40), (3, 80)]);
        assert_eq!(truncation(&led_empty, 80, 3, Some((2, 95)), 30), Truncation::To(80));
    }

    #[test]
    fn an_epoch_this_log_lacks_cuts_back_and_asks_again() {
        // The leader answers epoch 2, which the follower never held: cut to
        // where its epoch 1 ends, then ask about epoch 1.
        let own = epochs(&[(1, 0), (3, 60)]);
        assert_eq!(truncation(&own, 80, 3, Some((2, 70)), 10), Truncation::ToThenAskAgain(60));
    }

    #[test]
    fn without_a_common_epoch_only_the_high_watermark_is_kept() {
        let own = epochs(&[(4, 0)]);
        assert_eq!(truncation(&own, 80, 4, None, 30), Truncation::To(30));
        assert_eq!(truncation(&LeaderEpochs::default(), 80, -1, None, 90), Truncation::To(80));
        // The leader's epoch is older than any here.
        assert_eq!(truncation(&own, 80, 4, Some((2, 50)), 30), Truncation::To(30));
    }
}
