//! Kafka's error codes, as the broker's typed outcome of a request. They are
//! part of the protocol's meaning (clients act on them), so the engine
//! speaks them; the server only puts them on the wire.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ErrorCode {
    None = 0,
    OffsetOutOfRange = 1,
    CorruptMessage = 2,
    UnknownTopicOrPartition = 3,
    NotLeaderOrFollower = 6,
    RequestTimedOut = 7,
    MessageTooLarge = 10,
    InvalidTopicException = 17,
    RecordListTooLarge = 18,
    NotEnoughReplicas = 19,
    InvalidRequiredAcks = 21,
    UnsupportedVersion = 35,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    InvalidConfig = 40,
    InvalidRequest = 42,
    OutOfOrderSequenceNumber = 45,
    DuplicateSequenceNumber = 46,
    InvalidProducerEpoch = 47,
    KafkaStorageError = 56,
    UnknownProducerId = 59,
    InvalidTimestamp = 32,
    UnknownServerError = -1,
    InvalidRecord = 87,
    // Consumer groups.
    CoordinatorLoadInProgress = 14,
    CoordinatorNotAvailable = 15,
    NotCoordinator = 16,
    IllegalGeneration = 22,
    InconsistentGroupProtocol = 23,
    InvalidGroupId = 24,
    UnknownMemberId = 25,
    InvalidSessionTimeout = 26,
    RebalanceInProgress = 27,
    OffsetMetadataTooLarge = 12,
    NonEmptyGroup = 68,
    GroupIdNotFound = 69,
    MemberIdRequired = 79,
    GroupMaxSizeReached = 81,
    FencedInstanceId = 82,
}

impl ErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn is_ok(self) -> bool {
        self == ErrorCode::None
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

/// A failed request: the code clients act on and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BrokerError {
    pub code: ErrorCode,
    pub message: String,
}

impl BrokerError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> BrokerError {
        BrokerError { code, message: message.into() }
    }
}

impl From<crate::log::AppendError> for BrokerError {
    fn from(e: crate::log::AppendError) -> BrokerError {
        use crate::log::AppendError as E;
        let code = match &e {
            E::InvalidBatch(_) => ErrorCode::CorruptMessage,
            E::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            E::Empty => ErrorCode::InvalidRecord,
            E::Poisoned(_) | E::Io(_) | E::Closed => ErrorCode::KafkaStorageError,
        };
        BrokerError::new(code, e.to_string())
    }
}

impl From<crate::log::ReadError> for BrokerError {
    fn from(e: crate::log::ReadError) -> BrokerError {
        use crate::log::ReadError as E;
        let code = match &e {
            E::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            E::Corrupt { .. } | E::Io(_) => ErrorCode::KafkaStorageError,
        };
        BrokerError::new(code, e.to_string())
    }
}

impl From<crate::log::LogError> for BrokerError {
    fn from(e: crate::log::LogError) -> BrokerError {
        use crate::log::LogError as E;
        let code = match &e {
            E::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            E::Poisoned(_) | E::Io(_) => ErrorCode::KafkaStorageError,
        };
        BrokerError::new(code, e.to_string())
    }
}
