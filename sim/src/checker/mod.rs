//! The invariant checker: what every client saw, and whether it adds up.
//!
//! It learns `(partition, offset) -> record` from produce acknowledgements,
//! fetches and recoveries, and checks, as each observation arrives:
//!
//! 1. a record acknowledged under acks=all with flush=always is never lost
//!    and stays at its acknowledged offset;
//! 2. each (partition, offset) has one value across produce responses,
//!    fetches and recoveries;
//! 3. offsets in a fetch are dense and increasing, and start where asked;
//! 4. nothing read below the high watermark later changes or disappears
//!    (retention aside), and a reader's high watermark never goes back;
//! 5. recovery yields a prefix of what was written, keeps everything
//!    synced, never exposes a torn or corrupt record, and is idempotent;
//!
//! plus T (an acknowledged topic create or delete survives crashes) and L
//! (after healing, every acknowledged record is readable and every
//! partition served within a bound).
//!
//! Under flush=interval/never a crash may lose acknowledged records (that
//! is the policy's contract), so there only 2, 3 and 5's "no torn or corrupt
//! record" apply to records lost by a crash; partitions a beyond-budget
//! fault touched (see `taint`) may lose records only loudly.
//!
//! The checks live in submodules by concern, each an `impl Checker`:
//! - `topics`: topic create and delete (T);
//! - `produce`: produce requests and their acknowledgements (1);
//! - `observe`: what every observation goes through: the record learnt at
//!   an offset (2), a served record against what was sent, the log start
//!   (1) and a reader's high watermark (4);
//! - `fetch`: fetches, fetch errors and list-offsets answers (3, 4);
//! - `recovery`: a recovered log read whole, and recovery run twice (5);
//! - `liveness`: the verifier's final read after healing (L).

use crate::history::{Event, History};
use crate::taint::Taints;
use crate::values::{fnv1a, fnv1a_extend, RecordKey};
use bytes::Bytes;
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::records::iter_records;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

mod fetch;
mod idempotent;
mod liveness;
mod observe;
mod produce;
mod recovery;
mod time_lookup;
mod topics;

pub type Tp = (String, i32);

/// The reader of answers observed out of order (the broker node's observer
/// sees fetch answers as handlers finish): its high watermarks still bound
/// what recovery must keep, but need not rise answer by answer.
pub const UNORDERED_READER: u32 = 50_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    AckedNeverLost,
    OneValuePerOffset,
    DenseOffsets,
    ReadStaysRead,
    Recovery,
    TopicLifecycle,
    Liveness,
    /// Consumer groups (see `groupcheck`).
    GroupOneOwner,
    GroupCommitsSurvive,
    GroupConsumedAll,
    GroupStaleCommit,
    GroupGenerations,
    GroupHandover,
    GroupProtocol,
    IdempotentOnce,
    TimeLookup,
    /// The compacted topic keeps each key's latest value (`compacted`).
    CompactedLatestKept,
    /// The metadata quorum (see `quorum::check`).
    QuorumOneLeader,
    QuorumCommitted,
    QuorumImages,
    QuorumLiveness,
    /// Partition replication (see `replication::check`).
    ReplicasAgree,
    HighWatermarkMonotone,
    OneLeaderPerEpoch,
    ReplicationLiveness,
}

