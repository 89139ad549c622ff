//! The coordinator under test, the `__consumer_offsets` log it persists
//! to, the client slots, and the checks.

use super::ops::{metadata, size, Op, OpKind};
use super::{CFG_INITIAL_DELAY, CFG_SMALL_GROUPS, T0};
use crate::exec::block_on;
use bytes::Bytes;
use ringtail_engine::broker::ErrorCode;
use ringtail_engine::clock::ManualClock;
use ringtail_engine::group::records::{build_batch, replay_batch};
use ringtail_engine::group::{
    CommitOffset, CommitRequest, Coordinator, GroupConfig, GroupState, HeartbeatRequest, JoinRequest,
    JoinResponse, LeavingMember, OffsetsRecord, Persist, Shard, SyncRequest, SyncResponse, MEMBER_BYTES_MAX,
};
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::records::iter_records;
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{AppendError, FlushPolicy, Log, LogCache, LogConfig};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The one offsets partition the coordinator leads.
const P: i32 = 0;
const GROUPS: [&str; 2] = ["g", "h"];
const SESSIONS_MS: [i32; 4] = [10_000, 45_000, 500, 1_800_001];
const REBALANCES_MS: [i32; 4] = [30_000, 300_000, 0, -1];
const TICKS_MS: [i64; 8] = [0, 1_000, 3_001, 10_001, 45_001, 300_001, 1_800_001, 7 * 86_400_000 + 1];
const COMMIT_METADATA: [Option<usize>; 8] =
    [None, Some(0), Some(10), Some(100), Some(4096), Some(4097), Some(32_767), Some(40_000)];

/// What one client knows of its membership, from the answers it got.
#[derive(Clone, Debug, Default)]
struct Slot {
    member_id: String,
    generation: i32,
    instance: Option<String>,
    /// The members to assign, when its last join made it the leader.
    leader_of: Vec<String>,
}

enum Waiting {
    Join(usize, oneshot::Receiver<JoinResponse>),
    Sync(usize, oneshot::Receiver<SyncResponse>),
}

pub(super) struct Driver {
    pub(super) step: usize,
    config: GroupConfig,
    coordinator: Coordinator,
    clock: Arc<ManualClock>,
    log: Arc<Log<MemDisk>>,
    now: i64,
    slots: [Slot; 4],
    waiting: Vec<Waiting>,
    loads: u64,
}

fn offsets_log_config() -> LogConfig {
    // As `broker::groups` creates `__consumer_offsets` (max.message.bytes
    // is the default, as in Kafka), flushed never: durability is not
    // what this target looks at.
    LogConfig {
        segment_bytes: 104_857_600,
        retention_ms: None,
        retention_bytes: None,
        flush: FlushPolicy::Never,
        ..LogConfig::default()
    }
}

impl Driver {
    pub(super) fn new(cfg: u8) -> Driver {
        let config = GroupConfig {
            offsets_topic_partitions: 1,
            initial_rebalance_delay_ms: if cfg & CFG_INITIAL_DELAY != 0 { 3_000 } else { 0 },
            max_group_size: if cfg & CFG_SMALL_GROUPS != 0 {
                2
            } else {
                GroupConfig::default().max_group_size
            },
            ..GroupConfig::default()
        };
        let disk = Arc::new(MemDisk::new());
        let clock = Arc::new(ManualClock::new(T0));
        let cache = LogCache::new(4 << 20);
        let dir = PathBuf::from("/fuzz-groups/__consumer_offsets-0");
        let (log, _) = block_on(Log::open(
            disk,
            dir,
            offsets_log_config(),
            clock.clone(),
            LogCheckpoint::default(),
            &cache,
        ))
        .expect("open the offsets log");
        let mut coordinator = Coordinator::new(config);
        let token = coordinator.begin_load(P).expect("a first load");
        coordinator.finish_load(P, token, Some(Shard::new(config, 1)));
        Driver {
            step: 0,
            config,
            coordinator,
            clock,
            log: Arc::new(log),
            now: T0,
            slots: Default::default(),
            waiting: Vec::new(),
            loads: 1,
        }
    }

    fn fail(&self, what: std::fmt::Arguments<'_>) -> ! {
        panic!("step {}: {what}", self.step)
    }

