//! The consumer-group scenario: a producer feeding the group's topic, and
//! members that find the coordinator, join, sync (the leader runs the
//! assignor the coordinator chose), heartbeat, fetch their partitions from
//! the committed offsets and commit as they go. Eager members (range) give
//! up every partition before they rejoin; cooperative ones
//! (cooperative-sticky) keep what they own, claim it in their subscription,
//! and revoke only what their new assignment lacks, then rejoin so the
//! leader can hand it on. During the safety phase members crash
//! (stop silently; a new incarnation joins later with no member id), stall
//! past their session (then try a commit with their old generation, which
//! must be refused, and rejoin) and leave. After healing they drain
//! quietly, and `drain` checks the group consumed every record below the
//! high watermark (G3).
//!
//! The coordinator's answers are judged on the broker node (see
//! `node::group_request` and `groupcheck`): the members only act on them.

use crate::kafka::Client;
use crate::ops::{Request, Response};
use crate::rng::Rng;
use crate::swarm::GroupPlan;
use crate::values::parse_key;
use crate::workload::{self, OFFSET_OUT_OF_RANGE};
use crate::world::{sim_elapsed_ms, World};
use bytes::Bytes;
use ringtail_client::assignor::{
    cooperative_sticky_assign, decode_assignment, encode_assignment, encode_subscription, range_assign,
    Assignment, MemberSubscription, Subscription, COOPERATIVE_STICKY_ASSIGNOR,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The group producer's id in record keys.
pub const GROUP_PRODUCER: u32 = 40_000;
/// Member `i` reads as reader `GROUP_READER + i` in the checker.
const GROUP_READER: u32 = 30_000;
/// Kafka error codes members act on.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
/// Members' request timeout once faults are over.
const QUIET_TIMEOUT_MS: u64 = 2_000;
/// Extra wait for a JoinGroup or SyncGroup beyond the rebalance timeout.
const JOIN_SLACK_MS: u64 = 2_000;
/// Pause between drain checks.
const DRAIN_GAP_MS: u64 = 200;

fn plan(world: &World) -> &GroupPlan {
    world.cfg.groups.as_ref().expect("the group scenario is on")
}

async fn sleep_ms(ms: u64) {
    madsim::time::sleep(Duration::from_millis(ms)).await;
}

/// Creates the group's topic, then produces to it until the workload stops.
pub async fn producer(world: Arc<World>) {
    let plan = plan(&world).clone();
    let mut rng = Rng::fork(world.cfg.seed, "group-producer");
    let mut client = workload::client(&world, "group-producer-client").await;
    while !workload::create_topic(&world, &mut client, &mut rng, &plan.topic).await {
        if world.stopping() {
            return;
        }
    }
    world.group_topic_ready.store(true, Ordering::SeqCst);
    let mut seq = 0u64;
    while !world.stopping() {
        let tp = (plan.topic.name.clone(), rng.below(u64::from(plan.topic.partitions)) as i32);
        let acks = [-1i8, 1][rng.weighted(&plan.acks_weights)];
        let count = rng.range(1, 8);
        let (batch, records) = workload::make_batch(&world, &mut rng, GROUP_PRODUCER, &mut seq, count);
        workload::produce(&world, &mut client, &mut rng, &tp, acks, batch, &records).await;
        sleep_ms(rng.range(1, 80)).await;
    }
}

/// Why an incarnation ended.
enum End {
    /// Crashed: the next incarnation starts after this long.
    Crashed(u64),
    Done,
}

/// What a member does next after an answer.
enum Next {
    Go,
    Rejoin,
    /// Find the coordinator again, then rejoin.
    Lost,
}

struct Member<'a> {
    world: &'a World,
    plan: &'a GroupPlan,
    index: u32,
    name: String,
    client: Client,
    rng: Rng,
    member_id: String,
    /// `group.instance.id` when the group's members are static.
    instance_id: Option<String>,
    /// The assignors offered, most preferred first.
    protocols: Vec<&'static str>,
    /// Keeps its partitions through rebalances (cooperative-sticky only).
    cooperative: bool,
    /// The generation joined, and the assignor it runs.
    generation: i32,
    protocol: Option<String>,
    /// Synced and not known to be rebalancing.
    stable: bool,
    /// The partitions it consumes, and the generation it was given them in.
    owned: Vec<i32>,
    owned_generation: i32,
    positions: BTreeMap<i32, u64>,
    turn: usize,
    next_heartbeat: u64,
    next_commit: u64,
    quiet_seen: bool,
}

