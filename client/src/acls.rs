//! ACLs: CreateAcls, DescribeAcls and DeleteAcls, as Kafka's Admin client
//! sends them (`createAcls`, `describeAcls`, `deleteAcls`). Bindings and
//! filters are the engine's ACL model (`ringtail_engine::security::acl`),
//! so a binding's codes are Kafka's.
//!
//! The versions are 1..=3, the highest the broker offers: 1 brings
//! pattern types (KIP-290), the oldest kafka-protocol decodes; 2 is
//! flexible; 3 adds the USER resource type, which this client never sends.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
pub use ringtail_engine::security::acl::{
    AclBinding, AclFilter, Operation, PatternFilter, PatternType, Permission, ResourceType,
};

use super::cluster::Client;
use super::error::{check, ClientError, Result};

/// Kafka's code for ANY in a filter's resource type, operation and
/// permission fields.
const FILTER_ANY: i8 = 1;

/// What DescribeAcls answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribedAcls {
    /// The bindings the filter selected, sorted.
    pub acls: Vec<AclBinding>,
    /// How many more it selected that have a code this client does not
    /// know (a Kafka broker's TRANSACTIONAL_ID or USER ACLs): left out.
    pub unrecognised: usize,
}

/// What one DeleteAcls filter removed.
#[derive(Debug, Default)]
pub struct DeletedAcls {
    /// The bindings the broker deleted, sorted.
    pub deleted: Vec<AclBinding>,
    /// Bindings it deleted that have a code this client does not know.
    pub unrecognised: usize,
    /// Bindings the filter matched but the broker did not delete, each
    /// as the broker's error (its context names the binding).
    pub failed: Vec<ClientError>,
}

/// `ALLOW User:alice READ on TOPIC LITERAL "orders" from host *`: one
/// binding, for messages.
pub fn describe_binding(acl: &AclBinding) -> String {
    format!(
        "{} {} {} on {} {} {:?} from host {}",
        acl.permission,
        acl.principal,
        acl.operation,
        acl.resource_type,
        acl.pattern_type,
        acl.resource_name,
        acl.host
    )
}

