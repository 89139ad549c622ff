//! `ringtail topic create|list|describe|delete|create-partitions|alter-config|trim|elect-leaders`.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{connect, finish, topic_error, CliError, BOOTSTRAP_DEFAULT};
use ringtail_client::admin::{AlterConfigOp, ElectionOutcome, ElectionType};
use ringtail_client::error::code;
use ringtail_client::{kafka_error_name, ClientConfig, ConfigEntry, NewTopic, TopicInfo};

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    pub command: TopicCommand,
    /// Broker to ask first, HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = BOOTSTRAP_DEFAULT)]
    pub bootstrap: String,
    /// Client security settings (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password).
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partition count; the broker's default if not given.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replicas per partition; the broker's default if not given.
        #[arg(long, value_parser = clap::value_parser!(i16).range(1..))]
        replication_factor: Option<i16>,
        /// A topic configuration, e.g. retention.ms=86400000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List every topic, one name per line.
    List,
    /// Show a topic's partitions, leaders, replicas, in-sync replicas and configs.
    Describe { name: String },
    /// Delete a topic and all its records.
    Delete { name: String },
    /// Grow a topic to COUNT partitions (never fewer); keyed records may
    /// map to other partitions from then on.
    CreatePartitions {
        name: String,
        /// The new partition count.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        count: i32,
    },
    /// Change some of a topic's configs while it runs; the others keep
    /// their values.
    #[command(group(clap::ArgGroup::new("changes").required(true).multiple(true)))]
    AlterConfig {
        name: String,
        /// A config to set, e.g. retention.ms=86400000 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value, group = "changes")]
        set: Vec<(String, String)>,
        /// A config to return to the broker's default (repeatable).
        #[arg(long = "delete", value_name = "KEY", group = "changes")]
        delete: Vec<String>,
    },
    /// Delete a topic's records below OFFSET (DeleteRecords), in one
    /// partition or in each; -1 deletes everything written so far. Offsets
    /// are never reused: the partition starts at OFFSET from then on.
    Trim {
        name: String,
        /// The first offset to keep, or -1 for the high watermark.
        #[arg(long, value_name = "OFFSET", allow_negative_numbers = true,
              value_parser = clap::value_parser!(i64).range(-1..))]
        before: i64,
        /// Only this partition (all of them if not given).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        partition: Option<i32>,
    },
    /// Elect partition leaders (ElectLeaders): preferred gives leadership
    /// back to each partition's first replica once it is in sync; unclean
    /// gives a partition without a leader any live replica, losing the
    /// records only the lost replicas had.
    ElectLeaders {
        name: String,
        /// Only this partition (all of them if not given).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        partition: Option<i32>,
        /// Which leader to elect.
        #[arg(long = "type", value_enum, default_value_t = Election::Preferred)]
        election: Election,
    },
}

/// `--type` of `elect-leaders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Election {
    Preferred,
    Unclean,
}

/// `KEY=VALUE`, split at the first `=`; the key must not be empty.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub async fn run(args: TopicArgs) -> ExitCode {
    finish("topic", execute(args, &mut std::io::stdout()).await)
}

