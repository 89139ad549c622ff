//! `ringtail quota set|list`: users' byte-rate quotas, through
//! AlterClientQuotas and DescribeClientQuotas (what `kafka-configs.sh
//! --entity-type users --alter --add-config producer_byte_rate=...` and
//! `--describe` do).
//!
//! A quota is set for one user (`--user NAME`) or for the default every
//! user without one of its own falls back to (`--default-user`, Kafka's
//! `<default>`). `--produce-bytes-per-second` is Kafka's
//! `producer_byte_rate`, `--fetch-bytes-per-second` its
//! `consumer_byte_rate`; `none` removes the limit.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::group::table;
use super::{connect, finish, write_out, CliError, BOOTSTRAP_DEFAULT};
use ringtail_client::quotas::{QuotaAlteration, QuotaFilter, QuotaKey, QuotaOp, QuotaUser, UserQuotas};
use ringtail_client::ClientConfig;

/// The largest limit: every integer up to it is exact as the f64 Kafka
/// sends, so `list` shows what `set` was given.
pub const BYTES_PER_SECOND_MAX: u64 = 1 << 53;

/// How `list` and Kafka's tools show the default user.
const DEFAULT_USER: &str = "<default>";

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct QuotaArgs {
    #[command(subcommand)]
    pub command: QuotaCommand,
    /// Broker to ask first, HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = BOOTSTRAP_DEFAULT)]
    pub bootstrap: String,
    /// Client security settings (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password).
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum QuotaCommand {
    /// Set or remove a user's produce and fetch limits (bytes per second,
    /// shared by all of the user's connections to a broker). Limits not
    /// named are left as they are.
    Set(SetArgs),
    /// List the users with quotas, and the default's:
    /// USER PRODUCE_BYTES_PER_SECOND FETCH_BYTES_PER_SECOND ('-': no limit).
    List(ListArgs),
}

/// Whose quotas `set` changes: exactly one of --user, --default-user.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[group(required = true, multiple = false)]
pub struct SetUserArgs {
    /// This user's quotas.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The default quotas, for every user without their own.
    #[arg(long)]
    pub default_user: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub whose: SetUserArgs,
    /// What the user's producers may send, in bytes per second (a
    /// positive integer), or `none` for no limit.
    #[arg(long, value_name = "N|none", value_parser = parse_limit, allow_negative_numbers = true)]
    pub produce_bytes_per_second: Option<Limit>,
    /// What the user's consumers may fetch, in bytes per second (a
    /// positive integer), or `none` for no limit.
    #[arg(long, value_name = "N|none", value_parser = parse_limit, allow_negative_numbers = true)]
    pub fetch_bytes_per_second: Option<Limit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ListArgs {
    /// Only this user's own quotas (not the default it falls back to).
    #[arg(long, value_name = "NAME", conflicts_with = "default_user")]
    pub user: Option<String>,
    /// Only the default quotas.
    #[arg(long)]
    pub default_user: bool,
}

/// A limit as the command line gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many bytes per second.
    BytesPerSecond(u64),
    /// `none`: no limit (the key is removed).
    Unlimited,
}

impl Limit {
    fn value(self) -> Option<f64> {
        match self {
            // At most BYTES_PER_SECOND_MAX, so exact.
            Limit::BytesPerSecond(n) => Some(n as f64),
            Limit::Unlimited => None,
        }
    }
}

/// `none`, or a positive integer of bytes per second.
pub fn parse_limit(s: &str) -> Result<Limit, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Limit::Unlimited);
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| (1..=BYTES_PER_SECOND_MAX).contains(n))
        .map(Limit::BytesPerSecond)
        .ok_or_else(|| {
            format!("expected bytes per second, an integer in 1..={BYTES_PER_SECOND_MAX}, or none; got {s:?}")
        })
}

pub async fn run(args: QuotaArgs) -> ExitCode {
    finish("quota", execute(args, &mut std::io::stdout()).await)
}

/// A user named on the command line: not empty, and not the name `list`
/// shows the default as.
fn named_user(name: &str) -> Result<QuotaUser, CliError> {
    if name.is_empty() {
        return Err(CliError::Usage("the user name must not be empty".into()));
    }
    if name == DEFAULT_USER {
        return Err(CliError::Usage(format!("{DEFAULT_USER} is the default user: use --default-user")));
    }
    Ok(QuotaUser::Named(name.to_owned()))
}

