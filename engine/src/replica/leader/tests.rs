use super::*;
use proptest::prelude::*;

const LAG: i64 = 10_000;

fn config() -> ReplicationConfig {
    ReplicationConfig { lag_time_max_ms: LAG }
}

fn view(isr: &[i32], partition_epoch: i32) -> PartitionView {
    PartitionView { replicas: vec![1, 2, 3], isr: isr.to_vec(), leader_epoch: 5, partition_epoch }
}

/// Broker 1 leads replicas [1, 2, 3] from time 0, its log ending at
/// `log_end`, all of it counting.
fn leader(isr: &[i32], log_end: u64, high_watermark: u64) -> LeaderState {
    LeaderState::new(1, view(isr, 0), log_end, log_end, high_watermark, 0, config())
}

#[test]
fn the_high_watermark_is_the_smallest_log_end_in_the_isr_and_waits_for_unknown_ones() {
    let mut l = leader(&[1, 2, 3], 100, 40);
    assert_eq!(l.high_watermark(), 40, "followers not heard from under this epoch hold it");
    assert!(!l.on_follower_fetch(2, 90, 100, 10).unwrap());
    assert_eq!(l.high_watermark(), 40);
    assert!(l.on_follower_fetch(3, 70, 100, 10).unwrap());
    assert_eq!(l.high_watermark(), 70);
    assert!(l.on_follower_fetch(3, 100, 100, 20).unwrap());
    assert_eq!(l.high_watermark(), 90);
    // The leader's own durable end bounds it too.
    assert!(!l.on_local_end(95), "local end only grows: 95 < 100 changes nothing");
    let mut l = LeaderState::new(1, view(&[1, 2], 0), 100, 60, 0, 0, config());
    l.on_follower_fetch(2, 100, 100, 1).unwrap();
    assert_eq!(l.high_watermark(), 60, "what the leader has not fsynced is not replicated");
    assert!(l.on_local_end(100));
    assert_eq!(l.high_watermark(), 100);
    assert!(l.replicated(99) && !l.replicated(100));
}

#[test]
fn the_high_watermark_never_goes_back_and_a_leader_alone_moves_it_by_itself() {
    let mut l = leader(&[1], 50, 50);
    assert_eq!(l.high_watermark(), 50);
    assert!(l.on_local_end(80));
    assert_eq!(l.high_watermark(), 80);
    // A follower outside the ISR does not hold it.
    l.on_follower_fetch(2, 10, 80, 5).unwrap();
    assert_eq!(l.high_watermark(), 80);
    // Given a high watermark past the log (never, but be safe): capped.
    assert_eq!(leader(&[1], 50, 70).high_watermark(), 50);
}

#[test]
fn a_follower_that_stops_fetching_or_falls_behind_leaves_the_isr_after_the_lag_time() {
    let mut l = leader(&[1, 2, 3], 100, 100);
    assert_eq!(l.wanted_isr(LAG), None, "everyone has the full lag time from the election");
    // Follower 2 keeps fetching all the leader has; 3 is silent.
    for t in (1_000..=LAG + 1).step_by(1_000) {
        l.on_follower_fetch(2, 100, 100, t).unwrap();
    }
    let p = l.wanted_isr(LAG + 1).expect("3 leaves");
    assert_eq!(p, IsrProposal { isr: vec![1, 2], leader_epoch: 5, partition_epoch: 0 });
    assert_eq!(l.wanted_isr(LAG + 2), None, "one change at a time");
    assert_eq!(l.maximal_isr(), [1, 2, 3], "3 still counts until the change is committed");
    l.on_partition_change(view(&[1, 2], 1), LAG + 3);
    assert_eq!(l.isr(), [1, 2]);

    // Follower 2 fetches often but never reaches what the leader had at
    // its previous fetch: it is not caught up, and leaves too.
    let mut end = 100;
    let mut t = LAG + 3;
    while t < 3 * LAG {
        end += 10;
        t += 500;
        l.on_local_end(end);
        l.on_follower_fetch(2, end - 20, end, t).unwrap();
        if let Some(p) = l.wanted_isr(t) {
            assert_eq!(p.isr, [1]);
            assert!(
                t > (LAG + 1) + LAG,
                "left at {t}, before its lag time from its last catch-up at {}",
                LAG + 1
            );
            return;
        }
    }
    panic!("a follower that never caught up stayed in the ISR");
}

