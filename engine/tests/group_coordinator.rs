//! The consumer-group coordinator through the Broker, on MemDisk with a
//! manual clock: rebalances, member ids, session expiry, commits and their
//! durability across restarts and crashes, static members, leave, delete,
//! describe and list. Every test ends with no caller left waiting.

mod common;

use bytes::Bytes;
use common::{clock, runtime};
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Broker, BrokerConfig, BrokerEndpoint, ErrorCode};
use ringtail_engine::clock::ManualClock;
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::group::{
    offsets_partition_for, CommitOffset, CommitRequest, GroupConfig, GroupState, HeartbeatRequest,
    JoinRequest, JoinResponse, LeavingMember, SyncRequest, SyncResponse, OFFSETS_TOPIC,
};
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::MemDisk;
use ringtail_engine::log::LogConfig;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

const GROUP: &str = "g";

fn config(initial_delay_ms: i32, topic_defaults: LogConfig) -> BrokerConfig {
    BrokerConfig {
        node_id: 1,
        advertised: BrokerEndpoint { node_id: 1, host: "127.0.0.1".into(), port: 9092 },
        default_partitions: 2,
        default_replication_factor: None,
        auto_create_topics: false,
        topic_defaults,
        log_cache_bytes: 1 << 20,
        quorum: false,
        replication: ringtail_engine::replica::ReplicationConfig::default(),
        topic_limits: ringtail_engine::broker::TopicLimits::none(),
        cleaner: Default::default(),
        group: GroupConfig {
            offsets_topic_partitions: 4,
            min_session_timeout_ms: 1_000,
            initial_rebalance_delay_ms: initial_delay_ms,
            compaction_min_records: COMPACTION_MIN_RECORDS,
            offsets_retention_ms: RETENTION_MS,
            ..GroupConfig::default()
        },
    }
}

const COMPACTION_MIN_RECORDS: u64 = 200;
const RETENTION_MS: i64 = 120_000;

struct Fixture {
    disk: Arc<MemDisk>,
    clock: Arc<ManualClock>,
    broker: Arc<Broker<MemDisk>>,
    initial_delay_ms: i32,
    /// Every topic's, `__consumer_offsets` included.
    topic_defaults: LogConfig,
}

impl Fixture {
    async fn new(initial_delay_ms: i32) -> Fixture {
        Fixture::with_topic_defaults(initial_delay_ms, LogConfig::default()).await
    }

    async fn with_topic_defaults(initial_delay_ms: i32, topic_defaults: LogConfig) -> Fixture {
        let disk = Arc::new(MemDisk::new());
        let clock = clock();
        let broker = open(&disk, &clock, initial_delay_ms, topic_defaults).await;
        broker
            .create_topic(
                CreateTopic {
                    name: "orders".into(),
                    partitions: Some(6),
                    replication_factor: None,
                    configs: Default::default(),
                },
                false,
            )
            .await
            .unwrap();
        let endpoint = broker.find_group_coordinator(GROUP).await.unwrap();
        assert_eq!(endpoint.node_id, 1);
        Fixture { disk, clock, broker, initial_delay_ms, topic_defaults }
    }

    /// The broker goes away (its directory lock with it) and comes back.
    async fn reopen(self) -> Fixture {
        let Fixture { disk, clock, broker, initial_delay_ms, topic_defaults } = self;
        drop(broker);
        let broker = open(&disk, &clock, initial_delay_ms, topic_defaults).await;
        Fixture { disk, clock, broker, initial_delay_ms, topic_defaults }
    }

    fn join(&self, member_id: &str, instance: Option<&str>) -> JoinHandle<JoinResponse> {
        let b = self.broker.clone();
        let req = join_request(member_id, instance);
        tokio::spawn(async move { b.join_group(req).await })
    }

