//! `ringtail acl add|list|remove`: Kafka's ACLs, through CreateAcls,
//! DescribeAcls and DeleteAcls (what `kafka-acls.sh --add|--list|--remove`
//! does).
//!
//! `add` and `remove` name bindings exactly: a principal, one resource
//! (`--topic`, `--group` or `--cluster`; LITERAL, or PREFIXED with
//! `--prefixed`), one or more operations, ALLOW (default) or DENY, and a
//! host (default `*`). `remove` deletes those bindings and no others.
//! `list` selects with a filter: a named resource lists the ACLs that
//! apply to it (Kafka's MATCH: its literal ACLs, the `*` wildcard's, and
//! those of prefixes of its name), or with `--prefixed` the PREFIXED ACLs
//! of exactly that name.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::group::table;
use super::{connect, finish, write_out, CliError, BOOTSTRAP_DEFAULT};
use ringtail_client::acls::{
    describe_binding, AclBinding, AclFilter, Operation, PatternFilter, PatternType, Permission, ResourceType,
};
use ringtail_client::ClientConfig;
use ringtail_engine::security::acl::{CLUSTER_NAME, WILDCARD};

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AclArgs {
    #[command(subcommand)]
    pub command: AclCommand,
    /// Broker to ask first, HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = BOOTSTRAP_DEFAULT)]
    pub bootstrap: String,
    /// Client security settings (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password).
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AclCommand {
    /// Add ACLs: PRINCIPAL may (--allow, the default) or may not (--deny)
    /// do each OPERATION on the resource, from HOST.
    Add(BindingArgs),
    /// List ACLs, all of them or those selected. With a resource named
    /// (--topic, --group or --cluster): the ACLs that apply to it, by
    /// Kafka's MATCH filter (its own LITERAL ACLs, the '*' wildcard's, and
    /// PREFIXED ACLs on prefixes of its name; kafka-acls.sh --list shows
    /// only those named exactly so). With --prefixed as well: only the
    /// PREFIXED ACLs of exactly that name.
    List(ListArgs),
    /// Remove exactly the ACLs `add` with the same arguments adds (the
    /// resource's pattern type LITERAL, or PREFIXED with --prefixed), and
    /// print them. Removing none is not an error.
    Remove(BindingArgs),
}

/// Which resource: at most one of --topic, --group, --cluster.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ResourceArgs {
    /// A topic ('*': every topic; with --prefixed, a name prefix).
    #[arg(long, value_name = "T")]
    pub topic: Option<String>,
    /// A consumer group ('*': every group; with --prefixed, a name prefix).
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// The cluster (named kafka-cluster).
    #[arg(long)]
    pub cluster: bool,
    /// The name is a prefix (pattern type PREFIXED, not LITERAL).
    #[arg(long)]
    pub prefixed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BindingArgs {
    /// Whom the ACL is for, TYPE:NAME (User:alice; User:* for everyone).
    #[arg(long, value_name = "TYPE:NAME")]
    pub principal: String,
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// Read, Write, Create, Delete, Describe, Alter, All, DescribeConfigs,
    /// AlterConfigs, ClusterAction or IdempotentWrite (repeatable).
    #[arg(long = "operation", value_name = "OP", required = true, value_parser = parse_operation)]
    pub operations: Vec<Operation>,
    /// Allow the operations (the default).
    #[arg(long, conflicts_with = "deny")]
    pub allow: bool,
    /// Deny them (a DENY wins over any ALLOW).
    #[arg(long)]
    pub deny: bool,
    /// The client address the ACL applies to ('*': every host).
    #[arg(long, value_name = "H", default_value = WILDCARD)]
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ListArgs {
    /// Only the ACLs of this principal, TYPE:NAME.
    #[arg(long, value_name = "TYPE:NAME")]
    pub principal: Option<String>,
    #[command(flatten)]
    pub resource: ResourceArgs,
}

/// An operation by Kafka's name, case and `_`/`-` aside (Read, READ,
/// DescribeConfigs, describe-configs).
pub fn parse_operation(s: &str) -> Result<Operation, String> {
    Operation::from_name(s).ok_or_else(|| {
        format!(
            "unknown operation {s:?} (Read, Write, Create, Delete, Describe, Alter, All, \
             DescribeConfigs, AlterConfigs, ClusterAction, IdempotentWrite)"
        )
    })
}

/// The operations Kafka's `kafka-acls.sh` lets an ACL on each resource
/// type name; others could never be asked for.
fn valid_operations(resource_type: ResourceType) -> &'static [Operation] {
    use Operation::*;
    match resource_type {
        ResourceType::Topic => {
            &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs, All]
        }
        ResourceType::Group => &[Read, Describe, Delete, All],
        ResourceType::Cluster => {
            &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe, All]
        }
    }
}

