//! One controller voter: raft's `RawNode` over the persisted log, the
//! metadata image its committed entries build, the proposals waiting to
//! commit, and, on the leader, the brokers' sessions.
//!
//! Sans-IO: messages, ticks (with the time) and requests go in; what to
//! persist, messages to send and answers come out. The driver (`node.rs`)
//! persists a `Ready` before it hands it back, so nothing that depends on
//! a write (a vote, an append's ack) leaves before the write is durable.

use super::image::MetadataImage;
use super::plan;
use super::records::{encode_batch, MetadataRecord};
use super::storage::QuorumStorage;
use crate::entropy::Entropy;
use crate::error::{BrokerError, ErrorCode};
use raft::prelude::{ConfState, Entry, HardState, Message, MessageType, Snapshot};
use raft::{RawNode, SnapshotStatus, StateRole};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

// Applying committed entries and snapshots to the image.
mod apply;
// The brokers' requests (registration, heartbeats, topic changes).
mod requests;

#[derive(Clone, Debug)]
pub struct QuorumConfig {
    pub node_id: u64,
    /// Every voter's node id (this node's among them).
    pub voters: Vec<u64>,
    /// One raft tick is this long.
    pub tick_ms: i64,
    /// Followers start an election after this many ticks without a leader
    /// (randomized up to twice that, from the given entropy).
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// A broker silent this long is fenced (Kafka's broker.session.timeout.ms).
    pub broker_session_timeout_ms: i64,
    /// Applied entries between snapshots.
    pub snapshot_every: u64,
    /// How often the leader gives leadership back to each partition's
    /// preferred replica (Kafka's leader.imbalance.check.interval.seconds);
    /// `None` never does (auto.leader.rebalance.enable=false).
    pub leader_rebalance_interval_ms: Option<i64>,
}

impl QuorumConfig {
    pub fn new(node_id: u64, voters: Vec<u64>) -> QuorumConfig {
        QuorumConfig {
            node_id,
            voters,
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 2,
            broker_session_timeout_ms: 9_000,
            snapshot_every: 1_024,
            leader_rebalance_interval_ms: Some(300_000),
        }
    }
}

/// Producer ids per block a broker is given (Kafka's is 1000 too).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// Names a proposal until it is answered.
pub type ProposalId = u64;

/// An answer to a proposal: the index of its committed entry, or why not.
pub type Answer = Result<u64, BrokerError>;

/// What to persist and then hand back to `persisted`.
pub struct Work {
    ready: raft::Ready,
}

impl Work {
    pub fn hard_state(&self) -> Option<&HardState> {
        self.ready.hs()
    }

    pub fn entries(&self) -> &[Entry] {
        self.ready.entries()
    }

    /// A snapshot from the leader, to install before the entries.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        Some(self.ready.snapshot()).filter(|s| !s.is_empty())
    }
}

/// A snapshot's data: the image and the index it is at.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    applied: u64,
    image: MetadataImage,
}

/// The state a heartbeating broker is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerState {
    pub fenced: bool,
}

pub struct Controller {
    config: QuorumConfig,
    raw: RawNode<QuorumStorage>,
    entropy: Arc<dyn Entropy>,
    image: MetadataImage,
    applied: u64,
    /// (term, role) last seen: a change re-draws the election timeout.
    seen: (u64, StateRole),
    next_tick_ms: Option<i64>,
    next_proposal: ProposalId,
    /// Proposals of this node not yet answered, with the term they were
    /// made in.
    pending: BTreeMap<ProposalId, u64>,
    answers: Vec<(ProposalId, Answer)>,
    /// Leader only: per broker, its incarnation and when it was last heard.
    sessions: BTreeMap<i32, (u64, i64)>,
    /// Leader only: brokers that heartbeat while fenced.
    unfence_wanted: BTreeSet<(i32, u64)>,
    /// Leader only: when leadership next goes back to preferred replicas.
    next_rebalance_ms: Option<i64>,
    /// Leader only: the one change of its own it has in flight. Changes
    /// are planned from the image, so the next waits until this one has
    /// applied (or this node stopped leading).
    duty: Option<ProposalId>,
    /// Leader only: producer ids up to here are proposed (the image's
    /// `next_producer_id` lags until they apply).
    producer_ids_proposed: i64,
    /// A snapshot taken and not yet handed to the driver to write.
    compaction: Option<Snapshot>,
    /// When observed (the simulator's checker): every entry applied, as
    /// `(index, term, crc32c of its data)`, until taken.
    applied_log: Option<Vec<(u64, u64, u32)>>,
}

