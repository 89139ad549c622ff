//! The fio reference jobs: the same device measured by fio, in the same
//! invocation.

use crate::disk::{read_diskstats, settle, RemoveOnDrop};
use crate::report::render_command;
use crate::{Outcome, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Copy)]
pub(super) enum FioJob {
    /// Sequential 1 MiB O_DIRECT writes, libaio, queue depth 8.
    Direct,
    /// Sequential 1 MiB buffered writes, fdatasync after each.
    Fdatasync,
}

pub(super) fn fio_path() -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("fio")).find(|p| p.is_file())
}

pub(super) fn run_fio(
    base: &Path,
    device: &str,
    job: FioJob,
    size: u64,
    settle_secs: u64,
) -> Result<Outcome> {
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
