//! The sans-IO group state machine under random sequences of join, sync,
//! heartbeat, leave, commit, timer ticks and (possibly failing, possibly
//! reordered) persistence completions from a few members, two of them
//! static. A checker asserts the design's invariants 1-5 after every step,
//! and that every assignment handed out in a generation comes from the one
//! persisted leader sync of that generation.

use bytes::Bytes;
use proptest::prelude::*;
use ringtail_engine::broker::ErrorCode;
use ringtail_engine::group::{
    CommitOffset, CommitRequest, Completion, Effects, GroupConfig, GroupState, HeartbeatRequest, JoinRequest,
    JoinResponse, LeavingMember, Persist, Reply, Shard, SyncRequest, WaiterId,
};
use std::collections::{BTreeMap, BTreeSet};

const GROUP: &str = "g";
const CLIENTS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Join { client: usize, fresh: bool, require_known: bool, protocols: u8 },
    Sync { client: usize, stale: bool },
    Heartbeat { client: usize },
    Leave { client: usize, by_instance: bool },
    Commit { client: usize, stale: bool, simple: bool },
    Tick { ms: i64 },
    Persisted { pick: usize, ok: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    prop_oneof![
        4 => (client.clone(), any::<bool>(), any::<bool>(), 0..3u8)
            .prop_map(|(client, fresh, require_known, protocols)| Op::Join { client, fresh, require_known, protocols }),
        4 => (client.clone(), prop::bool::weighted(0.1)).prop_map(|(client, stale)| Op::Sync { client, stale }),
        2 => client.clone().prop_map(|client| Op::Heartbeat { client }),
        1 => (client.clone(), any::<bool>()).prop_map(|(client, by_instance)| Op::Leave { client, by_instance }),
        2 => (client, prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(client, stale, simple)| Op::Commit { client, stale, simple }),
        3 => (0..2_500i64).prop_map(|ms| Op::Tick { ms }),
        4 => (any::<usize>(), prop::bool::weighted(0.85)).prop_map(|(pick, ok)| Op::Persisted { pick, ok }),
    ]
}

#[derive(Default, Clone, Debug)]
struct Client {
    member_id: String,
    generation: i32,
    last_join: Option<JoinResponse>,
}

struct Checker {
    shard: Shard,
    now_ms: i64,
    clients: Vec<Client>,
    /// Waiter -> (client, generation its sync asked for).
    waiting: BTreeMap<WaiterId, (usize, i32)>,
    next_waiter: u64,
    in_flight: Vec<Persist>,
    /// The persisted (handed-out) leader assignment of each generation.
    assignments: BTreeMap<i32, BTreeMap<String, Bytes>>,
    max_generation: i32,
    nonce: u64,
}

impl Checker {
    fn new(initial_delay_ms: i32) -> Checker {
        let config = GroupConfig {
            offsets_topic_partitions: 1,
            min_session_timeout_ms: 10,
            initial_rebalance_delay_ms: initial_delay_ms,
            ..GroupConfig::default()
        };
        Checker {
            shard: Shard::new(config, 1),
            now_ms: 1_000,
            clients: vec![Client::default(); CLIENTS],
            waiting: BTreeMap::new(),
            next_waiter: 0,
            in_flight: Vec::new(),
            assignments: BTreeMap::new(),
            max_generation: 0,
            nonce: 0,
        }
    }

    fn instance(client: usize) -> Option<String> {
        (client >= 2).then(|| format!("static-{client}"))
    }