/// The alteration `set` sends.
fn alteration(args: &SetArgs) -> Result<QuotaAlteration, CliError> {
    let user = match &args.whose.user {
        Some(name) => named_user(name)?,
        None => QuotaUser::Default,
    };
    let ops: Vec<QuotaOp> = [
        (QuotaKey::ProducerByteRate, args.produce_bytes_per_second),
        (QuotaKey::ConsumerByteRate, args.fetch_bytes_per_second),
    ]
    .into_iter()
    .filter_map(|(key, limit)| Some(QuotaOp { key, value: limit?.value() }))
    .collect();
    if ops.is_empty() {
        return Err(CliError::Usage(
            "quota set needs --produce-bytes-per-second or --fetch-bytes-per-second (N, or none)".into(),
        ));
    }
    Ok(QuotaAlteration { user, ops })
}

/// The filter `list` sends.
fn list_filter(args: &ListArgs) -> Result<QuotaFilter, CliError> {
    Ok(match (&args.user, args.default_user) {
        (Some(name), _) => {
            named_user(name)?;
            QuotaFilter::User(name.clone())
        }
        (None, true) => QuotaFilter::Default,
        (None, false) => QuotaFilter::Any,
    })
}

/// Runs the subcommand, its output to `out`.
pub async fn execute<W: Write + ?Sized>(args: QuotaArgs, out: &mut W) -> Result<(), CliError> {
    // Everything the command line says is checked before connecting.
    enum Plan {
        Set(QuotaAlteration),
        List(QuotaFilter),
    }
    let plan = match &args.command {
        QuotaCommand::Set(set) => Plan::Set(alteration(set)?),
        QuotaCommand::List(list) => Plan::List(list_filter(list)?),
    };
    let config = super::command_config::secured(ClientConfig::default(), args.command_config.as_deref())?;
    let client = connect(&args.bootstrap, config).await?;
    match plan {
        Plan::Set(alteration) => {
            let outcomes = client.alter_client_quotas(std::slice::from_ref(&alteration), false).await?;
            for outcome in outcomes {
                outcome?;
            }
            write_out(out, &set_text(&alteration))
        }
        Plan::List(filter) => {
            let described = client.describe_client_quotas(&filter).await?;
            write_out(out, &quota_table(&described.quotas))?;
            if described.unrecognised > 0 {
                eprintln!(
                    "ringtail quota: {} more quota entry(ies) not for one user alone (client ids, \
                     addresses) are not shown",
                    described.unrecognised
                );
            }
            Ok(())
        }
    }
}

/// `Set the quotas of user alice: produce 1048576 bytes per second, fetch
/// unlimited.`
fn set_text(alteration: &QuotaAlteration) -> String {
    let whose = match &alteration.user {
        QuotaUser::Default => "the default user".to_owned(),
        QuotaUser::Named(name) => format!("user {name}"),
    };
    let changes: Vec<String> = alteration
        .ops
        .iter()
        .map(|op| {
            let what = match op.key {
                QuotaKey::ProducerByteRate => "produce",
                QuotaKey::ConsumerByteRate => "fetch",
            };
            match op.value {
                Some(v) => format!("{what} {v} bytes per second"),
                None => format!("{what} unlimited"),
            }
        })
        .collect();
    format!("Set the quotas of {whose}: {}.\n", changes.join(", "))
}