    fn sync(
        &self,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> JoinHandle<SyncResponse> {
        let b = self.broker.clone();
        let req = SyncRequest {
            group_id: GROUP.into(),
            generation,
            member_id: member_id.into(),
            instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments,
        };
        tokio::spawn(async move { b.sync_group(req).await })
    }

    async fn heartbeat(&self, generation: i32, member_id: &str) -> Result<(), ErrorCode> {
        let req = HeartbeatRequest {
            group_id: GROUP.into(),
            generation,
            member_id: member_id.into(),
            instance_id: None,
        };
        self.broker.heartbeat(req).await.map_err(|e| e.code)
    }

    async fn commit(&self, generation: i32, member_id: &str, offset: i64) -> Result<(), ErrorCode> {
        let req = CommitRequest {
            group_id: GROUP.into(),
            generation,
            member_id: member_id.into(),
            instance_id: None,
            offsets: vec![CommitOffset {
                topic: "orders".into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: Some("m".into()),
            }],
        };
        let outcomes = self.broker.commit_offsets(req).await.map_err(|e| e.code)?;
        outcomes.into_iter().next().unwrap().map_err(|e| e.code)
    }

    async fn committed(&self) -> Option<i64> {
        let fetched = self.broker.fetch_offsets(GROUP, Some(vec![("orders".into(), 0)])).await.unwrap();
        fetched[0].committed.as_ref().map(|c| c.offset)
    }

    /// Moves time on and fires the coordinator's timers.
    async fn advance(&self, ms: i64) {
        self.clock.advance_ms(ms);
        self.broker.tick_groups().await;
        settle().await;
    }

    /// Forms a generation of `n` new members that all sync; returns the
    /// generation and the member ids (leader first).
    async fn form(&self, instances: &[Option<&str>]) -> (i32, Vec<String>) {
        let joins: Vec<_> = instances.iter().map(|i| self.join("", *i)).collect();
        settle().await;
        for _ in 0..3 {
            self.advance(i64::from(self.initial_delay_ms)).await;
        }
        let mut answers = Vec::new();
        for j in joins {
            answers.push(j.await.unwrap());
        }
        let generation = answers[0].generation;
        assert!(
            answers.iter().all(|a| a.error == ErrorCode::None && a.generation == generation),
            "{answers:?}"
        );
        let leader = answers[0].leader.clone();
        let mut ids: Vec<String> = answers.iter().map(|a| a.member_id.clone()).collect();
        ids.sort_by_key(|id| *id != leader);
        let assignments = ids.iter().map(|id| (id.clone(), Bytes::from(format!("assigned-{id}")))).collect();
        let followers: Vec<_> = ids[1..].iter().map(|id| self.sync(generation, id, Vec::new())).collect();
        settle().await;
        let lead = self.sync(generation, &ids[0], assignments).await.unwrap();
        assert_eq!(lead.assignment, Bytes::from(format!("assigned-{}", ids[0])));
        for (f, id) in followers.into_iter().zip(&ids[1..]) {
            assert_eq!(f.await.unwrap().assignment, Bytes::from(format!("assigned-{id}")));
        }
        (generation, ids)
    }

    fn state(&self) -> (GroupState, i32, usize) {
        let d = self.broker.describe_group(GROUP).unwrap();
        (d.state, d.generation, d.members.len())
    }
}

async fn open(
    disk: &Arc<MemDisk>,
    clock: &Arc<ManualClock>,
    initial_delay_ms: i32,
    topic_defaults: LogConfig,
) -> Arc<Broker<MemDisk>> {
    let (broker, _) = Broker::open(
        disk.clone(),
        PathBuf::from("/data"),
        config(initial_delay_ms, topic_defaults),
        clock.clone(),
        Arc::new(SeededEntropy::new(7)),
    )
    .await
    .unwrap();
    Arc::new(broker)
}

fn join_request(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        instance_id: instance.map(Into::into),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(&["orders"]))],
        require_known_member_id: false,
        reason: None,
    }
}

