//! Opening a log: find its segments, re-validate everything from the recovery
//! point on, cut the log at the first invalid byte, rebuild indexes.
//!
//! Crash analysis (what a crash can leave, and what recovery does):
//! - a torn or partly written last batch (any byte boundary): the scan stops
//!   at its start, the file is cut there, the cut is fsynced;
//! - zeros or garbage past the last batch (a file extended but not written):
//!   cut the same way;
//! - a segment created by a roll whose directory entry or data never reached
//!   the disk: it is absent or empty; an empty segment is a valid log end;
//! - segments after a cut: they follow invalid bytes, so they cannot be part
//!   of the valid prefix and are deleted;
//! - index files stale, torn or missing: indexes are a cache, rebuilt by scan;
//! - temporary and deleted-marker files of an interrupted operation: removed.
//!
//! Segments wholly below the recovery point were fsynced before the point was
//! recorded. They are not re-scanned (that would read the whole log at every
//! start); a corrupt batch there is caught by the CRC check of every read. If
//! their tail turns out corrupt while loading, they are kept as they are and
//! the corruption is reported: cutting would destroy acknowledged data that
//! other replicas or an operator may still repair.

use super::cache::LogCache;
use super::config::LogConfig;
use super::error::OpenError;
use super::index::SegmentIndex;
use super::open_files::{OpenFiles, SegmentFile};
use super::partition_log::{Log, LogState};
use super::segment::{self, OffsetCheck, ScanStop, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::clock::Clock;
use crate::io::{Disk, DiskFile, OpenMode};
use std::collections::VecDeque;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod report;
pub use report::{Cut, RecoveryReport};

/// Suffixes of files left by an interrupted operation.
const STRAY_SUFFIXES: [&str; 4] = [".tmp", ".deleted", ".swap", ".cleaned"];

/// Offsets remembered for a log across restarts (the checkpoint files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCheckpoint {
    pub recovery_point: u64,
    pub log_start_offset: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io { path: path.to_path_buf(), source }
}

