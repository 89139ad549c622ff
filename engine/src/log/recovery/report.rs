//! What opening a log found and did (`RecoveryReport`), logged and
//! returned to the caller; `ringtail check` prints it.

use std::fmt;
use std::path::PathBuf;

/// Where and why recovery cut the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub segment_base_offset: u64,
    pub position: u64,
    pub bytes_cut: u64,
    pub reason: String,
}

/// What opening a log found and did; logged and returned to the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub dir: PathBuf,
    pub segments_found: usize,
    pub segments_scanned: usize,
    pub batches_scanned: u64,
    pub bytes_scanned: u64,
    pub cut: Option<Cut>,
    /// Whole segments deleted because they came after a cut.
    pub segments_deleted: Vec<u64>,
    pub bytes_deleted: u64,
    /// Sealed segments wholly below the log start, left by a retention pass
    /// that failed half-way: removed as that pass would have, not a repair.
    pub below_start_removed: Vec<u64>,
    /// Zeros past the last batch of a direct-I/O segment (a crash before
    /// the close that trims them): not data, not a cut.
    pub padding_bytes_trimmed: u64,
    pub indexes_rebuilt: Vec<u64>,
    pub stray_files_removed: Vec<String>,
    /// Junk after the last batch of a sealed segment whose offsets are all
    /// there: trimmed, nothing lost.
    pub junk_trimmed: Vec<Cut>,
    /// Corruption found in data below the recovery point, left in place.
    pub corruption_kept: Vec<Cut>,
    pub recovery_point: u64,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
}

impl RecoveryReport {
    /// Bytes removed from the end of the log: cut invalid bytes plus
    /// trimmed padding.
    pub fn bytes_trimmed(&self) -> u64 {
        self.cut.as_ref().map_or(0, |c| c.bytes_cut) + self.padding_bytes_trimmed
    }

    /// Did recovery find anything other than a clean log?
    pub fn is_clean(&self) -> bool {
        self.cut.is_none()
            && self.segments_deleted.is_empty()
            && self.corruption_kept.is_empty()
            && self.junk_trimmed.is_empty()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} segments, {} scanned ({} batches, {} bytes), offsets [{}, {}), recovery point {}",
            self.dir.display(),
            self.segments_found,
            self.segments_scanned,
            self.batches_scanned,
            self.bytes_scanned,
            self.log_start_offset,
            self.log_end_offset,
            self.recovery_point,
        )?;
        if let Some(cut) = &self.cut {
            write!(
                f,
                "; cut {} bytes at {}:{} ({})",
                cut.bytes_cut, cut.segment_base_offset, cut.position, cut.reason
            )?;
        }
        if !self.segments_deleted.is_empty() {
            write!(
                f,
                "; deleted {} later segments ({} bytes)",
                self.segments_deleted.len(),
                self.bytes_deleted
            )?;
        }
        if !self.below_start_removed.is_empty() {
            write!(f, "; removed {} segments below the log start", self.below_start_removed.len())?;
        }
        if self.padding_bytes_trimmed > 0 {
            write!(f, "; trimmed {} bytes of direct-I/O padding", self.padding_bytes_trimmed)?;
        }
        if !self.indexes_rebuilt.is_empty() {
            write!(f, "; rebuilt {} indexes", self.indexes_rebuilt.len())?;
        }
        for junk in &self.junk_trimmed {
            write!(
                f,
                "; trimmed {} junk bytes after {}:{} ({})",
                junk.bytes_cut, junk.segment_base_offset, junk.position, junk.reason
            )?;
        }
        for kept in &self.corruption_kept {
            write!(
                f,
                "; CORRUPT below recovery point at {}:{} ({}), kept",
                kept.segment_base_offset, kept.position, kept.reason
            )?;
        }
        Ok(())
    }
}