pub async fn run(args: AclArgs) -> ExitCode {
    finish("acl", execute(args, &mut std::io::stdout()).await)
}

/// `TYPE:NAME`, both parts non-empty.
fn check_principal(principal: &str) -> Result<(), CliError> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(CliError::Usage(format!("--principal {principal:?} is not TYPE:NAME (e.g. User:alice)"))),
    }
}

impl ResourceArgs {
    /// The resource named, if one is: its type and name.
    fn named(&self) -> Result<Option<(ResourceType, String)>, CliError> {
        let mut named = Vec::new();
        if let Some(topic) = &self.topic {
            named.push((ResourceType::Topic, topic.clone()));
        }
        if let Some(group) = &self.group {
            named.push((ResourceType::Group, group.clone()));
        }
        if self.cluster {
            named.push((ResourceType::Cluster, CLUSTER_NAME.to_owned()));
        }
        if named.len() > 1 {
            return Err(CliError::Usage(
                "name one resource: --topic, --group or --cluster, not several".into(),
            ));
        }
        let named = named.pop();
        if let Some((resource_type, name)) = &named {
            if name.is_empty() {
                return Err(CliError::Usage(format!(
                    "the {} name must not be empty ('*' means every one)",
                    resource_type.name().to_lowercase()
                )));
            }
            if self.prefixed && *resource_type == ResourceType::Cluster {
                return Err(CliError::Usage("--prefixed needs --topic or --group, not --cluster".into()));
            }
            if self.prefixed && name == WILDCARD {
                return Err(CliError::Usage(
                    "a --prefixed name cannot be '*' (a LITERAL '*' already means every one)".into(),
                ));
            }
        }
        Ok(named)
    }

    fn pattern_type(&self) -> PatternType {
        if self.prefixed {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        }
    }
}

impl BindingArgs {
    /// The bindings these arguments name, one per operation.
    fn bindings(&self, action: &str) -> Result<Vec<AclBinding>, CliError> {
        check_principal(&self.principal)?;
        let Some((resource_type, resource_name)) = self.resource.named()? else {
            return Err(CliError::Usage(format!(
                "acl {action} needs a resource: --topic T, --group G or --cluster"
            )));
        };
        let permission = if self.deny { Permission::Deny } else { Permission::Allow };
        let mut operations = self.operations.clone();
        operations.sort();
        operations.dedup();
        Ok(operations
            .into_iter()
            .map(|operation| AclBinding {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type: self.resource.pattern_type(),
                principal: self.principal.clone(),
                host: self.host.clone(),
                operation,
                permission,
            })
            .collect())
    }
}

/// The filter `list` sends.
fn list_filter(args: &ListArgs) -> Result<AclFilter, CliError> {
    if let Some(principal) = &args.principal {
        check_principal(principal)?;
    }
    let named = args.resource.named()?;
    let pattern = match (&named, args.resource.prefixed) {
        (_, true) => PatternFilter::Exactly(PatternType::Prefixed),
        (Some(_), false) => PatternFilter::Match,
        (None, false) => PatternFilter::Any,
    };
    let (resource_type, resource_name) = named.map_or((None, None), |(t, n)| (Some(t), Some(n)));
    Ok(AclFilter {
        resource_type,
        resource_name,
        pattern,
        principal: args.principal.clone(),
        ..AclFilter::default()
    })
}

