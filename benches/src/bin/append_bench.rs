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

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use ringtail_engine::clock::Clock;
use ringtail_engine::io::{open_backend, AnyDisk, IoChoice, UringStats};
use ringtail_engine::log::records::BatchBuilder;
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{FlushPolicy, Log, LogCache, LogConfig};
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// Counters of one block device from /proc/diskstats.
#[derive(Clone, Copy, Debug, Default)]
struct DiskCounters {
    sectors_written: u64,
    flushes: u64,
}

impl DiskCounters {
    fn since(self, before: DiskCounters) -> DiskCounters {
        DiskCounters {
            sectors_written: self.sectors_written.saturating_sub(before.sectors_written),
            flushes: self.flushes.saturating_sub(before.flushes),
        }
    }
}

/// Reads the counters of `device`. Whitespace-separated columns of
/// /proc/diskstats, counting from 1: 3 the name, 10 sectors written (512
/// bytes each, whatever the sector size), 19 flush requests completed
/// (iostats "field 16", Linux 5.5+). Checked here: 20 `dd conv=fdatasync`
/// moved column 19 by exactly 20. Flushes are accounted on the whole disk
/// only, never on a partition, which is why `device_of` returns the disk.
fn read_diskstats(device: &str) -> Option<DiskCounters> {
    let text = std::fs::read_to_string("/proc/diskstats").ok()?;
    text.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 19 || cols[2] != device {
            return None;
        }
        Some(DiskCounters { sectors_written: cols[9].parse().ok()?, flushes: cols[18].parse().ok()? })
    })
}

/// The whole block device holding `path`: st_dev's major:minor through
/// /sys/dev/block, climbing from a partition to its disk. Falls back to
/// "vda" (with a warning) for filesystems not on a block device.
fn device_of(path: &Path) -> String {
    let found = (|| {
        let dev = std::fs::metadata(path).ok()?.dev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
        let disk = if sys.join("partition").exists() { sys.parent()?.to_path_buf() } else { sys };
        let name = disk.file_name()?.to_str()?.to_string();
        read_diskstats(&name).map(|_| name)
    })();
    found.unwrap_or_else(|| {
        eprintln!("warning: no block device found for {}; reading counters of vda", path.display());
        "vda".to_string()
    })
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

/// Refuses too little free space; warns about tmpfs.
fn check_filesystem(dir: &Path, bytes: u64) -> Result<()> {
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: a valid NUL-terminated path and a zeroed out-parameter.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } != 0 {
        return Err(format!("statfs {}: {}", dir.display(), std::io::Error::last_os_error()).into());
    }
    if fs.f_type == libc::TMPFS_MAGIC {
        eprintln!("warning: {} is on tmpfs: this measures memory, not a disk", dir.display());
    }
    let free = fs.f_bavail * fs.f_bsize as u64;
    let need = bytes + bytes / 8 + (1 << 30);
    if free < need {
        return Err(format!("{} has {free} bytes free; a run needs about {need}", dir.display()).into());
    }
    Ok(())
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
        (Some(after), Some(before)) => Some(UringStats {
            sqes_submitted: after.sqes_submitted - before.sqes_submitted,
            completions: after.completions - before.completions,
            enter_calls: after.enter_calls - before.enter_calls,
            submit_calls: after.submit_calls - before.submit_calls,
        }),
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

#[derive(Clone, Copy)]
enum FioJob {
    /// Sequential 1 MiB O_DIRECT writes, libaio, queue depth 8.
    Direct,
    /// Sequential 1 MiB buffered writes, fdatasync after each.
    Fdatasync,
}

fn fio_path() -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("fio")).find(|p| p.is_file())
}

