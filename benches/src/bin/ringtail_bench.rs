//! ringtail-bench: a load generator over the Kafka protocol, through
//! Ringtail's own client (`ringtail_server::client`), against any broker.
//!
//! - `produce`: P producer tasks, each with its own client (own
//!   connections) and up to `--in-flight` requests pipelined on it, send
//!   `--messages` records of `--size` bytes in batches of `--batch-bytes`,
//!   spread over the topic's partitions. Latency is per produce request.
//!   With `--rate`, producers send on a fixed schedule instead of as fast
//!   as they can, taking turns (producer i of P sends i/P of a batch
//!   interval after producer 0), and latency counts from each request's
//!   scheduled time.
//! - `consume`: one consumer reads `--messages` records from the earliest
//!   offsets of every partition, in place (values are not copied, each
//!   batch's CRC is checked), asking for the next records as soon as a
//!   response arrives, before reading it, as Kafka's consumer prefetches.
//!   Latency is per fetch request, from sending it to its response.
//! - `e2e`: the consumer starts at the end of every partition, then the
//!   producers run; every payload starts with the nanoseconds since the
//!   bench started, so latency is produce-to-consume per record.
//!
//! Creates the topic (`--partitions`) if missing. Prints a one-line
//! summary and a markdown table row (`--header` adds the table's header).
//! MB/s counts record values, in 10^6 bytes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, ValueEnum};
use ringtail_benches::histogram::Histogram;
use ringtail_server::client::error::code;
use ringtail_server::client::produce::now_ms;
use ringtail_server::client::{
    build_batch, Acks, Client, ClientConfig, ClientError, FetchOptions, FetchPosition, FetchedBatches,
    NewTopic, OffsetSpec, ProducerRecord,
};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Bytes of the timestamp at the start of every e2e payload.
const STAMP_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Produce,
    Consume,
    E2e,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "ringtail-bench", about = "Load generator over the Kafka protocol: MB/s, msgs/s, latency")]
struct Args {
    #[arg(value_enum)]
    mode: Mode,
    /// Broker to ask first, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    /// Records to produce (produce, e2e) or to read (consume).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Value bytes per record (at least 8 for e2e, which stamps them).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Producer tasks, each with its own connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    producers: u32,
    #[arg(long, default_value = "all", value_parser = clap::value_parser!(Acks))]
    acks: Acks,
    /// Bytes of record values per produce request.
    #[arg(long, default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    batch_bytes: u32,
    /// Produce requests in flight per producer (Kafka's default is 5).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=256))]
    in_flight: u32,
    /// Target rate in messages per second across all producers (produce and
    /// e2e; 0: as fast as possible). Each producer sends its share on a
    /// fixed schedule, and request latency is measured from the scheduled
    /// time, not the actual send: a broker that falls behind delays the
    /// sends and that delay is counted (no coordinated omission).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Give up when the consumer sees nothing new for this long.
    #[arg(long, default_value_t = 10_000)]
    idle_timeout_ms: u64,
    /// Print the markdown table's header before the row.
    #[arg(long)]
    header: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ringtail_server::memory::keep_freed_memory();
    if args.mode == Mode::E2e && args.size < STAMP_BYTES {
        eprintln!("ringtail-bench: e2e needs --size of at least {STAMP_BYTES} bytes (the timestamp)");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ringtail-bench: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            // Written, not println!'d: a reader that went away (`| head`)
            // is an ordinary end, not a panic.
            let mut out = report.summary(&args) + "\n";
            if args.header {
                out += &(Report::table_header() + "\n");
            }
            out += &(report.table_row(&args) + "\n");
            match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("ringtail-bench: writing the report: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("ringtail-bench: {e}");
            ExitCode::from(1)
        }
    }
}

/// What one run measured.
struct Report {
    messages: u64,
    value_bytes: u64,
    elapsed: Duration,
    latency: Histogram,
    latency_kind: &'static str,
}