/// The filter that selects `acl` and nothing else.
fn exact_filter(acl: &AclBinding) -> AclFilter {
    AclFilter {
        resource_type: Some(acl.resource_type),
        resource_name: Some(acl.resource_name.clone()),
        pattern: PatternFilter::Exactly(acl.pattern_type),
        principal: Some(acl.principal.clone()),
        host: Some(acl.host.clone()),
        operation: Some(acl.operation),
        permission: Some(acl.permission),
    }
}

/// Runs the subcommand, its output to `out`.
pub async fn execute<W: Write + ?Sized>(args: AclArgs, out: &mut W) -> Result<(), CliError> {
    // Everything the command line says is checked before connecting.
    enum Plan {
        Add(Vec<AclBinding>),
        List(AclFilter),
        Remove(Vec<AclBinding>),
    }
    let plan = match &args.command {
        AclCommand::Add(binding) => {
            let acls = binding.bindings("add")?;
            if let Some(acl) = acls.first() {
                let valid = valid_operations(acl.resource_type);
                let invalid: Vec<&str> = acls
                    .iter()
                    .filter(|a| !valid.contains(&a.operation))
                    .map(|a| a.operation.name())
                    .collect();
                if !invalid.is_empty() {
                    let valid: Vec<&str> = valid.iter().map(|o| o.name()).collect();
                    return Err(CliError::Usage(format!(
                        "a {} ACL cannot be for {} (only {})",
                        acl.resource_type,
                        invalid.join(", "),
                        valid.join(", ")
                    )));
                }
            }
            Plan::Add(acls)
        }
        AclCommand::List(list) => Plan::List(list_filter(list)?),
        AclCommand::Remove(binding) => Plan::Remove(binding.bindings("remove")?),
    };
    let config = super::command_config::secured(ClientConfig::default(), args.command_config.as_deref())?;
    let client = connect(&args.bootstrap, config).await?;
    match plan {
        Plan::Add(acls) => {
            let outcomes = client.create_acls(&acls).await?;
            let mut added = Vec::new();
            let mut refused = Vec::new();
            for (acl, outcome) in acls.into_iter().zip(outcomes) {
                match outcome {
                    Ok(()) => added.push(acl),
                    Err(e) => refused.push(e.to_string()),
                }
            }
            if !added.is_empty() {
                write_out(out, &format!("Added {} ACL(s):\n{}", added.len(), acl_table(&added)))?;
            }
            refusals(refused, added.len())
        }
        Plan::List(filter) => {
            let described = client.describe_acls(&filter).await?;
            write_out(out, &acl_table(&described.acls))?;
            if described.unrecognised > 0 {
                eprintln!(
                    "ringtail acl: {} more ACL(s) of resource types or operations this client does not know \
                     are not shown",
                    described.unrecognised
                );
            }
            Ok(())
        }
        Plan::Remove(acls) => {
            let filters: Vec<AclFilter> = acls.iter().map(exact_filter).collect();
            let outcomes = client.delete_acls(&filters).await?;
            let mut removed = Vec::new();
            let mut refused = Vec::new();
            for outcome in outcomes {
                match outcome {
                    Ok(deleted) => {
                        removed.extend(deleted.deleted);
                        refused.extend(deleted.failed.iter().map(|e| e.to_string()));
                    }
                    Err(e) => refused.push(e.to_string()),
                }
            }
            removed.sort();
            removed.dedup();
            if removed.is_empty() && refused.is_empty() {
                let what: Vec<String> = acls.iter().map(describe_binding).collect();
                write_out(out, &format!("No such ACL; nothing was removed ({}).\n", what.join("; ")))?;
            } else if !removed.is_empty() {
                write_out(out, &format!("Removed {} ACL(s):\n{}", removed.len(), acl_table(&removed)))?;
            }
            refusals(refused, removed.len())
        }
    }
}