fn run_fio(base: &Path, device: &str, job: FioJob, size: u64, settle_secs: u64) -> Result<Outcome> {
    let (name, label, extra): (&str, &str, &[&str]) = match job {
        FioJob::Direct => {
            ("seq-odirect", "fio O_DIRECT qd8", &["--direct=1", "--ioengine=libaio", "--iodepth=8"])
        }
        FioJob::Fdatasync => ("seq-fdatasync", "fio fdatasync/1MiB", &["--direct=0", "--fdatasync=1"]),
    };
    let file = base.join(format!("fio-{name}.dat"));
    let cleanup = RemoveOnDrop(file.clone());
    let mut cmd = Command::new("fio");
    cmd.arg(format!("--name={name}"))
        .arg(format!("--filename={}", file.display()))
        .args(["--rw=write", "--bs=1M"])
        .args(extra)
        .arg(format!("--size={size}"))
        .arg("--output-format=json");
    eprintln!("running {label}: {}", render_command(&cmd));
    let before = read_diskstats(device).unwrap_or_default();
    let out = cmd.output()?;
    let device_delta = read_diskstats(device).unwrap_or_default().since(before);
    if !out.status.success() {
        return Err(format!("fio failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)).into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    // fio may print notes before the JSON document.
    let json_start = stdout.find('{').ok_or("fio printed no JSON")?;
    let doc: serde_json::Value = serde_json::from_str(&stdout[json_start..])?;
    let write = &doc["jobs"][0]["write"];
    let bw = write["bw_bytes"].as_f64().ok_or("fio JSON has no jobs[0].write.bw_bytes")?;
    let bytes = write["io_bytes"].as_u64().unwrap_or(size);
    let runtime_ms = write["runtime"].as_u64().unwrap_or(0);
    let outcome = Outcome {
        label: label.to_string(),
        bytes,
        elapsed: Duration::from_millis(runtime_ms),
        bytes_per_sec: bw,
        close: None,
        batches: None,
        latencies_ns: Vec::new(),
        device: device_delta,
        uring: None,
        segments: None,
    };
    eprintln!(
        "  {label:<16} {:>8.1} MB/s  runtime {:.2} s  flushes {}  device {:.0} MB",
        bw / 1e6,
        runtime_ms as f64 / 1e3,
        device_delta.flushes,
        device_delta.sectors_written as f64 * 512.0 / 1e6
    );
    drop(cleanup);
    settle(settle_secs);
    Ok(outcome)
}

/// Lets the next run start from a quiet disk: writes back what the last
/// one left (e.g. the journal after deleting its files), then waits for the
/// host to drain what it absorbed.
fn settle(secs: u64) {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_secs(secs));
}

/// Removes a file or directory when dropped, so an error leaves no data.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let result = if self.0.is_dir() {
            std::fs::remove_dir_all(&self.0)
        } else if self.0.exists() {
            std::fs::remove_file(&self.0)
        } else {
            Ok(())
        };
        if let Err(e) = result {
            eprintln!("warning: could not remove {}: {e}", self.0.display());
        }
    }
}

