//! clean-bench: the log cleaner's throughput against a plain copy of the
//! same bytes. Appends `--mib` MiB of records over `--keys` keys (each
//! rewritten many times) to a compacted log on the real disk, in segments
//! of `--segment-mib`, then times one cleaning pass (map, rewrite, fsync,
//! swap) and a copy of the same segment files (read, write, fsync) made the
//! same way, with the same backend.
//!
//! Output: one line of key=value pairs, e.g.
//! `input_mib=256 keys=10000 clean_mib_s=... copy_mib_s=... ratio=... kept_mib=...`.

use bytes::Bytes;
use clap::Parser;
use ringtail_engine::clock::Clock;
use ringtail_engine::io::{open_backend, Disk, DiskFile, IoChoice, OpenMode};
use ringtail_engine::log::cleaner::{CleanerSettings, Unpaced};
use ringtail_engine::log::config::CleanupPolicy;
use ringtail_engine::log::records::BatchBuilder;
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{FlushPolicy, Log, LogCache, LogConfig};
use ringtail_server::clock::SystemClock;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Times a cleaning pass against a plain copy of the same bytes")]
struct Args {
    /// MiB of records to append before cleaning.
    #[arg(long, default_value_t = 256)]
    mib: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 1000)]
    value_bytes: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 16)]
    batch_records: u64,
    #[arg(long, default_value_t = 32)]
    segment_mib: u64,
    /// Storage backend: uring, std or auto.
    #[arg(long, default_value = "auto")]
    io: String,
    /// Data directory (must not exist; removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Reads every `.log` file of `from` and writes it to `to`, fsynced, in
/// 1 MiB pieces as the cleaner reads and writes.
async fn copy_segments<D: Disk>(disk: &D, from: &Path, to: &Path) -> Result<u64, String> {
    disk.create_dir_all(to).await.map_err(|e| e.to_string())?;
    let mut copied = 0;
    for name in disk.list(from).await.map_err(|e| e.to_string())? {
        if !name.ends_with(".log") {
            continue;
        }
        let source =
            disk.open_direct(&from.join(&name), OpenMode::Existing).await.map_err(|e| e.to_string())?;
        let target = disk.open(&to.join(&name), OpenMode::Create).await.map_err(|e| e.to_string())?;
        let len = source.len().await.map_err(|e| e.to_string())?;
        let mut at = 0;
        while at < len {
            let piece =
                source.read_at(at, (1 << 20).min((len - at) as usize)).await.map_err(|e| e.to_string())?;
            let n = piece.len() as u64;
            target.write_at(at, Bytes::copy_from_slice(&piece)).await.map_err(|e| e.to_string())?;
            at += n;
        }
        target.sync_data().await.map_err(|e| e.to_string())?;
        copied += len;
    }
    disk.sync_dir(to).await.map_err(|e| e.to_string())?;
    Ok(copied)
}

async fn run(args: Args, dir: PathBuf) -> Result<String, String> {
    let choice: IoChoice = args.io.parse().map_err(|e| format!("--io: {e}"))?;
    let disk = open_backend(choice).map_err(|e| e.to_string())?;
    let _reaping = disk
        .completion_reaper()
        .map(ringtail_server::io_reaper::spawn)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut config = LogConfig {
        segment_bytes: args.segment_mib << 20,
        flush: FlushPolicy::Never,
        cleanup_policy: CleanupPolicy::Compact,
        retention_ms: None,
        ..LogConfig::default()
    };
    config.compaction.min_cleanable_dirty_ratio_ppm = 0;
    let log_dir = dir.join("t-0");
    let cache = LogCache::new(0);
    let disk = Arc::new(disk);
    let (log, _) = Log::open(
        disk.clone(),
        log_dir.clone(),
        config,
        Arc::new(SystemClock),
        LogCheckpoint::default(),
        &cache,
    )
    .await
    .map_err(|e| e.to_string())?;
    let value = Bytes::from(vec![b'v'; args.value_bytes]);
    let now = SystemClock.now_ms();
    let mut appended = 0u64;
    let mut n = 0u64;
    while appended < args.mib << 20 {
        let mut batch = BatchBuilder::new(0, now);
        for _ in 0..args.batch_records {
            // A stride through the keys, so each batch holds several.
            let key = format!("key-{:08}", (n * 7919) % args.keys);
            batch.push(Some(Bytes::from(key)), Some(value.clone()), now);
            n += 1;
        }
        let batch = batch.build();
        appended += batch.len() as u64;
        log.append(batch, 0).await.map_err(|e| e.to_string())?;
    }
    log.roll().await.map_err(|e| e.to_string())?;

    let copy_started = Instant::now();
    let copied = copy_segments(disk.as_ref(), &log_dir, &dir.join("copy")).await?;
    let copy_s = copy_started.elapsed().as_secs_f64();

    let settings = CleanerSettings { dedupe_buffer_bytes: 1 << 30, keep_newest_sealed: 0 };
    let clean_started = Instant::now();
    let done = log
        .clean(u64::MAX, &settings, &Unpaced)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("cleaning was not due")?;
    let clean_s = clean_started.elapsed().as_secs_f64();
    log.close().await.map_err(|e| e.to_string())?;
    let (clean_rate, copy_rate) = (mib(done.bytes_before) / clean_s, mib(copied) / copy_s);
    Ok(format!(
        "backend={} input_mib={:.0} keys={} records={n} clean_mib_s={clean_rate:.1} copy_mib_s={copy_rate:.1} \
         ratio={:.2} kept_mib={:.1} records_removed={}",
        disk.name(),
        mib(done.bytes_before),
        args.keys,
        clean_rate / copy_rate,
        mib(done.bytes_after),
        done.records_removed,
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ringtail-clean-bench-{}", std::process::id())));
    if dir.exists() {
        eprintln!("clean-bench: {} exists; give a fresh --dir", dir.display());
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
            eprintln!("clean-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
