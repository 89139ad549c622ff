//! AlterUserScramCredentials: sets and deletes users' SCRAM credentials
//! (Kafka's `kafka-configs.sh --alter --entity-type users`, `ringtail user
//! create/delete`). The client sends the salted password, never the
//! password; the broker keeps only the keys derived from it
//! (`broker::credentials`). Neither may reach a log: kafka-protocol's
//! request type prints them in its Debug, so it is never logged; the
//! engine's `ScramUpsertion` prints without them. Needs ALTER on the
//! cluster.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use ringtail_engine::broker::credentials::{ScramDeletion, ScramUpsertion};
use ringtail_engine::broker::{BrokerError, ErrorCode};
use ringtail_engine::security::acl::Operation;
use std::collections::BTreeSet;

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let deletions: Vec<ScramDeletion> = request
        .deletions
        .into_iter()
        .map(|d| ScramDeletion { user: d.name.to_string(), mechanism: d.mechanism })
        .collect();
    let upsertions: Vec<ScramUpsertion> = request
        .upsertions
        .into_iter()
        .map(|u| ScramUpsertion {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let altered = match access.cluster(Operation::Alter) {
        true => Ok(ctx.broker.alter_scram_credentials(&deletions, &upsertions).await),
        false => Err(BrokerError::new(
            ErrorCode::ClusterAuthorizationFailed,
            "Not authorized to alter user credentials",
        )),
    };
    let results = match altered {
        Ok(per_user) => per_user,
        // Refused as a whole (not authorized): every user named is told.
        Err(e) => {
            let users: BTreeSet<&str> = deletions
                .iter()
                .map(|d| d.user.as_str())
                .chain(upsertions.iter().map(|u| u.user.as_str()))
                .collect();
            users.into_iter().map(|u| (u.to_string(), Err(e.clone()))).collect()
        }
    };
    let results = results
        .into_iter()
        .map(|(user, result)| {
            let answer = AlterUserScramCredentialsResult::default().with_user(str_bytes(user));
            match result {
                Ok(()) => answer,
                Err(e) => answer.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message))),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
