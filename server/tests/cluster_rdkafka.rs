//! librdkafka (through the rdkafka crate) against several `ringtail serve`
//! processes replicating each partition, as a user's producers would meet
//! them: `kill -9` of a partition leader under an acks=all load, a rolling
//! restart under an idempotent producer, and a broker whose data directory
//! was wiped coming back and re-replicating what it hosts. Each test
//! checks every acknowledged record against what the cluster serves
//! afterwards.

mod cluster_support;
mod server_support;

use cluster_support::{
    await_topic, bootstrap, cluster_nodes, controller_leader, create, create_with_configs, isr_whole, node,
    node_mut, read_partition, start_all, three_nodes, Node, CONVERGE_WAIT, FAILOVER_BOUND_PARTITION,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use ringtail_client::TopicInfo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long librdkafka keeps retrying a record before it reports it
/// failed: well past a partition failover (the 9 s session timeout).
const MESSAGE_TIMEOUT_MS: &str = "30000";
/// Records acknowledged before a fault is injected, and after the cluster
/// recovered, for the producer to count as carrying on.
const ACKED_BEFORE_FAULT: usize = 200;
const ACKED_AFTER_RECOVERY: usize = 100;
/// A cap on what one load sends, so that no test grows without bound.
const LOAD_RECORDS_MAX: u64 = 30_000;

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS)
        .set("linger.ms", "5");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

/// The value of the load's record `seq`: distinct, and numbered so that
/// the order it was produced in can be read back.
fn value_of(seq: u64) -> String {
    format!("record-{seq:08}")
}

fn seq_of(value: &[u8]) -> u64 {
    let text = std::str::from_utf8(value).expect("a UTF-8 value");
    text.strip_prefix("record-").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not ours: {text:?}"))
}

/// One record the load sent and what became of it.
#[derive(Clone, Debug)]
struct Delivery {
    seq: u64,
    partition: i32,
    sent_at: Instant,
    /// The offset it was acknowledged at, or why librdkafka gave up.
    result: Result<i64, String>,
}

/// A producer task: record `seq` (value `value_of(seq)`) goes to partition
/// `seq % partitions`, one record every `pace`, many in flight at once,
/// until stopped. Each delivery report is kept as it arrives.
struct Load {
    stop: Arc<AtomicBool>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(producer: FutureProducer, topic: &str, partitions: i32, pace: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let (stopped, delivered, topic) = (stop.clone(), deliveries.clone(), topic.to_owned());
        let task = tokio::spawn(async move {
            let mut pending = Vec::new();
            for seq in 0..LOAD_RECORDS_MAX {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let partition = (seq % partitions as u64) as i32;
                let value = value_of(seq);
                let sent_at = Instant::now();
                let future = loop {
                    let record = FutureRecord::<(), _>::to(&topic).payload(&value).partition(partition);
                    match producer.send_result(record) {
                        Ok(future) => break future,
                        Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                            tokio::time::sleep(Duration::from_millis(10)).await
                        }
                        Err((e, _)) => panic!("librdkafka refused record {seq}: {e}"),
                    }
                };
                let delivered = delivered.clone();
                pending.push(tokio::spawn(async move {
                    let result = match future.await {
                        Ok(Ok(delivery)) => {
                            assert_eq!(delivery.partition, partition, "record {seq}");
                            Ok(delivery.offset)
                        }
                        Ok(Err((e, _))) => Err(e.to_string()),
                        Err(canceled) => Err(format!("delivery report lost: {canceled}")),
                    };
                    delivered.lock().unwrap().push(Delivery { seq, partition, sent_at, result });
                }));
                tokio::time::sleep(pace).await;
            }
            // Every report arrives within message.timeout.ms; the producer
            // lives until then.
            for report in pending {
                report.await.unwrap();
            }
            drop(producer);
        });
        Load { stop, deliveries, task }
    }

    /// Records sent at or after `since` to one of `partitions`:
    /// (acknowledged, failed).
    fn tally(&self, since: Instant, partitions: &[i32]) -> (usize, usize) {
        let deliveries = self.deliveries.lock().unwrap();
        let ours = deliveries.iter().filter(|d| d.sent_at >= since && partitions.contains(&d.partition));
        ours.fold((0, 0), |(acked, failed), d| match d.result {
            Ok(_) => (acked + 1, failed),
            Err(_) => (acked, failed + 1),
        })
    }

    /// Waits until `count` records sent at or after `since` to one of
    /// `partitions` are acknowledged.
    async fn await_acked(&self, since: Instant, partitions: &[i32], count: usize, what: &str) {
        let deadline = Instant::now() + CONVERGE_WAIT;
        loop {
            let (acked, failed) = self.tally(since, partitions);
            if acked >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {acked} of {count} records sent to partitions {partitions:?} acknowledged \
                 within {CONVERGE_WAIT:?} ({failed} failed)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops sending, waits for every delivery report: all of them, by seq.
    async fn finish(self) -> Vec<Delivery> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let mut deliveries = std::mem::take(&mut *self.deliveries.lock().unwrap());
        deliveries.sort_by_key(|d| d.seq);
        deliveries
    }
}

