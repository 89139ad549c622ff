//! `ringtail user create|list|delete`, the binary run against a real
//! in-process server: credentials are set, listed and deleted, bad input
//! gets the CLI's exit codes (2 usage, 1 a refusal) with one line on
//! stderr, credentials survive a restart, and the one the CLI stored lets
//! its user through a SCRAM exchange with the right password only.

mod server_support;

use ringtail_engine::security::scram::{ClientFirst, ScramError, ScramMechanism, ServerFirst};
use ringtail_server::serve::RunningServer;
use server_support::{data_dir, start};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");

/// Runs `ringtail user ARGS --bootstrap ADDR` with `stdin`, off the
/// runtime's threads (the server runs on them).
async fn user(server: &RunningServer, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(BINARY);
    command.arg("user").args(args).arg("--bootstrap").arg(server.kafka_addr.to_string());
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ringtail runs");
        child.stdin.take().expect("piped stdin").write_all(stdin.as_bytes()).expect("stdin written");
        child.wait_with_output().expect("ringtail exits")
    })
    .await
    .expect("the command's thread")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// Asserts `output` exited with `code`; returns stdout on success, stderr
/// (one line) on failure.
fn exited(output: &Output, code: i32) -> String {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(code), "stdout: {stdout}\nstderr: {stderr}");
    if code == 0 {
        return stdout;
    }
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    assert!(stderr.starts_with("ringtail user"), "{stderr}");
    stderr
}

/// A SCRAM exchange against the credential the running broker keeps.
fn log_in(server: &RunningServer, m: ScramMechanism, user: &str, password: &str) -> Result<(), ScramError> {
    let broker = server.broker();
    let client = ClientFirst::new(m, user, password.as_bytes(), "clientnonce");
    let server_first = ServerFirst::new(
        m,
        &client.message(),
        |u| broker.scram_credential(u, m),
        "servernonce",
        |_| b"a salt for users that do not exist".to_vec(),
    )?;
    let (client_final, expected) = client.answer(server_first.message())?;
    let server_final = server_first.finish(&client_final)?;
    assert_eq!(server_final, expected, "the server proves it knows the key too");
    Ok(())
}

/// Create (with the defaults, and with a mechanism and iterations), list,
/// log in, replace a password, delete one mechanism and then all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_listed_used_and_deleted() {
    let dir = data_dir("cli-user");
    let server = start(dir.path()).await;

    exited(&user(&server, &["create", "alice", "--password", "wonderland"], "").await, 0);
    let out = exited(
        &user(
            &server,
            &["create", "alice", "--mechanism", "SCRAM-SHA-256", "--iterations", "8192", "--password-stdin"],
            "rabbit\nnot this line\n",
        )
        .await,
        0,
    );
    assert!(out.contains("SCRAM-SHA-256") && out.contains("8192"), "{out}");
    exited(&user(&server, &["create", "bob", "--password-stdin"], "builder\r\n").await, 0);

    let listed = exited(&user(&server, &["list"], "").await, 0);
    assert_eq!(
        listed,
        "alice\tSCRAM-SHA-256 iterations=8192\tSCRAM-SHA-512 iterations=4096\nbob\tSCRAM-SHA-512 iterations=4096\n"
    );
    let stored = server.broker().scram_credential("alice", ScramMechanism::Sha512).unwrap();
    assert!(stored.salt.len() >= 16, "a salt of {} bytes", stored.salt.len());

    assert_eq!(log_in(&server, ScramMechanism::Sha512, "alice", "wonderland"), Ok(()));
    assert_eq!(log_in(&server, ScramMechanism::Sha256, "alice", "rabbit"), Ok(()));
    assert_eq!(
        log_in(&server, ScramMechanism::Sha512, "bob", "builder"),
        Ok(()),
        "the line ending is not the password"
    );
    assert_eq!(
        log_in(&server, ScramMechanism::Sha512, "alice", "rabbit"),
        Err(ScramError::InvalidCredentials)
    );
    assert_eq!(
        log_in(&server, ScramMechanism::Sha256, "bob", "builder"),
        Err(ScramError::InvalidCredentials)
    );

    // A new password replaces the old one.
    exited(&user(&server, &["create", "bob", "--password", "fixer"], "").await, 0);
    assert_eq!(log_in(&server, ScramMechanism::Sha512, "bob", "fixer"), Ok(()));
    assert_eq!(
        log_in(&server, ScramMechanism::Sha512, "bob", "builder"),
        Err(ScramError::InvalidCredentials)
    );

    exited(&user(&server, &["delete", "alice", "--mechanism", "SCRAM-SHA-512"], "").await, 0);
    assert_eq!(
        log_in(&server, ScramMechanism::Sha512, "alice", "wonderland"),
        Err(ScramError::InvalidCredentials)
    );
    assert_eq!(log_in(&server, ScramMechanism::Sha256, "alice", "rabbit"), Ok(()));
    exited(&user(&server, &["create", "alice", "--password", "again"], "").await, 0);
    let out = exited(&user(&server, &["delete", "alice"], "").await, 0);
    assert!(out.contains("SCRAM-SHA-256, SCRAM-SHA-512"), "every mechanism goes: {out}");
    assert_eq!(exited(&user(&server, &["list"], "").await, 0), "bob\tSCRAM-SHA-512 iterations=4096\n");
    server.shutdown().await.unwrap();
}

