//! `ringtail cluster describe`: the metadata quorum as its voters see it
//! (each voter's role, term and applied index), the controller leader, and
//! every registered broker, alive or fenced. It asks the voters on their
//! controller listener, so it works while no broker serves Kafka clients.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{finish, CliError};
use crate::config::parse_controllers;
use crate::quorum::client::QuorumClient;
use crate::quorum::tls::{ControllerTls, ControllerTlsFiles};
use crate::quorum::wire::{Ask, Outcome, QuorumStatus};
use std::path::PathBuf;
use std::sync::Arc;

/// A voter given this long to answer is reported unreachable.
const VOTER_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
    /// The quorum's voters, as given to `ringtail serve --controllers`.
    #[arg(long, global = true, value_name = "ID@HOST:PORT,...", default_value = "1@127.0.0.1:9093")]
    pub controllers: String,
    /// For voters that take mutual TLS only: a certificate their CA signed,
    /// as `ringtail serve --controller-tls-cert` (with the key and the CA)
    #[arg(long, global = true, value_name = "FILE", requires_all = ["controller_tls_key", "controller_tls_ca"])]
    pub controller_tls_cert: Option<PathBuf>,
    #[arg(long, global = true, value_name = "FILE", requires = "controller_tls_cert")]
    pub controller_tls_key: Option<PathBuf>,
    #[arg(long, global = true, value_name = "FILE", requires = "controller_tls_cert")]
    pub controller_tls_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClusterCommand {
    /// Brokers (alive or fenced), the controller leader and each voter's state.
    Describe,
}

pub async fn run(args: ClusterArgs) -> ExitCode {
    finish("cluster", execute(args, &mut std::io::stdout()).await)
}

pub async fn execute<W: Write + ?Sized>(args: ClusterArgs, out: &mut W) -> Result<(), CliError> {
    let ClusterCommand::Describe = args.command;
    let voters = resolve(&args.controllers)?;
    let tls = match (args.controller_tls_cert, args.controller_tls_key, args.controller_tls_ca) {
        (Some(cert), Some(key), Some(ca)) => {
            let named = parse_controllers(&args.controllers).map_err(CliError::Usage)?;
            let files = ControllerTlsFiles { cert, key, ca };
            let tls = ControllerTls::load(&files, &named)
                .map_err(|e| CliError::Usage(format!("--{}: {}", e.field, e.problem)))?;
            Some(Arc::new(tls))
        }
        _ => None,
    };
    let client =
        QuorumClient::new(voters.iter().map(|(id, (_, addr))| (*id, *addr)).collect(), VOTER_TIMEOUT)
            .with_tls(tls);
    let mut statuses = BTreeMap::new();
    for id in voters.keys() {
        if let Some(Outcome::Described(status)) = client.call_one(*id, Ask::Describe).await {
            statuses.insert(*id, *status);
        }
    }
    if statuses.is_empty() {
        return Err(CliError::Runtime(format!(
            "no controller answered at {} (is the cluster started with --controllers?)",
            args.controllers
        )));
    }
    write_description(out, &voters, &statuses).map_err(|e| CliError::Runtime(e.to_string()))
}

/// The voters by id: the address as given, and as resolved.
fn resolve(controllers: &str) -> Result<BTreeMap<u64, (String, SocketAddr)>, CliError> {
    let parsed =
        parse_controllers(controllers).map_err(|e| CliError::Usage(format!("--controllers: {e}")))?;
    let mut voters = BTreeMap::new();
    for voter in parsed {
        let given = voter.address.to_string();
        let addr = given
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| CliError::Usage(format!("--controllers: cannot resolve {given}")))?;
        voters.insert(voter.node_id as u64, (given, addr));
    }
    Ok(voters)
}

fn write_description<W: Write + ?Sized>(
    out: &mut W,
    voters: &BTreeMap<u64, (String, SocketAddr)>,
    statuses: &BTreeMap<u64, QuorumStatus>,
) -> std::io::Result<()> {
    // The image of the voter that has applied the most is the newest.
    let newest = statuses.values().max_by_key(|s| s.applied).expect("at least one status");
    // The leader of the highest term any voter knows.
    let leader = statuses.values().filter(|s| s.leader.is_some()).max_by_key(|s| s.term);
    writeln!(out, "Cluster: {}", newest.image.cluster_id.as_deref().unwrap_or("(not formed yet)"))?;
    match leader {
        Some(s) => writeln!(out, "Controller leader: {} (term {})", s.leader.unwrap_or_default(), s.term)?,
        None => writeln!(out, "Controller leader: none (no quorum)")?,
    }
    writeln!(out, "Voters:")?;
    for (id, (given, _)) in voters {
        match statuses.get(id) {
            Some(s) => {
                let role = if s.leader == Some(*id) { "leader" } else { "follower" };
                writeln!(
                    out,
                    "\t{id}\t{given}\t{role}\tterm {}\tcommitted {}\tapplied {}",
                    s.term, s.commit_index, s.applied
                )?;
            }
            None => writeln!(out, "\t{id}\t{given}\tunreachable")?,
        }
    }
    writeln!(out, "Brokers:")?;
    for (id, broker) in &newest.image.brokers {
        let endpoint = broker.endpoints.first().map_or("-".to_string(), |e| format!("{}:{}", e.host, e.port));
        let state = if broker.fenced { "fenced" } else { "alive" };
        writeln!(out, "\t{id}\t{endpoint}\t{state}")?;
    }
    Ok(())
}
