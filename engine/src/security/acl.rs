//! Kafka's ACL model and how a request is decided against it, as Kafka's
//! StandardAuthorizer decides (KIP-11, KIP-290 for prefixed patterns):
//!
//! - An ACL binds a resource pattern (type; name, `*` for every name of
//!   that type under a LITERAL pattern, or a name prefix under PREFIXED)
//!   to an entry: principal (`User:NAME`, or `User:*` for everyone), host
//!   (an address, or `*`), operation, and ALLOW or DENY.
//! - A super user is allowed everything.
//! - A DENY that matches wins over any ALLOW.
//! - Otherwise an ALLOW that matches the operation, or an operation that
//!   implies it, allows: READ, WRITE, DELETE and ALTER imply DESCRIBE;
//!   ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL implies every operation.
//! - Otherwise the request is denied (Kafka's default with
//!   `allow.everyone.if.no.acl.found=false`).
//!
//! Pure: the bindings and the request come in, a decision goes out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Kafka's resource type codes (ResourceType.java).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
}

impl ResourceType {
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<ResourceType> {
        [ResourceType::Topic, ResourceType::Group, ResourceType::Cluster]
            .into_iter()
            .find(|t| t.code() == code)
    }
}

/// The one cluster resource's name, as Kafka names it.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A LITERAL pattern with this name matches every resource of its type.
pub const WILDCARD: &str = "*";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<PatternType> {
        [PatternType::Literal, PatternType::Prefixed].into_iter().find(|p| p.code() == code)
    }
}

/// Kafka's operation codes (AclOperation.java).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl Operation {
    const ALL_OPERATIONS: [Operation; 11] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
    ];

    pub fn code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
        }
    }

    pub fn from_code(code: i8) -> Option<Operation> {
        Operation::ALL_OPERATIONS.into_iter().find(|o| o.code() == code)
    }

    /// Whether an ALLOW of `self` allows `wanted`.
    fn allows(self, wanted: Operation) -> bool {
        self == wanted
            || self == Operation::All
            || (wanted == Operation::Describe
                && matches!(self, Operation::Read | Operation::Write | Operation::Delete | Operation::Alter))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny,
    Allow,
}

impl Permission {
    pub fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn from_code(code: i8) -> Option<Permission> {
        [Permission::Deny, Permission::Allow].into_iter().find(|p| p.code() == code)
    }
}

/// One ACL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Whether this binding is about `name` (a resource of its type).
    fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == WILDCARD || self.resource_name == name,
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == WILDCARD || self.host == host)
    }

    /// What Kafka refuses in CreateAcls: `None` if the binding is valid.
    pub fn invalid(&self) -> Option<String> {
        if self.resource_name.is_empty() {
            return Some("the resource name is empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Some(format!("the cluster resource is named {CLUSTER_NAME}"));
        }
        if self.pattern_type == PatternType::Prefixed && self.resource_name == WILDCARD {
            return Some("a PREFIXED pattern cannot be the wildcard '*'".into());
        }
        let Some((kind, name)) = self.principal.split_once(':') else {
            return Some(format!("principal {:?} is not TYPE:NAME", self.principal));
        };
        if kind != "User" || name.is_empty() {
            return Some(format!("principal {:?} is not User:NAME", self.principal));
        }
        if self.host.is_empty() {
            return Some("the host is empty (use '*' for every host)".into());
        }
        None
    }
}

/// Who is asking, from where.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    pub principal: &'a str,
    pub host: &'a str,
}

/// Decides requests against a set of bindings and the super users.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorizer {
    pub super_users: BTreeSet<String>,
}

impl Authorizer {
    /// May `who` do `operation` on the resource `(resource_type, name)`?
    pub fn allows<'a>(
        &self,
        acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.super_users.contains(who.principal) {
            return true;
        }
        let relevant = move |acl: &&AclBinding| {
            acl.covers(resource_type, name) && acl.applies_to(who.principal, who.host)
        };
        let denied = acls.clone().into_iter().filter(relevant).any(|acl| {
            acl.permission == Permission::Deny
                && (acl.operation == operation || acl.operation == Operation::All)
        });
        if denied {
            return false;
        }
        acls.into_iter()
            .filter(relevant)
            .any(|acl| acl.permission == Permission::Allow && acl.operation.allows(operation))
    }
}

