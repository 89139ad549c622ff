//! metadata-scale: a broker holding many topics. Starts a server in this
//! process on a fresh data directory, creates `--topics` topics one
//! CreateTopics request at a time (each change is journalled, not the whole
//! metadata rewritten), then times Metadata requests for one topic and one
//! for every topic.
//!
//! Output: one line of key=value pairs (milliseconds unless named), e.g.
//! `topics=10000 create_per_s=... metadata_one_p50_ms=... metadata_one_p99_ms=... metadata_all_ms=...`.

use clap::Parser;
use ringtail_benches::histogram::Histogram;
use ringtail_client::admin::NewTopic;
use ringtail_client::{Client, ClientConfig};
use ringtail_server::config::{HostPort, ServeConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Times Metadata on a broker holding many topics")]
struct Args {
    /// Topics to create (one partition each).
    #[arg(long, default_value_t = 10_000)]
    topics: u32,
    /// Metadata requests for one topic to time.
    #[arg(long, default_value_t = 2_000)]
    requests: u32,
    /// Data directory (must not exist; removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

async fn run(args: Args, dir: PathBuf) -> Result<String, String> {
    let local = |port| HostPort { host: "127.0.0.1".into(), port };
    let mut config =
        ServeConfig { data_dir: dir, listen: local(0), metrics_listen: local(0), ..ServeConfig::defaults() };
    // As `--max-partitions` would: room for every topic asked for.
    config.topic_limits.partitions_max = config.topic_limits.partitions_max.max(args.topics);
    let server = ringtail_server::serve::start(config).await.map_err(|e| e.to_string())?;
    let client = Client::connect(&server.kafka_addr.to_string(), ClientConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let name = |i: u32| format!("scale-{i:05}");
    let started = Instant::now();
    let mut create = Histogram::new();
    for i in 0..args.topics {
        let topic =
            NewTopic { name: name(i), partitions: Some(1), replication_factor: None, configs: vec![] };
        let one = Instant::now();
        client.create_topic(&topic).await.map_err(|e| format!("creating {}: {e}", topic.name))?;
        create.record(one.elapsed());
    }
    let create_s = started.elapsed().as_secs_f64();
    let wanted = name(args.topics / 2);
    let mut one = Histogram::new();
    for _ in 0..args.requests {
        let at = Instant::now();
        let m = client.fetch_metadata(Some(&[wanted.as_str()])).await.map_err(|e| e.to_string())?;
        one.record(at.elapsed());
        if m.topics.len() != 1 {
            return Err(format!("Metadata for {wanted} answered {} topics", m.topics.len()));
        }
    }
    let at = Instant::now();
    let all = client.fetch_metadata(None).await.map_err(|e| e.to_string())?;
    let all_ms = at.elapsed().as_secs_f64() * 1e3;
    if all.topics.len() < args.topics as usize {
        return Err(format!("Metadata for all answered {} topics", all.topics.len()));
    }
    drop(client);
    server.shutdown().await.map_err(|e| e.to_string())?;
    Ok(format!(
        "topics={} create_per_s={:.0} create_p50_ms={:.3} create_p99_ms={:.3} metadata_one_p50_ms={:.3} \
         metadata_one_p99_ms={:.3} metadata_all_ms={all_ms:.1}",
        args.topics,
        f64::from(args.topics) / create_s,
        ms(create.percentile(0.5)),
        ms(create.percentile(0.99)),
        ms(one.percentile(0.5)),
        ms(one.percentile(0.99)),
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ringtail-metadata-scale-{}", std::process::id()))
    });
    if dir.exists() {
        eprintln!("metadata-scale: {} exists; give a fresh --dir", dir.display());
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let outcome = runtime.block_on(run(args, dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("metadata-scale: {e}");
            ExitCode::FAILURE
        }
    }
}
