//! The controller voters over real TCP on 127.0.0.1: three in one process,
//! each on an in-memory disk, brokers' requests through `QuorumClient`.
//! A leader is elected, brokers register and are unfenced on their first
//! heartbeat, a topic with three replicas commits, and after the leader's
//! voter stops the other two elect a new one that takes requests.

use ringtail_engine::controller::{IsrChange, QuorumConfig, QuorumNode};
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::{Disk, MemDisk};
use ringtail_server::clock::SystemClock;
use ringtail_server::quorum::client::QuorumClient;
use ringtail_server::quorum::voter;
use ringtail_server::quorum::wire::{Ask, Outcome, QuorumStatus};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

async fn start_voters(n: u64) -> (BTreeMap<u64, SocketAddr>, BTreeMap<u64, tokio::task::JoinHandle<()>>) {
    let mut listeners = BTreeMap::new();
    for id in 1..=n {
        listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: BTreeMap<u64, SocketAddr> =
        listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
    let mut tasks = BTreeMap::new();
    for (id, listener) in listeners {
        let disk = MemDisk::new();
        disk.create_dir_all(Path::new("/data")).await.unwrap();
        let mut config = QuorumConfig::new(id, addrs.keys().copied().collect());
        config.broker_session_timeout_ms = 60_000;
        let entropy = Arc::new(SeededEntropy::new(id));
        let node = QuorumNode::open(disk, Path::new("/data"), config, entropy).await.unwrap();
        let peers = addrs.iter().filter(|(p, _)| **p != id).map(|(p, a)| (*p, *a)).collect();
        tasks.insert(
            id,
            tokio::spawn(async move {
                let error = voter::run(node, listener, peers, Arc::new(SystemClock), None, None).await;
                panic!("voter {id} stopped: {error}");
            }),
        );
    }
    (addrs, tasks)
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "{what} within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn describe(client: &QuorumClient, voter: u64) -> Option<QuorumStatus> {
    match client.call_one(voter, Ask::Describe).await {
        Some(Outcome::Described(status)) => Some(*status),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_commit_and_fail_over_over_tcp() {
    let (addrs, mut tasks) = start_voters(3).await;
    let client = QuorumClient::new(addrs.clone(), Duration::from_secs(2));
    let leader = until("a leader with a cluster id", async || {
        let s = describe(&client, 1).await?;
        s.image.cluster_id.as_ref()?;
        s.leader
    })
    .await;

    for node_id in 1..=3 {
        let ask = Ask::RegisterBroker { node_id, incarnation: 7, endpoints: Vec::new() };
        assert!(matches!(client.call(ask).await, Some(Outcome::Committed(_))));
        let beat = Ask::BrokerHeartbeat { node_id, incarnation: 7 };
        assert!(matches!(client.call(beat).await, Some(Outcome::Heartbeat { fenced: true })));
    }
    until("every broker unfenced", async || {
        let s = describe(&client, leader).await?;
        (s.image.live_brokers() == [1, 2, 3]).then_some(())
    })
    .await;
    let create = Ask::CreateTopic {
        name: "orders".into(),
        partitions: 3,
        replication_factor: 3,
        configs: BTreeMap::new(),
    };
    assert!(matches!(client.call(create.clone()).await, Some(Outcome::Committed(_))));
    match client.call(create).await {
        Some(Outcome::Refused { code, .. }) => assert_eq!(code, 36, "TOPIC_ALREADY_EXISTS"),
        other => panic!("a second create: {other:?}"),
    }
    let four = Ask::CreateTopic {
        name: "wide".into(),
        partitions: 1,
        replication_factor: 4,
        configs: BTreeMap::new(),
    };
    match client.call(four).await {
        Some(Outcome::Refused { code, .. }) => assert_eq!(code, 38, "INVALID_REPLICATION_FACTOR"),
        other => panic!("replication factor 4 of 3 brokers: {other:?}"),
    }
    // Every voter applies it.
    for voter in 1..=3 {
        until("the topic on every voter", async || {
            let s = describe(&client, voter).await?;
            let t = s.image.topics.get("orders")?;
            t.partitions.iter().all(|p| p.replicas.len() == 3).then_some(())
        })
        .await;
    }

    // AlterPartition: partition 0's leader takes every replica into its ISR;
    // the same request again is at a stale partition epoch.
    let status = describe(&client, leader).await.unwrap();
    let topic = &status.image.topics["orders"];
    let p = topic.partitions[0].clone();
    let change = IsrChange {
        topic_id: topic.topic_id.clone(),
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: p.replicas.clone(),
    };
    let alter = Ask::AlterPartition { node_id: p.leader, change };
    assert!(matches!(client.call(alter.clone()).await, Some(Outcome::Committed(_))));
    match client.call(alter).await {
        Some(Outcome::Refused { code, .. }) => assert_eq!(code, 95, "INVALID_UPDATE_VERSION"),
        other => panic!("a repeated ISR change: {other:?}"),
    }
    let isr = describe(&client, leader).await.unwrap().image.topics["orders"].partitions[0].isr.clone();
    assert_eq!(isr, p.replicas);

    // The leader's voter stops: the other two elect a new leader.
    tasks.remove(&leader).unwrap().abort();
    let survivor = addrs.keys().copied().find(|id| *id != leader).unwrap();
    let new_leader = until("a new leader", async || {
        let s = describe(&client, survivor).await?;
        s.leader.filter(|l| *l != leader)
    })
    .await;
    assert_ne!(new_leader, leader);
    let again = Ask::CreateTopic {
        name: "after".into(),
        partitions: 1,
        replication_factor: 1,
        configs: BTreeMap::new(),
    };
    let outcome = until("a create after failover", async || match client.call(again.clone()).await {
        Some(Outcome::Committed(index)) => Some(index),
        _ => None,
    })
    .await;
    assert!(outcome > 0);
}
