//! Per-log configuration, with Kafka's topic config names and defaults.

use std::fmt;
use std::str::FromStr;

/// When appended data is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append completes only after an fsync that covers it. Appends
    /// that arrive while an fsync is in flight share the next one (group
    /// commit), so the cost is one fsync per round, not per batch.
    Always,
    /// Appends complete once written; the owner calls `Log::flush_if_due`
    /// and the log fsyncs at most every `ms` milliseconds.
    Interval { ms: u64 },
    /// Fsync only when a segment is sealed or the log is closed.
    Never,
}

impl FromStr for FlushPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FlushPolicy::Always),
            "never" => Ok(FlushPolicy::Never),
            _ => match s.strip_prefix("interval:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => Ok(FlushPolicy::Interval { ms }),
                _ => {
                    Err(format!("invalid flush policy {s:?}: expected always, never or interval:MS (MS > 0)"))
                }
            },
        }
    }
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushPolicy::Always => write!(f, "always"),
            FlushPolicy::Interval { ms } => write!(f, "interval:{ms}"),
            FlushPolicy::Never => write!(f, "never"),
        }
    }
}

/// `message.timestamp.type`: whose clock a record's timestamp is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's, checked against the broker's clock within
    /// `message.timestamp.before.max.ms` / `after.max.ms`.
    #[default]
    CreateTime,
    /// The leader's at append: every record of a batch reads as the
    /// batch's `max_timestamp`, which the leader stamps.
    LogAppendTime,
}

impl FromStr for TimestampType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "CreateTime" => Ok(TimestampType::CreateTime),
            "LogAppendTime" => Ok(TimestampType::LogAppendTime),
            _ => Err(format!("message.timestamp.type must be CreateTime or LogAppendTime, got {s:?}")),
        }
    }
}

impl fmt::Display for TimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        })
    }
}

/// `cleanup.policy`: what happens to old segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Deleted by `retention.ms` / `retention.bytes`.
    #[default]
    Delete,
    /// Compacted: the latest record of each key is kept (`cleaner`).
    Compact,
    /// Both: compacted, and deleted by retention.
    CompactDelete,
}

impl CleanupPolicy {
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

impl FromStr for CleanupPolicy {
    type Err = String;

    /// Kafka's list form: "delete", "compact", "compact,delete" (either
    /// order, spaces allowed).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
        parts.sort_unstable();
        parts.dedup();
        match parts[..] {
            ["delete"] => Ok(CleanupPolicy::Delete),
            ["compact"] => Ok(CleanupPolicy::Compact),
            ["compact", "delete"] => Ok(CleanupPolicy::CompactDelete),
            _ => Err(format!("cleanup.policy must be delete, compact or compact,delete, got {s:?}")),
        }
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        })
    }
}

/// Compaction's settings (Kafka's topic configs of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionConfig {
    /// `min.cleanable.dirty.ratio`, in millionths: a log is cleaned once
    /// its uncleaned bytes are at least this share of its cleanable bytes.
    pub min_cleanable_dirty_ratio_ppm: u32,
    /// `min.compaction.lag.ms`: records younger than this stay uncleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest uncleaned record is older
    /// than this is cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone (a null value) stays
    /// after it was cleaned once, so that consumers reading from the start
    /// see the delete.
    pub delete_retention_ms: i64,
}

