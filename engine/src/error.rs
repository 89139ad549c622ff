//! Kafka's error codes, as the broker's typed outcome of a request. They are
//! part of the protocol's meaning (clients act on them), so the engine
//! speaks them; the server only puts them on the wire.
//!
//! A leaf: every engine module may use it and it uses none of them, so
//! `group` and `broker` can share the codes without importing each other.
//! How the log's failures map to codes lives with the broker
//! (`broker::log_errors`), which is where they become answers.

use std::fmt;

/// Declares `ErrorCode` and `ErrorCode::ALL` from one list, so that a code
/// added to the enum is in `ALL` too: the test against Kafka's own table
/// (below) walks `ALL` and so cannot miss one.
macro_rules! error_codes {
    ($($name:ident = $code:literal,)*) => {
        /// Kafka's error codes, by the names and numbers of Kafka's table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i16)]
        pub enum ErrorCode {
            $($name = $code,)*
        }

        impl ErrorCode {
            /// Every code, in the order declared.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];
        }
    };
}

error_codes! {
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
    NotController = 41,
    InvalidRequest = 42,
    PolicyViolation = 44,
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
    GroupSubscribedToTopic = 86,
    MemberIdRequired = 79,
    GroupMaxSizeReached = 81,
    FencedInstanceId = 82,
    // The metadata quorum and replication.
    StaleBrokerEpoch = 77,
    LeaderNotAvailable = 5,
    NotEnoughReplicasAfterAppend = 20,
    FencedLeaderEpoch = 74,
    InvalidUpdateVersion = 95,
    IneligibleReplica = 107,
    // Leader elections (ElectLeaders).
    PreferredLeaderNotAvailable = 80,
    EligibleLeadersNotAvailable = 83,
    ElectionNotNeeded = 84,
    // SCRAM credentials (AlterUserScramCredentials, DescribeUserScramCredentials).
    UnsupportedSaslMechanism = 33,
    ResourceNotFound = 91,
    DuplicateResource = 92,
    UnacceptableCredential = 93,
    // Authorization (ACLs).
    TopicAuthorizationFailed = 29,
    GroupAuthorizationFailed = 30,
    ClusterAuthorizationFailed = 31,
}

