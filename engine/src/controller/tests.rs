//! A few voters in one test, their messages carried by a queue, time moved
//! by hand: elections, proposals, fencing, partitions of the network,
//! snapshots and restarts from disk.

use super::*;
use crate::entropy::SeededEntropy;
use crate::error::ErrorCode;
use crate::io::mem::CrashMode;
use crate::io::{Disk, MemDisk};
use raft::prelude::Message;
use raft::StateRole;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

const STEP_MS: i64 = 10;

struct Cluster {
    voters: Vec<u64>,
    disks: BTreeMap<u64, MemDisk>,
    nodes: BTreeMap<u64, QuorumNode<MemDisk>>,
    queue: VecDeque<Message>,
    now: i64,
    /// Nodes cut off from every other.
    isolated: BTreeSet<u64>,
    /// Q1: the leader seen in each term.
    leaders: BTreeMap<u64, u64>,
    answers: BTreeMap<(u64, ProposalId), Answer>,
    tweak: fn(&mut QuorumConfig),
    restarts: u64,
}

impl Cluster {
    async fn new(n: u64, tweak: fn(&mut QuorumConfig)) -> Cluster {
        let voters: Vec<u64> = (1..=n).collect();
        let mut cluster = Cluster {
            voters: voters.clone(),
            disks: voters.iter().map(|id| (*id, MemDisk::new())).collect(),
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            now: 1_000_000,
            isolated: BTreeSet::new(),
            leaders: BTreeMap::new(),
            answers: BTreeMap::new(),
            tweak,
            restarts: 0,
        };
        for id in voters {
            // The data directory exists, durably, before the node starts.
            let disk = &cluster.disks[&id];
            disk.create_dir_all(Path::new("/data")).await.unwrap();
            disk.sync_dir(Path::new("/")).await.unwrap();
            cluster.start(id).await.unwrap();
        }
        cluster
    }

    async fn start(&mut self, id: u64) -> std::io::Result<()> {
        let mut config = QuorumConfig::new(id, self.voters.clone());
        (self.tweak)(&mut config);
        let entropy = Arc::new(SeededEntropy::new(id * 7919 + self.restarts));
        self.restarts += 1;
        let node = QuorumNode::open(self.disks[&id].clone(), Path::new("/data"), config, entropy).await?;
        self.nodes.insert(id, node);
        Ok(())
    }