impl<D: Disk> Log<D> {
    /// Opens (or creates) the log in `dir` and recovers it.
    pub async fn open(
        disk: Arc<D>,
        dir: PathBuf,
        config: LogConfig,
        clock: Arc<dyn Clock>,
        checkpoint: LogCheckpoint,
        cache: &Arc<LogCache>,
    ) -> Result<(Log<D>, RecoveryReport), OpenError> {
        config.validate().map_err(OpenError::Config)?;
        let mut report = RecoveryReport {
            dir: dir.clone(),
            recovery_point: checkpoint.recovery_point,
            ..Default::default()
        };
        let names = match disk.list(&dir).await {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                disk.create_dir_all(&dir).await.map_err(io_err(&dir))?;
                if let Some(parent) = dir.parent() {
                    disk.sync_dir(parent).await.map_err(io_err(parent))?;
                }
                Vec::new()
            }
            Err(e) => return Err(io_err(&dir)(e)),
        };
        // A cleaner swap committed before a crash is finished first: until
        // then the directory may hold both the old and the cleaned segments.
        let names = if names.iter().any(|n| n.ends_with(super::cleaner::swap::SWAP_SUFFIX)) {
            super::cleaner::swap::complete_all(disk.as_ref(), &dir, &names).await.map_err(io_err(&dir))?;
            disk.list(&dir).await.map_err(io_err(&dir))?
        } else {
            names
        };
        let bases = remove_strays(disk.as_ref(), &dir, &names, &mut report).await?;
        report.segments_found = bases.len();
        let mut segments = Vec::new();
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            if report.cut.is_some() {
                delete_segment(disk.as_ref(), &dir, base, &mut report).await?;
                continue;
            }
            let previous_end = segments.last().map_or(base, |s: &Segment<D::File>| s.next_offset);
            if previous_end > base {
                // Two segments claim the same offsets. Above the recovery
                // point the later one is unsynced debris of a roll; below it
                // both were durable and there is no telling which is right.
                let path = Segment::<D::File>::log_path(&dir, base);
                if base < checkpoint.recovery_point {
                    let reason =
                        format!("segment {base} overlaps the one before it, which ends at {previous_end}");
                    return Err(OpenError::Corrupt { path, reason });
                }
                let reason =
                    format!("segment {base} overlaps the one before it, which ends at {previous_end}");
                report.cut = Some(Cut { segment_base_offset: base, position: 0, bytes_cut: 0, reason });
                delete_segment(disk.as_ref(), &dir, base, &mut report).await?;
                continue;
            }
            let (mut seg, trusted) = load_segment(
                disk.as_ref(),
                &dir,
                &config,
                base,
                next_base,
                checkpoint,
                cache.open_files(),
                &mut report,
            )
            .await?;
            if let Some(next) = next_base.filter(|next| trusted && seg.next_offset < *next) {
                // Trusted below the recovery point (not scanned), as a
                // scan that found damage there keeps it: its offsets run to
                // the next segment and reads of the missing ones fail. The
                // hole rule below is for scanned segments; applying it here
                // would refuse, on the next open, a log a scan had kept.
                let reason = format!(
                    "segment {base} ends at offset {}, before the next segment's {next}",
                    seg.next_offset
                );
                tracing::error!(dir = %dir.display(), base, %reason, "data missing below the recovery point; keeping the segment, reads of it will fail");
                report.corruption_kept.push(Cut {
                    segment_base_offset: base,
                    position: seg.size_bytes,
                    bytes_cut: 0,
                    reason,
                });
                seg.next_offset = next;
            }
            let hole = next_base.filter(|next| {
                report.cut.is_none() && seg.next_offset < *next && *next > checkpoint.log_start_offset
            });
            if let Some(next) = hole {
                // A sealed segment runs up to the next one's base offset;
                // ending short, it lost batches (a write that landed
                // elsewhere, say), and serving the next segment would skip
                // offsets silently. Below the recovery point they were
                // durable: refuse. Above it: cut here, like a torn tail.
                let path = Segment::<D::File>::log_path(&dir, base);
                let reason = format!(
                    "segment {base} ends at offset {}, but the next segment starts at {next}",
                    seg.next_offset
                );
                if seg.next_offset < checkpoint.recovery_point {
                    return Err(OpenError::Corrupt { path, reason });
                }
                tracing::warn!(dir = %dir.display(), base, %reason, "cutting the log at a hole between segments");
                report.cut =
                    Some(Cut { segment_base_offset: base, position: seg.size_bytes, bytes_cut: 0, reason });
            }
            if next_base.is_some() && seg.next_offset <= checkpoint.log_start_offset {
                // Wholly below the log start: retention's to delete, perhaps
                // left by a pass that failed half-way. Kept, it could sit in
                // front of the gap newer deletions leave.
                let path = Segment::<D::File>::log_path(&dir, base);
                segment::remove_files(disk.as_ref(), &dir, base).await.map_err(io_err(&path))?;
                report.below_start_removed.push(base);
                continue;
            }
            segments.push(seg);
        }
        // Always: a segment file whose creation never became durable (a roll
        // whose directory fsync failed, then a restart or reopen) would
        // vanish in the next crash with everything appended to it since.
        disk.sync_dir(&dir).await.map_err(io_err(&dir))?;
        if segments.is_empty() {
            let base = checkpoint.log_start_offset;
            let path = Segment::<D::File>::log_path(&dir, base);
            let file = disk.open_direct(&path, OpenMode::Create).await.map_err(io_err(&path))?;
            disk.sync_dir(&dir).await.map_err(io_err(&dir))?;
            segments.push(Segment::empty(&dir, base, file, &config, cache.open_files()));
        }
        // Sealed segments' files are held within the broker's bound from
        // now on, and opened again when read.
        let sealed = segments.len() - 1;
        for seg in &mut segments[..sealed] {
            seg.file.seal();
        }
        let log_end_offset = segments.last().map_or(0, |s| s.next_offset);
        let first_base = segments[0].base_offset;
        let log_start_offset = checkpoint.log_start_offset.max(first_base).min(log_end_offset);
        if checkpoint.recovery_point > log_end_offset {
            tracing::error!(
                dir = %dir.display(),
                recovery_point = checkpoint.recovery_point,
                log_end_offset,
                "log ends below its recovery point: data that was fsynced is missing"
            );
        }
        report.log_start_offset = log_start_offset;
        report.log_end_offset = log_end_offset;
        if report.is_clean() {
            tracing::info!(%report, "log recovered");
        } else {
            tracing::warn!(%report, "log recovered with repairs");
        }
        let epochs = super::epochs::load(disk.as_ref(), &dir, log_end_offset).await.map_err(io_err(&dir))?;
        let now_ms = clock.now_ms();
        let state = LogState {
            segments,
            log_start_offset,
            // Every scanned segment was fsynced after its scan.
            flushed_offset: log_end_offset,
            last_flush_ms: now_ms,
            queue: VecDeque::new(),
            poisoned: None,
            closed: false,
        };
        state.check_invariants();
        let log = Log {
            disk,
            dir,
            config: std::sync::RwLock::new(config),
            clock,
            state: Mutex::new(state),
            writer: tokio::sync::Mutex::new(()),
            syncer: tokio::sync::Mutex::new(()),
            cache: cache.register(),
            write_buf: Mutex::new(None),
            epochs: Mutex::new(epochs),
            open_files: cache.open_files().clone(),
            cleaner: tokio::sync::Mutex::new(0),
            reading_ahead: Mutex::new(None),
        };
        Ok((log, report))
    }
}

