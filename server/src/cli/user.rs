//! `ringtail user create|delete|list`: users' SCRAM credentials, through
//! AlterUserScramCredentials and DescribeUserScramCredentials (what
//! `kafka-configs.sh --entity-type users` does with `SCRAM-SHA-512=[...]`).
//!
//! The password never leaves this process: it is salted here (PBKDF2, a
//! fresh random salt from the OS) and the broker is sent the salted
//! password, from which it keeps only the derived keys.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ring::rand::{SecureRandom, SystemRandom};

use super::{connect, finish, CliError, BOOTSTRAP_DEFAULT};
use ringtail_client::scram_credentials::ScramAlteration;
use ringtail_client::ClientConfig;
use ringtail_engine::security::scram::{ScramMechanism, ITERATIONS_MAX, ITERATIONS_MIN};

/// Bytes of salt per credential: RFC 5802 asks for a random salt; 32 is
/// more than Kafka's own tools draw.
pub const SALT_BYTES: usize = 32;
/// The longest password read from stdin: a line, not a file.
const PASSWORD_BYTES_MAX: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    /// Broker to ask first, HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = BOOTSTRAP_DEFAULT)]
    pub bootstrap: String,
    /// Client security settings (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password).
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Set a user's password for one SCRAM mechanism (creating the user,
    /// or replacing that mechanism's credential).
    Create {
        name: String,
        #[arg(long, value_parser = parse_mechanism, default_value = "SCRAM-SHA-512")]
        mechanism: ScramMechanism,
        /// PBKDF2 iterations, 4096..=16384 (Kafka's bounds).
        #[arg(long, default_value_t = ITERATIONS_MIN)]
        iterations: u32,
        /// The password (visible to other users of this machine in the
        /// process list: prefer --password-stdin).
        #[arg(long, required_unless_present = "password_stdin", conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user's credential for one mechanism, or (without
    /// --mechanism) every credential it has.
    Delete {
        name: String,
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Option<ScramMechanism>,
    },
    /// List the users with SCRAM credentials: mechanisms and iterations.
    List,
}

/// A SCRAM mechanism by its SASL name.
pub fn parse_mechanism(s: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(s)
        .ok_or_else(|| format!("unknown mechanism {s:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"))
}

pub async fn run(args: UserArgs) -> ExitCode {
    let stdin = std::io::stdin();
    finish("user", execute(args, &mut stdin.lock(), &mut std::io::stdout()).await)
}

/// Runs the subcommand: a password from `input` if asked, output to `out`.
pub async fn execute<R: BufRead + ?Sized, W: Write + ?Sized>(
    args: UserArgs,
    input: &mut R,
    out: &mut W,
) -> Result<(), CliError> {
    // Everything the command line says is checked before connecting.
    let alterations = match &args.command {
        UserCommand::Create { name, mechanism, iterations, password, password_stdin } => {
            check_name(name)?;
            if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(iterations) {
                return Err(CliError::Usage(format!(
                    "--iterations must be in {ITERATIONS_MIN}..={ITERATIONS_MAX} (Kafka's bounds), got {iterations}"
                )));
            }
            let password = match (password, password_stdin) {
                (Some(p), _) => p.clone(),
                (None, _) => read_password(input)?,
            };
            if password.is_empty() {
                return Err(CliError::Usage("the password must not be empty".into()));
            }
            Some(vec![upsertion(name, *mechanism, *iterations, password.as_bytes())?])
        }
        UserCommand::Delete { name, .. } => {
            check_name(name)?;
            None
        }
        UserCommand::List => None,
    };
    let config = super::command_config::secured(ClientConfig::default(), args.command_config.as_deref())?;
    let client = connect(&args.bootstrap, config).await?;
    match args.command {
        UserCommand::Create { name, mechanism, iterations, .. } => {
            client.alter_scram_credentials(&alterations.unwrap_or_default()).await?;
            write_out(
                out,
                format_args!("Set the {mechanism} credential of user {name} ({iterations} iterations).\n"),
            )
        }
        UserCommand::Delete { name, mechanism } => {
            let mechanisms = match mechanism {
                Some(m) => vec![m],
                None => {
                    let described = client.describe_scram_credentials(Some(&[name.as_str()])).await;
                    let described = described.map_err(|e| no_such_credential(&name, "SCRAM", e))?;
                    described.into_iter().flat_map(|u| u.credentials).map(|(m, _)| m).collect()
                }
            };
            let deletions: Vec<ScramAlteration> = mechanisms
                .iter()
                .map(|&mechanism| ScramAlteration::Delete { user: name.clone(), mechanism })
                .collect();
            let what = mechanism.map_or("SCRAM", |m| m.name());
            client
                .alter_scram_credentials(&deletions)
                .await
                .map_err(|e| no_such_credential(&name, what, e))?;
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            write_out(out, format_args!("Deleted the {} credential(s) of user {name}.\n", names.join(", ")))
        }
        UserCommand::List => {
            for user in client.describe_scram_credentials(None).await? {
                let credentials: Vec<String> = user
                    .credentials
                    .iter()
                    .map(|(m, iterations)| format!("{m} iterations={iterations}"))
                    .collect();
                write_out(out, format_args!("{}\t{}\n", user.user, credentials.join("\t")))?;
            }
            Ok(())
        }
    }
}