/// The acknowledged deliveries of `partition`: (offset, seq), by seq.
fn acked_in(deliveries: &[Delivery], partition: i32) -> Vec<(i64, u64)> {
    let ours = deliveries.iter().filter(|d| d.partition == partition);
    ours.filter_map(|d| d.result.as_ref().ok().map(|offset| (*offset, d.seq))).collect()
}

/// Every failed delivery, for the failure message.
fn failures(deliveries: &[Delivery]) -> Vec<(u64, &str)> {
    deliveries.iter().filter_map(|d| d.result.as_ref().err().map(|e| (d.seq, e.as_str()))).collect()
}

/// Reads `topic`-`partition` (offset → seq) from its leader, with `node`
/// as the bootstrap, until every acknowledged record of `acked` is there
/// or `CONVERGE_WAIT` has passed: a new leader answers only once its high
/// watermark has reached its epoch's start.
async fn read_until_present(
    node: &Node,
    topic: &str,
    partition: i32,
    acked: &[(i64, u64)],
) -> BTreeMap<i64, u64> {
    let deadline = Instant::now() + CONVERGE_WAIT;
    loop {
        let read = read_partition(node, topic, partition).await;
        let read: BTreeMap<i64, u64> = match &read {
            Ok(records) => {
                records.iter().map(|r| (r.offset, seq_of(r.value.as_deref().unwrap_or_default()))).collect()
            }
            Err(e) => {
                eprintln!("reading {topic}-{partition} through node {}: {e}; again", node.id);
                BTreeMap::new()
            }
        };
        let seqs: BTreeSet<u64> = read.values().copied().collect();
        if acked.iter().all(|(_, seq)| seqs.contains(seq)) || Instant::now() > deadline {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts that every acknowledged record of `partition` was read, at the
/// offset its acknowledgement gave.
fn assert_acked_present(partition: i32, acked: &[(i64, u64)], read: &BTreeMap<i64, u64>) {
    let seqs: BTreeSet<u64> = read.values().copied().collect();
    let missing: Vec<u64> = acked.iter().map(|(_, seq)| *seq).filter(|seq| !seqs.contains(seq)).collect();
    assert!(
        missing.is_empty(),
        "partition {partition}: {} of {} acknowledged records missing (read {}), first {:?}",
        missing.len(),
        acked.len(),
        read.len(),
        &missing[..missing.len().min(20)]
    );
    let moved: Vec<_> =
        acked.iter().filter(|(offset, seq)| read.get(offset) != Some(seq)).take(20).collect::<Vec<_>>();
    assert!(
        moved.is_empty(),
        "partition {partition}: acknowledged (offset, seq) not at that offset: {moved:?}"
    );
}

/// The partitions of `topic` that `leader` leads.
fn led_by(topic: &TopicInfo, leader: i32) -> Vec<i32> {
    topic.partitions.iter().filter(|p| p.leader == leader).map(|p| p.partition).collect()
}

/// acks=all with min.insync.replicas=2 over three combined nodes:
/// Three combined nodes started in `root`, and `topic` created with
/// replication factor 3 and min.insync.replicas=2: returned once every
/// partition's ISR is whole, with the voters list.
async fn three_nodes_with_topic(root: &Path, topic: &str, partitions: i32) -> (Vec<Node>, String, TopicInfo) {
    let (mut nodes, voters) = three_nodes(root);
    start_all(&mut nodes, &voters);
    create_with_configs(&nodes[0], topic, partitions, 3, &[("min.insync.replicas", "2")]).await;
    let info = await_topic(&nodes[0], topic, CONVERGE_WAIT, "every ISR whole", isr_whole).await;
    (nodes, voters, info)
}

/// `kill -9` of a partition leader (one that is not the controller leader,
/// whose death would first cost an election) while librdkafka produces
/// gives each partition it led a new leader from the surviving ISR within
/// the 10 s bound; the producer carries on (records sent after the
/// failover are acknowledged); every record whose delivery librdkafka
/// reported is then read back from the partitions' leaders, at the offset
/// reported (duplicates of retried batches are allowed: the producer is not
/// idempotent); and the killed node returns to every ISR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_records_survive_kill9_of_a_partition_leader_under_load() {
    const TOPIC: &str = "failover";
    const PARTITIONS: i32 = 3;
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, voters, before) = three_nodes_with_topic(root.path(), TOPIC, PARTITIONS).await;
    let configs = cluster_support::client(&nodes[0]).await.describe_topic_configs(TOPIC).await.unwrap();
    let min_insync = configs.iter().find(|c| c.name == "min.insync.replicas").and_then(|c| c.value.clone());
    assert_eq!(min_insync.as_deref(), Some("2"), "{configs:?}");

    let load = Load::start(producer(&bootstrap(&nodes), &[]), TOPIC, PARTITIONS, Duration::from_millis(2));
    let all: Vec<i32> = (0..PARTITIONS).collect();
    load.await_acked(started, &all, ACKED_BEFORE_FAULT, "before the kill").await;

    let controller = controller_leader(&voters);
    let victim = before
        .partitions
        .iter()
        .map(|p| p.leader)
        .find(|leader| Some(*leader) != controller)
        .expect("a partition leader that is not the controller leader");
    let led = led_by(&before, victim);
    eprintln!(
        "{TOPIC}: {before:?}\ncontroller leader {controller:?}; kill -9 of node {victim}, leading {led:?}"
    );
    node_mut(&mut nodes, victim).kill9();
    let killed = Instant::now();
    let survivor = nodes.iter().find(|n| n.id != victim).unwrap();
    let after = await_topic(survivor, TOPIC, FAILOVER_BOUND_PARTITION, "a new leader from the ISR", |t| {
        led.iter().all(|p| {
            let (now, then) = (&t.partitions[*p as usize], &before.partitions[*p as usize]);
            now.leader >= 0 && now.leader != victim && then.isr.contains(&now.leader)
        })
    })
    .await;
    let failover = killed.elapsed();
    eprintln!("node {victim} killed; new leaders after {failover:?}: {after:?}");
    assert!(failover <= FAILOVER_BOUND_PARTITION, "{failover:?}");
    for p in &led {
        let isr = &after.partitions[*p as usize].isr;
        assert!(!isr.contains(&victim), "{TOPIC}-{p}: the killed node still in the ISR {isr:?}");
    }

    let failed_over = Instant::now();
    load.await_acked(failed_over, &led, ACKED_AFTER_RECOVERY, "after the failover").await;
    let deliveries = load.finish().await;
    let failed = failures(&deliveries);
    eprintln!("{} records sent, {} failed", deliveries.len(), failed.len());
    assert!(
        failed.is_empty(),
        "librdkafka gave up on records (seq, why): {:?}",
        &failed[..failed.len().min(20)]
    );

    for partition in 0..PARTITIONS {
        let acked = acked_in(&deliveries, partition);
        let read = read_until_present(survivor, TOPIC, partition, &acked).await;
        eprintln!("{TOPIC}-{partition}: {} acknowledged, {} read", acked.len(), read.len());
        assert_acked_present(partition, &acked, &read);
    }

    let restarting = Instant::now();
    node_mut(&mut nodes, victim).start(&voters);
    await_topic(node(&nodes, victim), TOPIC, CONVERGE_WAIT, "the killed node back in every ISR", isr_whole)
        .await;
    eprintln!("node {victim} restarted; back in every ISR after {:?}", restarting.elapsed());
    eprintln!("took {:?}", started.elapsed());
}

/// Every record of `topic`'s partitions, read with a librdkafka consumer
/// from offset 0 up to each partition's high watermark: (offset, seq) in
/// offset order, per partition.
fn consume_to_high_watermarks(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<(i64, u64)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka refuses assign() without a group id; nothing is
        // committed, so the coordinator is never asked.
        .set("group.id", "cluster-rdkafka")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("check.crcs", "true")
        .create()
        .unwrap();
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, partition, CONVERGE_WAIT).unwrap();
        ends.insert(partition, high);
        assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut read: BTreeMap<i32, Vec<(i64, u64)>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let next =
        |read: &BTreeMap<i32, Vec<(i64, u64)>>, p: i32| read[&p].last().map_or(0, |(offset, _)| offset + 1);
    let deadline = Instant::now() + CONVERGE_WAIT;
    while (0..partitions).any(|p| next(&read, p) < ends[&p]) {
        assert!(Instant::now() < deadline, "read {read:?} short of the high watermarks {ends:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let seq = seq_of(message.payload().expect("a value"));
                read.get_mut(&message.partition())
                    .expect("an assigned partition")
                    .push((message.offset(), seq));
            }
            Some(Err(e)) => panic!("consume failed: {e}"),
            None => {}
        }
    }
    read
}