async fn run(args: &Args) -> Result<Report> {
    let client = Arc::new(Client::connect(&args.bootstrap, bench_config()).await?);
    let partitions = ensure_topic(&client, &args.topic, args.partitions).await?;
    let t0 = Instant::now();
    match args.mode {
        Mode::Produce => {
            let produced = produce_all(args, partitions, t0, false).await?;
            // With acks=0 nothing answers: the time measured is the write's.
            let latency_kind =
                if args.acks == Acks::None { "produce write (acks=0)" } else { "produce request" };
            Ok(Report { latency_kind, ..produced })
        }
        Mode::Consume => {
            let positions = start_positions(&client, &args.topic, &partitions, OffsetSpec::Earliest).await?;
            consume(&client, args, positions, t0, false).await
        }
        Mode::E2e => {
            let positions = start_positions(&client, &args.topic, &partitions, OffsetSpec::Latest).await?;
            let consumer = {
                let args = args.clone();
                tokio::spawn(async move { consume(&client, &args, positions, t0, true).await })
            };
            let produced = produce_all(args, partitions, t0, true).await?;
            let consumed = consumer.await.map_err(|e| protocol(format!("consumer task: {e}")))??;
            // Throughput is the producers'; latency is end to end.
            Ok(Report { latency: consumed.latency, latency_kind: "produce to consume", ..produced })
        }
    }
}

fn bench_config() -> ClientConfig {
    ClientConfig { client_id: "ringtail-bench".to_owned(), ..ClientConfig::default() }
}

fn protocol(reason: String) -> ClientError {
    ClientError::Protocol { addr: "(bench)".to_owned(), reason }
}

