//! Consumer groups from the command line: `ringtail consume --group` and
//! `ringtail group list|describe|delete`.
//!
//! Their command lines and usage errors, and the commands against a real
//! in-process server: consuming as a group, resuming from the group's
//! commits, two members splitting a topic, and what `group list` and `group
//! describe` show. The member's side of the protocol, against a fake
//! coordinator, is in `cli_group_fake_coordinator.rs`.

mod cli_support;

use std::io::Cursor;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use cli_support::TestServer;
use ringtail_client::Acks;
use ringtail_server::cli::consume::{consume_into, ConsumeArgs, StartFrom};
use ringtail_server::cli::group::{execute as group_execute, GroupArgs, GroupCommand};
use ringtail_server::cli::produce::{produce_from, ProduceArgs};
use ringtail_server::cli::topic::{execute as topic_execute, TopicArgs, TopicCommand};
use ringtail_server::cli::CliError;

// ---------------------------------------------------------------------------
// Command lines

#[derive(Debug, Parser)]
#[command(name = "ringtail")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Consume(ConsumeArgs),
    Group(GroupArgs),
}

fn parse(line: &str) -> Result<Command, clap::Error> {
    Cli::try_parse_from(line.split_whitespace()).map(|cli| cli.command)
}

#[test]
fn group_command_lines_parse() {
    Cli::command().debug_assert();
    let Command::Group(args) = parse("ringtail group list --bootstrap h:1").expect("parses") else {
        panic!()
    };
    assert_eq!((args.command, args.bootstrap.as_str()), (GroupCommand::List, "h:1"));
    let Command::Group(args) = parse("ringtail group --bootstrap h:2 describe g").expect("parses") else {
        panic!()
    };
    assert_eq!(
        (args.command, args.bootstrap.as_str()),
        (GroupCommand::Describe { group: "g".into() }, "h:2")
    );
    let Command::Group(args) = parse("ringtail group delete g").expect("parses") else { panic!() };
    assert_eq!(args.command, GroupCommand::Delete { group: "g".into() });
    let line = "ringtail group delete-offsets g --topic t --partition 2";
    let Command::Group(args) = parse(line).expect("parses") else { panic!() };
    let want = GroupCommand::DeleteOffsets { group: "g".into(), topic: "t".into(), partition: Some(2) };
    assert_eq!(args.command, want);
    for line in [
        "ringtail group",
        "ringtail group describe",
        "ringtail group frob",
        "ringtail group delete-offsets g",
    ] {
        assert_eq!(parse(line).expect_err(line).exit_code(), 2, "{line}");
    }
    let Command::Consume(args) =
        parse("ringtail consume t --group g --from latest --count 3").expect("parses")
    else {
        panic!()
    };
    assert_eq!((args.group.as_deref(), args.from, args.count), (Some("g"), StartFrom::Latest, Some(3)));
    let help = Cli::command().find_subcommand_mut("consume").expect("consume").render_long_help().to_string();
    assert!(help.contains("committed offset"), "{help}");
    assert!(!help.contains("Not yet supported"), "{help}");
}

/// `--partition` makes no sense with a group, and an empty group id is
/// invalid: both are bad usage (exit code 2), refused before any traffic.
#[tokio::test]
async fn group_usage_errors_exit_with_code_2() {
    for line in ["ringtail consume t --group g --partition 0", "ringtail consume t --group="] {
        let Command::Consume(mut args) = parse(line).expect(line) else { panic!() };
        args.bootstrap = "127.0.0.1:1".into(); // nothing listens; must not be reached
        let err = consume_into(args, &mut Vec::new(), std::future::pending()).await.unwrap_err();
        assert!(matches!(err, CliError::Usage(_)), "{line}: {err:?}");
        assert_eq!(err.exit_code(), std::process::ExitCode::from(2));
    }
    let args = GroupArgs {
        command: GroupCommand::Describe { group: String::new() },
        bootstrap: "127.0.0.1:1".into(),
        command_config: None,
    };
    let err = group_execute(args, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(err, CliError::Usage(_)), "{err:?}");
}

