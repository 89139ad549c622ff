//! Credentials, ACLs and client quotas in a cluster: a change made through
//! any broker is committed by the quorum (the stand-in of
//! `common::quorum`) and followed by every broker, answered only once the
//! broker that took it holds it, and kept across a restart from what was
//! followed.

mod common;

use common::quorum::{open, two_brokers_on, Quorum};
use common::runtime;
use ringtail_engine::broker::credentials::ScramUpsertion;
use ringtail_engine::broker::quotas::{QuotaAlteration, UserFilter};
use ringtail_engine::controller::MetadataRecord;
use ringtail_engine::io::MemDisk;
use ringtail_engine::quota::{QuotaEntity, PRODUCER_BYTE_RATE};
use ringtail_engine::security::acl::{
    AclBinding, AclFilter, Authorizer, Operation, PatternType, Permission, Requester, ResourceType,
};
use ringtail_engine::security::scram::ScramMechanism;
use ringtail_engine::security::state::SecurityChange;
use std::sync::Arc;

fn read_orders(principal: &str) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: "orders".into(),
        pattern_type: PatternType::Literal,
        principal: principal.into(),
        host: "*".into(),
        operation: Operation::Read,
        permission: Permission::Allow,
    }
}

fn may_read_orders(broker: &ringtail_engine::broker::Broker<MemDisk>, principal: &str) -> bool {
    let who = Requester { principal, host: "10.0.0.9" };
    broker.authorize(&Authorizer::default(), who, Operation::Read, ResourceType::Topic, "orders")
}

fn upsert(user: &str, password: &str) -> ScramUpsertion {
    let salt = format!("salt-of-{user}").into_bytes();
    let salted_password = ScramMechanism::Sha512.salted_password(password.as_bytes(), &salt, 4096);
    ScramUpsertion { user: user.into(), mechanism: 2, iterations: 4096, salt, salted_password }
}

#[test]
fn security_changes_through_one_broker_reach_every_broker_and_survive_a_restart() {
    runtime().block_on(async {
        let quorum = Quorum::new("c1", 2);
        let (disk1, disk2) = (Arc::new(MemDisk::new()), Arc::new(MemDisk::new()));
        let (b1, b2) = two_brokers_on(&quorum, &disk1, &disk2).await;

        let created = b1.create_acls(vec![read_orders("User:alice"), read_orders("User:bob")]).await;
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        assert_eq!(quorum.image().security.acls.len(), 2, "the quorum holds them");
        assert!(may_read_orders(&b2, "User:alice"), "the other broker enforces them");

        let altered = b2.alter_scram_credentials(&[], &[upsert("alice", "secret")]).await;
        assert!(altered.iter().all(|(_, r)| r.is_ok()), "{altered:?}");
        let alter = QuotaAlteration {
            entity: QuotaEntity { user: Some("alice".into()) },
            ops: vec![(PRODUCER_BYTE_RATE.to_string(), Some(2048.0))],
        };
        assert!(b2.alter_client_quotas(&[alter], false).await.iter().all(Result::is_ok));
        for b in [&b1, &b2] {
            assert!(b.scram_credential("alice", ScramMechanism::Sha512).is_some(), "broker {}", b.node_id());
            assert_eq!(b.user_limits("alice").produce, Some(2048), "broker {}", b.node_id());
            assert_eq!(b.describe_client_quotas(&UserFilter::Any).len(), 1);
        }

        let bob = AclFilter { principal: Some("User:bob".into()), ..AclFilter::default() };
        let deleted = b2.delete_acls(&[bob]).await;
        assert_eq!(deleted[0].as_ref().unwrap().len(), 1);
        assert!(!may_read_orders(&b1, "User:bob"), "a deletion reaches the broker that created it");
        assert!(may_read_orders(&b1, "User:alice"));

        // What broker 1 followed is on its disk: a restart enforces it
        // before it has heard from the quorum again.
        b1.close().await.unwrap();
        drop(b1);
        let b1 = open(&disk1, 1).await;
        assert!(may_read_orders(&b1, "User:alice"));
        assert!(!may_read_orders(&b1, "User:bob"));
        assert!(b1.scram_credential("alice", ScramMechanism::Sha512).is_some());
        assert_eq!(b1.user_limits("alice").produce, Some(2048));

        // Changes committed while it was down are followed, removals too.
        let alice = read_orders("User:alice");
        quorum.commit(&[MetadataRecord::Security(SecurityChange::DeleteAcl { acl: alice })]).await;
        b1.set_incarnation(2);
        quorum.serve(&b1);
        quorum.commit(&[]).await;
        assert!(!may_read_orders(&b1, "User:alice"));
        assert!(b1.describe_acls(&AclFilter::default()).is_empty());
    })
}
