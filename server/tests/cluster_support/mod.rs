//! Shared by the cluster tests: `ringtail serve` processes on one host,
//! started as a user would start them (`--controllers` naming the voters),
//! stopped with `kill -9` or SIGTERM and started again on the same data
//! directory; and the questions the tests ask of the cluster (Metadata
//! polled until a partition is as wanted, a partition read to its high
//! watermark, `ringtail cluster describe`).
//!
//! A node dropped while its test is panicking prints the tail of its log,
//! so every failure shows what each node said last.

#![allow(dead_code)] // each test file uses a different part

use crate::server_support::{ready_address, spawn_serve};
use bytes::Bytes;
use ringtail_client::{
    Client, ClientConfig, ConsumedRecord, FetchOptions, FetchPosition, NewTopic, PartitionInfo, TopicInfo,
};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");
/// A debug build on a loaded two-core machine can be slow to start.
pub const READY_WAIT: Duration = Duration::from_secs(90);
/// The bound on a partition's new leader after its leader dies
/// (the controller's broker session timeout, 9 s, is most of it).
pub const FAILOVER_BOUND_PARTITION: Duration = Duration::from_secs(10);
/// How long a metadata change may take to reach every broker, or a
/// returning follower to catch up and rejoin the ISR.
pub const CONVERGE_WAIT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd server may take to stop (it drains requests in
/// flight and closes its logs).
pub const STOP_WAIT: Duration = Duration::from_secs(30);
/// Lines of a node's log shown when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// One `ringtail serve` process (or none, while it is stopped) with its
/// data directory and log file, which outlive it.
pub struct Node {
    pub id: i32,
    pub data: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    /// The Kafka listener's address, from its last readiness line.
    pub kafka: String,
    /// The last readiness line (it names every listener's address).
    pub ready_line: String,
    /// Arguments of `ringtail serve` beyond those every node gets.
    pub extra_args: Vec<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", log_tail(&self.log));
        }
        self.kill9();
    }
}

impl Node {
    /// Node `id` with its data directory and log in `root`; not started.
    pub fn new(root: &Path, id: i32) -> Node {
        Node {
            id,
            data: root.join(format!("d{id}")),
            log: root.join(format!("node{id}.log")),
            child: None,
            kafka: String::new(),
            ready_line: String::new(),
            extra_args: Vec::new(),
        }
    }

