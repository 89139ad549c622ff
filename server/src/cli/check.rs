//! `ringtail check --data-dir DIR [--json] [--repair]`: runs a stopped
//! broker's start-up recovery on its data directory and reports, per
//! partition log, what it found: the valid prefix, what would be cut or
//! deleted, damage kept below the recovery point, logs that would stay
//! offline, and how the indexes were loaded.
//!
//! Without `--repair` nothing is written: recovery runs on an
//! [`OverlayDisk`], the real files read-only with every change held in
//! memory, so the report is exactly what the next start would do. With
//! `--repair` the same recovery runs on the real disk and its changes are
//! made (and fsynced), as a start would make them.
//!
//! Both refuse a directory whose lock is held (a running broker). Logs are
//! recovered with the default topic config, as the broker's start-up does
//! (only the index density depends on it). The metadata journal
//! (`metadata.json` and its quorum log) is not checked.
//!
//! Exit code: 0 when every log is clean, 1 when damage was found (repaired
//! or not), 2 for bad usage or a directory that cannot be checked.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::{finish, CliError};
use crate::clock::SystemClock;
use ringtail_engine::io::overlay::OverlayDisk;
use ringtail_engine::io::{Disk, StdDisk};
use ringtail_engine::log::recovery::Cut;
use ringtail_engine::log::{LogCache, LogConfig, LogManager, OpenError, RecoveryProgress, RecoveryReport};

/// How often the progress line on a terminal is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CheckArgs {
    /// The data directory of a stopped broker.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Make the repairs (cut torn tails, delete what follows them, trim
    /// junk), as the broker's next start would; without it nothing is
    /// written.
    #[arg(long)]
    pub repair: bool,
    /// One JSON object per log, then a summary object, one per line.
    #[arg(long)]
    pub json: bool,
}

/// What became of one partition's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Clean,
    /// Recovery cuts, deletes or trims data, or keeps damage it may not cut.
    Damaged,
    /// Damaged acknowledged data where the log must not be cut: the broker
    /// keeps it offline.
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub segment: u64,
    pub position: u64,
    pub bytes: u64,
    pub reason: String,
}

impl From<&Cut> for Damage {
    fn from(c: &Cut) -> Damage {
        Damage {
            segment: c.segment_base_offset,
            position: c.position,
            bytes: c.bytes_cut,
            reason: c.reason.clone(),
        }
    }
}

/// One log's line of the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogCheck {
    pub partition: String,
    pub status: Status,
    /// Why the log is offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_reason: Option<String>,
    pub segments: usize,
    pub segments_scanned: usize,
    pub bytes_scanned: u64,
    /// The valid prefix: offsets `[log_start_offset, log_end_offset)`.
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    pub recovery_point: u64,
    /// Where the log is cut: the first invalid byte above the recovery point.
    pub cut: Option<Damage>,
    pub segments_deleted: Vec<u64>,
    pub bytes_deleted: u64,
    pub junk_trimmed: Vec<Damage>,
    /// Damage below the recovery point, left in place (reads of it fail).
    pub corruption_kept: Vec<Damage>,
    pub padding_bytes_trimmed: u64,
    pub below_start_removed: Vec<u64>,
    pub stray_files_removed: Vec<String>,
    /// Segments below the recovery point whose index files could not be
    /// trusted and were rebuilt by a scan.
    pub indexes_rebuilt: Vec<u64>,
}

impl LogCheck {
    fn recovered(partition: String, r: &RecoveryReport) -> LogCheck {
        LogCheck {
            partition,
            status: if r.is_clean() { Status::Clean } else { Status::Damaged },
            offline_reason: None,
            segments: r.segments_found,
            segments_scanned: r.segments_scanned,
            bytes_scanned: r.bytes_scanned,
            log_start_offset: r.log_start_offset,
            log_end_offset: r.log_end_offset,
            recovery_point: r.recovery_point,
            cut: r.cut.as_ref().map(Damage::from),
            segments_deleted: r.segments_deleted.clone(),
            bytes_deleted: r.bytes_deleted,
            junk_trimmed: r.junk_trimmed.iter().map(Damage::from).collect(),
            corruption_kept: r.corruption_kept.iter().map(Damage::from).collect(),
            padding_bytes_trimmed: r.padding_bytes_trimmed,
            below_start_removed: r.below_start_removed.clone(),
            stray_files_removed: r.stray_files_removed.clone(),
            indexes_rebuilt: r.indexes_rebuilt.clone(),
        }
    }