/// An idempotent librdkafka producer (acks=all) through a rolling restart
/// of three combined nodes, each stopped with SIGTERM (a clean exit),
/// started again and waited for until every partition's ISR is whole:
/// every record sent is acknowledged, and a librdkafka consumer reads each
/// exactly once, at the offset its acknowledgement gave, and in each
/// partition in the order produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_loses_and_duplicates_nothing_through_a_rolling_restart() {
    const TOPIC: &str = "rolling";
    const PARTITIONS: i32 = 3;
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, voters, _) = three_nodes_with_topic(root.path(), TOPIC, PARTITIONS).await;

    let idempotent = producer(&bootstrap(&nodes), &[("enable.idempotence", "true")]);
    let load = Load::start(idempotent, TOPIC, PARTITIONS, Duration::from_millis(5));
    let all: Vec<i32> = (0..PARTITIONS).collect();
    load.await_acked(started, &all, ACKED_BEFORE_FAULT, "before the first restart").await;
    for id in 1..=3 {
        let controller = controller_leader(&voters);
        let stopping = Instant::now();
        // The load runs on meanwhile: these waits leave the runtime's
        // other tasks to another worker.
        let status = tokio::task::block_in_place(|| node_mut(&mut nodes, id).terminate());
        assert!(status.success(), "node {id} stopped with {status:?} after SIGTERM");
        let stopped = stopping.elapsed();
        tokio::task::block_in_place(|| node_mut(&mut nodes, id).start(&voters));
        let ready = stopping.elapsed();
        let info =
            await_topic(node(&nodes, id), TOPIC, CONVERGE_WAIT, "every ISR whole after a restart", isr_whole)
                .await;
        eprintln!(
            "node {id} (controller leader {controller:?}) stopped after {stopped:?}, ready after {ready:?}, \
             every ISR whole after {:?}: {info:?}",
            stopping.elapsed()
        );
        let restored = Instant::now();
        load.await_acked(restored, &all, ACKED_AFTER_RECOVERY, &format!("after node {id}'s restart")).await;
    }
    let deliveries = load.finish().await;
    let failed = failures(&deliveries);
    eprintln!("{} records sent, {} failed", deliveries.len(), failed.len());
    assert!(
        failed.is_empty(),
        "librdkafka gave up on records (seq, why): {:?}",
        &failed[..failed.len().min(20)]
    );

    let bootstrap = bootstrap(&nodes);
    let read = tokio::task::spawn_blocking(move || consume_to_high_watermarks(&bootstrap, TOPIC, PARTITIONS))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    for (partition, records) in &read {
        let acked = acked_in(&deliveries, *partition);
        let seqs: Vec<u64> = records.iter().map(|(_, seq)| *seq).collect();
        let twice: Vec<u64> = seqs.iter().copied().filter(|seq| !seen.insert(*seq)).collect();
        assert!(twice.is_empty(), "partition {partition}: records read twice: {twice:?}");
        let expected: Vec<u64> = acked.iter().map(|(_, seq)| *seq).collect();
        if seqs != expected {
            let shorter = seqs.len().min(expected.len());
            let at = seqs.iter().zip(&expected).position(|(read, sent)| read != sent).unwrap_or(shorter);
            let near = |v: &[u64]| {
                v[at.saturating_sub(3).min(v.len())..].iter().take(8).copied().collect::<Vec<_>>()
            };
            panic!(
                "partition {partition}: {} records read, {} acknowledged, first difference at index {at}: \
                 read {:?}, produced {:?}",
                seqs.len(),
                expected.len(),
                near(&seqs),
                near(&expected)
            );
        }
        let at: BTreeMap<i64, u64> = records.iter().copied().collect();
        assert_acked_present(*partition, &acked, &at);
        eprintln!("{TOPIC}-{partition}: {} records, each once, in order", seqs.len());
    }
    eprintln!("took {:?}", started.elapsed());
}