    /// Power loss: the node stops and its unsynced writes are lost.
    fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.disks[&id].crash(CrashMode::DropUnsynced);
    }

    fn node(&mut self, id: u64) -> &mut Controller {
        &mut self.nodes.get_mut(&id).expect("running").controller
    }

    async fn run_ms(&mut self, ms: i64) {
        let end = self.now + ms;
        while self.now < end {
            self.now += STEP_MS;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                let node = self.nodes.get_mut(&id).expect("running");
                let out = node.tick(self.now).await.expect("disk");
                self.queue.extend(out);
            }
            self.deliver().await;
        }
    }

    async fn deliver(&mut self) {
        while let Some(message) = self.queue.pop_front() {
            if self.isolated.contains(&message.from) || self.isolated.contains(&message.to) {
                continue;
            }
            let Some(node) = self.nodes.get_mut(&message.to) else { continue };
            let out = node.step(message).await.expect("disk");
            self.queue.extend(out);
        }
        self.observe();
    }

    /// Q1 and collects answers.
    fn observe(&mut self) {
        for (id, node) in &mut self.nodes {
            let c = &mut node.controller;
            if c.role() == StateRole::Leader {
                let first = *self.leaders.entry(c.term()).or_insert(*id);
                assert_eq!(first, *id, "two leaders in term {}", c.term());
            }
            for (proposal, answer) in c.take_answers() {
                self.answers.insert((*id, proposal), answer);
            }
        }
    }

    fn leader(&self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(id, n)| n.controller.is_leader() && !self.isolated.contains(id))
            .map(|(id, _)| *id)
            .collect();
        assert!(leaders.len() <= 1, "leaders {leaders:?}");
        leaders.first().copied()
    }

    async fn await_leader(&mut self) -> u64 {
        for _ in 0..200 {
            if let Some(l) = self.leader() {
                if self.node(l).image().cluster_id.is_some() {
                    return l;
                }
            }
            self.run_ms(100).await;
        }
        panic!("no leader within 20 s");
    }

    /// Runs until `proposal` of `node` is answered.
    async fn answer(&mut self, node: u64, proposal: ProposalId) -> Answer {
        for _ in 0..300 {
            if let Some(a) = self.answers.remove(&(node, proposal)) {
                return a;
            }
            self.run_ms(STEP_MS).await;
        }
        panic!("proposal {proposal} of node {node} was never answered");
    }

    async fn register_brokers(&mut self, ids: &[i32]) {
        let leader = self.await_leader().await;
        for &id in ids {
            let now = self.now;
            let p = self.node(leader).register_broker(id, 100 + id as u64, Vec::new(), now).unwrap();
            self.answer(leader, p).await.unwrap();
        }
        self.heartbeat(ids).await;
        self.run_ms(500).await;
        assert!(ids.iter().all(|id| self.node(leader).image().is_live(*id)));
    }

    /// Every follower of `topic` caught up: each partition's leader asks
    /// `leader` for all its replicas in the ISR, as replication does.
    /// Returns each granted change with the broker that asked for it.
    async fn fill_isrs(&mut self, leader: u64, topic: &str) -> Vec<(i32, IsrChange)> {
        let topic = self.node(leader).image().topics[topic].clone();
        let mut granted = Vec::new();
        for (i, p) in topic.partitions.iter().enumerate() {
            let change = IsrChange {
                topic_id: topic.topic_id.clone(),
                partition: i as i32,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                isr: p.replicas.clone(),
            };
            let proposal = self.node(leader).alter_partition(p.leader, &change).unwrap().expect("a change");
            self.answer(leader, proposal).await.unwrap();
            granted.push((p.leader, change));
        }
        granted
    }

    async fn heartbeat(&mut self, ids: &[i32]) {
        let leader = self.await_leader().await;
        let now = self.now;
        for &id in ids {
            self.node(leader).broker_heartbeat(id, 100 + id as u64, now).unwrap();
        }
    }

    /// Q3: every running node that applied as far as the first holds the same image.
    async fn converge(&mut self) -> MetadataImage {
        for _ in 0..100 {
            self.run_ms(100).await;
            let applied: BTreeSet<u64> = self.nodes.values().map(|n| n.controller.applied()).collect();
            if applied.len() == 1 {
                break;
            }
        }
        let images: Vec<(u64, u64, MetadataImage)> = self
            .nodes
            .iter()
            .map(|(id, n)| (*id, n.controller.applied(), n.controller.image().clone()))
            .collect();
        for (id, applied, image) in &images[1..] {
            assert_eq!(*applied, images[0].1, "node {id} applied {applied}");
            assert_eq!(*image, images[0].2, "node {id}'s image differs");
        }
        images[0].2.clone()
    }
}

fn quick(_: &mut QuorumConfig) {}

#[tokio::test]
async fn one_voter_leads_registers_creates_and_keeps_it_across_power_loss() {
    let mut c = Cluster::new(1, quick).await;
    let leader = c.await_leader().await;
    assert_eq!(leader, 1);
    c.register_brokers(&[1]).await;
    let p = c.node(1).create_topic("orders", 3, 1, BTreeMap::new()).unwrap();
    c.answer(1, p).await.unwrap();
    let err = c.node(1).create_topic("orders", 1, 1, BTreeMap::new()).unwrap_err();
    assert_eq!(err.code, ErrorCode::TopicAlreadyExists);
    let err = c.node(1).create_topic("wide", 1, 2, BTreeMap::new()).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidReplicationFactor);
    let before = c.node(1).image().clone();
    c.crash(1);
    c.start(1).await.unwrap();
    c.run_ms(3_000).await;
    let after = c.node(1).image().clone();
    assert_eq!(after.cluster_id, before.cluster_id, "the cluster id survives");
    assert_eq!(after.topics, before.topics);
    assert!(c.node(1).is_leader());
}