// ---------------------------------------------------------------------------
// Against a real in-process server.

impl TestServer {
    async fn create_topic(&self, name: &str, partitions: i32) {
        let command = TopicCommand::Create {
            name: name.into(),
            partitions: Some(partitions),
            replication_factor: None,
            configs: vec![],
        };
        topic_execute(
            TopicArgs { command, bootstrap: self.bootstrap.clone(), command_config: None },
            &mut Vec::new(),
        )
        .await
        .expect("topic created");
    }

    async fn produce(&self, topic: &str, partition: Option<i32>, input: &str) {
        let args = ProduceArgs {
            topic: topic.into(),
            key: None,
            acks: Acks::All,
            partition,
            batch_bytes: 256,
            linger_ms: 10,
            bootstrap: self.bootstrap.clone(),
            command_config: None,
        };
        produce_from(args, Cursor::new(input.as_bytes().to_vec())).await.expect("produced");
    }

    fn consume_args(&self, topic: &str, group: &str, count: u64) -> ConsumeArgs {
        ConsumeArgs {
            topic: topic.into(),
            group: Some(group.into()),
            from: StartFrom::Earliest,
            count: Some(count),
            partition: None,
            print_keys: false,
            bootstrap: self.bootstrap.clone(),
            command_config: None,
        }
    }

    /// Consumes as a group member until `count` records or `stop_after`.
    async fn consume(&self, args: ConsumeArgs, stop_after: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let run = consume_into(args, &mut out, tokio::time::sleep(stop_after));
        tokio::time::timeout(stop_after + Duration::from_secs(30), run)
            .await
            .expect("consumer finished in time")
            .expect("consumes");
        String::from_utf8(out).expect("UTF-8").lines().map(str::to_owned).collect()
    }

    async fn group(&self, command: GroupCommand) -> Result<String, CliError> {
        let mut out = Vec::new();
        group_execute(
            GroupArgs { command, bootstrap: self.bootstrap.clone(), command_config: None },
            &mut out,
        )
        .await?;
        Ok(String::from_utf8(out).expect("UTF-8"))
    }
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix}{i}\n")).collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort_unstable();
    lines
}

/// The LAG column of `describe`'s partition rows, summed.
fn total_lag(describe: &str) -> i64 {
    let mut rows = describe.lines().skip_while(|l| !l.starts_with("TOPIC")).skip(1);
    let mut lag = 0;
    for row in rows.by_ref() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        lag += cells.get(4).and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
    }
    lag
}