impl Invariant {
    pub fn label(self) -> &'static str {
        match self {
            Invariant::AckedNeverLost => "1",
            Invariant::OneValuePerOffset => "2",
            Invariant::DenseOffsets => "3",
            Invariant::ReadStaysRead => "4",
            Invariant::Recovery => "5",
            Invariant::TopicLifecycle => "T",
            Invariant::Liveness => "L",
            Invariant::GroupOneOwner => "G1",
            Invariant::GroupCommitsSurvive => "G2",
            Invariant::GroupConsumedAll => "G3",
            Invariant::GroupStaleCommit => "G4",
            Invariant::GroupGenerations => "G5",
            Invariant::GroupHandover => "G6",
            Invariant::GroupProtocol => "G7",
            Invariant::IdempotentOnce => "I",
            Invariant::TimeLookup => "LT",
            Invariant::CompactedLatestKept => "C",
            Invariant::QuorumOneLeader => "Q1",
            Invariant::QuorumCommitted => "Q2",
            Invariant::QuorumImages => "Q3",
            Invariant::QuorumLiveness => "QL",
            Invariant::ReplicasAgree => "RA",
            Invariant::HighWatermarkMonotone => "RH",
            Invariant::OneLeaderPerEpoch => "RE",
            Invariant::ReplicationLiveness => "RL",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Invariant::AckedNeverLost => "a record acknowledged under acks=all, flush=always is never lost",
            Invariant::OneValuePerOffset => "each (partition, offset) has one value",
            Invariant::DenseOffsets => "offsets are dense and increasing; polls are monotonic",
            Invariant::ReadStaysRead => "nothing read below the high watermark changes or disappears",
            Invariant::Recovery => "recovery yields a synced, valid prefix and is idempotent",
            Invariant::TopicLifecycle => "an acknowledged topic create or delete survives crashes",
            Invariant::Liveness => {
                "after healing, every acknowledged record is readable, every partition served"
            }
            Invariant::GroupOneOwner => "one owner per partition per generation",
            Invariant::GroupCommitsSurvive => "an acknowledged offset commit survives the broker's crash",
            Invariant::GroupConsumedAll => "every record below the high watermark is consumed by the group",
            Invariant::GroupStaleCommit => "a commit from a stale generation is never acknowledged",
            Invariant::GroupGenerations => "a group's generation never goes backwards, restarts included",
            Invariant::GroupHandover => {
                "no partition is handed to a member while another member still owns it"
            }
            Invariant::GroupProtocol => "the assignor a group runs is one its members offered",
            Invariant::IdempotentOnce => {
                "an idempotent producer's records appear once each, in sequence order"
            }
            Invariant::TimeLookup => "ListOffsets by time answers the first offset at or after the time",
            Invariant::CompactedLatestKept => "a compacted topic keeps the latest acknowledged value of every key",
            Invariant::QuorumOneLeader => "at most one controller leader per term",
            Invariant::QuorumCommitted => "a committed metadata entry is never lost or changed",
            Invariant::QuorumImages => {
                "voters, and the brokers following them, at the same applied index hold the same metadata image"
            }
            Invariant::QuorumLiveness => {
                "after healing, a controller leader, voters converged, acknowledged topics kept, live brokers unfenced, \
                 every broker's image at the quorum's"
            }
            Invariant::ReplicasAgree => "every replica holds the leader's bytes below the high watermark",
            Invariant::HighWatermarkMonotone => "the high watermark a consumer is told never goes backwards",
            Invariant::OneLeaderPerEpoch => "one leader per partition per leader epoch",
            Invariant::ReplicationLiveness => {
                "after healing, every partition led with its whole ISR, writable, every acknowledged record readable"
            }
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.label(), self.describe())
    }
}

#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: Invariant,
    pub tp: Option<Tp>,
    pub offset: Option<u64>,
    pub at_ms: u64,
    pub detail: String,
    /// The history that concerns it, oldest first.
    pub slice: Vec<String>,
}

