//! Client quotas, as Kafka's: per user, a limit on the bytes per second it
//! produces (`producer_byte_rate`) and fetches (`consumer_byte_rate`), set
//! for a named user or as the default for every user (`<default>`, which a
//! user's own setting overrides key by key). The limits live in the cluster
//! metadata (`broker::quotas`); `meter` measures what a user does against
//! them and says how long to hold it back.

pub mod meter;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The quota keys Ringtail enforces.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const KEYS: [&str; 2] = [PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE];

/// Kafka's name for the default entity (ZooKeeper's path, the tools' output).
pub const DEFAULT_USER: &str = "<default>";

/// Whom a quota applies to: a user, or (`None`) every user without one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaEntity {
    pub user: Option<String>,
}

impl QuotaEntity {
    /// The key it is stored under.
    pub fn key(&self) -> &str {
        self.user.as_deref().unwrap_or(DEFAULT_USER)
    }

    pub fn from_key(key: &str) -> QuotaEntity {
        QuotaEntity { user: (key != DEFAULT_USER).then(|| key.to_string()) }
    }
}

/// One entity's quota values, by key, in bytes per second. Kafka's are
/// doubles; byte rates are kept whole (and the metadata exactly comparable).
pub type QuotaValues = BTreeMap<String, u64>;

/// The limits that apply to one user, in bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLimits {
    pub produce: Option<u64>,
    pub fetch: Option<u64>,
}

/// What applies to `user` given every stored quota: its own value of each
/// key, else the default's.
pub fn limits_for(quotas: &BTreeMap<String, QuotaValues>, user: &str) -> UserLimits {
    let own = quotas.get(user);
    let default = quotas.get(DEFAULT_USER);
    let value =
        |key: &str| own.and_then(|q| q.get(key)).or_else(|| default.and_then(|q| q.get(key))).copied();
    UserLimits { produce: value(PRODUCER_BYTE_RATE), fetch: value(CONSUMER_BYTE_RATE) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_own_value_overrides_the_default_key_by_key() {
        let mut quotas = BTreeMap::new();
        quotas.insert(
            DEFAULT_USER.to_string(),
            QuotaValues::from([(PRODUCER_BYTE_RATE.into(), 100), (CONSUMER_BYTE_RATE.into(), 50)]),
        );
        quotas.insert("alice".to_string(), QuotaValues::from([(PRODUCER_BYTE_RATE.into(), 1000)]));
        assert_eq!(limits_for(&quotas, "alice"), UserLimits { produce: Some(1000), fetch: Some(50) });
        assert_eq!(limits_for(&quotas, "bob"), UserLimits { produce: Some(100), fetch: Some(50) });
        assert_eq!(limits_for(&BTreeMap::new(), "bob"), UserLimits::default());
        assert_eq!(QuotaEntity::from_key(DEFAULT_USER), QuotaEntity { user: None });
        assert_eq!(QuotaEntity::from_key("x").key(), "x");
    }
}
