//! `ringtail produce TOPIC`: each line of stdin becomes one record.
//!
//! Lines are gathered into batches of up to `--batch-bytes`, or whatever
//! arrived within `--linger-ms` of a batch's first line, and one batch is
//! in flight at a time, so records reach the partition in input order.
//! A thread reads stdin (blocking reads have no place on the runtime) and
//! keeps reading while a batch is in flight; the channel between them is
//! bounded, which is the backpressure.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use tokio::sync::mpsc;

use super::{connect, finish, topic_error, CliError, BOOTSTRAP_DEFAULT};
use ringtail_client::{partition_for_key, Acks, Client, ClientConfig, ClientError, ProducerRecord};

/// Longest line accepted as one record; Kafka's default `max.message.bytes`
/// is about 1 MiB, so anything near this would be refused anyway.
pub const LINE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Lines read ahead of the batch being sent.
const LINES_QUEUED_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ProduceArgs {
    /// Topic to write to (created if the broker auto-creates topics).
    pub topic: String,
    /// Key for every record; keyed records go to the key's partition, as
    /// Kafka's producers choose it.
    #[arg(long)]
    pub key: Option<String>,
    /// Acknowledgement to wait for: 0 (none), 1 (leader), all (in-sync replicas).
    #[arg(long, default_value = "all", value_parser = clap::value_parser!(Acks))]
    pub acks: Acks,
    /// Partition to write to; by default the key's partition, or each
    /// batch to the next partition in turn.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Send a batch once it holds this many bytes of records.
    #[arg(long, default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_bytes: u32,
    /// Send a batch at most this long after its first line arrived.
    #[arg(long, default_value_t = 100)]
    pub linger_ms: u64,
    /// Broker to ask first, HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT", default_value = BOOTSTRAP_DEFAULT)]
    pub bootstrap: String,
    /// Client security settings (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password).
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

/// What a produce run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceSummary {
    pub records: u64,
    pub value_bytes: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

pub async fn run(args: ProduceArgs) -> ExitCode {
    let acks = args.acks;
    let topic = args.topic.clone();
    // Stdin is Send (its lock is not), so the reading thread can own it.
    let result = produce_from(args, std::io::BufReader::new(std::io::stdin())).await.map(|s| {
        let confirmed = if acks == Acks::None { " (acks=0: not confirmed)" } else { "" };
        eprintln!(
            "produced {} records ({} bytes) to {topic} in {} batches, {:.2} s{confirmed}",
            s.records,
            s.value_bytes,
            s.batches,
            s.elapsed.as_secs_f64()
        );
    });
    finish("produce", result)
}

/// Produces every line of `input` (without its `\n` or `\r\n`).
pub async fn produce_from<R: BufRead + Send + 'static>(
    args: ProduceArgs,
    input: R,
) -> Result<ProduceSummary, CliError> {
    let started = Instant::now();
    // Kafka's producers ask the broker to create a topic they name.
    let config = ClientConfig { allow_auto_topic_creation: true, ..ClientConfig::default() };
    let config = super::command_config::secured(config, args.command_config.as_deref())?;
    let client = connect(&args.bootstrap, config).await?;
    let topic = &args.topic;
    // A topic just auto-created may have no leader for a moment.
    let info = client
        .with_retries(Some(topic), true, || client.topic(topic))
        .await
        .map_err(|e| topic_error(topic, e))?;
    let partitions = info.partitions.len();
    if let Some(p) = args.partition {
        if info.partition(p).is_none() {
            return Err(ClientError::NoSuchPartition {
                topic: topic.clone(),
                partition: p,
                count: partitions,
            }
            .into());
        }
    }

    let (lines_tx, mut lines) = mpsc::channel(LINES_QUEUED_MAX);
    std::thread::spawn(move || read_lines(input, lines_tx));

    let key = args.key.as_ref().map(|k| Bytes::from(k.clone().into_bytes()));
    let mut batcher =
        Batcher { client: &client, args: &args, key, partitions, next_partition: 0, summary: None };
    let mut batch: Vec<ProducerRecord> = Vec::new();
    let mut batch_bytes = 0usize;
    let linger = Duration::from_millis(args.linger_ms);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(Ok(line)) => {
                    batch_bytes += line.len();
                    batch.push(ProducerRecord { key: batcher.key.clone(), value: Some(Bytes::from(line)) });
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + linger);
                    if batch_bytes >= args.batch_bytes as usize {
                        batcher.send(std::mem::take(&mut batch)).await?;
                        batch_bytes = 0;
                        deadline = None;
                    }
                }
                Some(Err(e)) => return Err(e),
                None => break,
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                batcher.send(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
                deadline = None;
            }
        }
    }
    batcher.send(batch).await?;
    let mut summary = batcher.summary.unwrap_or(ProduceSummary {
        records: 0,
        value_bytes: 0,
        batches: 0,
        elapsed: Duration::ZERO,
    });
    summary.elapsed = started.elapsed();
    Ok(summary)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends batches and counts what was sent.
struct Batcher<'a> {
    client: &'a Client,
    args: &'a ProduceArgs,
    key: Option<Bytes>,
    partitions: usize,
    next_partition: usize,
    summary: Option<ProduceSummary>,
}

impl Batcher<'_> {
    async fn send(&mut self, batch: Vec<ProducerRecord>) -> Result<(), CliError> {
        if batch.is_empty() {
            return Ok(());
        }
        let partition = match (self.args.partition, &self.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, self.partitions),
            (None, None) => {
                let p = self.next_partition % self.partitions.max(1);
                self.next_partition = self.next_partition.wrapping_add(1);
                i32::try_from(p).unwrap_or(0)
            }
        };
        self.client.produce(&self.args.topic, partition, &batch, self.args.acks).await?;
        let summary = self.summary.get_or_insert(ProduceSummary {
            records: 0,
            value_bytes: 0,
            batches: 0,
            elapsed: Duration::ZERO,
        });
        summary.records += batch.len() as u64;
        summary.value_bytes +=
            batch.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64)).sum::<u64>();
        summary.batches += 1;
        Ok(())
    }
}

/// The reading thread: lines without their terminator, until EOF, an
/// error, or the receiver hanging up.
fn read_lines<R: BufRead>(mut input: R, lines: mpsc::Sender<Result<Vec<u8>, CliError>>) {
    let mut number = 0u64;
    loop {
        number += 1;
        let mut line = Vec::new();
        // One byte past the limit tells an over-long line from one exactly at it.
        let limit = (LINE_BYTES_MAX + 2) as u64;
        let result = std::io::Read::take(&mut input, limit).read_until(b'\n', &mut line);
        let item = match result {
            Ok(0) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                if line.len() > LINE_BYTES_MAX {
                    Err(CliError::Runtime(format!("line {number} is longer than {LINE_BYTES_MAX} bytes")))
                } else {
                    Ok(line)
                }
            }
            Err(e) => Err(CliError::Runtime(format!("cannot read stdin: {e}"))),
        };
        let failed = item.is_err();
        if lines.blocking_send(item).is_err() || failed {
            return;
        }
    }
}