#[tokio::test]
async fn three_voters_fail_over_and_converge() {
    let mut c = Cluster::new(3, quick).await;
    c.register_brokers(&[1, 2, 3]).await;
    let leader = c.await_leader().await;
    let p = c.node(leader).create_topic("t", 6, 3, BTreeMap::new()).unwrap();
    c.answer(leader, p).await.unwrap();
    let image = c.converge().await;
    assert!(image.topics["t"].partitions.iter().all(|p| p.replicas.len() == 3 && p.isr == [p.leader]));

    // Cut the leader off: the other two elect one of themselves.
    c.isolated.insert(leader);
    let stranded = c.node(leader).create_topic("lost", 1, 1, BTreeMap::new()).unwrap();
    c.run_ms(5_000).await;
    let new_leader = c.leader().expect("a new leader among the majority");
    assert_ne!(new_leader, leader);
    c.heartbeat(&[1, 2, 3]).await;
    let p = c.node(new_leader).create_topic("u", 1, 3, BTreeMap::new()).unwrap();
    c.answer(new_leader, p).await.unwrap();

    // Heal: the old leader steps down, its stranded proposal is refused,
    // never applied, and every image agrees.
    c.isolated.clear();
    let refused = c.answer(leader, stranded).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotController);
    let image = c.converge().await;
    assert!(image.topics.contains_key("u"));
    assert!(!image.topics.contains_key("lost"), "a proposal without a quorum never commits");
}

#[tokio::test]
async fn a_silent_broker_is_fenced_and_its_leadership_moves() {
    let mut c = Cluster::new(3, |config| config.broker_session_timeout_ms = 2_000).await;
    c.register_brokers(&[1, 2, 3]).await;
    let leader = c.await_leader().await;
    let p = c.node(leader).create_topic("t", 3, 2, BTreeMap::new()).unwrap();
    c.answer(leader, p).await.unwrap();
    for (asked_by, change) in c.fill_isrs(leader, "t").await {
        // The same request again, at the epoch it saw: refused, not applied twice.
        let again = c.node(leader).alter_partition(asked_by, &change);
        assert_eq!(again.unwrap_err().code, ErrorCode::InvalidUpdateVersion);
    }
    // Brokers 1 and 2 keep heartbeating; 3 falls silent.
    for _ in 0..10 {
        c.heartbeat(&[1, 2]).await;
        c.run_ms(500).await;
    }
    let image = c.converge().await;
    assert!(!image.is_live(3) && image.is_live(1) && image.is_live(2));
    for p in &image.topics["t"].partitions {
        assert!(!p.isr.contains(&3) && p.leader != 3, "{p:?}");
    }
    // Back with the same incarnation: unfenced (it rejoins ISRs through
    // replication, not here).
    c.heartbeat(&[3]).await;
    c.run_ms(500).await;
    assert!(c.converge().await.is_live(3));
}

/// Controlled shutdown: the broker is fenced at once, long before its
/// session would lapse, its leaderships move within the ISR and it leaves
/// every ISR; a stale incarnation is refused.
#[tokio::test]
async fn a_controlled_shutdown_moves_leadership_at_once() {
    let mut c = Cluster::new(3, |config| config.broker_session_timeout_ms = 60_000).await;
    c.register_brokers(&[1, 2, 3]).await;
    let leader = c.await_leader().await;
    let p = c.node(leader).create_topic("t", 3, 3, BTreeMap::new()).unwrap();
    c.answer(leader, p).await.unwrap();
    c.fill_isrs(leader, "t").await;
    let before = c.node(leader).image().topics["t"].partitions.clone();
    assert!(before.iter().any(|p| p.leader == 2), "{before:?}");
    let stale = c.node(leader).controlled_shutdown(2, 1);
    assert_eq!(stale.unwrap_err().code, ErrorCode::StaleBrokerEpoch);
    let p = c.node(leader).controlled_shutdown(2, 102).unwrap();
    c.answer(leader, p).await.unwrap();
    let image = c.converge().await;
    assert!(!image.is_live(2) && image.is_live(1) && image.is_live(3));
    for (p, old) in image.topics["t"].partitions.iter().zip(&before) {
        assert!(!p.isr.contains(&2) && p.leader != 2 && p.leader > 0, "{p:?}");
        if old.leader == 2 {
            assert_eq!(p.leader_epoch, old.leader_epoch + 1);
        }
    }
}

