//! The `ringtail serve` binary as operators and scripts see it: exit codes,
//! the one-line config errors, the readiness line, SIGTERM.

mod server_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");
const WAIT: Duration = Duration::from_secs(30);

fn serve(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.arg("serve").args(args).env("RUST_LOG", "info");
    command
}

/// Runs to completion (bounded) and returns (exit code, stderr).
fn run(mut command: Command) -> (i32, String) {
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let status = wait(&mut child);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status, stderr)
}

fn wait(child: &mut Child) -> i32 {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("ringtail did not exit within {WAIT:?}");
}

/// Starts the server and returns it with its readiness line (stdout).
fn start(mut command: Command) -> (Child, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("no readiness line");
    (child, line)
}

fn terminate(child: &Child) {
    // SAFETY: kill(2) on the pid of a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

/// A raw ApiVersions v0 round trip on a blocking socket.
fn api_versions_ok(address: &str) -> bool {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // Length 10: api key 18, version 0, correlation id 1, null client id.
    stream.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff]).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    // Correlation id, then error code 0.
    body[..4] == [0, 0, 0, 1] && body[4..6] == [0, 0]
}

fn kafka_address(ready: &str) -> String {
    ready.split("kafka on ").nth(1).unwrap().split(',').next().unwrap().to_string()
}

#[test]
fn bad_config_is_one_line_naming_the_key_and_exit_code_2() {
    for (args, key) in [
        (vec!["--flush", "sometimes"], "--flush"),
        (vec!["--io", "fast"], "--io"),
        (vec!["--node-id", "x"], "--node-id"),
        (vec!["--controllers", "1@127.0.0.1:9093,1@127.0.0.1:9193"], "node 1 is listed twice"),
        (
            vec![
                "--node-id",
                "4",
                "--controllers",
                "1@127.0.0.1:9093",
                "--controller-listen",
                "127.0.0.1:9393",
            ],
            "node 4 is not among the --controllers",
        ),
        (vec!["--config", "/nonexistent/ringtail.toml"], "/nonexistent/ringtail.toml"),
    ] {
        let (code, stderr) = run(serve(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(key), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
    // Unknown flags are clap's usage errors, also exit code 2.
    assert_eq!(run(serve(&["--no-such-flag"])).0, 2);
}

#[test]
fn ready_line_then_sigterm_exits_0() {
    let dir = server_support::data_dir("binary");
    let data = dir.path().to_str().unwrap();
    let args = ["--data-dir", data, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"];
    let (mut child, ready) = start(serve(&args));
    assert!(ready.starts_with("ringtail ready: kafka on 127.0.0.1:"), "{ready}");
    assert!(ready.contains(", metrics on 127.0.0.1:"), "{ready}");
    assert!(ready.contains(", node 1, io "), "{ready}");
    assert!(ready.trim_end().ends_with(&format!("data {data}")), "{ready}");
    assert!(api_versions_ok(&kafka_address(&ready)));

    // A second server on the same data directory is refused: exit 1.
    let second = ["--data-dir", data, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"];
    let (code, stderr) = run(serve(&second));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");

    terminate(&child);
    assert_eq!(wait(&mut child), 0);
}

#[test]
fn no_arguments_serve_a_broker_from_the_current_directory() {
    // The defaults listen on 127.0.0.1:9092 and :9644; on a host where
    // something holds them this case cannot run.
    if std::net::TcpListener::bind("127.0.0.1:9092").is_err()
        || std::net::TcpListener::bind("127.0.0.1:9644").is_err()
    {
        eprintln!("skipped: a default port is taken");
        return;
    }
    let cwd = server_support::data_dir("cwd");
    let mut command = serve(&[]);
    command.current_dir(cwd.path());
    let (mut child, ready) = start(command);
    assert!(
        ready.starts_with("ringtail ready: kafka on 127.0.0.1:9092, metrics on 127.0.0.1:9644, node 1"),
        "{ready}"
    );
    assert!(api_versions_ok("127.0.0.1:9092"));
    assert!(cwd.path().join("ringtail-data").is_dir());
    terminate(&child);
    assert_eq!(wait(&mut child), 0);
}
