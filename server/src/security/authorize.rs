//! Who may do what. Each request carries its caller (principal and
//! address); handlers ask an `Access` before they act, per resource, as
//! Kafka's KafkaApis asks its authorizer, and answer a refusal with
//! Kafka's *_AUTHORIZATION_FAILED code for that resource, having changed
//! nothing.
//!
//! With `authorizer = "none"` (the default, Kafka without
//! `authorizer.class.name`) every request is allowed. With `"acl"`, a
//! request is allowed to super users and otherwise as the broker's ACLs
//! decide (`security::acl`): nothing without an ACL
//! (`allow.everyone.if.no.acl.found=false`).

use crate::handlers::Context;
use ringtail_engine::security::acl::{Authorizer, Operation, Requester, ResourceType, CLUSTER_NAME};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Who sent a request, as ACLs name them: `User:NAME` and the client's IP
/// address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: Arc<str>,
    pub host: String,
}

impl Caller {
    /// A caller with no address (a request not from a socket: tests).
    pub fn anonymous() -> Caller {
        Caller { principal: crate::security::sasl::ANONYMOUS.into(), host: String::new() }
    }
}

/// One request's questions to the authorizer.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    ctx: &'a Context,
    caller: &'a Caller,
}

impl<'a> Access<'a> {
    pub fn new(ctx: &'a Context, caller: &'a Caller) -> Access<'a> {
        Access { ctx, caller }
    }

    /// Who is asking.
    pub fn principal(&self) -> &'a Arc<str> {
        &self.caller.principal
    }

    /// Whether an authorizer decides at all (`authorizer = "acl"`).
    pub fn enabled(&self) -> bool {
        self.ctx.authorizer.is_some()
    }

    /// Why an ACL request cannot be served, as Kafka answers it: no
    /// authorizer (SECURITY_DISABLED: ACLs stored now would protect
    /// nothing, and a user would believe they do), or no permission for
    /// `operation` on the cluster.
    pub fn acl_refusal(&self, operation: Operation) -> Option<(i16, &'static str)> {
        use kafka_protocol::ResponseError;
        if !self.enabled() {
            let why = "No authorizer is configured: start the broker with authorizer = \"acl\"";
            return Some((ResponseError::SecurityDisabled.code(), why));
        }
        if !self.cluster(operation) {
            return Some((ResponseError::ClusterAuthorizationFailed.code(), "Not authorized to manage ACLs"));
        }
        None
    }

    fn requester(&self) -> Requester<'a> {
        Requester { principal: &self.caller.principal, host: &self.caller.host }
    }

    /// May the caller do `operation` on this resource? A refusal is
    /// counted and logged (at debug: a client retrying would flood info).
    pub fn allows(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let Some(authorizer) = &self.ctx.authorizer else { return true };
        let allowed = self.ctx.broker.authorize(authorizer, self.requester(), operation, resource_type, name);
        if !allowed {
            self.denied(operation, resource_type, name);
        }
        allowed
    }

    pub fn topic(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    pub fn group(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Group, name)
    }

    pub fn cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// `allows` without counting a refusal: for lists, which leave out
    /// what the caller may not describe (no failed request), and for the
    /// first of two ways to be allowed.
    pub fn quietly(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let Some(authorizer) = &self.ctx.authorizer else { return true };
        self.ctx.broker.authorize(authorizer, self.requester(), operation, resource_type, name)
    }

    /// May the caller create topic `name`: CREATE on the cluster or on the
    /// topic, as Kafka asks.
    pub fn create_topic(&self, name: &str) -> bool {
        self.quietly(Operation::Create, ResourceType::Cluster, CLUSTER_NAME)
            || self.topic(Operation::Create, name)
    }

    /// May the caller do `operation` on some resource of `resource_type`
    /// (Kafka's authorizeByResourceType)?
    pub fn any(&self, operation: Operation, resource_type: ResourceType) -> bool {
        let Some(authorizer) = &self.ctx.authorizer else { return true };
        let allowed = self.ctx.broker.authorize_any(authorizer, self.requester(), operation, resource_type);
        if !allowed {
            self.denied(operation, resource_type, "*");
        }
        allowed
    }

    fn denied(&self, operation: Operation, resource_type: ResourceType, name: &str) {
        self.ctx.metrics.authorization_denials.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            principal = %self.caller.principal,
            host = %self.caller.host,
            %operation,
            resource = %resource_type,
            name,
            "request denied"
        );
    }
}

/// The authorizer a config asks for: `None` allows everything.
pub fn authorizer(kind: AuthorizerKind, super_users: &[String]) -> Option<Authorizer> {
    match kind {
        AuthorizerKind::None => None,
        AuthorizerKind::Acl => Some(Authorizer { super_users: super_users.iter().cloned().collect() }),
    }
}

/// `authorizer = "none" | "acl"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthorizerKind {
    #[default]
    None,
    Acl,
}

impl std::str::FromStr for AuthorizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<AuthorizerKind, String> {
        match s {
            "none" => Ok(AuthorizerKind::None),
            "acl" => Ok(AuthorizerKind::Acl),
            other => Err(format!("expected none or acl, got {other:?}")),
        }
    }
}
