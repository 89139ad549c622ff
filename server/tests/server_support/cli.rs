//! Running the `ringtail` binary's admin commands against a test server,
//! and reading what they print.

use ringtail_server::security::authorize::AuthorizerKind;
use ringtail_server::serve::{self, RunningServer};
use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");

/// A server deciding by ACLs, with `super_users` (the CLI, on the
/// PLAINTEXT listener, is `User:ANONYMOUS`).
pub async fn start_with_acls(dir: &Path, super_users: &[&str]) -> RunningServer {
    let mut config = super::config(dir);
    config.authorizer = AuthorizerKind::Acl;
    config.super_users = super_users.iter().map(|u| u.to_string()).collect();
    serve::start(config).await.unwrap()
}

/// Runs `ringtail COMMAND ARGS --bootstrap ADDR`, off the runtime's
/// threads (the server runs on them).
pub async fn run_at(command: &str, bootstrap: String, args: &[&str]) -> Output {
    let mut process = Command::new(BINARY);
    process.arg(command).args(args).arg("--bootstrap").arg(bootstrap);
    tokio::task::spawn_blocking(move || process.output().expect("ringtail runs"))
        .await
        .expect("the command's thread")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// Asserts `output` of `ringtail COMMAND` exited with `code`; returns
/// stdout on success, stderr (one line, from the command) on failure.
pub fn exited(output: &Output, code: i32, command: &str) -> String {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(code), "stdout: {stdout}\nstderr: {stderr}");
    if code == 0 {
        assert_eq!(stderr, "", "nothing on stderr");
        return stdout;
    }
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    assert!(stderr.starts_with(&format!("ringtail {command}: ")), "{stderr}");
    stderr
}

/// A table's lines as their cells (the columns are padded with spaces;
/// no cell in these tests has one).
pub fn rows(table: &str) -> Vec<Vec<&str>> {
    table.lines().map(|l| l.split_whitespace().collect()).collect()
}

/// `header`, then `expected`, as `rows` reads a table.
pub fn listed<const N: usize>(
    header: [&'static str; N],
    expected: &[[&'static str; N]],
) -> Vec<Vec<&'static str>> {
    std::iter::once(header).chain(expected.iter().copied()).map(Vec::from).collect()
}