/// `USER  PRODUCE_BYTES_PER_SECOND  FETCH_BYTES_PER_SECOND`, one user
/// per line under that header (`<default>` for the default, `-` for no
/// limit).
pub fn quota_table(quotas: &[UserQuotas]) -> String {
    let header = ["USER", "PRODUCE_BYTES_PER_SECOND", "FETCH_BYTES_PER_SECOND"];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<String>>()];
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    for q in quotas {
        rows.push(vec![
            q.user.to_string(),
            cell(q.get(QuotaKey::ProducerByteRate)),
            cell(q.get(QuotaKey::ConsumerByteRate)),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::BTreeMap;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        quota: QuotaArgs,
    }

    fn parse(args: &[&str]) -> Result<QuotaArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("quota").chain(args.iter().copied())).map(|c| c.quota)
    }

    fn set(args: &[&str]) -> Result<QuotaAlteration, CliError> {
        match parse(&[&["set"], args].concat()).expect("parses").command {
            QuotaCommand::Set(s) => alteration(&s),
            QuotaCommand::List(_) => panic!("not set"),
        }
    }

    fn filter(args: &[&str]) -> Result<QuotaFilter, CliError> {
        match parse(&[&["list"], args].concat()).expect("parses").command {
            QuotaCommand::List(l) => list_filter(&l),
            QuotaCommand::Set(_) => panic!("not list"),
        }
    }

    #[test]
    fn limits_are_positive_integers_or_none() {
        assert_eq!(parse_limit("1048576"), Ok(Limit::BytesPerSecond(1048576)));
        assert_eq!(parse_limit("none"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit("NONE"), Ok(Limit::Unlimited));
        assert_eq!(parse_limit("9007199254740992"), Ok(Limit::BytesPerSecond(BYTES_PER_SECOND_MAX)));
        for bad in ["0", "-5", "1.5", "", "10M", "9007199254740993", "unlimited"] {
            assert!(parse_limit(bad).is_err(), "{bad:?}");
        }
    }

    /// Each limit named is one op; `none` removes the key; the others are
    /// left alone.
    #[test]
    fn set_names_one_op_per_limit() {
        let op = |key, value| QuotaOp { key, value };
        assert_eq!(
            set(&["--user", "alice", "--produce-bytes-per-second", "1024"]).unwrap(),
            QuotaAlteration {
                user: QuotaUser::Named("alice".into()),
                ops: vec![op(QuotaKey::ProducerByteRate, Some(1024.0))],
            }
        );
        assert_eq!(
            set(&["--default-user", "--fetch-bytes-per-second", "none", "--produce-bytes-per-second", "7"])
                .unwrap(),
            QuotaAlteration {
                user: QuotaUser::Default,
                ops: vec![op(QuotaKey::ProducerByteRate, Some(7.0)), op(QuotaKey::ConsumerByteRate, None)],
            }
        );
    }

    #[test]
    fn bad_set_lines_are_usage_errors() {
        let usage = |args: &[&str]| match set(args) {
            Err(CliError::Usage(m)) => m,
            other => panic!("{args:?}: {other:?}"),
        };
        assert!(usage(&["--user", "alice"]).contains("needs --produce-bytes-per-second"));
        assert!(usage(&["--user", "", "--fetch-bytes-per-second", "1"]).contains("must not be empty"));
        assert!(usage(&["--user", "<default>", "--fetch-bytes-per-second", "1"]).contains("--default-user"));
        // clap's own refusals (exit 2 as well).
        for args in [
            &["set", "--produce-bytes-per-second", "1"][..],
            &["set", "--user", "a", "--default-user", "--produce-bytes-per-second", "1"],
            &["set", "--user", "a", "--produce-bytes-per-second", "0"],
            &["set", "--user", "a", "--fetch-bytes-per-second", "lots"],
            &["list", "--user", "a", "--default-user"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn list_filters() {
        assert_eq!(filter(&[]).unwrap(), QuotaFilter::Any);
        assert_eq!(filter(&["--user", "bob"]).unwrap(), QuotaFilter::User("bob".into()));
        assert_eq!(filter(&["--default-user"]).unwrap(), QuotaFilter::Default);
        assert!(matches!(filter(&["--user", ""]), Err(CliError::Usage(_))));
    }

    #[test]
    fn set_says_what_it_set() {
        let text = set_text(&set(&["--user", "alice", "--produce-bytes-per-second", "1048576"]).unwrap());
        assert_eq!(text, "Set the quotas of user alice: produce 1048576 bytes per second.\n");
        let text = set_text(
            &set(&["--default-user", "--produce-bytes-per-second", "none", "--fetch-bytes-per-second", "5"])
                .unwrap(),
        );
        assert_eq!(
            text,
            "Set the quotas of the default user: produce unlimited, fetch 5 bytes per second.\n"
        );
    }

    #[test]
    fn quotas_are_a_table_under_a_header() {
        let quotas = |user, values: &[(&str, f64)]| UserQuotas {
            user,
            values: values.iter().map(|&(k, v)| (k.to_owned(), v)).collect::<BTreeMap<_, _>>(),
        };
        let table = quota_table(&[
            quotas(QuotaUser::Default, &[("producer_byte_rate", 1000.0), ("consumer_byte_rate", 2000.0)]),
            quotas(QuotaUser::Named("alice".into()), &[("producer_byte_rate", 1048576.0)]),
            quotas(
                QuotaUser::Named("bob".into()),
                &[("consumer_byte_rate", 1.5), ("request_percentage", 9.0)],
            ),
        ]);
        assert_eq!(
            table,
            "USER       PRODUCE_BYTES_PER_SECOND  FETCH_BYTES_PER_SECOND\n\
             <default>  1000                      2000\n\
             alice      1048576                   -\n\
             bob        -                         1.5\n"
        );
        assert_eq!(quota_table(&[]), "USER  PRODUCE_BYTES_PER_SECOND  FETCH_BYTES_PER_SECOND\n");
    }
}
