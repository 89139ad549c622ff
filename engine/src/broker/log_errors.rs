//! The Kafka error code each of the log's failures answers with. Here, not
//! in the leaf `error` module, because the mapping needs the log's types
//! and `error` must use no other engine module.

use crate::error::{BrokerError, ErrorCode};
use crate::log::{AppendError, LogError, ReadError};

impl From<AppendError> for BrokerError {
    fn from(e: AppendError) -> BrokerError {
        use AppendError as E;
        let code = match &e {
            E::InvalidBatch(_) => ErrorCode::CorruptMessage,
            E::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            E::Empty | E::InvalidRecords { .. } => ErrorCode::InvalidRecord,
            E::InvalidTimestamp(_) => ErrorCode::InvalidTimestamp,
            E::Poisoned(_) | E::Io(_) | E::Closed => ErrorCode::KafkaStorageError,
            // A follower's own fetch went stale (another append, a leader
            // change): it fetches again from its log end.
            E::NotContiguous { .. } | E::EpochRegression { .. } => ErrorCode::OffsetOutOfRange,
        };
        BrokerError::new(code, e.to_string())
    }
}

impl From<ReadError> for BrokerError {
    fn from(e: ReadError) -> BrokerError {
        use ReadError as E;
        let code = match &e {
            E::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            E::Corrupt { .. } | E::Io(_) => ErrorCode::KafkaStorageError,
        };
        BrokerError::new(code, e.to_string())
    }
}

impl From<LogError> for BrokerError {
    fn from(e: LogError) -> BrokerError {
        use LogError as E;
        let code = match &e {
            E::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            E::Poisoned(_) | E::Io(_) => ErrorCode::KafkaStorageError,
        };
        BrokerError::new(code, e.to_string())
    }
}