/// One member: incarnations until the drain is over.
pub async fn member(world: Arc<World>, index: u32) {
    // The group producer creates the topic; failing that (tiny timeouts),
    // the verifier does once faults are over.
    while !world.group_topic_ready.load(Ordering::SeqCst) && !world.group_quiet.load(Ordering::SeqCst) {
        sleep_ms(20).await;
    }
    let mut incarnation = 0u32;
    loop {
        match incarnation_main(&world, index, incarnation).await {
            End::Done => return,
            End::Crashed(down_ms) => sleep_ms(down_ms).await,
        }
        incarnation += 1;
    }
}

async fn incarnation_main(world: &World, index: u32, incarnation: u32) -> End {
    let plan = plan(world);
    let salt = format!("group-member-{index}-{incarnation}");
    let client = workload::client(world, &format!("{salt}-client")).await;
    let mut m = Member {
        world,
        plan,
        index,
        name: format!("member {index}.{incarnation}"),
        client,
        rng: Rng::fork(world.cfg.seed, &salt),
        member_id: String::new(),
        // A static member keeps its group.instance.id across incarnations:
        // the next one takes the crashed one's place, without a rebalance.
        instance_id: plan.static_members.then(|| format!("member-{index}")),
        protocols: plan.assignors.offered(incarnation),
        cooperative: plan.assignors.offered(incarnation) == [COOPERATIVE_STICKY_ASSIGNOR],
        generation: -1,
        protocol: None,
        stable: false,
        owned: Vec::new(),
        owned_generation: -1,
        positions: BTreeMap::new(),
        turn: 0,
        next_heartbeat: 0,
        next_commit: 0,
        quiet_seen: false,
    };
    m.client.set_timeout(Duration::from_millis(plan.request_timeout_ms));
    world.checker().note(None, None, format!("group: {} starts, offering {:?}", m.name, m.protocols));
    m.run().await
}