    fn shard(&mut self) -> &mut Shard {
        self.coordinator.shard(P).expect("the offsets partition is loaded")
    }

    pub(super) fn apply(&mut self, op: &Op) {
        match op.kind {
            OpKind::Join => self.join(op),
            OpKind::Sync => self.sync(op),
            OpKind::Heartbeat => {
                let slot = self.slots[op.slot()].clone();
                let req = HeartbeatRequest {
                    group_id: GROUPS[op.group()].into(),
                    generation: slot.generation + i32::from(op.a >> 3 & 1),
                    member_id: slot.member_id,
                    instance_id: slot.instance,
                };
                let now = self.now;
                let _ = self.shard().heartbeat(&req, now);
            }
            OpKind::Leave => {
                let slot = self.slots[op.slot()].clone();
                let by_instance = op.a >> 3 & 1 != 0 && slot.instance.is_some();
                let leaving = LeavingMember {
                    member_id: if by_instance { String::new() } else { slot.member_id },
                    instance_id: if by_instance { slot.instance } else { None },
                    reason: None,
                };
                let now = self.now;
                let (_, fx) = self.shard().leave(GROUPS[op.group()], &[leaving], now);
                let persists = self.coordinator.deliver(fx);
                self.drive(persists);
            }
            OpKind::Commit => self.commit(op),
            OpKind::Tick => self.tick(TICKS_MS[usize::from(op.a & 7)]),
            OpKind::Delete => {
                let group = GROUPS[op.group()];
                let now = self.now;
                let persist = if op.flags & 1 == 0 {
                    self.shard().delete(group, now).ok()
                } else {
                    let partitions = [("t0".to_string(), 0), ("t1".to_string(), 1)];
                    self.shard().delete_offsets(group, &partitions).ok().and_then(|p| p.persist)
                };
                self.drive(persist.into_iter().collect());
            }
            OpKind::Reload => {
                let replayed = self.check_reload();
                if op.flags & 1 != 0 {
                    // A failover: the parked callers are told
                    // NOT_COORDINATOR, the replayed groups serve on.
                    self.coordinator.unload(P);
                    let token = self.coordinator.begin_load(P).expect("unloaded");
                    self.coordinator.finish_load(P, token, Some(replayed));
                }
            }
        }
        self.poll();
    }

    fn tick(&mut self, ms: i64) {
        self.now += ms;
        self.clock.set_ms(self.now);
        let persists = self.coordinator.tick(P, self.now);
        self.drive(persists);
    }

    fn join(&mut self, op: &Op) {
        let s = op.slot();
        let slot = self.slots[s].clone();
        let group = GROUPS[op.group()];
        let instance = (op.a >> 3 & 1 != 0).then(|| format!("i{s}"));
        let member_id = match (op.flags & 1 != 0, op.a >> 4 & 1 != 0) {
            (_, true) => "bogus".to_string(),
            (true, false) => String::new(),
            (false, false) => slot.member_id.clone(),
        };
        let md = metadata(size(op.b), op.b >> 3 & 1 != 0, op.b >> 4, op.c);
        let mut protocols = vec![("range".to_string(), md.clone())];
        if op.a >> 7 != 0 {
            protocols.push(("roundrobin".to_string(), md));
        }
        if op.flags >> 1 & 1 != 0 {
            protocols.reverse();
        }
        let session = SESSIONS_MS[usize::from(op.b >> 6)];
        let req = JoinRequest {
            group_id: group.into(),
            member_id,
            instance_id: instance.clone(),
            client_id: format!("c{s}"),
            client_host: format!("/10.0.0.{s}"),
            session_timeout_ms: session,
            rebalance_timeout_ms: REBALANCES_MS[usize::from(op.c & 3)],
            protocol_type: if op.a >> 5 & 1 != 0 { "connect" } else { "consumer" }.into(),
            protocols,
            require_known_member_id: op.a >> 6 & 1 != 0,
            reason: None,
        };
        self.slots[s].instance = instance;
        let oversized = req.protocols.iter().any(|(_, m)| m.len() > MEMBER_BYTES_MAX);
        let before = self.group_shape(group);
        let (mut rx, persists) = self.coordinator.join(P, req, self.now).expect("loaded");
        self.drive(persists);
        if oversized {
            let answer =
                rx.try_recv().unwrap_or_else(|e| self.fail(format_args!("oversized join not answered: {e}")));
            let session_ok =
                (self.config.min_session_timeout_ms..=self.config.max_session_timeout_ms).contains(&session);
            let want = if session_ok { ErrorCode::InvalidRequest } else { ErrorCode::InvalidSessionTimeout };
            if answer.error != want {
                self.fail(format_args!(
                    "a join with metadata over the cap answered {:?}, not {want:?}",
                    answer.error
                ));
            }
            if self.group_shape(group) != before {
                self.fail(format_args!("a refused oversized join changed the group"));
            }
            self.answered_join(s, answer);
        } else {
            self.waiting.push(Waiting::Join(s, rx));
        }
    }

