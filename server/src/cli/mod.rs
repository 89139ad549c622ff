//! The admin and quick-start commands of the `ringtail` binary. They talk to
//! a broker over the Kafka protocol through `ringtail_client`, exactly as any
//! other client would.
//!
//! - `topic`: `ringtail topic create|list|describe|delete|create-partitions|alter-config`.
//! - `produce`: `ringtail produce TOPIC`: lines of stdin become records.
//! - `consume`: `ringtail consume TOPIC [--group G]`: one record value per
//!   line; `consume_group` is its consumer-group mode.
//! - `group`: `ringtail group list|describe|delete`: consumer groups.
//! - `cluster`: `ringtail cluster describe`: the metadata quorum and brokers.
//! - `user`: `ringtail user create|delete|list`: users' SCRAM credentials.
//! - `acl`: `ringtail acl add|list|remove`: Kafka's ACLs.
//! - `quota`: `ringtail quota set|list`: users' produce and fetch byte rates.
//! - `check`: `ringtail check --data-dir DIR`: a stopped broker's recovery,
//!   run without writing (or with `--repair`), reported per log.
//! - `dump_log`: `ringtail dump-log FILE`: a segment's batches, records or
//!   index entries, read from the file itself (no broker), and where it is
//!   damaged.
//!
//! Each command is a clap `Args` struct and `async fn run(args) -> ExitCode`
//! (0 ok, 1 runtime failure with a one-line message, 2 bad usage). The work
//! itself sits in functions taking their input and output as arguments, so
//! tests drive them without a terminal.

pub mod acl;
pub mod check;
pub mod cluster;
pub mod command_config;
pub mod consume;
pub mod consume_group;
pub mod dump_log;
pub mod group;
pub mod produce;
pub mod quota;
pub mod topic;
pub mod user;

use std::process::ExitCode;

use ringtail_client::{Client, ClientConfig, ClientError};

/// Where the commands look for a broker unless told otherwise.
pub const BOOTSTRAP_DEFAULT: &str = "127.0.0.1:9092";

/// Why a command failed, which decides its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// The command line asks for something we cannot do: exit code 2.
    Usage(String),
    /// Something went wrong while doing it: exit code 1.
    Runtime(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Runtime(_) => ExitCode::from(1),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Runtime(m) => m,
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        CliError::Runtime(e.to_string())
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Reports `result` the way every command does: nothing on success, one
/// line on stderr on failure, and the exit code.
pub(crate) fn finish(command: &str, result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages from nested errors may span lines; the contract is one.
            let line = e.message().replace('\n', " ");
            eprintln!("ringtail {command}: {line}");
            e.exit_code()
        }
    }
}

/// Runs a command's future to completion on a runtime of its own, for the
/// binary's `main`: `Command::Topic(args) => cli::block_on(cli::topic::run(args))`.
/// One thread is plenty for a command that talks to a few brokers.
pub fn block_on(command: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(command),
        Err(e) => {
            eprintln!("ringtail: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

/// Connects to the cluster behind `bootstrap`.
pub(crate) async fn connect(bootstrap: &str, config: ClientConfig) -> Result<Client, CliError> {
    Ok(Client::connect(bootstrap, config).await?)
}

/// `topic TOPIC does not exist` reads better than the bare Kafka error,
/// but keeps the Kafka name so it can be searched for.
pub(crate) fn topic_error(topic: &str, e: ClientError) -> CliError {
    if e.kafka_code() == Some(ringtail_client::error::code::UNKNOWN_TOPIC_OR_PARTITION) {
        CliError::Runtime(format!("topic {topic} does not exist (UNKNOWN_TOPIC_OR_PARTITION)"))
    } else {
        e.into()
    }
}

/// Writes `text` to the command's output; a failed write is the command's error.
pub(crate) fn write_out<W: std::io::Write + ?Sized>(out: &mut W, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes()).map_err(|e| CliError::Runtime(format!("cannot write output: {e}")))
}
