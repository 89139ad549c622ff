//! The APIs this server implements and their version ranges, advertised by
//! ApiVersions exactly as they are: a client picks the highest version both
//! sides know, so advertising an unimplemented version breaks clients.

use kafka_protocol::messages::ApiKey;

/// One implemented API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supported {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> Supported {
    Supported { key, min, max }
}

/// Ordered by API key, as Kafka lists them. Each range lies within
/// kafka-protocol's (checked by a test) and reaches the versions current
/// librdkafka 2.x, the Java client, kafka-python and kafkajs ask for.
pub const SUPPORTED: [Supported; 38] = [
    // Produce 3+ carries v2 record batches only; 10-11 add tagged fields we
    // leave empty (leader hints); 12+ is transactions v2, 13 topic ids.
    api(ApiKey::Produce, 3, 11),
    // Fetch 13+ names topics by id; 15 moves the replica id into a
    // replica state; 16 adds leader endpoints to errors (never set here).
    api(ApiKey::Fetch, 4, 16),
    // ListOffsets 8-9 add tiered storage's -4 and -5 (answered as a log
    // with no tiered part); 10 adds a timeout.
    api(ApiKey::ListOffsets, 1, 9),
    api(ApiKey::Metadata, 0, 12),
    // Consumer groups (Kafka's classic protocol). OffsetCommit 9+ and
    // OffsetFetch 9+ are KIP-848's member epochs; OffsetCommit 0-1 and
    // OffsetFetch 0 store offsets in ZooKeeper.
    api(ApiKey::OffsetCommit, 2, 8),
    api(ApiKey::OffsetFetch, 1, 8),
    // FindCoordinator 5+ adds share groups; 4 batches the keys.
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    // DescribeGroups 6 adds error messages; ListGroups 5 group types.
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 4),
    // SASL: v0 of the handshake means raw tokens follow outside Kafka
    // frames (before KIP-152); only v1, with SaslAuthenticate, is served.
    api(ApiKey::SaslHandshake, 1, 1),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 4),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    // ACLs: 1 adds pattern types (KIP-290), the first kafka-protocol
    // decodes; 2 is flexible; 3 adds the USER resource type (not served).
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
    // kafka-protocol 0.18 decodes DescribeConfigs from version 1.
    api(ApiKey::DescribeConfigs, 1, 4),
    // Topic configs; the broker resource refuses changes (its settings are
    // flags and the config file). librdkafka asks for 0-2 and 0-1, and
    // CreatePartitions at version 0 only.
    api(ApiKey::AlterConfigs, 0, 2),
    // kafka-protocol 0.18 decodes DescribeLogDirs from version 1; 4 adds
    // the directory's total and usable bytes.
    api(ApiKey::DescribeLogDirs, 1, 4),
    // 1 adds the session lifetime (KIP-368); 2 is flexible.
    api(ApiKey::SaslAuthenticate, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteGroups, 0, 2),
    // 1 adds the election type (unclean) and a top-level error code.
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::OffsetDelete, 0, 0),
    // Client quotas (user entities); 1 is flexible.
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::AlterClientQuotas, 0, 1),
    // SCRAM credentials; version 0 is the only one Kafka has.
    api(ApiKey::DescribeUserScramCredentials, 0, 0),
    api(ApiKey::AlterUserScramCredentials, 0, 0),
    // 1 adds endpoint types, 2 fenced brokers.
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::DescribeProducers, 0, 0),
];

/// The range implemented for `key`, if any.
pub fn supported(key: ApiKey) -> Option<Supported> {
    SUPPORTED.iter().copied().find(|s| s.key == key)
}

/// Is `version` of `key` implemented?
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported(key).is_some_and(|s| (s.min..=s.max).contains(&version))
}

/// The index of `key` in `SUPPORTED`, for per-API metrics.
pub fn index_of(key: ApiKey) -> Option<usize> {
    SUPPORTED.iter().position(|s| s.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_within_kafka_protocols() {
        for s in SUPPORTED {
            let crate_range = s.key.valid_versions();
            assert!(s.min <= s.max, "{s:?}");
            assert!(crate_range.min <= s.min && s.max <= crate_range.max, "{s:?} vs {crate_range:?}");
        }
    }

    #[test]
    fn keys_are_unique_and_ordered() {
        for pair in SUPPORTED.windows(2) {
            assert!((pair[0].key as i16) < (pair[1].key as i16), "{pair:?}");
        }
    }

    #[test]
    fn lookups() {
        assert!(is_supported(ApiKey::Metadata, 0));
        assert!(is_supported(ApiKey::Metadata, 12));
        assert!(!is_supported(ApiKey::Metadata, 13));
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(is_supported(ApiKey::JoinGroup, 0));
        assert!(!is_supported(ApiKey::JoinGroup, 10));
        assert!(!is_supported(ApiKey::OffsetCommit, 1));
        assert!(!is_supported(ApiKey::ConsumerGroupHeartbeat, 0));
        assert_eq!(index_of(ApiKey::Fetch), Some(1));
    }
}
