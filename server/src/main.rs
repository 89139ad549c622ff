//! The `ringtail` binary. Subcommands are variants of `Command`; each parses
//! its own arguments and returns an exit code.

use clap::{Parser, Subcommand};
use ringtail_server::config::{self, ConfigError, ServeArgs};
use ringtail_server::serve::{self, ServeError};
use std::io::Write;
use std::process::ExitCode;

/// `ringtail --version`: the crate's version and the git commit it was
/// built from ("unknown" outside a git checkout; see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("RINGTAIL_BUILD_COMMIT"), ")");

#[derive(Parser, Debug)]
#[command(name = "ringtail", version = VERSION, about = "A Kafka-compatible event log broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker (with no arguments: a single node, data in ./ringtail-data).
    Serve(Box<ServeArgs>),
    /// Create, list, describe or delete topics.
    Topic(ringtail_server::cli::topic::TopicArgs),
    /// Produce lines of stdin as records.
    Produce(ringtail_server::cli::produce::ProduceArgs),
    /// Print a topic's records, one value per line (with --group, as a
    /// member of a consumer group).
    Consume(ringtail_server::cli::consume::ConsumeArgs),
    /// List, describe (members, assignments, lag) or delete consumer groups.
    Group(ringtail_server::cli::group::GroupArgs),
    /// Create, delete or list users' SCRAM credentials (SASL logins).
    User(ringtail_server::cli::user::UserArgs),
    /// Add, list or remove ACLs: who may do what on which topics, groups
    /// or the cluster.
    Acl(ringtail_server::cli::acl::AclArgs),
    /// Set or list users' quotas: the bytes per second a user may produce
    /// and fetch.
    Quota(ringtail_server::cli::quota::QuotaArgs),
    /// Describe the cluster: brokers, the controller leader, the quorum.
    Cluster(ringtail_server::cli::cluster::ClusterArgs),
    /// Print a segment file (.log, .index, .timeindex) as stored: batches,
    /// records, index entries, and where it is damaged (exit 1 if it is).
    DumpLog(ringtail_server::cli::dump_log::DumpLogArgs),
    /// Run a stopped broker's recovery on its data directory and report
    /// each log (exit 1 if any is damaged); --repair makes the repairs.
    Check(ringtail_server::cli::check::CheckArgs),
}

fn main() -> ExitCode {
    // clap reports usage errors itself, with exit code 2.
    let cli = Cli::parse();
    ringtail_server::memory::keep_freed_memory();
    match cli.command {
        Command::Serve(args) => serve_command(&args),
        Command::Topic(args) => ringtail_server::cli::block_on(ringtail_server::cli::topic::run(args)),
        Command::Produce(args) => ringtail_server::cli::block_on(ringtail_server::cli::produce::run(args)),
        Command::Consume(args) => ringtail_server::cli::block_on(ringtail_server::cli::consume::run(args)),
        Command::Group(args) => ringtail_server::cli::block_on(ringtail_server::cli::group::run(args)),
        Command::User(args) => ringtail_server::cli::block_on(ringtail_server::cli::user::run(args)),
        Command::Acl(args) => ringtail_server::cli::block_on(ringtail_server::cli::acl::run(args)),
        Command::Quota(args) => ringtail_server::cli::block_on(ringtail_server::cli::quota::run(args)),
        Command::Cluster(args) => ringtail_server::cli::block_on(ringtail_server::cli::cluster::run(args)),
        Command::DumpLog(args) => ringtail_server::cli::dump_log::run(args),
        Command::Check(args) => ringtail_server::cli::check::run(args),
    }
}

fn serve_command(args: &ServeArgs) -> ExitCode {
    // The configuration says how to log, so it is read first; it logs
    // nothing, and its one-line errors go to stderr as they are.
    let config = match config::resolve(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ringtail: {e}");
            return ExitCode::from(ConfigError::EXIT_CODE);
        }
    };
    ringtail_server::logging::init(config.log_format);
    ringtail_server::file_limit::check_open_file_limit(&config.topic_limits);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ringtail: starting the async runtime: {e}");
            return ExitCode::from(ServeError::EXIT_CODE);
        }
    };
    // The readiness line goes to the log (stderr) and, bare, to stdout, for
    // scripts that wait for it, and to systemd under Type=notify.
    let on_ready = |server: &serve::RunningServer| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", server.ready_line());
        let _ = stdout.flush();
        let status = format!("READY=1\nSTATUS={}", server.ready_line());
        if let Err(e) = ringtail_server::sd_notify::notify(&status) {
            tracing::warn!("cannot tell systemd the server is ready: {e}");
        }
    };
    match runtime.block_on(serve::run(config, on_ready)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringtail: {e}");
            ExitCode::from(ServeError::EXIT_CODE)
        }
    }
}
