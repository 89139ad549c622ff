//! A partition leader's view of its replicas: each follower's log end as
//! its fetches report it, the ISR the controller committed and a change
//! asked of it, and the high watermark over them (invariants R1-R5 in the
//! module above). One per partition led, for one leader epoch: a new epoch
//! starts a new `LeaderState`, since followers must show again where they
//! are under it.
//!
//! A follower's fetch offset is its log end: it fetches from where its log
//! ends, and under flush=always only once what it appended is fsynced, so
//! a reported offset is durable on the follower.

use std::collections::BTreeMap;

/// Kafka's broker settings for replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms`: a follower not caught up with the leader
    /// for longer leaves the ISR.
    pub lag_time_max_ms: i64,
}

impl Default for ReplicationConfig {
    fn default() -> ReplicationConfig {
        ReplicationConfig { lag_time_max_ms: 30_000 }
    }
}

/// The partition as the metadata image has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// An ISR change to ask of the controller (AlterPartition), at the epochs
/// this leader holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrProposal {
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Clone, Debug)]
struct Follower {
    /// Unknown until its first fetch under this leader epoch.
    log_end: Option<u64>,
    /// Last time it was known to have all the leader had.
    last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// The leader's log end at its last fetch.
    last_fetch_leader_end: u64,
    /// Its log start as its fetches report it; unknown until one does.
    log_start: Option<u64>,
}

impl Follower {
    /// A follower as of `now_ms`: given the full lag time from then.
    fn new(now_ms: i64) -> Follower {
        Follower {
            log_end: None,
            last_caught_up_ms: now_ms,
            last_fetch_ms: now_ms,
            last_fetch_leader_end: 0,
            log_start: None,
        }
    }
}

/// Why a follower's fetch is not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchRefused {
    #[error("broker {0} is not a replica of this partition")]
    NotAReplica(i32),
    #[error("fetch offset {offset} is past the leader's log end {leader_end}")]
    PastLogEnd { offset: u64, leader_end: u64 },
}

#[derive(Clone, Debug)]
pub struct LeaderState {
    me: i32,
    view: PartitionView,
    /// The ISR asked for and not yet seen committed.
    pending: Option<Vec<i32>>,
    /// Members that changes asked for earlier would add, whose outcome is
    /// unknown (the request failed, but the quorum may have committed it
    /// anyway): they count as in the ISR until the image shows a newer
    /// partition epoch, which settles every earlier request (R2).
    unsettled: Vec<i32>,
    followers: BTreeMap<i32, Follower>,
    /// How far this leader's own log counts toward the high watermark: its
    /// fsynced end under flush=always, its log end otherwise.
    local_end: u64,
    high_watermark: u64,
    /// The leader's log end when it took this epoch.
    epoch_start: u64,
    config: ReplicationConfig,
}

impl LeaderState {
    /// Leadership of `view.leader_epoch` taken at `now_ms`, with the local
    /// log ending at `log_end` (`local_end` of it counting, see the field)
    /// and `high_watermark` as last known (learned as a follower, or from
    /// the previous epoch). Followers get the full lag time from now to
    /// show up.
    pub fn new(
        me: i32,
        view: PartitionView,
        log_end: u64,
        local_end: u64,
        high_watermark: u64,
        now_ms: i64,
        config: ReplicationConfig,
    ) -> LeaderState {
        debug_assert!(view.isr.contains(&me), "R3: leader {me} outside its ISR {:?}", view.isr);
        let followers =
            view.replicas.iter().filter(|r| **r != me).map(|r| (*r, Follower::new(now_ms))).collect();
        let mut state = LeaderState {
            me,
            view,
            pending: None,
            unsettled: Vec::new(),
            followers,
            local_end,
            high_watermark: high_watermark.min(log_end),
            epoch_start: log_end,
            config,
        };
        state.advance_high_watermark();
        state
    }

    pub fn leader_epoch(&self) -> i32 {
        self.view.leader_epoch
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// R5: may consumers read here yet?
    pub fn serves_reads(&self) -> bool {
        self.high_watermark >= self.epoch_start
    }

    /// The ISR the controller committed.
    pub fn isr(&self) -> &[i32] {
        &self.view.isr
    }

    pub fn replicas(&self) -> &[i32] {
        &self.view.replicas
    }

    /// The ISR committed plus members a pending change adds: who the high
    /// watermark waits for (R2).
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut members = self.view.isr.clone();
        for r in self.pending.iter().flatten().chain(&self.unsettled) {
            if !members.contains(r) {
                members.push(*r);
            }
        }
        members
    }

    /// A follower's fetch reported its log start.
    pub fn on_follower_log_start(&mut self, replica: i32, log_start: u64) {
        if let Some(f) = self.followers.get_mut(&replica) {
            f.log_start = Some(f.log_start.map_or(log_start, |s| s.max(log_start)));
        }
    }

    /// Kafka's low watermark, given the leader's own log start: the
    /// smallest log start over the leader and every follower that may be
    /// in the ISR (one that has not reported under this epoch counts as 0).
    /// Records below it are gone from every replica that may lead next, so
    /// DeleteRecords waits for it: a failover cannot bring them back.
    pub fn low_watermark(&self, leader_start: u64) -> u64 {
        self.maximal_isr()
            .iter()
            .filter(|r| **r != self.me)
            .map(|r| self.followers.get(r).and_then(|f| f.log_start).unwrap_or(0))
            .fold(leader_start, u64::min)
    }