    fn waiter(&mut self, client: usize, generation: i32) -> WaiterId {
        self.next_waiter += 1;
        let w = WaiterId(self.next_waiter);
        self.waiting.insert(w, (client, generation));
        w
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Join { client, fresh, require_known, protocols } => {
                let c = &self.clients[client];
                let protocols = match protocols {
                    0 => vec![("range".to_string(), Bytes::from_static(b"r"))],
                    1 => vec![
                        ("range".into(), Bytes::from_static(b"r")),
                        ("rr".into(), Bytes::from_static(b"o")),
                    ],
                    _ => vec![
                        ("rr".into(), Bytes::from_static(b"o")),
                        ("range".into(), Bytes::from_static(b"r")),
                    ],
                };
                let req = JoinRequest {
                    group_id: GROUP.into(),
                    member_id: if fresh { String::new() } else { c.member_id.clone() },
                    instance_id: Self::instance(client),
                    client_id: format!("c{client}"),
                    client_host: "h".into(),
                    session_timeout_ms: 1_000,
                    rebalance_timeout_ms: 3_000,
                    protocol_type: "consumer".into(),
                    protocols,
                    require_known_member_id: require_known,
                    reason: None,
                };
                let w = self.waiter(client, -1);
                let fx = self.shard.join(req, w, self.now_ms);
                self.apply(fx);
            }
            Op::Sync { client, stale } => {
                let c = self.clients[client].clone();
                let generation = if stale { c.generation - 1 } else { c.generation };
                let leads =
                    c.last_join.as_ref().is_some_and(|j| j.leader == c.member_id && !j.members.is_empty());
                self.nonce += 1;
                let assignments = match (&c.last_join, leads) {
                    (Some(j), true) => j
                        .members
                        .iter()
                        .map(|m| {
                            (
                                m.member_id.clone(),
                                Bytes::from(format!("{generation}:{}:{}", m.member_id, self.nonce)),
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let req = SyncRequest {
                    group_id: GROUP.into(),
                    generation,
                    member_id: c.member_id.clone(),
                    instance_id: Self::instance(client),
                    protocol_type: None,
                    protocol_name: None,
                    assignments,
                };
                let w = self.waiter(client, generation);
                let fx = self.shard.sync(req, w, self.now_ms);
                self.apply(fx);
            }
            Op::Heartbeat { client } => {
                let c = &self.clients[client];
                let req = HeartbeatRequest {
                    group_id: GROUP.into(),
                    generation: c.generation,
                    member_id: c.member_id.clone(),
                    instance_id: Self::instance(client),
                };
                let _ = self.shard.heartbeat(&req, self.now_ms);
            }
            Op::Leave { client, by_instance } => {
                let c = &self.clients[client];
                let leaving = LeavingMember {
                    member_id: if by_instance { String::new() } else { c.member_id.clone() },
                    instance_id: if by_instance { Self::instance(client) } else { None },
                    reason: None,
                };
                let (_, fx) = self.shard.leave(GROUP, &[leaving], self.now_ms);
                self.apply(fx);
            }
            Op::Commit { client, stale, simple } => self.commit(client, stale, simple),
            Op::Tick { ms } => {
                self.now_ms += ms;
                let fx = self.shard.tick(self.now_ms);
                self.apply(fx);
            }
            Op::Persisted { pick, ok } => {
                if self.in_flight.is_empty() {
                    return;
                }
                // The driver may complete persists of different callers in
                // any order; log order is the order they were issued.
                let p = self.in_flight.remove(pick % self.in_flight.len());
                let result = if ok { Ok(()) } else { Err(ErrorCode::CoordinatorNotAvailable) };
                self.persisted(p.then, result);
            }
        }
        self.check();
    }

    fn commit(&mut self, client: usize, stale: bool, simple: bool) {
        let c = &self.clients[client];
        let req = CommitRequest {
            group_id: GROUP.into(),
            generation: if simple {
                -1
            } else if stale {
                c.generation - 1
            } else {
                c.generation
            },
            member_id: if simple { String::new() } else { c.member_id.clone() },
            instance_id: None,
            offsets: vec![CommitOffset {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                leader_epoch: -1,
                metadata: None,
            }],
        };
        // Invariant 3, judged on the state before the commit.
        let allowed = match self.shard.group(GROUP) {
            None => req.generation < 0,
            Some(g) if req.generation < 0 && g.state == GroupState::Empty => true,
            Some(g) => {
                g.state != GroupState::CompletingRebalance
                    && g.generation == req.generation
                    && g.members.get(&req.member_id).is_some_and(|m| m.generation == req.generation)
            }
        };
        if let Ok(plan) = self.shard.commit(&req, self.now_ms) {
            assert!(allowed, "commit {req:?} accepted");
            self.in_flight.extend(plan.persist);
        }
    }

    fn persisted(&mut self, then: Completion, result: Result<(), ErrorCode>) {
        if let (Completion::Assignment { generation, assignments, .. }, Ok(())) = (&then, result) {
            let g = self.shard.group(GROUP).expect("a group with an assignment in flight");
            if g.state == GroupState::CompletingRebalance && g.generation == *generation {
                let before = self.assignments.insert(*generation, assignments.clone());
                assert!(before.is_none(), "two assignments handed out in generation {generation}");
            }
        }
        let fx = self.shard.persisted(then, result, self.now_ms);
        self.apply(fx);
    }

    fn apply(&mut self, fx: Effects) {
        self.in_flight.extend(fx.persists);
        for reply in fx.replies {
            match reply {
                Reply::Join(w, r) => {
                    let (client, _) = self.waiting.remove(&w).expect("a join answered once");
                    let c = &mut self.clients[client];
                    if r.error == ErrorCode::None {
                        c.member_id = r.member_id.clone();
                        c.generation = r.generation;
                        c.last_join = Some(r);
                    } else if r.error == ErrorCode::MemberIdRequired {
                        c.member_id = r.member_id;
                    }
                }
                Reply::Sync(w, r) => {
                    let (_, generation) = self.waiting.remove(&w).expect("a sync answered once");
                    if r.error == ErrorCode::None && !r.assignment.is_empty() {
                        // Invariant 4: from the single persisted leader sync.
                        let handed = self.assignments.get(&generation).expect("assignment persisted first");
                        assert!(
                            handed.values().any(|a| *a == r.assignment),
                            "{r:?} not from gen {generation}"
                        );
                    }
                }
            }
        }
    }

    fn check(&mut self) {
        if let Some(g) = self.shard.group(GROUP) {
            g.check_invariants();
            assert!(g.generation >= self.max_generation, "invariant 1");
            self.max_generation = g.generation;
        }
        // Invariant 5, bookkeeping half: every parked waiter is one we wait on.
        let parked: BTreeSet<WaiterId> = self.shard.parked_waiters().into_iter().collect();
        assert!(parked.iter().all(|w| self.waiting.contains_key(w)), "a parked waiter nobody waits on");
        let in_completions: BTreeSet<WaiterId> = self
            .in_flight
            .iter()
            .filter_map(|p| match &p.then {
                Completion::StaticRejoin { waiter, .. } => Some(*waiter),
                _ => None,
            })
            .collect();
        for w in self.waiting.keys() {
            assert!(parked.contains(w) || in_completions.contains(w), "waiter {w:?} leaked");
        }
    }

    /// Invariant 5, liveness half: with persistence working and time
    /// passing, every waiter is answered.
    fn drain(&mut self) {
        for _ in 0..20 {
            while let Some(p) = self.in_flight.pop() {
                self.persisted(p.then, Ok(()));
                self.check();
            }
            if self.waiting.is_empty() {
                return;
            }
            self.step(Op::Tick { ms: 10_000 });
        }
        panic!("waiters never answered: {:?}", self.waiting);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn group_state_machine_keeps_its_invariants(
        initial_delay in prop_oneof![Just(0), Just(500)],
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut checker = Checker::new(initial_delay);
        for op in ops {
            checker.step(op);
        }
        checker.drain();
    }
}

/// A hand-written run: two members, a full rebalance, and a leader whose
/// assignment fails to persist, making everyone rejoin.
#[test]
fn failed_assignment_persist_makes_members_rejoin() {
    let mut c = Checker::new(0);
    c.step(Op::Join { client: 0, fresh: true, require_known: false, protocols: 0 });
    assert_eq!(c.clients[0].generation, 1);
    c.step(Op::Sync { client: 0, stale: false });
    c.step(Op::Persisted { pick: 0, ok: false });
    assert_eq!(c.shard.group(GROUP).unwrap().state, GroupState::PreparingRebalance);
    c.step(Op::Join { client: 0, fresh: false, require_known: false, protocols: 0 });
    assert_eq!(c.clients[0].generation, 2);
    c.step(Op::Sync { client: 0, stale: false });
    c.step(Op::Persisted { pick: 0, ok: true });
    assert_eq!(c.shard.group(GROUP).unwrap().state, GroupState::Stable);
    c.drain();
}
