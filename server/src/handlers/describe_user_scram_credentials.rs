//! DescribeUserScramCredentials: which users have SCRAM credentials, with
//! each mechanism's iteration count (never salts or keys). No names, or
//! null, asks for every user.

use super::{code, str_bytes, Context};
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};

pub fn handle(
    ctx: &Context,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
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
