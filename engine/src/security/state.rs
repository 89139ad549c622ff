//! The security half of the metadata: users' SCRAM credentials, ACLs and
//! client quotas, and the changes that move it (Kafka's
//! UserScramCredentialRecord, AccessControlEntryRecord, ClientQuotaRecord
//! and their removals).
//!
//! One type for both homes of the metadata: a single node journals these
//! changes itself (`broker::metadata_journal`), a cluster's controller
//! quorum commits them as metadata records and every broker follows the
//! image they build. Either way the same `apply` builds the same state.
//!
//! Every change is absolute (put this value, remove that one), never
//! relative to what was there: applying one twice, or one computed from a
//! slightly older state, leaves the state as the change says, so two
//! brokers changing security at once need no version check.

use super::acl::AclBinding;
use super::scram::{ScramCredential, ScramMechanism};
use crate::quota::QuotaValues;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecurityState {
    /// Users' SCRAM credentials, per mechanism (`security::scram`).
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Kafka's ACLs (`security::acl`), enforced when the server runs an
    /// authorizer.
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
    /// Client quotas per user (`<default>` for every user), by key.
    #[serde(default)]
    pub quotas: BTreeMap<String, QuotaValues>,
}

/// One change to the security state. The tag is `change` so that a single
/// node's journal records read as they did before this type existed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SecurityChange {
    /// `user`'s credential for `mechanism` becomes `credential`.
    PutScramCredential {
        user: String,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    },
    /// `user` has no credential for `mechanism` any more.
    DeleteScramCredential {
        user: String,
        mechanism: ScramMechanism,
    },
    /// An ACL is added; adding one that exists changes nothing.
    PutAcl {
        acl: AclBinding,
    },
    DeleteAcl {
        acl: AclBinding,
    },
    /// A client quota is set, or (`None`) removed; `entity` is a user or
    /// `<default>`.
    PutQuota {
        entity: String,
        key: String,
        value: Option<u64>,
    },
}

impl SecurityState {
    /// Applies one change; whether it changed anything.
    pub fn apply(&mut self, change: &SecurityChange) -> bool {
        match change {
            SecurityChange::PutScramCredential { user, mechanism, credential } => {
                let old = self
                    .scram_credentials
                    .entry(user.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
                old.as_ref() != Some(credential)
            }
            SecurityChange::DeleteScramCredential { user, mechanism } => {
                // A user without credentials is no user: describing it says
                // RESOURCE_NOT_FOUND, as Kafka does.
                let Some(mechanisms) = self.scram_credentials.get_mut(user) else { return false };
                let took = mechanisms.remove(mechanism).is_some();
                if mechanisms.is_empty() {
                    self.scram_credentials.remove(user);
                }
                took
            }
            SecurityChange::PutAcl { acl } => self.acls.insert(acl.clone()),
            SecurityChange::DeleteAcl { acl } => self.acls.remove(acl),
            SecurityChange::PutQuota { entity, key, value } => {
                let values = self.quotas.entry(entity.clone()).or_default();
                let old = match value {
                    Some(v) => values.insert(key.clone(), *v),
                    None => values.remove(key),
                };
                if values.is_empty() {
                    self.quotas.remove(entity);
                }
                old != *value
            }
        }
    }

    /// The changes that turn this state into `target`: what a broker
    /// following the quorum's image writes to its own copy.
    pub fn changes_to(&self, target: &SecurityState) -> Vec<SecurityChange> {
        let mut changes = Vec::new();
        for (user, mechanisms) in &self.scram_credentials {
            for mechanism in mechanisms.keys() {
                if !target.scram_credentials.get(user).is_some_and(|m| m.contains_key(mechanism)) {
                    changes.push(SecurityChange::DeleteScramCredential {
                        user: user.clone(),
                        mechanism: *mechanism,
                    });
                }
            }
        }
        for (user, mechanisms) in &target.scram_credentials {
            for (mechanism, credential) in mechanisms {
                if self.scram_credentials.get(user).and_then(|m| m.get(mechanism)) != Some(credential) {
                    changes.push(SecurityChange::PutScramCredential {
                        user: user.clone(),
                        mechanism: *mechanism,
                        credential: credential.clone(),
                    });
                }
            }
        }
        changes.extend(
            self.acls.difference(&target.acls).map(|acl| SecurityChange::DeleteAcl { acl: acl.clone() }),
        );
        changes.extend(
            target.acls.difference(&self.acls).map(|acl| SecurityChange::PutAcl { acl: acl.clone() }),
        );
        let quota = |entity: &String, key: &String, value: Option<u64>| SecurityChange::PutQuota {
            entity: entity.clone(),
            key: key.clone(),
            value,
        };
        for (entity, values) in &self.quotas {
            for key in values.keys() {
                if !target.quotas.get(entity).is_some_and(|v| v.contains_key(key)) {
                    changes.push(quota(entity, key, None));
                }
            }
        }
        for (entity, values) in &target.quotas {
            for (key, value) in values {
                if self.quotas.get(entity).and_then(|v| v.get(key)) != Some(value) {
                    changes.push(quota(entity, key, Some(*value)));
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{Operation, PatternType, Permission, ResourceType};
    use proptest::prelude::*;

    fn credential(iterations: u32) -> ScramCredential {
        ScramCredential::from_salted_password(ScramMechanism::Sha256, b"salt", iterations, &[7; 32])
    }

    fn acl(principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    fn change() -> impl Strategy<Value = SecurityChange> {
        let user = prop::sample::select(vec!["alice", "bob"]).prop_map(String::from);
        let mechanism = prop::sample::select(vec![ScramMechanism::Sha256, ScramMechanism::Sha512]);
        prop_oneof![
            (user.clone(), mechanism.clone(), 4096u32..4099).prop_map(|(user, mechanism, i)| {
                SecurityChange::PutScramCredential { user, mechanism, credential: credential(i) }
            }),
            (user.clone(), mechanism)
                .prop_map(|(user, mechanism)| SecurityChange::DeleteScramCredential { user, mechanism }),
            user.clone().prop_map(|u| SecurityChange::PutAcl { acl: acl(&format!("User:{u}")) }),
            user.clone().prop_map(|u| SecurityChange::DeleteAcl { acl: acl(&format!("User:{u}")) }),
            (
                user,
                prop::sample::select(vec!["producer_byte_rate", "consumer_byte_rate"]),
                prop::option::of(1u64..3)
            )
                .prop_map(|(entity, key, value)| SecurityChange::PutQuota {
                    entity,
                    key: key.into(),
                    value
                }),
        ]
    }

    fn state(changes: &[SecurityChange]) -> SecurityState {
        let mut s = SecurityState::default();
        for c in changes {
            s.apply(c);
        }
        s
    }

    proptest! {
        /// Following an image by its differences reaches the image, and a
        /// second look finds nothing left to change.
        #[test]
        fn changes_to_reaches_the_target(
            from in prop::collection::vec(change(), 0..12),
            to in prop::collection::vec(change(), 0..12),
        ) {
            let mut here = state(&from);
            let target = state(&to);
            for c in here.changes_to(&target) {
                prop_assert!(here.apply(&c), "a difference changes something: {c:?}");
            }
            prop_assert_eq!(&here, &target);
            prop_assert!(here.changes_to(&target).is_empty());
        }

        /// Changes are absolute: applying one again changes nothing.
        #[test]
        fn a_change_applied_twice_is_applied_once(changes in prop::collection::vec(change(), 1..12)) {
            let mut s = state(&changes);
            let before = s.clone();
            prop_assert!(!s.apply(changes.last().unwrap()));
            prop_assert_eq!(s, before);
        }
    }
}
