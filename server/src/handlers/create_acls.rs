//! CreateAcls: adds ACLs (Kafka's `kafka-acls.sh --add`, `ringtail acl
//! add`). Each creation has its own result, in the order sent; one with a
//! code this broker does not know (a resource type other than topic,
//! group and cluster; ANY or MATCH where a binding needs a definite
//! value) is refused with INVALID_REQUEST and the others still apply.
//! Needs ALTER on the cluster, and an authorizer (SECURITY_DISABLED).

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};

/// The binding a creation asks for, or why it cannot be one.
fn binding(c: &AclCreation) -> Result<AclBinding, String> {
    let known = |what: &str, code: i8| format!("unsupported {what} code {code}");
    Ok(AclBinding {
        resource_type: ResourceType::from_code(c.resource_type)
            .ok_or_else(|| known("resource type", c.resource_type))?,
        resource_name: c.resource_name.to_string(),
        pattern_type: PatternType::from_code(c.resource_pattern_type)
            .ok_or_else(|| known("pattern type", c.resource_pattern_type))?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: Operation::from_code(c.operation).ok_or_else(|| known("operation", c.operation))?,
        permission: Permission::from_code(c.permission_type)
            .ok_or_else(|| known("permission type", c.permission_type))?,
    })
}

fn failed(error_code: i16, message: String) -> AclCreationResult {
    AclCreationResult::default().with_error_code(error_code).with_error_message(Some(str_bytes(message)))
}

pub async fn handle(ctx: &Context, access: Access<'_>, request: CreateAclsRequest) -> CreateAclsResponse {
    if let Some((error_code, why)) = access.acl_refusal(Operation::Alter) {
        let results = request.creations.iter().map(|_| failed(error_code, why.to_string())).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let parsed: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let outcomes: Vec<Result<(), (i16, String)>> = ctx
        .broker
        .create_acls(valid)
        .await
        .into_iter()
        .map(|r| r.map_err(|e| (code(&e), e.message)))
        .collect();
    let mut outcomes = outcomes.into_iter();
    let results = parsed
        .into_iter()
        .map(|p| match p {
            Err(problem) => failed(ResponseError::InvalidRequest.code(), problem),
            Ok(_) => match outcomes.next() {
                Some(Ok(())) => AclCreationResult::default().with_error_message(None),
                Some(Err((error_code, message))) => failed(error_code, message),
                None => failed(ResponseError::UnknownServerError.code(), "no outcome".into()),
            },
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