fn shell_quote(arg: &str) -> String {
    let plain =
        !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn render_command(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// UTC date and time from the system clock (days-from-civil inverse).
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
}

fn render(
    args: &Args,
    device: &str,
    batch_bytes: usize,
    workers: usize,
    fio_direct: Option<f64>,
    runs: &[Outcome],
) -> String {
    let command: Vec<String> = std::env::args().map(|a| shell_quote(&a)).collect();
    let mut out = String::new();
    let _ = writeln!(out, "### Append throughput ({})\n", utc_now());
    let _ = writeln!(out, "Command: `{}`\n", command.join(" "));
    let _ = writeln!(
        out,
        "Host: Linux {}, {} CPUs ({} tokio workers), {device} write cache: {}. \
         One partition log, segment.bytes 1 GiB, {} appender tasks, each append one {} B batch \
         ({} records × {} B values), {} B per run, sync(2) and {} s pause after each run. Latency \
         is per append call, until acknowledged (under flush=always: fsynced).\n",
        read_trimmed("/proc/sys/kernel/osrelease"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        workers,
        read_trimmed(&format!("/sys/block/{device}/queue/write_cache")),
        args.appenders,
        batch_bytes,
        args.records_per_batch,
        args.record_bytes,
        runs.first().map_or(0, |r| r.bytes),
        args.settle_secs,
    );

    let cell_f = |v: Option<f64>, prec: usize| v.map_or("–".to_string(), |v| format!("{v:.prec$}"));
    type Row<'a> = (&'a str, Box<dyn Fn(&Outcome) -> String + 'a>);
    let rows: Vec<Row> = vec![
        ("MB/s (10⁶ B/s)", Box::new(|o: &Outcome| format!("**{:.0}**", o.bytes_per_sec / 1e6))),
        ("× fio O_DIRECT", Box::new(|o: &Outcome| cell_f(fio_direct.map(|f| o.bytes_per_sec / f), 2))),
        ("appended bytes", Box::new(|o: &Outcome| o.bytes.to_string())),
        ("wall s (to last ack)", Box::new(|o: &Outcome| format!("{:.2}", o.elapsed.as_secs_f64()))),
        ("close s (final fsync)", Box::new(|o: &Outcome| cell_f(o.close.map(|d| d.as_secs_f64()), 2))),
        (
            "MB/s incl. close",
            Box::new(|o: &Outcome| {
                cell_f(o.close.map(|c| o.bytes as f64 / (o.elapsed + c).as_secs_f64() / 1e6), 0)
            }),
        ),
        (
            "batches/s",
            Box::new(|o: &Outcome| cell_f(o.batches.map(|b| b as f64 / o.elapsed.as_secs_f64()), 0)),
        ),
        ("append p50 ms", Box::new(|o: &Outcome| cell_f(o.percentile_ms(0.5), 2))),
        ("append p99 ms", Box::new(|o: &Outcome| cell_f(o.percentile_ms(0.99), 2))),
        ("append p99.9 ms", Box::new(|o: &Outcome| cell_f(o.percentile_ms(0.999), 2))),
        ("append max ms", Box::new(|o: &Outcome| cell_f(o.percentile_ms(1.0), 2))),
        ("device flushes", Box::new(|o: &Outcome| o.device.flushes.to_string())),
        (
            "device MB written",
            Box::new(|o: &Outcome| format!("{:.0}", o.device.sectors_written as f64 * 512.0 / 1e6)),
        ),
        (
            "appends per flush",
            Box::new(|o: &Outcome| {
                cell_f(
                    o.batches.filter(|_| o.device.flushes > 0).map(|b| b as f64 / o.device.flushes as f64),
                    1,
                )
            }),
        ),
        ("segments", Box::new(|o: &Outcome| o.segments.map_or("–".into(), |s| s.to_string()))),
        (
            "ring SQEs (writes + fsyncs)",
            Box::new(|o: &Outcome| o.uring.map_or("–".into(), |u| u.sqes_submitted.to_string())),
        ),
        (
            "ring SQEs / submit",
            Box::new(|o: &Outcome| {
                cell_f(
                    o.uring
                        .filter(|u| u.submit_calls > 0)
                        .map(|u| u.sqes_submitted as f64 / u.submit_calls as f64),
                    1,
                )
            }),
        ),
    ];
    let _ = write!(out, "| |");
    for r in runs {
        let _ = write!(out, " {} |", r.label);
    }
    let _ = write!(out, "\n|---|");
    for _ in runs {
        let _ = write!(out, "---:|");
    }
    out.push('\n');
    for (name, cell) in &rows {
        let _ = write!(out, "| {name} |");
        for r in runs {
            let _ = write!(out, " {} |", cell(r));
        }
        out.push('\n');
    }
    if runs.iter().any(|r| r.close.is_none()) {
        let _ = writeln!(
            out,
            "\nfio jobs: `--rw=write --bs=1M --size=<bytes>` plus `--direct=1 --ioengine=libaio \
             --iodepth=8` (O_DIRECT) or `--direct=0 --fdatasync=1` (fdatasync after every 1 MiB \
             write); MB/s is fio's bw_bytes. Device flushes and MB come from /proc/diskstats \
             around each run (whole device, so they include any other writer)."
        );
    } else {
        let _ = writeln!(
            out,
            "\nDevice flushes and MB come from /proc/diskstats around each run (whole device, so \
             they include any other writer)."
        );
    }
    out
}
