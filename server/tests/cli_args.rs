//! Command lines of `ringtail topic|produce|consume`: what parses, what is
//! refused (clap's exit code 2), and the defaults the interface promises.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use ringtail_client::Acks;
use ringtail_server::cli::consume::{consume_into, ConsumeArgs, StartFrom};
use ringtail_server::cli::produce::ProduceArgs;
use ringtail_server::cli::topic::{Election, TopicArgs, TopicCommand};
use ringtail_server::cli::{CliError, BOOTSTRAP_DEFAULT};

/// The commands as the `ringtail` binary mounts them.
#[derive(Debug, Parser)]
#[command(name = "ringtail")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Topic(TopicArgs),
    Produce(ProduceArgs),
    Consume(ConsumeArgs),
}

fn parse(line: &str) -> Result<Command, clap::Error> {
    Cli::try_parse_from(line.split_whitespace()).map(|cli| cli.command)
}

fn topic(line: &str) -> TopicArgs {
    match parse(line).expect("parses") {
        Command::Topic(args) => args,
        other => panic!("expected topic, got {other:?}"),
    }
}

fn produce(line: &str) -> ProduceArgs {
    match parse(line).expect("parses") {
        Command::Produce(args) => args,
        other => panic!("expected produce, got {other:?}"),
    }
}

fn consume(line: &str) -> ConsumeArgs {
    match parse(line).expect("parses") {
        Command::Consume(args) => args,
        other => panic!("expected consume, got {other:?}"),
    }
}

#[test]
fn the_command_tree_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn topic_create_takes_partitions_replication_and_repeated_configs() {
    let args = topic(
        "ringtail topic create orders --partitions 3 --replication-factor 2 \
         --config retention.ms=1000 --config cleanup.policy=delete --bootstrap 10.0.0.1:9092",
    );
    assert_eq!(args.bootstrap, "10.0.0.1:9092");
    assert_eq!(
        args.command,
        TopicCommand::Create {
            name: "orders".into(),
            partitions: Some(3),
            replication_factor: Some(2),
            configs: vec![("retention.ms".into(), "1000".into()), ("cleanup.policy".into(), "delete".into())],
        }
    );
}

#[test]
fn topic_defaults_to_the_local_broker_and_broker_defaults() {
    let args = topic("ringtail topic create t");
    assert_eq!(args.bootstrap, BOOTSTRAP_DEFAULT);
    assert_eq!(
        args.command,
        TopicCommand::Create {
            name: "t".into(),
            partitions: None,
            replication_factor: None,
            configs: vec![]
        }
    );
    assert_eq!(topic("ringtail topic list").command, TopicCommand::List);
    assert_eq!(topic("ringtail topic describe t").command, TopicCommand::Describe { name: "t".into() });
    assert_eq!(topic("ringtail topic delete t").command, TopicCommand::Delete { name: "t".into() });
}

#[test]
fn bootstrap_goes_before_or_after_the_topic_subcommand() {
    assert_eq!(topic("ringtail topic --bootstrap h:1 list").bootstrap, "h:1");
    assert_eq!(topic("ringtail topic list --bootstrap h:1").bootstrap, "h:1");
}

#[test]
fn bad_topic_arguments_are_usage_errors() {
    for line in [
        "ringtail topic create t --config novalue",
        "ringtail topic create t --config =v",
        "ringtail topic create t --partitions 0",
        "ringtail topic create t --replication-factor 0",
        "ringtail topic create",
        "ringtail topic describe",
        "ringtail topic frobnicate",
    ] {
        let err = parse(line).expect_err(line);
        assert_eq!(err.exit_code(), 2, "{line}: {err}");
    }
}

