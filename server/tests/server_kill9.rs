//! `kill -9` of the `ringtail serve` binary under load loses no
//! acknowledged record (INTERFACE.md: "`kill -9` at any moment loses no
//! acknowledged data under `--flush always`").
//!
//! What these tests can catch, and what they cannot. SIGKILL ends the
//! process but not the kernel: every byte the server had handed to the
//! kernel (write(2), or an io_uring write that completed) is still in the
//! page cache after the kill and is read back after the restart, whether or
//! not it was ever fsynced. So a server that acknowledged *before fsync* but
//! after its write completed passes here; only losing power (or a simulated
//! disk that drops unsynced writes, as the simulator's does) shows that bug.
//! What a kill does show:
//! - acknowledging before the write was even issued (records still queued
//!   in user space, in a group-commit buffer or an unsubmitted ring entry);
//! - recovery that throws away good data: truncating to a stale recovery
//!   point or checkpoint, misreading segment or index files, losing
//!   segments rolled shortly before the kill (the topic rolls every 32 KiB);
//! - recovery that keeps bad data: a batch cut off mid-write must be
//!   truncated, not served, and offsets after a restart must continue
//!   densely from the recovered end, never reuse or skip one;
//! - a topic whose creation was acknowledged but not written.
//!
//! As a weak check that `--flush always` syncs at all, each round also
//! reads the server's fdatasync counter (`/metrics`) before the kill.

mod server_support;

use bytes::Bytes;
use ringtail_client::error::code;
use ringtail_client::produce::now_ms;
use ringtail_client::{
    build_batch, Acks, Client, ClientConfig, ClientError, FetchOptions, FetchPosition, NewTopic, OffsetSpec,
    ProducerRecord,
};
use server_support::{ready_address, spawn_serve};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");
/// Start-up includes recovery of every segment; a debug build on a loaded
/// two-core machine can be slow, so the bounds are generous.
const READY_WAIT: Duration = Duration::from_secs(90);
/// Longest a round may take to reach its acknowledgement count.
const ACK_WAIT: Duration = Duration::from_secs(240);
/// Longest reading back one data directory may take.
const VERIFY_WAIT: Duration = Duration::from_secs(180);
const TOPIC: &str = "kill9";
const PARTITIONS: i32 = 3;
const PRODUCERS: usize = 8;
/// Records acknowledged in a round before the kill: soon after a restart,
/// a little later, and once several segments have rolled.
const KILL_AFTER_ACKED: [u64; 3] = [150, 1_500, 4_000];
/// A producer stops on its own after this many batches, so that a kill
/// that never comes cannot make the test run forever.
const BATCHES_PER_PRODUCER_MAX: u64 = 20_000;

/// One `ringtail serve` process with its stderr in a log file.
struct Server {
    child: Child,
    kafka: String,
    metrics: String,
    log: PathBuf,
}

