//! Users' SCRAM credentials, kept in the cluster metadata: Kafka's
//! AlterUserScramCredentials and DescribeUserScramCredentials.
//!
//! A request's changes are made durable before they are acknowledged, in
//! one journal record or one quorum entry (`security_changes`): they land
//! together or not at all, as Kafka's controller applies them atomically.
//!
//! Validation follows Kafka, with its codes and messages: per user, an
//! empty name (UNACCEPTABLE_CREDENTIAL), an unknown mechanism
//! (UNSUPPORTED_SASL_MECHANISM), iterations outside
//! `ITERATIONS_MIN..=ITERATIONS_MAX` (UNACCEPTABLE_CREDENTIAL), one
//! user-and-mechanism altered twice (DUPLICATE_RESOURCE), and deleting a
//! credential that does not exist (RESOURCE_NOT_FOUND). A user with one
//! bad alteration has none of its alterations applied; other users' are.
//! Duplicates are counted per user and mechanism, as Kafka's ZooKeeper-mode
//! broker did; Kafka's KRaft controller refuses any user named twice, which
//! would make setting both mechanisms of a user take two requests.

use super::Broker;
use crate::error::{BrokerError, ErrorCode};
use crate::io::Disk;
use crate::security::scram::{ScramCredential, ScramMechanism, ITERATIONS_MAX, ITERATIONS_MIN};
use crate::security::state::SecurityChange;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A credential to set, as AlterUserScramCredentials carries it: the
/// client salted the password; the broker keeps only the keys derived
/// from it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUpsertion {
    pub user: String,
    /// Kafka's mechanism code (`ScramMechanism::code`); others are refused.
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

impl fmt::Debug for ScramUpsertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The salted password lets anyone in as this user: never in a log.
        f.debug_struct("ScramUpsertion")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A credential to remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramDeletion {
    pub user: String,
    pub mechanism: i8,
}

/// What one user's credentials are, as DescribeUserScramCredentials says:
/// the mechanisms and their iteration counts, never salts or keys.
pub type CredentialInfos = Vec<(ScramMechanism, u32)>;

/// The outcome per user named in a request.
pub type PerUser<T> = Vec<(String, Result<T, BrokerError>)>;

fn unacceptable(message: &str) -> BrokerError {
    BrokerError::new(ErrorCode::UnacceptableCredential, message)
}

/// The mechanism of a valid alteration, or Kafka's error for it.
fn check_name_and_mechanism(user: &str, code: i8) -> Result<ScramMechanism, BrokerError> {
    if user.is_empty() {
        return Err(unacceptable("Username must not be empty"));
    }
    ScramMechanism::from_code(code)
        .ok_or_else(|| BrokerError::new(ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))
}

fn check_upsertion(u: &ScramUpsertion) -> Result<ScramMechanism, BrokerError> {
    let mechanism = check_name_and_mechanism(&u.user, u.mechanism)?;
    if u.iterations < ITERATIONS_MIN as i32 {
        return Err(unacceptable("Too few iterations"));
    }
    if u.iterations > ITERATIONS_MAX as i32 {
        return Err(unacceptable("Too many iterations"));
    }
    Ok(mechanism)
}