impl ErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn is_ok(self) -> bool {
        self == ErrorCode::None
    }

    /// The code with this number, if it is one the engine knows.
    pub fn from_code(code: i16) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code)
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

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use kafka_protocol::ResponseError as K;

    /// The error of Kafka's table (as the kafka-protocol crate carries it)
    /// that each of our codes stands for; `None` for success. Exhaustive:
    /// a new code does not compile until it names its Kafka error here.
    fn kafkas(code: ErrorCode) -> Option<K> {
        use ErrorCode as E;
        match code {
            E::None => None,
            E::OffsetOutOfRange => Some(K::OffsetOutOfRange),
            E::CorruptMessage => Some(K::CorruptMessage),
            E::UnknownTopicOrPartition => Some(K::UnknownTopicOrPartition),
            E::NotLeaderOrFollower => Some(K::NotLeaderOrFollower),
            E::RequestTimedOut => Some(K::RequestTimedOut),
            E::MessageTooLarge => Some(K::MessageTooLarge),
            E::InvalidTopicException => Some(K::InvalidTopicException),
            E::RecordListTooLarge => Some(K::RecordListTooLarge),
            E::NotEnoughReplicas => Some(K::NotEnoughReplicas),
            E::InvalidRequiredAcks => Some(K::InvalidRequiredAcks),
            E::UnsupportedVersion => Some(K::UnsupportedVersion),
            E::TopicAlreadyExists => Some(K::TopicAlreadyExists),
            E::InvalidPartitions => Some(K::InvalidPartitions),
            E::InvalidReplicationFactor => Some(K::InvalidReplicationFactor),
            E::InvalidConfig => Some(K::InvalidConfig),
            E::InvalidRequest => Some(K::InvalidRequest),
            E::PolicyViolation => Some(K::PolicyViolation),
            E::OutOfOrderSequenceNumber => Some(K::OutOfOrderSequenceNumber),
            E::DuplicateSequenceNumber => Some(K::DuplicateSequenceNumber),
            E::InvalidProducerEpoch => Some(K::InvalidProducerEpoch),
            E::KafkaStorageError => Some(K::KafkaStorageError),
            E::UnknownProducerId => Some(K::UnknownProducerId),
            E::InvalidTimestamp => Some(K::InvalidTimestamp),
            E::UnknownServerError => Some(K::UnknownServerError),
            E::InvalidRecord => Some(K::InvalidRecord),
            E::CoordinatorLoadInProgress => Some(K::CoordinatorLoadInProgress),
            E::CoordinatorNotAvailable => Some(K::CoordinatorNotAvailable),
            E::NotCoordinator => Some(K::NotCoordinator),
            E::IllegalGeneration => Some(K::IllegalGeneration),
            E::InconsistentGroupProtocol => Some(K::InconsistentGroupProtocol),
            E::InvalidGroupId => Some(K::InvalidGroupId),
            E::UnknownMemberId => Some(K::UnknownMemberId),
            E::InvalidSessionTimeout => Some(K::InvalidSessionTimeout),
            E::RebalanceInProgress => Some(K::RebalanceInProgress),
            E::OffsetMetadataTooLarge => Some(K::OffsetMetadataTooLarge),
            E::NonEmptyGroup => Some(K::NonEmptyGroup),
            E::GroupIdNotFound => Some(K::GroupIdNotFound),
            E::GroupSubscribedToTopic => Some(K::GroupSubscribedToTopic),
            E::MemberIdRequired => Some(K::MemberIdRequired),
            E::GroupMaxSizeReached => Some(K::GroupMaxSizeReached),
            E::FencedInstanceId => Some(K::FencedInstanceId),
            E::NotController => Some(K::NotController),
            E::StaleBrokerEpoch => Some(K::StaleBrokerEpoch),
            E::LeaderNotAvailable => Some(K::LeaderNotAvailable),
            E::NotEnoughReplicasAfterAppend => Some(K::NotEnoughReplicasAfterAppend),
            E::FencedLeaderEpoch => Some(K::FencedLeaderEpoch),
            E::InvalidUpdateVersion => Some(K::InvalidUpdateVersion),
            E::IneligibleReplica => Some(K::IneligibleReplica),
            E::PreferredLeaderNotAvailable => Some(K::PreferredLeaderNotAvailable),
            E::EligibleLeadersNotAvailable => Some(K::EligibleLeadersNotAvailable),
            E::ElectionNotNeeded => Some(K::ElectionNotNeeded),
            E::UnsupportedSaslMechanism => Some(K::UnsupportedSaslMechanism),
            E::ResourceNotFound => Some(K::ResourceNotFound),
            E::DuplicateResource => Some(K::DuplicateResource),
            E::UnacceptableCredential => Some(K::UnacceptableCredential),
            E::TopicAuthorizationFailed => Some(K::TopicAuthorizationFailed),
            E::GroupAuthorizationFailed => Some(K::GroupAuthorizationFailed),
            E::ClusterAuthorizationFailed => Some(K::ClusterAuthorizationFailed),
        }
    }

    /// Every code's number is the one Kafka gives the error it stands for,
    /// and it bears Kafka's name for it: clients act on the number, so a
    /// wrong one is a wrong answer on the wire.
    #[test]
    fn every_code_has_kafkas_number_and_name() {
        for &code in ErrorCode::ALL {
            let expected = kafkas(code);
            assert_eq!(K::try_from_code(code.code()), expected, "{code:?} is {}", code.code());
            match expected {
                None => assert!(code.is_ok(), "{code:?}: only success has no Kafka error"),
                Some(k) => {
                    assert_eq!(k.code(), code.code(), "{code:?}");
                    assert_eq!(format!("{k:?}"), format!("{code:?}"), "our name differs from Kafka's");
                }
            }
        }
    }

    /// `ALL` holds each code once (the macro builds it from the enum's own
    /// list, so this guards the macro).
    #[test]
    fn all_holds_each_code_once() {
        let mut codes: Vec<i16> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
    }
}