#[test]
fn topic_create_partitions_and_alter_config_parse_and_refuse_bad_lines() {
    let args = topic("ringtail topic create-partitions orders --count 6 --bootstrap h:1");
    assert_eq!(args.command, TopicCommand::CreatePartitions { name: "orders".into(), count: 6 });
    assert_eq!(args.bootstrap, "h:1");
    let args =
        topic("ringtail topic alter-config orders --set retention.ms=1000 --delete segment.ms --set k=a=b");
    assert_eq!(
        args.command,
        TopicCommand::AlterConfig {
            name: "orders".into(),
            set: vec![("retention.ms".into(), "1000".into()), ("k".into(), "a=b".into())],
            delete: vec!["segment.ms".into()],
        }
    );
    let only_delete = topic("ringtail topic alter-config orders --delete retention.ms").command;
    assert!(matches!(only_delete, TopicCommand::AlterConfig { set, .. } if set.is_empty()));
    for line in [
        "ringtail topic create-partitions orders",
        "ringtail topic create-partitions orders --count 0",
        "ringtail topic create-partitions --count 3",
        "ringtail topic alter-config orders",
        "ringtail topic alter-config orders --set novalue",
        "ringtail topic alter-config --set a=b",
    ] {
        let err = parse(line).expect_err(line);
        assert_eq!(err.exit_code(), 2, "{line}: {err}");
    }
}

#[test]
fn topic_elect_leaders_defaults_to_preferred_in_every_partition() {
    let args = topic("ringtail topic elect-leaders orders");
    assert_eq!(
        args.command,
        TopicCommand::ElectLeaders { name: "orders".into(), partition: None, election: Election::Preferred }
    );
    let args = topic("ringtail topic elect-leaders orders --partition 2 --type unclean --bootstrap h:1");
    assert_eq!(
        args.command,
        TopicCommand::ElectLeaders { name: "orders".into(), partition: Some(2), election: Election::Unclean }
    );
    assert_eq!(args.bootstrap, "h:1");
    for line in [
        "ringtail topic elect-leaders",
        "ringtail topic elect-leaders orders --type sideways",
        "ringtail topic elect-leaders orders --partition -1",
        "ringtail topic elect-leaders orders --partition",
    ] {
        let err = parse(line).expect_err(line);
        assert_eq!(err.exit_code(), 2, "{line}: {err}");
    }
}

#[test]
fn config_values_may_contain_equals_signs() {
    let args = topic("ringtail topic create t --config k=a=b");
    let TopicCommand::Create { configs, .. } = args.command else { panic!("create") };
    assert_eq!(configs, [("k".to_owned(), "a=b".to_owned())]);
}

#[test]
fn produce_defaults_and_acks_spellings() {
    let args = produce("ringtail produce t");
    assert_eq!(args.topic, "t");
    assert_eq!(args.acks, Acks::All);
    assert_eq!(args.key, None);
    assert_eq!(args.partition, None);
    assert_eq!(args.batch_bytes, 16 * 1024);
    assert_eq!(args.linger_ms, 100);
    assert_eq!(args.bootstrap, BOOTSTRAP_DEFAULT);
    assert_eq!(produce("ringtail produce t --acks 0").acks, Acks::None);
    assert_eq!(produce("ringtail produce t --acks 1").acks, Acks::Leader);
    assert_eq!(produce("ringtail produce t --acks all --key k --partition 2").partition, Some(2));
    for line in ["ringtail produce t --acks 2", "ringtail produce t --partition -1", "ringtail produce"] {
        assert_eq!(parse(line).expect_err(line).exit_code(), 2, "{line}");
    }
}

#[test]
fn consume_from_accepts_earliest_latest_and_offsets() {
    assert_eq!(consume("ringtail consume t").from, StartFrom::Earliest);
    assert_eq!(consume("ringtail consume t --from latest").from, StartFrom::Latest);
    assert_eq!(consume("ringtail consume t --from 42").from, StartFrom::Offset(42));
    let args = consume("ringtail consume t --count 10 --partition 1 --print-keys");
    assert_eq!((args.count, args.partition, args.print_keys), (Some(10), Some(1), true));
    for line in
        ["ringtail consume t --from -5", "ringtail consume t --from middle", "ringtail consume t --count x"]
    {
        assert_eq!(parse(line).expect_err(line).exit_code(), 2, "{line}");
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_a_runtime_error() {
    let mut args = consume("ringtail consume t --count 1");
    args.bootstrap = "127.0.0.1:1".into();
    let err = consume_into(args, &mut Vec::new(), std::future::pending()).await.unwrap_err();
    assert!(matches!(err, CliError::Runtime(_)), "{err:?}");
    assert!(err.message().contains("127.0.0.1:1"), "{err}");
    assert_eq!(err.exit_code(), ExitCode::from(1));
}