/// A request's alterations, checked against `current`: the changes to
/// persist, and each user's outcome (sorted by user).
fn plan(
    current: &BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
) -> (Vec<SecurityChange>, BTreeMap<String, Result<(), BrokerError>>) {
    let mut outcome: BTreeMap<String, Result<(), BrokerError>> = BTreeMap::new();
    // Each user's first failure is the one reported.
    let fail = |outcome: &mut BTreeMap<String, Result<(), BrokerError>>, user: &str, e| {
        let entry = outcome.entry(user.to_string()).or_insert(Ok(()));
        if entry.is_ok() {
            *entry = Err(e);
        }
    };
    let mut seen = BTreeSet::new();
    let mut duplicated = BTreeSet::new();
    let mut valid_deletions = Vec::new();
    for d in deletions {
        outcome.entry(d.user.clone()).or_insert(Ok(()));
        match check_name_and_mechanism(&d.user, d.mechanism) {
            Ok(m) => {
                if !seen.insert((d.user.as_str(), m)) {
                    duplicated.insert(d.user.as_str());
                }
                valid_deletions.push((d, m));
            }
            Err(e) => fail(&mut outcome, &d.user, e),
        }
    }
    let mut valid_upsertions = Vec::new();
    for u in upsertions {
        outcome.entry(u.user.clone()).or_insert(Ok(()));
        match check_upsertion(u) {
            Ok(m) => {
                if !seen.insert((u.user.as_str(), m)) {
                    duplicated.insert(u.user.as_str());
                }
                valid_upsertions.push((u, m));
            }
            Err(e) => fail(&mut outcome, &u.user, e),
        }
    }
    for user in duplicated {
        let e = BrokerError::new(
            ErrorCode::DuplicateResource,
            "A user credential cannot be altered twice in the same request",
        );
        fail(&mut outcome, user, e);
    }
    for (d, m) in &valid_deletions {
        if !current.get(&d.user).is_some_and(|c| c.contains_key(m)) {
            let e = BrokerError::new(
                ErrorCode::ResourceNotFound,
                "Attempt to delete a user credential that does not exist",
            );
            fail(&mut outcome, &d.user, e);
        }
    }
    let ok = |user: &str| outcome.get(user).is_some_and(|r| r.is_ok());
    let mut changes = Vec::new();
    for (d, mechanism) in valid_deletions.into_iter().filter(|(d, _)| ok(&d.user)) {
        changes.push(SecurityChange::DeleteScramCredential { user: d.user.clone(), mechanism });
    }
    for (u, mechanism) in valid_upsertions.into_iter().filter(|(u, _)| ok(&u.user)) {
        // `check_upsertion` bounded the count to ITERATIONS_MIN..=MAX.
        let iterations = u.iterations as u32;
        let credential =
            ScramCredential::from_salted_password(mechanism, &u.salt, iterations, &u.salted_password);
        changes.push(SecurityChange::PutScramCredential { user: u.user.clone(), mechanism, credential });
    }
    (changes, outcome)
}

impl<D: Disk> Broker<D> {
    /// `user`'s credential for `mechanism`, if it has one.
    pub fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.metadata().security.scram_credentials.get(user)?.get(&mechanism).cloned()
    }

    /// Kafka's AlterUserScramCredentials: deletes and sets credentials,
    /// durable before this returns. Returns each user's outcome, by user.
    pub async fn alter_scram_credentials(
        &self,
        deletions: &[ScramDeletion],
        upsertions: &[ScramUpsertion],
    ) -> PerUser<()> {
        // The check and the change in one step: a deletion checked here
        // cannot lose its credential to another request before it is made.
        let _one = self.security_lock().await;
        let (changes, mut outcome) = {
            let m = self.metadata();
            plan(&m.security.scram_credentials, deletions, upsertions)
        };
        if !changes.is_empty() {
            let altered: Vec<String> =
                outcome.iter().filter(|(_, r)| r.is_ok()).map(|(u, _)| u.clone()).collect();
            if let Err(e) = self.commit_security(changes).await {
                // Nothing was acknowledged: every user that would have
                // changed is told why.
                for r in outcome.values_mut().filter(|r| r.is_ok()) {
                    *r = Err(e.clone());
                }
                tracing::warn!(error = %e, "persisting SCRAM credentials failed");
            } else {
                tracing::info!(users = ?altered, "altered SCRAM credentials");
            }
        }
        outcome.into_iter().collect()
    }

    /// Kafka's DescribeUserScramCredentials: every user with a credential
    /// (`None` or no names), sorted, or the users named, in the order
    /// named, each once.
    pub fn describe_scram_credentials(&self, users: Option<&[String]>) -> PerUser<CredentialInfos> {
        let m = self.metadata();
        let infos = |c: &BTreeMap<ScramMechanism, ScramCredential>| -> CredentialInfos {
            c.iter().map(|(m, c)| (*m, c.iterations)).collect()
        };
        let Some(users) = users.filter(|u| !u.is_empty()) else {
            return m
                .security
                .scram_credentials
                .iter()
                .map(|(user, c)| (user.clone(), Ok(infos(c))))
                .collect();
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for user in users {
            *counts.entry(user.as_str()).or_default() += 1;
        }
        let mut answered = BTreeSet::new();
        let mut out = Vec::new();
        for user in users.iter().filter(|u| answered.insert(u.as_str())) {
            let result = if counts[user.as_str()] > 1 {
                Err(BrokerError::new(
                    ErrorCode::DuplicateResource,
                    format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}"),
                ))
            } else {
                m.security.scram_credentials.get(user).map(infos).ok_or_else(|| {
                    BrokerError::new(
                        ErrorCode::ResourceNotFound,
                        format!("Attempt to describe a user credential that does not exist: {user}"),
                    )
                })
            };
            out.push((user.clone(), result));
        }
        out
    }
}
