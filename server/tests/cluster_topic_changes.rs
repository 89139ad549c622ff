//! Changing a topic in a three-node cluster (`ringtail serve` processes,
//! each a broker and a controller voter): CreatePartitions and
//! IncrementalAlterConfigs asked at one node go through the quorum, and
//! every node then reports the new partitions, with leaders that take
//! records, and the new configs; a bad value is refused everywhere; a full
//! restart keeps both. Then a preferred replica that was killed and came
//! back in sync leads again once `ringtail topic elect-leaders` asks.

mod cluster_support;
mod server_support;

use bytes::Bytes;
use cluster_support::{
    await_topic, bootstrap, client, create, isr_whole, node_mut, read_partition, start_all, three_nodes,
    Node, BINARY, CONVERGE_WAIT,
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

/// `ringtail topic elect-leaders TOPIC` until no partition lacks its
/// preferred leader for want of an ISR the controller has not seen yet:
/// its output, each partition elected or needing no election.
fn elect_preferred_leaders(nodes: &[Node], topic: &str) -> String {
    let deadline = Instant::now() + CONVERGE_WAIT;
    loop {
        let out = std::process::Command::new(BINARY)
            .args(["topic", "elect-leaders", topic, "--bootstrap", &bootstrap(nodes)])
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            return stdout.into_owned();
        }
        let not_yet = stdout.contains("PREFERRED_LEADER_NOT_AVAILABLE");
        assert!(not_yet && Instant::now() < deadline, "elect-leaders failed: {stdout}{stderr}");
        std::thread::sleep(Duration::from_millis(200));
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

    // After the full restart leaders may be anywhere: an election gives
    // each partition its preferred replica back. Then partition 0's is
    // killed and restarts: leadership moves off it (a restart is a new,
    // fenced incarnation) and stays off once it is back in the ISR, until
    // the election is asked for again. (The controller's own rebalancing,
    // every 300 s by default, would do the same; had it come first, the
    // election would simply not be needed.)
    await_topic(&nodes[0], "grow", CONVERGE_WAIT, "every ISR whole", isr_whole).await;
    assert_elected(&elect_preferred_leaders(&nodes, "grow"), 3, None);
    let led = await_preferred_leaders(&nodes, "grow", 3).await;
    let (preferred, epoch) = (led.partitions[0].leader, led.partitions[0].leader_epoch);
    node_mut(&mut nodes, preferred).kill9();
    node_mut(&mut nodes, preferred).start(&voters);
    let what = "partition 0 led anew and every ISR whole again";
    let back = await_topic(&nodes[0], "grow", CONVERGE_WAIT, what, |t| {
        isr_whole(t) && t.partitions[0].leader_epoch > epoch
    })
    .await;
    let moved = back.partitions[0].leader != preferred;
    let elected = elect_preferred_leaders(&nodes, "grow");
    assert_elected(&elected, 3, moved.then_some(0));
    await_preferred_leaders(&nodes, "grow", 3).await;
}

/// `ringtail topic elect-leaders` printed a line per partition, each
/// elected or needing no election, and `elected` among the elected.
fn assert_elected(out: &str, partitions: usize, elected: Option<usize>) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), partitions, "{out}");
    for (p, line) in lines.iter().enumerate() {
        let outcome =
            line.strip_prefix(&format!("Partition {p} of grow: ")).unwrap_or_else(|| panic!("{out}"));
        let ok = outcome == "new leader elected." || outcome.starts_with("ELECTION_NOT_NEEDED");
        assert!(ok, "{out}");
        if elected == Some(p) {
            assert_eq!(outcome, "new leader elected.", "{out}");
        }
    }
}

/// Waits until every node reports each of the `count` partitions of
/// `topic` led by its first replica; the topic as the first node saw it.
async fn await_preferred_leaders(nodes: &[Node], topic: &str, count: usize) -> ringtail_client::TopicInfo {
    let mut seen = None;
    for node in nodes {
        let what = "every partition led by its preferred replica";
        let info = await_topic(node, topic, CONVERGE_WAIT, what, |t| {
            t.partitions.len() == count && t.partitions.iter().all(|p| p.replicas.first() == Some(&p.leader))
        })
        .await;
        seen.get_or_insert(info);
    }
    seen.expect("a node")
}