/// A consumer's member metadata (Kafka's ConsumerProtocolSubscription v0).
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = 0i16.to_be_bytes().to_vec();
    b.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend((t.len() as i16).to_be_bytes());
        b.extend(t.as_bytes());
    }
    b.extend((-1i32).to_be_bytes());
    Bytes::from(b)
}

/// Lets spawned requests run until they park.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// The coordinator's futures can run on a multi-threaded runtime.
#[test]
fn coordinator_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    runtime().block_on(async {
        let f = Fixture::new(0).await;
        let join = f.broker.join_group(join_request("", None));
        send(&join);
        drop(join);
        send(&f.broker.tick_groups());
    });
}

/// Three members that join together form one generation after the initial
/// delay; followers' syncs wait for the leader's assignment.
#[test]
fn three_members_form_one_generation() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let joins: Vec<_> = (0..3).map(|_| f.join("", None)).collect();
        settle().await;
        assert_eq!(f.broker.group_waiters(), 3, "joins wait out the initial delay");
        assert_eq!(f.state().0, GroupState::PreparingRebalance);
        f.advance(3_000).await;
        assert_eq!(f.broker.group_waiters(), 3, "members kept arriving: the delay is extended");
        f.advance(3_000).await;
        let answers: Vec<JoinResponse> = futures_join(joins).await;
        assert!(answers.iter().all(|a| a.error == ErrorCode::None && a.generation == 1));
        let leaders: Vec<_> = answers.iter().filter(|a| a.member_id == a.leader).collect();
        assert_eq!(leaders.len(), 1);
        assert_eq!(leaders[0].members.len(), 3);
        assert!(answers.iter().filter(|a| a.member_id != a.leader).all(|a| a.members.is_empty()));
        assert_eq!(f.state(), (GroupState::CompletingRebalance, 1, 3));
        let followers: Vec<_> = answers
            .iter()
            .filter(|a| a.member_id != a.leader)
            .map(|a| f.sync(1, &a.member_id, vec![]))
            .collect();
        settle().await;
        assert_eq!(f.broker.group_waiters(), 2, "followers wait for the leader");
        let assignments =
            answers.iter().map(|a| (a.member_id.clone(), Bytes::from(a.member_id.clone()))).collect();
        let lead = f.sync(1, &leaders[0].member_id, assignments).await.unwrap();
        assert_eq!(lead.assignment, Bytes::from(leaders[0].member_id.clone()));
        for (s, a) in
            futures_join(followers).await.iter().zip(answers.iter().filter(|a| a.member_id != a.leader))
        {
            assert_eq!(s.error, ErrorCode::None);
            assert_eq!(s.assignment, Bytes::from(a.member_id.clone()));
        }
        let d = f.broker.describe_group(GROUP).unwrap();
        assert_eq!((d.state, d.protocol_name.as_str(), d.members.len()), (GroupState::Stable, "range", 3));
        assert!(d.members.iter().all(|m| m.assignment == m.member_id.as_bytes()));
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