impl Server {
    fn start(data: &Path, log: &Path) -> Server {
        let stderr = File::options().create(true).append(true).open(log).unwrap();
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .args(["--data-dir", data.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            // Spelled out: these tests are about this policy.
            .args(["--flush", "always"])
            // The topic's small segments are below the default floor.
            .args(["--segment-bytes-min", "4096"])
            .env("RUST_LOG", "info")
            .stderr(stderr);
        let (mut child, rx) = spawn_serve(command);
        let ready = match rx.recv_timeout(READY_WAIT) {
            Ok(line) if !line.is_empty() => line,
            // Stdout closed without a line: the server exited.
            Ok(_) => {
                let status = child.wait().unwrap();
                panic!("ringtail serve exited before it was ready ({status})\n{}", log_tail(log));
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no readiness line within {READY_WAIT:?}\n{}", log_tail(log));
            }
        };
        let (kafka, metrics) = (ready_address(&ready, "kafka on "), ready_address(&ready, "metrics on "));
        Server { child, kafka, metrics, log: log.to_path_buf() }
    }

    /// SIGKILL (std's `Child::kill` on Unix), then reap it.
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The server's count of fdatasync calls on data files since it started.
    fn fsync_count(&self) -> u64 {
        let mut stream = std::net::TcpStream::connect(&self.metrics).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut page = String::new();
        stream.read_to_string(&mut page).unwrap();
        page.lines()
            .find_map(|l| l.strip_prefix("ringtail_fsync_duration_seconds_count "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no fsync count in /metrics:\n{page}"))
    }
}

impl Drop for Server {
    /// A failing test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    format!("--- last lines of {} ---\n{tail}", log.display())
}

fn test_config() -> ClientConfig {
    ClientConfig { client_id: "ringtail-kill9-test".to_owned(), ..ClientConfig::default() }
}

async fn connect(server: &Server) -> Client {
    Client::connect(&server.kafka, test_config()).await.unwrap()
}

/// Waits (bounded) until every partition of `topic` has a leader, which a
/// restarted server may take a moment to report.
async fn wait_for_leaders(client: &Client, topic: &str) -> ringtail_client::TopicInfo {
    let deadline = Instant::now() + READY_WAIT;
    loop {
        let last = client.refresh_topic(topic).await;
        if let Ok(info) = &last {
            if !info.partitions.is_empty() && info.partitions.iter().all(|p| p.leader >= 0) {
                return info.clone();
            }
        }
        assert!(Instant::now() < deadline, "topic {topic} has no leaders after {READY_WAIT:?}: {last:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A batch a producer sent: where to, and its values in order.
#[derive(Debug, Clone)]
struct SentBatch {
    partition: i32,
    values: Vec<Bytes>,
}

/// What one producer saw in one round.
#[derive(Default)]
struct ProducerLedger {
    sent: Vec<SentBatch>,
    /// (index into `sent`, base offset) of every acknowledged batch.
    acked: Vec<(usize, i64)>,
    /// Whether the error that ended the producer came from a connection
    /// that broke after the request may have been sent (rather than from a
    /// refused connect).
    in_flight_at_kill: bool,
}

/// Distinct, self-describing values of varying length: the prefix names
/// the batch and index, the filler depends on both, so a record put
/// together from pieces of two others matches neither.
fn value(round: usize, producer: usize, batch: u64, index: usize) -> Bytes {
    let head = format!("r{round}-p{producer}-b{batch}-i{index}-");
    let len = 40 + (batch as usize * 7 + index * 13 + producer * 3) % 260;
    let mut v = head.into_bytes();
    let mut x = (round * 1_000_003 + producer * 10_007 + batch as usize * 101 + index) as u64;
    while v.len() < len {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        v.push(b'a' + (x >> 59) as u8 % 26);
    }
    Bytes::from(v)
}

/// Sends batches of 1 to 4 records, one request at a time, until the
/// server dies (expected once `killed` is set) or the bound is reached.
async fn produce(
    client: Client,
    round: usize,
    producer: usize,
    acked_records: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
) -> ProducerLedger {
    let mut ledger = ProducerLedger::default();
    for batch in 0..BATCHES_PER_PRODUCER_MAX {
        let count = 1 + (batch as usize + producer) % 4;
        let values: Vec<Bytes> = (0..count).map(|i| value(round, producer, batch, i)).collect();
        let partition = ((batch as usize + producer) % PARTITIONS as usize) as i32;
        let records: Vec<ProducerRecord> =
            values.iter().map(|v| ProducerRecord { key: None, value: Some(v.clone()) }).collect();
        ledger.sent.push(SentBatch { partition, values });
        let encoded = build_batch(&records, now_ms());
        match client.produce_batch(TOPIC, partition, encoded, Acks::All).await {
            Ok(ack) => {
                ledger.acked.push((ledger.sent.len() - 1, ack.base_offset));
                acked_records.fetch_add(count as u64, Ordering::SeqCst);
            }
            Err(e) => {
                // `killed` is set before the kill, so an error from the kill
                // always sees it; one without it is a real failure.
                assert!(killed.load(Ordering::SeqCst), "producer {producer} failed before the kill: {e}");
                ledger.in_flight_at_kill = !matches!(e, ClientError::Connect { .. });
                return ledger;
            }
        }
    }
    ledger
}

/// Every acknowledged record: partition -> offset -> value.
type Acked = BTreeMap<i32, BTreeMap<i64, Bytes>>;

/// Everything ever sent, acknowledged or not.
#[derive(Default)]
struct Model {
    acked: Acked,
    /// Every value sent -> (partition, the whole batch, index in it).
    sent: HashMap<Bytes, (i32, Arc<Vec<Bytes>>, usize)>,
    /// Each partition's log as read after the previous restart: records a
    /// consumer has seen must never disappear.
    seen: BTreeMap<i32, Vec<Bytes>>,
}

impl Model {
    fn add(&mut self, ledger: ProducerLedger) {
        let batches: Vec<Arc<Vec<Bytes>>> = ledger.sent.iter().map(|b| Arc::new(b.values.clone())).collect();
        for (batch, values) in ledger.sent.iter().zip(&batches) {
            for (index, v) in values.iter().enumerate() {
                let previous = self.sent.insert(v.clone(), (batch.partition, Arc::clone(values), index));
                assert!(previous.is_none(), "test bug: value {v:?} sent twice");
            }
        }
        for (index, base) in ledger.acked {
            let batch = &ledger.sent[index];
            let offsets = self.acked.entry(batch.partition).or_default();
            for (i, v) in batch.values.iter().enumerate() {
                let offset = base + i as i64;
                if let Some(other) = offsets.insert(offset, v.clone()) {
                    panic!("offset {}-{offset} acknowledged twice: {other:?} and {v:?}", batch.partition);
                }
            }
        }
    }

    /// Checks the logs read back against everything sent; remembers them.
    fn check(&mut self, logs: BTreeMap<i32, Vec<Bytes>>) -> Result<(), String> {
        for (&partition, log) in &logs {
            // Acknowledged: present at exactly its offset, with its value.
            for (&offset, want) in self.acked.get(&partition).into_iter().flatten() {
                match log.get(offset as usize) {
                    Some(got) if got == want => {}
                    Some(got) => {
                        return Err(format!("{partition}-{offset}: acknowledged {want:?}, found {got:?}"))
                    }
                    None => {
                        return Err(format!(
                            "{partition}-{offset}: acknowledged {want:?} is lost (log ends at {})",
                            log.len()
                        ))
                    }
                }
            }
            // Anything else: a record that was sent, to this partition, once,
            // inside its whole batch.
            let mut seen_values = HashSet::new();
            for (offset, got) in log.iter().enumerate() {
                let Some((sent_to, batch, index)) = self.sent.get(got) else {
                    return Err(format!("{partition}-{offset}: {got:?} was never sent (torn or foreign)"));
                };
                if *sent_to != partition {
                    return Err(format!("{partition}-{offset}: {got:?} was sent to partition {sent_to}"));
                }
                if !seen_values.insert(got.clone()) {
                    return Err(format!("{partition}-{offset}: {got:?} appears twice"));
                }
                let start = offset.checked_sub(*index).map(|s| (s, s + batch.len()));
                let whole = start.and_then(|(s, e)| log.get(s..e)).is_some_and(|found| found == &batch[..]);
                if !whole {
                    return Err(format!(
                        "{partition}-{offset}: {got:?} is in a partial batch (of {batch:?})"
                    ));
                }
            }
            if let Some(before) = self.seen.get(&partition) {
                if !log.starts_with(before) {
                    return Err(format!(
                        "partition {partition}: records read after an earlier restart are gone \
                         ({} then, {} now)",
                        before.len(),
                        log.len()
                    ));
                }
            }
        }
        self.seen = logs;
        Ok(())
    }
}

/// Every partition from offset 0 to its end, checking offsets are dense.
async fn read_all(client: &Client) -> Result<BTreeMap<i32, Vec<Bytes>>, String> {
    let mut logs = BTreeMap::new();
    let options = FetchOptions { max_wait: Duration::from_millis(100), ..FetchOptions::default() };
    for partition in 0..PARTITIONS {
        let start =
            client.list_offset(TOPIC, partition, OffsetSpec::Earliest).await.map_err(|e| e.to_string())?;
        let end =
            client.list_offset(TOPIC, partition, OffsetSpec::Latest).await.map_err(|e| e.to_string())?;
        if start != 0 {
            return Err(format!("partition {partition} starts at {start}, not 0"));
        }
        let mut log: Vec<Bytes> = Vec::new();
        let mut empty_fetches = 0;
        while (log.len() as i64) < end {
            let position = FetchPosition { partition, offset: log.len() as i64 };
            let fetched = client.fetch(TOPIC, &[position], &options).await.map_err(|e| e.to_string())?;
            let records = fetched.into_iter().flat_map(|f| f.records).collect::<Vec<_>>();
            if records.is_empty() {
                empty_fetches += 1;
                if empty_fetches > 100 {
                    return Err(format!(
                        "partition {partition}: nothing at offset {} below end {end}",
                        log.len()
                    ));
                }
                continue;
            }
            for record in records {
                if record.offset != log.len() as i64 {
                    return Err(format!(
                        "partition {partition}: offset {} follows {} (offsets not dense)",
                        record.offset,
                        log.len() as i64 - 1
                    ));
                }
                log.push(record.value.unwrap_or_default());
            }
        }
        logs.insert(partition, log);
    }
    Ok(logs)
}

/// Restarts on `data`, reads everything back and checks it against `model`.
async fn restart_and_verify(data: &Path, log: &Path, model: &mut Model, what: &str) -> Server {
    let server = tokio::task::block_in_place(|| Server::start(data, log));
    let client = connect(&server).await;
    wait_for_leaders(&client, TOPIC).await;
    let logs = tokio::time::timeout(VERIFY_WAIT, read_all(&client))
        .await
        .unwrap_or_else(|_| Err(format!("reading back took over {VERIFY_WAIT:?}")));
    if let Err(e) = logs.and_then(|logs| model.check(logs)) {
        panic!("after {what}: {e}\n{}", log_tail(log));
    }
    let lengths: Vec<usize> = model.seen.values().map(Vec::len).collect();
    let acked: usize = model.acked.values().map(BTreeMap::len).sum();
    eprintln!(
        "after {what}: partitions hold {lengths:?} records, all {acked} acknowledged ones among them, \
         the other {} sent but unacknowledged",
        lengths.iter().sum::<usize>() - acked
    );
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_produce_loses_no_acknowledged_record() {
    let dir = server_support::data_dir("kill9");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let mut server = tokio::task::block_in_place(|| Server::start(&data, &log));
    let admin = connect(&server).await;
    // Small segments, so that the kills land among many segment files and
    // recovery has to get every roll right; no time retention, since every
    // partition is read back from offset 0.
    let topic = NewTopic {
        name: TOPIC.to_owned(),
        partitions: Some(PARTITIONS),
        configs: vec![
            ("segment.bytes".to_owned(), "32768".to_owned()),
            ("retention.ms".to_owned(), "-1".to_owned()),
        ],
        ..NewTopic::default()
    };
    admin.create_topic(&topic).await.unwrap();
    wait_for_leaders(&admin, TOPIC).await;
    drop(admin);

    let mut model = Model::default();
    let mut in_flight_at_kills = 0;
    for (round, &kill_after) in KILL_AFTER_ACKED.iter().enumerate() {
        let acked_records = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let mut producers = tokio::task::JoinSet::new();
        for producer in 0..PRODUCERS {
            let client = connect(&server).await;
            producers.spawn(produce(
                client,
                round,
                producer,
                Arc::clone(&acked_records),
                Arc::clone(&killed),
            ));
        }
        // Bounded wait for the round's acknowledgements; every producer is
        // still sending when they are reached.
        let deadline = Instant::now() + ACK_WAIT;
        let mut ledgers = Vec::new();
        while acked_records.load(Ordering::SeqCst) < kill_after {
            assert!(
                Instant::now() < deadline,
                "round {round}: {} of {kill_after} records acknowledged after {ACK_WAIT:?}\n{}",
                acked_records.load(Ordering::SeqCst),
                log_tail(&server.log)
            );
            // A producer that stopped early has panicked (report that) or
            // reached its bound (keep what it saw).
            match producers.try_join_next() {
                Some(Ok(ledger)) => ledgers.push(ledger),
                Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let fsyncs = tokio::task::block_in_place(|| server.fsync_count());
        assert!(fsyncs > 0, "round {round}: acknowledged under --flush always without any fdatasync");
        killed.store(true, Ordering::SeqCst);
        tokio::task::block_in_place(|| server.kill9());

        // After the kill every request fails at once (connection closed or
        // refused); the bound only guards against a hang.
        tokio::time::timeout(ACK_WAIT, async {
            while let Some(joined) = producers.join_next().await {
                ledgers.push(joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
            }
        })
        .await
        .expect("producers did not stop after the kill");
        let (mut sent, mut acked) = (0, 0);
        for ledger in ledgers {
            sent += ledger.sent.len();
            acked += ledger.acked.len();
            in_flight_at_kills += usize::from(ledger.in_flight_at_kill);
            model.add(ledger);
        }
        eprintln!(
            "round {round}: killed after {} acknowledged records ({fsyncs} fdatasyncs); \
             {acked} of {sent} batches acknowledged",
            acked_records.load(Ordering::SeqCst)
        );
        server = restart_and_verify(&data, &log, &mut model, &format!("kill {round}")).await;
    }
    // Eight producers that almost always have a request outstanding: if
    // none of them ever lost a connection mid-request, the kills did not
    // land during produce and the test proved less than it claims.
    assert!(in_flight_at_kills > 0, "no kill cut off a produce request");

    // The restarted server continues each partition densely after the
    // recovered end.
    let client = connect(&server).await;
    let mut tail = ProducerLedger::default();
    for partition in 0..PARTITIONS {
        let values = vec![value(KILL_AFTER_ACKED.len(), 0, partition as u64, 0)];
        let records = [ProducerRecord { key: None, value: Some(values[0].clone()) }];
        let ack = client.produce(TOPIC, partition, &records, Acks::All).await.unwrap();
        let end = model.seen[&partition].len() as i64;
        assert_eq!(ack.base_offset, end, "partition {partition}: the first offset after recovery");
        tail.sent.push(SentBatch { partition, values });
        tail.acked.push((partition as usize, ack.base_offset));
    }
    model.add(tail);
    drop(client);
    tokio::task::block_in_place(|| server.kill9());
    drop(restart_and_verify(&data, &log, &mut model, "the final kill").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_topic_creation_keeps_the_topic() {
    let dir = server_support::data_dir("kill9-topic");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let mut server = tokio::task::block_in_place(|| Server::start(&data, &log));
    let client = connect(&server).await;
    let topic = NewTopic {
        name: "created".to_owned(),
        partitions: Some(PARTITIONS),
        configs: vec![("retention.ms".to_owned(), "86400000".to_owned())],
        ..NewTopic::default()
    };
    client.create_topic(&topic).await.unwrap();
    // The kill follows the CreateTopics answer with nothing in between:
    // not even a metadata read that might wait for the topic to settle.
    tokio::task::block_in_place(|| server.kill9());
    drop(client);

    let server = tokio::task::block_in_place(|| Server::start(&data, &log));
    let client = connect(&server).await;
    let info = wait_for_leaders(&client, "created").await;
    assert_eq!(info.partitions.len(), PARTITIONS as usize, "{info:?}");
    let configs = client.describe_topic_configs("created").await.unwrap();
    let retention = configs.iter().find(|c| c.name == "retention.ms").and_then(|c| c.value.as_deref());
    assert_eq!(retention, Some("86400000"), "{configs:?}");
    // Creating it again is refused: it really exists, not just in a cache.
    match client.create_topic(&topic).await {
        Err(e) if e.kafka_code() == Some(code::TOPIC_ALREADY_EXISTS) => {}
        other => panic!("creating the topic again: {other:?}"),
    }
    // And every partition takes records from offset 0.
    for partition in 0..PARTITIONS {
        let records = [ProducerRecord { key: None, value: Some(Bytes::from_static(b"after")) }];
        let ack = client.produce("created", partition, &records, Acks::All).await.unwrap();
        assert_eq!(ack.base_offset, 0, "partition {partition}");
    }
    drop(server);
}