/// What the checker knows about one record it registered at send time.
#[derive(Clone, Copy, Debug)]
struct Sent {
    tp: u32,
    fingerprint: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    Acked(i8),
    Fetched,
    Recovered,
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            How::Acked(acks) => write!(f, "acked(acks={acks})"),
            How::Fetched => write!(f, "fetched below HW"),
            How::Recovered => write!(f, "recovered"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Known {
    key: RecordKey,
    /// Must survive every crash: acked under acks=all, or read below the
    /// high watermark, with flush=always.
    required: bool,
    how: How,
    /// `Taints::losses` when the broker said so: a later loss event may
    /// take it, if it did not have to be durable.
    epochs: Epochs,
}

/// The loss epochs (`Taints::losses`) between which a broker produced an
/// answer: when its request was sent and when the answer arrived. A loss
/// event while the request was in flight may be on either side of it, and
/// the checker gives the broker that doubt (a point when they are equal,
/// as at recovery, where the harness reads the log itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Epochs {
    pub lo: u64,
    pub hi: u64,
}

impl Epochs {
    pub fn at(epoch: u64) -> Epochs {
        Epochs { lo: epoch, hi: epoch }
    }
}

#[derive(Default)]
struct Part {
    known: BTreeMap<u64, Known>,
    /// Last high watermark each reader saw (readers are sequential).
    hw_by_reader: BTreeMap<u32, u64>,
    /// Highest high watermark seen (flush=always: everything below it is durable).
    max_hw: u64,
    max_lso: u64,
    retention: bool,
    deleted: bool,
    /// Recovery reported damage after a beyond-budget fault hit this partition.
    damage_reported: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct TopicLife {
    created_acked: bool,
    delete_issued: bool,
    deleted_acked: bool,
}

/// Counts of what the checker accepted without calling it a violation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Reads a tainted partition refused (storage error): refused safely.
    pub refused: u64,
    /// Records of tainted partitions lost with recovery reporting damage.
    pub lost_reported: u64,
    /// Unsynced records a crash legitimately took (flush != always, acks < all).
    pub unsynced_lost: u64,
}

/// One read of a whole partition, `[log_start, end)`: at recovery (the
/// harness reads the recovered log) or by the final verifier.
#[derive(Clone, Debug)]
pub struct LogRead {
    pub log_start: u64,
    /// The log end offset (recovery) or high watermark (verifier).
    pub end: u64,
    /// Batches read, in order, from `log_start` on.
    pub batches: Vec<Bytes>,
    /// The read stopped here with this error.
    pub error: Option<(u64, String)>,
}

pub struct Checker {
    now_ms: Box<dyn Fn() -> u64 + Send>,
    history: History,
    flush_always: bool,
    taints: Arc<Mutex<Taints>>,
    tps: Vec<Tp>,
    tp_ids: BTreeMap<Tp, u32>,
    registry: BTreeMap<RecordKey, Sent>,
    parts: BTreeMap<u32, Part>,
    topics: BTreeMap<String, TopicLife>,
    checks: u64,
    outcomes: Outcomes,
    violation: Option<Violation>,
    pub(crate) groups: crate::groupcheck::GroupBook,
    idempotence: idempotent::Idempotence,
    /// Each record's time, for ListOffsets by time.
    times: BTreeMap<RecordKey, i64>,
}

/// The records of some batches: `(offset, value)`, or why they do not decode.
pub fn decode_batches(batches: &[Bytes]) -> Result<Vec<(u64, Bytes)>, String> {
    let mut out = Vec::new();
    for bytes in batches {
        for item in BatchScanner::new(bytes) {
            let (at, header) = item.map_err(|(at, e)| format!("bad batch at byte {at}: {e}"))?;
            let batch = &bytes[at..at + header.size_bytes()];
            let (_, records) = iter_records(batch).map_err(|e| format!("bad records: {e}"))?;
            for record in records {
                let record = record.map_err(|e| format!("bad record: {e}"))?;
                let offset = record.offset;
                let offset = u64::try_from(offset).map_err(|_| format!("negative offset {offset}"))?;
                // Read in place: the value shares the batch's memory.
                out.push((offset, record.value.map(|v| bytes.slice_ref(v)).unwrap_or_default()));
            }
        }
    }
    Ok(out)
}

impl Checker {
    pub fn new(
        flush_always: bool,
        taints: Arc<Mutex<Taints>>,
        trace: bool,
        now_ms: Box<dyn Fn() -> u64 + Send>,
    ) -> Checker {
        Checker {
            now_ms,
            history: History::new(trace),
            flush_always,
            taints,
            tps: Vec::new(),
            tp_ids: BTreeMap::new(),
            registry: BTreeMap::new(),
            parts: BTreeMap::new(),
            topics: BTreeMap::new(),
            checks: 0,
            outcomes: Outcomes::default(),
            violation: None,
            groups: Default::default(),
            idempotence: Default::default(),
            times: BTreeMap::new(),
        }
    }

    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    pub fn checks(&self) -> u64 {
        self.checks
    }

    pub fn outcomes(&self) -> Outcomes {
        self.outcomes
    }

    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    fn tp_id(&mut self, tp: &Tp) -> u32 {
        if let Some(id) = self.tp_ids.get(tp) {
            return *id;
        }
        let id = self.tps.len() as u32;
        self.tps.push(tp.clone());
        self.tp_ids.insert(tp.clone(), id);
        self.parts.entry(id).or_default();
        id
    }