async fn futures_join<T>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED and an id, and the
/// join with that id is a member's.
#[test]
fn member_id_required_flow() {
    runtime().block_on(async {
        let f = Fixture::new(0).await;
        let mut req = join_request("", None);
        req.require_known_member_id = true;
        let first = f.broker.join_group(req.clone()).await;
        assert_eq!(first.error, ErrorCode::MemberIdRequired);
        assert!(first.member_id.starts_with("client-"), "{}", first.member_id);
        assert_eq!(f.state(), (GroupState::Empty, 0, 0), "a pending id is not a member yet");
        req.member_id = first.member_id.clone();
        let second = f.broker.join_group(req).await;
        assert_eq!((second.error, second.generation), (ErrorCode::None, 1));
        assert_eq!(second.leader, first.member_id);
        let unknown = f.broker.join_group(join_request("made-up", None)).await;
        assert_eq!(unknown.error, ErrorCode::UnknownMemberId);
        let mut bad = join_request("", None);
        bad.session_timeout_ms = 10;
        assert_eq!(f.broker.join_group(bad).await.error, ErrorCode::InvalidSessionTimeout);
        let mut other = join_request(&first.member_id, None);
        other.protocol_type = "connect".into();
        assert_eq!(f.broker.join_group(other).await.error, ErrorCode::InconsistentGroupProtocol);
        let mut empty = join_request("", None);
        empty.group_id = String::new();
        assert_eq!(f.broker.join_group(empty).await.error, ErrorCode::InvalidGroupId);
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// A member that stops heartbeating is removed after its session timeout;
/// the others rejoin into a new generation without it. Commits from the old
/// generation are refused.
#[test]
fn session_expiry_rebalances_without_the_dead_member() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let (generation, ids) = f.form(&[None, None, None]).await;
        let (a, b, dead) = (&ids[0], &ids[1], &ids[2]);
        assert_eq!(f.commit(generation, dead, 5).await, Ok(()));
        for _ in 0..2 {
            f.advance(4_000).await;
            assert_eq!(f.heartbeat(generation, a).await, Ok(()));
            assert_eq!(f.heartbeat(generation, b).await, Ok(()));
        }
        f.advance(4_000).await;
        assert_eq!(f.state(), (GroupState::PreparingRebalance, generation, 2), "the silent member expired");
        assert_eq!(f.heartbeat(generation, a).await, Err(ErrorCode::RebalanceInProgress));
        assert_eq!(f.heartbeat(generation, dead).await, Err(ErrorCode::UnknownMemberId));
        // Eager clients commit what they consumed before rejoining.
        assert_eq!(f.commit(generation, a, 7).await, Ok(()));
        let (ja, jb) = (f.join(a, None), f.join(b, None));
        let (ja, jb) = (ja.await.unwrap(), jb.await.unwrap());
        let next = ja.generation;
        assert_eq!((next, jb.generation), (generation + 1, generation + 1));
        let leader_answer = if ja.member_id == ja.leader { &ja } else { &jb };
        let mut members: Vec<_> = leader_answer.members.iter().map(|m| m.member_id.clone()).collect();
        members.sort();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(members, want);
        assert_eq!(f.commit(next, a, 8).await, Err(ErrorCode::RebalanceInProgress));
        let follower = if ja.member_id == ja.leader { b } else { a };
        let fs = f.sync(next, follower, vec![]);
        let ls = f
            .sync(next, &leader_answer.member_id, vec![(a.clone(), Bytes::from_static(b"x"))])
            .await
            .unwrap();
        assert_eq!(ls.error, ErrorCode::None);
        assert_eq!(fs.await.unwrap().error, ErrorCode::None);
        assert_eq!(f.commit(generation, a, 9).await, Err(ErrorCode::IllegalGeneration), "stale generation");
        assert_eq!(f.committed().await, Some(7));
        assert_eq!(f.commit(next, a, 10).await, Ok(()));
        assert_eq!(f.committed().await, Some(10));
        assert_eq!(
            f.commit(-1, "", 11).await,
            Err(ErrorCode::UnknownMemberId),
            "simple commit to a live group"
        );
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// An acknowledged commit and the group's generation survive a clean
/// restart and a power loss that drops everything not fsynced.
#[test]
fn commits_and_generation_survive_restart_and_crash() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let (generation, ids) = f.form(&[None, None]).await;
        assert_eq!(f.commit(generation, &ids[0], 42).await, Ok(()));
        f.broker.close().await.unwrap();
        let f = f.reopen().await;
        assert_eq!(f.committed().await, Some(42));
        assert_eq!(f.state(), (GroupState::Stable, generation, 2));
        assert_eq!(f.heartbeat(generation, &ids[1]).await, Ok(()), "a restart alone does not rebalance");

        assert_eq!(f.commit(generation, &ids[1], 43).await, Ok(()));
        f.disk.crash(CrashMode::DropUnsynced);
        let f = f.reopen().await;
        assert_eq!(f.committed().await, Some(43));
        let d = f.broker.describe_group(GROUP).unwrap();
        assert_eq!((d.state, d.generation), (GroupState::Stable, generation));
        let mut members: Vec<_> = d.members.iter().map(|m| m.member_id.clone()).collect();
        members.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(members, want);
        assert!(d.members.iter().all(|m| m.assignment == format!("assigned-{}", m.member_id).as_bytes()));
        // Sessions restart at load: nobody expires right away.
        f.advance(5_000).await;
        assert_eq!(f.state().0, GroupState::Stable);
    });
}