/// A binding from its wire codes, if this client knows every one.
fn binding_from_codes(
    resource_type: i8,
    resource_name: &StrBytes,
    pattern_type: i8,
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> Option<AclBinding> {
    Some(AclBinding {
        resource_type: ResourceType::from_code(resource_type)?,
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type)?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(operation)?,
        permission: Permission::from_code(permission)?,
    })
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A filter's fields as their wire codes: `(resource type, name, pattern
/// type, principal, host, operation, permission)`.
type FilterCodes = (i8, Option<StrBytes>, i8, Option<StrBytes>, Option<StrBytes>, i8, i8);

fn filter_codes(filter: &AclFilter) -> FilterCodes {
    (
        filter.resource_type.map_or(FILTER_ANY, ResourceType::code),
        filter.resource_name.as_deref().map(str_bytes),
        filter.pattern.code(),
        filter.principal.as_deref().map(str_bytes),
        filter.host.as_deref().map(str_bytes),
        filter.operation.map_or(FILTER_ANY, Operation::code),
        filter.permission.map_or(FILTER_ANY, Permission::code),
    )
}

impl Client {
    /// Creates `acls` in one request: each binding's outcome, in the order
    /// given (an ACL that exists already is created again without error,
    /// as Kafka does). `Err` only when the request as a whole failed.
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let request = |_version| {
            let creations = acls
                .iter()
                .map(|acl| {
                    AclCreation::default()
                        .with_resource_type(acl.resource_type.code())
                        .with_resource_name(str_bytes(&acl.resource_name))
                        .with_resource_pattern_type(acl.pattern_type.code())
                        .with_principal(str_bytes(&acl.principal))
                        .with_host(str_bytes(&acl.host))
                        .with_operation(acl.operation.code())
                        .with_permission_type(acl.permission.code())
                })
                .collect();
            CreateAclsRequest::default().with_creations(creations)
        };
        // Creating an ACL twice changes nothing, so a request lost with its
        // connection is safe to send again.
        let response = self
            .with_retries(None, true, || async { self.controller_connection().await?.request(request).await })
            .await?;
        if response.results.len() != acls.len() {
            return Err(ClientError::Protocol {
                addr: "controller".to_owned(),
                reason: format!(
                    "CreateAcls response has {} results for {} creations",
                    response.results.len(),
                    acls.len()
                ),
            });
        }
        Ok(acls
            .iter()
            .zip(&response.results)
            .map(|(acl, result)| {
                check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
                    format!("create ACL {}", describe_binding(acl))
                })
            })
            .collect())
    }

    /// The ACLs `filter` selects.
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<DescribedAcls> {
        let (resource_type, name, pattern_type, principal, host, operation, permission) =
            filter_codes(filter);
        let response = self
            .with_retries(None, true, || async {
                let connection = self.any_connection().await?;
                connection
                    .request(|_version| {
                        DescribeAclsRequest::default()
                            .with_resource_type_filter(resource_type)
                            .with_resource_name_filter(name.clone())
                            .with_pattern_type_filter(pattern_type)
                            .with_principal_filter(principal.clone())
                            .with_host_filter(host.clone())
                            .with_operation(operation)
                            .with_permission_type(permission)
                    })
                    .await
            })
            .await?;
        check(response.error_code, response.error_message.as_ref().map(|m| m.as_str()), || {
            "describe ACLs".to_owned()
        })?;
        let mut described = DescribedAcls::default();
        for resource in &response.resources {
            for acl in &resource.acls {
                let binding = binding_from_codes(
                    resource.resource_type,
                    &resource.resource_name,
                    resource.pattern_type,
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                );
                match binding {
                    Some(binding) => described.acls.push(binding),
                    None => described.unrecognised += 1,
                }
            }
        }
        described.acls.sort();
        Ok(described)
    }

    /// Deletes the ACLs each of `filters` selects, in one request: per
    /// filter, in the order given, what it removed or why it failed.
    /// `Err` only when the request as a whole failed.
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Result<DeletedAcls>>> {
        let request = |_version| {
            let filters = filters
                .iter()
                .map(|filter| {
                    let (resource_type, name, pattern_type, principal, host, operation, permission) =
                        filter_codes(filter);
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(resource_type)
                        .with_resource_name_filter(name)
                        .with_pattern_type_filter(pattern_type)
                        .with_principal_filter(principal)
                        .with_host_filter(host)
                        .with_operation(operation)
                        .with_permission_type(permission)
                })
                .collect();
            DeleteAclsRequest::default().with_filters(filters)
        };
        // Not retried over a broken connection: what a lost request deleted
        // would not be reported by the second.
        let response = self
            .with_retries(None, false, || async {
                self.controller_connection().await?.request(request).await
            })
            .await?;
        if response.filter_results.len() != filters.len() {
            return Err(ClientError::Protocol {
                addr: "controller".to_owned(),
                reason: format!(
                    "DeleteAcls response has {} results for {} filters",
                    response.filter_results.len(),
                    filters.len()
                ),
            });
        }
        Ok(response
            .filter_results
            .iter()
            .map(|result| {
                check(result.error_code, result.error_message.as_ref().map(|m| m.as_str()), || {
                    "delete ACLs".to_owned()
                })?;
                let mut deleted = DeletedAcls::default();
                for m in &result.matching_acls {
                    let binding = binding_from_codes(
                        m.resource_type,
                        &m.resource_name,
                        m.pattern_type,
                        &m.principal,
                        &m.host,
                        m.operation,
                        m.permission_type,
                    );
                    if m.error_code != 0 {
                        let what = binding.as_ref().map_or_else(
                            || format!("an ACL on resource {:?}", m.resource_name.as_str()),
                            describe_binding,
                        );
                        let message = m.error_message.as_ref().map(|s| s.as_str());
                        deleted.failed.push(ClientError::kafka(
                            format!("delete ACL {what}"),
                            m.error_code,
                            message,
                        ));
                    } else {
                        match binding {
                            Some(binding) => deleted.deleted.push(binding),
                            None => deleted.unrecognised += 1,
                        }
                    }
                }
                deleted.deleted.sort();
                Ok(deleted)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filter's `None` fields go out as ANY, its pattern filter as
    /// Kafka's MATCH, ANY or the exact pattern type's code.
    #[test]
    fn filters_go_out_as_kafkas_codes() {
        let any = filter_codes(&AclFilter::default());
        assert_eq!(any, (1, None, 1, None, None, 1, 1));
        let exact = filter_codes(&AclFilter {
            resource_type: Some(ResourceType::Topic),
            resource_name: Some("orders".into()),
            pattern: PatternFilter::Exactly(PatternType::Prefixed),
            principal: Some("User:alice".into()),
            host: Some("*".into()),
            operation: Some(Operation::Read),
            permission: Some(Permission::Deny),
        });
        assert_eq!(
            exact,
            (2, Some(str_bytes("orders")), 4, Some(str_bytes("User:alice")), Some(str_bytes("*")), 3, 2)
        );
        assert_eq!(filter_codes(&AclFilter { pattern: PatternFilter::Match, ..AclFilter::default() }).2, 2);
    }

    /// A binding with a code this client does not know (Kafka's
    /// TRANSACTIONAL_ID resource type, 5) is not made up.
    #[test]
    fn unknown_codes_make_no_binding() {
        let s = str_bytes;
        let known = binding_from_codes(3, &s("billing"), 3, &s("User:a"), &s("*"), 3, 3).unwrap();
        assert_eq!(describe_binding(&known), "ALLOW User:a READ on GROUP LITERAL \"billing\" from host *");
        assert_eq!(binding_from_codes(5, &s("tx"), 3, &s("User:a"), &s("*"), 4, 3), None);
        assert_eq!(binding_from_codes(2, &s("t"), 3, &s("User:a"), &s("*"), 0, 3), None);
    }
}
