//! One segment: a `.log` file of record batches starting at `base_offset`,
//! with its offset and time index beside it.

use super::batch::{BatchError, BatchHeader};
use super::config::LogConfig;
use super::index::SegmentIndex;
use super::open_files::{OpenFiles, SegmentFile};
use crate::io::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Bytes read at a time when scanning a segment.
pub const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// `00000000000000000042` + suffix, as Kafka names segment files.
pub fn file_name(base_offset: u64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// The base offset named by a segment file name with `suffix`, if any.
pub fn parse_file_name(name: &str, suffix: &str) -> Option<u64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub struct Segment<F> {
    pub base_offset: u64,
    pub file: SegmentFile<F>,
    /// Bytes of whole, written batches; reads never look past it.
    pub size_bytes: u64,
    /// Offset after the last batch; `base_offset` while empty.
    pub next_offset: u64,
    pub index: SegmentIndex,
    /// Clock time the first batch arrived (or its timestamp after a reopen),
    /// for `segment.ms`; `None` while empty.
    pub first_batch_ms: Option<i64>,
    /// For a direct-I/O file: the bytes of its last, partly filled block
    /// (from the aligned-down size to the size). The next write rewrites
    /// that block whole, since direct writes cover whole blocks.
    pub tail: Vec<u8>,
}

impl<F: DiskFile> Segment<F> {
    /// A new, empty, active segment starting at `base_offset` in `file`,
    /// in the log directory `dir`.
    pub fn empty(
        dir: &Path,
        base_offset: u64,
        file: F,
        config: &LogConfig,
        files: &Arc<OpenFiles>,
    ) -> Segment<F> {
        Segment {
            base_offset,
            file: SegmentFile::active(Arc::new(file), Self::log_path(dir, base_offset), files),
            size_bytes: 0,
            next_offset: base_offset,
            index: SegmentIndex::new(base_offset, config.index_interval_bytes, config.segment_index_bytes),
            first_batch_ms: None,
            tail: Vec::new(),
        }
    }

    pub fn log_path(dir: &Path, base_offset: u64) -> PathBuf {
        dir.join(file_name(base_offset, LOG_SUFFIX))
    }

    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    pub fn path(&self, dir: &Path) -> PathBuf {
        Self::log_path(dir, self.base_offset)
    }

    /// Base offset of the last batch, as far as the index knows: the segment
    /// base when the index has no better answer. Only used to place the time
    /// index's final entry, which may point at any batch holding the max.
    pub fn last_batch_offset(&self) -> u64 {
        let indexed = self.index.offsets.last().map(|e| self.base_offset + u64::from(e.relative_offset));
        let timed = self.index.times.last().map(|t| self.base_offset + u64::from(t.relative_offset));
        indexed.max(timed).unwrap_or(self.base_offset).max(self.base_offset)
    }
}

/// The bytes of the last partial write-alignment block of a file of
/// `size_bytes` (empty for buffered files and aligned sizes).
pub async fn load_tail<F: DiskFile>(file: &F, size_bytes: u64) -> io::Result<Vec<u8>> {
    let align = file.write_alignment() as u64;
    let start = size_bytes / align * align;
    if start == size_bytes {
        return Ok(Vec::new());
    }
    let tail = file.read_at(start, (size_bytes - start) as usize).await?;
    if tail.len() as u64 != size_bytes - start {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "segment shorter than its size"));
    }
    Ok(tail.to_vec())
}

/// Removes a segment's log and index files (missing ones are fine). The
/// caller syncs the directory.
pub async fn remove_files<D: Disk>(disk: &D, dir: &Path, base_offset: u64) -> io::Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        match disk.remove(&dir.join(file_name(base_offset, suffix))).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Both index files' contents for `segment`.
pub fn encode_indexes<F: DiskFile>(segment: &Segment<F>) -> (Vec<u8>, Vec<u8>) {
    (segment.index.encode_offsets(), segment.index.encode_times(segment.last_batch_offset()))
}

