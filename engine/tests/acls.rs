//! Kafka's ACLs through the Broker, on MemDisk: created, described and
//! deleted as CreateAcls, DescribeAcls and DeleteAcls do, durable before
//! they are acknowledged, and deciding requests once created. (In a
//! cluster: `cluster_security`.)

mod common;

use common::{open_broker, runtime};
use ringtail_engine::broker::ErrorCode;
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::MemDisk;
use ringtail_engine::security::acl::{
    AclBinding, AclFilter, Authorizer, Operation, PatternFilter, PatternType, Permission, Requester,
    ResourceType, CLUSTER_NAME, WILDCARD,
};
use std::sync::Arc;

fn acl(resource_type: ResourceType, name: &str, principal: &str, operation: Operation) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type: PatternType::Literal,
        principal: principal.into(),
        host: WILDCARD.into(),
        operation,
        permission: Permission::Allow,
    }
}

fn codes<T>(results: &[Result<T, ringtail_engine::broker::BrokerError>]) -> Vec<ErrorCode> {
    results.iter().map(|r| r.as_ref().err().map_or(ErrorCode::None, |e| e.code)).collect()
}

fn alice() -> Requester<'static> {
    Requester { principal: "User:alice", host: "127.0.0.1" }
}

#[test]
fn created_acls_are_described_decide_requests_and_are_deleted() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open_broker(&disk, false).await;
        let authorizer = Authorizer::default();
        assert!(!broker.authorize(&authorizer, alice(), Operation::Read, ResourceType::Topic, "orders"));

        let read = acl(ResourceType::Topic, "orders", "User:alice", Operation::Read);
        let group = acl(ResourceType::Group, "billing", "User:alice", Operation::Read);
        let bad_cluster = acl(ResourceType::Cluster, "mine", "User:alice", Operation::Alter);
        let results = broker.create_acls(vec![read.clone(), bad_cluster, group.clone()]).await;
        assert_eq!(codes(&results), [ErrorCode::None, ErrorCode::InvalidRequest, ErrorCode::None]);
        // Creating one that exists succeeds and adds nothing.
        let again = broker.create_acls(vec![read.clone()]).await;
        assert_eq!(codes(&again), [ErrorCode::None]);
        assert_eq!(broker.describe_acls(&AclFilter::default()), [read.clone(), group.clone()]);

        assert!(broker.authorize(&authorizer, alice(), Operation::Read, ResourceType::Topic, "orders"));
        assert!(broker.authorize(&authorizer, alice(), Operation::Describe, ResourceType::Topic, "orders"));
        assert!(!broker.authorize(&authorizer, alice(), Operation::Write, ResourceType::Topic, "orders"));
        let bob = Requester { principal: "User:bob", host: "127.0.0.1" };
        assert!(!broker.authorize(&authorizer, bob, Operation::Read, ResourceType::Topic, "orders"));
        assert!(broker.authorize_any(&authorizer, alice(), Operation::Read, ResourceType::Group));

        let topics = AclFilter { resource_type: Some(ResourceType::Topic), ..AclFilter::default() };
        let nothing = AclFilter { principal: Some("User:nobody".into()), ..AclFilter::default() };
        let deleted = broker.delete_acls(&[topics.clone(), nothing]).await;
        assert_eq!(deleted.len(), 2);
        assert_eq!(deleted[0].as_ref().unwrap(), &[read]);
        assert!(deleted[1].as_ref().unwrap().is_empty(), "a filter matching nothing is no error");
        assert!(!broker.authorize(&authorizer, alice(), Operation::Read, ResourceType::Topic, "orders"));
        assert_eq!(broker.describe_acls(&AclFilter::default()), [group]);
    })
}

/// Acknowledged ACLs survive a restart and a crash; a change whose journal
/// record never became durable is refused and lost, and only it.
#[test]
fn acknowledged_acls_survive_restarts_and_crashes_and_only_they() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open_broker(&disk, false).await;
        let write = acl(ResourceType::Topic, "logs.", "User:alice", Operation::Write);
        let write = AclBinding { pattern_type: PatternType::Prefixed, ..write };
        broker.create_acls(vec![write.clone()]).await;
        broker.close().await.unwrap();
        drop(broker);

        let broker = open_broker(&disk, false).await;
        let matching = AclFilter {
            resource_name: Some("logs.app".into()),
            pattern: PatternFilter::Match,
            ..Default::default()
        };
        assert_eq!(broker.describe_acls(&matching), std::slice::from_ref(&write));
        let admin = acl(ResourceType::Cluster, CLUSTER_NAME, "User:alice", Operation::Alter);
        broker.create_acls(vec![admin.clone()]).await;
        disk.fail_next_syncs(1);
        let lost = acl(ResourceType::Group, "*", "User:*", Operation::Read);
        let results = broker.create_acls(vec![lost]).await;
        assert_eq!(codes(&results), [ErrorCode::KafkaStorageError], "an unsynced change is not acknowledged");
        disk.crash(CrashMode::DropUnsynced);
        drop(broker);

        let broker = open_broker(&disk, false).await;
        assert_eq!(broker.describe_acls(&AclFilter::default()), [write.clone(), admin]);
        // The journal goes on after the failure (a new snapshot, J4).
        let all = AclFilter::default();
        assert_eq!(broker.delete_acls(&[all]).await[0].as_ref().unwrap().len(), 2);
        disk.crash(CrashMode::DropUnsynced);
        drop(broker);
        let broker = open_broker(&disk, false).await;
        assert!(broker.describe_acls(&AclFilter::default()).is_empty());
    })
}
