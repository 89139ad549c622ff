//! Consumer groups end to end with librdkafka (through the rdkafka crate):
//! a group of three on six partitions losing a member to SIGKILL, offsets
//! committed and found again after a clean restart and after `kill -9` of
//! the server, the cooperative-sticky assignor, and static membership.
//!
//! A member that must die without leaving runs in a child process: this
//! test executable re-invoked on `child_consumer_process` with
//! `RINGTAIL_GROUP_CHILD` set, printing what it is assigned and consumes.

mod server_support;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use server_support::{data_dir, group_config, ready_address, spawn_serve, GROUP_TEST_FLAGS};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a group may take to settle or to consume what it should.
const DEADLINE: Duration = Duration::from_secs(90);
const CHILD_ENV: &str = "RINGTAIL_GROUP_CHILD";
const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");

/// One consumed record: (partition, offset, value).
type Rec = (i32, i64, String);

fn consumer_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
        .set("fetch.wait.max.ms", "100")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .set("topic.metadata.refresh.interval.ms", "1000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
}

async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin.create_topics([&new], &AdminOptions::new()).await.unwrap();
    for result in results {
        result.unwrap_or_else(|(name, e)| panic!("creating {name}: {e}"));
    }
}

/// Produces `count` records round-robin over `partitions`, values
/// `{prefix}-{i}`; returns them as (partition, value).
async fn produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    prefix: &str,
    count: usize,
) -> Vec<(i32, String)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let mut sent = Vec::new();
    let mut pending = Vec::new();
    for i in 0..count {
        let partition = (i as i32) % partitions;
        let value = format!("{prefix}-{i}");
        let record = FutureRecord::<(), _>::to(topic).payload(&value).partition(partition);
        pending.push(producer.send_result(record).unwrap());
        sent.push((partition, value));
    }
    for delivery in pending {
        delivery.await.unwrap().unwrap_or_else(|(e, _)| panic!("produce failed: {e}"));
    }
    sent
}

