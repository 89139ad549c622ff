//! The report: the markdown table of all runs with the host and command
//! that produced it.

use crate::{Args, Outcome};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn shell_quote(arg: &str) -> String {
    let plain =
        !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

pub(super) fn render_command(cmd: &Command) -> String {
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

pub(super) fn render(
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