#[test]
fn a_follower_keeping_up_with_what_the_leader_had_at_its_previous_fetch_stays() {
    let mut l = leader(&[1, 2], 100, 100);
    let mut end = 100;
    for t in (500..5 * LAG).step_by(500) {
        // It fetches up to the leader's end as of its previous fetch, while
        // new records keep arriving: always one round behind, never lagging.
        let offset = end;
        end += 10;
        l.on_local_end(end);
        l.on_follower_fetch(2, offset, end, t).unwrap();
        assert_eq!(l.wanted_isr(t), None, "at {t}");
    }
}

#[test]
fn a_follower_joins_once_it_reached_the_high_watermark_and_the_epoch_start() {
    // Elected with log end 100 and a high watermark of 60 learned as a follower.
    let mut l = leader(&[1], 100, 60);
    assert_eq!(l.high_watermark(), 100, "alone in the ISR, its whole log is committed");
    l.on_follower_fetch(2, 80, 100, 1).unwrap();
    assert_eq!(l.wanted_isr(1), None, "80 is short of the epoch start 100");
    l.on_follower_fetch(2, 100, 100, 2).unwrap();
    l.on_follower_fetch(3, 100, 100, 2).unwrap();
    let p = l.wanted_isr(2).expect("both join");
    assert_eq!(p.isr, [1, 2, 3]);
    // Until committed, records go on being counted against the joiners.
    l.on_local_end(150);
    assert_eq!(l.high_watermark(), 100, "the pending joiners hold it");
    l.on_follower_fetch(2, 150, 150, 3).unwrap();
    l.on_follower_fetch(3, 120, 150, 3).unwrap();
    assert_eq!(l.high_watermark(), 120);
    // The request fails (say, it timed out): ask again.
    l.isr_change_failed();
    assert_eq!(l.wanted_isr(4).unwrap().isr, [1, 2, 3], "both still qualify");
    // Whether the quorum committed it is unknown, so the joiners hold the
    // high watermark even with no request pending (sim seed 49: a leader
    // cut off from the quorum acknowledged acks=all records its committed
    // ISR lacked).
    l.isr_change_failed();
    l.on_local_end(200);
    l.on_follower_fetch(2, 200, 200, 5).unwrap();
    assert_eq!(l.high_watermark(), 120, "3, maybe in the ISR, holds it");
    // A newer partition epoch settles every earlier request.
    l.on_partition_change(PartitionView { isr: vec![1, 2], ..view(&[1], 1) }, 6);
    assert_eq!(l.high_watermark(), 200);
}

#[test]
fn a_new_leader_serves_reads_only_once_its_high_watermark_reaches_its_epoch_start() {
    let mut l = leader(&[1, 2], 100, 60);
    assert!(!l.serves_reads(), "60 may be below what the previous leader let consumers read");
    l.on_follower_fetch(2, 90, 100, 1).unwrap();
    assert!(!l.serves_reads());
    l.on_follower_fetch(2, 100, 100, 2).unwrap();
    assert!(l.serves_reads());
}

#[test]
fn fetches_from_strangers_or_past_the_log_end_are_refused() {
    let mut l = leader(&[1, 2], 100, 100);
    assert_eq!(l.on_follower_fetch(7, 0, 100, 1), Err(FetchRefused::NotAReplica(7)));
    assert_eq!(l.on_follower_fetch(1, 0, 100, 1), Err(FetchRefused::NotAReplica(1)), "the leader itself");
    assert_eq!(
        l.on_follower_fetch(2, 101, 100, 1),
        Err(FetchRefused::PastLogEnd { offset: 101, leader_end: 100 })
    );
    assert_eq!(l.follower_log_end(2), None);
}

#[test]
fn the_low_watermark_waits_for_every_follower_that_may_be_in_the_isr() {
    let mut l = leader(&[1, 2], 100, 100);
    assert_eq!(l.low_watermark(50), 0, "2 has not reported its log start under this epoch");
    l.on_follower_log_start(2, 30);
    assert_eq!(l.low_watermark(50), 30);
    l.on_follower_log_start(3, 10);
    assert_eq!(l.low_watermark(50), 30, "3 is outside the ISR: it cannot lead next");
    l.on_follower_log_start(2, 20);
    assert_eq!(l.low_watermark(50), 30, "a stale report does not move it back");
    l.on_follower_log_start(2, 70);
    assert_eq!(l.low_watermark(50), 50, "the leader's own start bounds it too");
    // 3 asked in: until the image settles that, it counts.
    l.on_follower_fetch(3, 100, 100, 1).unwrap();
    l.wanted_isr(1).expect("3 joins");
    assert_eq!(l.low_watermark(50), 10);
    l.on_follower_log_start(7, 0);
    assert_eq!(l.low_watermark(50), 10, "a stranger's report is ignored");
}

