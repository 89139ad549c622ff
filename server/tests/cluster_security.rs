//! Security in a two-node cluster of `ringtail serve` processes, each a
//! broker and a voter, configured as an operator would: the acl
//! authorizer, a loopback PLAINTEXT listener kept for the admin
//! (`User:ANONYMOUS` is the super user) and a SASL_PLAINTEXT listener
//! named `internal` that clients and the followers use, the followers
//! logging in as `User:broker` (`inter-broker-listener`,
//! `inter-broker-client-config`).
//!
//! Credentials and ACLs made through one node hold on the other (they are
//! the quorum's); followers fetch only once their principal is allowed
//! ClusterAction, and then rejoin the ISR; a client on the SASL
//! listener is told every broker's SASL address; a principal without an
//! ACL is refused on every node.

mod cluster_support;
mod server_support;

use bytes::Bytes;
use cluster_support::{
    await_topic, cluster_nodes, create, isr_whole, read_partition, start_all, Node, CONVERGE_WAIT,
};
use ringtail_client::acls::{AclBinding, Operation, PatternType, Permission, ResourceType};
use ringtail_client::scram_credentials::ScramAlteration;
use ringtail_client::security::{LoginMechanism, SaslLogin, Security};
use ringtail_client::{Acks, Client, ClientConfig, ProducerRecord, TopicInfo};
use ringtail_engine::security::acl::CLUSTER_NAME;
use ringtail_engine::security::scram::ScramMechanism;
use server_support::ready_address;
use std::path::Path;
use std::time::Duration;

const TOPIC: &str = "secured";

/// The node's address on the `internal` SASL listener.
fn internal(node: &Node) -> String {
    ready_address(&node.ready_line, "listener internal (SASL_PLAINTEXT) on ")
}

fn write_configs(root: &Path) -> std::path::PathBuf {
    let followers = root.join("inter-broker.properties");
    std::fs::write(
        &followers,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=broker\nsasl.password=broker pw\n",
    )
    .unwrap();
    let config = root.join("ringtail.toml");
    std::fs::write(
        &config,
        format!(
            "authorizer = \"acl\"\nsuper-users = [\"User:ANONYMOUS\"]\n\
             inter-broker-listener = \"internal\"\ninter-broker-client-config = {:?}\n\
             [[listener]]\nname = \"internal\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SASL_PLAINTEXT\"\n",
            followers.to_str().unwrap()
        ),
    )
    .unwrap();
    config
}

async fn admin(node: &Node) -> Client {
    Client::connect(&node.kafka, ClientConfig::default()).await.unwrap()
}

async fn as_user(address: &str, user: &str, password: &str) -> Client {
    let mechanism = LoginMechanism::Scram(ScramMechanism::Sha512);
    let login = SaslLogin { mechanism, user: user.into(), password: password.into() };
    let config =
        ClientConfig { security: Security { tls: None, sasl: Some(login) }, ..ClientConfig::default() };
    Client::connect(address, config).await.unwrap()
}

async fn set_password(admin: &Client, user: &str, password: &str) {
    let salt = format!("salt of {user}").into_bytes();
    let salted_password = ScramMechanism::Sha512.salted_password(password.as_bytes(), &salt, 4096);
    let upsert = ScramAlteration::Upsert {
        user: user.into(),
        mechanism: ScramMechanism::Sha512,
        iterations: 4096,
        salt,
        salted_password,
    };
    admin.alter_scram_credentials(&[upsert]).await.unwrap();
}

fn allow(principal: &str, resource_type: ResourceType, name: &str, operation: Operation) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type: PatternType::Literal,
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission: Permission::Allow,
    }
}