impl Member<'_> {
    fn done(&self) -> bool {
        self.world.group_done.load(Ordering::SeqCst)
    }

    fn quiet(&self) -> bool {
        self.world.group_quiet.load(Ordering::SeqCst)
    }

    fn note(&self, text: String) {
        self.world.checker().note(None, None, format!("group: {} {text}", self.name));
    }

    fn tp(&self, p: i32) -> (String, i32) {
        (self.plan.topic.name.clone(), p)
    }

    async fn run(&mut self) -> End {
        let mut find = true;
        loop {
            if self.done() {
                return End::Done;
            }
            if self.quiet() && !self.quiet_seen {
                self.quiet_seen = true;
                self.client.set_timeout(Duration::from_millis(QUIET_TIMEOUT_MS));
            }
            if find {
                if !self.find_coordinator().await {
                    sleep_ms(self.rng.range(20, 300)).await;
                    continue;
                }
                find = false;
            }
            if !self.stable {
                match self.join_and_sync().await {
                    Next::Go => {}
                    Next::Rejoin => sleep_ms(self.rng.range(0, 100)).await,
                    Next::Lost => {
                        find = true;
                        sleep_ms(self.rng.range(20, 300)).await;
                    }
                }
                continue;
            }
            if let Some(end) = self.misbehave().await {
                return end;
            }
            if !self.stable {
                continue;
            }
            let now = sim_elapsed_ms();
            let mut next = Next::Go;
            if now >= self.next_heartbeat {
                self.next_heartbeat = now + self.plan.heartbeat_ms;
                next = self.heartbeat().await;
            }
            if matches!(next, Next::Go) && now >= self.next_commit {
                self.next_commit = now + self.rng.range(self.plan.commit_ms / 2, self.plan.commit_ms * 3 / 2);
                next = self.commit(self.generation).await;
            }
            if matches!(next, Next::Go) {
                self.fetch_one().await;
            }
            match next {
                Next::Go => {}
                Next::Rejoin => self.stable = false,
                Next::Lost => {
                    self.stable = false;
                    find = true;
                }
            }
            sleep_ms(self.rng.range(1, 40)).await;
        }
    }

    async fn find_coordinator(&mut self) -> bool {
        self.world.counters.op("find_coordinator");
        let group = self.plan.group.clone();
        matches!(
            self.client.call(Request::FindCoordinator { group }).await,
            Some(Response::Coordinator { .. })
        )
    }

    fn join_timeout(&self) -> Duration {
        Duration::from_millis(self.plan.rebalance_timeout_ms + JOIN_SLACK_MS)
    }

    /// What an error code means for the member.
    fn on_error(&mut self, code: i16) -> Next {
        match code {
            0 => Next::Go,
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                self.lose_all("is not a member");
                Next::Rejoin
            }
            ILLEGAL_GENERATION => {
                // The group moved on without it: what it owned may be
                // someone else's now, so it claims nothing (Kafka's
                // onPartitionsLost).
                self.lose_all("has a stale generation");
                Next::Rejoin
            }
            NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS => Next::Lost,
            _ => Next::Rejoin,
        }
    }

    /// Gives up every partition without committing (it may not own them).
    fn lose_all(&mut self, why: &str) {
        if !self.owned.is_empty() {
            self.note(format!("{why}: loses partitions {:?}", self.owned));
        }
        self.generation = -1;
        self.owned.clear();
        self.owned_generation = -1;
        self.positions.clear();
    }

    /// Stops consuming `partitions` (their positions were committed, or
    /// could not be).
    fn revoke(&mut self, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        self.note(format!("revokes partitions {partitions:?}"));
        self.owned.retain(|p| !partitions.contains(p));
        for p in partitions {
            self.positions.remove(p);
        }
    }

    /// The subscription it joins with: cooperative members claim what they own.
    fn subscription(&self) -> Bytes {
        let topic = self.plan.topic.name.clone();
        let mut owned = Assignment::new();
        if !self.owned.is_empty() {
            owned.insert(topic.clone(), self.owned.clone());
        }
        let subscription = Subscription { topics: vec![topic], owned, generation: self.owned_generation };
        encode_subscription(&subscription).expect("a subscription encodes")
    }

    /// The leader's job: every member's assignment, by `protocol`.
    fn assign(&self, protocol: &str, members: &[MemberSubscription]) -> Vec<(String, Bytes)> {
        let counts = BTreeMap::from([(self.plan.topic.name.clone(), self.plan.topic.partitions as i32)]);
        let assignments = match protocol {
            COOPERATIVE_STICKY_ASSIGNOR => cooperative_sticky_assign(members, &counts),
            _ => range_assign(members, &counts),
        };
        assignments
            .into_iter()
            .map(|(id, assignment)| (id, encode_assignment(&assignment).expect("an assignment encodes")))
            .collect()
    }

    async fn join_and_sync(&mut self) -> Next {
        if !self.cooperative {
            // Eager: everything is given up before joining (what was
            // consumed was committed when the rebalance was noticed).
            let all = self.owned.clone();
            self.revoke(&all);
        }
        self.world.counters.op("join_group");
        let protocols: Vec<(String, Bytes)> =
            self.protocols.iter().map(|name| (name.to_string(), self.subscription())).collect();
        let request = Request::JoinGroup {
            group: self.plan.group.clone(),
            member_id: self.member_id.clone(),
            instance_id: self.instance_id.clone(),
            session_timeout_ms: self.plan.session_timeout_ms as i32,
            rebalance_timeout_ms: self.plan.rebalance_timeout_ms as i32,
            protocols,
        };
        let timeout = self.join_timeout();
        let (generation, leader, protocol, members) = match self.client.call_within(request, timeout).await {
            None => return Next::Rejoin,
            Some(Response::Joined { error: MEMBER_ID_REQUIRED, member_id, .. }) => {
                self.member_id = member_id;
                return Next::Rejoin;
            }
            Some(Response::Joined { error: 0, generation, leader, member_id, protocol, members }) => {
                self.member_id = member_id;
                (generation, leader, protocol, members)
            }
            Some(Response::Joined { error, .. }) | Some(Response::Error { code: error, .. }) => {
                return self.on_error(error)
            }
            Some(other) => panic!("a JoinGroup was answered with {other:?}"),
        };
        let chosen = protocol.clone().unwrap_or_default();
        if !self.protocols.contains(&chosen.as_str()) {
            // The coordinator must pick an assignor every member offered.
            self.world.checker().group_bad_protocol(&self.name, &chosen, &self.protocols);
            return Next::Rejoin;
        }
        self.generation = generation;
        self.protocol = protocol.clone();
        let assignments = if leader == self.member_id { self.assign(&chosen, &members) } else { Vec::new() };
        self.world.counters.op("sync_group");
        let request = Request::SyncGroup {
            group: self.plan.group.clone(),
            generation,
            member_id: self.member_id.clone(),
            instance_id: self.instance_id.clone(),
            protocol,
            assignments,
        };
        let assignment = match self.client.call_within(request, timeout).await {
            None => return Next::Rejoin,
            Some(Response::Synced { error: 0, assignment }) => assignment,
            Some(Response::Synced { error, .. }) | Some(Response::Error { code: error, .. }) => {
                return self.on_error(error)
            }
            Some(other) => panic!("a SyncGroup was answered with {other:?}"),
        };
        let Ok(mut assignment) = decode_assignment(&assignment) else {
            // The checker (on the broker node) reports it.
            return Next::Rejoin;
        };
        let assigned = assignment.remove(&self.plan.topic.name).unwrap_or_default();
        self.note(format!("has generation {generation}: partitions {assigned:?}"));
        // Cooperative: the new generation takes these away. What it
        // consumed of them is committed before it lets go.
        let revoked: Vec<i32> = self.owned.iter().copied().filter(|p| !assigned.contains(p)).collect();
        let committed = if revoked.is_empty() {
            Next::Go
        } else {
            self.world.counters.op("cooperative_revoke");
            self.commit(generation).await
        };
        if self.generation < 0 {
            // The commit found the group gone on without it.
            return Next::Rejoin;
        }
        self.revoke(&revoked);
        self.owned = assigned;
        self.owned_generation = generation;
        // Having revoked, it rejoins so the leader can hand them on.
        self.stable = revoked.is_empty();
        let now = sim_elapsed_ms();
        self.next_heartbeat = now + self.plan.heartbeat_ms;
        self.next_commit = now + self.plan.commit_ms;
        match committed {
            Next::Lost => Next::Lost,
            _ => Next::Go,
        }
    }

    /// Crash, stall or leave, at random, while faults are on.
    async fn misbehave(&mut self) -> Option<End> {
        if self.quiet() {
            return None;
        }
        let plan = self.plan;
        if self.rng.chance(plan.crash_chance) {
            let down = self.rng.range(0, 3_000);
            self.world.counters.fault("member_crash");
            self.note(format!("crashes (back in {down} ms)"));
            return Some(End::Crashed(down));
        }
        if self.rng.chance(plan.stall_chance) {
            let ms = plan.session_timeout_ms + self.rng.range(100, 2_000);
            self.world.counters.fault("member_stall");
            self.note(format!("stalls for {ms} ms (session {} ms)", plan.session_timeout_ms));
            sleep_ms(ms).await;
            // Back from the stall still believing in its generation: the
            // commit must be refused if the group moved on (G4).
            self.note(format!("is back, commits with generation {}", self.generation));
            if let Next::Go = self.commit(self.generation).await {
                return None;
            }
            self.stable = false;
            return None;
        }
        if self.rng.chance(plan.leave_chance) {
            self.world.counters.op("leave_group");
            self.note("leaves".into());
            let request = Request::LeaveGroup {
                group: plan.group.clone(),
                member_id: self.member_id.clone(),
                instance_id: self.instance_id.clone(),
            };
            let _ = self.client.call(request).await;
            self.member_id.clear();
            self.lose_all("left");
            self.stable = false;
            sleep_ms(self.rng.range(0, 1_000)).await;
        }
        None
    }

    async fn heartbeat(&mut self) -> Next {
        self.world.counters.op("heartbeat");
        let request = Request::Heartbeat {
            group: self.plan.group.clone(),
            generation: self.generation,
            member_id: self.member_id.clone(),
            instance_id: self.instance_id.clone(),
        };
        match self.client.call(request).await {
            None | Some(Response::GroupOk) => Next::Go,
            Some(Response::Error { code: REBALANCE_IN_PROGRESS, .. }) => {
                // Commit what was consumed (accepted while the group
                // prepares its next generation); an eager member then gives
                // its partitions up, a cooperative one keeps them.
                let _ = self.commit(self.generation).await;
                Next::Rejoin
            }
            Some(Response::Error { code, .. }) => self.on_error(code),
            Some(other) => panic!("a Heartbeat was answered with {other:?}"),
        }
    }

    /// Commits the positions of the owned partitions with `generation`.
    async fn commit(&mut self, generation: i32) -> Next {
        let offsets: Vec<(String, i32, i64)> =
            self.positions.iter().map(|(p, o)| (self.plan.topic.name.clone(), *p, *o as i64)).collect();
        if offsets.is_empty() {
            return Next::Go;
        }
        self.world.counters.op("offset_commit");
        let request = Request::OffsetCommit {
            group: self.plan.group.clone(),
            generation,
            member_id: self.member_id.clone(),
            instance_id: self.instance_id.clone(),
            offsets,
        };
        match self.client.call(request).await {
            None => Next::Go,
            Some(Response::Committed { errors }) => {
                let code = errors.iter().copied().find(|e| *e != 0).unwrap_or(0);
                match code {
                    ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | REBALANCE_IN_PROGRESS => self.on_error(code),
                    // A storage error on one offset: try again next time.
                    _ => Next::Go,
                }
            }
            Some(Response::Error { code, .. }) => self.on_error(code),
            Some(other) => panic!("an OffsetCommit was answered with {other:?}"),
        }
    }

    /// Where to start a partition: its committed offset, else the log start.
    async fn initial_position(&mut self, p: i32) -> Option<u64> {
        self.world.counters.op("offset_fetch");
        let request = Request::OffsetFetch { group: self.plan.group.clone(), partitions: vec![self.tp(p)] };
        match self.client.call(request).await? {
            Response::Offsets { offsets } => match offsets.first() {
                Some((_, _, offset, 0)) if *offset >= 0 => Some(*offset as u64),
                Some((_, _, _, 0)) => {
                    let reader = GROUP_READER + self.index;
                    let tp = self.tp(p);
                    workload::list_offset(self.world, &mut self.client, reader, &tp, -2).await
                }
                _ => None,
            },
            Response::Error { .. } => None,
            other => panic!("an OffsetFetch was answered with {other:?}"),
        }
    }

    /// One fetch from the next assigned partition; records what it consumed.
    async fn fetch_one(&mut self) {
        if self.owned.is_empty() {
            return;
        }
        let p = self.owned[self.turn % self.owned.len()];
        self.turn += 1;
        let Some(position) = self.positions.get(&p).copied() else {
            if let Some(start) = self.initial_position(p).await {
                self.positions.insert(p, start);
            }
            return;
        };
        let tp = self.tp(p);
        let reader = GROUP_READER + self.index;
        self.world.counters.op("fetch");
        let request = Request::Fetch {
            topic: tp.0.clone(),
            partition: p,
            offset: position as i64,
            max_bytes: self.world.cfg.fetch_bytes_max,
        };
        match self.client.call(request).await {
            Some(Response::Fetched { records, high_watermark, log_start_offset }) => {
                let epoch = self.client.last_epochs();
                let mut checker = self.world.checker();
                checker.fetched(reader, &tp, position, &records, high_watermark, log_start_offset, epoch);
                let Ok(decoded) = crate::checker::decode_batches(std::slice::from_ref(&records)) else {
                    return;
                };
                let mine: Vec<&(u64, Bytes)> = decoded.iter().filter(|(o, _)| *o >= position).collect();
                checker.group_consumed(p, mine.iter().filter_map(|(_, v)| parse_key(v)));
                if let Some((last, _)) = mine.last() {
                    self.positions.insert(p, last + 1);
                }
            }
            Some(Response::Error { code, log_range, .. }) => {
                self.world.checker().fetch_failed(reader, &tp, position, code, log_range);
                if code == OFFSET_OUT_OF_RANGE {
                    // auto.offset.reset=earliest.
                    let start = log_range.map(|(start, _)| start);
                    match start {
                        Some(start) => self.positions.insert(p, start),
                        None => self.positions.remove(&p),
                    };
                }
            }
            Some(other) => panic!("a fetch was answered with {other:?}"),
            None => {}
        }
    }
}

