//! Kafka's ACLs, kept in the cluster metadata: CreateAcls, DescribeAcls,
//! DeleteAcls, and the authorization decisions made against them.
//!
//! As with credentials, a request's changes are made durable together
//! before any is acknowledged: in the metadata journal on a single node,
//! through the controller quorum in a cluster (`security_changes`).
//! Creating an ACL that exists succeeds and changes nothing; a filter
//! that matches nothing deletes nothing and is no error (as Kafka).

use super::Broker;
use crate::error::{BrokerError, ErrorCode};
use crate::io::Disk;
use crate::security::acl::{AclBinding, AclFilter, Authorizer, Operation, Requester, ResourceType};
use crate::security::state::SecurityChange;
use std::collections::BTreeSet;

impl<D: Disk> Broker<D> {
    /// Kafka's CreateAcls: each binding's outcome, in the order given. A
    /// binding that cannot match anything is refused (INVALID_REQUEST);
    /// the others are persisted together.
    pub async fn create_acls(&self, acls: Vec<AclBinding>) -> Vec<Result<(), BrokerError>> {
        let mut outcome: Vec<Result<(), BrokerError>> = acls
            .iter()
            .map(|acl| match acl.invalid() {
                Some(problem) => Err(BrokerError::new(ErrorCode::InvalidRequest, problem)),
                None => Ok(()),
            })
            .collect();
        let _one = self.security_lock().await;
        let new: BTreeSet<AclBinding> = {
            let m = self.metadata();
            let valid = acls.iter().zip(&outcome).filter(|(_, r)| r.is_ok()).map(|(acl, _)| acl);
            valid.filter(|acl| !m.security.acls.contains(acl)).cloned().collect()
        };
        if new.is_empty() {
            return outcome;
        }
        let count = new.len();
        let changes = new.into_iter().map(|acl| SecurityChange::PutAcl { acl }).collect();
        if let Err(e) = self.commit_security(changes).await {
            tracing::warn!(error = %e, "persisting ACLs failed");
            for r in outcome.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        } else {
            tracing::info!(count, "created ACLs");
        }
        outcome
    }

    /// Kafka's DescribeAcls: the bindings `filter` selects, sorted.
    pub fn describe_acls(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.metadata().security.acls.iter().filter(|acl| filter.matches(acl)).cloned().collect()
    }

    /// Kafka's DeleteAcls: per filter, the bindings it removed. A binding
    /// matched by several filters is reported under each.
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Vec<Result<Vec<AclBinding>, BrokerError>> {
        let _one = self.security_lock().await;
        let matched: Vec<Vec<AclBinding>> = {
            let m = self.metadata();
            filters
                .iter()
                .map(|f| m.security.acls.iter().filter(|acl| f.matches(acl)).cloned().collect())
                .collect()
        };
        let doomed: BTreeSet<&AclBinding> = matched.iter().flatten().collect();
        if doomed.is_empty() {
            return matched.into_iter().map(Ok).collect();
        }
        let count = doomed.len();
        let changes = doomed.into_iter().map(|acl| SecurityChange::DeleteAcl { acl: acl.clone() }).collect();
        if let Err(e) = self.commit_security(changes).await {
            tracing::warn!(error = %e, "persisting ACL deletions failed");
            return matched.iter().map(|_| Err(e.clone())).collect();
        }
        tracing::info!(count, "deleted ACLs");
        matched.into_iter().map(Ok).collect()
    }

    /// May `who` do `operation` on the resource `(resource_type, name)`,
    /// under `authorizer` and the ACLs this broker holds?
    pub fn authorize(
        &self,
        authorizer: &Authorizer,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        authorizer.allows(&self.metadata().security.acls, who, operation, resource_type, name)
    }

    /// May `who` do `operation` on some resource of `resource_type`?
    pub fn authorize_any(
        &self,
        authorizer: &Authorizer,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        authorizer.allows_any(&self.metadata().security.acls, who, operation, resource_type)
    }
}
