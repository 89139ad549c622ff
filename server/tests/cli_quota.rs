//! `ringtail quota set|list`, the binary run against a real in-process
//! server: produce and fetch limits are set for users and the default,
//! listed (all, by user, the default), and removed with `none`, and the
//! broker holds what was asked for; bad command lines exit 2 before
//! connecting, and what the broker refuses (a caller the ACLs do not let
//! alter or describe the cluster's configs) exits 1 with its Kafka error
//! name, one line on stderr.

mod server_support;

use ringtail_engine::quota::UserLimits;
use ringtail_engine::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use ringtail_server::serve::RunningServer;
use server_support::cli::{self, rows, start_with_acls, text};
use server_support::{data_dir, start};
use std::process::Output;

const HEADER: [&str; 3] = ["USER", "PRODUCE_BYTES_PER_SECOND", "FETCH_BYTES_PER_SECOND"];

async fn quota_at(bootstrap: String, args: &[&str]) -> Output {
    cli::run_at("quota", bootstrap, args).await
}

async fn quota(server: &RunningServer, args: &[&str]) -> Output {
    quota_at(server.kafka_addr.to_string(), args).await
}

fn exited(output: &Output, code: i32) -> String {
    cli::exited(output, code, "quota")
}

fn listed(expected: &[[&'static str; 3]]) -> Vec<Vec<&'static str>> {
    cli::listed(HEADER, expected)
}

fn limits(produce: Option<u64>, fetch: Option<u64>) -> UserLimits {
    UserLimits { produce, fetch }
}

/// Set for a user, for another (both limits), for the default; list all,
/// by user and the default; remove limits with `none`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_set_listed_and_removed() {
    let dir = data_dir("cli-quota");
    let server = start(dir.path()).await;

    assert_eq!(rows(&exited(&quota(&server, &["list"]).await, 0)), listed(&[]), "none yet");

    let out = exited(
        &quota(&server, &["set", "--user", "alice", "--produce-bytes-per-second", "1048576"]).await,
        0,
    );
    assert_eq!(out, "Set the quotas of user alice: produce 1048576 bytes per second.\n");
    let out = exited(
        &quota(
            &server,
            &[
                "set",
                "--user",
                "bob",
                "--produce-bytes-per-second",
                "2000000",
                "--fetch-bytes-per-second",
                "4000000",
            ],
        )
        .await,
        0,
    );
    assert_eq!(
        out,
        "Set the quotas of user bob: produce 2000000 bytes per second, fetch 4000000 bytes per second.\n"
    );
    let out =
        exited(&quota(&server, &["set", "--default-user", "--fetch-bytes-per-second", "500000"]).await, 0);
    assert_eq!(out, "Set the quotas of the default user: fetch 500000 bytes per second.\n");

    // What applies to each user is what was asked for: its own limits,
    // the default's for the rest.
    let broker = server.broker();
    assert_eq!(broker.user_limits("alice"), limits(Some(1048576), Some(500000)));
    assert_eq!(broker.user_limits("bob"), limits(Some(2000000), Some(4000000)));
    assert_eq!(broker.user_limits("carol"), limits(None, Some(500000)));

    let all = exited(&quota(&server, &["list"]).await, 0);
    assert_eq!(
        rows(&all),
        listed(&[["<default>", "-", "500000"], ["alice", "1048576", "-"], ["bob", "2000000", "4000000"]]),
        "{all}"
    );
    assert!(
        all.starts_with("USER       PRODUCE_BYTES_PER_SECOND  FETCH_BYTES_PER_SECOND\n"),
        "aligned: {all}"
    );
    let bob = exited(&quota(&server, &["list", "--user", "bob"]).await, 0);
    assert_eq!(rows(&bob), listed(&[["bob", "2000000", "4000000"]]), "{bob}");
    let default = exited(&quota(&server, &["list", "--default-user"]).await, 0);
    assert_eq!(rows(&default), listed(&[["<default>", "-", "500000"]]), "{default}");
    let carol = exited(&quota(&server, &["list", "--user", "carol"]).await, 0);
    assert_eq!(rows(&carol), listed(&[]), "carol has none of her own: {carol}");

    // `none` removes one limit and leaves the other; changing one leaves
    // the other as it was.
    let out = exited(&quota(&server, &["set", "--user", "bob", "--fetch-bytes-per-second", "none"]).await, 0);
    assert_eq!(out, "Set the quotas of user bob: fetch unlimited.\n");
    exited(&quota(&server, &["set", "--user", "alice", "--produce-bytes-per-second", "3000"]).await, 0);
    assert_eq!(broker.user_limits("bob"), limits(Some(2000000), Some(500000)), "the default's fetch limit");
    let all = exited(&quota(&server, &["list"]).await, 0);
    assert_eq!(
        rows(&all),
        listed(&[["<default>", "-", "500000"], ["alice", "3000", "-"], ["bob", "2000000", "-"]]),
        "{all}"
    );

    // With every limit removed, a user has no quotas left to list.
    exited(&quota(&server, &["set", "--user", "alice", "--produce-bytes-per-second", "none"]).await, 0);
    exited(&quota(&server, &["set", "--default-user", "--fetch-bytes-per-second", "NONE"]).await, 0);
    assert_eq!(rows(&exited(&quota(&server, &["list", "--user", "alice"]).await, 0)), listed(&[]));
    let all = exited(&quota(&server, &["list"]).await, 0);
    assert_eq!(rows(&all), listed(&[["bob", "2000000", "-"]]), "{all}");
    assert_eq!(broker.user_limits("alice"), limits(None, None));
    server.shutdown().await.unwrap();
}

/// Bad command lines exit 2 without connecting (here to an address where
/// no broker listens); a broker that is not there exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_before_connecting() {
    let nobody_listening = {
        let dir = data_dir("cli-quota-gone");
        let server = start(dir.path()).await;
        let addr = server.kafka_addr.to_string();
        server.shutdown().await.unwrap();
        addr
    };
    let usage: [(&[&str], &str); 4] = [
        (&["set", "--user", "alice"], "needs --produce-bytes-per-second or --fetch-bytes-per-second"),
        (&["set", "--user", "", "--fetch-bytes-per-second", "1"], "must not be empty"),
        (&["set", "--user", "<default>", "--fetch-bytes-per-second", "1"], "use --default-user"),
        (&["list", "--command-config", "/nonexistent/client.properties"], "--command-config"),
    ];
    for (args, says) in usage {
        let e = exited(&quota_at(nobody_listening.clone(), args).await, 2);
        assert!(e.contains(says), "{args:?}: {e}");
    }
    // clap's refusals: exit 2 too, with its own usage text.
    for (args, says) in [
        (&["set", "--produce-bytes-per-second", "1"][..], "--user"),
        (&["set", "--user", "a", "--default-user", "--produce-bytes-per-second", "1"], "cannot be used with"),
        (&["set", "--user", "a", "--produce-bytes-per-second", "0"], "expected bytes per second"),
        (&["set", "--user", "a", "--produce-bytes-per-second", "-5"], "expected bytes per second"),
        (&["set", "--user", "a", "--fetch-bytes-per-second", "1.5"], "expected bytes per second"),
        (&["set", "--user", "a", "--fetch-bytes-per-second", "lots"], "expected bytes per second"),
        (&["list", "--user", "a", "--default-user"], "cannot be used with"),
        (&["raise", "--user", "a"], "unrecognized subcommand"),
    ] {
        let output = quota_at(nobody_listening.clone(), args).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A good command line does try to connect, and fails for want of a broker.
    let e = exited(&quota_at(nobody_listening, &["list"]).await, 1);
    assert!(e.contains("connect"), "{e}");
}

/// Under the ACL authorizer, altering quotas needs ALTER_CONFIGS on the
/// cluster and describing them DESCRIBE_CONFIGS; a caller without them is
/// refused with CLUSTER_AUTHORIZATION_FAILED and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_authorizer_refuses_callers_without_config_rights() {
    let dir = data_dir("cli-quota-denied");
    let server = start_with_acls(dir.path(), &[]).await;
    let e =
        exited(&quota(&server, &["set", "--user", "alice", "--produce-bytes-per-second", "1000"]).await, 1);
    assert!(e.contains("CLUSTER_AUTHORIZATION_FAILED"), "{e}");
    let e = exited(&quota(&server, &["list"]).await, 1);
    assert!(e.contains("CLUSTER_AUTHORIZATION_FAILED"), "{e}");
    assert_eq!(server.broker().user_limits("alice"), limits(None, None), "nothing was set");

    // DESCRIBE_CONFIGS lets the caller list, not set.
    let grant = |operation| AclBinding {
        resource_type: ResourceType::Cluster,
        resource_name: "kafka-cluster".into(),
        pattern_type: PatternType::Literal,
        principal: "User:ANONYMOUS".into(),
        host: "*".into(),
        operation,
        permission: Permission::Allow,
    };
    let created = server.broker().create_acls(vec![grant(Operation::DescribeConfigs)]).await;
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    assert_eq!(rows(&exited(&quota(&server, &["list"]).await, 0)), listed(&[]));
    let e = exited(&quota(&server, &["set", "--default-user", "--fetch-bytes-per-second", "1"]).await, 1);
    assert!(e.contains("CLUSTER_AUTHORIZATION_FAILED"), "{e}");

    // ALTER_CONFIGS lets it set.
    let created = server.broker().create_acls(vec![grant(Operation::AlterConfigs)]).await;
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    exited(&quota(&server, &["set", "--default-user", "--fetch-bytes-per-second", "1"]).await, 0);
    let all = exited(&quota(&server, &["list"]).await, 0);
    assert_eq!(rows(&all), listed(&[["<default>", "-", "1"]]), "{all}");
    server.shutdown().await.unwrap();
}