/// The quiet phase's check (G3): every record of the group's topic below
/// the high watermark is consumed by the group within `bound_ms` of
/// simulated time. `Err` says what was not.
pub async fn drain(world: Arc<World>, bound_ms: u64) -> Result<u64, String> {
    let plan = plan(&world).clone();
    let start = sim_elapsed_ms();
    let mut client = world.quiet_kafka_client("group-drain", Duration::from_secs(2));
    // Per partition: offsets below this were consumed (checked once).
    let mut checked: BTreeMap<i32, u64> = BTreeMap::new();
    loop {
        let mut missing = None;
        for p in 0..plan.topic.partitions as i32 {
            let from = checked.get(&p).copied();
            match drain_partition(&world, &mut client, &plan, p, from).await {
                Ok(upto) => {
                    checked.insert(p, upto);
                }
                Err(why) => {
                    missing = Some(why);
                    break;
                }
            }
        }
        let waited = sim_elapsed_ms() - start;
        match missing {
            None => return Ok(waited),
            Some(_) if world.failed() => return Ok(waited),
            Some(why) if waited >= bound_ms => {
                // Beyond the budget the broker may refuse to start (see verify).
                let refusing = !world.broker_serving.load(Ordering::SeqCst)
                    && world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()).is_some()
                    && !world.checker().taints_empty();
                return if refusing { Ok(waited) } else { Err(why) };
            }
            Some(_) => sleep_ms(DRAIN_GAP_MS).await,
        }
    }
}

