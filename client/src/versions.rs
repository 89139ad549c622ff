//! ApiVersions negotiation: for each API, the highest version both this
//! client and the broker speak.

use std::collections::BTreeMap;

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// The versions this client builds requests for. Lower bounds skip the
/// oldest versions, whose differences (non-nullable topic lists, v0 message
/// sets) buy nothing with a current broker. Produce and Fetch stop at 12:
/// from 13 on they name topics by id only, and this client names them by
/// name so that it works even against brokers that do not assign ids.
const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 1, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    // Idempotent producers: an id and epoch, no transactions.
    (ApiKey::InitProducerId, 0, 4),
    // Consumer groups (the classic protocol). FindCoordinator stops at 4
    // (5 and 6 add share groups), OffsetCommit and OffsetFetch at 8 (9
    // is for KIP-848 member epochs).
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    // Version 0 elects preferred leaders only.
    (ApiKey::ElectLeaders, 1, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // ACLs: 1 brings pattern types (KIP-290) and is the oldest the codec
    // decodes; 2 is flexible; 3 adds the USER resource type (never sent).
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    // Users' quotas: 1 is flexible, and otherwise the same.
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// Highest ApiVersions version this client sends first.
pub const API_VERSIONS_VERSION_MAX: i16 = 4;

/// The client's own `(min, max)` for `api_key`, if it uses that API.
pub fn client_range(api_key: i16) -> Option<(i16, i16)> {
    CLIENT_VERSIONS.iter().find(|(key, _, _)| *key as i16 == api_key).map(|&(_, min, max)| (min, max))
}

/// Why no version could be agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoCommonVersion {
    pub client: (i16, i16),
    /// None: the broker does not list the API at all.
    pub broker: Option<(i16, i16)>,
}

impl NoCommonVersion {
    pub fn broker_text(&self) -> String {
        match self.broker {
            Some((min, max)) => format!("{min}..{max}"),
            None => "none".to_owned(),
        }
    }
}

/// The version ranges one broker announced in its ApiVersions response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerVersions {
    ranges: BTreeMap<i16, (i16, i16)>,
}

impl BrokerVersions {
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        let ranges = response.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        BrokerVersions { ranges }
    }

    pub fn broker_range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.ranges.get(&api_key).copied()
    }

    /// The highest version in both ranges.
    pub fn negotiate(&self, api_key: i16) -> Result<i16, NoCommonVersion> {
        // An API the client does not know has an empty range, so it never
        // negotiates; every caller names one of CLIENT_VERSIONS.
        let client = client_range(api_key).unwrap_or((0, -1));
        let broker = self.broker_range(api_key);
        let no_common = || NoCommonVersion { client, broker };
        let (broker_min, broker_max) = broker.ok_or_else(no_common)?;
        let max = client.1.min(broker_max);
        if max < client.0.max(broker_min) {
            return Err(no_common());
        }
        Ok(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn broker(ranges: &[(ApiKey, i16, i16)]) -> BrokerVersions {
        let response = ApiVersionsResponse::default().with_api_keys(
            ranges
                .iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max)
                })
                .collect(),
        );
        BrokerVersions::from_response(&response)
    }

    #[test]
    fn picks_the_highest_common_version() {
        let b = broker(&[(ApiKey::Produce, 0, 13), (ApiKey::Metadata, 0, 9), (ApiKey::Fetch, 4, 4)]);
        assert_eq!(b.negotiate(ApiKey::Produce as i16), Ok(12), "client caps Produce at 12");
        assert_eq!(b.negotiate(ApiKey::Metadata as i16), Ok(9), "broker caps Metadata at 9");
        assert_eq!(b.negotiate(ApiKey::Fetch as i16), Ok(4));
    }

    /// ACL requests use the highest of 1..=3 the broker offers.
    #[test]
    fn acl_requests_negotiate_within_one_to_three() {
        let b =
            broker(&[(ApiKey::CreateAcls, 0, 3), (ApiKey::DescribeAcls, 0, 2), (ApiKey::DeleteAcls, 0, 0)]);
        assert_eq!(b.negotiate(ApiKey::CreateAcls as i16), Ok(3));
        assert_eq!(b.negotiate(ApiKey::DescribeAcls as i16), Ok(2));
        assert!(b.negotiate(ApiKey::DeleteAcls as i16).is_err(), "version 0 has no pattern types");
    }

    /// Quota requests use the highest of 0..=1 the broker offers.
    #[test]
    fn quota_requests_negotiate_within_zero_to_one() {
        let b = broker(&[(ApiKey::AlterClientQuotas, 0, 1), (ApiKey::DescribeClientQuotas, 0, 0)]);
        assert_eq!(b.negotiate(ApiKey::AlterClientQuotas as i16), Ok(1));
        assert_eq!(b.negotiate(ApiKey::DescribeClientQuotas as i16), Ok(0));
        let newer = broker(&[(ApiKey::AlterClientQuotas, 0, 2)]);
        assert_eq!(newer.negotiate(ApiKey::AlterClientQuotas as i16), Ok(1), "the client stops at 1");
    }

    #[test]
    fn disjoint_or_missing_ranges_do_not_negotiate() {
        let b = broker(&[(ApiKey::Produce, 0, 2), (ApiKey::Fetch, 13, 17)]);
        let err = b.negotiate(ApiKey::Produce as i16).unwrap_err();
        assert_eq!(err, NoCommonVersion { client: (3, 12), broker: Some((0, 2)) });
        assert!(b.negotiate(ApiKey::Fetch as i16).is_err());
        let missing = b.negotiate(ApiKey::DescribeConfigs as i16).unwrap_err();
        assert_eq!(missing.broker_text(), "none");
        assert!(b.negotiate(ApiKey::SaslHandshake as i16).is_err(), "an API the client does not use");
    }

    #[test]
    fn client_ranges_lie_within_what_the_codec_supports() {
        for &(key, min, max) in CLIENT_VERSIONS {
            let codec = key.valid_versions();
            assert!(codec.min <= min && max <= codec.max, "{key:?}: {min}..{max} vs {codec}");
        }
    }
}