    fn sync(&mut self, op: &Op) {
        let s = op.slot();
        let slot = self.slots[s].clone();
        let group = GROUPS[op.group()];
        let mut members = slot.leader_of.clone();
        if op.a >> 5 & 1 != 0 {
            members.push("unknown".into());
        }
        let assignments: Vec<(String, Bytes)> = members
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let bits = if i == 0 { op.b >> 3 } else { op.b };
                (m, metadata(size(bits), false, 0, op.c))
            })
            .collect();
        let oversized = assignments.iter().any(|(_, a)| a.len() > MEMBER_BYTES_MAX);
        let req = SyncRequest {
            group_id: group.into(),
            generation: slot.generation + i32::from(op.a >> 3 & 1),
            member_id: slot.member_id.clone(),
            instance_id: slot.instance.clone(),
            protocol_type: (op.flags & 1 == 0).then(|| "consumer".into()),
            protocol_name: (op.a >> 4 & 1 != 0).then(|| "bogus".into()),
            assignments,
        };
        // Nothing wrong with it but its size: INVALID_REQUEST is the answer.
        let only_size = self.shard().group(group).is_some_and(|g| {
            g.members.contains_key(&req.member_id)
                && g.generation == req.generation
                && !g.is_static_fenced(req.instance_id.as_deref(), &req.member_id)
        });
        let before = self.group_shape(group);
        let (mut rx, persists) = self.coordinator.sync(P, req, self.now).expect("loaded");
        self.drive(persists);
        if oversized {
            let answer =
                rx.try_recv().unwrap_or_else(|e| self.fail(format_args!("oversized sync not answered: {e}")));
            if answer.error == ErrorCode::None || (only_size && answer.error != ErrorCode::InvalidRequest) {
                self.fail(format_args!("a sync with an assignment over the cap answered {:?}", answer.error));
            }
            if self.group_shape(group) != before {
                self.fail(format_args!("a refused oversized sync changed the group"));
            }
        } else {
            self.waiting.push(Waiting::Sync(s, rx));
        }
    }

    fn commit(&mut self, op: &Op) {
        let slot = self.slots[op.slot()].clone();
        let simple = op.a >> 3 & 1 != 0;
        let count = usize::from(op.b & 3) + 1;
        let metadata = COMMIT_METADATA[usize::from(op.b >> 2 & 7)];
        let offsets: Vec<CommitOffset> = (0..count)
            .map(|k| CommitOffset {
                topic: if k == 3 && op.flags & 2 != 0 { String::new() } else { format!("t{k}") },
                partition: k as i32,
                offset: i64::from(op.c) + k as i64,
                leader_epoch: -1,
                metadata: metadata.map(|n| "m".repeat(n)),
            })
            .collect();
        let req = CommitRequest {
            group_id: GROUPS[op.group()].into(),
            generation: if simple { -1 } else { slot.generation + i32::from(op.a >> 4 & 1) },
            member_id: if simple { String::new() } else { slot.member_id },
            instance_id: if simple { None } else { slot.instance },
            offsets,
        };
        let now = self.now;
        let max = self.config.offset_metadata_max_bytes;
        let Ok(plan) = self.shard().commit(&req, now) else { return };
        for (o, outcome) in req.offsets.iter().zip(&plan.outcomes) {
            let too_large = o.metadata.as_ref().is_some_and(|m| m.len() > max);
            if too_large && *outcome != Err(ErrorCode::OffsetMetadataTooLarge) {
                self.fail(format_args!(
                    "offset metadata of {} bytes: {outcome:?}",
                    o.metadata.as_ref().unwrap().len()
                ));
            }
        }
        self.drive(plan.persist.into_iter().collect());
    }

    /// Persists records in order, as `broker::groups` does, and hands the
    /// completions back (which may ask for more).
    fn drive(&mut self, persists: Vec<Persist>) {
        let mut queue: VecDeque<Persist> = persists.into();
        while let Some(Persist { records, then }) = queue.pop_front() {
            let result = self.append(&records);
            let more = self.coordinator.persisted(P, then, result, self.now);
            queue.extend(more);
        }
    }

    /// Appends one batch of records; checks they read back as written.
    fn append(&mut self, records: &[OffsetsRecord]) -> Result<(), ErrorCode> {
        let batch = build_batch(records, self.now).unwrap_or_else(|e| {
            self.fail(format_args!("records the coordinator asked for do not encode: {e}"))
        });
        let info = match block_on(self.log.append(batch, 0)) {
            Ok(info) => info,
            // Kafka's mapping of MESSAGE_TOO_LARGE for group records.
            Err(AppendError::BatchTooLarge { .. }) => return Err(ErrorCode::UnknownServerError),
            Err(e) => self.fail(format_args!("appending group records: {e}")),
        };
        let read = block_on(self.log.read(info.base_offset, 1, None)).expect("read the records back");
        let (_, h) = BatchScanner::new(&read.records).next().expect("a batch").expect("a valid batch");
        let (_, iter) = iter_records(&read.records[..h.size_bytes()]).expect("records");
        let mut n = 0;
        for (i, r) in iter.enumerate() {
            let r = r.unwrap_or_else(|e| self.fail(format_args!("record {i} read back: {e}")));
            let decoded = OffsetsRecord::decode(r.key, r.value)
                .unwrap_or_else(|e| self.fail(format_args!("record {i} does not decode: {e}")));
            if records.get(i) != Some(&decoded) {
                self.fail(format_args!("record {i} decodes to another record"));
            }
            n += 1;
        }
        assert_eq!(n, records.len(), "records read back");
        Ok(())
    }

    /// Hands out every answer that has arrived.
    fn poll(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for w in waiting {
            match w {
                Waiting::Join(s, mut rx) => match rx.try_recv() {
                    Ok(answer) => self.answered_join(s, answer),
                    Err(oneshot::error::TryRecvError::Empty) => self.waiting.push(Waiting::Join(s, rx)),
                    Err(e) => self.fail(format_args!("a JoinGroup was dropped unanswered: {e}")),
                },
                Waiting::Sync(s, mut rx) => match rx.try_recv() {
                    Ok(answer) => {
                        if crate::exec::tracing() {
                            eprintln!(
                                "  slot {s} sync: {:?}, {} bytes",
                                answer.error,
                                answer.assignment.len()
                            );
                        }
                        if answer.assignment.len() > MEMBER_BYTES_MAX {
                            self.fail(format_args!(
                                "an assignment of {} bytes handed out",
                                answer.assignment.len()
                            ));
                        }
                    }
                    Err(oneshot::error::TryRecvError::Empty) => self.waiting.push(Waiting::Sync(s, rx)),
                    Err(e) => self.fail(format_args!("a SyncGroup was dropped unanswered: {e}")),
                },
            }
        }
    }

    fn answered_join(&mut self, s: usize, answer: JoinResponse) {
        if crate::exec::tracing() {
            eprintln!(
                "  slot {s} join: {:?} gen {} id {} members {}",
                answer.error,
                answer.generation,
                answer.member_id,
                answer.members.len()
            );
        }
        let slot = &mut self.slots[s];
        match answer.error {
            ErrorCode::None => {
                slot.member_id = answer.member_id;
                slot.generation = answer.generation;
                slot.leader_of = answer.members.into_iter().map(|m| m.member_id).collect();
            }
            ErrorCode::MemberIdRequired => slot.member_id = answer.member_id,
            ErrorCode::UnknownMemberId => slot.member_id.clear(),
            _ => {}
        }
    }

    /// What a refused request must not change.
    fn group_shape(&mut self, group: &str) -> Option<(GroupState, i32, Vec<String>, Vec<String>)> {
        self.shard().group(group).map(|g| {
            (
                g.state,
                g.generation,
                g.members.keys().cloned().collect(),
                g.pending_members.keys().cloned().collect(),
            )
        })
    }

    /// No member holds metadata or an assignment over the cap.
    pub(super) fn check_members(&mut self) {
        let step = self.step;
        for g in self.shard().groups() {
            for m in g.members.values() {
                let biggest = m.protocols.iter().map(|(_, md)| md.len()).max().unwrap_or(0);
                assert!(
                    biggest <= MEMBER_BYTES_MAX && m.assignment.len() <= MEMBER_BYTES_MAX,
                    "step {step}: member {} of {} holds {biggest} bytes of metadata, {} of assignment",
                    m.id,
                    g.id,
                    m.assignment.len()
                );
            }
        }
    }

    /// The groups the offsets log gives, loaded as a coordinator loads them.
    fn replay(&mut self) -> Shard {
        self.loads += 1;
        let mut shard = Shard::new(self.config, self.loads);
        let mut offset = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        while offset < end {
            let read = block_on(self.log.read(offset, 1 << 20, None)).expect("read the offsets log");
            let mut advanced = false;
            for (at, h) in BatchScanner::new(&read.records).map_while(Result::ok) {
                replay_batch(&mut shard, &read.records[at..at + h.size_bytes()], self.now);
                offset = h.next_offset();
                advanced = true;
            }
            assert!(advanced, "no batch read at offset {offset}");
        }
        shard.finish_load(self.now);
        shard
    }

    /// A reload gives the same groups; returns the reloaded shard.
    pub(super) fn check_reload(&mut self) -> Shard {
        let replayed = self.replay();
        let step = self.step;
        let live = self.shard();
        for r in replayed.groups() {
            assert!(live.group(&r.id).is_some(), "step {step}: group {} reloaded but gone", r.id);
        }
        for g in live.groups() {
            let id = &g.id;
            let offsets = live.fetch_offsets(id, None).expect("a group id");
            let reloaded = replayed.fetch_offsets(id, None).expect("a group id");
            assert_eq!(offsets, reloaded, "step {step}: group {id}: committed offsets reload differently");
            let compare = match g.state {
                GroupState::Stable => true,
                GroupState::Empty => g.protocol_type.is_some(),
                _ => false,
            };
            if !compare {
                continue;
            }
            let Some(r) = replayed.group(id) else {
                panic!(
                    "step {step}: {:?} group {id} (generation {}) is not in the log",
                    g.state, g.generation
                )
            };
            let (a, b) = (summary(g), summary(r));
            assert!(
                a == b,
                "step {step}: group {id} reloads differently:\n  live     {a:?}\n  reloaded {b:?}"
            );
        }
        replayed
    }

    /// The timers run out; then nobody may be left waiting.
    pub(super) fn finish(&mut self) {
        for _ in 0..10 {
            self.tick(2_000_000);
            self.poll();
        }
        let parked = self.coordinator.waiting();
        if parked != 0 || !self.waiting.is_empty() {
            self.fail(format_args!(
                "{parked} callers still parked, {} requests unanswered, after the timers ran out",
                self.waiting.len()
            ));
        }
    }
}

/// A group as a reload must give it back (sizes and a hash of the bytes
/// stand for metadata and assignments, to keep failure messages short).
type MemberSummary = (String, Option<String>, String, String, i32, i32, (usize, u32), (usize, u32));

/// A group's persisted shape: state, generation, protocol type and name,
/// leader, static members, members.
type GroupSummary = (
    GroupState,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<(String, String)>,
    Vec<MemberSummary>,
);

fn summary(g: &ringtail_engine::group::Group) -> GroupSummary {
    let protocol = g.protocol.clone().unwrap_or_default();
    let digest = |b: &Bytes| (b.len(), crc32c::crc32c(b));
    let members = g
        .members
        .values()
        .map(|m| {
            (
                m.id.clone(),
                m.instance_id.clone(),
                m.client_id.clone(),
                m.client_host.clone(),
                m.session_timeout_ms,
                m.rebalance_timeout_ms,
                digest(&m.metadata(&protocol)),
                digest(&m.assignment),
            )
        })
        .collect();
    let statics = g.static_members.iter().map(|(i, m)| (i.clone(), m.clone())).collect();
    (g.state, g.generation, g.protocol_type.clone(), g.protocol.clone(), g.leader.clone(), statics, members)
}