/// A static member that restarts (joins without its member id) takes its
/// old place under a new id: same generation, same assignment, no
/// rebalance; the old id is fenced.
#[test]
fn static_member_restart_keeps_assignment() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let (generation, ids) = f.form(&[Some("i1"), Some("i2")]).await;
        let restarted = f.join("", Some("i2")).await.unwrap();
        assert_eq!((restarted.error, restarted.generation), (ErrorCode::None, generation));
        assert!(!ids.contains(&restarted.member_id));
        assert_eq!(f.state(), (GroupState::Stable, generation, 2));
        let old_id = ids.iter().find(|id| id.starts_with("i2-")).unwrap();
        let req = HeartbeatRequest {
            group_id: GROUP.into(),
            generation,
            member_id: old_id.clone(),
            instance_id: Some("i2".into()),
        };
        assert_eq!(f.broker.heartbeat(req).await.unwrap_err().code, ErrorCode::FencedInstanceId);
        let s = f.sync(generation, &restarted.member_id, vec![]).await.unwrap();
        assert_eq!(s.assignment, Bytes::from(format!("assigned-{old_id}")));
        // The new id is durable: it survives a restart.
        f.broker.close().await.unwrap();
        let f = f.reopen().await;
        let d = f.broker.describe_group(GROUP).unwrap();
        assert!(d.members.iter().any(|m| m.member_id == restarted.member_id));
        assert_eq!(d.generation, generation);
    });
}