#[test]
fn min_insync_counts_the_committed_isr() {
    let mut l = leader(&[1, 2], 100, 100);
    assert!(l.enough_in_sync(2) && !l.enough_in_sync(3));
    l.on_follower_fetch(3, 100, 100, 1).unwrap();
    l.wanted_isr(1).expect("3 joins");
    assert!(!l.enough_in_sync(3), "not before the controller commits it");
    l.on_partition_change(view(&[1, 2, 3], 1), 2);
    assert!(l.enough_in_sync(3));
    // A stale image changes nothing.
    l.on_partition_change(view(&[1], 1), 3);
    assert_eq!(l.isr(), [1, 2, 3]);
}

#[derive(Clone, Debug)]
enum Op {
    /// The leader's log grows by this much, all of it counting.
    Append(u64),
    /// A follower fetches, having gained this much (never past the leader).
    Fetch(usize, u64),
    Tick(i64),
    /// The controller answers the pending change: commit it, or not.
    Answer(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..50).prop_map(Op::Append),
        (0usize..2, 0u64..60).prop_map(|(f, n)| Op::Fetch(f, n)),
        (0i64..4_000).prop_map(Op::Tick),
        any::<bool>().prop_map(Op::Answer),
    ]
}

proptest! {
    /// R1-R4 over any interleaving of appends, fetches, time and the
    /// controller's answers, with followers whose logs only grow (as under
    /// flush=always, where a fetch offset is fsynced).
    #[test]
    fn invariants_hold_over_any_history(
        start_isr in prop_oneof![Just(vec![1]), Just(vec![1, 2]), Just(vec![1, 2, 3])],
        hw in 0u64..100,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut l = LeaderState::new(1, view(&start_isr, 0), 100, 100, hw, 0, config());
        let first_hw = l.high_watermark();
        let mut leader_end = 100u64;
        // Members of the ISR the election found hold at least its high
        // watermark (the previous leader's R2); others may hold anything.
        let floor = |f: usize| if start_isr.contains(&(f as i32 + 2)) { first_hw } else { 0 };
        let mut ends = [None::<u64>; 2];
        let mut now = 0i64;
        let mut partition_epoch = 0;
        let mut pending: Option<IsrProposal> = None;
        let mut last_hw = first_hw;
        for op in ops {
            match op {
                Op::Append(n) => {
                    leader_end += n;
                    l.on_local_end(leader_end);
                }
                Op::Fetch(f, n) => {
                    let end = (ends[f].unwrap_or(floor(f)) + n).min(leader_end);
                    ends[f] = Some(end);
                    l.on_follower_fetch(f as i32 + 2, end, leader_end, now).unwrap();
                }
                Op::Tick(ms) => now += ms,
                Op::Answer(commit) => {
                    if let Some(p) = pending.take() {
                        if commit {
                            partition_epoch += 1;
                            l.on_partition_change(view(&p.isr, partition_epoch), now);
                        } else {
                            l.isr_change_failed();
                        }
                    }
                }
            }
            if pending.is_none() {
                if let Some(p) = l.wanted_isr(now) {
                    prop_assert!(p.isr.contains(&1), "R3: {p:?}");
                    prop_assert_eq!(p.partition_epoch, partition_epoch);
                    for joiner in p.isr.iter().filter(|r| !l.isr().contains(r)) {
                        let end = ends[*joiner as usize - 2].unwrap();
                        prop_assert!(end >= l.high_watermark() && end >= 100, "R4: {joiner} at {end}");
                    }
                    pending = Some(p);
                }
            }
            let hw = l.high_watermark();
            prop_assert!(hw >= last_hw, "R1: {last_hw} -> {hw}");
            last_hw = hw;
            prop_assert!(hw <= leader_end);
            for r in l.maximal_isr().into_iter().filter(|r| *r != 1) {
                match ends[r as usize - 2] {
                    Some(end) => prop_assert!(hw <= end, "R2: hw {hw}, {r} at {end}"),
                    None => prop_assert_eq!(hw, first_hw, "R2: moved with {} unheard", r),
                }
            }
            prop_assert!(l.isr().contains(&1), "R3");
        }
    }
}