fn record(value: &str) -> ProducerRecord {
    ProducerRecord { key: None, value: Some(Bytes::from(value.to_string())) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secured_cluster_shares_credentials_and_acls_and_followers_authenticate() {
    let root = tempfile::tempdir().unwrap();
    let config = write_configs(root.path());
    let (mut nodes, voters) = cluster_nodes(root.path(), 2, 2);
    for node in &mut nodes {
        node.extra_args = vec!["--config".into(), config.to_str().unwrap().into()];
    }
    start_all(&mut nodes, &voters);

    // Users made at node 1, ACLs at node 2: each holds on the other.
    set_password(&admin(&nodes[0]).await, "broker", "broker pw").await;
    set_password(&admin(&nodes[0]).await, "alice", "alice pw").await;
    set_password(&admin(&nodes[0]).await, "bob", "bob pw").await;
    let alice_acls: Vec<AclBinding> = [Operation::Write, Operation::Read]
        .into_iter()
        .map(|op| allow("User:alice", ResourceType::Topic, TOPIC, op))
        .chain([allow("User:alice", ResourceType::Cluster, CLUSTER_NAME, Operation::IdempotentWrite)])
        .collect();
    let created = admin(&nodes[1]).await.create_acls(&alice_acls).await.unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    create(&nodes[0], TOPIC, 1, 2).await;
    let led = |t: &TopicInfo| t.partitions.first().is_some_and(|p| p.leader >= 0);
    // On both nodes: alice may not create it, so a node that has not
    // followed its creation yet would refuse her.
    await_topic(&nodes[1], TOPIC, CONVERGE_WAIT, "a leader", led).await;
    let info = await_topic(&nodes[0], TOPIC, CONVERGE_WAIT, "a leader", led).await;
    let leader = info.partition(0).unwrap().leader;
    let (leader_node, follower_node) = match leader {
        1 => (&nodes[0], &nodes[1]),
        _ => (&nodes[1], &nodes[0]),
    };

    // A client on the SASL listener is told every broker's SASL address.
    let alice = as_user(&internal(follower_node), "alice", "alice pw").await;
    let metadata = alice.fetch_metadata(Some(&[TOPIC])).await.unwrap();
    let shown: Vec<(i32, String)> = metadata.brokers.values().map(|b| (b.node_id, b.addr())).collect();
    assert_eq!(shown, nodes.iter().map(|n| (n.id, internal(n))).collect::<Vec<_>>());

    // The followers' principal may not fetch yet: the leader takes
    // records (a new partition's ISR is its leader until a follower has
    // caught up), and the follower never joins.
    let first = [record("first")];
    tokio::time::timeout(CONVERGE_WAIT, alice.produce(TOPIC, 0, &first, Acks::All)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let info = await_topic(&nodes[0], TOPIC, CONVERGE_WAIT, "a leader", led).await;
    assert_eq!(
        info.partition(0).unwrap().isr,
        [leader],
        "a follower without ClusterAction caught up: {info:?}"
    );

    let cluster_action = allow("User:broker", ResourceType::Cluster, CLUSTER_NAME, Operation::ClusterAction);
    assert!(admin(leader_node).await.create_acls(&[cluster_action]).await.unwrap()[0].is_ok());
    await_topic(&nodes[0], TOPIC, CONVERGE_WAIT, "the follower back in sync", isr_whole).await;
    let second = [record("second")];
    tokio::time::timeout(CONVERGE_WAIT, alice.produce(TOPIC, 0, &second, Acks::All)).await.unwrap().unwrap();
    let read = read_partition(leader_node, TOPIC, 0).await.unwrap();
    let values: Vec<Bytes> = read.into_iter().filter_map(|r| r.value).collect();
    assert_eq!(values.last(), Some(&Bytes::from("second")), "{values:?}");

    // Bob has a password but no ACL: refused at either node, nothing written.
    for node in &nodes {
        let bob = as_user(&internal(node), "bob", "bob pw").await;
        let refused = bob.produce(TOPIC, 0, &[record("bob's")], Acks::All).await.unwrap_err();
        assert!(refused.to_string().contains("TOPIC_AUTHORIZATION_FAILED"), "node {}: {refused}", node.id);
    }
    let read = read_partition(leader_node, TOPIC, 0).await.unwrap();
    assert!(read.iter().all(|r| r.value.as_deref() != Some(b"bob's".as_slice())));
}
