//! `ringtail consume TOPIC`: one record value per line on stdout.
//!
//! Without `--group`, reads the chosen partitions directly: every fetch
//! asks each leader for all of its partitions at once, and records are
//! printed in offset order within each partition.
//!
//! With `--group G`, joins consumer group G (Kafka's classic protocol,
//! range assignor) and reads the partitions the group assigns, from the
//! group's committed offsets (`--from` only where it has none). Offsets are
//! committed after the records are written (at least once: a record may be
//! printed again after a crash or rebalance, never skipped), and the
//! member leaves the group when it stops (Ctrl-C, SIGTERM, `--count`
//! reached, output closed).

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;

use clap::Args;

use super::{connect, finish, topic_error, CliError, BOOTSTRAP_DEFAULT};
use ringtail_client::{ClientConfig, ClientError, ConsumedRecord, FetchOptions, FetchPosition, OffsetSpec};

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Consume as a member of this consumer group: read the partitions the
    /// group assigns, from its committed offsets, committing as records are
    /// printed.
    #[arg(long)]
    pub group: Option<String>,
    /// Where to start in each partition: earliest, latest, or an offset.
    /// With --group, only where the group has no committed offset.
    #[arg(long, default_value = "earliest", value_parser = clap::value_parser!(StartFrom))]
    pub from: StartFrom,
    /// Stop after this many records; without it, run until Ctrl-C.
    #[arg(long)]
    pub count: Option<u64>,
    /// Read only this partition (default: all). Not with --group.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Print each record's key before its value, separated by a tab.
    #[arg(long)]
    pub print_keys: bool,
    /// Broker to ask first, HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT", default_value = BOOTSTRAP_DEFAULT)]
    pub bootstrap: String,
    /// Client security settings (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password).
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

/// `--from`: a position in every partition read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Earliest,
    Latest,
    Offset(i64),
}

impl FromStr for StartFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<StartFrom, String> {
        match s {
            "earliest" | "beginning" => Ok(StartFrom::Earliest),
            "latest" | "end" => Ok(StartFrom::Latest),
            _ => match s.parse::<i64>() {
                Ok(offset) if offset >= 0 => Ok(StartFrom::Offset(offset)),
                _ => Err(format!("expected earliest, latest or a non-negative offset, got {s:?}")),
            },
        }
    }
}

pub async fn run(args: ConsumeArgs) -> ExitCode {
    let stop = async {
        // If a handler cannot be installed, the signal's default still ends us.
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => drop(signal.recv().await),
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    };
    // Buffered: consume_into flushes after every fetch, not every record.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let result = consume_into(args, &mut out, stop).await.map(drop);
    finish("consume", result)
}

/// Reads records until `--count` of them were written to `out` or `stop`
/// completes. Returns the number written. A closed `out` (as when piped
/// into `head`) ends the run quietly.
pub async fn consume_into<W: Write + ?Sized>(
    args: ConsumeArgs,
    out: &mut W,
    stop: impl Future<Output = ()>,
) -> Result<u64, CliError> {
    if let Some(group) = args.group.clone() {
        return super::consume_group::consume_group(args, &group, out, stop).await;
    }
    let config = super::command_config::secured(ClientConfig::default(), args.command_config.as_deref())?;
    let client = connect(&args.bootstrap, config).await?;
    let topic = &args.topic;
    let info = client.topic(topic).await.map_err(|e| topic_error(topic, e))?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if info.partition(p).is_none() => {
            let count = info.partitions.len();
            return Err(ClientError::NoSuchPartition { topic: topic.clone(), partition: p, count }.into());
        }
        Some(p) => vec![p],
        None => info.partitions.iter().map(|p| p.partition).collect(),
    };
    let mut positions = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let offset = match args.from {
            StartFrom::Earliest => client.list_offset(topic, partition, OffsetSpec::Earliest).await?,
            StartFrom::Latest => client.list_offset(topic, partition, OffsetSpec::Latest).await?,
            StartFrom::Offset(offset) => offset,
        };
        positions.push(FetchPosition { partition, offset });
    }

    let options = FetchOptions::default();
    let mut written = 0u64;
    tokio::pin!(stop);
    while args.count.is_none_or(|count| written < count) {
        let fetched = tokio::select! {
            fetched = client.fetch(topic, &positions, &options) => fetched?,
            () = &mut stop => break,
        };
        for partition in fetched {
            for record in &partition.records {
                if args.count.is_some_and(|count| written >= count) {
                    break;
                }
                if !write_record(out, record, args.print_keys)? {
                    return Ok(written);
                }
                written += 1;
            }
            if let Some(position) = positions.iter_mut().find(|p| p.partition == partition.partition) {
                position.offset = partition.next_offset;
            }
        }
        if !flush(out)? {
            break;
        }
    }
    Ok(written)
}

/// Writes one record; `false` if `out` was closed by its reader.
pub(super) fn write_record<W: Write + ?Sized>(
    out: &mut W,
    record: &ConsumedRecord,
    print_keys: bool,
) -> Result<bool, CliError> {
    // Kafka's console consumer prints a missing value or key as "null".
    let mut line = Vec::with_capacity(record.value.as_ref().map_or(4, |v| v.len()) + 1);
    if print_keys {
        line.extend_from_slice(record.key.as_deref().unwrap_or(b"null"));
        line.push(b'\t');
    }
    line.extend_from_slice(record.value.as_deref().unwrap_or(b"null"));
    line.push(b'\n');
    output_result(out.write_all(&line))
}

pub(super) fn flush<W: Write + ?Sized>(out: &mut W) -> Result<bool, CliError> {
    output_result(out.flush())
}

fn output_result(result: std::io::Result<()>) -> Result<bool, CliError> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::Runtime(format!("cannot write output: {e}"))),
    }
}
