//! `ringtail acl add|list|remove`, the binary run against a real
//! in-process server: ACLs on topics (literal, prefixed, the wildcard), a
//! group and the cluster are added, listed (all, and selected by
//! principal and by resource, MATCH or exactly PREFIXED), and removed
//! exactly; bad command lines exit 2 before connecting, and what the
//! broker refuses (no authorizer, a caller without ALTER on the cluster,
//! a binding it cannot take) exits 1 with its Kafka error name, one line
//! on stderr.

mod server_support;

use ringtail_engine::security::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType,
};
use ringtail_server::serve::RunningServer;
use server_support::cli::{self, rows, start_with_acls, text};
use server_support::{data_dir, start};
use std::process::Output;

const HEADER: [&str; 7] = ["TYPE", "PATTERN", "NAME", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"];

async fn acl_at(bootstrap: String, args: &[&str]) -> Output {
    cli::run_at("acl", bootstrap, args).await
}

async fn acl(server: &RunningServer, args: &[&str]) -> Output {
    acl_at(server.kafka_addr.to_string(), args).await
}

fn exited(output: &Output, code: i32) -> String {
    cli::exited(output, code, "acl")
}

fn listed(expected: &[[&'static str; 7]]) -> Vec<Vec<&'static str>> {
    cli::listed(HEADER, expected)
}

const CAROL_ANY_TOPIC: [&str; 7] = ["TOPIC", "LITERAL", "*", "User:carol", "*", "DESCRIBE", "ALLOW"];
const BOB_ORD: [&str; 7] = ["TOPIC", "PREFIXED", "ord", "User:bob", "*", "WRITE", "ALLOW"];
const ALICE_READS_ORDERS: [&str; 7] = ["TOPIC", "LITERAL", "orders", "User:alice", "*", "READ", "ALLOW"];
const ALICE_DESCRIBES_ORDERS: [&str; 7] =
    ["TOPIC", "LITERAL", "orders", "User:alice", "*", "DESCRIBE", "ALLOW"];
const BOB_PAY: [&str; 7] = ["TOPIC", "PREFIXED", "pay", "User:bob", "*", "WRITE", "ALLOW"];
const ALICE_BILLING: [&str; 7] = ["GROUP", "LITERAL", "billing", "User:alice", "*", "READ", "ALLOW"];
const ADMIN_CLUSTER: [&str; 7] =
    ["CLUSTER", "LITERAL", "kafka-cluster", "User:admin", "10.0.0.1", "ALTER", "DENY"];

/// Add on every kind of resource, list by every selector, remove exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_added_listed_and_removed() {
    let dir = data_dir("cli-acl");
    let server = start_with_acls(dir.path(), &["User:ANONYMOUS"]).await;

    assert_eq!(rows(&exited(&acl(&server, &["list"]).await, 0)), listed(&[]), "none yet");

    let out = exited(
        &acl(
            &server,
            &[
                "add",
                "--principal",
                "User:alice",
                "--topic",
                "orders",
                "--operation",
                "Read",
                "--operation",
                "describe",
            ],
        )
        .await,
        0,
    );
    assert!(out.starts_with("Added 2 ACL(s):\n"), "{out}");
    assert_eq!(rows(&out)[1..], listed(&[ALICE_READS_ORDERS, ALICE_DESCRIBES_ORDERS])[..]);
    let adds: [&[&str]; 5] = [
        &["--principal", "User:bob", "--topic", "ord", "--prefixed", "--operation", "Write"],
        &["--principal", "User:bob", "--topic", "pay", "--prefixed", "--operation", "WRITE"],
        &["--principal", "User:carol", "--topic", "*", "--operation", "Describe", "--allow"],
        &["--principal", "User:alice", "--group", "billing", "--operation", "Read"],
        &["--principal", "User:admin", "--cluster", "--operation", "Alter", "--deny", "--host", "10.0.0.1"],
    ];
    for args in adds {
        let out = exited(&acl(&server, &[&["add"], args].concat()).await, 0);
        assert!(out.starts_with("Added 1 ACL(s):\n"), "{args:?}: {out}");
    }
    // Adding one that exists changes nothing.
    exited(&acl(&server, &[&["add"], adds[3]].concat()).await, 0);

    // What the broker keeps is what was asked for.
    let stored = server.broker().describe_acls(&AclFilter::default());
    assert_eq!(stored.len(), 7, "{stored:#?}");
    assert!(stored.contains(&AclBinding {
        resource_type: ResourceType::Cluster,
        resource_name: "kafka-cluster".into(),
        pattern_type: PatternType::Literal,
        principal: "User:admin".into(),
        host: "10.0.0.1".into(),
        operation: Operation::Alter,
        permission: Permission::Deny,
    }));

    let all = exited(&acl(&server, &["list"]).await, 0);
    assert_eq!(
        rows(&all),
        listed(&[
            CAROL_ANY_TOPIC,
            BOB_ORD,
            ALICE_READS_ORDERS,
            ALICE_DESCRIBES_ORDERS,
            BOB_PAY,
            ALICE_BILLING,
            ADMIN_CLUSTER
        ]),
        "{all}"
    );
    let header = all.lines().next().unwrap();
    assert!(header.starts_with("TYPE     PATTERN   NAME"), "columns are aligned: {all}");

    // A topic's name selects what applies to it: the wildcard, prefixes, its own.
    let orders = exited(&acl(&server, &["list", "--topic", "orders"]).await, 0);
    assert_eq!(
        rows(&orders),
        listed(&[CAROL_ANY_TOPIC, BOB_ORD, ALICE_READS_ORDERS, ALICE_DESCRIBES_ORDERS]),
        "{orders}"
    );
    let prefixed = exited(&acl(&server, &["list", "--topic", "ord", "--prefixed"]).await, 0);
    assert_eq!(rows(&prefixed), listed(&[BOB_ORD]), "{prefixed}");
    let alice = exited(&acl(&server, &["list", "--principal", "User:alice"]).await, 0);
    assert_eq!(rows(&alice), listed(&[ALICE_READS_ORDERS, ALICE_DESCRIBES_ORDERS, ALICE_BILLING]));
    let bob_on_payments =
        exited(&acl(&server, &["list", "--principal", "User:bob", "--topic", "payments"]).await, 0);
    assert_eq!(rows(&bob_on_payments), listed(&[BOB_PAY]));
    assert_eq!(
        rows(&exited(&acl(&server, &["list", "--group", "billing"]).await, 0)),
        listed(&[ALICE_BILLING])
    );
    assert_eq!(rows(&exited(&acl(&server, &["list", "--cluster"]).await, 0)), listed(&[ADMIN_CLUSTER]));
    assert_eq!(rows(&exited(&acl(&server, &["list", "--group", "other"]).await, 0)), listed(&[]));

    // Remove takes exactly the bindings named.
    let out = exited(
        &acl(&server, &["remove", "--principal", "User:alice", "--topic", "orders", "--operation", "Read"])
            .await,
        0,
    );
    assert!(out.starts_with("Removed 1 ACL(s):\n"), "{out}");
    assert_eq!(rows(&out)[1..], listed(&[ALICE_READS_ORDERS])[..]);
    let nothing = [
        // Gone already.
        &["--principal", "User:alice", "--topic", "orders", "--operation", "Read"][..],
        // bob's is PREFIXED, not LITERAL.
        &["--principal", "User:bob", "--topic", "ord", "--operation", "Write"],
        // admin's is a DENY from 10.0.0.1, not an ALLOW from anywhere.
        &["--principal", "User:admin", "--cluster", "--operation", "Alter"],
        &["--principal", "User:admin", "--cluster", "--operation", "Alter", "--deny"],
    ];
    for args in nothing {
        let out = exited(&acl(&server, &[&["remove"], args].concat()).await, 0);
        assert!(out.starts_with("No such ACL; nothing was removed ("), "{args:?}: {out}");
    }
    let out = exited(
        &acl(
            &server,
            &[
                "remove",
                "--principal",
                "User:admin",
                "--cluster",
                "--operation",
                "alter",
                "--deny",
                "--host",
                "10.0.0.1",
            ],
        )
        .await,
        0,
    );
    assert_eq!(rows(&out)[1..], listed(&[ADMIN_CLUSTER])[..], "{out}");
    let out = exited(
        &acl(
            &server,
            &["remove", "--principal", "User:bob", "--topic", "ord", "--prefixed", "--operation", "Write"],
        )
        .await,
        0,
    );
    assert_eq!(rows(&out)[1..], listed(&[BOB_ORD])[..], "{out}");

    let all = exited(&acl(&server, &["list"]).await, 0);
    assert_eq!(
        rows(&all),
        listed(&[CAROL_ANY_TOPIC, ALICE_DESCRIBES_ORDERS, BOB_PAY, ALICE_BILLING]),
        "{all}"
    );
    server.shutdown().await.unwrap();
}

/// Bad command lines exit 2 without connecting (here to an address where
/// no broker listens); what the broker refuses exits 1 with its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_clis_exit_codes() {
    let nobody_listening = {
        let dir = data_dir("cli-acl-gone");
        let server = start(dir.path()).await;
        let addr = server.kafka_addr.to_string();
        server.shutdown().await.unwrap();
        addr
    };
    let usage: [(&[&str], &str); 7] = [
        (&["add", "--principal", "alice", "--topic", "t", "--operation", "Read"], "is not TYPE:NAME"),
        (&["list", "--principal", "User:"], "is not TYPE:NAME"),
        (&["add", "--principal", "User:a", "--operation", "Read"], "needs a resource"),
        (&["remove", "--principal", "User:a", "--operation", "Read"], "needs a resource"),
        (
            &["add", "--principal", "User:a", "--topic", "t", "--group", "g", "--operation", "Read"],
            "one resource",
        ),
        (&["add", "--principal", "User:a", "--cluster", "--operation", "Read"], "cannot be for READ"),
        (&["add", "--principal", "User:a", "--topic", "*", "--prefixed", "--operation", "Read"], "'*'"),
    ];
    for (args, says) in usage {
        let e = exited(&acl_at(nobody_listening.clone(), args).await, 2);
        assert!(e.contains(says), "{args:?}: {e}");
    }
    // clap's refusals: exit 2 too, with its own usage text.
    for args in [
        &["add", "--principal", "User:a", "--topic", "t"][..],
        &["add", "--principal", "User:a", "--topic", "t", "--operation", "Fly"],
        &["add", "--principal", "User:a", "--topic", "t", "--operation", "Read", "--allow", "--deny"],
        &["add", "--topic", "t", "--operation", "Read"],
    ] {
        let output = acl_at(nobody_listening.clone(), args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output.stderr));
    }
    let e = exited(&acl_at(nobody_listening, &["list"]).await, 1);
    assert!(e.contains("connect"), "{e}");

    // Without an authorizer, ACLs would protect nothing: Kafka refuses them.
    let dir = data_dir("cli-acl-disabled");
    let server = start(dir.path()).await;
    let e = exited(&acl(&server, &["list"]).await, 1);
    assert!(e.contains("SECURITY_DISABLED"), "{e}");
    server.shutdown().await.unwrap();

    // A caller that is no super user and has no ACL may not change them.
    let dir = data_dir("cli-acl-denied");
    let server = start_with_acls(dir.path(), &["User:admin"]).await;
    let e = exited(
        &acl(&server, &["add", "--principal", "User:alice", "--topic", "t", "--operation", "Read"]).await,
        1,
    );
    assert!(e.contains("CLUSTER_AUTHORIZATION_FAILED"), "{e}");
    assert_eq!(server.broker().describe_acls(&AclFilter::default()), [], "nothing was added");
    server.shutdown().await.unwrap();

    // A principal that is not User:NAME is the broker's to refuse.
    let dir = data_dir("cli-acl-errors");
    let server = start_with_acls(dir.path(), &["User:ANONYMOUS"]).await;
    let e = exited(
        &acl(&server, &["add", "--principal", "Group:ops", "--topic", "t", "--operation", "Read"]).await,
        1,
    );
    assert!(e.contains("INVALID_REQUEST") && e.contains("Group:ops"), "{e}");
    assert_eq!(server.broker().describe_acls(&AclFilter::default()), [], "nothing was added");
    server.shutdown().await.unwrap();
}