/// Bad command lines exit 2 before anything is sent; what the broker
/// refuses exits 1 with its Kafka error name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_clis_exit_codes() {
    let dir = data_dir("cli-user-errors");
    let server = start(dir.path()).await;
    let usage = [
        &["create", "alice"][..],
        &["create", "alice", "--password", "p", "--password-stdin"],
        &["create", "alice", "--mechanism", "SCRAM-SHA-1", "--password", "p"],
        &["create", "alice", "--iterations", "4095", "--password", "p"],
        &["create", "alice", "--iterations", "16385", "--password", "p"],
        &["create", "", "--password", "p"],
        &["create", "alice", "--password", ""],
        &["create", "alice", "--password-stdin"],
        &["delete", "alice", "--mechanism", "PLAIN"],
    ];
    for args in usage {
        let output = user(&server, args, "").await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output.stderr));
    }
    assert_eq!(exited(&user(&server, &["list"], "").await, 0), "", "nothing was created");

    let e = exited(&user(&server, &["delete", "nobody"], "").await, 1);
    assert!(e.contains("RESOURCE_NOT_FOUND"), "{e}");
    exited(
        &user(&server, &["create", "alice", "--mechanism", "SCRAM-SHA-256", "--password", "p"], "").await,
        0,
    );
    let e = exited(&user(&server, &["delete", "alice", "--mechanism", "SCRAM-SHA-512"], "").await, 1);
    assert!(e.contains("no SCRAM-SHA-512 credential") && e.contains("RESOURCE_NOT_FOUND"), "{e}");
    assert!(
        server.broker().scram_credential("alice", ScramMechanism::Sha256).is_some(),
        "alice is untouched"
    );
    server.shutdown().await.unwrap();

    let nobody_listening = {
        let dir = data_dir("cli-user-gone");
        let server = start(dir.path()).await;
        let addr = server.kafka_addr.to_string();
        server.shutdown().await.unwrap();
        addr
    };
    let output = tokio::task::spawn_blocking(move || {
        Command::new(BINARY).args(["user", "list", "--bootstrap", &nobody_listening]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
}

/// Credentials set through the CLI are in the metadata on disk: a
/// restarted server lists them and lets their users in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_survive_a_restart() {
    let dir = data_dir("cli-user-restart");
    let server = start(dir.path()).await;
    exited(&user(&server, &["create", "carol", "--password", "persistent"], "").await, 0);
    exited(
        &user(&server, &["create", "dave", "--mechanism", "SCRAM-SHA-256", "--password", "gone"], "").await,
        0,
    );
    exited(&user(&server, &["delete", "dave"], "").await, 0);
    server.shutdown().await.unwrap();

    let server = start(dir.path()).await;
    assert_eq!(exited(&user(&server, &["list"], "").await, 0), "carol\tSCRAM-SHA-512 iterations=4096\n");
    assert_eq!(log_in(&server, ScramMechanism::Sha512, "carol", "persistent"), Ok(()));
    assert_eq!(
        log_in(&server, ScramMechanism::Sha512, "carol", "wrong"),
        Err(ScramError::InvalidCredentials)
    );
    server.shutdown().await.unwrap();
}