#[tokio::test]
async fn a_lagging_voter_catches_up_from_a_snapshot_and_restarts_from_one() {
    let mut c = Cluster::new(3, |config| config.snapshot_every = 8).await;
    c.register_brokers(&[1, 2, 3]).await;
    let leader = c.await_leader().await;
    let lagging = c.voters.iter().copied().find(|id| *id != leader).unwrap();
    c.isolated.insert(lagging);
    for i in 0..30 {
        c.heartbeat(&[1, 2, 3]).await;
        let leader = c.await_leader().await;
        let p = c.node(leader).create_topic(&format!("t{i}"), 1, 2, BTreeMap::new()).unwrap();
        c.answer(leader, p).await.unwrap();
    }
    c.isolated.clear();
    let image = c.converge().await;
    assert_eq!(image.topics.len(), 30);
    // Every node restarts from its snapshot and log and rebuilds the same.
    for id in c.voters.clone() {
        c.crash(id);
        c.start(id).await.unwrap();
    }
    assert_eq!(c.converge().await.topics, image.topics);
}

#[tokio::test]
async fn voters_that_do_not_match_the_stored_quorum_are_refused() {
    let mut c = Cluster::new(1, |config| config.snapshot_every = 2).await;
    c.register_brokers(&[1]).await;
    c.run_ms(500).await;
    c.crash(1);
    c.voters = vec![1, 2, 3];
    let err = c.start(1).await.expect_err("refused");
    assert!(err.to_string().contains("voters"), "{err}");
}

#[tokio::test]
async fn messages_no_voter_could_send_are_dropped() {
    use raft::prelude::MessageType;
    let mut c = Cluster::new(3, quick).await;
    let leader = c.await_leader().await;
    let term = c.node(leader).term();
    let follower = c.voters.iter().copied().find(|id| *id != leader).unwrap();
    let hostile = [
        (MessageType::MsgRequestPreVote, 9, 0),      // a stranger
        (MessageType::MsgRequestPreVote, leader, 0), // no term
        (MessageType::MsgHup, leader, term),         // a local message
        (MessageType::MsgPropose, leader, term),     // a forwarded proposal
    ];
    for (kind, from, term) in hostile {
        let mut m = Message::default();
        m.set_msg_type(kind);
        m.from = from;
        m.to = follower;
        m.term = term;
        m.index = u64::MAX;
        let node = c.nodes.get_mut(&follower).unwrap();
        let out = node.step(m).await.unwrap();
        assert!(out.is_empty(), "{kind:?} from {from} was answered");
    }
    c.run_ms(1_000).await;
    assert_eq!(c.leader(), Some(leader), "nothing changed");
    assert_eq!(c.node(leader).term(), term);
}