/// The broker's refusals as the command's one error line.
fn refusals(refused: Vec<String>, done: usize) -> Result<(), CliError> {
    if refused.is_empty() {
        return Ok(());
    }
    let others = if done > 0 { format!(" ({done} others were applied)") } else { String::new() };
    Err(CliError::Runtime(format!("{}{others}", refused.join("; "))))
}

/// `TYPE  PATTERN  NAME  PRINCIPAL  HOST  OPERATION  PERMISSION`, one
/// ACL per line, under that header.
pub fn acl_table(acls: &[AclBinding]) -> String {
    let header = ["TYPE", "PATTERN", "NAME", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<String>>()];
    for acl in acls {
        rows.push(vec![
            acl.resource_type.to_string(),
            acl.pattern_type.to_string(),
            acl.resource_name.clone(),
            acl.principal.clone(),
            acl.host.clone(),
            acl.operation.to_string(),
            acl.permission.to_string(),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        acl: AclArgs,
    }

    fn parse(args: &[&str]) -> Result<AclArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("acl").chain(args.iter().copied())).map(|c| c.acl)
    }

    fn bindings(args: &[&str]) -> Result<Vec<AclBinding>, CliError> {
        match parse(args).expect("parses").command {
            AclCommand::Add(b) | AclCommand::Remove(b) => b.bindings("add"),
            AclCommand::List(_) => panic!("not add or remove"),
        }
    }

    fn filter(args: &[&str]) -> Result<AclFilter, CliError> {
        match parse(args).expect("parses").command {
            AclCommand::List(l) => list_filter(&l),
            _ => panic!("not list"),
        }
    }

    /// One binding per operation, ALLOW and host `*` unless told, the
    /// cluster under its one name, PREFIXED with --prefixed.
    #[test]
    fn add_names_one_binding_per_operation() {
        let acls = bindings(&[
            "add",
            "--principal",
            "User:alice",
            "--topic",
            "orders",
            "--operation",
            "read",
            "--operation",
            "Describe",
            "--operation",
            "READ",
        ])
        .unwrap();
        let ops: Vec<Operation> = acls.iter().map(|a| a.operation).collect();
        assert_eq!(ops, [Operation::Read, Operation::Describe], "deduplicated");
        assert!(acls.iter().all(|a| a.permission == Permission::Allow && a.host == "*"));
        assert!(acls.iter().all(|a| a.pattern_type == PatternType::Literal && a.resource_name == "orders"));

        let acls = bindings(&[
            "remove",
            "--principal",
            "User:*",
            "--cluster",
            "--operation",
            "alter-configs",
            "--deny",
            "--host",
            "10.0.0.1",
        ])
        .unwrap();
        assert_eq!(
            acls,
            [AclBinding {
                resource_type: ResourceType::Cluster,
                resource_name: "kafka-cluster".into(),
                pattern_type: PatternType::Literal,
                principal: "User:*".into(),
                host: "10.0.0.1".into(),
                operation: Operation::AlterConfigs,
                permission: Permission::Deny,
            }]
        );
        let prefixed = bindings(&[
            "add",
            "--principal",
            "User:b",
            "--group",
            "bill",
            "--prefixed",
            "--operation",
            "Read",
        ]);
        assert_eq!(prefixed.unwrap()[0].pattern_type, PatternType::Prefixed);
    }

    #[test]
    fn bad_bindings_are_usage_errors() {
        let usage = |args: &[&str]| match bindings(args) {
            Err(CliError::Usage(m)) => m,
            other => panic!("{args:?}: {other:?}"),
        };
        let op = ["--operation", "Read"];
        let with = |args: &[&'static str]| [args, &op[..]].concat();
        assert!(usage(&with(&["add", "--principal", "alice", "--topic", "t"])).contains("TYPE:NAME"));
        assert!(usage(&with(&["add", "--principal", "User:", "--topic", "t"])).contains("TYPE:NAME"));
        assert!(usage(&with(&["add", "--principal", ":alice", "--topic", "t"])).contains("TYPE:NAME"));
        assert!(usage(&with(&["add", "--principal", "User:a"])).contains("needs a resource"));
        assert!(usage(&with(&["add", "--principal", "User:a", "--topic", "t", "--cluster"]))
            .contains("one resource"));
        assert!(usage(&with(&["add", "--principal", "User:a", "--topic", ""])).contains("must not be empty"));
        assert!(
            usage(&with(&["add", "--principal", "User:a", "--cluster", "--prefixed"])).contains("--prefixed")
        );
        assert!(usage(&with(&["add", "--principal", "User:a", "--topic", "*", "--prefixed"])).contains("'*'"));
        // clap's own refusals (exit 2 as well).
        assert!(parse(&["add", "--principal", "User:a", "--topic", "t"]).is_err(), "no operation");
        assert!(parse(&["add", "--principal", "User:a", "--topic", "t", "--operation", "Fly"]).is_err());
        assert!(parse(
            &[&with(&["add", "--principal", "User:a", "--topic", "t"])[..], &["--allow", "--deny"]].concat()
        )
        .is_err());
    }

    /// A named resource is listed with MATCH, or exactly PREFIXED with
    /// --prefixed; nothing named is ANY.
    #[test]
    fn list_filters() {
        assert_eq!(filter(&["list"]).unwrap(), AclFilter::default());
        let by_topic = filter(&["list", "--topic", "orders", "--principal", "User:alice"]).unwrap();
        assert_eq!(
            by_topic,
            AclFilter {
                resource_type: Some(ResourceType::Topic),
                resource_name: Some("orders".into()),
                pattern: PatternFilter::Match,
                principal: Some("User:alice".into()),
                ..AclFilter::default()
            }
        );
        let prefixed = filter(&["list", "--group", "bill", "--prefixed"]).unwrap();
        assert_eq!(prefixed.pattern, PatternFilter::Exactly(PatternType::Prefixed));
        assert_eq!(filter(&["list", "--cluster"]).unwrap().resource_name.as_deref(), Some("kafka-cluster"));
        assert!(matches!(filter(&["list", "--principal", "alice"]), Err(CliError::Usage(_))));
        assert!(matches!(filter(&["list", "--topic", "a", "--group", "b"]), Err(CliError::Usage(_))));
    }

    /// `remove` sends filters that select its bindings and nothing else.
    #[test]
    fn remove_filters_are_exact() {
        let acl = &bindings(&["remove", "--principal", "User:a", "--topic", "t", "--operation", "Write"])
            .unwrap()[0];
        let filter = exact_filter(acl);
        assert!(filter.matches(acl));
        let prefixed = AclBinding { pattern_type: PatternType::Prefixed, ..acl.clone() };
        let wildcard = AclBinding { resource_name: "*".into(), ..acl.clone() };
        let all = AclBinding { operation: Operation::All, ..acl.clone() };
        let denied = AclBinding { permission: Permission::Deny, ..acl.clone() };
        for other in [prefixed, wildcard, all, denied] {
            assert!(!filter.matches(&other), "{other:?}");
        }
    }

    #[test]
    fn acls_are_a_table_under_a_header() {
        let acl = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::DescribeConfigs,
            permission: Permission::Allow,
        };
        assert_eq!(
            acl_table(&[acl]),
            "TYPE   PATTERN  NAME    PRINCIPAL   HOST  OPERATION         PERMISSION\n\
             TOPIC  LITERAL  orders  User:alice  *     DESCRIBE_CONFIGS  ALLOW\n"
        );
        assert_eq!(acl_table(&[]), "TYPE  PATTERN  NAME  PRINCIPAL  HOST  OPERATION  PERMISSION\n");
    }
}