/// The coordinator's groups are what replaying its log gives, after every
/// completed request, failed ones included. A static member's restart
/// whose group record cannot be written (its new subscription makes the
/// record larger than the offsets topic's max.message.bytes) is undone, as
/// Kafka undoes it: the old member id stays valid, with its old metadata
/// and timeouts, and the restarting client gets the error and no member id.
#[test]
fn failed_static_rejoin_is_reverted() {
    runtime().block_on(async {
        let small = LogConfig { max_message_bytes: 4096, ..LogConfig::default() };
        let f = Fixture::with_topic_defaults(3_000, small).await;
        let (generation, ids) = f.form(&[Some("i1"), Some("i2")]).await;
        let old_id = ids.iter().find(|id| id.starts_with("i2-")).unwrap().clone();
        let other = ids.iter().find(|id| id.starts_with("i1-")).unwrap().clone();
        let before = f.broker.describe_group(GROUP).unwrap();
        let restart = || {
            let mut req = join_request("", Some("i2"));
            let topics: Vec<String> = (0..200).map(|i| format!("a-topic-with-a-long-name-{i:04}")).collect();
            req.protocols =
                vec![("range".into(), subscription(&topics.iter().map(|t| t.as_str()).collect::<Vec<_>>()))];
            req.session_timeout_ms = 30_000;
            req.rebalance_timeout_ms = 60_000;
            let b = f.broker.clone();
            async move { b.join_group(req).await }
        };
        let heartbeat = |member_id: &str, instance: &str| {
            let req = HeartbeatRequest {
                group_id: GROUP.into(),
                generation,
                member_id: member_id.into(),
                instance_id: Some(instance.into()),
            };
            let b = f.broker.clone();
            async move { b.heartbeat(req).await.map_err(|e| e.code) }
        };

        let answer = restart().await;
        assert_eq!(f.broker.describe_group(GROUP).unwrap(), before, "the restart is undone");
        assert_eq!(answer.error, ErrorCode::UnknownServerError);
        assert_eq!(answer.member_id, "", "no client is given an id the log does not hold");
        assert_eq!(heartbeat(&old_id, "i2").await, Ok(()), "the old id is not fenced");
        // A reload (as after a failover) replays the log: the same group.
        f.broker.unload_groups();
        f.broker.find_group_coordinator(GROUP).await.unwrap();
        assert_eq!(f.broker.describe_group(GROUP).unwrap(), before, "the log replays to another group");
        assert_eq!(heartbeat(&old_id, "i2").await, Ok(()));

        // The old session timeout (10 s, not the 30 s asked) is back too.
        assert_eq!(restart().await.error, ErrorCode::UnknownServerError);
        f.advance(6_000).await;
        assert_eq!(heartbeat(&other, "i1").await, Ok(()));
        f.advance(4_001).await;
        let d = f.broker.describe_group(GROUP).unwrap();
        assert_eq!((d.state, d.generation), (GroupState::PreparingRebalance, generation));
        assert_eq!(d.members.iter().map(|m| m.member_id.clone()).collect::<Vec<_>>(), vec![other]);
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// Members leave (static ones by instance id); the last one leaving makes
/// the group Empty with the next generation; only then can it be deleted,
/// offsets and all. Describe and list follow along.
#[test]
fn leave_delete_describe_list() {
    runtime().block_on(async {
        let f = Fixture::new(0).await;
        let (generation, ids) = f.form(&[Some("s1")]).await;
        assert_eq!(f.commit(generation, &ids[0], 3).await, Ok(()));
        let listed = f.broker.list_groups(&[GroupState::Stable]).unwrap();
        assert_eq!(listed.iter().map(|l| l.group_id.as_str()).collect::<Vec<_>>(), vec![GROUP]);
        assert!(f.broker.list_groups(&[GroupState::Empty]).unwrap().is_empty());
        assert_eq!(f.broker.delete_group(GROUP).await.unwrap_err().code, ErrorCode::NonEmptyGroup);
        let leave = |member_id: &str, instance: Option<&str>| LeavingMember {
            member_id: member_id.into(),
            instance_id: instance.map(Into::into),
            reason: None,
        };
        let out =
            f.broker.leave_group(GROUP, vec![leave("nobody", None), leave("", Some("s1"))]).await.unwrap();
        assert_eq!(out[0].as_ref().unwrap_err().code, ErrorCode::UnknownMemberId);
        assert!(out[1].is_ok());
        assert_eq!(f.state(), (GroupState::Empty, generation + 1, 0));
        assert_eq!(f.commit(-1, "", 4).await, Ok(()), "simple commits once the group is Empty");
        assert_eq!(f.broker.delete_group(GROUP).await, Ok(()));
        assert_eq!(f.state(), (GroupState::Dead, -1, 0));
        assert_eq!(f.committed().await, None);
        assert_eq!(f.broker.delete_group(GROUP).await.unwrap_err().code, ErrorCode::GroupIdNotFound);
        let refused = f.broker.delete_topic(OFFSETS_TOPIC).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidRequest);
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// Unloading answers parked joins NOT_COORDINATOR; nothing is left waiting.
#[test]
fn unload_answers_parked_waiters() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let join = f.join("", None);
        settle().await;
        assert_eq!(f.broker.group_waiters(), 1);
        f.broker.unload_groups();
        assert_eq!(join.await.unwrap().error, ErrorCode::NotCoordinator);
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// Compaction: once most of an offsets partition is superseded commits, a
/// tick rewrites its live records and moves the log start past the rest;
/// a crash and restart after it rebuilds the same groups and offsets, and
/// the group carries on.
#[test]
fn compaction_bounds_the_offsets_log_and_loses_nothing() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let (generation, ids) = f.form(&[None, None]).await;
        let p = offsets_partition_for(GROUP, 4);
        let commits = 3 * COMPACTION_MIN_RECORDS as i64;
        for offset in 0..commits {
            assert_eq!(f.commit(generation, &ids[0], offset).await, Ok(()));
        }
        let (start, end) = f.broker.offsets_log_range(p).unwrap();
        assert!(end - start > commits as u64, "every commit is in the log: [{start}, {end})");
        f.advance(100).await;
        let (start, end) = f.broker.offsets_log_range(p).unwrap();
        assert!(start > 0 && end - start <= 3, "only the live records remain: [{start}, {end})");
        assert_eq!(f.committed().await, Some(commits - 1));
        // Nothing more to gain: the next tick leaves the log alone.
        f.advance(100).await;
        assert_eq!(f.broker.offsets_log_range(p).unwrap(), (start, end));

        f.disk.crash(CrashMode::DropUnsynced);
        let f = f.reopen().await;
        assert_eq!(f.committed().await, Some(commits - 1));
        let d = f.broker.describe_group(GROUP).unwrap();
        assert_eq!((d.state, d.generation, d.members.len()), (GroupState::Stable, generation, 2));
        assert!(d.members.iter().all(|m| m.assignment == format!("assigned-{}", m.member_id).as_bytes()));
        assert_eq!(f.commit(generation, &ids[1], commits).await, Ok(()));
        assert_eq!(f.committed().await, Some(commits));
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// Offset expiry: an Empty group's offsets (and the group) go once it has
/// been empty, with no commit, for the retention; a group that never had
/// members counts from its last commit; a live group's offsets stay.
#[test]
fn offsets_of_empty_groups_expire() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let (generation, ids) = f.form(&[None, None]).await;
        assert_eq!(f.commit(generation, &ids[0], 7).await, Ok(()));
        // Members that keep heartbeating keep the offsets, however long.
        for _ in 0..(2 * RETENTION_MS / 5_000) {
            f.advance(5_000).await;
            for id in &ids {
                assert_eq!(f.heartbeat(generation, id).await, Ok(()));
            }
        }
        assert_eq!(f.committed().await, Some(7));
        let leave = |id: &String| LeavingMember { member_id: id.clone(), instance_id: None, reason: None };
        f.broker.leave_group(GROUP, ids.iter().map(leave).collect()).await.unwrap();
        assert_eq!(f.state().0, GroupState::Empty);
        f.advance(RETENTION_MS / 2).await;
        assert_eq!(f.commit(-1, "", 8).await, Ok(()), "a commit restarts the clock");
        f.advance(RETENTION_MS / 2 + 1_000).await;
        assert_eq!(f.committed().await, Some(8));
        f.advance(RETENTION_MS / 2).await;
        assert_eq!(f.committed().await, None, "expired");
        assert_eq!(f.state().0, GroupState::Dead);
        assert!(f.broker.list_groups(&[]).unwrap().is_empty());

        // Expiry is durable: the tombstones outlive a crash.
        f.disk.crash(CrashMode::DropUnsynced);
        let f = f.reopen().await;
        assert_eq!(f.committed().await, None);
        assert_eq!(f.commit(-1, "", 9).await, Ok(()), "a group that never had members");
        let f = f.reopen().await;
        f.advance(RETENTION_MS - 1_000).await;
        assert_eq!(f.committed().await, Some(9), "the clock counts from the commit, not the reload");
        f.advance(2_000).await;
        assert_eq!(f.committed().await, None);
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// OffsetDelete: a live group keeps the offsets of topics it subscribes
/// to; others go, durably; once the group is Empty, any go.
#[test]
fn offset_delete_spares_subscribed_topics_of_live_groups() {
    runtime().block_on(async {
        let f = Fixture::new(0).await;
        let payments = CreateTopic {
            name: "payments".into(),
            partitions: Some(1),
            replication_factor: None,
            configs: Default::default(),
        };
        f.broker.create_topic(payments, false).await.unwrap();
        let (generation, ids) = f.form(&[None]).await;
        let req = CommitRequest {
            group_id: GROUP.into(),
            generation,
            member_id: ids[0].clone(),
            instance_id: None,
            offsets: ["orders", "payments"]
                .iter()
                .map(|t| CommitOffset {
                    topic: t.to_string(),
                    partition: 0,
                    offset: 10,
                    leader_epoch: -1,
                    metadata: None,
                })
                .collect(),
        };
        assert!(f.broker.commit_offsets(req).await.unwrap().iter().all(|o| o.is_ok()));
        let both = [("orders".to_string(), 0), ("payments".to_string(), 0)];
        let codes = |out: Vec<Result<(), ringtail_engine::broker::BrokerError>>| {
            out.into_iter().map(|o| o.err().map(|e| e.code)).collect::<Vec<_>>()
        };
        let out = f.broker.delete_offsets(GROUP, &both).await.unwrap();
        assert_eq!(codes(out), [Some(ErrorCode::GroupSubscribedToTopic), None]);
        let offsets = |f: &Fixture| {
            let b = f.broker.clone();
            async move {
                let fetched = b.fetch_offsets(GROUP, None).await.unwrap();
                fetched.into_iter().map(|o| o.topic).collect::<Vec<_>>()
            }
        };
        assert_eq!(offsets(&f).await, ["orders"]);
        f.broker.close().await.unwrap();
        let f = f.reopen().await;
        assert_eq!(offsets(&f).await, ["orders"], "the tombstone is durable");

        let leave = LeavingMember { member_id: ids[0].clone(), instance_id: None, reason: None };
        f.broker.leave_group(GROUP, vec![leave]).await.unwrap();
        assert_eq!(f.state().0, GroupState::Empty);
        let out = f.broker.delete_offsets(GROUP, &both).await.unwrap();
        assert_eq!(codes(out), [None, None]);
        assert!(offsets(&f).await.is_empty());
        let unknown = f.broker.delete_offsets("nobody", &both).await.unwrap_err();
        assert_eq!(unknown.code, ErrorCode::GroupIdNotFound);
        assert_eq!(f.broker.group_waiters(), 0);
    });
}

/// A member that asks for a rebalance timeout of 24 days holds a
/// rebalance for at most the largest session timeout (30 min): then the
/// join completes without the members that did not rejoin. A member whose
/// metadata is over the cap is refused.
#[test]
fn rebalance_timeouts_and_member_metadata_are_bounded() {
    runtime().block_on(async {
        let f = Fixture::new(3_000).await;
        let mut huge = join_request("", None);
        huge.protocols =
            vec![("range".into(), Bytes::from(vec![0u8; ringtail_engine::group::MEMBER_BYTES_MAX + 1]))];
        assert_eq!(f.broker.join_group(huge).await.error, ErrorCode::InvalidRequest);
        let (generation, ids) = f.form(&[None, None]).await;
        // A member of the group rejoins (a new member would be dropped
        // after 5 minutes anyway, as in Kafka).
        let mut patient = join_request(&ids[1], None);
        patient.rebalance_timeout_ms = i32::MAX;
        // A new subscription: a rejoin with the same one changes nothing.
        patient.protocols = vec![("range".into(), subscription(&["orders", "more"]))];
        let b = f.broker.clone();
        let joining = tokio::spawn(async move { b.join_group(patient).await });
        settle().await;
        assert_eq!(f.state().0, GroupState::PreparingRebalance);
        // The first member stays alive (heartbeats) but never rejoins.
        let max_session_ms = i64::from(GroupConfig::default().max_session_timeout_ms);
        let mut waited = 0;
        while !joining.is_finished() {
            assert!(waited <= max_session_ms + 10_000, "the rebalance outlived the largest session timeout");
            let _ = f.heartbeat(generation, &ids[0]).await;
            f.advance(5_000).await;
            waited += 5_000;
        }
        assert!(waited >= max_session_ms - 10_000, "completed after {waited} ms");
        let answer = joining.await.unwrap();
        assert_eq!(answer.error, ErrorCode::None);
        assert_eq!(f.state().2, 1, "the member that never rejoined is gone");
        assert_eq!(f.broker.group_waiters(), 0);
    });
}