/// Reads partition `p` from `from` (else the log start) to its high
/// watermark: `Ok(hw)` when the group consumed every record of it.
async fn drain_partition(
    world: &World,
    client: &mut Client,
    plan: &GroupPlan,
    p: i32,
    from: Option<u64>,
) -> Result<u64, String> {
    let tp = (plan.topic.name.clone(), p);
    if !world.checker().group_partition_strict(p) {
        // Under flush=interval/never (or beyond-budget damage) a crash may
        // take records the group consumed and reuse their offsets: the
        // group's reads can legitimately miss records there.
        return Ok(0);
    }
    let reader = crate::workload::VERIFIER_PRODUCER;
    let mut offset = match from {
        Some(o) => o,
        None => workload::list_offset(world, client, reader, &tp, -2)
            .await
            .ok_or_else(|| format!("{}-{p}: no log start", tp.0))?,
    };
    loop {
        world.counters.op("fetch");
        let request =
            Request::Fetch { topic: tp.0.clone(), partition: p, offset: offset as i64, max_bytes: 1 << 20 };
        let (records, hw) = match client.call(request).await {
            Some(Response::Fetched { records, high_watermark, .. }) => (records, high_watermark),
            Some(Response::Error { code, message, .. }) => {
                return Err(format!("{}-{p}: fetch at {offset}: {code}: {message}", tp.0))
            }
            Some(other) => panic!("a fetch was answered with {other:?}"),
            None => return Err(format!("{}-{p}: fetch at {offset} timed out", tp.0)),
        };
        if offset >= hw {
            return Ok(offset);
        }
        let decoded = crate::checker::decode_batches(std::slice::from_ref(&records))
            .map_err(|e| format!("{}-{p}: undecodable fetch: {e}", tp.0))?;
        let mut progressed = false;
        let from = offset;
        for (o, value) in decoded.iter().filter(|(o, _)| *o >= from && *o < hw) {
            let Some(key) = parse_key(value) else {
                return Err(format!("{}-{p}: not a record at {o}", tp.0));
            };
            let mut checker = world.checker();
            if !checker.group_has_consumed(p, key) {
                return Err(format!(
                    "{}-{p}: {key} at offset {o} (high watermark {hw}) not consumed; owners: {}",
                    tp.0,
                    checker.group_latest_owners()
                ));
            }
            offset = o + 1;
            progressed = true;
        }
        if !progressed {
            return Err(format!(
                "{}-{p}: a fetch at {offset} below the high watermark {hw} read nothing",
                tp.0
            ));
        }
    }
}