/// A group member polling on a thread of its own, recording what it is
/// assigned and what it consumes.
struct Member {
    records: Arc<Mutex<Vec<Rec>>>,
    assignment: Arc<Mutex<Vec<i32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn start(config: ClientConfig, topic: &str) -> Member {
        let records = Arc::new(Mutex::new(Vec::new()));
        let assignment = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, a, s, topic) = (records.clone(), assignment.clone(), stop.clone(), topic.to_owned());
        let thread = std::thread::spawn(move || {
            let consumer: BaseConsumer = config.create().unwrap();
            consumer.subscribe(&[&topic]).unwrap();
            while !s.load(Ordering::Relaxed) {
                if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                    match message {
                        Ok(m) => {
                            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                            r.lock().unwrap().push((m.partition(), m.offset(), value));
                        }
                        Err(e) => eprintln!("consumer error (retried by librdkafka): {e}"),
                    }
                }
                *a.lock().unwrap() = partitions_of(&consumer);
            }
            // Dropping the consumer closes it: it commits and leaves.
        });
        Member { records, assignment, stop, thread: Some(thread) }
    }

    fn assignment(&self) -> Vec<i32> {
        self.assignment.lock().unwrap().clone()
    }

    fn records(&self) -> Vec<Rec> {
        self.records.lock().unwrap().clone()
    }

    /// Stops polling and closes the consumer (a clean leave).
    fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn partitions_of<C: rdkafka::consumer::ConsumerContext>(consumer: &BaseConsumer<C>) -> Vec<i32> {
    let mut partitions: Vec<i32> = consumer
        .assignment()
        .map(|l| l.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default();
    partitions.sort_unstable();
    partitions
}

/// Waits until `done` holds, polling every 100 ms; panics with `what` and
/// `state()` after `DEADLINE`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool, state: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}: {}", state());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A consumer in a child process, which the test can SIGKILL.
struct ChildMember {
    child: Child,
    assignment: Arc<Mutex<Vec<i32>>>,
    records: Arc<Mutex<Vec<Rec>>>,
}

impl ChildMember {
    fn start(bootstrap: &str, group: &str, topic: &str) -> ChildMember {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_consumer_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{bootstrap} {group} {topic}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let assignment = Arc::new(Mutex::new(Vec::new()));
        let records = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (assignment.clone(), records.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest's "test child_consumer_process ... " may precede
                // the first line on the same line.
                let Some(at) = line.find("RT-") else { continue };
                let mut words = line[at..].split(' ');
                match (words.next(), words.next()) {
                    (Some("RT-ASSIGN"), list) => {
                        *a.lock().unwrap() =
                            list.unwrap_or("").split(',').filter_map(|p| p.parse().ok()).collect();
                    }
                    (Some("RT-RECORD"), Some(partition)) => {
                        let offset = words.next().and_then(|o| o.parse().ok()).unwrap_or(-1);
                        let value = words.next().unwrap_or("").to_owned();
                        r.lock().unwrap().push((partition.parse().unwrap_or(-1), offset, value));
                    }
                    _ => {}
                }
            }
        });
        ChildMember { child, assignment, records }
    }

    fn assignment(&self) -> Vec<i32> {
        self.assignment.lock().unwrap().clone()
    }

    /// SIGKILL: the member vanishes without leaving the group.
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side of `ChildMember`: a plain test that does nothing
/// unless `RINGTAIL_GROUP_CHILD` names a server, group and topic; then it
/// consumes until killed, printing its assignment and every record.
#[test]
fn child_consumer_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let mut parts = spec.split(' ');
    let (bootstrap, group, topic) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let consumer: BaseConsumer = consumer_config(bootstrap, group, &[]).create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = std::io::stdout().lock();
    let mut assigned = Vec::new();
    loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            writeln!(out, "RT-RECORD {} {} {value}", m.partition(), m.offset()).unwrap();
            out.flush().unwrap();
        }
        let now = partitions_of(&consumer);
        if now != assigned {
            let list: Vec<String> = now.iter().map(i32::to_string).collect();
            writeln!(out, "RT-ASSIGN {}", list.join(",")).unwrap();
            out.flush().unwrap();
            assigned = now;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_share_six_partitions_and_survive_a_killed_member() {
    let dir = data_dir("groups-kill-member");
    let server = ringtail_server::serve::start(group_config(dir.path())).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    let (topic, group) = ("g-events", "g-three");
    create_topic(&bootstrap, topic, 6).await;

    let mut child = ChildMember::start(&bootstrap, group, topic);
    let members: Vec<Member> =
        (0..2).map(|_| Member::start(consumer_config(&bootstrap, group, &[]), topic)).collect();
    let owned = |child: &ChildMember, members: &[Member]| {
        let mut all = vec![child.assignment()];
        all.extend(members.iter().map(Member::assignment));
        all
    };
    tokio::task::block_in_place(|| {
        wait_until(
            "three members with two partitions each",
            || owned(&child, &members).iter().all(|a| a.len() == 2),
            || format!("{:?}", owned(&child, &members)),
        )
    });
    let all: BTreeSet<i32> = owned(&child, &members).into_iter().flatten().collect();
    assert_eq!(all, (0..6).collect(), "one owner per partition");

    let mut produced = produce(&bootstrap, topic, 6, "before", 300).await;
    let consumed = |child: &ChildMember, members: &[Member]| {
        let mut values: BTreeSet<String> =
            child.records.lock().unwrap().iter().map(|r| r.2.clone()).collect();
        values.extend(members.iter().flat_map(|m| m.records()).map(|r| r.2));
        values
    };
    let expected: BTreeSet<String> = produced.iter().map(|(_, v)| v.clone()).collect();
    tokio::task::block_in_place(|| {
        wait_until(
            "the first records consumed",
            || consumed(&child, &members).is_superset(&expected),
            || format!("{} of {} consumed", consumed(&child, &members).len(), expected.len()),
        )
    });

    child.kill9();
    produced.extend(produce(&bootstrap, topic, 6, "after", 300).await);
    tokio::task::block_in_place(|| {
        wait_until(
            "the two survivors to own all six partitions",
            || {
                let (a, b) = (members[0].assignment(), members[1].assignment());
                a.len() + b.len() == 6 && a.iter().all(|p| !b.contains(p))
            },
            || format!("{:?}", members.iter().map(Member::assignment).collect::<Vec<_>>()),
        )
    });
    let expected: BTreeSet<String> = produced.iter().map(|(_, v)| v.clone()).collect();
    tokio::task::block_in_place(|| {
        wait_until(
            "every record consumed by the group",
            || consumed(&child, &members).is_superset(&expected),
            || {
                let missing: Vec<_> =
                    expected.difference(&consumed(&child, &members)).take(10).cloned().collect();
                format!("missing {missing:?}")
            },
        )
    });
    assert_eq!(consumed(&child, &members), expected, "nothing but what was produced");
    // The survivors' records of each partition come from that partition.
    for m in &members {
        for (partition, _, value) in m.records() {
            let sent = produced.iter().find(|(_, v)| *v == value).unwrap();
            assert_eq!(sent.0, partition, "{value}");
        }
    }
    tokio::task::block_in_place(|| members.into_iter().for_each(Member::close));
    server.shutdown().await.unwrap();
}

/// Consumes `want` records in `group` without auto commit, commits exactly
/// what it consumed (synchronously), and closes; returns the committed
/// offsets per partition.
fn consume_and_commit(bootstrap: &str, group: &str, topic: &str, want: usize) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer =
        consumer_config(bootstrap, group, &[("enable.auto.commit", "false")]).create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let started = Instant::now();
    while count < want {
        assert!(started.elapsed() < DEADLINE, "consumed only {count} of {want}");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            next.insert(m.partition(), m.offset() + 1);
            count += 1;
        }
    }
    let mut list = TopicPartitionList::new();
    for (partition, offset) in &next {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset)).unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).unwrap();
    let committed = consumer.committed(Duration::from_secs(20)).unwrap();
    for (partition, offset) in &next {
        let found = committed.find_partition(topic, *partition).unwrap().offset();
        assert_eq!(found, Offset::Offset(*offset), "partition {partition} as committed");
    }
    next
}

