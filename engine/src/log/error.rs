//! Typed errors, one per kind of operation.

use super::batch::BatchError;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Why the log refuses writes until it is reopened (and so recovered).
#[derive(Debug, Clone, Error)]
#[error("log poisoned: {0}")]
pub struct Poisoned(pub Arc<str>);

#[derive(Debug, Clone, Error)]
pub enum AppendError {
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    BatchTooLarge { size: u64, max: u64 },
    #[error("empty append")]
    Empty,
    /// A produced batch whose records are not what its header says, or
    /// that a producer may not write (see `validator`).
    #[error("invalid records in the batch at offset {base_offset}: {reason}")]
    InvalidRecords { base_offset: i64, reason: String },
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    #[error(transparent)]
    Poisoned(#[from] Poisoned),
    #[error("storage error: {0}")]
    Io(Arc<io::Error>),
    #[error("the log was closed")]
    Closed,
    #[error("a replicated batch at offset {found} does not continue the log at {expected}")]
    NotContiguous { expected: i64, found: i64 },
    #[error("a replicated batch of leader epoch {epoch} after epoch {latest}")]
    EpochRegression { epoch: i32, latest: i32 },
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: u64, log_start_offset: u64, log_end_offset: u64 },
    #[error("corrupt batch in {segment} at byte {position}: {error}")]
    Corrupt { segment: PathBuf, position: u64, error: BatchError },
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// Errors of maintenance operations: roll, truncate, retention, flush, close.
#[derive(Debug, Clone, Error)]
pub enum LogError {
    #[error(transparent)]
    Poisoned(#[from] Poisoned),
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: u64, log_start_offset: u64, log_end_offset: u64 },
    #[error("storage error: {0}")]
    Io(Arc<io::Error>),
}

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("data directory {0} is in use by another process (lock file {0}/.lock is held)")]
    Locked(PathBuf),
    #[error("invalid log config: {0}")]
    Config(String),
    #[error("storage error opening {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// Acknowledged data is damaged in a way recovery must not repair by
    /// cutting it: the log stays closed until an operator (or, with
    /// replication, another replica) restores it.
    #[error("refusing to open {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl From<io::Error> for AppendError {
    fn from(e: io::Error) -> Self {
        AppendError::Io(Arc::new(e))
    }
}

impl From<io::Error> for LogError {
    fn from(e: io::Error) -> Self {
        LogError::Io(Arc::new(e))
    }
}

impl From<LogError> for AppendError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Poisoned(p) => AppendError::Poisoned(p),
            LogError::Io(e) => AppendError::Io(e),
            other => AppendError::Io(Arc::new(io::Error::other(other.to_string()))),
        }
    }
}
