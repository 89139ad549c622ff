//! Users' SCRAM credentials: AlterUserScramCredentials and
//! DescribeUserScramCredentials, as Kafka's Admin client sends them. The
//! caller salts the password (`ScramMechanism::salted_password`); it never
//! leaves this machine.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;
use ringtail_engine::security::scram::ScramMechanism;
use std::fmt;

use super::cluster::Client;
use super::error::{check, ClientError, Result};

/// One change of a user's credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum ScramAlteration {
    /// Sets the user's credential for `mechanism`.
    Upsert {
        user: String,
        mechanism: ScramMechanism,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
    /// Removes it.
    Delete { user: String, mechanism: ScramMechanism },
}

impl ScramAlteration {
    pub fn user(&self) -> &str {
        match self {
            ScramAlteration::Upsert { user, .. } | ScramAlteration::Delete { user, .. } => user,
        }
    }
}

impl fmt::Debug for ScramAlteration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The salted password is as good as the password: never printed.
        match self {
            ScramAlteration::Upsert { user, mechanism, iterations, .. } => f
                .debug_struct("Upsert")
                .field("user", user)
                .field("mechanism", mechanism)
                .field("iterations", iterations)
                .finish_non_exhaustive(),
            ScramAlteration::Delete { user, mechanism } => {
                f.debug_struct("Delete").field("user", user).field("mechanism", mechanism).finish()
            }
        }
    }
}

/// A user's credentials as the broker describes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserScramCredentials {
    pub user: String,
    /// Each mechanism the user has a credential for, with its iteration
    /// count. A mechanism code this client does not know is left out.
    pub credentials: Vec<(ScramMechanism, i32)>,
}

impl Client {
    /// Applies `alterations` in one request (Kafka applies a request's
    /// alterations together). Fails with the first user's error, if any;
    /// other users' alterations may have been applied.
    pub async fn alter_scram_credentials(&self, alterations: &[ScramAlteration]) -> Result<()> {
        let request = |_version| {
            let mut request = AlterUserScramCredentialsRequest::default();
            for a in alterations {
                match a {
                    ScramAlteration::Upsert { user, mechanism, iterations, salt, salted_password } => {
                        request.upsertions.push(
                            ScramCredentialUpsertion::default()
                                .with_name(StrBytes::from_string(user.clone()))
                                .with_mechanism(mechanism.code())
                                .with_iterations(*iterations)
                                .with_salt(salt.clone().into())
                                .with_salted_password(salted_password.clone().into()),
                        )
                    }
                    ScramAlteration::Delete { user, mechanism } => request.deletions.push(
                        ScramCredentialDeletion::default()
                            .with_name(StrBytes::from_string(user.clone()))
                            .with_mechanism(mechanism.code()),
                    ),
                }
            }
            request
        };
        // Not retried over a broken connection: a deletion applied before
        // the break would come back as RESOURCE_NOT_FOUND.
        let response = self
            .with_retries(None, false, || async {
                self.controller_connection().await?.request(request).await
            })
            .await?;
        let mut users: Vec<&str> = alterations.iter().map(|a| a.user()).collect();
        users.sort_unstable();
        users.dedup();
        for user in users {
            let result = response.results.iter().find(|r| r.user.as_str() == user).ok_or_else(|| {
                ClientError::Protocol {
                    addr: "controller".to_owned(),
                    reason: format!("AlterUserScramCredentials response does not mention user {user:?}"),
                }
            })?;
            check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
                format!("alter SCRAM credentials of user {user:?}")
            })?;
        }
        Ok(())
    }

    /// The credentials of `users`, or of every user that has one (sorted
    /// by name) if `None`. Fails with the first user's error (a user with
    /// no credential is RESOURCE_NOT_FOUND).
    pub async fn describe_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<Vec<UserScramCredentials>> {
        let connection = self.any_connection().await?;
        let response = connection
            .request(|_version| {
                let names = users.map(|users| {
                    users
                        .iter()
                        .map(|u| UserName::default().with_name(StrBytes::from_string(u.to_string())))
                        .collect()
                });
                DescribeUserScramCredentialsRequest::default().with_users(names)
            })
            .await?;
        check(response.error_code, response.error_message.as_ref().map(|m| m.as_str()), || {
            "describe SCRAM credentials".to_string()
        })?;
        let mut out = Vec::with_capacity(response.results.len());
        for result in &response.results {
            let user = result.user.to_string();
            check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
                format!("describe SCRAM credentials of user {user:?}")
            })?;
            let credentials = result
                .credential_infos
                .iter()
                .filter_map(|c| Some((ScramMechanism::from_code(c.mechanism)?, c.iterations)))
                .collect();
            out.push(UserScramCredentials { user, credentials });
        }
        if users.is_none() {
            out.sort_by(|a, b| a.user.cmp(&b.user));
        }
        Ok(out)
    }
}