/// A new member of `group` starts each partition at its committed offset
/// (and the rest of `total` records per partition follow).
fn resumes_from(
    bootstrap: &str,
    group: &str,
    topic: &str,
    committed: &BTreeMap<i32, i64>,
    per_partition: i64,
) {
    // auto.offset.reset=latest: a partition without a commit would start at
    // its end, so records from below a commit can only come from a wrong one.
    let config = consumer_config(
        bootstrap,
        group,
        &[("enable.auto.commit", "false"), ("auto.offset.reset", "latest")],
    );
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let want: i64 = committed.values().map(|o| per_partition - o).sum();
    let started = Instant::now();
    while count < want {
        assert!(
            started.elapsed() < DEADLINE,
            "consumed {count} of {want} after the restart; first {first:?}"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.entry(m.partition()).or_insert(m.offset());
            count += 1;
        }
    }
    let resumed: BTreeMap<i32, i64> =
        committed.iter().filter(|(_, o)| **o < per_partition).map(|(p, o)| (*p, *o)).collect();
    assert_eq!(first, resumed, "each partition resumes at its committed offset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_clean_restart() {
    let dir = data_dir("groups-restart");
    let (topic, group) = ("g-restart", "g-restart-group");
    let server = ringtail_server::serve::start(group_config(dir.path())).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    create_topic(&bootstrap, topic, 2).await;
    produce(&bootstrap, topic, 2, "r", 200).await;
    let committed = tokio::task::block_in_place(|| consume_and_commit(&bootstrap, group, topic, 120));
    server.shutdown().await.unwrap();

    let server = ringtail_server::serve::start(group_config(dir.path())).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    tokio::task::block_in_place(|| resumes_from(&bootstrap, group, topic, &committed, 100));
    server.shutdown().await.unwrap();
}

/// A `ringtail serve` process, for `kill -9`.
struct ServerProcess {
    child: Child,
    kafka: String,
}

impl ServerProcess {
    fn start(data: &Path) -> ServerProcess {
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .args(["--data-dir", data.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--flush", "always"])
            .args(GROUP_TEST_FLAGS)
            .stderr(Stdio::inherit());
        let (child, rx) = spawn_serve(command);
        let ready = rx.recv_timeout(DEADLINE).expect("no readiness line");
        let kafka = ready_address(&ready, "kafka on ");
        ServerProcess { child, kafka }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_kill_9_of_the_server() {
    let dir = data_dir("groups-kill9");
    let (topic, group) = ("g-kill9", "g-kill9-group");
    let mut server = ServerProcess::start(dir.path());
    create_topic(&server.kafka, topic, 2).await;
    produce(&server.kafka, topic, 2, "k", 200).await;
    let committed = tokio::task::block_in_place(|| consume_and_commit(&server.kafka, group, topic, 120));
    server.kill9();

    let server = ServerProcess::start(dir.path());
    tokio::task::block_in_place(|| resumes_from(&server.kafka, group, topic, &committed, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_group_of_two_shares_and_consumes_everything() {
    let dir = data_dir("groups-cooperative");
    let server = ringtail_server::serve::start(group_config(dir.path())).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    let (topic, group) = ("g-coop", "g-coop-group");
    create_topic(&bootstrap, topic, 4).await;
    let sticky = [("partition.assignment.strategy", "cooperative-sticky")];
    let first = Member::start(consumer_config(&bootstrap, group, &sticky), topic);
    tokio::task::block_in_place(|| {
        wait_until(
            "the first member to own everything",
            || first.assignment().len() == 4,
            || format!("{:?}", first.assignment()),
        )
    });
    let produced = produce(&bootstrap, topic, 4, "c", 200).await;
    let second = Member::start(consumer_config(&bootstrap, group, &sticky), topic);
    tokio::task::block_in_place(|| {
        wait_until(
            "two partitions each",
            || first.assignment().len() == 2 && second.assignment().len() == 2,
            || format!("{:?} {:?}", first.assignment(), second.assignment()),
        )
    });
    let (a, b) = (first.assignment(), second.assignment());
    assert!(a.iter().all(|p| !b.contains(p)), "{a:?} {b:?}");
    let mut produced = produced;
    produced.extend(produce(&bootstrap, topic, 4, "d", 200).await);
    let expected: BTreeSet<String> = produced.into_iter().map(|(_, v)| v).collect();
    let consumed =
        || -> BTreeSet<String> { first.records().into_iter().chain(second.records()).map(|r| r.2).collect() };
    tokio::task::block_in_place(|| {
        wait_until(
            "everything consumed",
            || consumed().is_superset(&expected),
            || format!("{} of {}", consumed().len(), expected.len()),
        )
    });
    assert_eq!(consumed(), expected);
    tokio::task::block_in_place(|| {
        first.close();
        second.close();
    });
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarted_within_its_session_keeps_its_partitions() {
    let dir = data_dir("groups-static");
    let server = ringtail_server::serve::start(group_config(dir.path())).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    let (topic, group) = ("g-static", "g-static-group");
    create_topic(&bootstrap, topic, 4).await;
    // A session long enough for the restart; a closed static member does
    // not leave the group (KIP-345), so its partitions wait for it.
    let config = |instance: &str| {
        consumer_config(
            &bootstrap,
            group,
            &[("group.instance.id", instance), ("session.timeout.ms", "20000")],
        )
    };
    let one = Member::start(config("static-1"), topic);
    let two = Member::start(config("static-2"), topic);
    tokio::task::block_in_place(|| {
        wait_until(
            "two partitions each",
            || one.assignment().len() == 2 && two.assignment().len() == 2,
            || format!("{:?} {:?}", one.assignment(), two.assignment()),
        )
    });
    let (before_one, before_two) = (one.assignment(), two.assignment());
    tokio::task::block_in_place(|| one.close());
    let again = Member::start(config("static-1"), topic);
    tokio::task::block_in_place(|| {
        wait_until(
            "the restarted member's assignment",
            || !again.assignment().is_empty(),
            || format!("{:?}", again.assignment()),
        )
    });
    // Give a (wrong) rebalance the time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(again.assignment(), before_one, "the restarted static member keeps its partitions");
    assert_eq!(two.assignment(), before_two, "the other member is not disturbed");
    tokio::task::block_in_place(|| {
        again.close();
        two.close();
    });
    server.shutdown().await.unwrap();
}
