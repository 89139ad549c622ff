//! DescribeUserScramCredentials: which users have SCRAM credentials, with
//! each mechanism's iteration count (never salts or keys). No names, or
//! null, asks for every user. Needs DESCRIBE on the cluster.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !access.cluster(Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Not authorized to describe user credentials")));
    }
    let named: Option<Vec<String>> =
        request.users.map(|users| users.into_iter().map(|u| u.name.to_string()).collect());
    let results = ctx
        .broker
        .describe_scram_credentials(named.as_deref())
        .into_iter()
        .map(|(user, result)| {
            let answer = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
            match result {
                Ok(infos) => answer.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(mechanism, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism.code())
                                .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
                        })
                        .collect(),
                ),
                Err(e) => answer.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message))),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
