//! DescribeAcls: the ACLs a filter selects (Kafka's `kafka-acls.sh
//! --list`, `ringtail acl list`), grouped by resource pattern as Kafka
//! answers. Needs DESCRIBE on the cluster, and an authorizer
//! (SECURITY_DISABLED).

use super::{str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::{AclBinding, AclFilter, Operation};

pub fn handle(ctx: &Context, access: Access<'_>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    if let Some((error_code, why)) = access.acl_refusal(Operation::Describe) {
        return DescribeAclsResponse::default()
            .with_error_code(error_code)
            .with_error_message(Some(str_bytes(why)));
    }
    let filter = AclFilter::from_codes(
        request.resource_type_filter,
        request.resource_name_filter.map(|s| s.to_string()),
        request.pattern_type_filter,
        request.principal_filter.map(|s| s.to_string()),
        request.host_filter.map(|s| s.to_string()),
        request.operation,
        request.permission_type,
    );
    match filter {
        Err(problem) => DescribeAclsResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(problem))),
        Ok(filter) => {
            DescribeAclsResponse::default().with_resources(grouped(ctx.broker.describe_acls(&filter)))
        }
    }
}

/// Bindings (sorted, so a resource's are adjacent) as one entry per
/// resource pattern.
fn grouped(acls: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut last: Option<(i8, String, i8)> = None;
    for acl in acls {
        let key = (acl.resource_type.code(), acl.resource_name.clone(), acl.pattern_type.code());
        if last.as_ref() != Some(&key) {
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(key.0)
                    .with_resource_name(str_bytes(key.1.clone()))
                    .with_pattern_type(key.2),
            );
            last = Some(key);
        }
        let description = AclDescription::default()
            .with_principal(str_bytes(acl.principal))
            .with_host(str_bytes(acl.host))
            .with_operation(acl.operation.code())
            .with_permission_type(acl.permission.code());
        if let Some(resource) = resources.last_mut() {
            resource.acls.push(description);
        }
    }
    resources
}
