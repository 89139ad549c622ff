//! `ringtail serve --log-format json` (or `log-format = "json"` in the
//! config file): every line on stderr is a JSON object, the readiness line
//! among them; text stays the default; a bad value is a config error.

mod server_support;

use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");
const WAIT: Duration = Duration::from_secs(30);

/// Runs `ringtail serve ARGS` until ready, stops it with SIGTERM and
/// returns (readiness line, exit code, stderr).
fn serve_and_stop(args: &[&str]) -> (String, i32, String) {
    let data = server_support::data_dir("logs");
    let mut command = Command::new(BINARY);
    command
        .args(["serve", "--data-dir", data.path().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped());
    let (mut child, ready) = server_support::spawn_serve(command);
    let ready = ready.recv_timeout(WAIT).expect("no readiness line").trim_end().to_owned();
    // SAFETY: kill(2) on the pid of a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let code = wait(&mut child);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (ready, code, stderr)
}

fn wait(child: &mut Child) -> i32 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "ringtail did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each line of `stderr` as a JSON object with a timestamp, a level and a
/// message; panics naming the first line that is not.
fn json_lines(stderr: &str) -> Vec<Value> {
    assert!(!stderr.trim().is_empty(), "no log lines");
    stderr
        .lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{stderr}"));
            for field in ["timestamp", "level", "message", "target"] {
                assert!(value.get(field).is_some(), "no {field} in {line}");
            }
            value
        })
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_the_readiness_line() {
    let (ready, code, stderr) = serve_and_stop(&["--log-format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(ready.starts_with("ringtail ready: kafka on 127.0.0.1:"), "{ready}");
    let lines = json_lines(&stderr);
    let readiness: Vec<&Value> = lines.iter().filter(|l| l["message"] == ready.as_str()).collect();
    assert_eq!(readiness.len(), 1, "{stderr}");
    assert_eq!(readiness[0]["level"], "INFO");
    // Events' fields are keys of their own, beside the message.
    assert!(lines.iter().any(|l| l["message"] == "SIGTERM received"), "{stderr}");
    assert!(lines.iter().any(|l| l.as_object().unwrap().len() > 4), "no event with fields: {stderr}");
}

#[test]
fn the_config_file_sets_the_log_format_and_text_is_the_default() {
    let dir = server_support::data_dir("logs-config");
    let file = dir.path().join("ringtail.toml");
    std::fs::write(&file, "log-format = \"json\"\n").unwrap();
    let (ready, code, stderr) = serve_and_stop(&["--config", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(json_lines(&stderr).iter().any(|l| l["message"] == ready.as_str()), "{stderr}");

    // The flag overrides the file.
    let (ready, code, stderr) = serve_and_stop(&["--config", file.to_str().unwrap(), "--log-format", "text"]);
    assert_eq!(code, 0, "{stderr}");
    let line = stderr.lines().find(|l| l.contains(&ready)).expect("the readiness line is logged");
    assert!(line.contains(" INFO ") && !line.starts_with('{'), "{line}");

    let (_, code, stderr) = serve_and_stop(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.lines().all(|l| !l.starts_with('{')), "{stderr}");
}

#[test]
fn a_bad_log_format_is_a_config_error() {
    let output = Command::new(BINARY).args(["serve", "--log-format", "xml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr, "ringtail: bad config: --log-format: expected text or json, got \"xml\"\n");
}
