//! DeleteAcls: removes the ACLs each filter selects (Kafka's
//! `kafka-acls.sh --remove`, `ringtail acl remove`) and says which, per
//! filter, in the order sent. Needs ALTER on the cluster, and an
//! authorizer (SECURITY_DISABLED).

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::{AclBinding, AclFilter, Operation};

fn failed(error_code: i16, message: String) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default().with_error_code(error_code).with_error_message(Some(str_bytes(message)))
}

fn matching(acl: AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_error_message(None)
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(str_bytes(acl.resource_name))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(str_bytes(acl.principal))
        .with_host(str_bytes(acl.host))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}

pub async fn handle(ctx: &Context, access: Access<'_>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    if let Some((error_code, why)) = access.acl_refusal(Operation::Alter) {
        let results = request.filters.iter().map(|_| failed(error_code, why.to_string())).collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let parsed: Vec<Result<AclFilter, String>> = request
        .filters
        .into_iter()
        .map(|f| {
            AclFilter::from_codes(
                f.resource_type_filter,
                f.resource_name_filter.map(|s| s.to_string()),
                f.pattern_type_filter,
                f.principal_filter.map(|s| s.to_string()),
                f.host_filter.map(|s| s.to_string()),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let outcomes: Vec<Result<Vec<AclBinding>, (i16, String)>> = ctx
        .broker
        .delete_acls(&valid)
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
                Some(Ok(deleted)) => DeleteAclsFilterResult::default()
                    .with_error_message(None)
                    .with_matching_acls(deleted.into_iter().map(matching).collect()),
                Some(Err((error_code, message))) => failed(error_code, message),
                None => failed(ResponseError::UnknownServerError.code(), "no outcome".into()),
            },
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
