//! append-bench: append throughput and latency of one partition `Log`.
//!
//! N appender tasks on a tokio multi-thread runtime append the same prebuilt
//! record batch (16 records of 1 KiB values, built with `BatchBuilder`; the
//! log copies it) until `--bytes` have been appended, for every requested
//! backend (io_uring, std) × flush policy (always, never), each run in a
//! fresh directory under `--dir`. Around every run the device's counters in
//! /proc/diskstats give the flush requests and bytes that really reached the
//! disk, so the table shows what durability each figure had. fio, when
//! installed, measures the same device as a reference in the same
//! invocation. The output is a markdown table ready for README.md.
//!
//! Run it through `benches/run-append-bench.sh`, which installs fio and
//! builds in release.

mod disk;
mod fio;
mod report;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use disk::{check_filesystem, device_of, read_diskstats, settle, DiskCounters, RemoveOnDrop};
use fio::{fio_path, run_fio, FioJob};
use report::render;
use ringtail_engine::clock::Clock;
use ringtail_engine::io::{open_backend, AnyDisk, IoChoice, UringStats};
use ringtail_engine::log::records::BatchBuilder;
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{FlushPolicy, Log, LogCache, LogConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

#[derive(Parser, Debug)]
#[command(name = "append-bench", about = "Append throughput of a Ringtail partition log, next to fio")]
struct Args {
    /// Parent of the per-run data directories; must be on the disk under
    /// test (not /tmp, which may be tmpfs). Created if missing, and then
    /// removed at the end.
    #[arg(long, default_value = "bench-data")]
    dir: PathBuf,
    /// Concurrent appender tasks.
    #[arg(long, default_value_t = 256)]
    appenders: usize,
    /// Bytes of record batches appended per run (and written by each fio job).
    #[arg(long, default_value_t = 4 << 30)]
    bytes: u64,
    #[arg(long, value_enum, default_value_t = BackendArg::All)]
    backend: BackendArg,
    #[arg(long, value_enum, default_value_t = FlushArg::All)]
    flush: FlushArg,
    /// Records per batch.
    #[arg(long, default_value_t = 16)]
    records_per_batch: usize,
    /// Value bytes of each record (no key, no headers).
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Run the fio reference jobs (the default).
    #[arg(long, overrides_with = "no_fio")]
    fio: bool,
    /// Skip the fio reference jobs.
    #[arg(long, overrides_with = "fio")]
    no_fio: bool,
    /// Pause after each run (after sync(2)), so that one run's write-back
    /// and journal activity does not spill into the next.
    #[arg(long, default_value_t = 15)]
    settle_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Uring,
    Std,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FlushArg {
    Always,
    Never,
    All,
}

/// Wall-clock time for the log's record timestamps and segment ages. The
/// engine never reads the ambient clock; a benchmark may.
struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}

/// What one measured run (ringtail or fio) produced.
struct Outcome {
    label: String,
    /// Bytes appended (or written by fio).
    bytes: u64,
    /// Until the last append was acknowledged (fio: its own runtime).
    elapsed: Duration,
    /// Throughput in bytes/s as the table reports it.
    bytes_per_sec: f64,
    /// Ringtail only: time of the final `close` (fsync + indexes).
    close: Option<Duration>,
    batches: Option<u64>,
    /// Sorted per-append latencies in nanoseconds (empty for fio).
    latencies_ns: Vec<u64>,
    device: DiskCounters,
    uring: Option<UringStats>,
    segments: Option<usize>,
}

impl Outcome {
    fn percentile_ms(&self, q: f64) -> Option<f64> {
        let v = &self.latencies_ns;
        if v.is_empty() {
            return None;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1] as f64 / 1e6)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.appenders == 0 || args.bytes == 0 || args.records_per_batch == 0 {
        return Err("--appenders, --bytes and --records-per-batch must be positive".into());
    }
    let created_base = !args.dir.exists();
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("creating {}: {e}", args.dir.display()))?;
    let base = std::fs::canonicalize(&args.dir)?;
    // Removed on every way out, a panic included, if this run created it.
    let cleanup = created_base.then(|| RemoveOnDrop(base.clone()));
    let table = run_all(&args, &base)?;
    drop(cleanup);
    print!("{table}");
    Ok(())
}