/// Four nodes: 1-3 combined (the voters), 4 a broker only. With
/// replication factor 2, node 4 hosts replicas; an idempotent librdkafka
/// producer writes to every partition with acks=all; node 4 is killed
/// with `kill -9`, its data directory deleted, and started again: it comes
/// back, joins the ISR of every partition it hosts (it re-replicated them
/// from their leaders), and the copy is real: for a partition on {4, x},
/// `kill -9` of voter x (two of three voters keep the quorum; x is not the
/// controller leader, so the 10 s bound applies) makes node 4 its leader
/// within 10 s, and node 4 serves exactly the acknowledged records of it,
/// each at its offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_data_directory_was_wiped_re_replicates_its_partitions() {
    const TOPIC: &str = "rewound";
    const PARTITIONS: i32 = 4;
    const PER_PARTITION: u64 = 300;
    const WIPED: i32 = 4;
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, voters) = cluster_nodes(root.path(), 4, 3);
    start_all(&mut nodes, &voters);
    create(&nodes[0], TOPIC, PARTITIONS, 2).await;
    let before = await_topic(&nodes[0], TOPIC, CONVERGE_WAIT, "every ISR whole", isr_whole).await;
    let hosted: Vec<i32> =
        before.partitions.iter().filter(|p| p.replicas.contains(&WIPED)).map(|p| p.partition).collect();
    assert!(!hosted.is_empty(), "node {WIPED} hosts no replica: {before:?}");

    // Idempotent: nothing retried is written twice, so node 4 must end up
    // holding exactly the acknowledged records.
    let producer = producer(&bootstrap(&nodes), &[("enable.idempotence", "true")]);
    let mut pending = Vec::new();
    for seq in 0..PER_PARTITION * PARTITIONS as u64 {
        let partition = (seq % PARTITIONS as u64) as i32;
        let value = value_of(seq);
        let record = FutureRecord::<(), _>::to(TOPIC).payload(&value).partition(partition);
        pending.push((seq, partition, producer.send_result(record).map_err(|(e, _)| e).unwrap()));
    }
    let mut deliveries = Vec::new();
    for (seq, partition, report) in pending {
        let delivery = report.await.unwrap().unwrap_or_else(|(e, _)| panic!("record {seq}: {e}"));
        let result = Ok(delivery.offset);
        deliveries.push(Delivery { seq, partition, sent_at: started, result });
    }

    let wiped = node_mut(&mut nodes, WIPED);
    wiped.kill9();
    let wiped_at = Instant::now();
    std::fs::remove_dir_all(&wiped.data).unwrap();
    wiped.start(&voters);
    let ready = wiped_at.elapsed();
    let back =
        await_topic(node(&nodes, WIPED), TOPIC, CONVERGE_WAIT, "the wiped node back in every ISR", |t| {
            isr_whole(t) && hosted.iter().all(|p| t.partitions[*p as usize].isr.contains(&WIPED))
        })
        .await;
    eprintln!(
        "node {WIPED} wiped: ready after {ready:?}, back in every ISR after {:?}: {back:?}",
        wiped_at.elapsed()
    );
    for partition in &hosted {
        let dir = node(&nodes, WIPED).data.join(format!("{TOPIC}-{partition}"));
        let bytes: u64 = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().extension().is_some_and(|x| x == "log"))
            .map(|entry| entry.metadata().unwrap().len())
            .sum();
        assert!(bytes > 0, "{}: no records re-replicated", dir.display());
    }

    // The partition whose other replica is not the controller leader, so
    // that its death costs no election and the 10 s bound applies.
    let controller = controller_leader(&voters);
    let (partition, other) = hosted
        .iter()
        .map(|p| (*p, back.partitions[*p as usize].replicas.iter().copied().find(|r| *r != WIPED).unwrap()))
        .find(|(_, other)| Some(*other) != controller)
        .expect("a partition of node 4's whose other replica is not the controller leader");
    eprintln!(
        "controller leader {controller:?}; kill -9 of node {other}, the other replica of {TOPIC}-{partition}"
    );
    node_mut(&mut nodes, other).kill9();
    let killed = Instant::now();
    let wiped = node(&nodes, WIPED);
    await_topic(wiped, TOPIC, FAILOVER_BOUND_PARTITION, "the wiped node leading", |t| {
        t.partitions[partition as usize].leader == WIPED
    })
    .await;
    eprintln!("node {WIPED} leads {TOPIC}-{partition} {:?} after the kill", killed.elapsed());
    let acked = acked_in(&deliveries, partition);
    let read = read_until_present(wiped, TOPIC, partition, &acked).await;
    assert_acked_present(partition, &acked, &read);
    assert_eq!(read.len(), acked.len(), "{TOPIC}-{partition} holds exactly what was acknowledged");
    eprintln!("took {:?}", started.elapsed());
}