/// Removes leftovers of interrupted operations and index files without a
/// log file; returns the base offsets of the segments, ascending.
async fn remove_strays<D: Disk>(
    disk: &D,
    dir: &Path,
    names: &[String],
    report: &mut RecoveryReport,
) -> Result<Vec<u64>, OpenError> {
    let bases: Vec<u64> = names.iter().filter_map(|n| segment::parse_file_name(n, LOG_SUFFIX)).collect();
    for name in names {
        let orphan_index = [INDEX_SUFFIX, TIME_INDEX_SUFFIX]
            .iter()
            .any(|s| segment::parse_file_name(name, s).is_some_and(|b| !bases.contains(&b)));
        if orphan_index || STRAY_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            let path = dir.join(name);
            disk.remove(&path).await.map_err(io_err(&path))?;
            report.stray_files_removed.push(name.clone());
        }
    }
    Ok(bases)
}

async fn delete_segment<D: Disk>(
    disk: &D,
    dir: &Path,
    base: u64,
    report: &mut RecoveryReport,
) -> Result<(), OpenError> {
    let path = Segment::<D::File>::log_path(dir, base);
    if let Ok(file) = disk.open(&path, OpenMode::Existing).await {
        report.bytes_deleted += file.len().await.unwrap_or(0);
    }
    segment::remove_files(disk, dir, base).await.map_err(io_err(&path))?;
    report.segments_deleted.push(base);
    Ok(())
}