    fn tainted(&self, tp: u32) -> bool {
        let (t, p) = &self.tps[tp as usize];
        self.taints.lock().unwrap_or_else(|e| e.into_inner()).contains(t, *p)
    }

    pub(crate) fn tainted_tp(&self, topic: &str, partition: i32) -> bool {
        self.taints.lock().unwrap_or_else(|e| e.into_inner()).contains(topic, partition)
    }

    pub(crate) fn flush_always(&self) -> bool {
        self.flush_always
    }

    pub(crate) fn bump_checks(&mut self) {
        self.checks += 1;
    }

    /// Loss events so far: a broker stamps its answers with it.
    pub fn loss_epoch(&self) -> u64 {
        self.taints.lock().unwrap_or_else(|e| e.into_inner()).losses
    }

    fn part(&mut self, tp: u32) -> &mut Part {
        self.parts.entry(tp).or_default()
    }

    /// Records a node-wide or partition event in the history.
    pub fn note(&mut self, tp: Option<&Tp>, offsets: Option<(u64, u64)>, text: String) {
        let at_ms = (self.now_ms)();
        let faults = std::mem::take(&mut self.taints.lock().unwrap_or_else(|e| e.into_inner()).events);
        for fault in faults {
            self.history.push(Event { at_ms, tp: None, offsets: None, text: fault });
        }
        self.history.push(Event { at_ms, tp: tp.cloned(), offsets, text });
    }

    fn note_id(&mut self, tp: u32, offsets: Option<(u64, u64)>, text: String) {
        let tp = self.tps[tp as usize].clone();
        self.note(Some(&tp), offsets, text);
    }

    pub(crate) fn violate(
        &mut self,
        invariant: Invariant,
        tp: Option<u32>,
        offset: Option<u64>,
        detail: String,
    ) {
        if self.violation.is_some() {
            return;
        }
        let tp = tp.map(|id| self.tps[id as usize].clone());
        self.note(tp.as_ref(), offset.map(|o| (o, o)), format!("VIOLATION of {invariant}: {detail}"));
        let slice = self.history.slice(tp.as_ref(), offset, 16, 60).iter().map(|e| e.to_string()).collect();
        let at_ms = (self.now_ms)();
        self.violation = Some(Violation { invariant, tp, offset, at_ms, detail, slice });
    }

    pub fn taints_empty(&self) -> bool {
        self.taints.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    pub fn count_refused(&mut self) {
        self.outcomes.refused += 1;
    }

    /// Unsynced records may vanish now without a crash (a poisoned log is
    /// reopened: what its failed fsync dropped is gone).
    pub fn unsynced_may_be_lost(&mut self) {
        self.taints.lock().unwrap_or_else(|e| e.into_inner()).losses += 1;
    }

    /// A violation found outside the checker's own bookkeeping (by the
    /// harness or a node).
    pub fn report(&mut self, invariant: Invariant, detail: String) {
        self.violate(invariant, None, None, detail);
    }

    /// Hash of every partition's acknowledged contents: what the run ended
    /// with, for "same seed, same hash".
    pub fn state_hash(&self) -> u64 {
        let mut h = fnv1a(b"ringtail-sim");
        for n in self.group_hash_parts() {
            h = fnv1a_extend(h, &n.to_be_bytes());
        }
        for (id, part) in &self.parts {
            let (t, p) = &self.tps[*id as usize];
            h = fnv1a_extend(h, t.as_bytes());
            h = fnv1a_extend(h, &p.to_be_bytes());
            h = fnv1a_extend(h, &part.max_hw.to_be_bytes());
            h = fnv1a_extend(h, &part.max_lso.to_be_bytes());
            for (offset, k) in &part.known {
                h = fnv1a_extend(h, &offset.to_be_bytes());
                h = fnv1a_extend(h, &k.key.producer.to_be_bytes());
                h = fnv1a_extend(h, &k.key.seq.to_be_bytes());
                h = fnv1a_extend(h, &[k.required as u8]);
            }
        }
        h
    }

    /// Offsets known per partition, for the summary.
    pub fn known_records(&self) -> usize {
        self.parts.values().map(|p| p.known.len()).sum()
    }
}

#[cfg(test)]
mod tests;