    fn offline(partition: String, reason: String) -> LogCheck {
        LogCheck { partition, status: Status::Offline, offline_reason: Some(reason), ..LogCheck::default() }
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub data_dir: PathBuf,
    pub repaired: bool,
    pub logs: usize,
    pub clean: usize,
    pub damaged: usize,
    pub offline: usize,
    pub bytes_scanned: u64,
}

pub fn run(args: CheckArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            return finish("check", Err(CliError::Usage(format!("cannot start the async runtime: {e}"))))
        }
    };
    let progress = Arc::new(RecoveryProgress::new());
    let shown = (io::stderr().is_terminal() && !args.json).then(|| show_progress(progress.clone()));
    let checked = runtime.block_on(check(&args.data_dir, args.repair, &progress));
    if let Some((stop, thread)) = shown {
        drop(stop);
        let _ = thread.join();
    }
    let checks = match checked {
        Ok(checks) => checks,
        Err(e) => return finish("check", Err(e)),
    };
    let summary = summarize(&args, &checks);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = write_report(&mut out, &checks, &summary, args.json).and_then(|()| out.flush());
    if let Err(e) = written {
        return finish("check", Err(CliError::Usage(format!("writing the report: {e}"))));
    }
    if summary.damaged + summary.offline == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Recovers every log in `data_dir` (on the real disk with `repair`, else
/// on an overlay of it) and reports each, in partition order.
pub async fn check(
    data_dir: &Path,
    repair: bool,
    progress: &RecoveryProgress,
) -> Result<Vec<LogCheck>, CliError> {
    match std::fs::metadata(data_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(CliError::Usage(format!("{} is not a directory", data_dir.display()))),
        Err(e) => return Err(CliError::Usage(format!("{}: {e}", data_dir.display()))),
    }
    if repair {
        recover(StdDisk::new(), data_dir, progress).await
    } else {
        recover(OverlayDisk::new(), data_dir, progress).await
    }
}

async fn recover<D: Disk>(
    disk: D,
    dir: &Path,
    progress: &RecoveryProgress,
) -> Result<Vec<LogCheck>, CliError> {
    let opened = LogManager::open_with_progress(
        Arc::new(disk),
        dir.to_path_buf(),
        Arc::new(SystemClock),
        LogCache::new(0),
        |_| LogConfig::default(),
        progress,
    )
    .await;
    let (manager, reports) = match opened {
        Ok(opened) => opened,
        Err(OpenError::Locked(dir)) => {
            return Err(CliError::Usage(format!(
                "{} is locked by a running broker: stop it first",
                dir.display()
            )))
        }
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    let mut checks = BTreeMap::new();
    for report in &reports {
        let name = report.dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        checks.insert(name.clone(), LogCheck::recovered(name, report));
    }
    for (tp, reason) in manager.offline_logs() {
        checks.insert(tp.dir_name(), LogCheck::offline(tp.dir_name(), reason));
    }
    Ok(checks.into_values().collect())
}

fn summarize(args: &CheckArgs, checks: &[LogCheck]) -> Summary {
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    Summary {
        data_dir: args.data_dir.clone(),
        repaired: args.repair,
        logs: checks.len(),
        clean: count(Status::Clean),
        damaged: count(Status::Damaged),
        offline: count(Status::Offline),
        bytes_scanned: checks.iter().map(|c| c.bytes_scanned).sum(),
    }
}

pub fn write_report(
    out: &mut impl Write,
    checks: &[LogCheck],
    summary: &Summary,
    json: bool,
) -> io::Result<()> {
    if json {
        for check in checks {
            serde_json::to_writer(&mut *out, check)?;
            writeln!(out)?;
        }
        serde_json::to_writer(&mut *out, &serde_json::json!({ "summary": summary }))?;
        return writeln!(out);
    }
    // What a check would do is said as such; a repair says what it did.
    let verb = |would: &'static str, did: &'static str| if summary.repaired { did } else { would };
    for c in checks {
        write!(out, "{}: ", c.partition)?;
        if let Some(reason) = &c.offline_reason {
            writeln!(out, "OFFLINE, damaged below its recovery point, left as it is: {reason}")?;
            continue;
        }
        write!(
            out,
            "{}; offsets [{}, {}), {} segments, recovery point {}, {} scanned ({} bytes)",
            if c.status == Status::Clean { "clean" } else { "DAMAGED" },
            c.log_start_offset,
            c.log_end_offset,
            c.segments,
            c.recovery_point,
            c.segments_scanned,
            c.bytes_scanned,
        )?;
        if let Some(cut) = &c.cut {
            write!(
                out,
                "; {} {} bytes at segment {} byte {} ({})",
                verb("would cut", "cut"),
                cut.bytes,
                cut.segment,
                cut.position,
                cut.reason
            )?;
        }
        if !c.segments_deleted.is_empty() {
            write!(
                out,
                "; {} {} later segments ({} bytes)",
                verb("would delete", "deleted"),
                c.segments_deleted.len(),
                c.bytes_deleted
            )?;
        }
        for junk in &c.junk_trimmed {
            let trim = verb("would trim", "trimmed");
            write!(
                out,
                "; {trim} {} junk bytes after segment {} byte {} ({})",
                junk.bytes, junk.segment, junk.position, junk.reason
            )?;
        }
        for kept in &c.corruption_kept {
            write!(
                out,
                "; CORRUPT below the recovery point at segment {} byte {} ({}), kept",
                kept.segment, kept.position, kept.reason
            )?;
        }
        if c.padding_bytes_trimmed > 0 {
            write!(
                out,
                "; {} {} bytes of direct-I/O padding",
                verb("would trim", "trimmed"),
                c.padding_bytes_trimmed
            )?;
        }
        if !c.below_start_removed.is_empty() {
            let remove = verb("would remove", "removed");
            write!(out, "; {remove} {} segments below the log start", c.below_start_removed.len())?;
        }
        if !c.stray_files_removed.is_empty() {
            let remove = verb("would remove", "removed");
            write!(out, "; {remove} leftover files {}", c.stray_files_removed.join(", "))?;
        }
        if !c.indexes_rebuilt.is_empty() {
            write!(out, "; {} indexes untrusted, rebuilt by scan", c.indexes_rebuilt.len())?;
        }
        writeln!(out)?;
    }
    let s = summary;
    write!(
        out,
        "{} logs in {}: {} clean, {} damaged, {} offline; {} bytes scanned",
        s.logs,
        s.data_dir.display(),
        s.clean,
        s.damaged,
        s.offline,
        s.bytes_scanned
    )?;
    if s.repaired {
        writeln!(out, "; repairs made")
    } else if s.damaged > 0 {
        writeln!(out, "; nothing changed (--repair makes the repairs)")
    } else {
        writeln!(out, "; nothing changed")
    }
}

/// Redraws a progress line on stderr until the returned sender is dropped.
fn show_progress(progress: Arc<RecoveryProgress>) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut stderr = io::stderr();
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PROGRESS_EVERY) {
            let p = progress.snapshot();
            let left = p
                .time_left(started.elapsed())
                .map_or(String::new(), |t| format!(", about {}s left", t.as_secs()));
            let _ = write!(
                stderr,
                "\r\x1b[Kchecking: {}/{} logs, {} of {} MiB{left}",
                p.logs_done,
                p.logs_total,
                p.bytes_done >> 20,
                p.bytes_total >> 20
            );
        }
        let _ = write!(stderr, "\r\x1b[K");
    });
    (stop, thread)
}
