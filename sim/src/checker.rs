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

use crate::history::{Event, History};
use crate::taint::Taints;
use crate::values::{fingerprint, fnv1a, fnv1a_extend, parse_key, RecordKey};
use bytes::Bytes;
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::records::iter_records;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

pub type Tp = (String, i32);

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
    /// `Taints::losses` when learned: a later loss event may take it, if
    /// it did not have to be durable.
    epoch: u64,
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
}

/// The records of some batches: `(offset, value)`, or why they do not decode.
pub fn decode_batches(batches: &[Bytes]) -> Result<Vec<(u64, Bytes)>, String> {
    let mut out = Vec::new();
    for bytes in batches {
        for item in BatchScanner::new(bytes) {
            let (at, header) = item.map_err(|(at, e)| format!("bad batch at byte {at}: {e}"))?;
            let batch = &bytes[at..at + header.size_bytes()];
            let (header, records) = iter_records(batch).map_err(|e| format!("bad records: {e}"))?;
            for record in records {
                let record = record.map_err(|e| format!("bad record: {e}"))?;
                let offset = record.offset(&header);
                let offset = u64::try_from(offset).map_err(|_| format!("negative offset {offset}"))?;
                out.push((offset, record.value.unwrap_or_default()));
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

    /// Declares a topic the workload will use.
    pub fn topic_planned(&mut self, name: &str, partitions: u32, retention: bool) {
        self.topics.entry(name.to_string()).or_default();
        for p in 0..partitions as i32 {
            let id = self.tp_id(&(name.to_string(), p));
            self.part(id).retention = retention;
        }
    }

    pub fn topic_created(&mut self, name: &str) {
        self.topics.entry(name.to_string()).or_default().created_acked = true;
        self.note(None, None, format!("topic {name} created (acknowledged)"));
    }

    /// The broker executed a create of `name` (whatever its response's
    /// fate): a topic deleted before is legitimately back.
    pub fn topic_created_by_broker(&mut self, name: &str) {
        let life = self.topics.entry(name.to_string()).or_default();
        if life.deleted_acked {
            life.deleted_acked = false;
            let ids: Vec<u32> =
                self.tp_ids.iter().filter(|(tp, _)| tp.0 == name).map(|(_, id)| *id).collect();
            for id in ids {
                self.part(id).deleted = false;
            }
            self.note(None, None, format!("topic {name} created again by a late create request"));
        }
    }

    pub fn topic_delete_issued(&mut self, name: &str) {
        self.topics.entry(name.to_string()).or_default().delete_issued = true;
    }

    /// An acknowledged delete: the topic's records are gone by design.
    pub fn topic_deleted(&mut self, name: &str) {
        self.topics.entry(name.to_string()).or_default().deleted_acked = true;
        let ids: Vec<u32> = self.tp_ids.iter().filter(|(tp, _)| tp.0 == name).map(|(_, id)| *id).collect();
        for id in ids {
            let part = self.part(id);
            part.deleted = true;
            part.known.clear();
        }
        self.note(None, None, format!("topic {name} deleted (acknowledged)"));
    }

    /// Topics the broker has after a restart.
    pub fn recovered_topics(&mut self, names: &[String]) {
        let lives: Vec<(String, TopicLife)> = self.topics.iter().map(|(n, l)| (n.clone(), *l)).collect();
        for (name, life) in lives {
            self.checks += 1;
            let present = names.contains(&name);
            if life.created_acked && !life.delete_issued && !present {
                self.violate(
                    Invariant::TopicLifecycle,
                    None,
                    None,
                    format!("topic {name} was created (acknowledged) but is gone after a restart"),
                );
            }
            if life.deleted_acked && present {
                self.violate(
                    Invariant::TopicLifecycle,
                    None,
                    None,
                    format!("topic {name} was deleted (acknowledged) but is back after a restart"),
                );
            }
        }
    }

    fn check_not_deleted(&mut self, tp: u32, what: &str) {
        self.checks += 1;
        if self.part(tp).deleted {
            let name = self.tps[tp as usize].0.clone();
            self.violate(
                Invariant::TopicLifecycle,
                Some(tp),
                None,
                format!("{what} succeeded on topic {name} after its delete was acknowledged"),
            );
        }
    }

    /// Registers the records of a produce before it is sent.
    pub fn produce_sent(&mut self, tp: &Tp, records: &[(RecordKey, Bytes)], acks: i8, note: bool) {
        let id = self.tp_id(tp);
        for (key, value) in records {
            self.registry.insert(*key, Sent { tp: id, fingerprint: fingerprint(value) });
        }
        if note {
            let (first, last) = (records[0].0, records[records.len() - 1].0);
            self.note_id(
                id,
                None,
                format!("produce acks={acks} sent {first}..{last} ({} records)", records.len()),
            );
        }
    }

    /// A produce response: the records got offsets `base_offset..`.
    pub fn produce_acked(
        &mut self,
        tp: &Tp,
        keys: &[RecordKey],
        acks: i8,
        base_offset: u64,
        log_start_offset: u64,
        epoch: u64,
    ) {
        let id = self.tp_id(tp);
        let last = base_offset + keys.len() as u64 - 1;
        self.note_id(
            id,
            Some((base_offset, last)),
            format!("produce acks={acks} acked {}..{}", keys[0], keys[keys.len() - 1]),
        );
        self.check_not_deleted(id, "a produce");
        self.observe_lso(id, log_start_offset);
        let required = self.flush_always && acks == -1;
        for (i, key) in keys.iter().enumerate() {
            self.learn(id, base_offset + i as u64, *key, required, How::Acked(acks), epoch);
        }
    }

    fn observe_lso(&mut self, tp: u32, lso: u64) {
        self.checks += 1;
        let tainted = self.tainted(tp);
        let part = self.part(tp);
        part.max_lso = part.max_lso.max(lso);
        if lso > 0 && !part.retention && !tainted {
            self.violate(
                Invariant::AckedNeverLost,
                Some(tp),
                Some(lso),
                format!("log start offset moved to {lso} on a topic without retention"),
            );
        }
    }

    /// Learns that `offset` holds `key`, checking it against what was known.
    /// `epoch` is the loss epoch when the broker produced the observation: a
    /// late answer from before a crash carries the epoch before it.
    fn learn(&mut self, tp: u32, offset: u64, key: RecordKey, required: bool, how: How, epoch: u64) {
        self.checks += 1;
        let part = self.part(tp);
        let fresh = Known { key, required, how, epoch };
        match part.known.get_mut(&offset) {
            Some(k) if k.key != key && !k.required && k.epoch < epoch => {
                // Never had to be durable, and unsynced data was lost since:
                // the offset was legitimately reused.
                *k = fresh;
                self.outcomes.unsynced_lost += 1;
            }
            Some(k) if k.key != key && !required && epoch < k.epoch => {
                // A late answer from before a loss that took this record.
                self.outcomes.unsynced_lost += 1;
            }
            Some(k) if k.key != key => {
                let detail = format!("offset {offset} held {} ({}), now {key} ({how})", k.key, k.how);
                self.violate(Invariant::OneValuePerOffset, Some(tp), Some(offset), detail);
            }
            Some(k) => {
                if required && !k.required {
                    k.required = true;
                    k.how = how;
                }
            }
            None => {
                part.known.insert(offset, fresh);
            }
        }
    }

    /// Checks a record served at `offset` of `tp` is one a producer wrote,
    /// undamaged, to this partition; returns its key.
    fn check_served(&mut self, tp: u32, offset: u64, value: &[u8], whence: &str) -> Option<RecordKey> {
        self.checks += 1;
        let Some(key) = parse_key(value) else {
            let head = String::from_utf8_lossy(&value[..value.len().min(24)]).into_owned();
            self.violate(
                Invariant::Recovery,
                Some(tp),
                Some(offset),
                format!("{whence} served bytes no producer wrote at offset {offset}: {head:?}"),
            );
            return None;
        };
        let Some(sent) = self.registry.get(&key).copied() else {
            self.violate(
                Invariant::Recovery,
                Some(tp),
                Some(offset),
                format!("{whence} served record {key} that was never sent"),
            );
            return None;
        };
        if sent.fingerprint != fingerprint(value) {
            self.violate(
                Invariant::Recovery,
                Some(tp),
                Some(offset),
                format!("{whence} served record {key} damaged (fingerprint differs)"),
            );
            return None;
        }
        if sent.tp != tp {
            let (t, p) = self.tps[sent.tp as usize].clone();
            self.violate(
                Invariant::OneValuePerOffset,
                Some(tp),
                Some(offset),
                format!("{whence} served record {key}, which was sent to {t}-{p}"),
            );
            return None;
        }
        Some(key)
    }

    /// Checks a reader's high watermark never goes back (flush=always: what
    /// was below it was fsynced).
    fn observe_hw(&mut self, reader: u32, tp: u32, hw: u64) {
        self.checks += 1;
        let strict = self.flush_always && !self.tainted(tp);
        let part = self.part(tp);
        let before = part.hw_by_reader.insert(reader, hw).unwrap_or(0);
        part.max_hw = part.max_hw.max(hw);
        if strict && hw < before {
            self.violate(
                Invariant::ReadStaysRead,
                Some(tp),
                Some(hw),
                format!("reader {reader} saw the high watermark go back from {before} to {hw}"),
            );
        }
    }

    /// A fetch response to reader `reader` asking for `requested`.
    #[allow(clippy::too_many_arguments)]
    pub fn fetched(
        &mut self,
        reader: u32,
        tp: &Tp,
        requested: u64,
        records: &Bytes,
        hw: u64,
        lso: u64,
        epoch: u64,
    ) {
        let id = self.tp_id(tp);
        self.check_not_deleted(id, "a fetch");
        self.observe_lso(id, lso);
        self.observe_hw(reader, id, hw);
        let decoded = match decode_batches(std::slice::from_ref(records)) {
            Ok(d) => d,
            Err(e) => {
                let detail = format!("a fetch served an invalid batch: {e}");
                self.violate(Invariant::Recovery, Some(id), Some(requested), detail);
                return;
            }
        };
        let served: Vec<&(u64, Bytes)> = decoded.iter().filter(|(o, _)| *o >= requested).collect();
        if let (Some(first), Some(last)) = (served.first(), served.last()) {
            self.note_id(
                id,
                Some((first.0, last.0)),
                format!("reader {reader} fetched from {requested}, hw={hw}"),
            );
        }
        self.checks += 1;
        if let Some((first, _)) = served.first() {
            if *first != requested {
                self.check_gap(id, requested, *first);
            }
        }
        let mut expected = served.first().map(|(o, _)| *o);
        for (offset, value) in served {
            self.checks += 1;
            if Some(*offset) != expected {
                let detail = format!("fetch offsets not dense: expected {expected:?}, got {offset}");
                self.violate(Invariant::DenseOffsets, Some(id), Some(*offset), detail);
                return;
            }
            expected = Some(offset + 1);
            if *offset >= hw {
                let detail = format!("fetch served offset {offset} at or above the high watermark {hw}");
                self.violate(Invariant::ReadStaysRead, Some(id), Some(*offset), detail);
                return;
            }
            if let Some(key) = self.check_served(id, *offset, value, "a fetch") {
                let required = self.flush_always;
                self.learn(id, *offset, key, required, How::Fetched, epoch);
            }
        }
    }

    /// A fetch at `requested` returned records from `first` on: the offsets
    /// between must be ones nobody may rely on (retention took them).
    fn check_gap(&mut self, tp: u32, requested: u64, first: u64) {
        let part = self.part(tp);
        let lost: Option<(u64, Known)> =
            part.known.range(requested..first).find(|(_, k)| k.required).map(|(o, k)| (*o, *k));
        let excused = part.retention;
        if let Some((offset, k)) = lost.filter(|_| !excused) {
            let detail = format!(
                "a fetch from {requested} skipped to {first}, past {} ({}) at {offset}",
                k.key, k.how
            );
            self.violate(Invariant::DenseOffsets, Some(tp), Some(offset), detail);
        }
    }

    /// A fetch or list-offsets error. `log_range` is given for offset out of
    /// range.
    pub fn fetch_failed(
        &mut self,
        reader: u32,
        tp: &Tp,
        requested: u64,
        code: i16,
        log_range: Option<(u64, u64)>,
    ) {
        let id = self.tp_id(tp);
        self.note_id(id, Some((requested, requested)), format!("reader {reader} fetch failed: code {code}"));
        if code == 56 && self.tainted(id) {
            self.outcomes.refused += 1;
        }
        let Some((start, end)) = log_range else { return };
        self.checks += 1;
        let strict = self.flush_always && !(self.tainted(id) && self.part(id).damage_reported);
        if requested > end && strict {
            let seen = self.part(id).hw_by_reader.get(&reader).copied().unwrap_or(0);
            if requested <= seen {
                let detail = format!(
                    "reader {reader} had read up to {requested} (hw {seen}), now the log ends at {end}"
                );
                self.violate(Invariant::ReadStaysRead, Some(id), Some(end), detail);
            }
        }
        if requested < start {
            self.observe_lso(id, start);
        }
    }

    /// A list-offsets answer: earliest (-2) or latest (-1, the HW).
    pub fn listed(&mut self, reader: u32, tp: &Tp, timestamp: i64, offset: i64) {
        let id = self.tp_id(tp);
        self.check_not_deleted(id, "a list-offsets");
        let Ok(offset) = u64::try_from(offset) else { return };
        match timestamp {
            -2 => self.observe_lso(id, offset),
            -1 => self.observe_hw(reader, id, offset),
            _ => {}
        }
    }

    /// The broker moved a log start by retention (the node tells, as it
    /// knows what its upkeep did).
    pub fn retention_moved(&mut self, tp: &Tp, lso: u64) {
        let id = self.tp_id(tp);
        let part = self.part(id);
        if lso > part.max_lso {
            part.max_lso = lso;
            self.note_id(id, Some((lso, lso)), "retention moved the log start".to_string());
        }
    }

    /// A partition as recovery left it, read whole by the harness before
    /// the broker serves. `damage_reported`: the recovery report shows a cut,
    /// deleted segments or kept corruption.
    pub fn recovered(&mut self, tp: &Tp, read: &LogRead, damage_reported: bool) {
        let id = self.tp_id(tp);
        let tainted = self.tainted(id);
        if tainted && damage_reported {
            self.part(id).damage_reported = true;
        }
        let (lso, leo) = (read.log_start, read.end);
        self.note_id(
            id,
            Some((lso, leo)),
            format!(
                "recovered: log [{lso}, {leo}){}",
                if damage_reported { ", damage reported" } else { "" }
            ),
        );
        self.observe_lso(id, lso);
        self.check_lost(id, lso, leo, tainted && damage_reported);
        if self.violation.is_some() {
            return;
        }
        let (readable_end, error) = match &read.error {
            Some((at, e)) => (*at, Some(e.clone())),
            None => (leo, None),
        };
        if let Some(e) = error {
            self.checks += 1;
            if tainted {
                self.outcomes.refused += 1;
            } else {
                let detail = format!("the recovered log cannot be read at {readable_end}: {e}");
                self.violate(Invariant::Recovery, Some(id), Some(readable_end), detail);
                return;
            }
        }
        self.check_log_contents(id, read, readable_end, How::Recovered, "recovery");
        let flush_always = self.flush_always;
        let part = self.part(id);
        if flush_always {
            part.max_hw = part.max_hw.max(leo);
        } else {
            // Without flush=always a crash may legitimately lower the HW.
            part.max_hw = leo;
            part.hw_by_reader.clear();
        }
    }

    /// Checks that what must survive is below `leo`; drops knowledge of
    /// records a crash may legitimately have taken.
    fn check_lost(&mut self, tp: u32, lso: u64, leo: u64, loss_reported: bool) {
        self.checks += 1;
        let part = self.part(tp);
        let retention = part.retention;
        let lost_required: Vec<(u64, Known)> =
            part.known.range(leo..).filter(|(_, k)| k.required).map(|(o, k)| (*o, *k)).collect();
        let max_hw = part.max_hw;
        if let Some((offset, k)) = lost_required.first().copied() {
            if !loss_reported && offset >= lso {
                let detail = format!("{} ({}) at {offset} is gone: the log ends at {leo}", k.key, k.how);
                let inv = match k.how {
                    How::Acked(_) => Invariant::AckedNeverLost,
                    How::Fetched => Invariant::ReadStaysRead,
                    How::Recovered => Invariant::Recovery,
                };
                self.violate(inv, Some(tp), Some(offset), detail);
                return;
            }
            self.outcomes.lost_reported += lost_required.len() as u64;
        }
        if self.flush_always && !loss_reported && max_hw > leo {
            let detail = format!("the high watermark was {max_hw}, the recovered log ends at {leo}");
            self.violate(Invariant::ReadStaysRead, Some(tp), Some(leo), detail);
            return;
        }
        if !retention {
            let below: Option<(u64, Known)> =
                self.part(tp).known.range(..lso).find(|(_, k)| k.required).map(|(o, k)| (*o, *k));
            if let Some((offset, k)) = below.filter(|_| !loss_reported) {
                let detail = format!("{} ({}) at {offset} is below the log start {lso}", k.key, k.how);
                self.violate(Invariant::AckedNeverLost, Some(tp), Some(offset), detail);
                return;
            }
        }
        let dropped = self.part(tp).known.split_off(&leo).len() as u64;
        self.outcomes.unsynced_lost += dropped.saturating_sub(lost_required.len() as u64);
        if loss_reported {
            let part = self.part(tp);
            part.max_hw = part.max_hw.min(leo);
            part.hw_by_reader.clear();
        }
    }

    /// Checks a whole read of a log: dense offsets from the log start up to
    /// `end`, every record valid and consistent with what is known.
    fn check_log_contents(&mut self, tp: u32, read: &LogRead, end: u64, how: How, whence: &str) {
        let decoded = match decode_batches(&read.batches) {
            Ok(d) => d,
            Err(e) => {
                self.violate(
                    Invariant::Recovery,
                    Some(tp),
                    None,
                    format!("{whence} read an invalid batch: {e}"),
                );
                return;
            }
        };
        let mut expected = read.log_start;
        for (offset, value) in decoded.iter().filter(|(o, _)| *o >= read.log_start) {
            self.checks += 1;
            if *offset >= end {
                break;
            }
            if *offset != expected {
                let detail = format!("{whence} found offset {offset} where {expected} was expected");
                self.violate(Invariant::DenseOffsets, Some(tp), Some(expected), detail);
                return;
            }
            expected += 1;
            if let Some(key) = self.check_served(tp, *offset, value, whence) {
                let (required, epoch) = (self.flush_always, self.loss_epoch());
                self.learn(tp, *offset, key, required, how, epoch);
            }
        }
        self.checks += 1;
        if expected < end && read.error.is_none() {
            let detail = format!("{whence} read stopped at {expected}, before the end {end}");
            self.violate(Invariant::Recovery, Some(tp), Some(expected), detail);
        }
    }

    /// Recovery run twice on the same disk must agree: the second open finds
    /// nothing to repair and the same log.
    pub fn recovery_repeated(
        &mut self,
        tp: &Tp,
        first: (u64, u64),
        second: (u64, u64),
        second_repaired: bool,
    ) {
        let id = self.tp_id(tp);
        self.checks += 1;
        if first != second || second_repaired {
            let detail = format!(
                "recovery is not idempotent: first gave [{}, {}), a second open gave [{}, {}){}",
                first.0,
                first.1,
                second.0,
                second.1,
                if second_repaired { " and repaired again" } else { "" }
            );
            self.violate(Invariant::Recovery, Some(id), Some(second.1), detail);
        }
    }

    /// A final read by the verifier after healing. Safety problems are
    /// violations at once; `Err` says what has not converged yet.
    pub fn converged(&mut self, tp: &Tp, read: &LogRead, probe_ok: bool) -> Result<(), String> {
        let id = self.tp_id(tp);
        if self.part(id).deleted {
            return Ok(());
        }
        let tainted = self.tainted(id);
        if let Some((at, e)) = &read.error {
            if tainted {
                self.outcomes.refused += 1;
                return Ok(()); // refused safely: allowed beyond the budget
            }
            return Err(format!("{}-{} not served: read at {at}: {e}", tp.0, tp.1));
        }
        if !probe_ok && !tainted {
            return Err(format!("{}-{} refuses produces", tp.0, tp.1));
        }
        let (lso, hw) = (read.log_start, read.end);
        self.check_log_contents(id, read, hw, How::Fetched, "the verifier");
        let flush_always = self.flush_always;
        let part = self.part(id);
        if flush_always && hw < part.max_hw {
            return Err(format!("{}-{} high watermark {hw} below {} seen before", tp.0, tp.1, part.max_hw));
        }
        let missing = part.known.range(hw..).find(|(o, k)| k.required && **o >= lso).map(|(o, k)| (*o, *k));
        if let Some((offset, k)) = missing {
            return Err(format!(
                "{}-{}: {} ({}) at {offset} not readable (hw {hw})",
                tp.0, tp.1, k.key, k.how
            ));
        }
        Ok(())
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
mod tests {
    use super::*;
    use crate::values::make_value;
    use ringtail_engine::log::records::BatchBuilder;

    fn checker(flush_always: bool) -> (Checker, Arc<Mutex<Taints>>) {
        let taints = Arc::new(Mutex::new(Taints::default()));
        (Checker::new(flush_always, taints.clone(), false, Box::new(|| 0)), taints)
    }

    fn tp() -> Tp {
        ("t".to_string(), 0)
    }

    /// Registers `n` records of producer 1 from `seq` and returns them.
    fn send(c: &mut Checker, seq: u64, n: u64) -> Vec<(RecordKey, Bytes)> {
        let records: Vec<(RecordKey, Bytes)> = (seq..seq + n)
            .map(|s| (RecordKey { producer: 1, seq: s }, make_value(RecordKey { producer: 1, seq: s }, 20)))
            .collect();
        c.produce_sent(&tp(), &records, -1, false);
        records
    }

    /// A batch holding `records` at offsets from `base`.
    fn batch(base: u64, records: &[(RecordKey, Bytes)]) -> Bytes {
        let mut b = BatchBuilder::new(base as i64, 0);
        for (_, v) in records {
            b.push(None, Some(v.clone()), 0);
        }
        b.build()
    }

    fn keys(records: &[(RecordKey, Bytes)]) -> Vec<RecordKey> {
        records.iter().map(|(k, _)| *k).collect()
    }

    /// An acks=all record missing after recovery is a violation of 1; the
    /// same loss in a tainted partition with damage reported is accepted.
    #[test]
    fn acked_record_lost_at_recovery() {
        let (mut c, taints) = checker(true);
        c.topic_planned("t", 1, false);
        let r = send(&mut c, 0, 3);
        c.produce_acked(&tp(), &keys(&r), -1, 0, 0, 0);
        let read = LogRead { log_start: 0, end: 2, batches: vec![batch(0, &r[..2])], error: None };
        c.recovered(&tp(), &read, false);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::AckedNeverLost));

        let (mut c, _) = checker(true);
        taints.lock().unwrap().partitions.insert(tp());
        c.taints = taints;
        let r = send(&mut c, 0, 3);
        c.produce_acked(&tp(), &keys(&r), -1, 0, 0, 0);
        c.recovered(&tp(), &read, true);
        assert!(c.violation().is_none());
        assert_eq!(c.outcomes().lost_reported, 1);
    }

    /// Two values at one offset violate 2, unless the first never had to be
    /// durable and unsynced data was lost since.
    #[test]
    fn one_value_per_offset() {
        let (mut c, taints) = checker(false);
        let a = send(&mut c, 0, 1);
        let b = send(&mut c, 1, 1);
        c.produce_acked(&tp(), &keys(&a), 1, 5, 0, 0);
        taints.lock().unwrap().losses += 1;
        c.produce_acked(&tp(), &keys(&b), 1, 5, 0, 1);
        assert!(c.violation().is_none(), "reuse after a loss is allowed under flush != always");
        let d = send(&mut c, 2, 1);
        c.produce_acked(&tp(), &keys(&d), 1, 5, 0, 1);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::OneValuePerOffset));
    }

    /// Fetches must be dense, below the HW, of records a producer sent.
    #[test]
    fn fetch_checks() {
        let (mut c, _) = checker(true);
        let r = send(&mut c, 0, 3);
        c.fetched(0, &tp(), 0, &batch(0, &r), 3, 0, 0);
        assert!(c.violation().is_none());
        c.fetched(0, &tp(), 0, &batch(0, &r), 2, 0, 0);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::ReadStaysRead));

        let (mut c, _) = checker(true);
        let r = send(&mut c, 0, 2);
        let mut forged = r.clone();
        forged[1].1 = make_value(RecordKey { producer: 1, seq: 1 }, 21);
        c.fetched(0, &tp(), 0, &batch(0, &forged), 2, 0, 0);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::Recovery));
    }

    /// A reader's high watermark never goes back under flush=always.
    #[test]
    fn high_watermark_monotonic() {
        let (mut c, _) = checker(true);
        c.listed(0, &tp(), -1, 10);
        c.listed(1, &tp(), -1, 4);
        assert!(c.violation().is_none(), "readers are independent");
        c.listed(0, &tp(), -1, 9);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::ReadStaysRead));
    }

    /// A second recovery that differs from the first violates 5.
    #[test]
    fn recovery_idempotent() {
        let (mut c, _) = checker(true);
        c.recovery_repeated(&tp(), (0, 5), (0, 5), false);
        assert!(c.violation().is_none());
        c.recovery_repeated(&tp(), (0, 5), (0, 5), true);
        assert_eq!(c.violation().map(|v| v.invariant), Some(Invariant::Recovery));
    }
}