fn run_all(args: &Args, base: &Path) -> Result<String> {
    check_filesystem(base, args.bytes)?;
    let device = device_of(base);
    let batch = build_batch(args.records_per_batch, args.record_bytes);
    let batch_count = args.bytes.div_ceil(batch.len() as u64);
    eprintln!(
        "append-bench: {} appenders, batches of {} records × {} B = {} B, {} batches ({} B) per run, \
         data under {} on {device}",
        args.appenders,
        args.records_per_batch,
        args.record_bytes,
        batch.len(),
        batch_count,
        batch_count * batch.len() as u64,
        base.display(),
    );

    let mut outcomes = Vec::new();
    let mut fio_direct = None;
    if !args.no_fio {
        match fio_path() {
            None => eprintln!(
                "fio is not on PATH: skipping the fio reference (install it with: apt-get install -y fio)"
            ),
            Some(_) => {
                let size = args.bytes.div_ceil(1 << 20) << 20;
                let direct = run_fio(base, &device, FioJob::Direct, size, args.settle_secs)?;
                fio_direct = Some(direct.bytes_per_sec);
                outcomes.push(direct);
                outcomes.push(run_fio(base, &device, FioJob::Fdatasync, size, args.settle_secs)?);
            }
        }
    }

    let backends: &[IoChoice] = match args.backend {
        BackendArg::Uring => &[IoChoice::Uring],
        BackendArg::Std => &[IoChoice::Std],
        BackendArg::All => &[IoChoice::Uring, IoChoice::Std],
    };
    let flushes: &[FlushPolicy] = match args.flush {
        FlushArg::Always => &[FlushPolicy::Always],
        FlushArg::Never => &[FlushPolicy::Never],
        FlushArg::All => &[FlushPolicy::Always, FlushPolicy::Never],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let workers = runtime.metrics().num_workers();
    let mut ringtail = Vec::new();
    for &choice in backends {
        for &flush in flushes {
            let run_dir = base.join(format!("ringtail-{choice}-{flush}"));
            let cleanup = RemoveOnDrop(run_dir.clone());
            let outcome =
                runtime.block_on(run_log(args, choice, flush, &run_dir, &device, &batch, batch_count))?;
            eprintln!(
                "  {:<16} {:>8.1} MB/s  wall {:.2} s (+ close {:.2} s)  p50 {:.2} ms  p99 {:.2} ms  \
                 p99.9 {:.2} ms  flushes {}  device {:.0} MB",
                outcome.label,
                outcome.bytes_per_sec / 1e6,
                outcome.elapsed.as_secs_f64(),
                outcome.close.unwrap_or_default().as_secs_f64(),
                outcome.percentile_ms(0.5).unwrap_or(0.0),
                outcome.percentile_ms(0.99).unwrap_or(0.0),
                outcome.percentile_ms(0.999).unwrap_or(0.0),
                outcome.device.flushes,
                outcome.device.sectors_written as f64 * 512.0 / 1e6,
            );
            ringtail.push(outcome);
            drop(cleanup);
            settle(args.settle_secs);
        }
    }
    // Ringtail first, then the references.
    ringtail.append(&mut outcomes);
    Ok(render(args, &device, batch.len(), workers, fio_direct, &ringtail))
}

/// One valid uncompressed v2 batch; every append reuses it (the log copies
/// it into its round buffer and stamps offsets there).
fn build_batch(records: usize, value_bytes: usize) -> Bytes {
    let now = SystemClock.now_ms();
    let mut builder = BatchBuilder::new(0, now);
    for i in 0..records {
        let value: Vec<u8> = (0..value_bytes).map(|j| (i * 31 + j * 7) as u8).collect();
        builder.push(None, Some(Bytes::from(value)), now);
    }
    builder.build()
}

async fn run_log(
    args: &Args,
    choice: IoChoice,
    flush: FlushPolicy,
    dir: &Path,
    device: &str,
    batch: &Bytes,
    batch_count: u64,
) -> Result<Outcome> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let disk = open_backend(choice)?;
    // Completions reaped on this runtime, as the server does.
    let _reaping = disk.completion_reaper().map(ringtail_server::io_reaper::spawn).transpose()?;
    let label = format!("{} / {flush}", disk.name());
    eprintln!("running {label} ...");
    let config = LogConfig { segment_bytes: 1 << 30, flush, ..LogConfig::default() };
    let stats_disk: AnyDisk = disk.clone();
    // No log cache: what is measured is the path to the disk.
    let cache = LogCache::new(0);
    let checkpoint = LogCheckpoint::default();
    let (log, _) =
        Log::open(Arc::new(disk), dir.to_path_buf(), config, Arc::new(SystemClock), checkpoint, &cache)
            .await?;
    let log = Arc::new(log);
    let uring_before = stats_disk.uring_stats();
    let next = Arc::new(AtomicU64::new(0));
    let per_task = (batch_count as usize).div_ceil(args.appenders) + 1;

    let disk_before = read_diskstats(device).unwrap_or_default();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.appenders);
    for _ in 0..args.appenders {
        let (log, next, batch) = (log.clone(), next.clone(), batch.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            while next.fetch_add(1, Ordering::Relaxed) < batch_count {
                let t = Instant::now();
                log.append(batch.clone(), 0).await?;
                latencies.push(t.elapsed().as_nanos() as u64);
            }
            Ok::<_, BoxError>(latencies)
        }));
    }
    let mut latencies_ns = Vec::with_capacity(batch_count as usize);
    for task in tasks {
        latencies_ns.extend(task.await??);
    }
    let elapsed = start.elapsed();
    let close_start = Instant::now();
    log.close().await?;
    let close = close_start.elapsed();
    let device_delta = read_diskstats(device).unwrap_or_default().since(disk_before);
    let uring = match (stats_disk.uring_stats(), uring_before) {
        (Some(after), Some(before)) => Some(after.since(&before)),
        _ => None,
    };

    let expected_end = batch_count * args.records_per_batch as u64;
    if log.log_end_offset() != expected_end || latencies_ns.len() as u64 != batch_count {
        return Err(format!(
            "{label}: log end offset {} after {} appends, expected {expected_end}",
            log.log_end_offset(),
            latencies_ns.len()
        )
        .into());
    }
    let (segments, size) = log.segment_stats();
    let bytes = batch_count * batch.len() as u64;
    debug_assert_eq!(size, bytes);
    latencies_ns.sort_unstable();
    Ok(Outcome {
        label,
        bytes,
        elapsed,
        bytes_per_sec: bytes as f64 / elapsed.as_secs_f64(),
        close: Some(close),
        batches: Some(batch_count),
        latencies_ns,
        device: device_delta,
        uring,
        segments: Some(segments),
    })
}