/// A group reads everything once; run again it reads nothing until new
/// records arrive, and then only those; describe shows the lag between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_consumes_once_and_resumes_from_its_commits() {
    let server = TestServer::start("group-resume").await;
    server.create_topic("orders", 2).await;
    let first = numbered("order ", 0..100);
    server.produce("orders", None, &first).await;

    let got = server.consume(server.consume_args("orders", "billing", 100), Duration::from_secs(60)).await;
    assert_eq!(sorted(got), sorted(first.lines().map(str::to_owned).collect()));

    let again = server.consume(server.consume_args("orders", "billing", 1), Duration::from_secs(8)).await;
    assert!(again.is_empty(), "nothing new, yet got {again:?}");

    let second = numbered("late ", 0..10);
    server.produce("orders", None, &second).await;
    let described = server.group(GroupCommand::Describe { group: "billing".into() }).await.expect("describe");
    assert!(described.contains("State: Empty"), "{described}");
    assert_eq!(total_lag(&described), 10, "{described}");

    let got = server.consume(server.consume_args("orders", "billing", 10), Duration::from_secs(60)).await;
    assert_eq!(sorted(got), sorted(second.lines().map(str::to_owned).collect()));
    let described = server.group(GroupCommand::Describe { group: "billing".into() }).await.expect("describe");
    assert_eq!(total_lag(&described), 0, "{described}");
    assert!(described.contains("orders"), "{described}");

    let listed = server.group(GroupCommand::List).await.expect("list");
    assert!(listed.lines().any(|l| l.starts_with("billing ") && l.contains("consumer")), "{listed}");

    // Another group starts from --from, independently of the first.
    let args = ConsumeArgs { from: StartFrom::Latest, ..server.consume_args("orders", "audit", 1) };
    let none = server.consume(args, Duration::from_secs(8)).await;
    assert!(none.is_empty(), "{none:?}");

    // Its offsets of one partition, then of the whole topic, go; the
    // group (Empty) stays until deleted.
    let one =
        GroupCommand::DeleteOffsets { group: "billing".into(), topic: "orders".into(), partition: Some(1) };
    let out = server.group(one).await.expect("delete-offsets");
    assert_eq!(out, "Deleted the offset of group billing for orders-1.\n");
    let described = server.group(GroupCommand::Describe { group: "billing".into() }).await.expect("describe");
    assert!(described.contains("orders") && total_lag(&described) == 0, "{described}");
    let all =
        GroupCommand::DeleteOffsets { group: "billing".into(), topic: "orders".into(), partition: None };
    let out = server.group(all).await.expect("delete-offsets");
    assert_eq!(out.lines().count(), 2, "{out}");
    let described = server.group(GroupCommand::Describe { group: "billing".into() }).await.expect("describe");
    assert!(!described.contains("orders"), "no offsets left: {described}");
    let unknown =
        GroupCommand::DeleteOffsets { group: "nobody".into(), topic: "orders".into(), partition: None };
    let err = server.group(unknown).await.unwrap_err();
    assert!(err.to_string().contains("GROUP_ID_NOT_FOUND"), "{err}");

    server.group(GroupCommand::Delete { group: "billing".into() }).await.expect("delete");
    let gone = server.group(GroupCommand::Describe { group: "billing".into() }).await;
    assert!(
        gone.is_err() || gone.as_ref().is_ok_and(|d| d.contains("State: Dead") || !d.contains("orders")),
        "{gone:?}"
    );
    server.stop().await;
}

/// Two members split a 2-partition topic, one partition each; while they
/// run, list and describe show the group, both members, their partitions
/// and the lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions() {
    let server = TestServer::start("group-split").await;
    server.create_topic("split", 2).await;
    let mut members = Vec::new();
    for _ in 0..2 {
        let args = server.consume_args("split", "pair", 20);
        members.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let run = consume_into(args, &mut out, std::future::pending());
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("in time").expect("consumes");
            String::from_utf8(out).expect("UTF-8")
        }));
    }
    // Wait for one generation with a partition for each member.
    let mut described = String::new();
    for _ in 0..120 {
        if let Ok(d) = server.group(GroupCommand::Describe { group: "pair".into() }).await {
            described = d;
            let assigned = ["split-0", "split-1"].iter().all(|p| described.contains(p));
            if described.contains("State: Stable") && described.contains("Members: 2") && assigned {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(described.contains("State: Stable") && described.contains("Members: 2"), "{described}");
    assert!(described.contains("ringtail-cli"), "{described}");
    assert!(described.contains("LOG-END-OFFSET") || !described.contains("TOPIC"), "{described}");
    let listed = server.group(GroupCommand::List).await.expect("list");
    assert!(listed.lines().any(|l| l.starts_with("pair ") && l.contains("Stable")), "{listed}");

    server.produce("split", Some(0), &numbered("zero ", 0..20)).await;
    server.produce("split", Some(1), &numbered("one ", 0..20)).await;
    let mut outputs = Vec::new();
    for member in members {
        outputs.push(member.await.expect("member task"));
    }
    let mut prefixes: Vec<&str> = outputs
        .iter()
        .map(|out| {
            let first =
                out.lines().next().expect("each member read records").split(' ').next().expect("prefix");
            assert!(out.lines().all(|l| l.starts_with(first)), "one partition per member: {out}");
            assert_eq!(out.lines().count(), 20);
            first
        })
        .collect();
    prefixes.sort_unstable();
    assert_eq!(prefixes, ["one", "zero"]);
    server.stop().await;
}