/// raft's slog output, into tracing.
struct SlogToTracing;

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::error!(target: "raft", "{}", record.msg()),
            slog::Level::Warning => tracing::warn!(target: "raft", "{}", record.msg()),
            slog::Level::Info => tracing::info!(target: "raft", "{}", record.msg()),
            _ => tracing::debug!(target: "raft", "{}", record.msg()),
        }
        Ok(())
    }
}

impl Controller {
    /// A voter resuming from what its store recovered.
    pub fn new(
        config: QuorumConfig,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        entropy: Arc<dyn Entropy>,
    ) -> Result<Controller, String> {
        let conf_state = ConfState::from((config.voters.clone(), Vec::new()));
        let mut storage = QuorumStorage::new(conf_state.clone());
        storage.set_hard_state(hard_state);
        let mut image = MetadataImage::default();
        let mut applied = 0;
        if let Some(snapshot) = snapshot {
            let stored = snapshot.get_metadata().get_conf_state();
            let sorted = |v: &[u64]| {
                let mut v = v.to_vec();
                v.sort_unstable();
                v
            };
            if sorted(&stored.voters) != sorted(&config.voters) || !stored.learners.is_empty() {
                return Err(format!(
                    "the quorum's voters were {:?}; this node was started with {:?}",
                    stored.voters, config.voters
                ));
            }
            let data: SnapshotData = serde_json::from_slice(snapshot.get_data())
                .map_err(|e| format!("the quorum snapshot's data is unreadable: {e}"))?;
            image = data.image;
            applied = data.applied;
            storage.apply_snapshot(snapshot);
        }
        storage.append(&entries);
        let raft_config = raft::Config {
            id: config.node_id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            min_election_tick: config.election_ticks,
            max_election_tick: 2 * config.election_ticks,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            ..raft::Config::default()
        };
        raft_config.validate().map_err(|e| e.to_string())?;
        let logger = slog::Logger::root(SlogToTracing, slog::o!());
        let raw = RawNode::new(&raft_config, storage, &logger).map_err(|e| e.to_string())?;
        let mut controller = Controller {
            seen: (raw.raft.term, raw.raft.state),
            config,
            raw,
            entropy,
            image,
            applied,
            next_tick_ms: None,
            next_proposal: 1,
            pending: BTreeMap::new(),
            answers: Vec::new(),
            sessions: BTreeMap::new(),
            unfence_wanted: BTreeSet::new(),
            next_rebalance_ms: None,
            duty: None,
            producer_ids_proposed: 0,
            compaction: None,
            applied_log: None,
        };
        controller.draw_election_timeout();
        Ok(controller)
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn applied(&self) -> u64 {
        self.applied
    }

    pub fn node_id(&self) -> u64 {
        self.config.node_id
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<u64> {
        Some(self.raw.raft.leader_id).filter(|id| *id != raft::INVALID_ID)
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    pub fn role(&self) -> StateRole {
        self.raw.raft.state
    }

    /// The randomized election timeout comes from the given entropy, not
    /// from raft's thread-local RNG, so a simulation seed replays exactly:
    /// redrawn whenever raft reset it (at every change of term or role).
    fn draw_election_timeout(&mut self) {
        let min = self.config.election_ticks;
        let timeout = min + (self.entropy.next_u64() % min as u64) as usize;
        self.raw.raft.set_randomized_election_timeout(timeout);
    }

    /// After anything that may have moved raft's term or role.
    fn observe_role(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.state);
        if now == self.seen {
            return;
        }
        let was_leader = self.seen.1 == StateRole::Leader;
        self.seen = now;
        self.draw_election_timeout();
        if now.1 == StateRole::Leader || was_leader {
            // Every broker gets a full session from a new leader (it may
            // not have applied every registration yet: `leader_duties`
            // adds the rest).
            self.sessions.clear();
            self.unfence_wanted.clear();
            self.next_rebalance_ms = None;
            self.duty = None;
            self.producer_ids_proposed = 0;
        }
        // Proposals from an earlier term may never commit: their callers
        // ask again (Kafka answers NOT_CONTROLLER the same way).
        let term = now.0;
        let stale: Vec<ProposalId> =
            self.pending.iter().filter(|(_, t)| **t != term).map(|(id, _)| *id).collect();
        for id in stale {
            self.pending.remove(&id);
            if Some(id) != self.duty {
                self.answers.push((id, Err(not_controller(self.leader()))));
            }
        }
    }

    /// A message from a peer. One that no voter of this quorum could have
    /// sent (a local message type, no term, a sender outside the quorum)
    /// is dropped: raft asserts on such input, and the network is not
    /// trusted to be well-formed.
    pub fn step(&mut self, message: Message) {
        if let Err(why) = self.check_peer_message(&message) {
            tracing::warn!(from = message.from, kind = ?message.get_msg_type(), "dropping a raft message: {why}");
            return;
        }
        if let Err(e) = self.raw.step(message) {
            tracing::debug!(error = %e, "raft refused a message");
        }
        self.observe_role();
    }

    fn check_peer_message(&self, m: &Message) -> Result<(), &'static str> {
        use MessageType::*;
        if m.to != self.config.node_id {
            return Err("addressed to another node");
        }
        if m.from == self.config.node_id || !self.config.voters.contains(&m.from) {
            return Err("from a node outside the quorum");
        }
        if m.term == 0 {
            return Err("without a term");
        }
        match m.get_msg_type() {
            MsgAppend
            | MsgAppendResponse
            | MsgRequestVote
            | MsgRequestVoteResponse
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgSnapshot
            | MsgHeartbeat
            | MsgHeartbeatResponse
            | MsgTimeoutNow => Ok(()),
            _ => Err("of a kind peers do not send"),
        }
    }

    /// Advances raft's clock to `now_ms`, and does the leader's periodic
    /// duties (cluster id, fencing silent brokers).
    pub fn tick(&mut self, now_ms: i64) {
        let next = *self.next_tick_ms.get_or_insert(now_ms + self.config.tick_ms);
        let mut next = next;
        while now_ms >= next {
            self.raw.tick();
            self.observe_role();
            next += self.config.tick_ms;
        }
        self.next_tick_ms = Some(next);
        if self.is_leader() {
            self.leader_duties(now_ms);
        }
    }

    /// Whether this leader's image holds everything committed before its
    /// term: only then may it plan changes from it.
    fn caught_up(&self) -> bool {
        let commit = self.commit_index();
        self.is_leader()
            && self.applied >= commit
            && self.raw.raft.raft_log.term(commit).is_ok_and(|t| t == self.term())
    }

    /// Level-triggered: compares the image with what should be and
    /// proposes the first difference, one change at a time.
    fn leader_duties(&mut self, now_ms: i64) {
        if !self.caught_up() || self.duty.is_some() {
            return;
        }
        for (id, broker) in &self.image.brokers {
            let fresh =
                self.sessions.get(id).is_none_or(|(incarnation, _)| *incarnation != broker.incarnation);
            if fresh {
                self.sessions.insert(*id, (broker.incarnation, now_ms));
            }
        }
        let records = self.next_duty(now_ms);
        if !records.is_empty() {
            self.duty = self.propose(records).ok();
        }
    }

    fn next_duty(&mut self, now_ms: i64) -> Vec<MetadataRecord> {
        if self.image.cluster_id.is_none() {
            let id = format!("{:016x}{:016x}", self.entropy.next_u64(), self.entropy.next_u64());
            return vec![MetadataRecord::ClusterId { cluster_id: id }];
        }
        let timeout = self.config.broker_session_timeout_ms;
        for (id, broker) in &self.image.brokers {
            let heard = self.sessions.get(id).map_or(now_ms, |(_, heard)| *heard);
            if !broker.fenced && now_ms - heard > timeout {
                tracing::info!(broker = id, "fencing a broker that missed its session");
                return plan::fence(&self.image, *id, broker.incarnation);
            }
            if broker.fenced {
                let evictions = plan::evict(&self.image, *id);
                if !evictions.is_empty() {
                    return evictions;
                }
            }
        }
        while let Some((id, incarnation)) = self.unfence_wanted.pop_first() {
            if self.image.brokers.get(&id).is_some_and(|b| b.fenced && b.incarnation == incarnation) {
                return plan::unfence(&self.image, id, incarnation);
            }
        }
        let unclean = plan::elect_unclean(&self.image);
        if !unclean.is_empty() {
            return unclean;
        }
        if let Some(interval) = self.config.leader_rebalance_interval_ms {
            // A new leader waits a whole interval too: brokers that just
            // came back get time to rejoin their ISRs first.
            let due = *self.next_rebalance_ms.get_or_insert(now_ms + interval);
            if now_ms >= due {
                self.next_rebalance_ms = Some(now_ms + interval);
                let moves = plan::prefer_leaders(&self.image);
                if !moves.is_empty() {
                    tracing::info!(partitions = moves.len(), "giving leadership back to preferred replicas");
                    return moves;
                }
            }
        }
        Vec::new()
    }

    /// Proposes one batch of records; its answer comes once it committed
    /// and applied, or when this node stops leading.
    pub fn propose(&mut self, records: Vec<MetadataRecord>) -> Result<ProposalId, BrokerError> {
        if !self.is_leader() {
            return Err(not_controller(self.leader()));
        }
        let id = self.next_proposal;
        let mut context = self.config.node_id.to_be_bytes().to_vec();
        context.extend_from_slice(&id.to_be_bytes());
        self.raw
            .propose(context, encode_batch(&records))
            .map_err(|e| BrokerError::new(ErrorCode::NotController, format!("proposal dropped: {e}")))?;
        self.next_proposal += 1;
        self.pending.insert(id, self.raw.raft.term);
        Ok(id)
    }

    /// Starts recording every entry applied (see `take_applied`).
    pub fn observe_applied(&mut self) {
        self.applied_log.get_or_insert_with(Vec::new);
    }

    /// Entries applied since the last call, when observed.
    pub fn take_applied(&mut self) -> Vec<(u64, u64, u32)> {
        self.applied_log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Answers since the last call.
    pub fn take_answers(&mut self) -> Vec<(ProposalId, Answer)> {
        std::mem::take(&mut self.answers)
    }

    /// Work for the driver, if raft has any: persist it, then `persisted`.
    pub fn ready(&mut self) -> Option<Work> {
        self.raw.has_ready().then(|| Work { ready: self.raw.ready() })
    }

    /// `work` is durable: raft's view catches up, committed entries apply,
    /// and the messages to send come back.
    pub fn persisted(&mut self, work: Work) -> Vec<Message> {
        let mut ready = work.ready;
        let mut messages = ready.take_messages();
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.install_snapshot(snapshot);
        }
        let committed = ready.take_committed_entries();
        // Planted bug (sim/canaries): a leader applies (and answers) its new
        // entries as soon as it appends them, before a quorum has them.
        if crate::canary::Canary::QuorumCommitWithoutQuorum.on()
            && self.is_leader()
            && ready.entries().first().is_some_and(|e| e.index == self.applied + 1)
        {
            self.apply(ready.entries().to_vec());
        }
        let store = self.raw.mut_store();
        store.append(ready.entries());
        if let Some(hs) = ready.hs() {
            store.set_hard_state(hs.clone());
        }
        messages.extend(ready.take_persisted_messages());
        self.apply(committed);
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
        }
        messages.extend(light.take_messages());
        self.apply(light.take_committed_entries());
        self.raw.advance_apply();
        self.observe_role();
        self.maybe_snapshot();
        // The transport gives no delivery receipts. A leader sending a
        // snapshot would otherwise wait for one forever; reported as
        // delivered, it probes the follower next, and sends the snapshot
        // again if it was lost.
        for m in messages.iter().filter(|m| m.get_msg_type() == MessageType::MsgSnapshot) {
            self.raw.report_snapshot(m.to, SnapshotStatus::Finish);
        }
        messages
    }

    /// For the driver writing a received snapshot: the hard state to keep.
    pub fn hard_state(&self) -> HardState {
        self.raw.store().hard_state().clone()
    }
}

fn not_controller(leader: Option<u64>) -> BrokerError {
    let hint = leader.map_or("no leader known".to_string(), |l| format!("the leader is node {l}"));
    BrokerError::new(ErrorCode::NotController, format!("this node is not the controller leader ({hint})"))
}
