//! packaging/ringtail.service: `systemd-analyze verify` accepts it (where
//! systemd-analyze exists; said loudly where not), its keys say what the
//! README promises, and the binary keeps its side of `Type=notify`:
//! READY=1 on `$NOTIFY_SOCKET` (a path or an abstract name) once it takes
//! clients.

mod server_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ringtail");
const WAIT: Duration = Duration::from_secs(30);

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging").join(file)
}

/// The unit's `[section]` → key → values (a key may be given more than
/// once, as SystemCallFilter is). Comments and blank lines skipped.
fn unit_keys(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not KEY=VALUE: {line:?}"));
        assert!(!section.is_empty(), "{key} outside any section");
        let values = sections.entry(section.clone()).or_default().entry(key.trim().to_owned()).or_default();
        values.push(value.trim().to_owned());
    }
    sections
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!(
            "\n********\nSKIPPED: systemd-analyze is not installed, so packaging/ringtail.service was NOT \
             verified by systemd (only the structural test checked it). Install Debian's `systemd` package \
             to run this test.\n********\n"
        );
        return;
    }
    // verify checks that ExecStart's program exists: point it at this build.
    let unit = std::fs::read_to_string(packaging("ringtail.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/ringtail "), "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringtail.service");
    std::fs::write(
        &path,
        unit.replace("ExecStart=/usr/local/bin/ringtail ", &format!("ExecStart={BINARY} ")),
    )
    .unwrap();
    let output = Command::new("systemd-analyze").arg("verify").arg("--man=no").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify failed:\n{stderr}");
    // Unknown keys and bad values are warnings with exit code 0: none may
    // name the unit.
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains("ringtail")).collect();
    assert!(about_unit.is_empty(), "systemd-analyze verify warns:\n{stderr}");
}

#[test]
fn the_unit_runs_the_broker_as_documented() {
    let keys = unit_keys(&std::fs::read_to_string(packaging("ringtail.service")).unwrap());
    let service = &keys["Service"];
    let one = |key: &str| -> &str {
        let values = service.get(key).unwrap_or_else(|| panic!("[Service] has no {key}"));
        assert_eq!(values.len(), 1, "{key} given more than once: {values:?}");
        &values[0]
    };
    // The server implements sd_notify (tested below), so systemd waits for
    // READY=1.
    assert_eq!(one("Type"), "notify");
    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert!(exec[0].starts_with('/') && exec[0].ends_with("/ringtail"), "{exec:?}");
    assert_eq!(exec[1..], ["serve", "--config", "/etc/ringtail/ringtail.toml"]);
    assert_eq!(one("User"), "ringtail");
    assert_eq!(one("Group"), "ringtail");
    assert_eq!(one("LimitNOFILE"), "1048576");
    assert_eq!(one("Restart"), "on-failure");
    // Bad configuration (exit 2) is not retried.
    assert_eq!(one("RestartPreventExitStatus"), "2");
    // Sandboxing: only the data directory is writable, and the working
    // directory (where the default ./ringtail-data lands) is it.
    assert_eq!(one("ProtectSystem"), "strict");
    for key in ["ProtectHome", "PrivateTmp", "NoNewPrivileges", "PrivateDevices"] {
        assert_eq!(one(key), "yes", "{key}");
    }
    let state = format!("/var/lib/{}", one("StateDirectory"));
    assert_eq!(one("WorkingDirectory"), state);
    assert!(one("ReadWritePaths").split_whitespace().any(|p| p == state), "{service:?}");
    // The sandbox keeps io_uring and the notification socket.
    let filters = service["SystemCallFilter"].join(" ");
    assert!(filters.contains("io_uring_setup") && filters.contains("io_uring_enter"), "{filters}");
    assert!(one("RestrictAddressFamilies").split_whitespace().any(|f| f == "AF_UNIX"));
    assert_eq!(keys["Install"]["WantedBy"], ["multi-user.target"]);
    // The user the unit runs as, made by sysusers.d, lives in the data dir.
    let sysusers = std::fs::read_to_string(packaging("ringtail.sysusers")).unwrap();
    let user = sysusers.lines().find(|l| l.starts_with("u ")).expect("a u line");
    assert!(user.starts_with("u ringtail ") && user.ends_with(&format!(" {state}")), "{user}");
}

/// Starts `ringtail serve` on ephemeral ports with `NOTIFY_SOCKET` set to
/// `notify_socket`; returns it with its readiness line (stdout).
fn serve_notifying(data: &Path, notify_socket: &str) -> (Child, String) {
    let mut command = Command::new(BINARY);
    command
        .args(["serve", "--data-dir", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", notify_socket)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped());
    let (child, ready) = server_support::spawn_serve(command);
    let line = ready.recv_timeout(WAIT).expect("no readiness line");
    assert!(line.starts_with("ringtail ready: "), "{line:?}");
    (child, line.trim_end().to_owned())
}

/// SIGTERM, then the exit code and stderr.
fn stop(mut child: Child) -> (i32, String) {
    // SAFETY: kill(2) on the pid of a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ringtail did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.code().unwrap_or(-1), stderr)
}

fn receive(socket: &UnixDatagram) -> String {
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("no notification within 30 s");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn ready_is_sent_to_the_notify_socket() {
    let sockets = tempfile::tempdir().unwrap();
    let path = sockets.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    let data = server_support::data_dir("sd-notify");
    let (child, ready) = serve_notifying(data.path(), path.to_str().unwrap());
    assert_eq!(receive(&socket), format!("READY=1\nSTATUS={ready}"));
    let (code, stderr) = stop(child);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("cannot tell systemd"), "{stderr}");
}

#[test]
fn ready_is_sent_to_an_abstract_notify_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("ringtail-test-notify-{}", std::process::id());
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&address).unwrap();
    let data = server_support::data_dir("sd-notify-abstract");
    let (child, ready) = serve_notifying(data.path(), &format!("@{name}"));
    assert_eq!(receive(&socket), format!("READY=1\nSTATUS={ready}"));
    assert_eq!(stop(child).0, 0);
}

#[test]
fn a_notify_socket_nobody_reads_is_a_warning_not_a_failure() {
    let sockets = tempfile::tempdir().unwrap();
    let missing = sockets.path().join("nobody-here");
    let data = server_support::data_dir("sd-notify-missing");
    let (child, _) = serve_notifying(data.path(), missing.to_str().unwrap());
    let (code, stderr) = stop(child);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("cannot tell systemd the server is ready"), "{stderr}");
}
