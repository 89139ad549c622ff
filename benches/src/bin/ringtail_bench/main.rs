//! ringtail-bench: a load generator over the Kafka protocol, through
//! Ringtail's own client (`ringtail_client`), against any broker.
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

mod consume;
mod produce;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use consume::consume;
use produce::produce_all;
use ringtail_benches::histogram::Histogram;
use ringtail_client::error::code;
use ringtail_client::{Acks, Client, ClientConfig, ClientError, FetchPosition, NewTopic, OffsetSpec};

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
    /// Client security (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password), as
    /// `ringtail`'s commands take it: to measure a TLS or SASL listener.
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
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
    /// Each producer sends to one partition only (producer i to the i-th,
    /// round robin), instead of spreading its batches over all of them.
    #[arg(long)]
    partition_per_producer: bool,
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
    if let Some(path) = &args.command_config {
        let security = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| ringtail_client::security::Security::from_properties(&text));
        match security {
            Ok(security) => {
                let _ = SECURITY.set(security);
            }
            Err(e) => {
                eprintln!("ringtail-bench: --command-config {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
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

/// The security `--command-config` asked for, set once at start.
static SECURITY: std::sync::OnceLock<ringtail_client::security::Security> = std::sync::OnceLock::new();

fn bench_config() -> ClientConfig {
    let security = SECURITY.get().cloned().unwrap_or_default();
    ClientConfig { client_id: "ringtail-bench".to_owned(), security, ..ClientConfig::default() }
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

fn nanos_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX)
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
