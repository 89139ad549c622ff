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
            _ => return Err(format!("unknown log config key {key:?}")),
        }
        self.validate()
    }
}
