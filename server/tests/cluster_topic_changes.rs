//! Changing a topic in a three-node cluster (`ringtail serve` processes,
//! each a broker and a controller voter): CreatePartitions and
//! IncrementalAlterConfigs asked at one node go through the quorum, and
//! every node then reports the new partitions, with leaders that take
//! records, and the new configs; a bad value is refused everywhere; a full
//! restart keeps both.

mod cluster_support;
mod server_support;

use bytes::Bytes;
use cluster_support::{
    await_topic, client, create, read_partition, start_all, three_nodes, Node, CONVERGE_WAIT,
};
use ringtail_client::admin::AlterConfigOp;
use ringtail_client::{Acks, ProducerRecord};
use std::time::{Duration, Instant};

/// Waits until `node` describes `key` of `topic` as `value`.
async fn await_config(node: &Node, topic: &str, key: &str, value: &str) {
    let deadline = Instant::now() + CONVERGE_WAIT;
    loop {
        let configs = client(node).await.describe_topic_configs(topic).await;
        let seen =
            configs.as_ref().ok().and_then(|c| c.iter().find(|e| e.name == key)).map(|e| e.value.clone());
        if seen == Some(Some(value.to_string())) {
            return;
        }
        assert!(Instant::now() < deadline, "node {}: {key} of {topic} is {seen:?}, not {value}", node.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every node reports `topic` with `count` partitions, each led and with
/// three replicas.
async fn await_grown(nodes: &[Node], topic: &str, count: usize) {
    for node in nodes {
        let what = format!("{count} partitions, each led");
        await_topic(node, topic, CONVERGE_WAIT, &what, |t| {
            t.partitions.len() == count && t.partitions.iter().all(|p| p.leader >= 0 && p.replicas.len() == 3)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_grows_a_topic_and_changes_its_configs_on_every_node() {
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, voters) = three_nodes(root.path());
    start_all(&mut nodes, &voters);
    create(&nodes[0], "grow", 1, 3).await;
    await_grown(&nodes, "grow", 1).await;

    client(&nodes[1]).await.create_partitions("grow", 3).await.unwrap();
    await_grown(&nodes, "grow", 3).await;
    let producer = client(&nodes[2]).await;
    for partition in [1, 2] {
        let record = ProducerRecord { key: None, value: Some(Bytes::from(format!("into {partition}"))) };
        producer.produce("grow", partition, &[record], Acks::All).await.unwrap();
        let read = read_partition(&nodes[0], "grow", partition).await.unwrap();
        let values: Vec<Bytes> = read.into_iter().filter_map(|r| r.value).collect();
        assert_eq!(values, [Bytes::from(format!("into {partition}"))], "partition {partition}");
    }
    let shrink = client(&nodes[0]).await.create_partitions("grow", 2).await.unwrap_err();
    assert!(shrink.to_string().contains("INVALID_PARTITIONS"), "{shrink}");

    let set = |key: &str, value: &str| AlterConfigOp::Set { key: key.into(), value: value.into() };
    client(&nodes[2]).await.alter_topic_configs("grow", &[set("retention.ms", "5000")]).await.unwrap();
    for node in &nodes {
        await_config(node, "grow", "retention.ms", "5000").await;
    }
    let bad = client(&nodes[0]).await.alter_topic_configs("grow", &[set("retention.ms", "soon")]).await;
    assert!(bad.unwrap_err().to_string().contains("INVALID_CONFIG"));

    for node in &mut nodes {
        node.kill9();
    }
    start_all(&mut nodes, &voters);
    await_grown(&nodes, "grow", 3).await;
    for node in &nodes {
        await_config(node, "grow", "retention.ms", "5000").await;
    }
}