    /// Starts the process (its log appended to the node's log file) and
    /// returns the channel its readiness line arrives on.
    pub fn spawn(&mut self, voters: &str) -> std::sync::mpsc::Receiver<String> {
        let stderr = File::options().create(true).append(true).open(&self.log).unwrap();
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .args(["--node-id", &self.id.to_string(), "--controllers", voters])
            .args(["--data-dir", self.data.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--io", "std"])
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stderr(stderr);
        let (child, ready) = spawn_serve(command);
        self.child = Some(child);
        ready
    }

    pub fn await_ready(&mut self, ready: std::sync::mpsc::Receiver<String>) {
        match ready.recv_timeout(READY_WAIT) {
            Ok(line) if !line.is_empty() => {
                self.kafka = ready_address(&line, "kafka on ");
                self.ready_line = line;
            }
            _ => panic!("node {} did not become ready\n{}", self.id, log_tail(&self.log)),
        }
    }

    /// Starts the node and waits for its readiness line (a restart, or
    /// the first start of a node joining a running quorum).
    pub fn start(&mut self, voters: &str) {
        let ready = self.spawn(voters);
        self.await_ready(ready);
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM, as an operator would, and waits
    /// for it to exit: its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running node to terminate");
        // SAFETY: kill(2) on the pid of a child this test started and has
        // not yet waited for, so the pid is still that child's.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {} did not stop {STOP_WAIT:?} after SIGTERM\n{}", self.id, log_tail(&self.log));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The last lines of a node's log.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!("--- {} ---\n{}", log.display(), lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n"))
}

/// Ports free now (bound and released), for the controllers, which must
/// be known to every node before any starts.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Starts every node (all at once: each waits for a quorum before it is
/// ready) and waits until each is.
pub fn start_all(nodes: &mut [Node], voters: &str) {
    let ready: Vec<_> = nodes.iter_mut().map(|n| n.spawn(voters)).collect();
    for (node, ready) in nodes.iter_mut().zip(ready) {
        node.await_ready(ready);
    }
}

/// Nodes 1..=`nodes` in `root`, not started yet, and the `--controllers`
/// list naming the first `voters` of them: those are brokers and voters
/// (combined mode), the rest brokers only.
pub fn cluster_nodes(root: &Path, nodes: i32, voters: i32) -> (Vec<Node>, String) {
    assert!(voters <= nodes);
    let ports = free_ports(voters as usize);
    let voters = (1..=voters).map(|i| format!("{i}@127.0.0.1:{}", ports[i as usize - 1])).collect::<Vec<_>>();
    ((1..=nodes).map(|id| Node::new(root, id)).collect(), voters.join(","))
}

/// Three nodes, each a broker and a voter, in `root`: not started yet,
/// and the `--controllers` list naming them.
pub fn three_nodes(root: &Path) -> (Vec<Node>, String) {
    cluster_nodes(root, 3, 3)
}

/// The node with id `id`.
pub fn node(nodes: &[Node], id: i32) -> &Node {
    nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
}

pub fn node_mut(nodes: &mut [Node], id: i32) -> &mut Node {
    nodes.iter_mut().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
}

/// Every node's Kafka address, comma-separated: a client's bootstrap list.
pub fn bootstrap(nodes: &[Node]) -> String {
    nodes.iter().map(|n| n.kafka.as_str()).collect::<Vec<_>>().join(",")
}

pub fn cluster_describe(voters: &str) -> String {
    let out = Command::new(BINARY).args(["cluster", "describe", "--controllers", voters]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The leader `cluster describe` reports, if any.
pub fn controller_leader(voters: &str) -> Option<i32> {
    let described = cluster_describe(voters);
    let line = described.lines().find_map(|l| l.strip_prefix("Controller leader: "))?;
    line.split_whitespace().next()?.parse().ok()
}

pub async fn client(node: &Node) -> Client {
    Client::connect(&node.kafka, ClientConfig::default()).await.unwrap()
}

/// Creates a topic, retrying while the quorum is between leaders.
pub async fn create(node: &Node, name: &str, partitions: i32, replication_factor: i16) {
    create_with_configs(node, name, partitions, replication_factor, &[]).await;
}

/// Creates a topic with topic configs, retrying while the quorum is
/// between leaders. An attempt whose answer was lost may have created it,
/// so TOPIC_ALREADY_EXISTS on a later attempt counts as created.
pub async fn create_with_configs(
    node: &Node,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
) {
    let deadline = Instant::now() + CONVERGE_WAIT;
    let topic = NewTopic {
        name: name.into(),
        partitions: Some(partitions),
        replication_factor: Some(replication_factor),
        configs: configs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    };
    let mut retried = false;
    loop {
        let result = client(node).await.create_topic(&topic).await;
        match result {
            Ok(()) => return,
            Err(e) if retried && e.to_string().contains("TOPIC_ALREADY_EXISTS") => return,
            Err(e) if Instant::now() < deadline => eprintln!("create {name} on node {}: {e}; again", node.id),
            Err(e) => panic!("create {name} on node {}: {e}", node.id),
        }
        retried = true;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The topic as `node` reports it.
pub async fn topic_info(node: &Node, topic: &str) -> Result<TopicInfo, String> {
    let c = Client::connect(&node.kafka, ClientConfig::default()).await.map_err(|e| e.to_string())?;
    c.refresh_topic(topic).await.map_err(|e| e.to_string())
}

/// Waits until `node` reports `topic` as `wanted` says, within `bound`;
/// the panic names what was awaited and what was seen last.
pub async fn await_topic(
    node: &Node,
    topic: &str,
    bound: Duration,
    what: &str,
    wanted: impl Fn(&TopicInfo) -> bool,
) -> TopicInfo {
    let deadline = Instant::now() + bound;
    loop {
        let info = topic_info(node, topic).await;
        match info {
            Ok(info) if wanted(&info) => return info,
            seen if Instant::now() > deadline => {
                panic!("node {}: {what} not within {bound:?}; last seen {seen:?}", node.id)
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until `node` reports `topic`-0 as `wanted` says, within `bound`.
pub async fn await_partition(
    node: &Node,
    topic: &str,
    bound: Duration,
    what: &str,
    wanted: impl Fn(&PartitionInfo) -> bool,
) -> PartitionInfo {
    let info = await_topic(node, topic, bound, what, |t| t.partitions.first().is_some_and(&wanted)).await;
    info.partitions[0].clone()
}

/// True if every partition of `topic` has a leader and all of its
/// replicas in the ISR.
pub fn isr_whole(topic: &TopicInfo) -> bool {
    !topic.partitions.is_empty()
        && topic.partitions.iter().all(|p| {
            let mut isr = p.isr.clone();
            isr.sort_unstable();
            let mut replicas = p.replicas.clone();
            replicas.sort_unstable();
            p.leader >= 0 && isr == replicas
        })
}

/// Every record of `topic`-`partition` from its log start up to the high
/// watermark its leader reports, read with `node` as the bootstrap (the
/// client routes each fetch to the partition's leader).
pub async fn read_partition(
    node: &Node,
    topic: &str,
    partition: i32,
) -> Result<Vec<ConsumedRecord>, ringtail_client::ClientError> {
    let client = Client::connect(&node.kafka, ClientConfig::default()).await?;
    let options = FetchOptions { max_wait: Duration::from_millis(100), ..FetchOptions::default() };
    let mut records = Vec::new();
    let mut offset = client.list_offset(topic, partition, ringtail_client::OffsetSpec::Earliest).await?;
    loop {
        let position = FetchPosition { partition, offset };
        let fetched = client.fetch(topic, &[position], &options).await?;
        let Some(fetched) = fetched.into_iter().next() else { return Ok(records) };
        if fetched.records.is_empty() || fetched.next_offset >= fetched.high_watermark {
            records.extend(fetched.records);
            return Ok(records);
        }
        offset = fetched.next_offset;
        records.extend(fetched.records);
    }
}

/// Every record value of `topic`-0 from its log start, read from its leader.
pub async fn consume_all(node: &Node, topic: &str) -> Vec<Bytes> {
    let records = read_partition(node, topic, 0).await.unwrap();
    records.into_iter().filter_map(|r| r.value).collect()
}
