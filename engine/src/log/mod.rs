//! The partition log.
//!
//! - `batch`: v2 record batch header, validation, CRC-32C.
//! - `records`: record-level encode/decode; decompression.
//! - `index`: sparse offset and time indexes of one segment.
//! - `segment`: one `.log` file and its indexes; scanning.
//! - `partition_log`: `Log`, its state and invariants, roll, flush, close.
//! - `append`: validation, the append queue and group commit.
//! - `validator`: the leader's checks and stamps on a producer's batches.
//! - `chunk`: one round's batches and the buffer they are written from.
//! - `read`: reads by offset; `by_time`: by timestamp (ListOffsets).
//! - `recovery`: opening a log, validating and cutting torn tails.
//! - `progress`: how far opening a data directory has got.
//! - `retention`: deleting old segments, delete-records-before.
//! - `cleaner`: compaction (`cleanup.policy=compact`), its atomic swap.
//! - `truncate`: `truncate_to`, for followers.
//! - `cache`: recently written bytes of every log, so most reads skip the disk.
//! - `open_files`: sealed segments' files, opened on demand, kept open
//!   within a broker-wide bound.
//! - `checkpoint`: Kafka's offset checkpoint files.
//! - `epochs`: the leader-epoch checkpoint: where each leader epoch starts.
//! - `manager`: a data directory: lock, checkpoints, one log per partition.

pub mod append;
pub mod batch;
mod by_time;
pub mod cache;
pub mod checkpoint;
mod chunk;
pub mod cleaner;
pub mod config;
pub mod epochs;
pub mod error;
pub mod index;
pub mod manager;
pub mod open_files;
pub mod partition_log;
pub mod progress;
pub mod read;
pub mod records;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod truncate;
mod validator;

pub use append::{AppendInfo, Produced, Validated};
pub use cache::{CacheHandle, CacheStats, LogCache};
pub use config::{FlushPolicy, LogConfig, TimestampType};
pub use error::{AppendError, LogError, OpenError, Poisoned, ReadError};
pub use manager::{LogManager, OfflineLog, TopicPartition};
pub use partition_log::Log;
pub use progress::{ProgressSnapshot, RecoveryProgress};
pub use read::ReadResult;
pub use recovery::RecoveryReport;