/// Kafka's names for the codes above (as kafka-acls.sh prints them), and
/// their parsing, case and `_`/`-` aside, for the command line.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal,)* }) => {
        impl $ty {
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            pub fn from_name(name: &str) -> Option<$ty> {
                let wanted: String =
                    name.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_uppercase();
                [$($ty::$variant,)*].into_iter().find(|v| v.name().replace('_', "") == wanted)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

names!(ResourceType { Topic => "TOPIC", Group => "GROUP", Cluster => "CLUSTER", });
names!(PatternType { Literal => "LITERAL", Prefixed => "PREFIXED", });
names!(Permission { Deny => "DENY", Allow => "ALLOW", });
names!(Operation {
    All => "ALL",
    Read => "READ",
    Write => "WRITE",
    Create => "CREATE",
    Delete => "DELETE",
    Alter => "ALTER",
    Describe => "DESCRIBE",
    ClusterAction => "CLUSTER_ACTION",
    DescribeConfigs => "DESCRIBE_CONFIGS",
    AlterConfigs => "ALTER_CONFIGS",
    IdempotentWrite => "IDEMPOTENT_WRITE",
});

/// Which bindings DescribeAcls and DeleteAcls select (Kafka's
/// AclBindingFilter): every field that is `None` matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

/// How a filter's resource name is compared with a binding's pattern.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type; the name, if given, equal to the binding's.
    #[default]
    Any,
    /// The bindings that would apply to a resource of that name: the
    /// literal name, the wildcard, and prefixes of it (Kafka's MATCH).
    Match,
    /// Only this pattern type; the name, if given, equal to the binding's.
    Exactly(PatternType),
}

/// Kafka's codes for ANY in filters (and UNKNOWN, refused everywhere).
const CODE_ANY: i8 = 1;
const CODE_MATCH: i8 = 2;

impl PatternFilter {
    pub fn code(self) -> i8 {
        match self {
            PatternFilter::Any => CODE_ANY,
            PatternFilter::Match => CODE_MATCH,
            PatternFilter::Exactly(p) => p.code(),
        }
    }
}

/// The value of a filter field: ANY is `None`; an unknown code is refused.
fn filter_code<T>(code: i8, what: &str, parse: impl Fn(i8) -> Option<T>) -> Result<Option<T>, String> {
    if code == CODE_ANY {
        return Ok(None);
    }
    parse(code).map(Some).ok_or_else(|| format!("unsupported {what} code {code}"))
}

impl AclFilter {
    /// A filter from its wire codes (DescribeAcls, DeleteAcls), or why it
    /// is refused.
    #[allow(clippy::too_many_arguments)]
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<String>,
        pattern_type: i8,
        principal: Option<String>,
        host: Option<String>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, String> {
        let pattern = match pattern_type {
            CODE_ANY => PatternFilter::Any,
            CODE_MATCH => PatternFilter::Match,
            code => PatternFilter::Exactly(
                PatternType::from_code(code)
                    .ok_or_else(|| format!("unsupported pattern type code {code}"))?,
            ),
        };
        Ok(AclFilter {
            resource_type: filter_code(resource_type, "resource type", ResourceType::from_code)?,
            resource_name,
            pattern,
            principal,
            host,
            operation: filter_code(operation, "operation", Operation::from_code)?,
            permission: filter_code(permission, "permission type", Permission::from_code)?,
        })
    }

    pub fn matches(&self, acl: &AclBinding) -> bool {
        fn field<T: PartialEq>(filter: &Option<T>, value: &T) -> bool {
            filter.as_ref().is_none_or(|f| f == value)
        }
        let named = |name: &String| self.resource_name.as_ref().is_none_or(|n| n == name);
        let pattern = match self.pattern {
            PatternFilter::Any => named(&acl.resource_name),
            PatternFilter::Exactly(p) => acl.pattern_type == p && named(&acl.resource_name),
            PatternFilter::Match => match &self.resource_name {
                None => true,
                Some(name) => acl.covers(acl.resource_type, name),
            },
        };
        pattern
            && field(&self.resource_type, &acl.resource_type)
            && field(&self.principal, &acl.principal)
            && field(&self.host, &acl.host)
            && field(&self.operation, &acl.operation)
            && field(&self.permission, &acl.permission)
    }
}

impl Authorizer {
    /// May `who` do `operation` on some resource of `resource_type`?
    /// Kafka's authorizeByResourceType, which an idempotent producer needs
    /// (WRITE on any topic, KIP-679): an ALLOW that no DENY of the same
    /// reach overrides. A DENY covers an ALLOW when it applies to every
    /// name the ALLOW does: the wildcard, a prefix of the ALLOW's name or
    /// prefix, or the same literal name.
    pub fn allows_any<'a>(
        &self,
        acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if self.super_users.contains(who.principal) {
            return true;
        }
        let mine = move |acl: &&AclBinding| {
            acl.resource_type == resource_type && acl.applies_to(who.principal, who.host)
        };
        let denies: Vec<&AclBinding> = acls
            .clone()
            .into_iter()
            .filter(mine)
            .filter(|acl| {
                acl.permission == Permission::Deny
                    && (acl.operation == operation || acl.operation == Operation::All)
            })
            .collect();
        let overridden = |allow: &AclBinding| {
            denies.iter().any(|deny| match deny.pattern_type {
                PatternType::Literal => {
                    deny.resource_name == WILDCARD
                        || (allow.pattern_type == PatternType::Literal
                            && deny.resource_name == allow.resource_name)
                }
                PatternType::Prefixed => {
                    allow.resource_name != WILDCARD && allow.resource_name.starts_with(&deny.resource_name)
                }
            })
        };
        acls.into_iter().filter(mine).any(|acl| {
            acl.permission == Permission::Allow && acl.operation.allows(operation) && !overridden(acl)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource: (ResourceType, &str, PatternType),
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: resource.0,
            resource_name: resource.1.into(),
            pattern_type: resource.2,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation,
            permission,
        }
    }

    fn alice() -> Requester<'static> {
        Requester { principal: "User:alice", host: "10.0.0.1" }
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    #[test]
    fn nothing_is_allowed_without_an_acl_but_to_super_users() {
        let authorizer = Authorizer { super_users: ["User:admin".to_string()].into() };
        assert!(!authorizer.allows(&[], alice(), Read, Topic, "orders"));
        let admin = Requester { principal: "User:admin", host: "10.0.0.9" };
        assert!(authorizer.allows(&[], admin, Alter, Cluster, CLUSTER_NAME));
    }

    #[test]
    fn literal_prefixed_and_wildcard_patterns() {
        let a = Authorizer::default();
        let acls = [
            acl((Topic, "orders", Literal), "User:alice", Read, Allow),
            acl((Topic, "logs.", Prefixed), "User:alice", Write, Allow),
            acl((Group, "*", Literal), "User:*", Read, Allow),
        ];
        assert!(a.allows(&acls, alice(), Read, Topic, "orders"));
        assert!(!a.allows(&acls, alice(), Read, Topic, "orders2"), "a literal name is exact");
        assert!(a.allows(&acls, alice(), Write, Topic, "logs.app"));
        assert!(!a.allows(&acls, alice(), Write, Topic, "log"), "the prefix must match whole");
        assert!(a.allows(&acls, Requester { principal: "User:bob", host: "h" }, Read, Group, "any-group"));
        assert!(a.allows(&acls, alice(), Read, Group, "x"), "User:* is alice too");
        assert!(!a.allows(&acls, Requester { principal: "User:bob", host: "h" }, Read, Topic, "orders"));
    }

    #[test]
    fn implied_operations_and_deny_over_allow() {
        let a = Authorizer::default();
        let acls = [
            acl((Topic, "t", Literal), "User:alice", Write, Allow),
            acl((Topic, "t", Literal), "User:alice", AlterConfigs, Allow),
            acl((Cluster, CLUSTER_NAME, Literal), "User:alice", All, Allow),
        ];
        assert!(a.allows(&acls, alice(), Describe, Topic, "t"), "WRITE implies DESCRIBE");
        assert!(
            a.allows(&acls, alice(), DescribeConfigs, Topic, "t"),
            "ALTER_CONFIGS implies DESCRIBE_CONFIGS"
        );
        assert!(!a.allows(&acls, alice(), Read, Topic, "t"), "WRITE does not imply READ");
        assert!(a.allows(&acls, alice(), Create, Cluster, CLUSTER_NAME), "ALL allows everything");
        let mut denied = acls.to_vec();
        denied.push(acl((Topic, "", Prefixed), "User:*", Describe, Deny));
        assert!(!a.allows(&denied, alice(), Describe, Topic, "t"), "a DENY wins");
        assert!(a.allows(&denied, alice(), Write, Topic, "t"), "a DENY of DESCRIBE does not deny WRITE");
        denied.push(acl((Topic, "t", Literal), "User:alice", All, Deny));
        assert!(!a.allows(&denied, alice(), Write, Topic, "t"), "DENY ALL denies every operation");
    }

    #[test]
    fn hosts_narrow_a_binding() {
        let a = Authorizer::default();
        let mut only_there = acl((Topic, "t", Literal), "User:alice", Read, Allow);
        only_there.host = "10.0.0.2".into();
        assert!(!a.allows(&[only_there.clone()], alice(), Read, Topic, "t"));
        only_there.host = "10.0.0.1".into();
        assert!(a.allows(&[only_there], alice(), Read, Topic, "t"));
    }

    #[test]
    fn kafka_refuses_what_cannot_match() {
        let ok = acl((Topic, "t", Literal), "User:alice", Read, Allow);
        assert_eq!(ok.invalid(), None);
        for bad in [
            AclBinding { resource_name: String::new(), ..ok.clone() },
            AclBinding { resource_type: Cluster, resource_name: "mine".into(), ..ok.clone() },
            AclBinding { pattern_type: Prefixed, resource_name: WILDCARD.into(), ..ok.clone() },
            AclBinding { principal: "alice".into(), ..ok.clone() },
            AclBinding { principal: "Group:x".into(), ..ok.clone() },
            AclBinding { host: String::new(), ..ok.clone() },
        ] {
            assert!(bad.invalid().is_some(), "{bad:?}");
        }
        for op in Operation::ALL_OPERATIONS {
            assert_eq!(Operation::from_code(op.code()), Some(op));
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("IdempotentWrite"), Some(IdempotentWrite));
        assert_eq!(Operation::from_name("describe-configs"), Some(DescribeConfigs));
        assert_eq!(ResourceType::from_name("topic"), Some(Topic));
        assert_eq!(Operation::from_name("Any"), None);
    }

    #[test]
    fn filters_select_as_kafka_does() {
        let acls = [
            acl((Topic, "orders", Literal), "User:alice", Read, Allow),
            acl((Topic, "ord", Prefixed), "User:bob", Write, Allow),
            acl((Topic, "*", Literal), "User:carol", Describe, Deny),
            acl((Group, "g", Literal), "User:alice", Read, Allow),
        ];
        let selected = |f: &AclFilter| acls.iter().filter(|a| f.matches(a)).count();
        assert_eq!(selected(&AclFilter::default()), 4, "the all-ANY filter selects everything");
        let named = AclFilter { resource_name: Some("orders".into()), ..AclFilter::default() };
        assert_eq!(selected(&named), 1, "ANY compares names exactly");
        let matching = AclFilter { pattern: PatternFilter::Match, ..named.clone() };
        assert_eq!(selected(&matching), 3, "MATCH adds the prefix and the wildcard");
        let topics_only = AclFilter { resource_type: Some(Topic), ..matching };
        assert_eq!(selected(&topics_only), 3);
        let prefixed = AclFilter { pattern: PatternFilter::Exactly(Prefixed), ..AclFilter::default() };
        assert_eq!(selected(&prefixed), 1);
        let alice = AclFilter { principal: Some("User:alice".into()), ..AclFilter::default() };
        assert_eq!(selected(&alice), 2);
        assert!(AclFilter::from_codes(1, None, 1, None, None, 1, 1).unwrap() == AclFilter::default());
        let exact = AclFilter::from_codes(2, Some("orders".into()), 3, Some("User:alice".into()), None, 3, 1);
        assert_eq!(selected(&exact.unwrap()), 1, "{:?}", acls[0]);
        assert!(AclFilter::from_codes(0, None, 1, None, None, 1, 1).is_err(), "UNKNOWN is refused");
        assert!(AclFilter::from_codes(2, None, 9, None, None, 1, 1).is_err());
    }

    #[test]
    fn any_resource_of_a_type_unless_denied_as_widely() {
        let a = Authorizer::default();
        let allow = acl((Topic, "logs.", Prefixed), "User:alice", Write, Allow);
        assert!(a.allows_any(std::slice::from_ref(&allow), alice(), Write, Topic));
        assert!(!a.allows_any(std::slice::from_ref(&allow), alice(), Write, Group));
        assert!(!a.allows_any(std::slice::from_ref(&allow), alice(), Read, Topic));
        let narrower = acl((Topic, "logs.app", Literal), "User:alice", Write, Deny);
        assert!(
            a.allows_any(&[allow.clone(), narrower], alice(), Write, Topic),
            "a narrower DENY leaves some"
        );
        let wider = acl((Topic, "log", Prefixed), "User:alice", Write, Deny);
        assert!(!a.allows_any(&[allow.clone(), wider], alice(), Write, Topic));
        let everything = acl((Topic, "*", Literal), "User:*", All, Deny);
        assert!(!a.allows_any(&[allow, everything], alice(), Write, Topic));
    }
}