/// The topic's partition indexes, creating the topic if it does not exist.
async fn ensure_topic(client: &Client, topic: &str, partitions: i32) -> Result<Vec<i32>> {
    match client.topic(topic).await {
        Ok(info) => return Ok(info.partitions.iter().map(|p| p.partition).collect()),
        Err(e) if e.kafka_code() == Some(code::UNKNOWN_TOPIC_OR_PARTITION) => {}
        Err(e) => return Err(e),
    }
    let new = NewTopic { name: topic.to_owned(), partitions: Some(partitions), ..NewTopic::default() };
    match client.create_topic(&new).await {
        Ok(()) => {}
        // Another bench process may have won the race; fine.
        Err(e) if e.kafka_code() == Some(code::TOPIC_ALREADY_EXISTS) => {}
        Err(e) => return Err(e),
    }
    // A new topic's leaders may take a moment to be elected.
    for _ in 0..100 {
        if let Ok(info) = client.refresh_topic(topic).await {
            if !info.partitions.is_empty() && info.partitions.iter().all(|p| p.leader >= 0) {
                return Ok(info.partitions.iter().map(|p| p.partition).collect());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(protocol(format!("topic {topic} was created but has no leaders after 5 s")))
}

async fn start_positions(
    client: &Client,
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
) -> Result<Vec<FetchPosition>> {
    let mut positions = Vec::with_capacity(partitions.len());
    for &partition in partitions {
        positions
            .push(FetchPosition { partition, offset: client.list_offset(topic, partition, spec).await? });
    }
    Ok(positions)
}

/// Runs every producer task and merges their counts and latencies.
async fn produce_all(args: &Args, partitions: Vec<i32>, t0: Instant, stamp: bool) -> Result<Report> {
    let started = Instant::now();
    let partitions = Arc::new(partitions);
    let producers = u64::from(args.producers);
    // Paced producers keep one schedule, started once every producer has
    // had time to connect.
    let schedule_start = started + SCHEDULE_LEAD;
    let mut tasks = JoinSet::new();
    for index in 0..producers {
        // The first `messages % producers` producers take one extra.
        let share = args.messages / producers + u64::from(index < args.messages % producers);
        let job = ProducerJob {
            index: index as usize,
            messages: share,
            size: args.size,
            batch_bytes: args.batch_bytes as usize,
            in_flight: args.in_flight as usize,
            acks: args.acks,
            topic: args.topic.clone(),
            bootstrap: args.bootstrap.clone(),
            partitions: Arc::clone(&partitions),
            stamp,
            t0,
            rate: args.rate as f64 / producers as f64,
            schedule_start,
            // Producers take turns: independent producers send at
            // independent moments, and a half load sent by all in the same
            // instant would be a full load for that instant.
            phase: index as f64 / producers as f64,
        };
        tasks.spawn(job.run());
    }
    let mut latency = Histogram::new();
    let mut messages = 0;
    while let Some(joined) = tasks.join_next().await {
        let (sent, histogram) = joined.map_err(|e| protocol(format!("producer task: {e}")))??;
        messages += sent;
        latency.merge(&histogram);
    }
    let value_bytes = messages * args.size as u64;
    // A paced run lasts from its schedule's start: the lead before it is
    // not sending time.
    let elapsed = if args.rate > 0 { schedule_start.elapsed() } else { started.elapsed() };
    Ok(Report { messages, value_bytes, elapsed, latency, latency_kind: "produce request" })
}

struct ProducerJob {
    index: usize,
    messages: u64,
    size: usize,
    batch_bytes: usize,
    in_flight: usize,
    acks: Acks,
    topic: String,
    bootstrap: String,
    partitions: Arc<Vec<i32>>,
    stamp: bool,
    t0: Instant,
    /// This producer's messages per second; 0 for unpaced.
    rate: f64,
    schedule_start: Instant,
    /// Where in each batch interval this producer's batches fall due, as a
    /// fraction of the interval.
    phase: f64,
}

impl ProducerJob {
    /// Sends this producer's share; returns records sent and request latencies.
    async fn run(self) -> Result<(u64, Histogram)> {
        let client = Arc::new(Client::connect(&self.bootstrap, bench_config()).await?);
        let per_batch = (self.batch_bytes / self.size.max(1)).max(1) as u64;
        let filler = Bytes::from(vec![b'x'; self.size]);
        let mut latency = Histogram::new();
        let mut requests = JoinSet::new();
        let (mut sent, mut batch_number) = (0u64, self.index);
        let mut pacer = (self.rate > 0.0)
            .then(|| pace(self.rate, per_batch, self.messages, self.schedule_start, self.phase));
        let mut ready = None;
        while sent < self.messages || !requests.is_empty() {
            if sent < self.messages && requests.len() < self.in_flight {
                let count = per_batch.min(self.messages - sent);
                // A producer fills a batch as its records arrive and sends it
                // when it is due, so the batch is built before the wait;
                // unless its records carry their send time (e2e).
                if ready.is_none() && !self.stamp {
                    ready = Some(self.batch(count, &filler));
                }
                // Paced: wait for this batch's due time; answers are
                // collected while waiting.
                let mut due = None;
                if let Some(ticks) = &mut pacer {
                    tokio::select! {
                        tick = ticks.recv() => {
                            due = Some(tick.ok_or_else(|| protocol("the pacer thread stopped".into()))?);
                        }
                        Some(joined) = requests.join_next() => {
                            latency.record(joined.map_err(|e| protocol(format!("produce task: {e}")))??);
                            continue;
                        }
                    }
                }
                let batch = ready.take().unwrap_or_else(|| self.batch(count, &filler));
                let partition = self.partitions[batch_number % self.partitions.len()];
                batch_number += 1;
                let (client, topic, acks) = (Arc::clone(&client), self.topic.clone(), self.acks);
                // Latency counts from when the batch was due, if paced.
                let started = due.unwrap_or_else(Instant::now);
                requests.spawn(async move {
                    client.produce_batch(&topic, partition, batch, acks).await.map(|_| started.elapsed())
                });
                sent += count;
                continue;
            }
            if let Some(joined) = requests.join_next().await {
                let elapsed = joined.map_err(|e| protocol(format!("produce task: {e}")))??;
                latency.record(elapsed);
            }
        }
        Ok((sent, latency))
    }

    fn batch(&self, count: u64, filler: &Bytes) -> Bytes {
        let records: Vec<ProducerRecord> = (0..count)
            .map(|_| {
                let value = if self.stamp {
                    let mut value = BytesMut::with_capacity(self.size);
                    value.put_u64(nanos_since(self.t0));
                    value.extend_from_slice(&filler[STAMP_BYTES..]);
                    value.freeze()
                } else {
                    filler.clone()
                };
                ProducerRecord { key: None, value: Some(value) }
            })
            .collect();
        build_batch(&records, now_ms())
    }
}

/// Due times of a paced producer's batches, each sent when it is due: the
/// batch starting at message `sent` is due at `(sent + phase × per_batch) /
/// rate` seconds after `start`.
///
/// A thread of its own sleeps to each one, as tokio's timer has whole
/// milliseconds: a `sleep_until` wakes up to a millisecond late, and since
/// latency counts from the due time (no coordinated omission), the load
/// generator's own lateness would be reported as the broker's. A thread's
/// sleep is hrtimer-precise (tens of microseconds here).
fn pace(
    rate: f64,
    per_batch: u64,
    messages: u64,
    start: Instant,
    phase: f64,
) -> mpsc::UnboundedReceiver<Instant> {
    let (ticks, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut sent = 0u64;
        while sent < messages {
            let due = due_at(start, sent, rate, per_batch, phase);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if ticks.send(due).is_err() {
                return;
            }
            sent += per_batch.min(messages - sent);
        }
    });
    rx
}

/// When the batch starting at message `sent` falls due (see `pace`).
fn due_at(start: Instant, sent: u64, rate: f64, per_batch: u64, phase: f64) -> Instant {
    start + Duration::from_secs_f64((sent as f64 + phase * per_batch as f64) / rate)
}

/// How long after the producers start their paced schedule begins: time to
/// connect, so that the first batches are not late by the connection's
/// doing.
const SCHEDULE_LEAD: Duration = Duration::from_millis(200);

fn nanos_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Reads `--messages` records from `positions`. With `stamped`, latency is
/// each record's age (its payload's stamp against now); else per fetch.
async fn consume(
    client: &Arc<Client>,
    args: &Args,
    positions: Vec<FetchPosition>,
    t0: Instant,
    stamped: bool,
) -> Result<Report> {
    let started = Instant::now();
    let idle_timeout = Duration::from_millis(args.idle_timeout_ms);
    let options = FetchOptions { max_wait: Duration::from_millis(100), ..FetchOptions::default() };
    let (mut messages, mut value_bytes) = (0u64, 0u64);
    let mut latency = Histogram::new();
    let mut last_progress = Instant::now();
    let (responses, mut fetched_rx) = mpsc::channel(1);
    let prefetcher =
        tokio::spawn(prefetch(Arc::clone(client), args.topic.clone(), positions, options, responses));
    // Ends the prefetcher however this returns.
    let _prefetcher = AbortOnDrop(prefetcher);
    while messages < args.messages {
        if last_progress.elapsed() > idle_timeout {
            return Err(protocol(format!(
                "consumer saw nothing new for {} ms after {messages} of {} records",
                idle_timeout.as_millis(),
                args.messages
            )));
        }
        let Some(fetched) = fetched_rx.recv().await else {
            return Err(protocol("the fetching task ended".to_owned()));
        };
        let (fetched, fetch_latency) = fetched?;
        let mut got = 0u64;
        for partition in &fetched {
            for record in partition.records() {
                let value = record?.value.unwrap_or_default();
                value_bytes += value.len() as u64;
                got += 1;
                if stamped {
                    let stamp =
                        value.get(..STAMP_BYTES).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
                    let stamp =
                        stamp.ok_or_else(|| protocol("record too short to hold a timestamp".into()))?;
                    latency.record(Duration::from_nanos(nanos_since(t0).saturating_sub(stamp)));
                }
            }
        }
        if got > 0 {
            last_progress = Instant::now();
            if !stamped {
                latency.record(fetch_latency);
            }
        }
        messages += got;
    }
    Ok(Report { messages, value_bytes, elapsed: started.elapsed(), latency, latency_kind: "fetch request" })
}

type Fetched = Result<(Vec<FetchedBatches>, Duration)>;

/// Fetches from `positions` on, handing each response to the consumer.
/// The next fetch goes out as soon as a response arrives (its positions
/// are in the batch headers), before anyone reads its records, as Kafka's
/// consumer prefetches; so the broker serves one fetch while the consumer
/// reads the last. A response is fetched only once the consumer has taken
/// the one before: at most one waits unread, and one more is in flight.
async fn prefetch(
    client: Arc<Client>,
    topic: String,
    mut positions: Vec<FetchPosition>,
    options: FetchOptions,
    responses: mpsc::Sender<Fetched>,
) {
    let mut in_flight = start_fetch(&client, &topic, &positions, options);
    while let Ok(slot) = responses.reserve().await {
        let fetched = (&mut in_flight).await.unwrap_or_else(|e| Err(protocol(format!("fetch task: {e}"))));
        if let Ok((fetched, _)) = &fetched {
            for partition in fetched {
                if let Some(position) = positions.iter_mut().find(|p| p.partition == partition.partition) {
                    position.offset = partition.next_offset;
                }
            }
            in_flight = start_fetch(&client, &topic, &positions, options);
        }
        let failed = fetched.is_err();
        slot.send(fetched);
        if failed {
            return;
        }
    }
    in_flight.abort();
}

/// Sends a fetch from a task of its own, so that it is on its way while
/// the caller waits for the consumer. Its latency is measured in the task,
/// from sending to the response, not to when anyone gets to it.
fn start_fetch(
    client: &Arc<Client>,
    topic: &str,
    positions: &[FetchPosition],
    options: FetchOptions,
) -> JoinHandle<Fetched> {
    let (client, topic, positions) = (Arc::clone(client), topic.to_owned(), positions.to_vec());
    tokio::spawn(async move {
        let sent = Instant::now();
        let fetched = client.fetch_batches(&topic, &positions, &options).await?;
        Ok((fetched, sent.elapsed()))
    })
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Report {
    fn mb_per_s(&self) -> f64 {
        self.value_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Value bytes per record as measured: a consumer reads whatever was
    /// produced, whatever `--size` says.
    fn record_bytes(&self, args: &Args) -> u64 {
        match self.messages {
            0 => args.size as u64,
            n => self.value_bytes / n,
        }
    }

    fn percentile_ms(&self, q: f64) -> f64 {
        self.latency.percentile(q) as f64 / 1e6
    }

    fn summary(&self, args: &Args) -> String {
        // Producer count and acks mean nothing to a consume-only run.
        let setup = match args.mode {
            Mode::Consume => String::new(),
            _ if args.rate > 0 => format!(
                ", {} producers, acks={}, paced at {} msgs/s",
                args.producers,
                acks_text(args.acks),
                args.rate
            ),
            _ => format!(", {} producers, acks={}", args.producers, acks_text(args.acks)),
        };
        format!(
            "{}: {} msgs x {} B{setup}, {:.2} s: {:.1} MB/s, {:.0} msgs/s; {} latency p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms ({} samples)",
            mode_name(args.mode),
            self.messages,
            self.record_bytes(args),
            self.elapsed.as_secs_f64(),
            self.mb_per_s(),
            self.msgs_per_s(),
            self.latency_kind,
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.latency.count(),
        )
    }

    fn table_header() -> String {
        "| mode | messages | size B | producers | acks | batch B | MB/s | msgs/s | p50 ms | p99 ms | p999 ms |\n\
         | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
            .to_owned()
    }

    fn table_row(&self, args: &Args) -> String {
        let (producers, acks, batch) = match args.mode {
            Mode::Consume => ("-".to_owned(), "-", "-".to_owned()),
            _ => (args.producers.to_string(), acks_text(args.acks), args.batch_bytes.to_string()),
        };
        format!(
            "| {} | {} | {} | {producers} | {acks} | {batch} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} |",
            mode_name(args.mode),
            self.messages,
            self.record_bytes(args),
            self.mb_per_s(),
            self.msgs_per_s(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
        )
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Produce => "produce",
        Mode::Consume => "consume",
        Mode::E2e => "e2e",
    }
}

fn acks_text(acks: Acks) -> &'static str {
    match acks {
        Acks::None => "0",
        Acks::Leader => "1",
        Acks::All => "all",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four producers of 100 batches/s each take turns: together one batch
    /// every 2.5 ms, never two at once.
    #[test]
    fn paced_producers_take_turns() {
        let (start, per_batch, rate) = (Instant::now(), 10, 1000.0);
        let mut dues: Vec<Duration> = (0..4)
            .flat_map(|producer| {
                (0..5).map(move |batch| {
                    due_at(start, batch * per_batch, rate, per_batch, producer as f64 / 4.0) - start
                })
            })
            .collect();
        dues.sort();
        for (n, due) in dues.iter().enumerate() {
            let want = Duration::from_micros(2500 * n as u64);
            assert!(due.abs_diff(want) < Duration::from_micros(1), "batch {n} due at {due:?}, want {want:?}");
        }
    }
}