/// Runs the subcommand, writing its output (tables, names) to `out`.
pub async fn execute<W: Write + ?Sized>(args: TopicArgs, out: &mut W) -> Result<(), CliError> {
    let config = super::command_config::secured(ClientConfig::default(), args.command_config.as_deref())?;
    let client = connect(&args.bootstrap, config).await?;
    match args.command {
        TopicCommand::Create { name, partitions, replication_factor, configs } => {
            let topic = NewTopic { name: name.clone(), partitions, replication_factor, configs };
            client.create_topic(&topic).await?;
            write_out(out, format_args!("Created topic {name}.\n"))
        }
        TopicCommand::List => {
            for topic in client.list_topics().await? {
                write_out(out, format_args!("{}\n", topic.name))?;
            }
            Ok(())
        }
        TopicCommand::Describe { name } => {
            let info = client.describe_topic(&name).await.map_err(|e| topic_error(&name, e))?;
            // Partitions are worth showing even from a broker that cannot
            // describe configs, so a failure there is reported in place.
            let configs = client.describe_topic_configs(&name).await.map_err(|e| e.to_string());
            write_out(out, format_args!("{}", describe_text(&info, &configs)))
        }
        TopicCommand::Delete { name } => {
            client.delete_topic(&name).await.map_err(|e| topic_error(&name, e))?;
            write_out(out, format_args!("Deleted topic {name}.\n"))
        }
        TopicCommand::CreatePartitions { name, count } => {
            client.create_partitions(&name, count).await.map_err(|e| topic_error(&name, e))?;
            write_out(out, format_args!("Topic {name} now has {count} partitions.\n"))
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            let ops: Vec<AlterConfigOp> = set
                .into_iter()
                .map(|(key, value)| AlterConfigOp::Set { key, value })
                .chain(delete.into_iter().map(|key| AlterConfigOp::Delete { key }))
                .collect();
            client.alter_topic_configs(&name, &ops).await.map_err(|e| topic_error(&name, e))?;
            write_out(out, format_args!("Altered configs of topic {name}.\n"))
        }
        TopicCommand::Trim { name, before, partition } => {
            let partitions = match partition {
                Some(p) => vec![p],
                None => {
                    let info = client.describe_topic(&name).await.map_err(|e| topic_error(&name, e))?;
                    info.partitions.iter().map(|p| p.partition).collect()
                }
            };
            for p in partitions {
                let start =
                    client.delete_records(&name, p, before).await.map_err(|e| topic_error(&name, e))?;
                write_out(out, format_args!("Partition {p} of {name} now starts at offset {start}.\n"))?;
            }
            Ok(())
        }
        TopicCommand::ElectLeaders { name, partition, election } => {
            let election = match election {
                Election::Preferred => ElectionType::Preferred,
                Election::Unclean => ElectionType::Unclean,
            };
            let partitions = partition.map(|p| vec![p]);
            let outcomes = client
                .elect_leaders(&name, partitions.as_deref(), election)
                .await
                .map_err(|e| topic_error(&name, e))?;
            for o in &outcomes {
                write_out(
                    out,
                    format_args!("Partition {} of {}: {}.\n", o.partition, o.topic, outcome_text(o)),
                )?;
            }
            // As kafka-leader-election.sh: a partition that needed no
            // election is no failure, one that could not get its leader is.
            let failed = outcomes
                .iter()
                .filter(|o| o.error_code != code::NONE && o.error_code != code::ELECTION_NOT_NEEDED)
                .count();
            if failed > 0 {
                return Err(CliError::Runtime(format!(
                    "{failed} partition(s) of {name} could not be elected"
                )));
            }
            Ok(())
        }
    }
}

fn outcome_text(o: &ElectionOutcome) -> String {
    if o.error_code == code::NONE {
        return "new leader elected".to_owned();
    }
    match &o.message {
        Some(m) => format!("{} ({m})", kafka_error_name(o.error_code)),
        None => kafka_error_name(o.error_code),
    }
}

fn write_out<W: Write + ?Sized>(out: &mut W, text: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    out.write_fmt(text).map_err(|e| CliError::Runtime(format!("cannot write output: {e}")))
}

/// Kafka's `kafka-topics --describe` layout: a line for the topic, then one
/// per partition, tab-separated.
pub fn describe_text(info: &TopicInfo, configs: &Result<Vec<ConfigEntry>, String>) -> String {
    let configs = match configs {
        Ok(entries) => entries
            .iter()
            .map(|c| match (&c.value, c.is_sensitive) {
                (_, true) => format!("{}=(sensitive)", c.name),
                (Some(v), false) => format!("{}={v}", c.name),
                (None, false) => format!("{}=", c.name),
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => format!("(unavailable: {e})"),
    };
    let mut text = format!("Topic: {}", info.name);
    if let Some(id) = &info.topic_id {
        text.push_str(&format!("\tTopicId: {id}"));
    }
    text.push_str(&format!(
        "\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {configs}\n",
        info.partitions.len(),
        info.replication_factor()
    ));
    for p in &info.partitions {
        let leader = if p.leader < 0 { "none".to_owned() } else { p.leader.to_string() };
        text.push_str(&format!(
            "\tTopic: {}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
            info.name,
            p.partition,
            join_ids(&p.replicas),
            join_ids(&p.isr)
        ));
        if !p.offline_replicas.is_empty() {
            text.push_str(&format!("\tOffline: {}", join_ids(&p.offline_replicas)));
        }
        text.push('\n');
    }
    text
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