/// Loads one segment: trusted from its index files when it lies below the
/// recovery point and they agree with it (`true`), else scanned batch by
/// batch (`false`).
#[allow(clippy::too_many_arguments)]
async fn load_segment<D: Disk>(
    disk: &D,
    dir: &Path,
    config: &LogConfig,
    base: u64,
    next_base: Option<u64>,
    checkpoint: LogCheckpoint,
    open_files: &Arc<OpenFiles>,
    report: &mut RecoveryReport,
) -> Result<(Segment<D::File>, bool), OpenError> {
    let path = Segment::<D::File>::log_path(dir, base);
    // Direct I/O where possible, for every segment: the last one takes the
    // appends, and the rest are read without passing through (and filling)
    // the page cache, as the segments written since this start are.
    let file = disk.open_direct(&path, OpenMode::Existing).await.map_err(io_err(&path))?;
    let file_bytes = file.len().await.map_err(io_err(&path))?;
    let below_recovery_point = next_base.is_some_and(|n| n <= checkpoint.recovery_point);
    if below_recovery_point {
        if let Some((size_bytes, next_offset, index)) =
            load_sealed(disk, dir, config, &file, base, next_base, file_bytes).await?
        {
            let trusted = Segment {
                base_offset: base,
                file: SegmentFile::active(Arc::new(file), path, open_files),
                size_bytes,
                next_offset,
                index,
                first_batch_ms: None,
                tail: Vec::new(),
            };
            return Ok((trusted, true));
        }
        report.indexes_rebuilt.push(base);
    }
    // Re-validate every batch and rebuild the indexes.
    let mut index = SegmentIndex::new(base, config.index_interval_bytes, config.segment_index_bytes);
    let mut next_offset = base;
    let mut first_ts = None;
    let mut batches = 0u64;
    let (valid, stop) = segment::scan(&file, 0, file_bytes, OffsetCheck::Exactly(base), |b| {
        index.observe(&b.header, b.position);
        next_offset = b.header.next_offset();
        first_ts.get_or_insert(b.header.max_timestamp);
        batches += 1;
        ControlFlow::Continue(())
    })
    .await
    .map_err(io_err(&path))?;
    // CANARY canary-recover-past-bad-crc (planted bug, sim/canaries): a batch
    // whose CRC fails is taken as valid and the scan goes on after it.
    let (valid, stop) = {
        let (mut valid, mut stop) = (valid, stop);
        let canary = crate::canary::Canary::RecoverPastBadCrc.on();
        while let (true, Some(ScanStop::Invalid(super::batch::BatchError::BadCrc { .. }))) = (canary, &stop) {
            let head = file.read_at(valid, super::batch::BATCH_HEADER_BYTES).await.map_err(io_err(&path))?;
            let Ok(h) = super::batch::BatchHeader::parse(&head) else { break };
            index.observe(&h, valid);
            next_offset = h.next_offset();
            let from = valid + h.size_bytes() as u64;
            (valid, stop) = segment::scan(&file, from, file_bytes, OffsetCheck::Exactly(next_offset), |b| {
                index.observe(&b.header, b.position);
                next_offset = b.header.next_offset();
                ControlFlow::Continue(())
            })
            .await
            .map_err(io_err(&path))?;
        }
        (valid, stop)
    };
    report.segments_scanned += 1;
    report.batches_scanned += batches;
    report.bytes_scanned += valid;
    let mut size_bytes = valid;
    // Where the scan stopped, offsets below the recovery point were fsynced:
    // invalid bytes there are damage to acknowledged data, not a torn tail.
    let damaged_durable_data = next_offset < checkpoint.recovery_point;
    match stop {
        Some(stop) if next_base == Some(next_offset) => {
            // Every offset of this sealed segment is there and the next
            // segment carries on: the bytes after its last batch are junk
            // (not part of any batch), trimmed without cutting the log.
            let trimmed = Cut {
                segment_base_offset: base,
                position: valid,
                bytes_cut: file_bytes - valid,
                reason: stop.to_string(),
            };
            tracing::warn!(dir = %dir.display(), base, position = valid, reason = %trimmed.reason, "trimming junk after the last batch of a sealed segment");
            file.set_len(valid).await.map_err(io_err(&path))?;
            report.junk_trimmed.push(trimmed);
        }
        Some(stop) if damaged_durable_data && next_base.is_none() => {
            // In the segment appends go to, the log cannot go on past bytes
            // it cannot parse, nor drop them: refuse to open.
            let reason = format!(
                "corrupt batch at byte {valid} (offset {next_offset}) of active segment {base}, below the \
                 recovery point {}: {stop}",
                checkpoint.recovery_point
            );
            return Err(OpenError::Corrupt { path, reason });
        }
        Some(stop) if damaged_durable_data => {
            // A sealed segment: keep it whole and let reads report the damage.
            keep_corruption(dir, base, valid, &stop, report);
            size_bytes = file_bytes;
            // Its offsets end where the next segment starts; if its valid
            // batches already reach past that, the overlap check refuses.
            next_offset = next_base.map_or(next_offset, |n| n.max(next_offset));
        }
        Some(_) if is_padding(&file, valid, file_bytes).await.map_err(io_err(&path))? => {
            // Zeros a direct-I/O write padded its last block with.
            file.set_len(valid).await.map_err(io_err(&path))?;
            report.padding_bytes_trimmed += file_bytes - valid;
        }
        Some(stop) => {
            let bytes_cut = file_bytes - valid;
            let cut = Cut { segment_base_offset: base, position: valid, bytes_cut, reason: stop.to_string() };
            tracing::warn!(dir = %dir.display(), base, position = valid, bytes = bytes_cut, reason = %cut.reason, "cutting log at first invalid batch");
            // CANARY canary-skip-torn-tail-cut (planted bug, sim/canaries): the
            // torn tail stays in the file.
            if !crate::canary::Canary::SkipTornTailCut.on() {
                file.set_len(valid).await.map_err(io_err(&path))?;
            }
            report.cut = Some(cut);
        }
        None => {}
    }
    // Make what was scanned durable: it may have been in the page cache only
    // (a process crash keeps it), and it now counts as flushed.
    file.sync_data().await.map_err(io_err(&path))?;
    let tail = segment::load_tail(&file, size_bytes).await.map_err(io_err(&path))?;
    let scanned = Segment {
        base_offset: base,
        file: SegmentFile::active(Arc::new(file), path, open_files),
        size_bytes,
        next_offset,
        index,
        first_batch_ms: first_ts,
        tail,
    };
    Ok((scanned, false))
}

