//! disk-shape: the disk alone under a paced append load, its latency counted
//! the way `ringtail-bench` counts the broker's.
//!
//! A thread per file appends `--block-bytes` with O_DIRECT | O_DSYNC (the
//! write returns once durable, as one fdatasync after it would make it), each
//! append due at `(n + i / files) × block / rate` for file i (the files take
//! turns, as `ringtail-bench`'s producers do) and sent when due; appends that fell due
//! while the write before them ran go out together in one write (group
//! commit). Reported:
//! - service time (the write call alone): what fio's `clat` percentiles
//!   measure, so a run beside fio in the same shape checks this tool;
//! - latency from the due time: what `ringtail-bench --rate` reports for the
//!   broker. A stall delays every append due during it, and each of those
//!   counts the wait; fio counts the stalled write once and its successors'
//!   own service times only (coordinated omission). On a disk that stalls
//!   for tens of milliseconds now and then, the two p99s differ tenfold, so
//!   only this one is the floor under the broker's figure for the same load.
//!
//! Output: one line of key=value pairs (milliseconds, MB/s), for scripts.

use clap::Parser;
use ringtail_benches::histogram::Histogram;
use ringtail_engine::io::aligned::AlignedBuf;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "disk-shape",
    about = "Paced O_DSYNC appends on the disk alone, latency from each one's due time"
)]
struct Args {
    /// Directory for the files, on the disk under test; they are removed at
    /// the end.
    #[arg(long)]
    dir: PathBuf,
    /// Files, each appended by a thread of its own (the broker's partitions).
    #[arg(long, default_value_t = 4)]
    files: usize,
    /// Bytes per append; rounded up to 4 KiB for direct I/O.
    #[arg(long)]
    block_bytes: usize,
    /// Bytes per second appended to each file.
    #[arg(long)]
    rate: u64,
    #[arg(long, default_value_t = 30)]
    secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("disk-shape: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Measured {
    service: Histogram,
    from_due: Histogram,
    bytes: u64,
}

fn run(args: &Args) -> std::io::Result<String> {
    if args.rate == 0 || args.block_bytes == 0 || args.files == 0 {
        return Err(std::io::Error::other("--rate, --block-bytes and --files must be positive"));
    }
    let block = args.block_bytes.div_ceil(4096) * 4096;
    let appends = (args.rate * args.secs).div_ceil(block as u64);
    let interval = Duration::from_secs_f64(block as f64 / args.rate as f64);
    let paths: Vec<PathBuf> = (0..args.files).map(|i| args.dir.join(format!("disk-shape.{i}"))).collect();
    let start = Instant::now() + Duration::from_millis(50);
    let results: Vec<std::io::Result<Measured>> = std::thread::scope(|scope| {
        let threads: Vec<_> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let start = start + interval.mul_f64(i as f64 / args.files as f64);
                scope.spawn(move || append_paced(path, block, appends, interval, start))
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("an append thread panicked")).collect()
    });
    let elapsed = start.elapsed();
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    let (mut service, mut from_due, mut bytes) = (Histogram::new(), Histogram::new(), 0);
    for measured in results {
        let measured = measured?;
        service.merge(&measured.service);
        from_due.merge(&measured.from_due);
        bytes += measured.bytes;
    }
    let ms = |h: &Histogram, q: f64| h.percentile(q) as f64 / 1e6;
    Ok(format!(
        "appends={} writes={} mb_per_s={:.1} service_p50_ms={:.3} service_p99_ms={:.3} due_p50_ms={:.3} \
         due_p99_ms={:.3} due_p999_ms={:.3}",
        from_due.count(),
        service.count(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        ms(&service, 0.5),
        ms(&service, 0.99),
        ms(&from_due, 0.5),
        ms(&from_due, 0.99),
        ms(&from_due, 0.999),
    ))
}

/// At most this many bytes go in one write when appends fall behind, as in
/// the broker's group commit (`ROUND_BYTES_MAX`).
const COALESCE_BYTES_MAX: usize = 16 << 20;

/// One file's appends. Sleeps with the thread's own timer (hrtimer, tens of
/// microseconds late here), as `ringtail-bench`'s pacer does. Appends that
/// fell due while the write before them ran go out together in one write,
/// as a broker's group commit sends them: without it a stall's backlog
/// drains one append at a time, which no broker does.
fn append_paced(
    path: &PathBuf,
    block: usize,
    appends: u64,
    interval: Duration,
    start: Instant,
) -> std::io::Result<Measured> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)?;
    let most = (COALESCE_BYTES_MAX / block).max(1) as u64;
    // Zeros: ext4 writes them like any other bytes.
    let data = AlignedBuf::zeroed(block * most as usize).freeze();
    let due = |n: u64| start + interval * n as u32;
    let (mut service, mut from_due) = (Histogram::new(), Histogram::new());
    let mut next = 0;
    while next < appends {
        if let Some(wait) = due(next).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let issued = Instant::now();
        let end = due_by(next, issued, appends.min(next + most), due);
        let len = (end - next) as usize * block;
        file.write_all_at(&data[..len], next * block as u64)?;
        let done = Instant::now();
        service.record(done - issued);
        for n in next..end {
            from_due.record(done - due(n));
        }
        next = end;
    }
    Ok(Measured { service, from_due, bytes: appends * block as u64 })
}

/// The end of the appends from `next` (which is due) that are due by `now`,
/// at most `limit`: the ones one write sends.
fn due_by(next: u64, now: Instant, limit: u64, due: impl Fn(u64) -> Instant) -> u64 {
    let mut end = next + 1;
    while end < limit && due(end) <= now {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_takes_every_append_due_by_then_up_to_the_limit() {
        let start = Instant::now();
        let due = |n: u64| start + Duration::from_millis(n);
        let at = |ms: f64| start + Duration::from_secs_f64(ms / 1000.0);
        // On time: the due append alone.
        assert_eq!(due_by(0, at(0.0), 100, due), 1);
        assert_eq!(due_by(5, at(5.5), 100, due), 6);
        // Late by 3.5 intervals: the ones due at 5, 6, 7 and 8 ms.
        assert_eq!(due_by(5, at(8.5), 100, due), 9);
        // Bounded by the limit (the last append, or the most per write).
        assert_eq!(due_by(5, at(50.0), 7, due), 7);
        assert_eq!(due_by(5, at(50.0), 6, due), 6);
    }
}
