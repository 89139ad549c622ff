//! The client's errors, and Kafka's error codes by their protocol names.
//!
//! Kafka's documentation, logs and other clients name errors in upper snake
//! case (`NOT_LEADER_OR_FOLLOWER`), so messages here do too: an operator can
//! search for the name and find the same thing Kafka's docs describe.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use ringtail_engine::log::records::RecordsError;

use ringtail_engine::log::records::decompress::DecompressError;
use thiserror::Error;

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Kafka error codes the client reacts to (not just reports).
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const ELECTION_NOT_NEEDED: i16 = 84;
    // Consumer groups.
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("connection to {addr} failed: {source}")]
    Io { addr: String, source: std::io::Error },
    #[error("connection to {addr} is closed ({reason})")]
    Closed { addr: String, reason: String },
    #[error("{what} timed out after {} ms", after.as_millis())]
    Timeout { what: String, after: Duration },
    #[error("{context}: {}", describe_kafka(*code, message.as_deref()))]
    Kafka { context: String, code: i16, message: Option<String> },
    #[error("broker {addr} does not support {api} in any version this client speaks ({client_min}..{client_max}; broker has {broker})")]
    UnsupportedVersion { addr: String, api: String, client_min: i16, client_max: i16, broker: String },
    #[error("malformed response from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    #[error("response frame of {len_bytes} bytes from {addr} exceeds the limit of {max_bytes} bytes")]
    FrameTooLarge { addr: String, len_bytes: u64, max_bytes: usize },
    #[error("cannot encode {api} v{version} request: {reason}")]
    Encode { api: String, version: i16, reason: String },
    #[error("cannot read the batch of {topic}-{partition} at offset {offset}: {source}")]
    Decompress { topic: String, partition: i32, offset: i64, source: DecompressError },
    #[error("bad record batch in {topic}-{partition} at offset {offset}: {source}")]
    Records { topic: String, partition: i32, offset: i64, source: RecordsError },
    #[error("topic {topic} has no partition {partition} (it has {count})")]
    NoSuchPartition { topic: String, partition: i32, count: usize },
    #[error("group {group}: the coordinator asks to join again as member {member_id} (MEMBER_ID_REQUIRED)")]
    MemberIdRequired { group: String, member_id: String },
    #[error("no bootstrap address given")]
    NoBootstrap,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The Kafka error code this error carries, if it came from a broker.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            ClientError::MemberIdRequired { .. } => Some(code::MEMBER_ID_REQUIRED),
            _ => None,
        }
    }

    /// Whether refreshing metadata and trying again may help: the broker
    /// told us it is not (or not yet) the right one to ask.
    pub fn is_stale_metadata(&self) -> bool {
        matches!(
            self.kafka_code(),
            Some(
                code::UNKNOWN_TOPIC_OR_PARTITION
                    | code::LEADER_NOT_AVAILABLE
                    | code::NOT_LEADER_OR_FOLLOWER
                    | code::FENCED_LEADER_EPOCH
                    | code::UNKNOWN_LEADER_EPOCH
            )
        )
    }

    /// Whether the group's coordinator moved or is not ready: find it
    /// again (after a pause) and retry.
    pub fn is_coordinator_error(&self) -> bool {
        matches!(
            self.kafka_code(),
            Some(
                code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE | code::COORDINATOR_LOAD_IN_PROGRESS
            )
        )
    }

    /// Whether the member must join the group again: the group is
    /// rebalancing, or no longer knows this member or its generation.
    pub fn needs_rejoin(&self) -> bool {
        matches!(
            self.kafka_code(),
            Some(code::REBALANCE_IN_PROGRESS | code::ILLEGAL_GENERATION | code::UNKNOWN_MEMBER_ID)
        )
    }

    /// Whether the connection itself broke (as opposed to the broker
    /// answering with an error). A new connection may succeed.
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Io { .. }
                | ClientError::Closed { .. }
                | ClientError::Timeout { .. }
        )
    }

    pub(crate) fn kafka(context: impl Into<String>, code: i16, message: Option<&str>) -> ClientError {
        ClientError::Kafka { context: context.into(), code, message: message.map(str::to_owned) }
    }
}