/// Writes a segment's index files (replacing what was there) and syncs them.
pub async fn write_index_files<D: Disk>(
    disk: &D,
    dir: &Path,
    base_offset: u64,
    offsets: Vec<u8>,
    times: Vec<u8>,
) -> io::Result<()> {
    for (suffix, bytes) in [(INDEX_SUFFIX, offsets), (TIME_INDEX_SUFFIX, times)] {
        let file = disk.open(&dir.join(file_name(base_offset, suffix)), OpenMode::Create).await?;
        let len = bytes.len() as u64;
        if len > 0 {
            file.write_at(0, Bytes::from(bytes)).await?;
        }
        file.set_len(len).await?;
        file.sync_data().await?;
    }
    Ok(())
}

/// A batch seen while scanning a segment.
#[derive(Clone, Copy, Debug)]
pub struct ScannedBatch {
    pub position: u64,
    pub header: BatchHeader,
}

/// What a scan requires of batch base offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetCheck {
    /// The first batch starts exactly here and each next batch starts where
    /// the one before ended: a segment's offsets are dense (every batch the
    /// log writes follows the one before), so any other offset is corruption.
    Exactly(u64),
    /// Only that offsets never go below this and increase.
    AtLeast(u64),
}

/// Why a scan stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// Bytes that do not form a valid batch (torn write, corruption, zeros).
    Invalid(BatchError),
    /// A batch whose base offset breaks the `OffsetCheck`.
    OffsetOrder { expected: u64, found: u64 },
}

impl ScanStop {
    /// The stop as a batch error, for callers that report it as corruption.
    pub fn into_error(self) -> BatchError {
        match self {
            ScanStop::Invalid(e) => e,
            ScanStop::OffsetOrder { .. } => BatchError::BadHeader("offsets out of order"),
        }
    }
}

impl std::fmt::Display for ScanStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanStop::Invalid(e) => write!(f, "{e}"),
            ScanStop::OffsetOrder { expected, found } => {
                write!(f, "batch base offset {found} where {expected} was expected")
            }
        }
    }
}

/// Reads the batches of `file` from `position` up to `end`, validating each
/// (length, magic, CRC-32C, base offsets per `check`), and calls
/// `visit` for each until it breaks. Returns the position after the last valid batch and, if
/// it stopped early, why. Never allocates more than one chunk plus the
/// largest valid batch size.
pub async fn scan<F: DiskFile>(
    file: &F,
    mut position: u64,
    end: u64,
    check: OffsetCheck,
    mut visit: impl FnMut(ScannedBatch) -> ControlFlow<()>,
) -> io::Result<(u64, Option<ScanStop>)> {
    let (exact, mut next_offset) = match check {
        OffsetCheck::Exactly(o) => (true, o),
        OffsetCheck::AtLeast(o) => (false, o),
    };
    let mut want = SCAN_CHUNK_BYTES;
    while position < end {
        let len = want.min((end - position) as usize);
        let buf = file.read_at(position, len).await?;
        let mut consumed = 0usize;
        want = SCAN_CHUNK_BYTES;
        for item in super::batch::BatchScanner::new(&buf) {
            let (at, header) = match item {
                Ok(found) => found,
                Err((at, BatchError::Incomplete { need, .. })) if position + (at + need) as u64 <= end => {
                    // The batch runs past this chunk but fits in the file:
                    // read again from its start, at least `need` bytes. The
                    // header bounds `need` by BATCH_SIZE_BYTES_MAX.
                    want = need.max(SCAN_CHUNK_BYTES);
                    break;
                }
                Err((_, e)) => return Ok((position + consumed as u64, Some(ScanStop::Invalid(e)))),
            };
            let found = header.base_offset as u64;
            if found < next_offset || (exact && found != next_offset) {
                let stop = ScanStop::OffsetOrder { expected: next_offset, found };
                return Ok((position + consumed as u64, Some(stop)));
            }
            next_offset = header.next_offset();
            consumed = at + header.size_bytes();
            if visit(ScannedBatch { position: position + at as u64, header }).is_break() {
                return Ok((position + consumed as u64, None));
            }
        }
        if buf.len() < len {
            // The file is shorter than the caller believed.
            let e = BatchError::Incomplete { have: buf.len(), need: len };
            return Ok((position + consumed as u64, Some(ScanStop::Invalid(e))));
        }
        position += consumed as u64;
    }
    debug_assert_eq!(position, end);
    Ok((position, None))
}