    /// A follower's log end as last reported, if it fetched this epoch.
    pub fn follower_log_end(&self, replica: i32) -> Option<u64> {
        self.followers.get(&replica).and_then(|f| f.log_end)
    }

    /// The image's newer state of the partition, same leader epoch: the
    /// ISR committed (a pending change is settled either way, and the
    /// next `wanted_isr` decides again).
    pub fn on_partition_change(&mut self, view: PartitionView, now_ms: i64) {
        debug_assert_eq!(
            view.leader_epoch, self.view.leader_epoch,
            "a new leader epoch is a new LeaderState"
        );
        if view.partition_epoch <= self.view.partition_epoch {
            return;
        }
        debug_assert!(view.isr.contains(&self.me), "R3: leader {} outside its ISR {:?}", self.me, view.isr);
        self.followers.retain(|r, _| view.replicas.contains(r));
        for r in view.replicas.iter().filter(|r| **r != self.me) {
            self.followers.entry(*r).or_insert_with(|| Follower::new(now_ms));
        }
        self.view = view;
        self.pending = None;
        // A request made at an older partition epoch can no longer commit.
        self.unsettled.clear();
        self.advance_high_watermark();
    }

    /// The change asked for failed: ask again later. Whether the quorum
    /// committed it is unknown (a timeout, a lost answer), so the members
    /// it adds keep holding the high watermark until the image settles it.
    pub fn isr_change_failed(&mut self) {
        if let Some(asked) = self.pending.take() {
            for r in asked {
                if !self.view.isr.contains(&r) && !self.unsettled.contains(&r) {
                    self.unsettled.push(r);
                }
            }
        }
    }

    /// The leader's own log now counts up to `local_end`. Returns whether
    /// the high watermark moved.
    pub fn on_local_end(&mut self, local_end: u64) -> bool {
        self.local_end = self.local_end.max(local_end);
        self.advance_high_watermark()
    }

    /// A follower fetched from `offset` at `now_ms`, when the leader's log
    /// ended at `leader_end`. Returns whether the high watermark moved.
    pub fn on_follower_fetch(
        &mut self,
        replica: i32,
        offset: u64,
        leader_end: u64,
        now_ms: i64,
    ) -> Result<bool, FetchRefused> {
        if offset > leader_end {
            return Err(FetchRefused::PastLogEnd { offset, leader_end });
        }
        let f = self.followers.get_mut(&replica).ok_or(FetchRefused::NotAReplica(replica))?;
        // Kafka's rule: caught up now if it has all the leader has; caught
        // up as of its previous fetch if it has what the leader had then.
        if offset >= leader_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if offset >= f.last_fetch_leader_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.last_fetch_ms = now_ms;
        f.last_fetch_leader_end = leader_end;
        f.log_end = Some(offset);
        Ok(self.advance_high_watermark())
    }

    /// The ISR change to ask of the controller now, if any (none while one
    /// is pending): followers not caught up for longer than the lag time
    /// leave; followers that reached the high watermark and this epoch's
    /// start join (R4). Kept in replica order.
    pub fn wanted_isr(&mut self, now_ms: i64) -> Option<IsrProposal> {
        if self.pending.is_some() {
            return None;
        }
        let lag = self.config.lag_time_max_ms;
        let joins_at = self.high_watermark.max(self.epoch_start);
        let keep = |r: &i32, f: &Follower| {
            if self.view.isr.contains(r) {
                now_ms.saturating_sub(f.last_caught_up_ms) <= lag
            } else {
                f.log_end.is_some_and(|end| end >= joins_at)
            }
        };
        let isr: Vec<i32> = self
            .view
            .replicas
            .iter()
            .copied()
            .filter(|r| *r == self.me || self.followers.get(r).is_some_and(|f| keep(r, f)))
            .collect();
        if isr == self.view.isr {
            return None;
        }
        debug_assert!(isr.contains(&self.me), "R3");
        self.pending = Some(isr.clone());
        Some(IsrProposal {
            isr,
            leader_epoch: self.view.leader_epoch,
            partition_epoch: self.view.partition_epoch,
        })
    }

    /// Kafka's `min.insync.replicas` check for an acks=all produce, made
    /// before appending and again before answering: the committed ISR.
    pub fn enough_in_sync(&self, min_insync: usize) -> bool {
        self.view.isr.len() >= min_insync
    }

    /// Is an acks=all produce whose last offset is `last_offset` done?
    pub fn replicated(&self, last_offset: u64) -> bool {
        self.high_watermark > last_offset
    }

    /// Moves the high watermark to the smallest log end over the maximal
    /// ISR, never back (R1). A member whose log end is unknown holds it.
    fn advance_high_watermark(&mut self) -> bool {
        let mut candidate = self.local_end;
        for r in self.maximal_isr() {
            if r == self.me || crate::canary::Canary::ReplicationHwWithoutIsr.on() {
                continue;
            }
            let end = self.followers.get(&r).and_then(|f| f.log_end).unwrap_or(0);
            candidate = candidate.min(end);
        }
        if candidate <= self.high_watermark {
            return false;
        }
        self.high_watermark = candidate;
        true
    }
}

#[cfg(test)]
mod tests;