impl Default for CompactionConfig {
    fn default() -> CompactionConfig {
        CompactionConfig {
            min_cleanable_dirty_ratio_ppm: 500_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// A ratio in 0..=1 written as a decimal ("0.5"), in millionths.
fn parse_ratio_ppm(value: &str) -> Result<u32, String> {
    match value.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok((r * 1e6).round() as u32),
        _ => Err(format!("min.cleanable.dirty.ratio must be a number in [0, 1], got {value:?}")),
    }
}

/// The ratio back in Kafka's decimal form.
pub fn format_ratio_ppm(ppm: u32) -> String {
    let text = format!("{:.6}", f64::from(ppm) / 1e6);
    let text = text.trim_end_matches('0');
    if text.ends_with('.') {
        format!("{text}0")
    } else {
        text.to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older.
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest record is older;
    /// `None` keeps them forever (Kafka's -1).
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete the oldest sealed segments while the log is
    /// larger; `None` for no limit (Kafka's -1).
    pub retention_bytes: Option<u64>,
    /// `index.interval.bytes`: bytes of batches between offset index entries.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: size bound of one offset index; full rolls.
    pub segment_index_bytes: u64,
    /// `max.message.bytes`: largest record batch (after compression) accepted.
    pub max_message_bytes: u64,
    pub flush: FlushPolicy,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past (by the
    /// broker's clock) a CreateTime record's timestamp may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future it may be.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    pub compaction: CompactionConfig,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            max_message_bytes: 1024 * 1024 + 12,
            flush: FlushPolicy::Always,
            timestamp_type: TimestampType::CreateTime,
            // Kafka 4.0's defaults (KIP-1030): any past, an hour ahead.
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 60 * 60 * 1000,
            cleanup_policy: CleanupPolicy::Delete,
            compaction: CompactionConfig::default(),
        }
    }
}

impl LogConfig {
    /// Checks the values for consistency; the message names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes < 64 {
            return Err(format!("segment.bytes must be at least 64, got {}", self.segment_bytes));
        }
        if self.segment_bytes > u32::MAX as u64 {
            // Index positions are u32, as in Kafka's index format.
            return Err(format!("segment.bytes must be at most {}, got {}", u32::MAX, self.segment_bytes));
        }
        if self.segment_ms <= 0 {
            return Err(format!("segment.ms must be positive, got {}", self.segment_ms));
        }
        if self.segment_index_bytes < 8 {
            return Err(format!("segment.index.bytes must be at least 8, got {}", self.segment_index_bytes));
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > super::batch::BATCH_SIZE_BYTES_MAX as u64 {
            return Err(format!(
                "max.message.bytes must be in 1..={}, got {}",
                super::batch::BATCH_SIZE_BYTES_MAX,
                self.max_message_bytes
            ));
        }
        for (key, value) in [
            ("message.timestamp.before.max.ms", self.timestamp_before_max_ms),
            ("message.timestamp.after.max.ms", self.timestamp_after_max_ms),
        ] {
            if value < 0 {
                return Err(format!("{key} must not be negative, got {value}"));
            }
        }
        let c = &self.compaction;
        for (key, value) in [
            ("min.compaction.lag.ms", c.min_compaction_lag_ms),
            ("delete.retention.ms", c.delete_retention_ms),
        ] {
            if value < 0 {
                return Err(format!("{key} must not be negative, got {value}"));
            }
        }
        if c.max_compaction_lag_ms <= 0 {
            return Err(format!("max.compaction.lag.ms must be positive, got {}", c.max_compaction_lag_ms));
        }
        if c.min_cleanable_dirty_ratio_ppm > 1_000_000 {
            return Err("min.cleanable.dirty.ratio must be in [0, 1]".into());
        }
        Ok(())
    }

    /// Sets one key by its Kafka name, as topic configs arrive.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let int = |v: &str| v.parse::<i64>().map_err(|_| format!("{key}: {v:?} is not an integer"));
        let optional = |v: i64| if v < 0 { None } else { Some(v) };
        match key {
            "segment.bytes" => self.segment_bytes = int(value)?.max(0) as u64,
            "segment.ms" => self.segment_ms = int(value)?,
            "retention.ms" => self.retention_ms = optional(int(value)?),
            "retention.bytes" => self.retention_bytes = optional(int(value)?).map(|v| v as u64),
            "index.interval.bytes" => self.index_interval_bytes = int(value)?.max(0) as u64,
            "segment.index.bytes" => self.segment_index_bytes = int(value)?.max(0) as u64,
            "max.message.bytes" => self.max_message_bytes = int(value)?.max(0) as u64,
            "flush" => self.flush = value.parse()?,
            "message.timestamp.type" => self.timestamp_type = value.parse()?,
            "message.timestamp.before.max.ms" => self.timestamp_before_max_ms = int(value)?,
            "message.timestamp.after.max.ms" => self.timestamp_after_max_ms = int(value)?,
            "cleanup.policy" => self.cleanup_policy = value.parse()?,
            "min.cleanable.dirty.ratio" => {
                self.compaction.min_cleanable_dirty_ratio_ppm = parse_ratio_ppm(value)?
            }
            "min.compaction.lag.ms" => self.compaction.min_compaction_lag_ms = int(value)?,
            "max.compaction.lag.ms" => self.compaction.max_compaction_lag_ms = int(value)?,
            "delete.retention.ms" => self.compaction.delete_retention_ms = int(value)?,
            _ => return Err(format!("unknown log config key {key:?}")),
        }
        self.validate()
    }
}