/// Whether the bytes from `valid` to the end are the zero padding of a
/// direct-I/O block: shorter than a block, all zeros.
async fn is_padding<F: DiskFile>(file: &F, valid: u64, file_bytes: u64) -> io::Result<bool> {
    let align = file.write_alignment() as u64;
    if align == 1 || file_bytes - valid >= align {
        return Ok(false);
    }
    let rest = file.read_at(valid, (file_bytes - valid) as usize).await?;
    Ok(rest.iter().all(|&b| b == 0))
}

fn keep_corruption(dir: &Path, base: u64, position: u64, stop: &ScanStop, report: &mut RecoveryReport) {
    let kept = Cut { segment_base_offset: base, position, bytes_cut: 0, reason: stop.to_string() };
    tracing::error!(dir = %dir.display(), base, position, reason = %kept.reason, "corrupt data below the recovery point; keeping it, reads of it will fail");
    report.corruption_kept.push(kept);
}

/// Loads a segment below the recovery point from its index files and a scan
/// of its tail only: `(size in bytes, next offset, index)`. `None` if the
/// index files are missing or inconsistent.
#[allow(clippy::too_many_arguments)]
async fn load_sealed<D: Disk>(
    disk: &D,
    dir: &Path,
    config: &LogConfig,
    file: &D::File,
    base: u64,
    next_base: Option<u64>,
    file_bytes: u64,
) -> Result<Option<(u64, u64, SegmentIndex)>, OpenError> {
    let mut contents = Vec::new();
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let path = dir.join(segment::file_name(base, suffix));
        let Ok(f) = disk.open(&path, OpenMode::Existing).await else { return Ok(None) };
        let len = f.len().await.map_err(io_err(&path))?;
        if len > config.segment_index_bytes.max(1 << 20) * 2 {
            return Ok(None);
        }
        contents.push(f.read_at(0, len as usize).await.map_err(io_err(&path))?);
    }
    let Some(mut index) = SegmentIndex::decode(
        base,
        config.index_interval_bytes,
        config.segment_index_bytes,
        &contents[0],
        &contents[1],
        file_bytes,
    ) else {
        return Ok(None);
    };
    let tail_start = index.lookup(u64::MAX);
    let tail_offset = index.offsets.last().map_or(base, |e| base + u64::from(e.relative_offset));
    let mut next_offset = tail_offset;
    let (valid, stop) = segment::scan(file, tail_start, file_bytes, OffsetCheck::Exactly(tail_offset), |b| {
        index.max_timestamp = index.max_timestamp.max(b.header.max_timestamp);
        next_offset = b.header.next_offset();
        ControlFlow::Continue(())
    })
    .await
    .map_err(io_err(&dir.join(segment::file_name(base, LOG_SUFFIX))))?;
    if stop.is_some() && tail_start > 0 && valid == tail_start {
        return Ok(None); // the index does not point at a batch start: rebuild it
    }
    if next_base.is_some_and(|n| next_offset > n) {
        return Ok(None); // it claims offsets of the next segment: rebuild it
    }
    if stop.is_some() {
        // Damage or junk: the full scan decides what it is.
        return Ok(None);
    }
    let size_bytes = valid;
    Ok(Some((size_bytes, next_offset, index)))
}