fn check_name(name: &str) -> Result<(), CliError> {
    if name.is_empty() {
        return Err(CliError::Usage("the user name must not be empty".into()));
    }
    Ok(())
}

/// A fresh credential for `password`: a random salt, and the password
/// salted with it. Only the salted password is sent.
fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    iterations: u32,
    password: &[u8],
) -> Result<ScramAlteration, CliError> {
    let mut salt = vec![0u8; SALT_BYTES];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| CliError::Runtime("cannot draw a salt from the OS's random numbers".into()))?;
    let salted_password = mechanism.salted_password(password, &salt, iterations);
    // `iterations` was checked to be at most ITERATIONS_MAX, well in i32.
    let iterations = i32::try_from(iterations).unwrap_or(i32::MAX);
    Ok(ScramAlteration::Upsert { user: user.to_string(), mechanism, iterations, salt, salted_password })
}

/// The first line of `input`, without its line ending.
fn read_password<R: BufRead + ?Sized>(input: &mut R) -> Result<String, CliError> {
    let mut line = Vec::new();
    let mut limited = std::io::Read::take(&mut *input, PASSWORD_BYTES_MAX as u64 + 1);
    limited
        .read_until(b'\n', &mut line)
        .map_err(|e| CliError::Runtime(format!("cannot read the password from stdin: {e}")))?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if line.len() > PASSWORD_BYTES_MAX {
        return Err(CliError::Usage(format!("the password on stdin is over {PASSWORD_BYTES_MAX} bytes")));
    }
    if line.is_empty() {
        return Err(CliError::Usage("--password-stdin: no password on stdin".into()));
    }
    String::from_utf8(line).map_err(|_| CliError::Usage("the password on stdin is not UTF-8".into()))
}

/// `user NAME has no SCRAM-SHA-256 credential` reads better than the bare
/// Kafka error, but keeps its name so it can be searched for.
fn no_such_credential(name: &str, what: &str, e: ringtail_client::ClientError) -> CliError {
    if e.kafka_code() == Some(kafka_protocol::ResponseError::ResourceNotFound.code()) {
        CliError::Runtime(format!("user {name} has no {what} credential (RESOURCE_NOT_FOUND)"))
    } else {
        e.into()
    }
}

fn write_out<W: Write + ?Sized>(out: &mut W, text: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    out.write_fmt(text).map_err(|e| CliError::Runtime(format!("cannot write output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line is the password: its line ending is not part of it, and
    /// what follows it is not read as part of it.
    #[test]
    fn the_password_is_the_first_line() {
        let read = |bytes: &[u8]| read_password(&mut &bytes[..]);
        assert_eq!(read(b"secret\n").unwrap(), "secret");
        assert_eq!(read(b"secret\r\nmore\n").unwrap(), "secret");
        assert_eq!(read(b"no newline").unwrap(), "no newline");
        assert!(matches!(read(b""), Err(CliError::Usage(_))));
        assert!(matches!(read(b"\n"), Err(CliError::Usage(_))));
        assert!(matches!(read(&[b'x'; PASSWORD_BYTES_MAX + 1]), Err(CliError::Usage(_))));
    }

    /// Each credential gets a fresh salt, and the salted password is the
    /// mechanism's PBKDF2 of the password with it.
    #[test]
    fn salts_are_fresh_and_the_password_is_salted_with_them() {
        let one = upsertion("u", ScramMechanism::Sha256, 4096, b"pw").unwrap();
        let two = upsertion("u", ScramMechanism::Sha256, 4096, b"pw").unwrap();
        let (
            ScramAlteration::Upsert { salt: s1, salted_password: p1, .. },
            ScramAlteration::Upsert { salt: s2, salted_password: p2, .. },
        ) = (one, two)
        else {
            panic!("not upsertions")
        };
        assert_eq!(s1.len(), SALT_BYTES);
        assert_ne!(s1, s2);
        assert_ne!(p1, p2);
        assert_eq!(p1, ScramMechanism::Sha256.salted_password(b"pw", &s1, 4096));
    }
}