/// Returns `Err` for a non-zero Kafka error code.
pub(crate) fn check(code: i16, message: Option<&str>, context: impl FnOnce() -> String) -> Result<()> {
    if code == code::NONE {
        Ok(())
    } else {
        Err(ClientError::kafka(context(), code, message))
    }
}

/// `NOT_LEADER_OR_FOLLOWER (6)`, plus the broker's message if it sent one.
fn describe_kafka(code: i16, message: Option<&str>) -> String {
    let name = kafka_error_name(code);
    match message {
        Some(m) if !m.is_empty() => format!("{name} ({code}): {m}"),
        _ => format!("{name} ({code})"),
    }
}

/// Kafka's protocol name of an error code, e.g. 6 -> `NOT_LEADER_OR_FOLLOWER`.
pub fn kafka_error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        // The crate's variants are the Java enum's names in camel case.
        Some(e) => upper_snake(&format!("{e:?}")),
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_have_kafka_names() {
        assert_eq!(kafka_error_name(0), "NONE");
        assert_eq!(kafka_error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(kafka_error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(kafka_error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(kafka_error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(kafka_error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }

    #[test]
    fn kafka_errors_display_name_code_and_message() {
        let e = ClientError::kafka("create topic t", 36, Some("Topic 't' already exists."));
        assert_eq!(e.to_string(), "create topic t: TOPIC_ALREADY_EXISTS (36): Topic 't' already exists.");
        assert!(!e.is_stale_metadata());
        assert!(ClientError::kafka("produce", 6, None).is_stale_metadata());
    }

    #[test]
    fn group_error_codes_match_kafka_names() {
        for (c, name) in [
            (code::COORDINATOR_LOAD_IN_PROGRESS, "COORDINATOR_LOAD_IN_PROGRESS"),
            (code::COORDINATOR_NOT_AVAILABLE, "COORDINATOR_NOT_AVAILABLE"),
            (code::NOT_COORDINATOR, "NOT_COORDINATOR"),
            (code::ILLEGAL_GENERATION, "ILLEGAL_GENERATION"),
            (code::INCONSISTENT_GROUP_PROTOCOL, "INCONSISTENT_GROUP_PROTOCOL"),
            (code::INVALID_GROUP_ID, "INVALID_GROUP_ID"),
            (code::UNKNOWN_MEMBER_ID, "UNKNOWN_MEMBER_ID"),
            (code::INVALID_SESSION_TIMEOUT, "INVALID_SESSION_TIMEOUT"),
            (code::REBALANCE_IN_PROGRESS, "REBALANCE_IN_PROGRESS"),
            (code::NON_EMPTY_GROUP, "NON_EMPTY_GROUP"),
            (code::GROUP_ID_NOT_FOUND, "GROUP_ID_NOT_FOUND"),
            (code::MEMBER_ID_REQUIRED, "MEMBER_ID_REQUIRED"),
            (code::GROUP_MAX_SIZE_REACHED, "GROUP_MAX_SIZE_REACHED"),
            (code::FENCED_INSTANCE_ID, "FENCED_INSTANCE_ID"),
            (code::UNSTABLE_OFFSET_COMMIT, "UNSTABLE_OFFSET_COMMIT"),
        ] {
            assert_eq!(kafka_error_name(c), name);
        }
        assert!(ClientError::kafka("join", code::NOT_COORDINATOR, None).is_coordinator_error());
        assert!(ClientError::kafka("commit", code::ILLEGAL_GENERATION, None).needs_rejoin());
        assert!(!ClientError::kafka("commit", code::NOT_COORDINATOR, None).needs_rejoin());
    }
}