/// Growth and config changes through three voters: of two growths (or
/// two config changes) planned from the same image before either applied,
/// the first takes and the second is answered with an error, never
/// applied on top; every voter converges on the result and a voter's
/// power loss keeps it.
#[tokio::test]
async fn racing_topic_changes_apply_once_and_survive_power_loss() {
    let mut c = Cluster::new(3, quick).await;
    c.register_brokers(&[1, 2, 3]).await;
    let leader = c.await_leader().await;
    let p = c.node(leader).create_topic("t", 1, 2, BTreeMap::new()).unwrap();
    c.answer(leader, p).await.unwrap();
    let first = c.node(leader).create_partitions("t", 3).unwrap();
    let second = c.node(leader).create_partitions("t", 3).unwrap();
    c.answer(leader, first).await.unwrap();
    let overtaken = c.answer(leader, second).await.unwrap_err();
    assert_eq!(overtaken.code, ErrorCode::InvalidRequest, "{overtaken}");
    let refused = c.node(leader).create_partitions("t", 3).unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidPartitions);

    let config = |value: &str| -> BTreeMap<String, String> { [("retention.ms".into(), value.into())].into() };
    let a = c.node(leader).alter_topic_configs("t", BTreeMap::new(), config("1000")).unwrap();
    let b = c.node(leader).alter_topic_configs("t", BTreeMap::new(), config("2000")).unwrap();
    c.answer(leader, a).await.unwrap();
    assert!(c.answer(leader, b).await.is_err(), "planned from overrides the first changed");
    let stale = c.node(leader).alter_topic_configs("t", BTreeMap::new(), config("3000")).unwrap_err();
    assert_eq!(stale.code, ErrorCode::InvalidUpdateVersion);

    let image = c.converge().await;
    assert_eq!(image.topics["t"].partitions.len(), 3);
    assert_eq!(image.topics["t"].configs, config("1000"));
    let follower = c.voters.iter().copied().find(|id| *id != leader).unwrap();
    c.crash(follower);
    c.start(follower).await.unwrap();
    assert_eq!(c.converge().await, image);
}

/// An operator's preferred election through the quorum: answered at once
/// while the preferred replica is back but not in sync (nothing to
/// propose), and proposed, applied on every voter, once it is.
#[tokio::test]
async fn a_requested_preferred_election_moves_leadership_back_through_the_quorum() {
    let mut c = Cluster::new(3, |config| config.broker_session_timeout_ms = 60_000).await;
    c.register_brokers(&[1, 2, 3]).await;
    let leader = c.await_leader().await;
    let p = c.node(leader).create_topic("t", 3, 3, BTreeMap::new()).unwrap();
    c.answer(leader, p).await.unwrap();
    c.fill_isrs(leader, "t").await;
    let p = c.node(leader).controlled_shutdown(2, 102).unwrap();
    c.answer(leader, p).await.unwrap();
    c.heartbeat(&[2]).await;
    c.run_ms(500).await;
    assert!(c.node(leader).image().is_live(2), "unfenced again");
    let replicas: Vec<i32> =
        c.node(leader).image().topics["t"].partitions.iter().map(|p| p.replicas[0]).collect();
    let wanted = Some(vec![("t".to_string(), vec![0, 1, 2])]);
    let codes = |outcomes: &[PartitionElection]| -> Vec<ErrorCode> {
        outcomes.iter().map(|o| ErrorCode::from_code(o.error_code).unwrap()).collect()
    };
    let (proposal, outcomes) = c.node(leader).elect_leaders(ElectionType::Preferred, &wanted).unwrap();
    assert!(proposal.is_none(), "nothing to propose");
    let expected: Vec<ErrorCode> = replicas
        .iter()
        .map(|r| if *r == 2 { ErrorCode::PreferredLeaderNotAvailable } else { ErrorCode::ElectionNotNeeded })
        .collect();
    assert_eq!(codes(&outcomes), expected);

    c.fill_isrs(leader, "t").await;
    let (proposal, outcomes) = c.node(leader).elect_leaders(ElectionType::Preferred, &wanted).unwrap();
    let expected: Vec<ErrorCode> = replicas
        .iter()
        .map(|r| if *r == 2 { ErrorCode::None } else { ErrorCode::ElectionNotNeeded })
        .collect();
    assert_eq!(codes(&outcomes), expected);
    c.answer(leader, proposal.expect("a proposal")).await.unwrap();
    let image = c.converge().await;
    assert!(image.topics["t"].partitions.iter().all(|p| p.leader == p.replicas[0]), "{image:?}");
}
