//! Three `ringtail serve` processes on one host, each a broker and a
//! controller voter (combined mode), as a user would start them: topics
//! created with replication factor 3 place replicas on all three; `kill -9`
//! of the controller leader gives a new leader within 5 s and topic
//! creation works again; a full restart keeps every topic; the cluster's
//! data directories refuse to serve another cluster.

mod cluster_support;
mod server_support;

use bytes::Bytes;
use cluster_support::{
    await_partition, client, cluster_describe, consume_all, controller_leader, create, free_ports, log_tail,
    start_all, three_nodes, Node, BINARY, CONVERGE_WAIT, FAILOVER_BOUND_PARTITION, READY_WAIT,
};
use kafka_protocol::messages::DescribeClusterRequest;
use kafka_protocol::ResponseError;
use ringtail_client::{Acks, ClientConfig, Connection, NewTopic, ProducerRecord};
use server_support::spawn_serve;
use std::collections::BTreeSet;
use std::fs::File;
use std::process::Command;
use std::time::{Duration, Instant};

/// The bound on electing a new controller leader.
const FAILOVER_BOUND: Duration = Duration::from_secs(5);

/// Waits until `node` reports every topic in `names`, each partition with
/// three replicas, and three live brokers.
async fn await_topics(node: &Node, names: &[&str]) {
    let deadline = Instant::now() + CONVERGE_WAIT;
    loop {
        let metadata = client(node).await.fetch_metadata(None).await;
        let complete = metadata.as_ref().is_ok_and(|m| {
            m.brokers.len() == 3
                && names.iter().all(|name| {
                    m.topics.get(*name).is_some_and(|t| {
                        !t.partitions.is_empty() && t.partitions.iter().all(|p| p.replicas.len() == 3)
                    })
                })
        });
        if complete {
            return;
        }
        assert!(Instant::now() < deadline, "node {} never showed {names:?}: {metadata:?}", node.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// DescribeCluster, as AdminClient's `describeCluster` sends it, answers
/// from the image: the cluster id Metadata reports, the three brokers and
/// the quorum's leader; a request for controller endpoints is refused.
async fn describe_cluster_over_kafka(nodes: &[Node]) {
    let cluster_id = client(&nodes[0]).await.fetch_metadata(None).await.unwrap().cluster_id;
    let connection = Connection::connect(&nodes[2].kafka, &ClientConfig::default()).await.unwrap();
    let deadline = Instant::now() + CONVERGE_WAIT;
    let described = loop {
        let r = connection
            .send(&DescribeClusterRequest::default().with_include_fenced_brokers(true), 2)
            .await
            .unwrap();
        if r.brokers.len() == 3 && r.controller_id.0 > 0 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(described.error_code, 0, "{described:?}");
    assert_eq!(Some(described.cluster_id.to_string()), cluster_id, "{described:?}");
    let ids: Vec<i32> = described.brokers.iter().map(|b| b.broker_id.0).collect();
    assert_eq!(ids, [1, 2, 3], "{described:?}");
    assert!(described.brokers.iter().all(|b| !b.is_fenced && b.port > 0), "{described:?}");
    assert!((1..=3).contains(&described.controller_id.0), "{described:?}");
    let controllers = DescribeClusterRequest::default().with_endpoint_type(2);
    let refused = connection.send(&controllers, 1).await.unwrap();
    assert_eq!(refused.error_code, ResponseError::MismatchedEndpointType.code(), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_fails_over_its_controller_and_keeps_its_topics() {
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, voters) = three_nodes(root.path());
    start_all(&mut nodes, &voters);

    // Replication factor 3: replicas on all three, leaders spread.
    create(&nodes[0], "spread", 3, 3).await;
    for node in &nodes {
        await_topics(node, &["spread"]).await;
    }
    let info = client(&nodes[1]).await.refresh_topic("spread").await.unwrap();
    let leaders: BTreeSet<i32> = info.partitions.iter().map(|p| p.leader).collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]), "{info:?}");
    let too_many =
        NewTopic { name: "four".into(), partitions: Some(1), replication_factor: Some(4), configs: vec![] };
    let refused = client(&nodes[2]).await.create_topic(&too_many).await.unwrap_err();
    assert!(refused.to_string().contains("INVALID_REPLICATION_FACTOR"), "{refused}");

    // kill -9 of the controller leader: a new one within the bound.
    let leader = controller_leader(&voters).expect("a controller leader");
    nodes[leader as usize - 1].kill9();
    let killed = Instant::now();
    let new_leader = loop {
        match controller_leader(&voters) {
            Some(l) if l != leader => break l,
            _ if killed.elapsed() > FAILOVER_BOUND => {
                panic!(
                    "no new controller leader {FAILOVER_BOUND:?} after killing {leader}:\n{}",
                    cluster_describe(&voters)
                )
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    eprintln!("controller leader {leader} killed; {new_leader} leads after {:?}", killed.elapsed());
    let survivor = nodes.iter().find(|n| n.id != leader).unwrap();
    create(survivor, "after-failover", 2, 2).await;
    let described = cluster_describe(&voters);
    assert!(described.contains(&format!("Controller leader: {new_leader}")), "{described}");
    assert!(described.contains("unreachable"), "the killed voter: {described}");

    // A full restart of all three keeps every topic.
    for node in &mut nodes {
        node.kill9();
    }
    start_all(&mut nodes, &voters);
    for node in &nodes {
        await_topics(node, &["spread"]).await;
        let after = client(node).await.refresh_topic("after-failover").await.unwrap();
        assert_eq!(after.partitions.len(), 2, "node {}: {after:?}", node.id);
    }
    let described = cluster_describe(&voters);
    assert_eq!(described.matches("\talive").count(), 3, "{described}");
    describe_cluster_over_kafka(&nodes).await;

    // A data directory of another cluster (here, a single node's) is
    // refused with a clear message, and nothing in it is touched.
    let single = root.path().join("single");
    let mut alone = Node::new(root.path(), 1);
    alone.data = single.clone();
    alone.log = root.path().join("single.log");
    let stderr = File::create(&alone.log).unwrap();
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .args(["--data-dir", single.to_str().unwrap(), "--io", "std"])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stderr(stderr);
    let (child, ready) = spawn_serve(command);
    alone.child = Some(child);
    alone.await_ready(ready);
    create(&alone, "mine", 1, 1).await;
    alone.kill9();
    let ready = alone.spawn(&format!("1@127.0.0.1:{}", free_ports(1)[0]));
    let line = ready.recv_timeout(READY_WAIT).unwrap_or_default();
    assert!(line.is_empty(), "a data directory of another cluster was served: {line}");
    let status = alone.child.take().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(&alone.log).unwrap();
    assert!(log.contains("this data directory belongs to cluster"), "{}", log_tail(&alone.log));
    assert!(single.join("mine-0").is_dir(), "the refused node deleted nothing");
}

/// Replication factor 3: followers catch up and join the ISR; acks=all
/// produces are replicated; `kill -9` of the partition's leader gives a new
/// leader from the ISR, which holds every acknowledged record, and takes
/// writes; the killed node comes back, catches up and rejoins the ISR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_partition_fails_over_without_losing_acknowledged_records() {
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, voters) = three_nodes(root.path());
    start_all(&mut nodes, &voters);
    create(&nodes[0], "replicated", 1, 3).await;
    let info =
        await_partition(&nodes[0], "replicated", CONVERGE_WAIT, "all three in the ISR", |p| p.isr.len() == 3)
            .await;
    let leader = info.leader;
    let controller = controller_leader(&voters);
    eprintln!("replicated-0: leader {leader}, ISR {:?}; controller leader {controller:?}", info.isr);

    let producer = client(&nodes[0]).await;
    let mut acked = Vec::new();
    for i in 0..50 {
        let value = Bytes::from(format!("record-{i}"));
        let record = ProducerRecord { key: None, value: Some(value.clone()) };
        producer.produce("replicated", 0, &[record], Acks::All).await.unwrap();
        acked.push(value);
    }
    // DeleteRecords answers once every ISR member moved its log start, so
    // no failover can bring the first five back.
    assert_eq!(producer.delete_records("replicated", 0, 5).await.unwrap(), 5);
    acked.drain(..5);

    // Killing the controller leader too costs an election first, and the
    // new controller gives every broker a whole session before fencing it
    // (as KRaft's does: it cannot know when the dead one last heartbeated).
    let bound = if controller == Some(leader) {
        FAILOVER_BOUND_PARTITION + FAILOVER_BOUND
    } else {
        FAILOVER_BOUND_PARTITION
    };
    nodes[leader as usize - 1].kill9();
    let killed = Instant::now();
    let survivor = nodes.iter().find(|n| n.id != leader).unwrap();
    let info = await_partition(survivor, "replicated", bound, "a new leader", |p| {
        p.leader > 0 && p.leader != leader
    })
    .await;
    eprintln!(
        "leader {leader} killed; {} leads after {:?}, ISR {:?}",
        info.leader,
        killed.elapsed(),
        info.isr
    );
    assert!(!info.isr.contains(&leader), "{info:?}");
    let new_leader = &nodes[info.leader as usize - 1];
    let deadline = Instant::now() + CONVERGE_WAIT;
    let consumed = loop {
        // The new leader serves reads once its followers showed it what
        // is replicated (LEADER_NOT_AVAILABLE until then, retried).
        let consumed = consume_all(new_leader, "replicated").await;
        if consumed.len() >= acked.len() || Instant::now() > deadline {
            break consumed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(consumed, acked, "every acknowledged record not deleted, in order, on the new leader");

    let producer = client(new_leader).await;
    let record = ProducerRecord { key: None, value: Some(Bytes::from("after failover")) };
    producer.produce("replicated", 0, &[record], Acks::All).await.unwrap();

    // The killed node returns, catches up and is back in the ISR.
    let ready = nodes[leader as usize - 1].spawn(&voters);
    nodes[leader as usize - 1].await_ready(ready);
    await_partition(&nodes[0], "replicated", CONVERGE_WAIT, "the returned node in the ISR", |p| {
        p.isr.len() == 3
    })
    .await;
}
